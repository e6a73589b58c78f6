import ArgumentParser
import Foundation
import HDFormats
import HDModel

@main
struct HDConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hd-convert",
        abstract: "Convert a BERT checkpoint into homodistil's canonical safetensors file, or back out.",
        discussion: """
        Reads safetensors, NumPy .npz (stored or deflated) or a Hugging Face directory, with Hugging Face, \
        old LayerNorm.gamma/beta, TensorFlow or sentence-transformers names, and writes one canonical file: \
        f32 tensors under Hugging Face names with the config and vocabulary embedded in its metadata.

        Exit status: 0 ok, 64 bad usage, 65 bad input data (the message names the file and tensor), 1 other.
        """,
        subcommands: [Convert.self, Inspect.self],
        defaultSubcommand: Convert.self)
}

/// Options shared by every command that loads a checkpoint.
struct LoadFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("config.json to use instead of the embedded one or the one beside the input.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("vocab.txt to use instead of the embedded one or the one beside the input.", valueName: "file"))
    var vocab: String?

    @Option(name: .long, help: "Attention heads, when there is no config (default: hidden size / 64, with a note).")
    var heads: Int?

    @Flag(name: .long, help: "Drop tensors that are not part of a BERT checkpoint instead of refusing the file.")
    var allowExtra = false

    @Option(name: .long, help: "Cores for decompressing deflated .npz members (0: all).")
    var threads = 0

    func options() -> LoadOptions {
        var o = LoadOptions()
        o.configPath = config
        o.vocabPath = vocab
        o.heads = heads
        o.allowExtra = allowExtra
        o.threads = threads
        return o
    }

    func validate() throws {
        if let heads, heads <= 0 { throw ValidationError("--heads must be positive, found \(heads)") }
        if threads < 0 { throw ValidationError("--threads must be ≥ 0, found \(threads)") }
    }
}

/// Maps our typed errors to the documented exit statuses with a one-line message.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as FormatError {
        FileHandle.standardError.write(Data("hd-convert: error: \(error.description)\n".utf8))
        throw ExitCode(65)
    } catch let error as ModelError {
        FileHandle.standardError.write(Data("hd-convert: error: \(error.description)\n".utf8))
        throw ExitCode(65)
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
}
