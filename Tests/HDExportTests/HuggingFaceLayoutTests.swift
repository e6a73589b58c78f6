import HDExport
import HDModel
import HDTestSupport
import Testing

/// The zero-padded Hugging Face layout of a shrunk student: transformers' BertConfig widths, the
/// same function (through our forward, on the padded matrices), and a refusal naming nearby widths
/// where no exact layout exists.
@Suite("Hugging Face layout") struct HuggingFaceLayoutTests {
    @Test func paddedHeadsAndFFNComputeWhatTheDenseModelComputes() throws {
        let dense = try ONNXGraphTests.perLayerStudent()
        #expect(HuggingFaceDirectory.unloadableReason(dense.config) != nil && HuggingFaceLayout.refusal(dense.config) == nil)
        let padded = try HuggingFaceLayout.padded(dense)
        let c = padded.config
        #expect(HuggingFaceDirectory.unloadableReason(c) == nil)
        #expect(c.hiddenSize == 24 && c.numAttentionHeads == 4 && c.headSize == 6 && c.intermediateSize == 40)
        #expect(c.layerShapes == nil && c.headSizeOverride == nil && c.attentionScale == nil)
        let report = try Equivalence.measure(reference: dense, candidate: padded,
                                             batch: Equivalence.checkBatch(dense.config, sequences: 3))
        #expect(report.worst.error <= 1e-5, "\(report.worst)")
        #expect(report.mlmLogits != nil && report.hiddenStates.count == 3)
        // The padded rows and columns are exactly zero: layer 1 keeps 3 of 6 dimensions per head.
        let key = padded.weights.layers[1].attention.key
        for head in 0..<4 { for i in 3..<6 { #expect((0..<24).allSatisfy { key.weight.buffer[(head * 6 + i) * 24 + $0] == 0 }) } }
        #expect((24..<40).allSatisfy { padded.weights.layers[1].intermediate.bias.buffer[$0] == 0 })
    }

    /// Widths with no exact layout, and what the refusal must name.
    @Test(arguments: [
        (hidden: 18, heads: 4, headSize: 4, named: ["not a multiple of 4 heads", "hidden 16", "hidden 20"]),
        (hidden: 16, heads: 4, headSize: 8, named: ["head size 8 is above hidden / heads", "head size ≤ 4", "hidden ≥ 32"]),
        (hidden: 30, heads: 4, headSize: 8, named: ["hidden 32", "hidden 28 with head size ≤ 7"]),
    ])
    func refusesWidthsWithoutAnExactLayout(_ hidden: Int, _ heads: Int, _ headSize: Int, _ named: [String]) throws {
        let config = BertConfig(vocabSize: 100, hiddenSize: hidden, numHiddenLayers: 2, numAttentionHeads: heads,
                                intermediateSize: 32, headSizeOverride: headSize)
        let reason = try #require(HuggingFaceLayout.refusal(config))
        for part in named { #expect(reason.contains(part), "\(part) in: \(reason)") }
        #expect(throws: ModelError.self) { try HuggingFaceLayout.paddedConfig(config) }
    }
}
