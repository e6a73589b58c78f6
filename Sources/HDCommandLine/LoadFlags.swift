import ArgumentParser
import Foundation
import HDModel

/// Options shared by every command that loads a checkpoint.
public struct LoadFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("config.json to use instead of the embedded one or the one beside the input.", valueName: "file"))
    public var config: String?

    @Option(name: .long, help: ArgumentHelp("vocab.txt to use instead of the embedded one or the one beside the input.", valueName: "file"))
    public var vocab: String?

    @Option(name: .long, help: "Attention heads, when there is no config (default: hidden size / 64, with a note).")
    public var heads: Int?

    @Flag(name: .long, help: "Drop tensors that are not part of a BERT checkpoint instead of refusing the file.")
    public var allowExtra = false

    public init() {}

    public func options(threads: Int = 0, checkFinite: Bool = true) -> LoadOptions {
        var o = LoadOptions()
        o.configPath = config
        o.vocabPath = vocab
        o.heads = heads
        o.allowExtra = allowExtra
        o.threads = threads
        o.checkFinite = checkFinite
        return o
    }

    public func validate() throws {
        if let heads, heads <= 0 { throw ValidationError("--heads must be positive, found \(heads)") }
    }
}

/// `--threads`: cores for the work that parallelises (decompression, element-wise kernels, BLAS).
public struct ThreadsFlag: ParsableArguments {
    @Option(name: .long, help: "Cores to use (0: all of them).")
    public var threads = 0

    public init() {}

    /// The count to use: the flag, or every online core for 0.
    public var resolved: Int { threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount }

    public func validate() throws {
        if threads < 0 { throw ValidationError("--threads must be ≥ 0, found \(threads)") }
    }
}
