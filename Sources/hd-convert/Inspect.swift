import ArgumentParser
import Foundation
import HDCommandLine
import HDFormats
import HDModel

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a checkpoint's tensor table, parameter count, naming scheme and config.")

    @Argument(help: ArgumentHelp("Checkpoint file (.safetensors, .npz, student .ckpt) or Hugging Face directory.", valueName: "file"))
    var file: String

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var load: LoadFlags
    @OptionGroup var threads: ThreadsFlag

    struct Row: Encodable {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: Int
    }

    struct Report: Encodable {
        var file: String
        var format: String
        var tensors: [Row]
        var parameters: Int
        var scheme: String?
        var config: BertConfig?
        var configSource: String?
        var vocabSize: Int?
        var hasMLMHead: Bool?
        /// A sequence classifier's labels in id order (`classifier.*` with the config's id2label).
        var labels: [String]?
        var problemType: String?
        var notes: [String]
        /// Why the file is not a loadable BERT, when it is not.
        var notABert: String?
        var metadataKeys: [String]

        enum CodingKeys: String, CodingKey {
            case file, format, tensors, parameters, scheme, config, notes
            case labels
            case configSource = "config_source", vocabSize = "vocab_size", hasMLMHead = "has_mlm_head", problemType = "problem_type"
            case notABert = "not_a_bert", metadataKeys = "metadata_keys"
        }
    }

    func run() throws {
        try ToolErrors.reporting("hd-convert", json: json) {
            let (modelPath, directory) = try Checkpoint.resolveModelFile(file)
            let (kind, raw) = try TensorFile.read(path: modelPath, limits: load.options(threads: threads.threads).limits, threads: threads.threads)
            let rows = raw.sortedNames.map { name -> Row in
                let t = raw[name]!
                return Row(name: name, dtype: t.storedAs.rawValue, shape: t.shape, bytes: t.elementCount * t.storedAs.byteCount)
            }
            var report = Report(file: modelPath, format: kind.description, tensors: rows, parameters: raw.elementCount,
                                notes: [], metadataKeys: raw.metadata.keys.sorted())
            do {
                let checkpoint = try Checkpoint.make(raw, kind: kind, modelPath: modelPath, directory: directory, options: load.options(threads: threads.threads))
                report.scheme = checkpoint.scheme.description
                report.config = checkpoint.config
                report.configSource = checkpoint.configSource
                report.vocabSize = checkpoint.vocab?.count
                report.hasMLMHead = checkpoint.hasMLMHead
                if checkpoint.hasClassifier {
                    report.labels = checkpoint.config.id2label
                    report.problemType = checkpoint.config.isRegression ? "regression" : "single_label_classification"
                }
                report.notes = checkpoint.notes
            } catch let error as ModelError {
                report.notABert = error.message
            }
            if json { try JSONOutput.print(report) } else { printTable(report) }
        }
    }

    /// Labels by id, the first 20: `0 negative, 1 neutral, 2 positive`.
    static func listed(_ labels: [String]) -> String {
        labels.prefix(20).enumerated().map { "\($0) \($1)" }.joined(separator: ", ") + (labels.count > 20 ? ", … (\(labels.count) in all)" : "")
    }

    func printTable(_ r: Report) {
        let nameWidth = min(max(r.tensors.map(\.name.count).max() ?? 4, 4), 72)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print("\(r.file): \(r.format), \(r.tensors.count) tensors, \(r.parameters) parameters")
        print(pad("name", nameWidth) + "  " + pad("dtype", 5) + "  " + pad("shape", 16) + "  bytes")
        for row in r.tensors {
            let shape = "[" + row.shape.map(String.init).joined(separator: ", ") + "]"
            print(pad(row.name, nameWidth) + "  " + pad(row.dtype, 5) + "  " + pad(shape, 16) + "  \(row.bytes)")
        }
        if let scheme = r.scheme { print("naming: \(scheme)") }
        if let c = r.config, let source = r.configSource {
            print("config (\(source)): vocab \(c.vocabSize), hidden \(c.hiddenSize), layers \(c.numHiddenLayers), heads \(c.numAttentionHeads), FFN \(c.intermediateSize), positions \(c.maxPositionEmbeddings), act \(c.hiddenAct.rawValue), eps \(c.layerNormEps)")
        }
        if let v = r.vocabSize { print("vocabulary: \(v) tokens") }
        if let mlm = r.hasMLMHead { print("MLM head: \(mlm ? "yes" : "no")") }
        if let labels = r.labels {
            print("classifier: \(labels.count) label\(labels.count == 1 ? "" : "s") (\(r.problemType ?? "")): \(Self.listed(labels))")
        } else if r.hasMLMHead != nil {
            print("classifier: no")
        }
        if let why = r.notABert { print("not a loadable BERT: \(why)") }
        for note in r.notes { print("note: \(note)") }
    }
}
