import ArgumentParser
import Foundation
import HDCommandLine
import HDModel

struct FillMask: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill-mask",
        abstract: "Predict the tokens behind each [MASK] in a text with the checkpoint's MLM head.",
        discussion: "With one [MASK], \"predictions\" is a list; with several, a list per mask, in text order.")

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

    enum Predictions: Encodable {
        case one([Prediction])
        case several([[Prediction]])

        func encode(to encoder: Encoder) throws {
            switch self {
            case .one(let p): try p.encode(to: encoder)
            case .several(let p): try p.encode(to: encoder)
            }
        }
    }

    struct Result: Encodable {
        var text: String
        var predictions: Predictions
        var precision: String
    }

    func run() throws {
        try ToolErrors.reporting("hd-infer") {
            let model = try TextModel(args)
            guard model.checkpoint.hasMLMHead else {
                throw ModelError(.unsupported, file: model.checkpoint.source, "checkpoint has no MLM head (cls.predictions.*), so it cannot fill masks; use a BertForMaskedLM checkpoint")
            }
            let maskID = model.tokenizer.specialIDs.mask
            let vocab = model.tokenizer.vocabulary.tokens
            for (line, text) in args.inputs() {
                let ids = try model.encode(text, line: line, source: args.text)
                let positions = ids.indices.filter { ids[$0] == maskID }
                guard !positions.isEmpty else {
                    throw ModelError(.badInput, file: "<input>", "\(args.text == "-" ? "stdin line \(line)" : "the text") has no [MASK] token; write [MASK] where a word should be predicted")
                }
                try model.run(ids)
                let logits = try model.session.mlmLogits(positions: positions.map { TokenPosition(batch: 0, position: $0) })
                let V = model.checkpoint.config.vocabSize
                let perMask = positions.indices.map { m in
                    Self.top(Array(logits[(m * V)..<((m + 1) * V)]), k: topK, vocab: vocab)
                }
                if args.json {
                    let predictions: Predictions = perMask.count == 1 ? .one(perMask[0]) : .several(perMask)
                    try JSONOutput.print(Result(text: text, predictions: predictions, precision: args.precision.rawValue), pretty: false)
                } else {
                    print("\(text)  (\(args.precision.rawValue))")
                    for (m, predictions) in perMask.enumerated() {
                        if perMask.count > 1 { print("  [MASK] #\(m + 1)") }
                        for p in predictions {
                            print("    \(p.token.padding(toLength: max(p.token.count, 16), withPad: " ", startingAt: 0)) p=\(String(format: "%.4f", p.prob))  logit=\(String(format: "%.3f", p.logit))")
                        }
                    }
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
