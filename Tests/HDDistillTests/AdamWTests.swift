import HDTraining
import Foundation
import HDDistill
import HDTestSupport
import HDTensor
import HDTraining
import Testing

@Suite struct AdamWTests {
    func step(_ opt: AdamW, _ p: inout [Float], _ g: [Float], _ m: inout [Float], _ v: inout [Float],
              t: Int, lr: Float, decay: Bool = true) {
        p.withUnsafeMutableBufferPointer { pp in g.withUnsafeBufferPointer { gg in m.withUnsafeMutableBufferPointer { mm in
            v.withUnsafeMutableBufferPointer { vv in opt.update(parameters: pp, gradients: gg, m: mm, v: vv, step: t, learningRate: lr, decay: decay) } } } }
    }

    /// Step 1 by hand: m̂ = g, v̂ = g², so θ ← θ(1 − lr·λ) − lr · g / (|g| + ε).
    @Test func firstStepByHand() {
        let opt = AdamW(weightDecay: 0.1)
        var p: [Float] = [1, -2, 0.5], m = [Float](repeating: 0, count: 3), v = m
        let g: [Float] = [0.5, -0.25, 0]
        step(opt, &p, g, &m, &v, t: 1, lr: 0.01)
        let expected: [Double] = [1 * 0.999 - 0.01 * 0.5 / (0.5 + 1e-6), -2 * 0.999 + 0.01 * 0.25 / (0.25 + 1e-6), 0.5 * 0.999]
        for i in 0..<3 { #expect(abs(Double(p[i]) - expected[i]) < 1e-6) }
        #expect(zip(m, [0.05, -0.025, 0]).allSatisfy { abs(Double($0) - $1) < 1e-8 })
        #expect(abs(Double(v[0]) - 0.00025) < 1e-10)
        // Step 2 without decay, second gradient = first: m̂ = g, v̂ = g² again.
        var q: [Float] = [1], mq: [Float] = [0], vq: [Float] = [0]
        step(opt, &q, [2], &mq, &vq, t: 1, lr: 0.1, decay: false)
        step(opt, &q, [2], &mq, &vq, t: 2, lr: 0.1, decay: false)
        #expect(abs(Double(q[0]) - (1 - 2 * 0.1 * 2 / (2 + 1e-6))) < 1e-6)
    }

    struct Reference: Decodable {
        var beta1: Double, beta2: Double, epsilon: Double, weight_decay: Double
        var decayed_count: Int
        var rates: [Float], initial: [Float], gradients: [[Float]], after_step: [[Float]], m: [Float], v: [Float]
    }

    /// torch.optim.AdamW, two groups (decayed, not), six steps at changing rates (tools/make_adamw_reference.py).
    @Test func matchesPyTorch() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("reference/adamw.json")))
        let ref = try JSONDecoder().decode(Reference.self, from: data)
        let opt = AdamW(beta1: ref.beta1, beta2: ref.beta2, epsilon: ref.epsilon, weightDecay: ref.weight_decay)
        let n = ref.decayed_count
        var a = Array(ref.initial[..<n]), b = Array(ref.initial[n...])
        var ma = [Float](repeating: 0, count: a.count), va = ma, mb = [Float](repeating: 0, count: b.count), vb = mb
        for (s, g) in ref.gradients.enumerated() {
            step(opt, &a, Array(g[..<n]), &ma, &va, t: s + 1, lr: ref.rates[s])
            step(opt, &b, Array(g[n...]), &mb, &vb, t: s + 1, lr: ref.rates[s], decay: false)
            let worst = zip(a + b, ref.after_step[s]).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst < 2e-6, "step \(s + 1): worst relative difference \(worst)")
        }
        // m of an element whose gradients nearly cancel (−1.8e-5) carries the rounding of its larger terms.
        let worstM = zip(ma + mb, ref.m).map { abs($0 - $1) / max(1e-2, abs($1)) }.max() ?? 0
        let worstV = zip(va + vb, ref.v).map { abs($0 - $1) / max(1e-9, abs($1)) }.max() ?? 0
        #expect(worstM < 1e-5 && worstV < 1e-5, "moments: worst relative difference m \(worstM), v \(worstV)")
    }

    @Test func scheduleWarmsUpThenDecays() throws {
        let s = try LRSchedule(peak: 1e-3, warmupSteps: 4, totalSteps: 12)
        let rates = (0..<12).map { s.rate(atUpdate: $0) }
        #expect(rates[0] == 2.5e-4 && rates[3] == 1e-3 && rates[4] == 1e-3)
        #expect(abs(rates[11] - 1e-3 / 8) < 1e-9)
        #expect(zip(rates[4...], rates[5...]).allSatisfy { $0 > $1 })
        #expect(s.rate(atUpdate: 12) == 0)
        let flat = try LRSchedule(peak: 1, warmupSteps: 0, totalSteps: 2)
        #expect(flat.rate(atUpdate: 0) == 1 && flat.rate(atUpdate: 1) == 0.5)
        for (peak, warm, total) in [(Float(0), 0, 10), (1, 10, 10), (1, -1, 10), (.nan, 0, 10), (1, 0, 0)] {
            #expect(throws: TrainingError.self) { try LRSchedule(peak: peak, warmupSteps: warm, totalSteps: total) }
        }
    }

    @Test func clippingScalesToTheGlobalNorm() {
        var g: [Float] = [3, 4, 0, 12]
        let norm = g.withUnsafeMutableBufferPointer { GradientClipping.clip($0, maxNorm: 6.5) }
        #expect(norm == 13)
        #expect(abs(GradientClipping.norm(g.withUnsafeBufferPointer { $0 }) - 6.5) < 1e-5)
        var small: [Float] = [0.1, 0.2]
        _ = small.withUnsafeMutableBufferPointer { GradientClipping.clip($0, maxNorm: 1) }
        #expect(small == [0.1, 0.2])
        var bad: [Float] = [1, .nan]
        let n = bad.withUnsafeMutableBufferPointer { GradientClipping.clip($0, maxNorm: 1) }
        #expect(n.isNaN && bad[0] == 1)
    }

    /// A buffer of model size, whose blocks the workers split: the norm matches a Double sum, a NaN
    /// in any worker's blocks shows up, and the clip scales every element.
    @Test func clippingALargeBufferMatchesADoubleSum() {
        var rng = Xoshiro256(seed: 5)
        let original = (0..<300_001).map { _ in rng.nextUnitFloat() * 2 - 1 }
        let expected = original.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        var g = original
        let norm = g.withUnsafeMutableBufferPointer { GradientClipping.clip($0, maxNorm: 1) }
        #expect(abs(norm - expected) <= 1e-6 * expected)
        let factor = Float(1 / (norm + 1e-6))
        #expect(zip(g, original).allSatisfy { $0 == $1 * factor })
        #expect(abs(GradientClipping.norm(g.withUnsafeBufferPointer { $0 }) - 1) < 1e-5)
        g[299_000] = .nan
        #expect(GradientClipping.norm(g.withUnsafeBufferPointer { $0 }).isNaN)
    }
}
