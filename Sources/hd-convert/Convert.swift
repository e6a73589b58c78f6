import ArgumentParser
import Foundation
import HDCommandLine
import HDFormats
import HDModel

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint as canonical safetensors (default), an .npz archive, or a Hugging Face directory.",
        discussion: """
        The default output is <stem>.safetensors beside the input: f32 tensors under canonical Hugging Face \
        names, with hd.config, hd.vocab and hd.source (input name and sha256) in its metadata. Every output \
        is written to a temp file, re-read and validated, then renamed into place.

        Every float tensor is written as f32: F16 and BF16 widen exactly; F64 is rounded to the nearest f32 \
        and a note (and --json's narrowed_from_f64) gives the largest relative change. An -o ending in \
        .safetensors, .npz or .npy must agree with --to.
        """)

    enum Target: String, ExpressibleByArgument, CaseIterable {
        case safetensors, npz
        case hfDir = "hf-dir"
    }

    @Argument(help: ArgumentHelp("Checkpoint file (.safetensors, .npz) or Hugging Face directory.", valueName: "input"))
    var input: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output path (a directory for --to hf-dir).", valueName: "path"))
    var output: String?

    @Option(name: .long, help: "Output format: safetensors, npz or hf-dir (config.json + model.safetensors + vocab.txt). An -o ending in .safetensors, .npz or .npy must agree with it.")
    var to: Target = .safetensors

    @Flag(name: .long, help: "Deflate the members of an .npz output (numpy.savez_compressed layout).")
    var compress = false

    @Flag(name: .long, help: "Print a JSON summary of what was written.")
    var json = false

    @OptionGroup var load: LoadFlags
    @OptionGroup var threads: ThreadsFlag

    func validate() throws {
        if compress && to != .npz { throw ValidationError("--compress applies only to --to npz") }
        if let output, let problem = Self.extensionMismatch(output: output, target: to) { throw ValidationError(problem) }
    }

    /// Why `-o output` contradicts `--to target`, or nil. Files are recognised by content, but an
    /// extension that promises one format over bytes of another is refused by every reader, so a
    /// safetensors file named .npz (or the reverse) is never written.
    static func extensionMismatch(output: String, target: Target) -> String? {
        let base = output.split(separator: "/").last.map(String.init) ?? output
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return nil }
        let ext = base[base.index(after: dot)...].lowercased()
        switch (ext, target) {
        case ("npz", .safetensors):
            return "-o \(output): the extension .npz promises a NumPy archive, but hd-convert writes safetensors unless --to says otherwise; pass --to npz to write an .npz (tensors only: no config or vocabulary inside), or name the output .safetensors"
        case ("safetensors", .npz):
            return "-o \(output): the extension .safetensors promises a safetensors file, but --to npz writes an .npz archive; name the output .npz, or drop --to npz"
        case ("npy", _):
            return "-o \(output): hd-convert writes no .npy (one array cannot hold a model); use --to npz with an .npz name, or a .safetensors name"
        case ("safetensors", .hfDir), ("npz", .hfDir):
            return "-o \(output): --to hf-dir writes a directory (config.json, model.safetensors, vocab.txt), not a .\(ext) file; name a directory"
        default:
            return nil
        }
    }

    func outputPath() throws -> String {
        if let output { return output }
        let directory = input.hasSuffix("/") ? String(input.dropLast()) : input
        var isDirectory: ObjCBool = false
        let inputIsDirectory = FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && isDirectory.boolValue
        let base = inputIsDirectory ? directory : String(directory[..<(directory.lastIndex(of: ".") ?? directory.endIndex)])
        let path: String
        switch to {
        case .safetensors: path = base + ".safetensors"
        case .npz: path = base + ".npz"
        case .hfDir: path = base + "-hf"
        }
        if path == input {
            throw ValidationError("the default output \(path) is the input itself; pass -o to choose where to write")
        }
        return path
    }

    struct Summary: Encodable {
        var input: String
        var output: String
        var format: String
        var tensors: Int
        var parameters: Int
        var scheme: String
        var configSource: String
        var notes: [String]
        /// A sequence classifier's labels in id order, when the model is one.
        var labels: [String]?
        /// Present when the input held F64 tensors, which are written as f32 (the canonical type).
        var narrowedFromF64: Narrowing?

        enum CodingKeys: String, CodingKey {
            case input, output, format, tensors, parameters, scheme, notes, labels
            case configSource = "config_source", narrowedFromF64 = "narrowed_from_f64"
        }
    }

    /// F64 input tensors narrowed to f32: how many, and the largest relative change |f32 − f64| / |f64|
    /// (nil in JSON only if it is not finite, which the finite-weights check refuses before writing).
    struct Narrowing: Encodable {
        var tensors: Int
        var changed: Int
        var maxRelativeChange: Double?
        var worstTensor: String

        enum CodingKeys: String, CodingKey {
            case tensors, changed
            case maxRelativeChange = "max_relative_change", worstTensor = "worst_tensor"
        }

        init?(_ narrowings: [(name: String, maxRelativeChange: Double)]) {
            guard let worst = narrowings.max(by: { $0.maxRelativeChange < $1.maxRelativeChange }) else { return nil }
            tensors = narrowings.count
            changed = narrowings.filter { $0.maxRelativeChange > 0 }.count
            maxRelativeChange = worst.maxRelativeChange.isFinite ? worst.maxRelativeChange : nil
            worstTensor = worst.name
        }

        var note: String {
            let change = maxRelativeChange.map { String(format: "%.3g", $0) } ?? "infinite"
            return changed == 0
                ? "\(tensors) F64 tensor(s) written as f32 (the canonical type); every value was exact in f32"
                : "\(tensors) F64 tensor(s) narrowed to f32 (the canonical type), \(changed) of them with values that changed: largest relative change \(change) (tensor \(worstTensor)); keep the F64 source if you need those digits"
        }
    }

    func run() throws {
        try ToolErrors.reporting("hd-convert", json: json) {
            _ = try Checkpoint.resolveModelFile(input)  // a missing input is named before the output is checked
            let destination = try outputPath(), inputs = [input, load.config, load.vocab].compactMap { $0 }
            if to == .hfDir {
                try OutputPath.checkDirectory(destination, flag: "-o", files: HuggingFaceDirectory.fileNames, inputs: inputs)
            } else {
                try OutputPath.checkFile(destination, inputs: inputs)
            }
            let checkpoint = try Checkpoint.load(input, options: load.options(threads: threads.threads))
            let digest = try FileDigest.sha256(path: checkpoint.source)
            switch to {
            case .safetensors:
                try SafeTensors.write(checkpoint.canonicalTensorSet(sourceDigest: digest), to: destination)
            case .npz:
                try Npz.write(checkpoint.tensors.storingFloatsAsF32(), to: destination, compression: compress ? .deflated : .stored)
            case .hfDir:
                try HuggingFaceDirectory.write(checkpoint, to: destination, sourceDigest: digest)
            }
            var notes = checkpoint.notes
            let narrowing = Narrowing(checkpoint.tensors.float64Narrowings)
            if let narrowing { notes.append(narrowing.note) }
            if to == .npz { notes.append("an .npz holds no metadata: keep a config.json (and vocab.txt) beside it, or pass --config when reading it") }
            let summary = Summary(input: input, output: destination, format: to.rawValue, tensors: checkpoint.tensors.tensors.count,
                                  parameters: checkpoint.size.parameters, scheme: checkpoint.scheme.description,
                                  configSource: checkpoint.configSource, notes: notes,
                                  labels: checkpoint.hasClassifier ? checkpoint.config.id2label : nil, narrowedFromF64: narrowing)
            if json {
                try JSONOutput.print(summary)
            } else {
                print("wrote \(destination) (\(to.rawValue)): \(summary.tensors) tensors, \(summary.parameters) parameters")
                print("read \(checkpoint.source) as \(checkpoint.kind.description), \(summary.scheme); config \(summary.configSource)")
                if let labels = summary.labels {
                    print("sequence classifier: \(labels.count) label\(labels.count == 1 ? "" : "s"): \(Inspect.listed(labels))")
                }
                for note in notes { print("note: \(note)") }
            }
        }
    }
}
