import ArgumentParser
import Foundation
import HDCommandLine
import HDDistill
import HDFormats
import HDModel
import HDTensor
import HDTokenizer

@main
struct HDDistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hd-distill",
        abstract: "Train a student BERT from a teacher on text: masked-LM plus distillation of the teacher's MLM logits.",
        discussion: """
        The student starts as a copy of TEACHER. With --mlm-only there is no teacher: TEACHER's weights are \
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
    @Option(name: .long, help: "Softmax temperature τ of the KL term (scaled by τ²).") var temperature: Float = 1
    @Flag(name: .customLong("mlm-only"), help: "No teacher: masked-LM training of TEACHER's weights.") var mlmOnly = false
    @Option(name: .customLong("held-out-every"), help: "Hold out paragraph i when hash(i) % k == 0 (0: none).") var heldOutEvery = 20
    @Option(name: .customLong("eval-every"), help: "Evaluate on the held-out split every N steps (0: only at the end).") var evalEvery = 50
    @Option(name: .customLong("eval-sequences")) var evalSequences = 64
    @Option(name: .customLong("save-every"), help: "Write the checkpoint every N steps (0: only at the end).") var saveEvery = 100
    @Option(name: .long, help: ArgumentHelp("JSON Lines log, one object per step and evaluation.", valueName: "file")) var log: String?
    @OptionGroup var load: LoadFlags
    @OptionGroup var threadsFlag: ThreadsFlag

    func validate() throws {
        if corpus.isEmpty { throw ValidationError("--corpus needs at least one text file") }
        for (name, value) in [("--eval-every", evalEvery), ("--save-every", saveEvery), ("--held-out-every", heldOutEvery)] where value < 0 {
            throw ValidationError("\(name) must be ≥ 0, found \(value)")
        }
    }

    func run() throws {
        do {
            try ToolErrors.reporting("hd-distill") { try train() }
        } catch let error as DistillError {
            ToolErrors.fail("hd-distill", error.description)
        }
    }

    private func train() throws {
        BLAS.setThreads(threadsFlag.resolved)
        let checkpoint = try Checkpoint.load(teacher, options: load.options(threads: threadsFlag.resolved))
        guard let vocab = checkpoint.vocab else {
            throw DistillError(.invalidArgument, file: teacher, "teacher: no vocabulary embedded or beside it; pass --vocab vocab.txt")
        }
        let tokenizer = try BertTokenizer(vocabulary: Vocabulary(tokens: vocab, source: teacher))
        let text = try Corpus(files: corpus, tokenizer: tokenizer,
                              options: CorpusOptions(sequenceLength: seqLen, heldOutEvery: heldOutEvery))
        let model = try BertModel(checkpoint: checkpoint)
        let sha = mlmOnly ? nil : try FileDigest.sha256(path: try Checkpoint.resolveModelFile(teacher).model)
        let options = TrainerOptions(steps: steps, batchSize: batch, accumulate: accumulate, learningRate: lr,
                                     warmupSteps: warmup, weightDecay: weightDecay, clipNorm: clipNorm, seed: seed,
                                     alphaMLM: alphaMLM, alphaKL: mlmOnly ? 0 : alphaKL, temperature: temperature,
                                     evalSequences: evalSequences)
        let trainer = try Trainer(student: model, teacher: mlmOnly ? nil : model, teacherSHA256: sha, vocab: vocab,
                                  corpus: text, options: options, resume: try resume.map { try StudentCheckpoint.read(path: $0) })
        let logFile = try log.map { try TrainingLog(path: $0, append: resume != nil) }
        let progress = Progress(total: steps, startStep: trainer.step)
        FileHandle.standardError.write(Data(("hd-distill: \(text.sequenceCount(.train)) training / \(text.sequenceCount(.heldOut)) held-out sequences of \(seqLen) "
            + "(\(text.train.count + text.heldOut.count) tokens), step \(trainer.step) of \(steps)\n").utf8))
        while !trainer.isFinished {
            let r = try trainer.trainStep()
            var record: [String: LogValue] = ["kind": .text("train"), "step": .int(r.step), "lr": .number(Double(r.learningRate)),
                                              "mlm": .number(r.mlm), "loss": .number(r.total), "grad_norm": .number(r.gradientNorm)]
            if let kl = r.kl { record["kl"] = .number(kl) }
            try logFile?.write(record)
            progress.update(r)
            if (evalEvery > 0 && r.step % evalEvery == 0) || trainer.isFinished, text.sequenceCount(.heldOut) >= batch {
                let e = try trainer.evaluate()
                var eval: [String: LogValue] = ["kind": .text("eval"), "step": .int(e.step), "mlm": .number(e.mlm),
                                                "accuracy": .number(e.accuracy), "sequences": .int(e.sequences)]
                if let kl = e.kl { eval["kl"] = .number(kl) }
                try logFile?.write(eval)
                progress.report(e)
            }
            if (saveEvery > 0 && r.step % saveEvery == 0) || trainer.isFinished {
                try trainer.checkpoint().write(to: output)
            }
        }
        progress.finish()
    }
}

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
        let kl = r.kl.map { String(format: " kl %.4f", $0) } ?? ""
        let line = String(format: "step %d/%d  mlm %.4f", r.step, total, r.mlm) + kl
            + String(format: "  loss %.4f  |g| %.3f  lr %.2e  %.0f tok/s  ETA %.0fs",
                     r.total, r.gradientNorm, r.learningRate, Double(tokens) / max(elapsed, 1e-9), eta)
        if isTerminal {
            write("\r\u{1B}[K" + line)
        } else if r.step == total || r.step % max(1, total / 10) == 0 {
            write(line + "\n")
        }
    }

    func report(_ e: EvalReport) {
        let kl = e.kl.map { String(format: "  kl %.4f", $0) } ?? ""
        write((isTerminal ? "\r\u{1B}[K" : "") + String(format: "eval step %d: held-out mlm %.4f  top-1 %.3f", e.step, e.mlm, e.accuracy)
              + kl + "  (\(e.sequences) sequences)\n")
    }

    func finish() { if isTerminal { write("\n") } }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}
