import ArgumentParser
import Foundation
import HDCommandLine
import HDModel
import HDRuntime
import HDTasks

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a sequence classifier on a labelled file: accuracy, macro-F1, per-class precision and recall, confusion matrix, examples/s (a regression head: MSE, Pearson, Spearman).",
        discussion: """
        FILE is TSV, CSV or JSON Lines with a header (HDTasks' reader, as hd-finetune reads it). Its labels are \
        matched by name to the model's (the config's id2label); a label the model does not know is refused, \
        naming the file, line and column. Macro-F1 averages F1 over every label of the model, a label absent \
        from the file and never predicted counting as 0 (scikit-learn's f1_score with labels=range(n), \
        zero_division=0). A regression head (problem_type regression) is scored on the numeric label column \
        instead: mean squared error, Pearson's r and Spearman's ρ (average ranks for ties; a constant series \
        has no correlation: null). examples/s counts tokenising and the forwards, not loading.
        """)

    @Argument(help: ArgumentHelp("Checkpoint (.safetensors, .npz, .ckpt) or Hugging Face directory of a sequence classifier.", valueName: "model"))
    var model: String

    @Option(name: .long, help: ArgumentHelp("The labelled file (.tsv, .csv, .jsonl).", valueName: "file"))
    var data: String

    @Option(name: .long, help: ArgumentHelp("Column of the text.", valueName: "name"))
    var textColumn = "text"

    @Option(name: .long, help: ArgumentHelp("Column of the second text, for sentence-pair tasks.", valueName: "name"))
    var pairColumn: String?

    @Option(name: .long, help: ArgumentHelp("Column of the gold label.", valueName: "name"))
    var labelColumn = "label"

    @Flag(name: .long, help: "Print one JSON object: accuracy, macro_f1, per_class, confusion, examples, examples_per_second, labels, …")
    var json = false

    @OptionGroup var flags: ClassifierFlags

    struct ClassReport: Encodable {
        var label: String
        var precision: Double
        var recall: Double
        var f1: Double
        var support: Int
    }

    struct Report: Encodable {
        var model: String
        var data: String
        var examples: Int
        var labels: [String]
        var accuracy: Double
        var macroF1: Double
        var perClass: [ClassReport]
        /// `confusion[gold][predicted]`, in label id order.
        var confusion: [[Int]]
        var examplesPerSecond: Double
        var seconds: Double
        var precision: String
        var threads: Int
        var batch: Int

        enum CodingKeys: String, CodingKey {
            case model, data, examples, labels, accuracy, confusion, seconds, precision, threads, batch
            case macroF1 = "macro_f1", perClass = "per_class", examplesPerSecond = "examples_per_second"
        }
    }

    func run() throws {
        try ToolErrors.reporting("hd-infer", json: json) {
            let batch = flags.batch ?? 32
            let classifier = try ClassifierModel(model, flags: flags, batch: batch)
            let source = classifier.checkpoint.source
            if let pairColumn, let why = classifier.pairRefusal {
                throw ModelError(.badInput, file: source, field: "--pair-column", "--pair-column \(pairColumn): \(why)")
            }
            let file = try TaskFile(contentsOfFile: data, columns: TaskColumns(text: textColumn, pair: pairColumn, label: labelColumn))
            let regression = classifier.isRegression
            let targets = regression ? try RegressionTargets.targets(of: file.examples, file: data, column: labelColumn) : []
            let labels = try LabelSet(id2label: classifier.labels, source: source)
            let gold = regression ? [] : try labels.ids(of: file.examples, file: data, column: labelColumn)

            let clock = ContinuousClock(), start = clock.now
            let (predicted, values) = try classifier.predict(file.examples, file: data, column: textColumn)
            let seconds = (clock.now - start) / .seconds(1)
            if regression {
                let metrics = try RegressionMetrics(predicted: values, gold: targets)
                let report = RegressionReport(model: model, data: data, metrics: metrics,
                                              examplesPerSecond: Double(metrics.count) / max(seconds, 1e-9), seconds: seconds,
                                              precision: classifier.precision.rawValue, threads: flags.threads.resolved, batch: batch)
                if json { try JSONOutput.print(report) } else { printRegression(report) }
                return
            }

            let metrics = try ClassificationMetrics(predicted: predicted, gold: gold, classCount: labels.count)
            let report = Report(
                model: model, data: data, examples: metrics.count, labels: classifier.labels, accuracy: metrics.accuracy,
                macroF1: metrics.macroF1,
                perClass: zip(classifier.labels, metrics.perClass).map {
                    ClassReport(label: $0, precision: $1.precision, recall: $1.recall, f1: $1.f1, support: $1.support)
                },
                confusion: metrics.confusion, examplesPerSecond: Double(metrics.count) / max(seconds, 1e-9), seconds: seconds,
                precision: classifier.precision.rawValue, threads: flags.threads.resolved, batch: batch)
            if json { try JSONOutput.print(report) } else { printTable(report) }
        }
    }

    /// A regression head's scores.
    struct RegressionReport: Encodable {
        var model: String
        var data: String
        var metrics: RegressionMetrics
        var examplesPerSecond: Double
        var seconds: Double
        var precision: String
        var threads: Int
        var batch: Int

        enum CodingKeys: String, CodingKey {
            case model, data, examples, mse, pearson, spearman, seconds, precision, threads, batch
            case examplesPerSecond = "examples_per_second"
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(model, forKey: .model)
            try c.encode(data, forKey: .data)
            try c.encode(metrics.count, forKey: .examples)
            try c.encode(metrics.meanSquaredError, forKey: .mse)
            try c.encode(metrics.pearson, forKey: .pearson)
            try c.encode(metrics.spearman, forKey: .spearman)
            try c.encode(examplesPerSecond, forKey: .examplesPerSecond)
            try c.encode(seconds, forKey: .seconds)
            try c.encode(precision, forKey: .precision)
            try c.encode(threads, forKey: .threads)
            try c.encode(batch, forKey: .batch)
        }
    }

    private func printRegression(_ r: RegressionReport) {
        func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "undefined (a constant series)" }
        print("\(r.data): \(r.metrics.count) examples, regression, \(r.precision), batch \(r.batch), \(r.threads) threads")
        print("mse       \(f(r.metrics.meanSquaredError))")
        print("pearson   \(f(r.metrics.pearson))")
        print("spearman  \(f(r.metrics.spearman))")
        print("examples/s \(String(format: "%.1f", r.examplesPerSecond))  (\(String(format: "%.3f", r.seconds)) s: tokenising and forwards)")
    }

    private func printTable(_ r: Report) {
        func f(_ x: Double) -> String { String(format: "%.4f", x) }
        let width = max(10, r.labels.map(\.count).max() ?? 0) + 2
        func pad(_ s: String, _ n: Int = width) -> String { s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0) }
        func line(_ s: String) { print(s.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)) }
        print("\(r.data): \(r.examples) examples, \(r.labels.count) labels, \(r.precision), batch \(r.batch), \(r.threads) threads")
        print(pad("accuracy") + f(r.accuracy))
        print(pad("macro-F1") + f(r.macroF1))
        print(pad("label") + "precision  recall     f1         support")
        for c in r.perClass {
            print(pad(c.label) + [c.precision, c.recall, c.f1].map { f($0).padding(toLength: 11, withPad: " ", startingAt: 0) }.joined() + "\(c.support)")
        }
        print("confusion (rows: gold, columns: predicted)")
        line(pad("") + r.labels.map { pad($0) }.joined())
        for (label, row) in zip(r.labels, r.confusion) {
            line(pad(label) + row.map { pad(String($0)) }.joined())
        }
        print(pad("examples/s") + String(format: "%.1f", r.examplesPerSecond) + "  (\(String(format: "%.3f", r.seconds)) s: tokenising and forwards)")
    }
}
