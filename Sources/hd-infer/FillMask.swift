import ArgumentParser
import Foundation
import HDCommandLine
import HDModel

struct FillMask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill-mask",
        abstract: "Predict the tokens behind each [MASK] in a text with the checkpoint's MLM head.",
        discussion: """
        "predictions" is a list per [MASK] in text order (a list of lists, one list for one mask). With \
        --truncate, masks past the cut are not predicted: "cut_masks" lists their numbers (1-based, in \
        text order; empty when none was cut) and a note on stderr names them; a text whose every [MASK] \
        is past the cut is refused saying so.
        """)

    @OptionGroup var args: TextArguments

    @Option(name: .long, help: "Predictions to print per mask.")
    var topK = 5

    func validate() throws {
        guard topK > 0 else { throw ValidationError("--top-k must be positive, found \(topK)") }
    }

    struct Prediction: Encodable {
        var id: Int
        var token: String
        var logit: Float
        var prob: Float
    }

    struct Result: Encodable {
        var text: String
        /// One list per predicted [MASK], in text order.
        var predictions: [[Prediction]]
        /// 1-based numbers (in text order) of the masks past the --truncate cut, not predicted.
        var cutMasks: [Int]
        /// The arithmetic of the encoder's dense layers.
        var precision: String

        enum CodingKeys: String, CodingKey {
            case text, predictions, precision
            case cutMasks = "cut_masks"
        }
    }

    func run() throws {
        try ToolErrors.reporting("hd-infer") {
            let model = try TextModel(args)
            guard model.checkpoint.hasMLMHead else {
                throw ModelError(.unsupported, file: model.checkpoint.source, "checkpoint has no MLM head (cls.predictions.*), so it cannot fill masks; use a BertForMaskedLM checkpoint")
            }
            let maskID = model.tokenizer.specialIDs.mask
            let vocab = model.tokenizer.vocabulary.tokens
            let limit = model.checkpoint.config.maxPositionEmbeddings
            try args.forEachInput { line, text in
                let ids = try model.encode(text, place: args.describe(line: line))
                let positions = ids.indices.filter { ids[$0] == maskID }
                // A text of exactly `limit` ids may have been cut: count the masks of the whole text.
                var cut: [Int] = [], firstCutPosition = 0, fullLength = ids.count
                if args.truncate && ids.count == limit {
                    let full = try model.tokenizer.encode(text, pair: nil).ids
                    let all = full.indices.filter { full[$0] == maskID }
                    if all.count > positions.count {
                        cut = Array((positions.count + 1)...all.count)
                        firstCutPosition = all[positions.count]
                        fullLength = full.count
                    }
                }
                let masks = positions.count + cut.count
                guard !positions.isEmpty else {
                    if !cut.isEmpty {
                        throw ModelError(.badInput, file: "<input>", "\(args.describe(line: line)): \(masks == 1 ? "its [MASK] is" : "all \(masks) of its [MASK]s are") past the cut: --truncate keeps \(limit) of its \(fullLength) tokens (the model's positions) and the first [MASK] is token \(firstCutPosition + 1); move a [MASK] into the first \(limit - 2) word pieces or shorten the text")
                    }
                    throw ModelError(.badInput, file: "<input>", "\(args.describe(line: line)) has no [MASK] token; write [MASK] where a word should be predicted")
                }
                if !cut.isEmpty {
                    let numbers = cut.map { "#\($0)" }.joined(separator: ", ")
                    FileHandle.standardError.write(Data("hd-infer: note: \(args.describe(line: line)): [MASK] \(numbers) of \(masks) \(cut.count == 1 ? "is" : "are") past the cut at \(limit) tokens (--truncate) and \(cut.count == 1 ? "was" : "were") not predicted\n".utf8))
                }
                try model.run(ids)
                let logits = try model.session.mlmLogits(positions: positions.map { TokenPosition(batch: 0, position: $0) })
                let V = model.checkpoint.config.vocabSize
                let perMask = positions.indices.map { m in
                    Self.top(Array(logits[(m * V)..<((m + 1) * V)]), k: topK, vocab: vocab)
                }
                if args.json {
                    try JSONOutput.print(Result(text: text, predictions: perMask, cutMasks: cut, precision: args.precision.rawValue), pretty: false)
                } else {
                    print("\(text)  (\(args.precision.rawValue))")
                    for (m, predictions) in perMask.enumerated() {
                        if masks > 1 { print("  [MASK] #\(m + 1)") }
                        for p in predictions {
                            print("    \(p.token.padding(toLength: max(p.token.count, 16), withPad: " ", startingAt: 0)) p=\(String(format: "%.4f", p.prob))  logit=\(String(format: "%.3f", p.logit))")
                        }
                    }
                    for number in cut { print("  [MASK] #\(number): past the --truncate cut, not predicted") }
                }
            }
        }
    }

    /// The k most likely tokens with softmax probabilities over the whole vocabulary.
    static func top(_ logits: [Float], k: Int, vocab: [String]) -> [Prediction] {
        let maxLogit = logits.max() ?? 0
        var sum: Double = 0
        for x in logits { sum += Double(expf(x - maxLogit)) }
        // Partial selection: k passes is cheaper than sorting 30k logits for small k.
        var taken = Set<Int>()
        var out: [Prediction] = []
        for _ in 0..<min(k, logits.count) {
            var best = -1
            for i in logits.indices where !taken.contains(i) && (best < 0 || logits[i] > logits[best]) { best = i }
            taken.insert(best)
            out.append(Prediction(id: best, token: best < vocab.count ? vocab[best] : "[id \(best)]", logit: logits[best],
                                  prob: Float(Double(expf(logits[best] - maxLogit)) / sum)))
        }
        return out
    }
}
