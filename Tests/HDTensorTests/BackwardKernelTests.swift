import HDTestSupport
import Foundation
import HDTensor
import Testing

/// Gradient checks, two steps per op: (1) the float64 reference backward against central finite
/// differences of the float64 forward, for L = Σ w ⊙ f(x) with a fixed random w (tolerance
/// max|analytic − numeric| ≤ 1e-6 · max(1, max|numeric|), h = 1e-5); (2) the f32 kernel against the
/// reference (relative error ≤ 1e-5 of the reference's scale).
@Suite struct BackwardKernelTests {
    static let shapes: [(rows: Int, width: Int)] = [(1, 1), (3, 7), (4, 33), (2, 130)]

    static func doubles(_ count: Int, seed: UInt64, range: ClosedRange<Float> = -2...2) -> [Double] {
        randomFloats(count, seed: seed, range: range).map(Double.init)
    }

    /// Central differences of x ↦ Σ w ⊙ f(x), one coordinate at a time.
    static func numericGradient(_ x: [Double], weights w: [Double], h: Double = 1e-5,
                                _ f: ([Double]) -> [Double]) -> [Double] {
        var xs = x
        return x.indices.map { i in
            xs[i] = x[i] + h
            let up = zip(w, f(xs)).reduce(0) { $0 + $1.0 * $1.1 }
            xs[i] = x[i] - h
            let down = zip(w, f(xs)).reduce(0) { $0 + $1.0 * $1.1 }
            xs[i] = x[i]
            return (up - down) / (2 * h)
        }
    }

    static func agree(_ analytic: [Double], _ numeric: [Double]) -> Bool {
        guard analytic.count == numeric.count else { return false }
        let scale = max(1, numeric.map(abs).max() ?? 0)
        return zip(analytic, numeric).allSatisfy { abs($0 - $1) <= 1e-6 * scale }
    }

    static func floats(_ x: [Double]) -> [Float] { x.map(Float.init) }

    @Test(arguments: shapes)
    func embeddingSum(_ shape: (rows: Int, width: Int)) {
        let (rows, width) = shape
        let vocab = 5, positions = 4, types = 2, seq = min(rows, 3)
        var rng = SplitMix64(seed: 21)
        let ids = (0..<rows).map { _ in Int32.random(in: 0..<Int32(vocab), using: &rng) }
        let tt = (0..<rows).map { _ in Int32.random(in: 0..<Int32(types), using: &rng) }
        let dout = Self.doubles(rows * width, seed: 22)
        let word = Self.doubles(vocab * width, seed: 23), pos = Self.doubles(positions * width, seed: 24)
        let typ = Self.doubles(types * width, seed: 25)
        // Id 1 plays the padding token: its word row must get nothing.
        let padding: Int32 = 1
        let ref = Reference.embeddingSumBackward(dout, ids: ids, tokenTypes: tt, sequenceLength: seq, vocab: vocab,
                                                 positions: positions, types: types, width: width, paddingId: padding)
        // The sum is linear in each table, so finite differences are exact up to rounding.
        func sum(_ w: [Double], _ p: [Double], _ t: [Double]) -> [Double] {
            (0..<(rows * width)).map { i in
                let r = i / width, j = i % width
                return w[Int(ids[r]) * width + j] + p[(r % seq) * width + j] + t[Int(tt[r]) * width + j]
            }
        }
        var numericWord = Self.numericGradient(word, weights: dout) { sum($0, pos, typ) }
        for j in 0..<width { numericWord[Int(padding) * width + j] = 0 }
        #expect(Self.agree(ref.word, numericWord))
        #expect(Self.agree(ref.position, Self.numericGradient(pos, weights: dout) { sum(word, $0, typ) }))
        #expect(Self.agree(ref.tokenType, Self.numericGradient(typ, weights: dout) { sum(word, pos, $0) }))

        // Start from non-zero gradients: the kernel must add, not overwrite.
        let start: Float = 0.5
        var dw = [Float](repeating: start, count: vocab * width), dp = [Float](repeating: start, count: positions * width)
        var dt = [Float](repeating: start, count: types * width)
        Kernels.embeddingSumBackward(Self.floats(dout), ids: ids, tokenTypes: tt, rows: rows, sequenceLength: seq,
                                     width: width, paddingId: padding, dword: &dw, dposition: &dp, dtokenType: &dt)
        #expect(relativeError(dw.map { $0 - start }, Self.floats(ref.word)) < 1e-5)
        #expect(relativeError(dp.map { $0 - start }, Self.floats(ref.position)) < 1e-5)
        #expect(relativeError(dt.map { $0 - start }, Self.floats(ref.tokenType)) < 1e-5)
    }

    @Test func scatterAddRowsAddsRepeatedIndicesTwice() {
        let dout: [Float] = [1, 2, 3, 4, 5, 6]
        var table = [Float](repeating: 1, count: 3 * 2)
        Kernels.scatterAddRows(dout, indices: [2, 0, 2], count: 3, width: 2, dtable: &table)
        #expect(table == [4, 5, 1, 1, 7, 9])
    }

    @Test(arguments: shapes)
    func layerNorm(_ shape: (rows: Int, width: Int)) {
        let (rows, width) = shape
        // Offset rows and a small eps relative to the variance, as in a trained model.
        let x = Self.doubles(rows * width, seed: 31).map { $0 + 2 }
        let gamma = Self.doubles(width, seed: 32, range: 0.5...1.5), beta = Self.doubles(width, seed: 33)
        let dout = Self.doubles(rows * width, seed: 34)
        let eps = 1e-5
        let ref = Reference.layerNormBackward(dout, x: x, width: width, gamma: gamma, eps: eps)
        #expect(Self.agree(ref.dx, Self.numericGradient(x, weights: dout) {
            Reference.layerNorm64($0, width: width, gamma: gamma, beta: beta, eps: eps)
        }))
        #expect(Self.agree(ref.dgamma, Self.numericGradient(gamma, weights: dout) {
            Reference.layerNorm64(x, width: width, gamma: $0, beta: beta, eps: eps)
        }))
        #expect(Self.agree(ref.dbeta, Self.numericGradient(beta, weights: dout) {
            Reference.layerNorm64(x, width: width, gamma: gamma, beta: $0, eps: eps)
        }))

        let xf = Self.floats(x), gf = Self.floats(gamma), bf = Self.floats(beta)
        var y = [Float](repeating: 0, count: x.count), mean = [Float](repeating: 0, count: rows)
        var rstd = [Float](repeating: 0, count: rows)
        Kernels.layerNorm(xf, rows: rows, width: width, gamma: gf, beta: bf, eps: Float(eps), out: &y, mean: &mean, rstd: &rstd)
        // dx is written over whatever it held; dγ and dβ are added to.
        let start: Float = 0.25
        var dx = [Float](repeating: start, count: x.count), dg = [Float](repeating: start, count: width)
        var db = [Float](repeating: start, count: width)
        Kernels.layerNormBackward(Self.floats(dout), x: xf, mean: mean, rstd: rstd, gamma: gf, rows: rows, width: width,
                                  dx: &dx, dgamma: &dg, dbeta: &db)
        #expect(relativeError(dx, Self.floats(ref.dx)) < 1e-4)
        #expect(relativeError(dg.map { $0 - start }, Self.floats(ref.dgamma)) < 1e-5)
        #expect(relativeError(db.map { $0 - start }, Self.floats(ref.dbeta)) < 1e-5)
    }

    /// A column-masked LayerNorm is the dense LayerNorm of the kept columns, scattered back with
    /// zeros, forward and backward; dropped columns get no dx, dγ or dβ.
    @Test(arguments: [[0, 3, 4], [1], [0, 1, 2, 3, 4, 5, 6]])
    func maskedLayerNormIsTheDenseOneOfTheKeptColumns(kept: [Int]) {
        let rows = 3, width = 7, k = kept.count
        let x = Self.floats(Self.doubles(rows * width, seed: 51).map { $0 + 1 })
        let gamma = Self.floats(Self.doubles(width, seed: 52, range: 0.5...1.5)), beta = Self.floats(Self.doubles(width, seed: 53))
        let dout = Self.floats(Self.doubles(rows * width, seed: 54))
        var keep = [Float](repeating: 0, count: width)
        for j in kept { keep[j] = 1 }
        func gather(_ v: [Float], _ r: Int) -> [Float] { kept.map { v[r * width + $0] } }
        let xs = (0..<rows).flatMap { gather(x, $0) }, douts = (0..<rows).flatMap { gather(dout, $0) }
        let gs = gather(gamma, 0), bs = gather(beta, 0)

        var y = [Float](repeating: 9, count: x.count), mean = [Float](repeating: 0, count: rows), rstd = mean
        Kernels.layerNorm(x, rows: rows, width: width, gamma: gamma, beta: beta, eps: 1e-5, out: &y, mean: &mean, rstd: &rstd, keep: keep)
        var ys = [Float](repeating: 0, count: xs.count), means = mean, rstds = rstd
        Kernels.layerNorm(xs, rows: rows, width: k, gamma: gs, beta: bs, eps: 1e-5, out: &ys, mean: &means, rstd: &rstds)
        #expect((0..<rows).flatMap { gather(y, $0) } == ys)
        #expect((0..<rows * width).allSatisfy { keep[$0 % width] == 1 || y[$0] == 0 })

        var dx = [Float](repeating: 9, count: x.count), dg = [Float](repeating: 0, count: width), db = dg
        Kernels.layerNormBackward(dout, x: x, mean: mean, rstd: rstd, gamma: gamma, rows: rows, width: width,
                                  dx: &dx, dgamma: &dg, dbeta: &db, keep: keep)
        var dxs = [Float](repeating: 0, count: xs.count), dgs = [Float](repeating: 0, count: k), dbs = dgs
        Kernels.layerNormBackward(douts, x: xs, mean: means, rstd: rstds, gamma: gs, rows: rows, width: k,
                                  dx: &dxs, dgamma: &dgs, dbeta: &dbs)
        #expect(relativeError((0..<rows).flatMap { gather(dx, $0) }, dxs) < 1e-6)
        #expect(relativeError(gather(dg, 0), dgs) < 1e-6 && relativeError(gather(db, 0), dbs) < 1e-6)
        for j in 0..<width where keep[j] == 0 {
            #expect(dg[j] == 0 && db[j] == 0 && (0..<rows).allSatisfy { dx[$0 * width + j] == 0 })
        }
    }

    /// The tanh form, and the exact form on each path `Kernels.geluBackward` can take here.
    @Test(arguments: [(true, false), (false, false)] + (GEMMKernel.isPackedSupported ? [(false, true)] : []))
    func gelu(tanhForm: Bool, avx512: Bool) {
        // Dense near 0 where the curvature is, plus tails where Φ saturates.
        let x = Self.doubles(257, seed: 41, range: -6...6) + [0, -1e-3, 1e-3, 3, -3, 20, -20]
        let dout = Self.doubles(x.count, seed: 42)
        let ref = tanhForm ? Reference.geluTanhBackward(dout, x: x) : Reference.geluBackward(dout, x: x)
        // GELU is element-wise, so each numeric derivative is one coordinate's difference quotient.
        let h = 1e-6
        func forward(_ v: [Double]) -> [Double] { tanhForm ? Reference.geluTanh64(v) : Reference.gelu64(v) }
        let up = forward(x.map { $0 + h }), down = forward(x.map { $0 - h })
        let numeric = x.indices.map { dout[$0] * (up[$0] - down[$0]) / (2 * h) }
        #expect(Self.agree(ref, numeric))

        var dx = Self.floats(dout)
        if tanhForm {
            Kernels.geluTanhBackward(&dx, x: Self.floats(x), count: x.count)
        } else {
            Kernels.geluBackward(&dx, x: Self.floats(x), count: x.count, avx512: avx512)
        }
        #expect(relativeError(dx, Self.floats(ref)) < 1e-5)
    }

    @Test(arguments: shapes)
    func bias(_ shape: (rows: Int, width: Int)) {
        let (rows, width) = shape
        let dout = Self.doubles(rows * width, seed: 51), b = Self.doubles(width, seed: 52)
        let x = Self.doubles(rows * width, seed: 53)
        let ref = Reference.biasBackward(dout, width: width)
        #expect(Self.agree(ref, Self.numericGradient(b, weights: dout) { bias in
            x.indices.map { x[$0] + bias[$0 % width] }
        }))
        var db = [Float](repeating: 1, count: width)
        Kernels.biasBackward(Self.floats(dout), rows: rows, width: width, dbias: &db)
        #expect(relativeError(db.map { $0 - 1 }, Self.floats(ref)) < 1e-5)
    }

    @Test(arguments: [(rows: 3, width: 5, masked: false), (rows: 4, width: 9, masked: true), (rows: 2, width: 64, masked: true)])
    func softmax(_ c: (rows: Int, width: Int, masked: Bool)) {
        let x = Self.doubles(c.rows * c.width, seed: 61, range: -4...4), dout = Self.doubles(c.rows * c.width, seed: 62)
        let scale = 0.35
        // Padded keys as the model masks them: the most negative float, so their probability is 0.
        let mask: [Double]? = c.masked
            ? (0..<c.width).map { $0 % 3 == 2 ? -Double(Float.greatestFiniteMagnitude) : 0 } : nil
        let ref = Reference.softmaxRowsBackward(dout, x: x, width: c.width, scale: scale, mask: mask)
        #expect(Self.agree(ref, Self.numericGradient(x, weights: dout) {
            Reference.softmaxRows64($0, width: c.width, scale: scale, mask: mask)
        }))

        var probs = Self.floats(x)
        let maskF = mask.map(Self.floats)
        probs.withUnsafeMutableBufferPointer { p in
            Kernels.softmaxRows(p.baseAddress!, rows: c.rows, width: c.width, scale: Float(scale), mask: maskF)
        }
        var grad = Self.floats(dout)
        Kernels.softmaxRowsBackward(&grad, probs: probs, rows: c.rows, width: c.width, scale: Float(scale))
        #expect(relativeError(grad, Self.floats(ref)) < 1e-5)
        if let mask {
            for r in 0..<c.rows { for j in 0..<c.width where mask[j] < 0 { #expect(grad[r * c.width + j] == 0) } }
        }
    }
}
