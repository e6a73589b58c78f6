import HDFormats
import HDModel
import HDTestSupport
import Testing

/// The one count (`ModelSize`) against an independent one: the floats the canonical file holds.
@Suite struct ModelSizeTests {
    @Test(arguments: ["tiny-bert/model.safetensors"])
    func parametersAreTheFloatsOfTheCanonicalFile(_ fixture: String) throws {
        let checkpoint = try Checkpoint.load(TestSupport.fixture(fixture))
        let model = try BertModel(checkpoint: checkpoint)
        #expect(ModelSize(model).parameters == checkpoint.tensors.elementCount)
        #expect(checkpoint.size == ModelSize(model))
    }

    /// Each part of the definition moves the count by exactly its own floats.
    @Test func poolerAndHeadCountAsDocumented() {
        let c = BertConfig(vocabSize: 100, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16,
                           maxPositionEmbeddings: 32, typeVocabSize: 2)
        let bare = c.parameterCount(hasPooler: false, mlmHead: .none)
        #expect(bare == (100 + 32 + 2) * 8 + 2 * 8 + 2 * (3 * (8 * 8 + 8) + (8 * 8 + 8) + 2 * 8 + (16 * 8 + 16) + (8 * 16 + 8) + 2 * 8))
        #expect(c.parameterCount(hasPooler: true, mlmHead: .none) == bare + 8 * 8 + 8)
        #expect(c.parameterCount(hasPooler: false, mlmHead: .tied) == bare + 8 * 8 + 8 + 2 * 8 + 100)
        #expect(c.parameterCount(hasPooler: false, mlmHead: .untied) == bare + 8 * 8 + 8 + 2 * 8 + 100 + 100 * 8)
        // FLOPs: DESIGN.md §6's matrix products for one 128-token sequence are part of the total.
        let n = 128, gemm = c.numHiddenLayers * (2 * n * 8 * 24 + 2 * n * 8 * 8 + 2 * 2 * n * 8 * 16)
        let size = ModelSize(config: c, hasPooler: false, mlmHead: .none)
        #expect(size.flopsPer128TokenSequence == FlopReport(config: c, batchSize: 1, sequenceLength: n).total.total)
        #expect(FlopReport(config: c, batchSize: 1, sequenceLength: n).total.gemm == gemm)
    }
}
