import ArgumentParser
import Foundation
import HDCommandLine
import HDDistill
import HDExport
import HDModel
import HDRuntime
import HDTokenizer

/// What `tokenize`, `fill-mask` and `embed` share: MODEL and TEXT arguments, the loaded model with
/// its tokenizer, and reading TEXT (`-`: one input per line from stdin).
struct TextArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("Checkpoint (.safetensors, .npz, student .ckpt) or Hugging Face directory.", valueName: "model"))
    var model: String

    @Argument(help: ArgumentHelp("The input text, or - to read one input per line from stdin (one JSON object per line out).", valueName: "text"))
    var text: String

    @Flag(name: .long, help: "Cut inputs longer than the position table instead of refusing them.")
    var truncate = false

    @Flag(name: .long, help: "Keep case and accents (for cased checkpoints; the default is uncased like bert-base-uncased).")
    var cased = false

    @Flag(name: .long, help: "Print JSON: one object per input.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Arithmetic of the encoder's dense layers: fp32, bf16 or int8 (see `hd-infer bench --help`).", valueName: "precision"))
    var precision: Precision = .fp32

    @OptionGroup var load: LoadFlags
    @OptionGroup var threads: ThreadsFlag

    func validate() throws {
        if let reason = precision.unsupportedReason(kernel: .best) { throw ValidationError("--precision \(precision.rawValue): \(reason)") }
    }

    /// Each input with its 1-based line number (1 for a TEXT argument). Empty inputs are refused.
    func inputs() -> [(line: Int, text: String)] {
        if text != "-" { return [(1, text)] }
        var lines: [(Int, String)] = []
        var n = 0
        while let line = readLine(strippingNewline: true) {
            n += 1
            lines.append((n, line))
        }
        return lines
    }
}

/// A checkpoint ready to run on text: tokenizer from its vocabulary, the lean runtime for the forward.
struct TextModel {
    let checkpoint: Checkpoint
    let tokenizer: BertTokenizer
    let session: InferenceSession
    let truncate: Bool

    init(_ args: TextArguments) throws {
        checkpoint = try denseCheckpoint(args.model, options: args.load.options(threads: args.threads.threads))
        guard let vocab = checkpoint.vocab else {
            throw ModelError(.badVocab, file: checkpoint.source, "the checkpoint carries no vocabulary and there is no vocab.txt beside it; pass --vocab")
        }
        tokenizer = try BertTokenizer(vocabulary: Vocabulary(tokens: vocab, source: checkpoint.source), lowercase: !args.cased)
        let model = try RuntimeModel(model: try BertModel(checkpoint: checkpoint), precision: args.precision)
        session = try InferenceSession(model: model, maxBatch: 1, maxLength: checkpoint.config.maxPositionEmbeddings,
                                       threads: args.threads.resolved)
        truncate = args.truncate
    }

    /// `[CLS] text [SEP]` ids, refusing empty text and (unless --truncate) text over the position table.
    func encode(_ text: String, line: Int, source: String) throws -> [Int] {
        let limit = checkpoint.config.maxPositionEmbeddings
        let where_ = source == "-" ? "stdin line \(line)" : "the text"
        guard !text.allSatisfy(\.isWhitespace) else {
            throw ModelError(.badInput, file: "<input>", "\(where_) is empty; expected some text")
        }
        let full = try tokenizer.encode(text, pair: nil)
        if full.ids.count <= limit { return full.ids }
        guard truncate else {
            throw ModelError(.badInput, file: "<input>", "\(where_) is \(full.ids.count) tokens with [CLS]/[SEP], longer than the model's \(limit) positions; pass --truncate to cut it")
        }
        return try tokenizer.encode(text, pair: nil, maxLength: limit, truncation: true).ids
    }

    /// Runs the encoder on one sequence.
    func run(_ ids: [Int]) throws {
        try session.forward(TokenBatch(ids: [ids]))
    }
}

/// MODEL as a dense checkpoint. A student.ckpt runs as the dense model it equals: its masks applied
/// and its pruned rows and columns removed in memory, as `hd-export --shrink` would write it (its
/// load flags do not apply: the checkpoint embeds its config and vocabulary). Anything else loads
/// as `Checkpoint.load` reads it.
func denseCheckpoint(_ path: String, options: LoadOptions) throws -> Checkpoint {
    guard try MaskedStudent.isStudent(path: path) else { return try Checkpoint.load(path, options: options) }
    do {
        let student = try MaskedStudent(path: path)
        return try student.checkpoint(of: try student.denseModel(), source: path)
    } catch let error as DistillError {
        // The student's own checks (metadata, masks) are bad input like a malformed model file.
        throw ModelError(.badInput, file: error.file, error.message)
    }
}
