import ArgumentParser
import Foundation
import HDCommandLine
import HDModel
import HDRuntime
import HDTokenizer

/// What `tokenize`, `fill-mask` and `embed` share: MODEL and TEXT arguments, the loaded model with
/// its tokenizer, and reading TEXT (`-`: one input per line from stdin).
struct TextArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("Checkpoint (.safetensors, .npz, student .ckpt) or Hugging Face directory.", valueName: "model"))
    var model: String

    @Argument(help: ArgumentHelp("The input text, or - to read one input per line from stdin (one result per line; a bad line is reported in its place and the others still run, exit 65 at the end).", valueName: "text"))
    var text: String

    @Flag(name: .long, help: "Cut inputs longer than the position table instead of refusing them.")
    var truncate = false

    @Flag(name: .long, help: "Keep case and accents whatever the checkpoint records (the default is the checkpoint's casing: do_lower_case, else its vocabulary).")
    var cased = false

    @Flag(name: .long, help: "Print JSON: one object per input on one line (with -, a bad line gives {\"line\": n, \"error\": …}); plain text otherwise.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Arithmetic of the encoder's dense layers: fp32, bf16 or int8 (see `hd-infer bench --help`).", valueName: "precision"))
    var precision: Precision = .fp32

    @OptionGroup var load: LoadFlags
    @OptionGroup var threads: ThreadsFlag

    func validate() throws {
        if let reason = precision.unsupportedReason(kernel: .best) { throw ValidationError("--precision \(precision.rawValue): \(reason)") }
    }
}

/// A checkpoint ready to run on text: tokenizer from its vocabulary, the lean runtime for the forward.
struct TextModel {
    let checkpoint: Checkpoint
    let tokenizer: BertTokenizer
    let session: InferenceSession
    let truncate: Bool

    init(_ args: TextArguments) throws {
        let checkpoint = try Checkpoint.load(args.model, options: args.load.options(threads: args.threads.threads))
        let runtime = try RuntimeModel(model: try BertModel(checkpoint: checkpoint), precision: args.precision)
        try self.init(checkpoint: checkpoint, runtime: runtime, cased: args.cased, truncate: args.truncate, maxBatch: 1,
                      threads: args.threads.resolved)
    }

    /// `runtime` (built from `checkpoint`) with a session for up to `maxBatch` sequences as long as
    /// the position table.
    init(checkpoint: Checkpoint, runtime: RuntimeModel, cased: Bool, truncate: Bool, maxBatch: Int, threads: Int) throws {
        guard let vocab = checkpoint.vocab else {
            throw ModelError(.badVocab, file: checkpoint.source, "the checkpoint carries no vocabulary and there is no vocab.txt beside it; pass --vocab")
        }
        self.checkpoint = checkpoint
        tokenizer = try BertTokenizer(vocabulary: Vocabulary(tokens: vocab, source: checkpoint.source), lowercase: cased ? false : checkpoint.lowercase)
        session = try InferenceSession(model: runtime, maxBatch: maxBatch, maxLength: checkpoint.config.maxPositionEmbeddings,
                                       threads: threads)
        self.truncate = truncate
    }

    /// `[CLS] text [SEP]` ids, refusing empty text and (unless --truncate) text over the position
    /// table; `place` names the input in messages ("stdin line 3", "the text").
    func encode(_ text: String, place: String) throws -> [Int] {
        let limit = checkpoint.config.maxPositionEmbeddings
        guard !text.allSatisfy(\.isWhitespace) else {
            throw ModelError(.badInput, file: "<input>", "\(place) is empty; expected some text")
        }
        let full = try tokenizer.encode(text, pair: nil)
        if full.ids.count <= limit { return full.ids }
        guard truncate else {
            throw ModelError(.badInput, file: "<input>", "\(place) is \(full.ids.count) tokens with [CLS]/[SEP], longer than the model's \(limit) positions; pass --truncate to cut it")
        }
        return try tokenizer.encode(text, pair: nil, maxLength: limit, truncation: true).ids
    }

    /// Runs the encoder on one sequence.
    func run(_ ids: [Int]) throws {
        try session.forward(TokenBatch(ids: [ids]))
    }
}
