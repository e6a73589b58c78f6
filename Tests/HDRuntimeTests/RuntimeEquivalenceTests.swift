import HDFormats
import HDModel
import HDRuntime
import HDTensor
import HDTestSupport
import Testing

/// The runtime against the reference forward (`BertModel`): same hidden states at every real token,
/// within 1e-5 of the largest magnitude, on the fixture, a per-layer-widths model and splade-tiny.
@Suite struct RuntimeEquivalenceTests {
    /// max |runtime − reference| / max |reference| over the real (unpadded) tokens.
    static func relativeError(_ got: [Float], _ want: [Float], mask: [Int32], width: Int) -> Float {
        var worst: Float = 0, scale: Float = 0
        for (t, m) in mask.enumerated() where m == 1 {
            for j in 0..<width {
                worst = max(worst, abs(got[t * width + j] - want[t * width + j]))
                scale = max(scale, abs(want[t * width + j]))
            }
        }
        return worst / scale
    }

    /// The GEMM kernels this CPU runs.
    static let kernels = GEMMKernel.allCases.filter { $0 != .packed || GEMMKernel.isPackedSupported }

    /// Runs the reference and the runtime with each GEMM kernel; checks hidden states, zeros at
    /// padding, and MLM logits when there is a head.
    static func check(_ model: BertModel, _ batch: TokenBatch, threads: Int = 2) throws {
        for kernel in kernels { try check(model, batch, threads: threads, kernel: kernel) }
    }

    static func check(_ model: BertModel, _ batch: TokenBatch, threads: Int, kernel: GEMMKernel) throws {
        let session = try InferenceSession(model: RuntimeModel(model: model, kernel: kernel), maxBatch: batch.batchSize,
                                           maxLength: batch.sequenceLength, threads: threads)
        try session.forward(batch)
        let reference = try model.forward(batch)
        let got = session.lastHiddenState(), d = model.config.hiddenSize
        #expect(relativeError(got, reference.lastHiddenState, mask: batch.attentionMask, width: d) <= 1e-5)
        for (t, m) in batch.attentionMask.enumerated() where m == 0 {
            #expect(got[(t * d)..<((t + 1) * d)].allSatisfy { $0 == 0 })
        }
        guard model.weights.mlmHead != nil else { return }
        let L = batch.sequenceLength
        let every = batch.attentionMask.indices.filter { batch.attentionMask[$0] == 1 }
            .map { TokenPosition(batch: $0 / L, position: $0 % L) }
        // Every third real token, then every token three times over: more positions than the
        // session has rows.
        let positions = every.enumerated().filter { $0.offset % 3 == 0 }.map(\.element) + every + every + every
        let logits = try session.mlmLogits(positions: positions)
        let want = try model.mlmLogits(reference, positions: .selected(positions))
        let V = model.config.vocabSize
        #expect(relativeError(logits, want, mask: [Int32](repeating: 1, count: positions.count), width: V) <= 1e-5)
    }

    static func tinyModel() throws -> BertModel {
        try BertModel(checkpoint: Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors")))
    }

    @Test func tinyBertFullBatch() throws {
        let ids = (0..<(3 * 17)).map { ($0 * 37 + 5) % 100 }
        try Self.check(Self.tinyModel(), TokenBatch(batchSize: 3, sequenceLength: 17, ids: ids,
                                                    tokenTypes: ids.map { $0 % 2 }))
    }

    @Test(arguments: [1, 2, 3])
    func tinyBertPaddedBatch(threads: Int) throws {
        let sequences = [[2, 14, 15, 16, 3], [2, 40, 41, 42, 43, 44, 45, 46, 47, 48, 3], [2, 7, 3]]
        try Self.check(Self.tinyModel(), TokenBatch.padding(sequences), threads: threads)
    }

    @Test func tinyBertMoreRowsThanAPackedGroup() throws {
        // 6 sequences of up to 60 tokens, padded at different lengths: 300 real rows, so the packed
        // GEMM's row groups (192 rows) end inside a sequence.
        let sequences = (0..<6).map { b in (0..<(60 - 3 * b)).map { ($0 * 13 + b * 7 + 1) % 100 } }
        try Self.check(Self.tinyModel(), TokenBatch.padding(sequences))
    }

    @Test func tinyBertLeftPaddedAndHoles() throws {
        // Masks need not be a prefix: every real token attends to the real tokens of its row only.
        let ids = (0..<16).map { ($0 * 11 + 3) % 100 }
        let mask = [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1]
        try Self.check(Self.tinyModel(), TokenBatch(batchSize: 2, sequenceLength: 8, ids: ids, attentionMask: mask))
    }

    @Test func perLayerWidths() throws {
        let shapes = [LayerShape(attentionHeads: 3, headSize: 8, intermediateSize: 40),
                      LayerShape(attentionHeads: 2, headSize: 12, intermediateSize: 24),
                      LayerShape(attentionHeads: 4, headSize: 5, intermediateSize: 72)]
        let config = BertConfig(vocabSize: 50, hiddenSize: 36, numHiddenLayers: 3, numAttentionHeads: 4,
                                intermediateSize: 64, maxPositionEmbeddings: 32, hiddenAct: .geluNew,
                                headSizeOverride: 9, layerShapes: shapes, attentionScale: 0.25)
        var state: UInt64 = 7
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) * 0x1p-24 - 0.5
        }
        var tensors: [String: Tensor] = [:]
        let head = BertNames.optionalGroups(config).first { $0.group == "MLM head" }!.tensors
        for (name, shape) in BertNames.requiredShapes(config) + head {
            tensors[name] = Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in random() })
        }
        let model = try BertModel(config: config, weights: BertWeights(tensors: TensorSet(tensors: tensors), config: config, source: "<test>"))
        let sequences = [(0..<20).map { ($0 * 7) % 50 }, (0..<13).map { ($0 * 3 + 1) % 50 }]
        try Self.check(model, TokenBatch.padding(sequences))
    }

    @Test(arguments: ["splade-tiny", "minilm"])
    func realCheckpoint(name: String) throws {
        let model = try BertModel(checkpoint: Checkpoint.load(TestSupport.realModel(name)))
        let sequences = [[101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102],
                         (0..<64).map { $0 == 0 ? 101 : $0 == 63 ? 102 : 2000 + $0 * 97 % 20000 }]
        try Self.check(model, TokenBatch.padding(sequences))
    }
}
