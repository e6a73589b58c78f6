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
        """)

    enum Target: String, ExpressibleByArgument, CaseIterable {
        case safetensors, npz
        case hfDir = "hf-dir"
    }

    @Argument(help: ArgumentHelp("Checkpoint file (.safetensors, .npz) or Hugging Face directory.", valueName: "input"))
    var input: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output path (a directory for --to hf-dir).", valueName: "path"))
    var output: String?

    @Option(name: .long, help: "Output format: safetensors, npz or hf-dir (config.json + model.safetensors + vocab.txt).")
    var to: Target = .safetensors

    @Flag(name: .long, help: "Deflate the members of an .npz output (numpy.savez_compressed layout).")
    var compress = false

    @Flag(name: .long, help: "Print a JSON summary of what was written.")
    var json = false

    @OptionGroup var load: LoadFlags
    @OptionGroup var threads: ThreadsFlag

    func validate() throws {
        if compress && to != .npz { throw ValidationError("--compress applies only to --to npz") }
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

        enum CodingKeys: String, CodingKey {
            case input, output, format, tensors, parameters, scheme, notes
            case configSource = "config_source"
        }
    }

    func run() throws {
        try ToolErrors.reporting("hd-convert") {
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
                try Npz.write(checkpoint.tensors, to: destination, compression: compress ? .deflated : .stored)
            case .hfDir:
                try HuggingFaceDirectory.write(checkpoint, to: destination, sourceDigest: digest)
            }
            var notes = checkpoint.notes
            if to == .npz { notes.append("an .npz holds no metadata: keep a config.json (and vocab.txt) beside it, or pass --config when reading it") }
            let summary = Summary(input: input, output: destination, format: to.rawValue, tensors: checkpoint.tensors.tensors.count,
                                  parameters: checkpoint.parameterCount, scheme: checkpoint.scheme.description,
                                  configSource: checkpoint.configSource, notes: notes)
            if json {
                try JSONOutput.print(summary)
            } else {
                print("wrote \(destination) (\(to.rawValue)): \(summary.tensors) tensors, \(summary.parameters) parameters")
                print("read \(checkpoint.source) as \(checkpoint.kind.description), \(summary.scheme); config \(summary.configSource)")
                for note in notes { print("note: \(note)") }
            }
        }
    }
}
