import HDExport
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// The masked model (pruned weights zero, LayerNorms over kept dims, attention scale of the original
/// head size) against the same weights with the pruned rows and columns physically removed.
@Suite struct ShrinkTests {
    /// Which units each case keeps, as "keep unit j when (j · step + offset) mod m < r" patterns,
    /// so every head keeps the same count and the kept set is scattered, not a prefix.
    struct Case: Sendable, CustomStringConvertible {
        let hidden: Int, perHead: Int, ffn: Int
        var description: String { "hidden \(hidden), head \(perHead), ffn \(ffn)" }
    }

    static let cases = [Case(hidden: 32, perHead: 8, ffn: 64), Case(hidden: 20, perHead: 5, ffn: 40), Case(hidden: 8, perHead: 1, ffn: 8)]

    /// Keeps `count` of `size` units spread over the range, from a seeded shuffle.
    static func flags(size: Int, count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var order = Array(0..<size)
        for i in stride(from: size - 1, to: 0, by: -1) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            order.swapAt(i, Int((state >> 33) % UInt64(i + 1)))
        }
        var out = [Float](repeating: 0, count: size)
        for j in order.prefix(count) { out[j] = 1 }
        return out
    }

    /// tiny-bert with masks applied: its flat parameters (pruned entries zeroed) and the masked model.
    static func masked(_ c: Case) throws -> (BertParameters, PruneMasks, BertModel) {
        let checkpoint = try Checkpoint.load(TestSupport.fixture("tiny-bert"))
        let parameters = try BertParameters(copying: try BertModel(checkpoint: checkpoint))
        let config = checkpoint.config
        let masks = try PruneMasks(config: config)
        try masks.set(.hidden, from: flags(size: 32, count: c.hidden, seed: 1), source: "<test>")
        for l in 0..<config.numHiddenLayers {
            for (g, seed) in [(PruneGroup.queryKey(l), 10), (.value(l), 20)] {
                let heads = (0..<4).flatMap { h in flags(size: 8, count: c.perHead, seed: UInt64(seed + 4 * l + h)) }
                try masks.set(g, from: heads, source: "<test>")
            }
            try masks.set(.ffn(l), from: flags(size: 64, count: c.ffn, seed: UInt64(30 + l)), source: "<test>")
        }
        masks.zeroPruned(parameters.flat, layout: parameters.layout)
        let model = try BertModel(config: config, weights: parameters.model.weights, masks: masks)
        return (parameters, masks, model)
    }

    static let batch: TokenBatch = try! TokenBatch(ids: [[2, 15, 27, 4, 88, 9, 31, 3], [2, 41, 7, 3, 0, 0, 0, 0]],
                                                   attentionMask: [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0]])

    @Test(arguments: cases)
    func maskedModelEqualsTheShrunkModel(_ c: Case) throws {
        let (_, masks, model) = try Self.masked(c)
        let dense = try Shrink.dense(model, masks: masks)
        #expect(dense.config.hiddenSize == c.hidden)
        #expect(dense.config.layer(1) == LayerShape(attentionHeads: 4, headSize: c.perHead, intermediateSize: c.ffn))

        let options = ForwardOptions(hiddenStates: true)
        let a = try model.forward(Self.batch, options: options), b = try dense.forward(Self.batch, options: options)
        let kept = masks.flags(.hidden).indices.filter { masks.flags(.hidden)[$0] != 0 }
        for (k, (sm, sd)) in zip(try #require(a.hiddenStates), try #require(b.hiddenStates)).enumerated() {
            let rows = sm.count / 32
            let gathered = (0..<rows).flatMap { r in kept.map { sm[r * 32 + $0] } }
            #expect(relativeError(gathered, sd) <= 1e-5, "hidden state \(k)")
            // Pruned dimensions of the residual stream are exactly zero.
            #expect((0..<sm.count).allSatisfy { masks.flags(.hidden)[$0 % 32] != 0 || sm[$0] == 0 })
        }
        let la = try model.mlmLogits(a), lb = try dense.mlmLogits(b)
        #expect(relativeError(la, lb) <= 1e-5)
    }

    /// The masked backward gives the dense model's gradients at every kept entry (W_Q's divided by the
    /// folded factor). Pruned entries may get gradients; the pruner zeroes them before the optimiser.
    @Test(arguments: cases.dropFirst())
    func maskedGradientsEqualTheShrunkModelsGradients(_ c: Case) throws {
        let (parameters, masks, model) = try Self.masked(c)
        let dense = try Shrink.dense(model, masks: masks)
        let denseParameters = try BertParameters(copying: dense)
        let rows: [Int32] = [1, 3, 5, 9, 10]
        func gradients(_ m: BertModel, _ layout: BertParameterLayout) throws -> BertGradients {
            let act = try BertActivations(config: m.config, batchSize: 2, sequenceLength: 8)
            let mlm = try BertMLMActivations(config: m.config, maxRows: rows.count)
            let buffers = try BertBackwardBuffers(config: m.config, batchSize: 2, sequenceLength: 8)
            try m.forward(Self.batch, activations: act)
            try m.mlmForward(rows: rows, activations: act, mlm: mlm)
            let dLogits = mlm.logitGradients
            for i in dLogits.indices { dLogits[i] = Float((i * 37) % 11) / 11 - 0.5 }
            buffers.prepare()
            let g = try BertGradients(layout: layout)
            try m.backward(Self.batch, activations: act, mlm: mlm, buffers: buffers, gradients: g)
            return g
        }
        let gm = try gradients(model, parameters.layout), gd = try gradients(denseParameters.model, denseParameters.layout)
        let kept = Dictionary(uniqueKeysWithValues: masks.groups.map { g in (g, masks.flags(g).indices.filter { masks.flags(g)[$0] != 0 }) })
        for coupling in PruneMasks.couplings(parameters.layout) {
            let full = try #require(gm[coupling.entry.name]), small = Array(try #require(gd[coupling.entry.name]))
            let (r, cols) = coupling.matrix
            let rowIndex = coupling.rows.map { kept[$0]! } ?? Array(0..<r)
            let columnIndex = coupling.columns.map { kept[$0]! } ?? Array(0..<cols)
            var gathered = rowIndex.flatMap { i in columnIndex.map { full[i * cols + $0] } }
            if case .queryKey? = coupling.rows, coupling.entry.name.contains("query") {
                // W_Q' = c·W_Q in the dense model, so dL/dW_Q' = dL/dW_Q / c.
                let fold = Float(1 / 8.0.squareRoot()) * Float(c.perHead).squareRoot()
                gathered = gathered.map { $0 / fold }
            }
            if coupling.entry.name.hasSuffix("key.bias") {
                // Its true gradient is 0 (softmax ignores a constant per row): both sides are rounding noise.
                #expect((gathered + small).allSatisfy { abs($0) < 1e-6 }, "\(coupling.entry.name)")
            } else {
                #expect(relativeError(gathered, small) <= 1e-4, "\(coupling.entry.name)")
            }
        }
    }
}
