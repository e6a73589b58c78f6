import HDFormats
import HDModel
import HDRuntime
import HDTestSupport
import Testing

@Suite struct RuntimeTests {
    static func tinySession(batch: Int = 2, length: Int = 8) throws -> InferenceSession {
        let model = try BertModel(checkpoint: Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors")))
        return try InferenceSession(model: RuntimeModel(model: model), maxBatch: batch, maxLength: length, threads: 2)
    }

    /// Counted by hand for d = 32, a = 32 (4 × 8), f = 64, one sequence of 10 tokens and one of 6.
    @Test func flopCountByHand() throws {
        let config = BertConfig(vocabSize: 100, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64)
        let report = FlopReport(config: config, lengths: [10, 6])
        // 16 tokens: Q/K/V 2·16·32·96 = 98304, attention-out 2·16·32·32 = 32768, FFN 2·2·16·32·64 = 131072
        #expect(report.layers[0].gemm == 98304 + 32768 + 131072)
        // Q·Kᵀ and P·V: 2·2·(10² + 6²)·32 = 17408
        #expect(report.layers[0].attention == 17408)
        // biases 16·(96 + 32 + 64 + 32) = 3584; two residual+LayerNorms 2·16·32·9 = 9216;
        // GELU 16·64·8 = 8192; softmax (100 + 36)·4 heads·5 = 2720
        #expect(report.layers[0].elementwise == 3584 + 9216 + 8192 + 2720)
        // word + position + type sums and LayerNorm: 16·32·(2 + 8)
        #expect(report.embeddings == FlopCount(elementwise: 5120))
        #expect(report.total.total == 5120 + 2 * (262144 + 17408 + 23712))
        #expect(FlopReport(config: config, batchSize: 2, sequenceLength: 8) == FlopReport(config: config, lengths: [8, 8]))
    }

    @Test func designFormulaForBertBase() {
        // DESIGN.md §6 at n = 128: 2n·d·3a + 2n·a·d + 2·2n²·a + 2·2n·d·f per layer.
        let config = BertConfig(vocabSize: 30522, hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072)
        let n = 128, d = 768, f = 3072
        let perLayer = 2 * n * d * 3 * d + 2 * n * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * f
        let total = FlopReport(config: config, batchSize: 1, sequenceLength: n).total
        #expect(total.gemm + total.attention == 12 * perLayer)
    }

    @Test func batchLargerThanTheSessionIsRefused() throws {
        let session = try Self.tinySession(batch: 1, length: 4)
        #expect(throws: ModelError.self) { try session.forward(TokenBatch(batchSize: 2, sequenceLength: 4, ids: [Int](repeating: 5, count: 8))) }
        #expect(throws: ModelError.self) { try session.forward(TokenBatch(batchSize: 1, sequenceLength: 5, ids: [Int](repeating: 5, count: 5))) }
    }

    @Test(arguments: [
        ("id outside the vocabulary", [5, 100, 7, 8], [1, 1, 1, 1]),
        ("all padding", [5, 6, 7, 8], [0, 0, 0, 0]),
    ])
    func badBatchesAreRefused(_ why: String, ids: [Int], mask: [Int]) throws {
        let session = try Self.tinySession(batch: 1, length: 4)
        #expect(throws: ModelError.self, "\(why)") {
            try session.forward(TokenBatch(batchSize: 1, sequenceLength: 4, ids: ids, attentionMask: mask))
        }
    }

    @Test func paddedMLMPositionIsRefused() throws {
        let session = try Self.tinySession()
        try session.forward(TokenBatch.padding([[2, 5, 3], [2, 5, 6, 7, 3]]))
        #expect(session.rows == 8)
        #expect(session.row(sequence: 0, position: 3) == nil)
        #expect(session.row(sequence: 1, position: 4) == 7)
        #expect(throws: ModelError.self) { try session.mlmLogits(positions: [TokenPosition(batch: 0, position: 4)]) }
    }

    @Test func sessionShapeBeyondPositionTableIsRefused() throws {
        let model = try BertModel(checkpoint: Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors")))
        #expect(throws: ModelError.self) { try InferenceSession(model: RuntimeModel(model: model), maxBatch: 1, maxLength: 65, threads: 1) }
        #expect(throws: ModelError.self) { try InferenceSession(model: RuntimeModel(model: model), maxBatch: Int.max, maxLength: 64, threads: 1) }
    }

    @Test func syntheticModelIsDeterministicAndRuns() throws {
        let config = BertConfig(vocabSize: 64, hiddenSize: 24, numHiddenLayers: 2, numAttentionHeads: 3, intermediateSize: 40)
        let a = try RuntimeModel.synthetic(config: config, seed: 1), b = try RuntimeModel.synthetic(config: config, seed: 1)
        #expect(a.layers[1].qkv.weight.array == b.layers[1].qkv.weight.array)
        #expect(a.size.parameters == 64 * 24 + 512 * 24 + 2 * 24 + 2 * 24 + 2 * (72 * 24 + 72 + 24 * 24 + 24 + 40 * 24 + 40 + 24 * 40 + 24 + 4 * 24))
        let session = try InferenceSession(model: a, maxBatch: 1, maxLength: 6, threads: 2)
        try session.forward(TokenBatch(batchSize: 1, sequenceLength: 6, ids: [1, 2, 3, 4, 5, 6]))
        #expect(session.packedHiddenState.allSatisfy { $0.isFinite })
    }
}
