import ArgumentParser
import Foundation
import HDFormats
import HDModel

@main
struct HDInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hd-infer",
        abstract: "Run a (pruned) BERT on the CPU: latency, throughput and FLOPs; embeddings, fill-mask and classification on text; a classifier's accuracy on a labelled file; a student beside its teacher.",
        discussion: """
        MODEL is any checkpoint hd-convert reads (safetensors, .npz, a Hugging Face directory), or use \
        --shape for random weights of a given size.

        Exit status: 0 ok, 64 bad usage, 65 bad input data (the message names the file and tensor), 1 other.
        """,
        subcommands: [Bench.self, Tokenize.self, FillMask.self, Embed.self, Classify.self, Evaluate.self, Compare.self],
        defaultSubcommand: Bench.self)
}
