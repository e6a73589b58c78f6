import Foundation
import HDDistill
import HDTensor
import HDTraining
import Testing

/// Each loss's analytic gradient against central finite differences of its own forward.
@Suite struct LossesTests {
    static func random(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        return (0..<n).map { _ in (rng.nextUnitFloat() * 2 - 1) * scale }
    }

    /// Compares `analytic` with (f(x + h·e_i) − f(x − h·e_i)) / 2h at every index of x.
    static func checkGradient(_ x: [Float], analytic: [Float], h: Float = 1e-2, tolerance: Double = 2e-3,
                              _ f: ([Float]) -> Double) {
        var worst = 0.0
        for i in x.indices {
            var plus = x, minus = x
            plus[i] += h
            minus[i] -= h
            let numeric = (f(plus) - f(minus)) / Double(2 * h)
            let error = abs(numeric - Double(analytic[i])) / (1 + abs(numeric))
            worst = max(worst, error)
        }
        #expect(worst < tolerance, "worst relative gradient error \(worst)")
    }

    /// The rows' kernels this CPU runs: the Swift loops always, AVX-512 where it has it.
    static let crossEntropyKernels = GEMMKernel.isPackedSupported ? [false, true] : [false]

    @Test(arguments: crossEntropyKernels)
    func crossEntropy(avx512: Bool) {
        let v = 7, labels: [Int32] = [3, 0, 6]
        let logits = Self.random(labels.count * v, seed: 1, scale: 3)
        func loss(_ x: [Float]) -> Double {
            x.withUnsafeBufferPointer { l in
                labels.withUnsafeBufferPointer { Losses.crossEntropy(logits: l, labels: $0, vocabularySize: v, avx512: avx512).loss }
            }
        }
        var grad = [Float](repeating: 0, count: logits.count)
        let scale: Float = 0.5
        let (value, correct) = logits.withUnsafeBufferPointer { l in
            labels.withUnsafeBufferPointer { lab in
                grad.withUnsafeMutableBufferPointer {
                    Losses.crossEntropy(logits: l, labels: lab, vocabularySize: v, gradient: $0, scale: scale, avx512: avx512)
                }
            }
        }
        // Hand value: mean of logsumexp − logit[label].
        var expected = 0.0
        for r in 0..<labels.count {
            let row = logits[(r * v)..<((r + 1) * v)].map(Double.init)
            expected += log(row.map { exp($0) }.reduce(0, +)) - row[Int(labels[r])]
        }
        #expect(abs(value - expected / 3) < 1e-5)
        let argmaxHits = (0..<labels.count).filter { r in
            let row = Array(logits[(r * v)..<((r + 1) * v)])
            return row.firstIndex(of: row.max()!) == Int(labels[r])
        }.count
        #expect(correct == argmaxHits)
        Self.checkGradient(logits, analytic: grad.map { $0 / scale }, loss)

        // By default the gradient is added to what the buffer holds (the two-pass path); with
        // `overwrite` it replaces it (the one-pass path), whatever was there, and the two agree.
        let start = Self.random(logits.count, seed: 2)
        func gradient(into buffer: inout [Float], overwrite: Bool) {
            _ = logits.withUnsafeBufferPointer { l in
                labels.withUnsafeBufferPointer { lab in
                    buffer.withUnsafeMutableBufferPointer {
                        Losses.crossEntropy(logits: l, labels: lab, vocabularySize: v, gradient: $0, overwrite: overwrite,
                                            scale: scale, avx512: avx512)
                    }
                }
            }
        }
        var added = start, written = start
        gradient(into: &added, overwrite: false)
        gradient(into: &written, overwrite: true)
        #expect(zip(zip(added, start), grad).allSatisfy { pair, g in abs(pair.0 - pair.1 - g) <= 1e-6 })
        #expect(zip(written, grad).allSatisfy { abs($0 - $1) <= 1e-7 })
    }

    /// At the masked-LM head's width (30,522, a partial last vector), with logits spread as a
    /// trained head's are: the AVX-512 rows against the Swift loops (loss, hits, both gradient
    /// paths) and the loss against a Double reference.
    @Test(.enabled(if: GEMMKernel.isPackedSupported, "the AVX-512 rows need AVX-512F"))
    func crossEntropyAtVocabularyWidth() {
        let v = 30522, labels: [Int32] = [17, 30521, 2000, 0]
        var logits = Self.random(labels.count * v, seed: 5, scale: 8)
        logits[2 * v + 2000] = 30  // one confident hit
        var reference = 0.0
        for r in labels.indices {
            let row = logits[(r * v)..<((r + 1) * v)].map(Double.init), top = row.max()!
            reference += top + log(row.map { exp($0 - top) }.reduce(0, +)) - row[Int(labels[r])]
        }
        for overwrite in [false, true] {
            let start = Self.random(logits.count, seed: 6)
            let runs = [false, true].map { avx512 -> (Double, Int, [Float]) in
                var gradient = start
                let (loss, correct) = logits.withUnsafeBufferPointer { l in
                    labels.withUnsafeBufferPointer { lab in
                        gradient.withUnsafeMutableBufferPointer {
                            Losses.crossEntropy(logits: l, labels: lab, vocabularySize: v, gradient: $0, overwrite: overwrite,
                                                scale: 0.5, avx512: avx512)
                        }
                    }
                }
                return (loss, correct, gradient)
            }
            #expect(abs(runs[1].0 - reference / Double(labels.count)) < 1e-5 * reference)
            #expect(abs(runs[1].0 - runs[0].0) < 1e-6 * runs[0].0 && runs[1].1 == runs[0].1 && runs[1].1 == 1)
            let worst = zip(runs[1].2, runs[0].2).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-7, "overwrite \(overwrite): gradients differ by \(worst)")
        }
    }

    @Test(arguments: [Float(1), 2.5])
    func klDivergence(temperature: Float) {
        let rows = 3, v = 6
        let teacher = Self.random(rows * v, seed: 2, scale: 3)
        let student = Self.random(rows * v, seed: 3, scale: 3)
        func loss(_ s: [Float]) -> Double {
            teacher.withUnsafeBufferPointer { t in s.withUnsafeBufferPointer {
                Losses.klDivergence(teacher: t, student: $0, rows: rows, vocabularySize: v, temperature: temperature) } }
        }
        var grad = [Float](repeating: 0, count: student.count)
        _ = teacher.withUnsafeBufferPointer { t in student.withUnsafeBufferPointer { s in grad.withUnsafeMutableBufferPointer {
            Losses.klDivergence(teacher: t, student: s, rows: rows, vocabularySize: v, temperature: temperature, gradient: $0) } } }
        Self.checkGradient(student, analytic: grad, loss)
        #expect(abs(loss(teacher)) < 1e-6)
        #expect(loss(student) > 0)
    }

    @Test func meanSquaredErrorOverKeptColumns() {
        let d = 5
        let s = Self.random(3 * d, seed: 4), t = Self.random(3 * d, seed: 5)
        let keep: [Float] = [1, 0, 1, 1, 0]
        func loss(_ a: [Float], _ b: [Float]) -> Double {
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in keep.withUnsafeBufferPointer {
                Losses.meanSquaredError(student: a, target: b, rowLength: d, keep: $0) } } }
        }
        var gs = [Float](repeating: 0, count: s.count), gt = gs
        _ = s.withUnsafeBufferPointer { a in t.withUnsafeBufferPointer { b in keep.withUnsafeBufferPointer { k in
            gs.withUnsafeMutableBufferPointer { g1 in gt.withUnsafeMutableBufferPointer { g2 in
                Losses.meanSquaredError(student: a, target: b, rowLength: d, keep: k, studentGradient: g1, targetGradient: g2) } } } } }
        var expected = 0.0
        for r in 0..<3 { for c in [0, 2, 3] { expected += Double((s[r * d + c] - t[r * d + c]) * (s[r * d + c] - t[r * d + c])) } }
        #expect(abs(loss(s, t) - expected / 9) < 1e-6)
        #expect(gs[1] == 0 && gs[4] == 0)
        Self.checkGradient(s, analytic: gs) { loss($0, t) }
        Self.checkGradient(t, analytic: gt) { loss(s, $0) }
    }

    @Test func projectedMSE() {
        let d = 4, rows = 6
        let hs = Self.random(rows * d, seed: 6), ht = Self.random(rows * d, seed: 7)
        var w = Self.random(d * d, seed: 8, scale: 0.3)
        for i in 0..<d { w[i * d + i] += 1 }
        var scratch = [Float](repeating: 0, count: rows * d)
        func loss(_ s: [Float], _ w: [Float]) -> Double {
            s.withUnsafeBufferPointer { s in ht.withUnsafeBufferPointer { t in w.withUnsafeBufferPointer { w in scratch.withUnsafeMutableBufferPointer {
                Losses.projectedMSE(student: s, teacher: t, projection: w, width: d, projected: $0) } } } }
        }
        var gs = [Float](repeating: 0, count: hs.count), gw = [Float](repeating: 0, count: w.count)
        _ = hs.withUnsafeBufferPointer { s in ht.withUnsafeBufferPointer { t in w.withUnsafeBufferPointer { wp in scratch.withUnsafeMutableBufferPointer { p in
            gs.withUnsafeMutableBufferPointer { g1 in gw.withUnsafeMutableBufferPointer { g2 in
                Losses.projectedMSE(student: s, teacher: t, projection: wp, width: d, projected: p, studentGradient: g1, projectionGradient: g2) } } } } } }
        Self.checkGradient(hs, analytic: gs) { loss($0, w) }
        Self.checkGradient(w, analytic: gw) { loss(hs, $0) }
        // The identity projection reduces to plain MSE.
        var identity = [Float](repeating: 0, count: d * d)
        for i in 0..<d { identity[i * d + i] = 1 }
        let plain = hs.withUnsafeBufferPointer { a in ht.withUnsafeBufferPointer { Losses.meanSquaredError(student: a, target: $0, rowLength: d) } }
        #expect(abs(loss(hs, identity) - plain) < 1e-6)
    }

    @Test(arguments: [false, true])
    func crossCorrelation(masked: Bool) {
        let d = 5, rows = 9
        let s = Self.random(rows * d, seed: 9), t = Self.random(rows * d, seed: 10)
        let keep: [Float]? = masked ? [1, 1, 0, 1, 1] : nil
        let cc = CrossCorrelationLoss(offDiagonalWeight: 0.3)
        func loss(_ a: [Float], _ b: [Float]) -> Double {
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
                if let keep { return keep.withUnsafeBufferPointer { cc(student: a, teacher: b, width: d, keep: $0) } }
                return cc(student: a, teacher: b, width: d)
            } }
        }
        var gs = [Float](repeating: 0, count: s.count), gt = gs
        _ = s.withUnsafeBufferPointer { a in t.withUnsafeBufferPointer { b in gs.withUnsafeMutableBufferPointer { g1 in gt.withUnsafeMutableBufferPointer { g2 in
            if let keep { return keep.withUnsafeBufferPointer { cc(student: a, teacher: b, width: d, keep: $0, studentGradient: g1, teacherGradient: g2) } }
            return cc(student: a, teacher: b, width: d, studentGradient: g1, teacherGradient: g2)
        } } } }
        Self.checkGradient(s, analytic: gs, h: 1e-3, tolerance: 5e-3) { loss($0, t) }
        Self.checkGradient(t, analytic: gt, h: 1e-3, tolerance: 5e-3) { loss(s, $0) }
        if masked { #expect((0..<rows).allSatisfy { gs[$0 * d + 2] == 0 }) }
        // Identical standardised features: C = the correlation matrix, diagonal exactly ~1.
        let same = loss(s, s)
        #expect(same < loss(s, t))
    }
}
