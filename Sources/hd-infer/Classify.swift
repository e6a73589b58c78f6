import ArgumentParser
import Foundation
import HDCommandLine
import HDModel
import HDRuntime
import HDTokenizer

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Label texts (or text pairs) with a sequence classifier: the label and every label's probability.",
        discussion: """
        MODEL must have a classifier head (classifier.weight, labels in the config's id2label): one fine-tuned by \
        hd-finetune, or a transformers BertForSequenceClassification (a Hugging Face directory, or hd-convert's output). \
        A pair is encoded as [CLS] TEXT [SEP] PAIR [SEP] with token types 0 then 1, as transformers does.
        """)

    @Argument(help: ArgumentHelp("Checkpoint (.safetensors, .npz, .ckpt) or Hugging Face directory of a sequence classifier.", valueName: "model"))
    var model: String

    @Argument(help: ArgumentHelp("The texts to classify, or - to read one input per line from stdin: a text, or text<TAB>pair (one result per line; a bad line is reported in its place and the others still run, exit 65 at the end).", valueName: "text"))
    var texts: [String] = []

    @Option(name: .long, help: ArgumentHelp("The second text of a pair, with one TEXT argument.", valueName: "text"))
    var pair: String?

    @Option(name: .long, help: ArgumentHelp("Plain output: list the K most probable labels (default 1). --json always gives every probability.", valueName: "k"))
    var top = 1

    @Flag(name: .long, help: "Print one JSON object per input on one line: text, pair (when given), label, probabilities and logits in id order, labels, precision; with -, a bad line gives {\"line\": n, \"error\": …}.")
    var json = false

    @OptionGroup var flags: ClassifierFlags

    func validate() throws {
        guard !texts.isEmpty else { throw ValidationError("expected TEXT… or - (stdin) after MODEL, found none") }
        if texts.contains("-"), texts.count > 1 { throw ValidationError("- (stdin) must be the only TEXT, found \(texts.count) texts") }
        if pair != nil {
            guard texts.count == 1 else { throw ValidationError("--pair pairs with one TEXT, found \(texts.count) texts") }
            guard texts[0] != "-" else { throw ValidationError("--pair cannot be used with - (stdin): put text<TAB>pair on each line instead") }
        }
        if top < 1 { throw ValidationError("--top must be at least 1, found \(top)") }
    }

    struct Result: Encodable {
        var text: String
        var pair: String?
        var label: String
        var probabilities: [Float]
        var logits: [Float]
        var labels: [String]
        var precision: String
    }

    /// One input waiting for its batch to run: its encoding, or the error to report in its place.
    struct Pending {
        var line: Int
        var text: String
        var pair: String?
        var encoding: Encoding?
        var error: ModelError?
    }

    func run() throws {
        try ToolErrors.reporting("hd-infer", json: json) {
            let fromStdin = texts == ["-"]
            let batch = flags.batch ?? 1
            let model = try ClassifierModel(self.model, flags: flags, batch: batch)
            if pair != nil, let why = model.pairRefusal {
                throw ModelError(.badInput, file: model.checkpoint.source, field: "--pair", "--pair: \(why)")
            }
            guard fromStdin else {
                // Every argument is encoded before anything runs: a bad one fails the command with nothing printed.
                let inputs = try texts.enumerated().map { i, text -> Pending in
                    let place = texts.count == 1 ? "the text" : "text \(i + 1)"
                    for (what, value) in [("the text", Optional(text)), ("--pair", pair)] {
                        if let value, let failure = TextArguments.invalidArgumentBytes(value) {
                            throw ModelError(.badInput, file: "<input>", "\(place == "the text" ? what : place), byte \(failure.offset + 1): expected UTF-8 text, found \(failure.hex); \(failure.hint)")
                        }
                    }
                    return Pending(line: i + 1, text: text, pair: pair,
                                   encoding: try model.encode(text, pair: pair, place: place))
                }
                for start in stride(from: 0, to: inputs.count, by: batch) {
                    try emit(Array(inputs[start..<min(start + batch, inputs.count)]), model)
                }
                return
            }
            var failed: [Int] = [], count = 0, pending: [Pending] = []
            var reader = StdinLines()
            while let bytes = try reader.next() {
                count += 1
                if count == 1, let encoding = UTF8Validation.utf16(bytes) {
                    throw ModelError(.badInput, file: "<stdin>", UTF8Validation.utf16Message("stdin", encoding: encoding))
                }
                var input = Pending(line: count, text: "")
                do {
                    let line = try TextArguments.decode(bytes, line: count)
                    let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                    guard fields.count <= 2 else {
                        throw ModelError(.badInput, file: "<input>", "stdin line \(count): expected text or text<TAB>pair, found \(fields.count) TAB-separated fields")
                    }
                    input.text = fields[0]
                    input.pair = fields.count == 2 ? fields[1] : nil
                    input.encoding = try model.encode(input.text, pair: input.pair, place: "stdin line \(count)")
                } catch let error as ModelError where error.file == "<input>" {
                    input.error = error
                    failed.append(count)
                }
                pending.append(input)
                if pending.filter({ $0.encoding != nil }).count == batch {
                    try emit(pending, model)
                    pending.removeAll()
                }
            }
            try emit(pending, model)
            if !failed.isEmpty {
                let listed = failed.prefix(20).map(String.init).joined(separator: ", ") + (failed.count > 20 ? ", …" : "")
                ToolErrors.fail("hd-infer", "<stdin>: \(failed.count) of \(count) lines failed (line\(failed.count == 1 ? "" : "s") \(listed), reported in place); the others ran")
            }
        }
    }

    /// Runs the encoded inputs of `inputs` as one batch, then prints every input's result (or error) in order.
    private func emit(_ inputs: [Pending], _ model: ClassifierModel) throws {
        let encodings = inputs.compactMap(\.encoding)
        let output = encodings.isEmpty ? nil : try model.run(encodings)
        var b = 0
        for input in inputs {
            guard let output, input.encoding != nil else {
                if let error = input.error {
                    if json {
                        try JSONOutput.print(TextArguments.LineError(line: input.line, error: error.message), pretty: false)
                    } else {
                        FileHandle.standardError.write(Data("hd-infer: error: \(error.description)\n".utf8))
                    }
                }
                continue
            }
            let probabilities = Array(output.probabilities(b)), best = output.predicted(b)
            let result = Result(text: input.text, pair: input.pair, label: model.labels[best], probabilities: probabilities,
                                logits: Array(output.logits(b)), labels: model.labels, precision: model.precision.rawValue)
            b += 1
            if json {
                try JSONOutput.print(result, pretty: false)
                continue
            }
            print("\(input.text)\(input.pair.map { " [SEP] \($0)" } ?? "")  (\(model.precision.rawValue))")
            if model.isRegression {
                print("    \(model.labels[0]) = \(String(format: "%.4f", probabilities[0]))")
                continue
            }
            let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }
            let width = max(16, model.labels.map(\.count).max() ?? 0)
            for id in ranked.prefix(top) {
                print("    \(model.labels[id].padding(toLength: width, withPad: " ", startingAt: 0)) p=\(String(format: "%.4f", probabilities[id]))")
            }
        }
    }
}
