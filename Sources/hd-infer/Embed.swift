import ArgumentParser
import HDCommandLine
import HDModel

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a sentence embedding: the mean of the last hidden state over the tokens, or the [CLS] state.",
        discussion: "Mean pooling + --normalize is what sentence-transformers models such as all-MiniLM-L6-v2 use.")


    @OptionGroup var args: TextArguments

    @Option(name: .long, help: "mean (over the tokens, [CLS] and [SEP] included) or cls.")
    var pooling: SentencePooling = .mean

    @Flag(name: .long, help: "Scale the embedding to unit L2 norm.")
    var normalize = false

    struct Result: Encodable {
        var text: String
        var embedding: [Float]
        var precision: String
    }

    func run() throws {
        try ToolErrors.reporting("hd-infer") {
            let model = try TextModel(args)
            let d = model.checkpoint.config.hiddenSize
            try args.forEachInput { line, text in
                let ids = try model.encode(text, place: args.describe(line: line))
                try model.run(ids)
                let hidden = model.session.lastHiddenState()
                let embedding = pooling.pool(hidden, batch: 1, sequenceLength: ids.count, width: d,
                                             mask: [Float](repeating: 1, count: ids.count), normalized: normalize)
                if args.json {
                    try JSONOutput.print(Result(text: text, embedding: embedding, precision: args.precision.rawValue), pretty: false)
                } else {
                    print("\(text)  (\(args.precision.rawValue))")
                    print("  [" + embedding.map { String($0) }.joined(separator: ", ") + "]")
                }
            }
        }
    }
}

extension SentencePooling: ExpressibleByArgument {}
