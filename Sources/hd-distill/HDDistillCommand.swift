import HDTraining
import ArgumentParser
import Foundation
import HDCommandLine
import HDDistill
import HDFormats
import HDModel
import HDTasks
import HDTensor
import HDTokenizer

@main
struct HDDistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hd-distill",
        abstract: "Train a student BERT from a teacher on text: masked-LM plus distillation (MLM logits, hidden states, attention, embeddings).",
        discussion: """
        The student starts as a copy of TEACHER (--init random: BERT's initialisation instead); with \
        --keep-layers I,J,… it has only those layers of TEACHER (layer dropping, at full width, pruning \
        flags apply to it), and student layer j's hidden-state and attention terms are against teacher \
        layer I_j (the map is stored as hd.teacher_layers; --resume must give the same). Loss: \
        α_mlm·MLM + α_kl·KL + α_hidden·Σ hidden MSE + α_attention·Σ attention MSE + α_embedding·embedding MSE; \
        --no-distill-layers keeps MLM + KL. With --mlm-only there is no teacher: TEACHER's weights are \
        trained on masked-LM alone (to warm up a teacher).

        The terms follow TEACHER's head. A teacher without one (a sentence-transformers encoder such as \
        all-MiniLM-L6-v2) is distilled on the plain text with the layer terms and α_pooled·(1 − cos) of \
        the pooled sentence embeddings (--pooling); --alpha-mlm and --alpha-kl must stay 0. A fine-tuned \
        classifier with --task FILE is distilled on the task's texts (task-specific distillation): KL on \
        the class logits at --temperature plus the layer terms; the student keeps (and prunes) its \
        classifier, and every evaluation reports its dev accuracy beside the teacher's. The checkpoint (-o) is rewritten atomically every \
        --save-every steps and at the end; --resume continues such a checkpoint exactly.

        Exit status: 0 ok, 64 bad usage, 65 bad input data or a non-finite loss (the message names the step and term), 1 other.
        """)

    @Argument(help: ArgumentHelp("Teacher checkpoint (any format hd-convert reads).", valueName: "teacher"))
    var teacher: String

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Text files (paragraphs by blank lines or one per line), or one token file from --tokenize-only.", valueName: "file"))
    var corpus: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Student checkpoint to write (with --tokenize-only: the token file).", valueName: "student.ckpt"))
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
    @Option(name: .customLong("alpha-mlm"), help: "Weight of the masked-LM loss (default 1 with an MLM teacher; must be 0 otherwise).")
    var alphaMLM: Float?
    @Option(name: .customLong("alpha-kl"), help: "Weight of KL on the MLM or class logits (default 1; must be 0 with a headless teacher).")
    var alphaKL: Float?
    @Option(name: .customLong("alpha-pooled"), help: "Weight of 1 − cos of the pooled sentence embeddings (default 1 with a headless teacher, else 0).")
    var alphaPooled: Float?
    @Option(name: .long, help: "Pooling of the sentence-embedding term: mean (over real tokens) or cls.") var pooling: SentencePooling = .mean
    @Option(name: .long, help: ArgumentHelp("Task file (.tsv, .csv, .jsonl) to distil a classifier TEACHER on, instead of --corpus.", valueName: "file"))
    var task: String?
    @Option(name: .customLong("task-dev"), help: ArgumentHelp("The task's dev file; without it, --dev-fraction of --task.", valueName: "file"))
    var taskDev: String?
    @Option(name: .customLong("text-column")) var textColumn = "text"
    @Option(name: .customLong("pair-column")) var pairColumn: String?
    @Option(name: .customLong("label-column")) var labelColumn = "label"
    @Option(name: .customLong("dev-fraction")) var devFraction = 0.1
    @Option(name: .customLong("split-seed")) var splitSeed: UInt64 = 0
    @Option(name: .customLong("alpha-hidden"), help: "Weight of Σ_k MSE(H_s^k, H_t^k W_h^k) over the layers' outputs.") var alphaHidden: Float = 1
    @Option(name: .customLong("alpha-attention"), help: "Weight of Σ_k MSE(A_s^k, A_t^k) over the attention probabilities.") var alphaAttention: Float = 1
    @Option(name: .customLong("alpha-embedding"), help: "Weight of MSE(E_s, E_t W_e) on the embeddings' output.") var alphaEmbedding: Float = 1
    @Flag(name: .customLong("no-distill-layers"), help: "KL + MLM only: no hidden, attention or embedding term.") var noDistillLayers = false
    @Option(name: .customLong("init"), help: "Student's starting weights: copy (of TEACHER) or random (BERT init N(0, 0.02) from --seed).")
    var initialization: StudentInitialization = .copy
    @Option(name: .customLong("keep-layers"), help: ArgumentHelp(
        "Layer dropping: the student is TEACHER with only these encoder layers (0-based, strictly increasing, e.g. 1,3,5), renumbered 0…k−1; student layer j is distilled from teacher layer I_j.",
        valueName: "I,J,…"))
    var keepLayers: String?
    @Option(name: .long, help: "Softmax temperature τ of the KL term (scaled by τ²).") var temperature: Float = 1
    @Flag(name: .customLong("mlm-only"), help: "No teacher: masked-LM training of TEACHER's weights.") var mlmOnly = false
    @Option(name: .customLong("held-out-every"), help: "Hold out paragraph i when hash(i) % k == 0 (0: none; default 20, or the token file's split).") var heldOutEvery: Int?
    @Flag(name: .customLong("tokenize-only"), help: "Tokenise --corpus with TEACHER's vocabulary into a token file (-o corpus.tokens) and stop; --corpus corpus.tokens then trains on it without tokenising.")
    var tokenizeOnly = false
    @Option(name: .customLong("eval-every"), help: "Evaluate on the held-out split every N steps (0: only at the end).") var evalEvery = 50
    @Option(name: .customLong("eval-sequences")) var evalSequences = 64
    @Option(name: .customLong("save-every"), help: "Write the checkpoint every N steps (0: only at the end).") var saveEvery = 100
    @Option(name: .long, help: ArgumentHelp("JSON Lines log, one object per step and evaluation.", valueName: "file")) var log: String?
    @Option(name: .long, help: ArgumentHelp(
        "Precision of the models' and the layer terms' matrix products: fp32, or bf16 on AMX tiles (operands rounded to bfloat16, sums, weights, gradients and AdamW in fp32; Intel Xeon 4th generation or later). Recorded in the checkpoint; --resume must give the same.",
        valueName: "fp32|bf16")) var matmul: GEMMPrecision = .fp32
    @OptionGroup var load: LoadFlags
    @OptionGroup var threadsFlag: ThreadsFlag
    @OptionGroup(title: "Pruning") var pruning: PruningFlags

    func validate() throws {
        if corpus.isEmpty && task == nil { throw ValidationError("--corpus needs at least one text file (or --task FILE with a classifier teacher)") }
        if !corpus.isEmpty && task != nil { throw ValidationError("--corpus and --task are two sources of text: give one") }
        if task == nil, taskDev != nil || pairColumn != nil { throw ValidationError("--task-dev and --pair-column go with --task") }
        if tokenizeOnly && (task != nil || resume != nil) { throw ValidationError("--tokenize-only tokenises --corpus text files; it cannot go with --task or --resume") }
        if task != nil && mlmOnly { throw ValidationError("--task distils a classifier teacher; it cannot go with --mlm-only") }
        if mlmOnly && pruning.prunes { throw ValidationError("pruning needs TEACHER as a teacher; it cannot go with --mlm-only") }
        if let reason = matmul.unsupportedReason() { throw ValidationError("--matmul \(matmul.rawValue): \(reason); use --matmul fp32") }
        if let end = pruning.pruneEnd, end > steps, pruning.schedule == .cubic {
            throw ValidationError("--prune-end must be ≤ --steps (\(steps)) so the target is reached, found \(end)")
        }
        if mlmOnly && initialization == .random { throw ValidationError("--init random needs a teacher; it cannot go with --mlm-only") }
        if let keepLayers {
            if mlmOnly { throw ValidationError("--keep-layers maps student layers onto TEACHER's; it cannot go with --mlm-only") }
            _ = try parsedKeepLayers(keepLayers, teacherDepth: nil)
        }
        for (name, value) in [("--alpha-mlm", alphaMLM ?? 0), ("--alpha-kl", alphaKL ?? 0), ("--alpha-pooled", alphaPooled ?? 0),
                              ("--alpha-hidden", alphaHidden),
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
        for (name, value) in [("--eval-every", evalEvery), ("--save-every", saveEvery), ("--held-out-every", heldOutEvery ?? 0)] where value < 0 {
            throw ValidationError("\(name) must be ≥ 0, found \(value)")
        }
    }

    func run() throws {
        try ToolErrors.reporting("hd-distill") {
            try OutputPath.checkFile(output, inputs: [teacher] + corpus + [task, taskDev, load.config, load.vocab].compactMap { $0 })
            try train()
        }
    }

    private func train() throws {
        BLAS.setThreads(threadsFlag.resolved)
        // TEACHER through the one loader: a student.ckpt teaches as the dense model it equals, so a
        // pruned student can be distilled and pruned further without exporting it first.
        let checkpoint = try Checkpoint.load(teacher, options: load.options(threads: threadsFlag.resolved))
        guard let vocab = checkpoint.vocab else {
            throw DistillError(.invalidArgument, file: teacher, "teacher: no vocabulary embedded or beside it; pass --vocab vocab.txt")
        }
        guard vocab.count == checkpoint.config.vocabSize else {
            throw DistillError(.invalidArgument, file: load.vocab ?? teacher,
                "vocabulary: expected \(checkpoint.config.vocabSize) tokens (the teacher's vocab_size), found \(vocab.count)")
        }
        let tokenizer = try BertTokenizer(vocabulary: Vocabulary(tokens: vocab, source: teacher), lowercase: checkpoint.lowercase)
        let model = try BertModel(checkpoint: checkpoint)
        let head: TeacherHead = mlmOnly ? .mlm : model.weights.classifier != nil ? .classifier : model.weights.mlmHead != nil ? .mlm : .none
        let alphas = try resolveAlphas(head)
        let text: any DistillationData
        if let task {
            guard head == .classifier, let labels = model.config.id2label else {
                throw ValidationError("--task distils a fine-tuned classifier; \(teacher) has no classifier head (classifier.*)")
            }
            text = try TaskData(file: task, dev: taskDev, columns: TaskColumns(text: textColumn, pair: pairColumn, label: labelColumn),
                                devFraction: devFraction, splitSeed: splitSeed, labels: labels, tokenizer: tokenizer, sequenceLength: seqLen).sequences
        } else {
            if head == .classifier {
                throw ValidationError("\(teacher) is a classifier: distil it on its task with --task FILE (its texts and labels), not on --corpus")
            }
            if tokenizeOnly {
                try writeTokenFile(tokenizer: tokenizer, vocab: vocab)
                return
            }
            let (corpusText, split) = try loadCorpus(tokenizer: tokenizer)
            if split > 0 && corpusText.sequenceCount(.heldOut) == 0 {
                throw DistillError(.tooShort, file: corpus.joined(separator: ", "),
                    "evaluation: the held-out split (every \(split)th paragraph) holds no full sequence of \(seqLen) tokens; "
                    + "give more text, a smaller --held-out-every (more paragraphs held out), or --held-out-every 0 to train without evaluation")
            }
            text = corpusText
        }
        // A checkpoint to continue is read first, so a teacher too shallow for its layer map is named
        // as the wrong teacher (bad input) rather than as a bad --keep-layers.
        let resumed = try resume.map { try TrainingCheckpoint.read(path: $0) }
        if let resume, let resumed { try resumed.state.checkTeacherLayers(teacherDepth: model.config.numHiddenLayers, file: resume) }
        let teacherLayers = try keepLayers.map { try parsedKeepLayers($0, teacherDepth: model.config.numHiddenLayers) }
        let shape = try teacherLayers.map { try LayerDropping.student(of: model, keeping: $0) } ?? model
        let student = initialization == .random ? try RandomInit.model(like: shape, seed: seed) : shape
        let sha = mlmOnly ? nil : try FileDigest.sha256(path: try Checkpoint.resolveModelFile(teacher).model)
        let layers: Float = mlmOnly || noDistillLayers ? 0 : 1
        var options = TrainerOptions(steps: steps, batchSize: batch, accumulate: accumulate, learningRate: lr,
                                     warmupSteps: warmup, weightDecay: weightDecay, clipNorm: clipNorm, seed: seed,
                                     alphaMLM: alphas.mlm, alphaKL: mlmOnly ? 0 : alphas.kl, alphaHidden: layers * alphaHidden,
                                     alphaAttention: layers * alphaAttention, alphaEmbedding: layers * alphaEmbedding,
                                     temperature: temperature, evalSequences: evalSequences, initialization: initialization)
        options.threads = threadsFlag.resolved
        options.matmul = matmul
        (options.alphaPooled, options.pooling) = (mlmOnly ? 0 : alphas.pooled, pooling)
        options.prune = try pruning.options(config: student.config, steps: steps)
        options.teacherLayers = teacherLayers
        if pruning.recipe == .selfDistilled { options.useSelfDistilledRecipe(alpha: pruning.alphaCC, lambda: pruning.ccLambda) }
        let trainer = try Trainer(student: student, teacher: mlmOnly ? nil : model, teacherSHA256: sha, vocab: vocab,
                                  lowercase: checkpoint.lowercase,
                                  taskPairs: task != nil ? pairColumn != nil : checkpoint.sourceMetadata[Checkpoint.MetadataKey.taskPairs].flatMap(Bool.init),
                                  data: text, options: options)
        if let resume, let resumed { try trainer.restore(from: resumed, file: resume) }
        let run = DistillationRun(trainer: trainer, output: output, evalEvery: evalEvery, saveEvery: saveEvery,
                                  log: try log.map { try TrainingLog(path: $0, append: resume != nil) },
                                  progress: ProgressLine(total: steps, startStep: trainer.step))
        let terms = head == .none ? "headless teacher: no MLM or KL term; layer terms + pooled cosine (\(pooling.rawValue))"
            : head == .classifier ? "classifier teacher: KL on the class logits + layer terms" : nil
        FileHandle.standardError.write(Data(("hd-distill: \(text.sequenceCount(.train)) training / \(text.sequenceCount(.heldOut)) held-out sequences of \(seqLen), "
            + "step \(trainer.step) of \(steps)" + (terms.map { "; " + $0 } ?? "")
            + (text.sequenceCount(.heldOut) > 0 ? "" : "; no held-out split, so no evaluation") + "\n").utf8))
        let summary = try run.run()
        let peak = ProcessMemory.peakResidentMiB()
        try run.writeSummary(summary, peakResidentMiB: peak)
        FileHandle.standardError.write(Data(String(format: "hd-distill: done at step %d: %.0f training tokens/s over %d steps, peak RSS %.0f MiB\n",
                                                   summary.step, summary.tokensPerSecond, summary.stepsRun, peak).utf8))
    }
}

extension StudentInitialization: ExpressibleByArgument {}

extension HDDistillCommand {
    /// `--corpus`: text files, tokenised now with TEACHER's vocabulary, or one token file (`TokenFile`),
    /// read and checked against it. Returns the corpus and the held-out rule it was split by.
    func loadCorpus(tokenizer: BertTokenizer) throws -> (Corpus, Int) {
        guard corpus.contains(where: TokenFile.looksLikeTokenFile) else {
            let split = heldOutEvery ?? 20
            return (try Corpus(files: corpus, tokenizer: tokenizer, options: CorpusOptions(sequenceLength: seqLen, heldOutEvery: split)), split)
        }
        guard corpus.count == 1 else {
            throw ValidationError("--corpus: a token file holds a whole tokenised corpus; give it alone, found \(corpus.count) files (\(corpus.joined(separator: ", ")))")
        }
        let (text, header) = try TokenFile.read(path: corpus[0], tokenizer: tokenizer, sequenceLength: seqLen)
        // The split was fixed when the file was written; a different rule asked for now would be ignored silently.
        if let heldOutEvery, heldOutEvery != header.heldOutEvery {
            throw ValidationError("--held-out-every \(heldOutEvery): \(corpus[0]) was split with --held-out-every \(header.heldOutEvery) when it was tokenised; drop the flag or tokenise again")
        }
        return (text, header.heldOutEvery)
    }

    /// `--tokenize-only`: the corpus as `Corpus` cuts it (same paragraphs, same held-out split), written
    /// as a token file to `-o`, with a one-line summary.
    func writeTokenFile(tokenizer: BertTokenizer, vocab: [String]) throws {
        if corpus.contains(where: TokenFile.looksLikeTokenFile) {
            throw ValidationError("--tokenize-only: --corpus is already a token file (\(corpus.joined(separator: ", "))); give the text files")
        }
        let split = heldOutEvery ?? 20
        // The packing length only sets the minimum of text; the file holds streams, not sequences.
        let text = try Corpus(files: corpus, tokenizer: tokenizer, options: CorpusOptions(sequenceLength: seqLen, heldOutEvery: split))
        try TokenFile.write(text, vocabulary: vocab, lowercase: tokenizer.basic.lowercase, heldOutEvery: split, to: output)
        FileHandle.standardError.write(Data(("hd-distill: wrote \(output): \(text.train.count) training tokens in \(text.trainParagraphs) paragraphs, "
            + "\(text.heldOut.count) held-out tokens in \(text.heldOutParagraphs) paragraphs (held out every \(split)); "
            + "\(text.sequenceCount(.train)) training / \(text.sequenceCount(.heldOut)) held-out sequences of \(seqLen)\n").utf8))
    }
}

extension HDDistillCommand {
    /// `--keep-layers` as indices, or a usage error naming the flag, the value and what is allowed:
    /// a comma list of decimal indices, strictly increasing, at least one, and (once TEACHER is
    /// loaded, `teacherDepth`) each below TEACHER's layer count.
    func parsedKeepLayers(_ text: String, teacherDepth: Int?) throws -> [Int] {
        guard let layers = LayerDropping.parse(text) else {
            throw ValidationError("--keep-layers \(text): expected 0-based teacher layer indices separated by commas, such as 1,3,5 (no spaces)")
        }
        if let problem = LayerDropping.problem(layers, teacherDepth: teacherDepth) {
            throw ValidationError("--keep-layers \(text): \(problem)")
        }
        return layers
    }
}

extension HDDistillCommand {
    /// The loss weights for TEACHER's head: the defaults it implies, and a usage error (naming the
    /// flag) for a term the teacher cannot give.
    func resolveAlphas(_ head: TeacherHead) throws -> (mlm: Float, kl: Float, pooled: Float) {
        switch head {
        case .mlm:
            return (alphaMLM ?? 1, alphaKL ?? 1, alphaPooled ?? 0)
        case .none:
            for (flag, value) in [("--alpha-mlm", alphaMLM), ("--alpha-kl", alphaKL)] where (value ?? 0) > 0 {
                throw ValidationError("\(flag) \(value!): \(teacher) has no MLM head, so there is no \(flag == "--alpha-mlm" ? "masked-LM" : "logit") term; use --alpha-pooled and the layer terms")
            }
            return (0, 0, alphaPooled ?? 1)
        case .classifier:
            if let alphaMLM, alphaMLM > 0 {
                throw ValidationError("--alpha-mlm \(alphaMLM): \(teacher) is a classifier; task-specific distillation has no masked-LM term")
            }
            return (0, alphaKL ?? 1, alphaPooled ?? 0)
        }
    }
}

extension SentencePooling: ExpressibleByArgument {}
extension GEMMPrecision: ExpressibleByArgument {}
