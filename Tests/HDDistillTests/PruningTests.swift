import HDDistill
import HDFormats
import HDModel
import HDTensor
import HDTestSupport
import Testing

@Suite struct PruneScheduleTests {
    /// r(t) = r_T + (1 − r_T)(1 − (t − t_i)/(T − t_i − t_f))³, as counts: 1000 units to 250 between
    /// steps 10 and 50, rounded up to a multiple of 8.
    @Test func cubicKeepsTheScheduledCountAtEveryStep() throws {
        let s = try PruneSchedule(start: 10, end: 50, every: 5)
        for t in 0...60 {
            let p = min(max(Double(t - 10) / 40, 0), 1)
            let exact = 250 + 750 * (1 - p) * (1 - p) * (1 - p)
            let expected = t >= 50 ? 250 : min(1000, max(250, Int((exact / 8).rounded(.up)) * 8))
            #expect(s.kept(atStep: t, size: 1000, target: 250, multiple: 8) == expected, "step \(t)")
        }
        #expect(s.kept(atStep: 10, size: 1000, target: 250, multiple: 8) == 1000)
        #expect(s.kept(atStep: 50, size: 1000, target: 250, multiple: 8) == 250)
        #expect(s.kept(atStep: 30, size: 1000, target: 250, multiple: 1) == 250 + Int((750.0 / 8).rounded(.up)))
        let counts = (0...60).map { s.kept(atStep: $0, size: 1000, target: 250, multiple: 8) }
        #expect(zip(counts, counts.dropFirst()).allSatisfy { $0 >= $1 })
    }

    @Test func masksChangeEveryDeltaTAndAtTheEnd() throws {
        let s = try PruneSchedule(start: 10, end: 47, every: 5)
        #expect((1...60).filter { s.updatesMasks(atStep: $0) } == [15, 20, 25, 30, 35, 40, 45, 47])
        let one = try PruneSchedule(kind: .oneShot, start: 0, end: 0, every: 1)
        #expect((1...10).filter { one.updatesMasks(atStep: $0) } == [1])
        #expect(one.kept(atStep: 1, size: 64, target: 16, multiple: 8) == 16)
    }

    @Test(arguments: [(0, 0, 1), (5, 5, 1), (-1, 10, 1), (0, 10, 0)])
    func refusesABadSchedule(_ bad: (start: Int, end: Int, every: Int)) {
        #expect(throws: DistillError.self) { try PruneSchedule(start: bad.start, end: bad.end, every: bad.every) }
    }
}

@Suite struct ImportanceTests {
    static func layout() throws -> BertParameterLayout {
        try BertParameterLayout(config: BertConfig(vocabSize: 10, hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2,
                                                   intermediateSize: 12, maxPositionEmbeddings: 6), hasMLMHead: true, isTied: true)
    }

    static func filled(_ count: Int, seed: UInt64) -> FlatFloats {
        let out = FlatFloats(count: count)
        var rng = Xoshiro256(seed: seed)
        for i in 0..<count { out.buffer[i] = rng.nextUnitFloat() - 0.5 }
        return out
    }

    /// PLATON's two averages after two steps, by hand, at one weight.
    @Test func platonSmoothsTheSensitivityAndItsUncertainty() throws {
        let layout = try Self.layout()
        let importance = Importance(kind: .platon, layout: layout)
        let p = Self.filled(layout.count, seed: 1), g1 = Self.filled(layout.count, seed: 2), g2 = Self.filled(layout.count, seed: 3)
        importance.update(parameters: UnsafeBufferPointer(p.buffer), gradients: UnsafeBufferPointer(g1.buffer))
        importance.update(parameters: UnsafeBufferPointer(p.buffer), gradients: UnsafeBufferPointer(g2.buffer))
        let i = 37
        let i1 = abs(p.buffer[i] * g1.buffer[i]), i2 = abs(p.buffer[i] * g2.buffer[i])
        let a1 = 0.15 * i1, u1 = 0.05 * abs(i1 - a1)
        let a2 = 0.85 * a1 + 0.15 * i2, u2 = 0.95 * u1 + 0.05 * abs(i2 - a2)
        #expect(abs(importance.mean.buffer[i] - a2) <= 1e-7 && abs(importance.uncertainty.buffer[i] - u2) <= 1e-7)
    }

    /// Units whose weights are all zero score exactly zero under every criterion; the others do not.
    @Test(arguments: Importance.Kind.allCases)
    func aUnitWithZeroWeightsScoresZero(_ kind: Importance.Kind) throws {
        let layout = try Self.layout()
        let masks = try PruneMasks(config: layout.config)
        let p = Self.filled(layout.count, seed: 4), g = Self.filled(layout.count, seed: 5)
        // Zero hidden unit 3, FFN neuron 5 and dimension 1 of every head's V by pruning them...
        var hidden = [Float](repeating: 1, count: 8); hidden[3] = 0
        var ffn = [Float](repeating: 1, count: 12); ffn[5] = 0
        let value: [Float] = [1, 0, 1, 1, 1, 0, 1, 1]
        try masks.set(.hidden, from: hidden, source: "<test>")
        try masks.set(.ffn(0), from: ffn, source: "<test>")
        try masks.set(.value(0), from: value, source: "<test>")
        masks.zeroPruned(p.buffer, layout: layout)
        // ...and score them with fresh all-kept masks, so nothing but the zero weights makes them 0.
        let importance = Importance(kind: kind, layout: layout)
        importance.update(parameters: UnsafeBufferPointer(p.buffer), gradients: UnsafeBufferPointer(g.buffer))
        importance.update(parameters: UnsafeBufferPointer(p.buffer), gradients: UnsafeBufferPointer(g.buffer))
        let scores = importance.unitScores(masks: try PruneMasks(config: layout.config), parameters: UnsafeBufferPointer(p.buffer))
        #expect(scores[.hidden]![3] == 0 && scores[.ffn(0)]![5] == 0 && scores[.value(0)]![1] == 0 && scores[.value(0)]![5] == 0)
        #expect(scores[.hidden]!.enumerated().allSatisfy { $0.offset == 3 || $0.element > 0 })
        #expect(scores[.queryKey(0)]!.allSatisfy { $0 > 0 })
    }
}
