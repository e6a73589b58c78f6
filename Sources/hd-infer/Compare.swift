import ArgumentParser
import Foundation
import HDCommandLine
import HDModel
import HDRuntime
import HDTasks

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set a student beside its teacher: parameters, FLOPs, latency and speed-up (timed in turns in one run), and the quality it kept.",
        discussion: """
        Sizes are ModelSize's one count (docs/FORMATS.md, "Counting"); FLOPs are per sequence of 128 real \
        tokens whatever --seq-len. Latency: both models on the same random batch of --batch × --seq-len \
        tokens, --warmup untimed forwards each, then --iterations rounds timing one forward of each in \
        turn (the order reversed every other round), so the machine's noise falls on both; speed-up is \
        the teacher's p50 over the student's.

        Quality, for each file given: --sentences, the cosine between the student's and the teacher's \
        mean-pooled embeddings of each sentence (as hd-infer embed computes them), mean ± std and min; a \
        student narrower than its teacher is compared over the teacher dimensions it kept (metadata \
        hd.kept.hidden, written by hd-export --shrink; a student.ckpt's hd.mask.hidden). --pairs, an SNLI \
        TSV: each model's ROC AUC of cosine(premise, hypothesis), entailment against contradiction, no \
        fine-tuning. --data, for two classifiers with the same labels: each one's accuracy and macro-F1 \
        (as hd-infer evaluate scores them) and how often their labels agree.

        Exit status: 0 ok, 64 bad usage, 65 bad input data (the message names the file and field), 1 other.
        """)

    @Argument(help: ArgumentHelp("The teacher: checkpoint (.safetensors, .npz, .ckpt) or Hugging Face directory.", valueName: "teacher"))
    var teacher: String

    @Argument(help: ArgumentHelp("The student: an exported student, a student.ckpt, or any checkpoint.", valueName: "student"))
    var student: String

    @Option(name: .long, help: ArgumentHelp("Sentences, one per line (or a .tsv, .csv or .jsonl table with --column): the cosine of the student's embedding to the teacher's.", valueName: "file"))
    var sentences: String?

    @Option(name: .long, help: ArgumentHelp("The column of the --sentences table (default: text).", valueName: "name"))
    var column: String?

    @Option(name: .long, help: ArgumentHelp("An SNLI-style TSV (premise, hypothesis, label: entailment, neutral or contradiction): each model's ROC AUC of cosine(premise, hypothesis), entailment against contradiction.", valueName: "file"))
    var pairs: String?

    @Option(name: .long, help: ArgumentHelp("Column of --pairs' premise.", valueName: "name"))
    var premiseColumn = "premise"

    @Option(name: .long, help: ArgumentHelp("Column of --pairs' hypothesis.", valueName: "name"))
    var hypothesisColumn = "hypothesis"

    @Option(name: .long, help: ArgumentHelp("A labelled task file (.tsv, .csv, .jsonl) for two classifiers: each one's accuracy and macro-F1, and their agreement.", valueName: "file"))
    var data: String?

    @Option(name: .long, help: ArgumentHelp("Column of --data's text.", valueName: "name"))
    var textColumn = "text"

    @Option(name: .long, help: ArgumentHelp("Column of --data's second text, for sentence-pair tasks.", valueName: "name"))
    var pairColumn: String?

    @Option(name: .long, help: ArgumentHelp("Column of the label, in --pairs and --data.", valueName: "name"))
    var labelColumn = "label"

    @Option(name: .long, help: "Tokens per sequence of the timed batch.")
    var seqLen = 128

    @Option(name: .long, help: "Sequences per timed forward.")
    var batch = 1

    @Option(name: .long, help: "Untimed forwards of each model before timing.")
    var warmup = 5

    @Option(name: .long, help: "Timed forwards of each model (taken in turns).")
    var iterations = 20

    @Option(name: .long, help: ArgumentHelp("Arithmetic of both encoders' dense layers: fp32, bf16 or int8 (see `hd-infer bench --help`).", valueName: "precision"))
    var precision: Precision = .fp32

    @Flag(name: .long, help: "Cut quality inputs longer than a model's position table instead of refusing them.")
    var truncate = false

    @Flag(name: .long, help: "Print one JSON object with the same figures instead of the table.")
    var json = false

    @OptionGroup var threads: ThreadsFlag

    /// Inputs per forward of the quality measures (each batch padded to its longest input, which
    /// costs no FLOPs: the runtime drops padding).
    static let qualityBatch = 16

    func validate() throws {
        for (name, value) in [("--seq-len", seqLen), ("--batch", batch), ("--iterations", iterations)] where value <= 0 {
            throw ValidationError("\(name) must be positive, found \(value)")
        }
        if warmup < 0 { throw ValidationError("--warmup must be ≥ 0, found \(warmup)") }
        if let column, sentences == nil { throw ValidationError("--column \(column) names a column of --sentences, which is not given") }
        if let sentences, column == nil, Self.isTable(sentences) {
            throw ValidationError("--sentences \(sentences) is a table: pass --column NAME for its sentences (a plain file has one sentence per line)")
        }
        if let sentences, column != nil, !Self.isTable(sentences) {
            throw ValidationError("--column needs --sentences to be a .tsv, .csv or .jsonl table, found \(sentences)")
        }
        if pairColumn != nil, data == nil { throw ValidationError("--pair-column names a column of --data, which is not given") }
        if let reason = precision.unsupportedReason(kernel: .best) { throw ValidationError("--precision \(precision.rawValue): \(reason)") }
    }

    static func isTable(_ path: String) -> Bool { (try? TaskFileFormat(path: path)) != nil }

    func run() throws {
        try ToolErrors.reporting("hd-infer", json: json) {
            let progress = Progress()
            // Everything that can be refused is read and checked before the timing.
            progress.say("loading \(teacher) and \(student)")
            let models = try [teacher, student].map { path -> (checkpoint: Checkpoint, runtime: RuntimeModel) in
                var options = LoadOptions()
                options.threads = threads.threads
                let checkpoint = try Checkpoint.load(path, options: options)
                return (checkpoint, try RuntimeModel(model: try BertModel(checkpoint: checkpoint), precision: precision))
            }
            for model in models where seqLen > model.checkpoint.config.maxPositionEmbeddings {
                throw ModelError(.badInput, file: model.checkpoint.source, field: "max_position_embeddings",
                    "--seq-len \(seqLen): expected at most the model's \(model.checkpoint.config.maxPositionEmbeddings) positions (max_position_embeddings)")
            }
            let (t, s) = (models[0], models[1])
            let kept = sentences == nil ? nil : try CompareQuality.keptDimensions(teacher: t.checkpoint, student: s.checkpoint)
            let sentenceLines = try sentences.map { try CompareQuality.readSentences($0, column: column) }
            let pairRows = try pairs.map {
                try CompareQuality.readPairs($0, premise: premiseColumn, hypothesis: hypothesisColumn, label: labelColumn)
            }
            var classifiers: (teacher: ClassifierModel, student: ClassifierModel)?
            var taskFile: TaskFile?
            if let data {
                let pair = try models.map {
                    try ClassifierModel(checkpoint: $0.checkpoint, runtime: $0.runtime, seqLen: nil, batch: Self.qualityBatch,
                                        cased: false, threads: threads.resolved)
                }
                try CompareQuality.checkClassifiers(teacher: pair[0], student: pair[1])
                for model in pair {
                    if let pairColumn, let why = model.pairRefusal {
                        throw ModelError(.badInput, file: model.checkpoint.source, field: "--pair-column", "--pair-column \(pairColumn): \(why)")
                    }
                }
                taskFile = try TaskFile(contentsOfFile: data, columns: TaskColumns(text: textColumn, pair: pairColumn, label: labelColumn))
                classifiers = (pair[0], pair[1])
            }

            progress.say("timing: \(warmup) warm-up and \(iterations) timed forwards of each, in turns")
            let samples = try time(models.map(\.runtime))

            var report = Report(
                teacher: .init(t.checkpoint, samples: samples[0]), student: .init(s.checkpoint, samples: samples[1]),
                batch: batch, seqLen: seqLen, threads: threads.resolved, warmup: warmup, iterations: iterations,
                precision: precision.rawValue)
            if sentenceLines != nil || pairRows != nil {
                let text = try models.map {
                    try TextModel(checkpoint: $0.checkpoint, runtime: $0.runtime, cased: false, truncate: truncate,
                                  maxBatch: Self.qualityBatch, threads: threads.resolved)
                }
                if let sentences, let sentenceLines {
                    progress.say("embedding \(sentenceLines.count) sentences with each model")
                    report.sentences = try CompareQuality.sentenceCosine(sentences, sentenceLines, column: column ?? "line",
                                                                         teacher: text[0], student: text[1], kept: kept)
                }
                if let pairs, let pairRows {
                    progress.say("embedding \(pairRows.entails.count) premise/hypothesis pairs with each model")
                    report.pairs = try CompareQuality.pairAUC(pairs, pairRows, columns: (premiseColumn, hypothesisColumn),
                                                              teacher: text[0], student: text[1])
                }
            }
            if let data, let classifiers, let taskFile {
                progress.say("classifying \(taskFile.examples.count) examples with each model")
                report.classification = try CompareQuality.classification(data, taskFile, textColumn: textColumn, labelColumn: labelColumn,
                                                                          teacher: classifiers.teacher, student: classifiers.student)
            }
            progress.done()
            if json { try JSONOutput.print(report) } else { report.printTable() }
        }
    }

    /// Milliseconds per forward of each model on one random batch of --batch × --seq-len ids (valid
    /// in both vocabularies), timed in turns; the sessions go when the timing is done.
    private func time(_ runtimes: [RuntimeModel]) throws -> [[Double]] {
        let input = try Bench.randomBatch(batch: batch, seqLen: seqLen, vocabSize: runtimes.map(\.config.vocabSize).min()!)
        let sessions = try runtimes.map { try InferenceSession(model: $0, maxBatch: batch, maxLength: seqLen, threads: threads.resolved) }
        return try Benchmark.alternating(sessions.map { (session: $0, batch: input) }, warmup: warmup, iterations: iterations)
    }

    /// One line of progress on stderr, rewritten in place, only when stderr is a terminal (a log
    /// file or a pipe gets the result alone).
    struct Progress {
        let enabled = isatty(STDERR_FILENO) != 0

        func say(_ message: String) {
            guard enabled else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[Khd-infer compare: \(message)…".utf8))
        }

        func done() {
            guard enabled else { return }
            FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        }
    }
}
