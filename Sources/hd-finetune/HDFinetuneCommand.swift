import ArgumentParser
import Foundation
import HDCommandLine
import HDFinetune
import HDFormats
import HDModel
import HDTasks
import HDTensor
import HDTokenizer
import HDTraining

@main
struct HDFinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hd-finetune",
        abstract: "Fine-tune any BERT (a teacher, a student.ckpt, an exported student) as a sequence classifier on a labelled file.",
        discussion: """
        The model becomes transformers' BertForSequenceClassification: its pooler (BERT's initialisation \
        when it has none), dropout, and a linear classifier over the labels (sorted: numerically when \
        every label is an integer); the MLM head, if any, is left out. Data: TSV, CSV or JSON Lines with \
        a header; --pair-column for sentence pairs ([CLS] a [SEP] b [SEP], longest-first truncation at \
        --seq-len). Without --dev, --dev-fraction of --train is held out, stratified by label, from \
        --split-seed (tools/task_split.py reproduces it). Dev accuracy, macro-F1 and loss after every \
        epoch; the best epoch's weights (accuracy; loss for --regression) are written to OUT, a \
        safetensors model every hd-* tool reads, with the labels in its config.

        Exit status: 0 ok, 64 bad usage, 65 bad input data (the message names file:line and column) or a non-finite loss, 1 other.
        """)

    @Argument(help: ArgumentHelp("Model to fine-tune (any format the loader reads, a student.ckpt included).", valueName: "model"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("Labelled training file (.tsv, .csv, .jsonl) with a header.", valueName: "file"))
    var train: String

    @Option(name: .long, help: ArgumentHelp("Labelled dev file; without it, --dev-fraction of --train.", valueName: "file"))
    var dev: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Classifier to write (safetensors).", valueName: "out.ckpt"))
    var output: String

    @Option(name: .customLong("text-column")) var textColumn = "text"
    @Option(name: .customLong("pair-column"), help: "Second text of a sentence pair (token type 1).") var pairColumn: String?
    @Option(name: .customLong("label-column")) var labelColumn = "label"
    @Option(name: .customLong("dev-fraction")) var devFraction = 0.1
    @Option(name: .customLong("split-seed")) var splitSeed: UInt64 = 0
    @Option(name: .long) var epochs = 3
    @Option(name: .long) var batch = 32
    @Option(name: .long, help: "Peak learning rate.") var lr: Float = 5e-5
    @Option(name: .customLong("warmup-ratio"), help: "Warm-up steps as a share of all steps (rounded up).") var warmupRatio: Float = 0.1
    @Option(name: .customLong("weight-decay")) var weightDecay: Float = 0.01
    @Option(name: .customLong("clip-norm"), help: "Global gradient-norm cap (0: none).") var clipNorm: Float = 1
    @Option(name: .customLong("seq-len"), help: "Longest sequence, special tokens included; batches pad to their longest.") var seqLen = 128
    @Option(name: .long, help: "Dropout probability (embeddings, attention, residual branches, classifier input).") var dropout: Float = 0.1
    @Option(name: .long, help: "Seeds the head's initialisation, the batch order and the dropout masks.") var seed: UInt64 = 0
    @Flag(name: .long, help: "One numeric label column, one output, MSE.") var regression = false
    @Option(name: .long, help: ArgumentHelp("JSON Lines log, one object per step and evaluation.", valueName: "file")) var log: String?
    @Flag(name: .long, help: "Print the run's summary as JSON on stdout.") var json = false
    @Option(name: .long, help: ArgumentHelp(
        "Precision of the encoder's matrix products: fp32, or bf16 on AMX tiles (operands rounded to bfloat16; sums, weights, gradients and AdamW in fp32; Intel Xeon 4th generation or later).",
        valueName: "fp32|bf16")) var matmul: GEMMPrecision = .fp32
    @OptionGroup var load: LoadFlags
    @OptionGroup var threadsFlag: ThreadsFlag

    func validate() throws {
        if let reason = matmul.unsupportedReason() { throw ValidationError("--matmul \(matmul.rawValue): \(reason); use --matmul fp32") }
        if dev == nil, !(devFraction > 0 && devFraction < 1) {
            throw ValidationError("--dev-fraction must be in (0, 1), found \(devFraction)")
        }
        if seqLen < 5 { throw ValidationError("--seq-len must be ≥ 5 ([CLS] a [SEP] b [SEP]), found \(seqLen)") }
    }

    func run() throws {
        try ToolErrors.reporting("hd-finetune", json: json) {
            try OutputPath.checkFile(output, inputs: [model, train] + [dev, load.config, load.vocab, log].compactMap { $0 })
            try fineTune()
        }
    }

    private func fineTune() throws {
        let threads = threadsFlag.resolved
        let checkpoint = try Checkpoint.load(model, options: load.options(threads: threads))
        guard let vocab = checkpoint.vocab else {
            throw FinetuneError(.badModel, file: model, "no vocabulary embedded or beside the model; pass --vocab vocab.txt")
        }
        if pairColumn != nil {
            if checkpoint.sourceMetadata[Checkpoint.MetadataKey.taskPairs] == "false" {
                throw FinetuneError(.badModel, file: model, field: "--pair-column",
                    "--pair-column: this model was fine-tuned on single texts (\(Checkpoint.MetadataKey.taskPairs) false); drop the flag or start from its encoder")
            }
            if checkpoint.config.typeVocabSize < 2 {
                throw FinetuneError(.badModel, file: model, field: "--pair-column",
                    "--pair-column: the model has \(checkpoint.config.typeVocabSize) token type, so it cannot tell a pair's two texts apart")
            }
        }
        let tokenizer = try BertTokenizer(vocabulary: Vocabulary(tokens: vocab, source: model), lowercase: checkpoint.lowercase)
        let encoder = try TaskEncoder(tokenizer: tokenizer, maxLength: min(seqLen, checkpoint.config.maxPositionEmbeddings))
        let columns = TaskColumns(text: textColumn, pair: pairColumn, label: labelColumn)
        let (trainSet, devSet, labels) = try readData(columns: columns, encoder: encoder)

        let base = try BertModel(checkpoint: checkpoint)
        let made = try ClassifierModel.make(from: base, labels: labels, regression: regression, seed: seed)
        var options = FinetuneOptions()
        (options.epochs, options.batchSize, options.learningRate, options.warmupRatio) = (epochs, batch, lr, warmupRatio)
        (options.weightDecay, options.clipNorm, options.dropout, options.seed) = (weightDecay, clipNorm, dropout, seed)
        (options.threads, options.regression, options.matmul) = (threads, regression, matmul)
        let trainer = try ClassifierTrainer(model: made.model, options: options, trainCount: trainSet.count,
                                            maxSequenceLength: encoder.maxLength)
        let say = { (line: String) in FileHandle.standardError.write(Data("hd-finetune: \(line)\n".utf8)) }
        for note in checkpoint.notes + made.notes { say(note) }
        say("\(trainSet.count) training / \(devSet.count) dev examples, \(labels.count) labels, \(trainer.totalSteps) steps")

        let logFile = try log.map { try TrainingLog(path: $0, append: false) }
        let progress = FinetuneProgress(total: trainer.totalSteps)
        var epochsRun: [EpochResult] = [], best: (result: EpochResult, weights: [Float])?
        var trainSeconds = 0.0, examples = 0
        for epoch in 1...epochs {
            for indices in trainer.epochOrder(count: trainSet.count) {
                let batch = try trainSet.batch(indices)
                let started = ContinuousClock.now
                let step = try trainer.trainStep(batch, epoch: epoch)
                let seconds = (ContinuousClock.now - started).seconds
                trainSeconds += seconds
                examples += step.examples
                try logFile?.write(["kind": .text("train"), "step": .int(step.step), "epoch": .int(epoch), "loss": .number(step.loss),
                                    "lr": .number(Double(step.learningRate)), "grad_norm": .number(step.gradientNorm),
                                    "step_seconds": .number(seconds)])
                progress.update(step, examplesPerSecond: Double(examples) / max(trainSeconds, 1e-9))
            }
            let result = try evaluate(trainer, devSet, epoch: epoch, labels: labels)
            epochsRun.append(result)
            try logFile?.write(result.logRecord)
            progress.report(result)
            let better = best.map { regression ? result.loss < $0.result.loss : result.accuracy! > $0.result.accuracy! } ?? true
            if better { best = (result, trainer.snapshot()) }
        }
        guard let best else { return }
        trainer.restore(best.weights)
        try write(trainer.model, checkpoint: checkpoint, best: best.result)
        let summary = Summary(output: output, labels: labels, bestEpoch: best.result.epoch, epochs: epochsRun,
                              trainExamples: trainSet.count, devExamples: devSet.count, steps: trainer.step,
                              trainSeconds: trainSeconds, examplesPerSecond: Double(examples) / max(trainSeconds, 1e-9),
                              threads: threads, parameters: ModelSize(trainer.model).parameters)
        try logFile?.write(["kind": .text("summary"), "best_epoch": .int(summary.bestEpoch), "train_seconds": .number(trainSeconds),
                            "examples_per_second": .number(summary.examplesPerSecond), "threads": .int(threads)])
        say(String(format: "best epoch %d of %d%@; %.1f examples/s; wrote %@", best.result.epoch, epochs,
                   best.result.accuracy.map { String(format: " (dev accuracy %.4f)", $0) } ?? String(format: " (dev loss %.4f)", best.result.loss),
                   summary.examplesPerSecond, output))
        if json { try JSONOutput.print(summary) }
    }

    /// Training and dev examples (dev read from --dev or split off --train) and the label names.
    private func readData(columns: TaskColumns, encoder: TaskEncoder) throws -> (TaskExamples, TaskExamples, [String]) {
        let trainFile = try TaskFile(contentsOfFile: train, columns: columns)
        let labelSet = regression ? nil : try LabelSet(examples: trainFile.examples, file: train, column: labelColumn)
        let labels = labelSet?.id2label ?? [labelColumn]
        if let dev {
            let devFile = try TaskFile(contentsOfFile: dev, columns: columns)
            return (try TaskExamples(trainFile.examples, encoder: encoder, labelSet: labelSet, file: train, trainFile: nil, column: labelColumn),
                    try TaskExamples(devFile.examples, encoder: encoder, labelSet: labelSet, file: dev, trainFile: train, column: labelColumn),
                    labels)
        }
        // Stratified by class (regression: one stratum).
        let classes = try labelSet?.ids(of: trainFile.examples, file: train, column: labelColumn)
            ?? [Int](repeating: 0, count: trainFile.examples.count)
        let (trainIndices, devIndices) = try StratifiedSplit.split(classes: classes, fraction: devFraction, seed: splitSeed)
        return (try TaskExamples(trainIndices.map { trainFile.examples[$0] }, encoder: encoder, labelSet: labelSet, file: train,
                                 trainFile: nil, column: labelColumn),
                try TaskExamples(devIndices.map { trainFile.examples[$0] }, encoder: encoder, labelSet: labelSet, file: train,
                                 trainFile: nil, column: labelColumn),
                labels)
    }

    private func evaluate(_ trainer: ClassifierTrainer, _ devSet: TaskExamples, epoch: Int, labels: [String]) throws -> EpochResult {
        let e = try trainer.evaluate(devSet)
        guard !regression else { return EpochResult(epoch: epoch, loss: e.loss, accuracy: nil, macroF1: nil) }
        let metrics = try ClassificationMetrics(predicted: e.predictions, gold: devSet.labels.map(Int.init), classCount: labels.count)
        return EpochResult(epoch: epoch, loss: e.loss, accuracy: metrics.accuracy, macroF1: metrics.macroF1)
    }

    /// The classifier as a canonical safetensors model, with what it was trained on in the metadata.
    private func write(_ trained: BertModel, checkpoint: Checkpoint, best: EpochResult) throws {
        let out = Checkpoint(config: trained.config, tensors: try BertParameters.tensorSet(sharing: trained), vocab: checkpoint.vocab,
                             lowercase: checkpoint.lowercase, source: model, kind: .safetensors, scheme: checkpoint.scheme,
                             configSource: "hd-finetune")
        var set = out.canonicalTensorSet(sourceDigest: try FileDigest.sha256(path: try Checkpoint.resolveModelFile(model).model))
        let task: [String: String] = [
            Checkpoint.MetadataKey.taskPairs: String(pairColumn != nil),
            "hd.task.text_column": textColumn, "hd.task.label_column": labelColumn, "hd.task.pair_column": pairColumn ?? "",
            "hd.task.seq_len": String(seqLen), "hd.task.best_epoch": String(best.epoch),
            "hd.task.train": (train as NSString).lastPathComponent,
        ]
        set = TensorSet(tensors: set.tensors, metadata: set.metadata.merging(task) { _, new in new })
        try SafeTensors.write(set, to: output)
    }
}

/// One epoch's dev figures.
struct EpochResult: Encodable {
    var epoch: Int
    var loss: Double
    var accuracy: Double?
    var macroF1: Double?

    enum CodingKeys: String, CodingKey {
        case epoch, loss, accuracy
        case macroF1 = "macro_f1"
    }

    var logRecord: [String: LogValue] {
        var r: [String: LogValue] = ["kind": .text("eval"), "epoch": .int(epoch), "loss": .number(loss)]
        if let accuracy { r["accuracy"] = .number(accuracy) }
        if let macroF1 { r["macro_f1"] = .number(macroF1) }
        return r
    }
}

/// `--json`'s summary.
struct Summary: Encodable {
    var output: String
    var labels: [String]
    var bestEpoch: Int
    var epochs: [EpochResult]
    var trainExamples, devExamples, steps: Int
    var trainSeconds, examplesPerSecond: Double
    var threads: Int
    var parameters: Int

    enum CodingKeys: String, CodingKey {
        case output, labels, epochs, steps, threads, parameters
        case bestEpoch = "best_epoch"
        case trainExamples = "train_examples"
        case devExamples = "dev_examples"
        case trainSeconds = "train_seconds"
        case examplesPerSecond = "examples_per_second"
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

extension GEMMPrecision: ExpressibleByArgument {}
