import ArgumentParser
import Foundation
import HDCommandLine
import HDDistill
import HDExport
import HDFormats
import HDModel
import HDTensor
import HDTokenizer

@main
struct HDDistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hd-distill",
        abstract: "Train a student BERT from a teacher on text: masked-LM plus distillation (MLM logits, hidden states, attention, embeddings).",
        discussion: """
        The student starts as a copy of TEACHER (--init random: BERT's initialisation instead). Loss: \
        α_mlm·MLM + α_kl·KL + α_hidden·Σ hidden MSE + α_attention·Σ attention MSE + α_embedding·embedding MSE; \
        --no-distill-layers keeps MLM + KL. With --mlm-only there is no teacher: TEACHER's weights are \
        trained on masked-LM alone (to warm up a teacher). The checkpoint (-o) is rewritten atomically every \
        --save-every steps and at the end; --resume continues such a checkpoint exactly.

        Exit status: 0 ok, 64 bad usage, 65 bad input data or a non-finite loss (the message names the step and term), 1 other.
        """)

    @Argument(help: ArgumentHelp("Teacher checkpoint (any format hd-convert reads).", valueName: "teacher"))
    var teacher: String

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Text files (paragraphs by blank lines or one per line).", valueName: "file"))
    var corpus: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Student checkpoint to write.", valueName: "student.ckpt"))
    var output: String

    @Option(name: .long, help: ArgumentHelp("Continue this checkpoint (same recipe, teacher and corpus).", valueName: "student.ckpt"))
    var resume: String?

    @Option(name: .long) var steps = 200
    @Option(name: .long, help: "Sequences per micro-batch.") var batch = 8
    @Option(name: .long, help: "Micro-batches per optimiser step.") var accumulate = 1
    @Option(name: .customLong("seq-len")) var seqLen = 128
    @Option(name: .long, help: "Peak learning rate.") var lr: Float = 5e-4
    @Option(name: .long, help: "Warm-up steps (linear), then linear decay to 0.") var warmup = 0
    @Option(name: .customLong("weight-decay")) var weightDecay: Float = 0.01
    @Option(name: .customLong("clip-norm"), help: "Global gradient-norm cap (0: none).") var clipNorm: Float = 1
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .customLong("alpha-mlm")) var alphaMLM: Float = 1
    @Option(name: .customLong("alpha-kl")) var alphaKL: Float = 1
    @Option(name: .customLong("alpha-hidden"), help: "Weight of Σ_k MSE(H_s^k, H_t^k W_h^k) over the layers' outputs.") var alphaHidden: Float = 1
    @Option(name: .customLong("alpha-attention"), help: "Weight of Σ_k MSE(A_s^k, A_t^k) over the attention probabilities.") var alphaAttention: Float = 1
    @Option(name: .customLong("alpha-embedding"), help: "Weight of MSE(E_s, E_t W_e) on the embeddings' output.") var alphaEmbedding: Float = 1
    @Flag(name: .customLong("no-distill-layers"), help: "KL + MLM only: no hidden, attention or embedding term.") var noDistillLayers = false
    @Option(name: .customLong("init"), help: "Student's starting weights: copy (of TEACHER) or random (BERT init N(0, 0.02) from --seed).")
    var initialization: StudentInitialization = .copy
    @Option(name: .long, help: "Softmax temperature τ of the KL term (scaled by τ²).") var temperature: Float = 1
    @Flag(name: .customLong("mlm-only"), help: "No teacher: masked-LM training of TEACHER's weights.") var mlmOnly = false
    @Option(name: .customLong("held-out-every"), help: "Hold out paragraph i when hash(i) % k == 0 (0: none).") var heldOutEvery = 20
    @Option(name: .customLong("eval-every"), help: "Evaluate on the held-out split every N steps (0: only at the end).") var evalEvery = 50
    @Option(name: .customLong("eval-sequences")) var evalSequences = 64
    @Option(name: .customLong("save-every"), help: "Write the checkpoint every N steps (0: only at the end).") var saveEvery = 100
    @Option(name: .long, help: ArgumentHelp("JSON Lines log, one object per step and evaluation.", valueName: "file")) var log: String?
    @OptionGroup var load: LoadFlags
    @OptionGroup var threadsFlag: ThreadsFlag
    @OptionGroup(title: "Pruning") var pruning: PruningFlags

    func validate() throws {
        if corpus.isEmpty { throw ValidationError("--corpus needs at least one text file") }
        if mlmOnly && pruning.prunes { throw ValidationError("pruning needs TEACHER as a teacher; it cannot go with --mlm-only") }
        if let end = pruning.pruneEnd, end > steps, pruning.schedule == .cubic {
            throw ValidationError("--prune-end must be ≤ --steps (\(steps)) so the target is reached, found \(end)")
        }
        if mlmOnly && initialization == .random { throw ValidationError("--init random needs a teacher; it cannot go with --mlm-only") }
        for (name, value) in [("--alpha-mlm", alphaMLM), ("--alpha-kl", alphaKL), ("--alpha-hidden", alphaHidden),
                              ("--alpha-attention", alphaAttention), ("--alpha-embedding", alphaEmbedding)]
            where !(value >= 0 && value.isFinite) {
            throw ValidationError("\(name) must be a finite number ≥ 0, found \(value)")
        }
        if !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a finite number > 0, found \(lr)") }
        if !(temperature > 0 && temperature.isFinite) { throw ValidationError("--temperature must be a finite number > 0, found \(temperature)") }
        for (name, value) in [("--steps", steps), ("--batch", batch), ("--accumulate", accumulate), ("--seq-len", seqLen),
                              ("--eval-sequences", evalSequences)] where value < 1 {
            throw ValidationError("\(name) must be ≥ 1, found \(value)")
        }
        if warmup < 0 || warmup >= steps { throw ValidationError("--warmup must be in 0..<--steps (\(steps)), found \(warmup)") }
        for (name, value) in [("--eval-every", evalEvery), ("--save-every", saveEvery), ("--held-out-every", heldOutEvery)] where value < 0 {
            throw ValidationError("\(name) must be ≥ 0, found \(value)")
        }
    }

    func run() throws {
        do {
            try ToolErrors.reporting("hd-distill") {
                try OutputPath.checkFile(output, inputs: [teacher] + corpus + [load.config, load.vocab].compactMap { $0 })
                try train()
            }
        } catch let error as DistillError {
            ToolErrors.fail("hd-distill", error.description)
        }
    }

    /// TEACHER as a checkpoint. A student.ckpt teaches as the dense model it equals (its masks
    /// applied, pruned rows and columns removed, as `hd-export --shrink` writes it), so a pruned
    /// student can be distilled and pruned further without exporting it first; its config and
    /// vocabulary are its own, so the load flags do not apply to it.
    private func teacherCheckpoint() throws -> Checkpoint {
        guard try MaskedStudent.isStudent(path: teacher) else {
            return try Checkpoint.load(teacher, options: load.options(threads: threadsFlag.resolved))
        }
        let student = try MaskedStudent(path: teacher)
        return try student.checkpoint(of: try student.denseModel(), source: teacher)
    }

    private func train() throws {
        BLAS.setThreads(threadsFlag.resolved)
        let checkpoint = try teacherCheckpoint()
        guard let vocab = checkpoint.vocab else {
            throw DistillError(.invalidArgument, file: teacher, "teacher: no vocabulary embedded or beside it; pass --vocab vocab.txt")
        }
        guard vocab.count == checkpoint.config.vocabSize else {
            throw DistillError(.invalidArgument, file: load.vocab ?? teacher,
                "vocabulary: expected \(checkpoint.config.vocabSize) tokens (the teacher's vocab_size), found \(vocab.count)")
        }
        let tokenizer = try BertTokenizer(vocabulary: Vocabulary(tokens: vocab, source: teacher))
        let text = try Corpus(files: corpus, tokenizer: tokenizer,
                              options: CorpusOptions(sequenceLength: seqLen, heldOutEvery: heldOutEvery))
        if heldOutEvery > 0 && text.sequenceCount(.heldOut) == 0 {
            throw DistillError(.tooShort, file: corpus.joined(separator: ", "),
                "evaluation: the held-out split (every \(heldOutEvery)th paragraph) holds no full sequence of \(seqLen) tokens; "
                + "give more text, a smaller --held-out-every (more paragraphs held out), or --held-out-every 0 to train without evaluation")
        }
        let model = try BertModel(checkpoint: checkpoint)
        let student = initialization == .random ? try RandomInit.model(like: model, seed: seed) : model
        let sha = mlmOnly ? nil : try FileDigest.sha256(path: try Checkpoint.resolveModelFile(teacher).model)
        let layers: Float = mlmOnly || noDistillLayers ? 0 : 1
        var options = TrainerOptions(steps: steps, batchSize: batch, accumulate: accumulate, learningRate: lr,
                                     warmupSteps: warmup, weightDecay: weightDecay, clipNorm: clipNorm, seed: seed,
                                     alphaMLM: alphaMLM, alphaKL: mlmOnly ? 0 : alphaKL, alphaHidden: layers * alphaHidden,
                                     alphaAttention: layers * alphaAttention, alphaEmbedding: layers * alphaEmbedding,
                                     temperature: temperature, evalSequences: evalSequences, initialization: initialization)
        options.prune = try pruning.options(config: model.config, steps: steps)
        if pruning.recipe == .selfDistilled {
            // The unpruned TEACHER is only the cross-correlation's reference: no KL, no layer terms.
            (options.alphaKL, options.alphaHidden, options.alphaAttention, options.alphaEmbedding) = (0, 0, 0, 0)
            options.alphaCrossCorrelation = pruning.alphaCC
            options.crossCorrelationLambda = pruning.ccLambda
        }
        let trainer = try Trainer(student: student, teacher: mlmOnly ? nil : model, teacherSHA256: sha, vocab: vocab,
                                  corpus: text, options: options, resume: try resume.map { try StudentCheckpoint.read(path: $0) })
        let logFile = try log.map { try TrainingLog(path: $0, append: resume != nil) }
        let progress = Progress(total: steps, startStep: trainer.step)
        let evaluates = text.sequenceCount(.heldOut) > 0
        FileHandle.standardError.write(Data(("hd-distill: \(text.sequenceCount(.train)) training / \(text.sequenceCount(.heldOut)) held-out sequences of \(seqLen) "
            + "(\(text.train.count + text.heldOut.count) tokens), step \(trainer.step) of \(steps)"
            + (evaluates ? "" : "; no held-out split, so no evaluation") + "\n").utf8))
        // The starting point of the curves: a fresh run is evaluated once before its first step.
        if trainer.step == 0 && evaluates && evalEvery > 0 { try evaluate(trainer, logFile, progress) }
        var trainingSeconds = 0.0, trainedTokens = 0
        while !trainer.isFinished {
            let started = Date()
            let r = try trainer.trainStep()
            let stepSeconds = Date().timeIntervalSince(started)
            trainingSeconds += stepSeconds
            trainedTokens += r.tokens
            var record: [String: LogValue] = ["kind": .text("train"), "step": .int(r.step), "lr": .number(Double(r.learningRate)),
                                              "mlm": .number(r.mlm), "loss": .number(r.total), "grad_norm": .number(r.gradientNorm)]
            Self.add(kl: r.kl, layers: r.layers, to: &record)
            if let cc = r.crossCorrelation { record["cc"] = .number(cc) }
            record["step_seconds"] = .number(stepSeconds)
            if let seconds = r.pruneSeconds { record["prune_seconds"] = .number(seconds) }
            if let size = r.size {
                record["width_hidden"] = .int(size.hidden)
                record["width_ffn"] = .int(size.ffn)
                record["width_head"] = .int(size.headSize)
                record["parameters"] = .int(size.parameters)
                record["flops_per_sequence"] = .number(size.flopsPerSequence)
            }
            try logFile?.write(record)
            progress.update(r)
            if (evalEvery > 0 && r.step % evalEvery == 0) || trainer.isFinished, evaluates {
                try evaluate(trainer, logFile, progress)
            }
            if (saveEvery > 0 && r.step % saveEvery == 0) || trainer.isFinished {
                try trainer.checkpoint().write(to: output)
            }
        }
        progress.finish()
        // Training throughput counts the optimiser steps only (not loading, tokenising, evaluation or
        // checkpoints), so it compares with a peer's timed training loop.
        let rate = trainingSeconds > 0 ? Double(trainedTokens) / trainingSeconds : 0
        let peak = ProcessMemory.peakResidentMiB()
        try logFile?.write(["kind": .text("summary"), "step": .int(trainer.step), "tokens": .int(trainedTokens),
                            "train_seconds": .number(trainingSeconds), "tokens_per_second": .number(rate),
                            "peak_rss_mib": .number(peak), "threads": .int(threadsFlag.resolved)])
        FileHandle.standardError.write(Data(String(format: "hd-distill: done at step %d: %.0f training tokens/s over %d steps, peak RSS %.0f MiB\n",
                                                   trainer.step, rate, trainer.step - progress.startStep, peak).utf8))
    }

    private func evaluate(_ trainer: Trainer, _ logFile: TrainingLog?, _ progress: Progress) throws {
        let e = try trainer.evaluate()
        var eval: [String: LogValue] = ["kind": .text("eval"), "step": .int(e.step), "mlm": .number(e.mlm),
                                        "accuracy": .number(e.accuracy), "sequences": .int(e.sequences)]
        Self.add(kl: e.kl, layers: e.layers, to: &eval)
        try logFile?.write(eval)
        progress.report(e)
    }

    static func add(kl: Double?, layers: LayerTerms?, to record: inout [String: LogValue]) {
        if let kl { record["kl"] = .number(kl) }
        if let layers {
            record["hidden"] = .number(layers.hidden)
            record["attention"] = .number(layers.attention)
            record["embedding"] = .number(layers.embedding)
        }
    }
}

extension StudentInitialization: ExpressibleByArgument {}

/// One refreshed line on a terminal (step, losses, tokens/s, ETA); plain lines every 10 % otherwise.
final class Progress {
    let total: Int
    let startStep: Int
    let start = Date()
    let isTerminal = isatty(STDERR_FILENO) == 1
    var tokens = 0

    init(total: Int, startStep: Int) {
        self.total = total
        self.startStep = startStep
    }

    func update(_ r: StepReport) {
        tokens += r.tokens
        let elapsed = Date().timeIntervalSince(start)
        let done = r.step - startStep
        let eta = done > 0 ? elapsed / Double(done) * Double(total - r.step) : 0
        let line = String(format: "step %d/%d  mlm %.4f", r.step, total, r.mlm) + Self.terms(kl: r.kl, layers: r.layers)
            + (r.crossCorrelation.map { String(format: "  cc %.4f", $0) } ?? "")
            + (r.size.map { String(format: "  width %d/%d/%d  %.2fM params  %.2f GFLOP/seq", $0.hidden, $0.ffn, $0.headSize,
                                   Double($0.parameters) / 1e6, $0.flopsPerSequence / 1e9) } ?? "")
            + String(format: "  loss %.4f  |g| %.3f  lr %.2e  %.0f tok/s  ETA %.0fs",
                     r.total, r.gradientNorm, r.learningRate, Double(tokens) / max(elapsed, 1e-9), eta)
        if isTerminal {
            write("\r\u{1B}[K" + line)
        } else if r.step == total || r.step % max(1, total / 10) == 0 {
            write(line + "\n")
        }
    }

    func report(_ e: EvalReport) {
        write((isTerminal ? "\r\u{1B}[K" : "") + String(format: "eval step %d: held-out mlm %.4f  top-1 %.3f", e.step, e.mlm, e.accuracy)
              + Self.terms(kl: e.kl, layers: e.layers) + "  (\(e.sequences) sequences)\n")
    }

    /// " kl … hid … att … emb …" for the terms a run has (unweighted, as logged).
    static func terms(kl: Double?, layers: LayerTerms?) -> String {
        var out = kl.map { String(format: "  kl %.4f", $0) } ?? ""
        if let layers { out += String(format: "  hid %.4f  att %.2e  emb %.4f", layers.hidden, layers.attention, layers.embedding) }
        return out
    }

    func finish() { if isTerminal { write("\n") } }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
