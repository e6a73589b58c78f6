import HDTestSupport
import HDTensor
import Testing

/// The row-split kernels of the training path at 1 and 2 workers: row-wise results are the same
/// bits whatever the thread count, reductions across rows (LayerNorm's dγ and dβ) agree within
/// float rounding, and repeated runs at one thread count give the same bits. Sizes are large
/// enough for `ParallelFor` to use two workers.
@Suite struct ParallelKernelTests {
    static let rows = 300, width = 256

    @Test func shapesSplitOverTwoWorkers() {
        #expect(ParallelFor.workers(Self.rows, cost: Self.width, threads: 2) == 2)
    }

    struct LayerNormResult: Equatable {
        var y, mean, rstd, dx, dgamma, dbeta: [Float]
    }

    static func layerNorm(threads: Int, keep: [Float]?) -> LayerNormResult {
        let (rows, width) = (Self.rows, Self.width)
        let x = randomFloats(rows * width, seed: 71).map { $0 + 1.5 }
        let gamma = randomFloats(width, seed: 72, range: 0.5...1.5), beta = randomFloats(width, seed: 73)
        let dout = randomFloats(rows * width, seed: 74)
        var y = [Float](repeating: 0, count: rows * width), mean = [Float](repeating: 0, count: rows), rstd = mean
        var dx = [Float](repeating: 7, count: rows * width), dgamma = [Float](repeating: 0.5, count: width)
        var dbeta = [Float](repeating: -0.5, count: width)
        func run(_ k: UnsafePointer<Float>?) {
            Kernels.layerNorm(x, rows: rows, width: width, gamma: gamma, beta: beta, eps: 1e-5, out: &y, mean: &mean,
                              rstd: &rstd, keep: k, threads: threads)
            Kernels.layerNormBackward(dout, x: x, mean: mean, rstd: rstd, gamma: gamma, rows: rows, width: width,
                                      dx: &dx, dgamma: &dgamma, dbeta: &dbeta, keep: k, threads: threads)
        }
        if let keep { keep.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        return LayerNormResult(y: y, mean: mean, rstd: rstd, dx: dx, dgamma: dgamma, dbeta: dbeta)
    }

    @Test(arguments: [false, true])
    func layerNormAgreesAcrossThreadCounts(masked: Bool) {
        let keep: [Float]? = masked ? (0..<Self.width).map { $0 % 5 == 3 ? 0 : 1 } : nil
        let one = Self.layerNorm(threads: 1, keep: keep), two = Self.layerNorm(threads: 2, keep: keep)
        // Each row is computed the same way by whichever worker owns it.
        #expect(one.y == two.y && one.mean == two.mean && one.rstd == two.rstd && one.dx == two.dx)
        // dγ and dβ sum over rows: the two workers' partials are added at the end.
        #expect(relativeError(two.dgamma, one.dgamma) < 1e-5)
        #expect(relativeError(two.dbeta, one.dbeta) < 1e-5)
        #expect(Self.layerNorm(threads: 2, keep: keep) == two)
        if let keep {
            for j in 0..<Self.width where keep[j] == 0 {
                #expect(two.dgamma[j] == 0.5 && two.dbeta[j] == -0.5)
                #expect((0..<Self.rows).allSatisfy { two.y[$0 * Self.width + j] == 0 && two.dx[$0 * Self.width + j] == 0 })
            }
        }
    }

    /// One call over a batch's rows, each group of `rowsPerMask` rows under its own mask row, equals
    /// one call per group with that mask shared; the backward splits rows too.
    @Test func softmaxAgreesAcrossThreadCounts() {
        let groups = 3, groupRows = 100, width = Self.width, rows = groups * groupRows
        let x = randomFloats(rows * width, seed: 81, range: -4...4), dout = randomFloats(rows * width, seed: 82)
        let mask = (0..<(groups * width)).map { $0 % 7 == (($0 / width) + 2) ? -Float.greatestFiniteMagnitude : 0 }
        func run(threads: Int) -> (probs: [Float], grad: [Float]) {
            var probs = x, grad = dout
            probs.withUnsafeMutableBufferPointer {
                Kernels.softmaxRows($0.baseAddress!, rows: rows, width: width, scale: 0.3, mask: mask,
                                    rowsPerMask: groupRows, threads: threads)
            }
            Kernels.softmaxRowsBackward(&grad, probs: probs, rows: rows, width: width, scale: 0.3, threads: threads)
            return (probs, grad)
        }
        var perGroup = x
        perGroup.withUnsafeMutableBufferPointer { p in
            mask.withUnsafeBufferPointer { m in
                for g in 0..<groups {
                    Kernels.softmaxRows(p.baseAddress! + g * groupRows * width, rows: groupRows, width: width, scale: 0.3,
                                        mask: m.baseAddress! + g * width, threads: 1)
                }
            }
        }
        let one = run(threads: 1), two = run(threads: 2)
        #expect(one.probs == perGroup)
        #expect(one.probs == two.probs && one.grad == two.grad)
        #expect(run(threads: 2).grad == two.grad)
        for r in 0..<rows {
            for j in 0..<width where mask[r / groupRows * width + j] < 0 { #expect(two.probs[r * width + j] == 0) }
        }
    }

    /// The embedding scatter-add splits columns, so every entry is summed over tokens in order: the
    /// same bits as a plain loop.
    @Test func embeddingBackwardMatchesASerialLoop() {
        let rows = 512, width = 128, sequenceLength = 64, vocab = 40, types = 2
        var rng = SplitMix64(seed: 91)
        let ids = (0..<rows).map { _ in Int32.random(in: 0..<Int32(vocab), using: &rng) }
        let tt = (0..<rows).map { _ in Int32.random(in: 0..<Int32(types), using: &rng) }
        let dout = randomFloats(rows * width, seed: 92)
        var word = randomFloats(vocab * width, seed: 93), position = randomFloats(sequenceLength * width, seed: 94)
        var type = randomFloats(types * width, seed: 95)
        var (w, p, t) = (word, position, type)
        for r in 0..<rows {
            for j in 0..<width {
                p[(r % sequenceLength) * width + j] += dout[r * width + j]
                t[Int(tt[r]) * width + j] += dout[r * width + j]
                if ids[r] != 0 { w[Int(ids[r]) * width + j] += dout[r * width + j] }
            }
        }
        Kernels.embeddingSumBackward(dout, ids: ids, tokenTypes: tt, rows: rows, sequenceLength: sequenceLength, width: width,
                                     paddingId: 0, dword: &word, dposition: &position, dtokenType: &type)
        #expect(word == w && position == p && type == t)
    }
}
