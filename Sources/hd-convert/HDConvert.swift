import ArgumentParser
import Foundation

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
        subcommands: [Convert.self, Inspect.self, BenchLoad.self],
        defaultSubcommand: Convert.self)
}
