import ArgumentParser
import Foundation
import HDCommandLine
import HDModel
import HDRuntime
import HDTasks
import HDTokenizer

/// What `classify` and `evaluate` share: how inputs are cut and batched, the encoder's precision,
/// casing, loading and threads.
struct ClassifierFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Tokens per input at most, [CLS] and [SEP]s included; longer inputs are cut as transformers' truncation=\"longest_first\" does (the longer text of a pair first). Default: the model's position table.", valueName: "n"))
    var seqLen: Int?

    @Option(name: .long, help: ArgumentHelp("Inputs per forward (default: 1 for classify, so each stdin line is answered as it arrives; 32 for evaluate). Each batch is padded to its longest input.", valueName: "n"))
    var batch: Int?

    @Option(name: .long, help: ArgumentHelp("Arithmetic of the encoder's dense layers: fp32, bf16 or int8 (see `hd-infer bench --help`). The pooler and classifier stay fp32.", valueName: "precision"))
    var precision: Precision = .fp32

    @Flag(name: .long, help: "Keep case and accents whatever the checkpoint records (the default is the checkpoint's casing).")
    var cased = false

    @OptionGroup var load: LoadFlags
    @OptionGroup var threads: ThreadsFlag

    func validate() throws {
        if let seqLen, seqLen < 5 {
            throw ValidationError("--seq-len must be at least 5 ([CLS] a [SEP] b [SEP]), found \(seqLen)")
        }
        if let batch, batch <= 0 { throw ValidationError("--batch must be positive, found \(batch)") }
        if let reason = precision.unsupportedReason(kernel: .best) { throw ValidationError("--precision \(precision.rawValue): \(reason)") }
    }
}

/// A sequence classifier ready to run on text: the checkpoint, the task encoder (`[CLS] a [SEP] b
/// [SEP]`, token types 0/1, longest-first truncation; HDTasks' `TaskEncoder`) and a runtime session
/// with the classifier head.
struct ClassifierModel {
    let checkpoint: Checkpoint
    let encoder: TaskEncoder
    let session: InferenceSession
    let labels: [String]
    let isRegression: Bool
    let precision: Precision

    init(_ path: String, flags: ClassifierFlags, batch: Int) throws {
        let checkpoint = try Checkpoint.load(path, options: flags.load.options(threads: flags.threads.threads))
        // Refused before the runtime packs its weights, which is the slow part of loading.
        try Self.requireClassifier(checkpoint)
        let runtime = try RuntimeModel(model: try BertModel(checkpoint: checkpoint), precision: flags.precision)
        try self.init(checkpoint: checkpoint, runtime: runtime, seqLen: flags.seqLen, batch: batch, cased: flags.cased,
                      threads: flags.threads.resolved)
    }

    /// `runtime` (built from `checkpoint`) with a session for `batch` inputs of up to `seqLen` tokens
    /// (nil: the position table).
    init(checkpoint: Checkpoint, runtime: RuntimeModel, seqLen: Int?, batch: Int, cased: Bool, threads: Int) throws {
        try Self.requireClassifier(checkpoint)
        guard let vocab = checkpoint.vocab else {
            throw ModelError(.badVocab, file: checkpoint.source, "the checkpoint carries no vocabulary and there is no vocab.txt beside it; pass --vocab")
        }
        let limit = checkpoint.config.maxPositionEmbeddings, seqLen = seqLen ?? limit
        guard seqLen <= limit else {
            throw ModelError(.badInput, file: checkpoint.source, field: "max_position_embeddings",
                "--seq-len \(seqLen): expected at most the model's \(limit) positions (max_position_embeddings); pass --seq-len \(limit) or less")
        }
        let tokenizer = try BertTokenizer(vocabulary: Vocabulary(tokens: vocab, source: checkpoint.source),
                                          lowercase: cased ? false : checkpoint.lowercase)
        self.checkpoint = checkpoint
        encoder = try TaskEncoder(tokenizer: tokenizer, maxLength: seqLen)
        session = try InferenceSession(model: runtime, maxBatch: batch, maxLength: seqLen, threads: threads)
        labels = checkpoint.config.id2label ?? []
        isRegression = checkpoint.config.isRegression
        precision = runtime.precision
    }

    /// Refuses a checkpoint without a sequence classifier, saying how to get one.
    static func requireClassifier(_ checkpoint: Checkpoint) throws {
        guard checkpoint.hasClassifier, checkpoint.config.id2label != nil else {
            throw ModelError(.unsupported, file: checkpoint.source, field: BertNames.classifierWeight,
                "expected a sequence classifier (\(BertNames.classifierWeight), \(BertNames.classifierBias) and labels in the config's id2label), found a model without one\(checkpoint.hasMLMHead ? " (it has an MLM head: try fill-mask)" : ""); fine-tune it first with hd-finetune, or convert a transformers BertForSequenceClassification with hd-convert")
        }
    }

    /// The metadata a fine-tuned checkpoint carries to say whether it was trained on pairs.
    static let pairsKey = Checkpoint.MetadataKey.taskPairs

    /// Why this model cannot take a text pair, or nil when it can: one token type only, or a
    /// fine-tuned checkpoint whose `hd.task.pairs` says it was trained on single texts.
    var pairRefusal: String? {
        if checkpoint.config.typeVocabSize < 2 {
            return "the model has one token type (type_vocab_size \(checkpoint.config.typeVocabSize)), so it cannot tell the two texts of a pair apart; give single texts"
        }
        if checkpoint.sourceMetadata[Self.pairsKey] == "false" {
            return "the model was fine-tuned on single texts (metadata \(Self.pairsKey) = \"false\": hd-finetune ran without --pair-column), so a pair means nothing to it; give single texts, or fine-tune with --pair-column"
        }
        return nil
    }

    /// The model input for one example; `place` names it in errors ("stdin line 3", "the text").
    /// Empty text is refused; a pair on a model that cannot take one too (see `pairRefusal`).
    /// Errors are `ModelError`s about `<input>`, which a stdin loop reports in place.
    func encode(_ text: String, pair: String?, place: String) throws -> Encoding {
        guard !text.allSatisfy(\.isWhitespace) else {
            throw ModelError(.badInput, file: "<input>", "\(place): the text is empty; expected some text")
        }
        if let pair {
            guard !pair.allSatisfy(\.isWhitespace) else {
                throw ModelError(.badInput, file: "<input>", "\(place): the pair's second text is empty; expected some text")
            }
            if let why = pairRefusal { throw ModelError(.badInput, file: "<input>", "\(place): a text pair, but \(why)") }
        }
        do {
            return try encoder.encode(text, pair: pair)
        } catch let error as TaskError {
            throw ModelError(.badInput, file: "<input>", "\(place): \(error.message)")
        }
    }

    /// Runs a batch (at most the session's `maxBatch`), padded to its longest input.
    func run(_ encodings: [Encoding]) throws -> ClassifierOutput {
        try session.forward(encoder.batch(encodings))
        return try session.classify()
    }

    /// Every example run in batches of the session's size: each one's predicted label id, or for a
    /// regression head its value. An example that cannot be encoded is refused naming `file`, its
    /// line and `column`.
    func predict(_ examples: [Example], file: String, column: String) throws -> (labels: [Int], values: [Float]) {
        let name = URL(fileURLWithPath: file).lastPathComponent
        var predicted: [Int] = [], values: [Float] = []
        predicted.reserveCapacity(examples.count)
        for first in stride(from: 0, to: examples.count, by: session.maxBatch) {
            let chunk = examples[first..<min(first + session.maxBatch, examples.count)]
            let encodings = try chunk.map { example in
                do {
                    return try encode(example.text, pair: example.pair, place: "\(name):\(example.line)")
                } catch let error as ModelError {
                    throw ModelError(.badInput, file: file, field: column, error.message)
                }
            }
            let output = try run(encodings)
            for b in 0..<encodings.count {
                if isRegression { values.append(output.logits(b)[0]) } else { predicted.append(output.predicted(b)) }
            }
        }
        return (predicted, values)
    }
}
