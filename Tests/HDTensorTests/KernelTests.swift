import HDTestSupport
import HDTensor
import Testing

/// Each fast kernel against its naive f64 reference on random inputs, odd sizes included.
/// Metric: `relativeError` = max|fast − reference| / max|reference|.
@Suite struct KernelTests {
    static let shapes: [(rows: Int, width: Int)] = [(1, 1), (3, 7), (5, 33), (4, 128), (2, 769)]

    @Test(arguments: shapes)
    func embeddingSum(_ shape: (rows: Int, width: Int)) {
        let (rows, width) = shape
        let vocab = 11, positions = 9, types = 2, seq = min(rows, 3)
        var rng = SplitMix64(seed: 7)
        let ids = (0..<rows).map { _ in Int32.random(in: 0..<Int32(vocab), using: &rng) }
        let tt = (0..<rows).map { _ in Int32.random(in: 0..<Int32(types), using: &rng) }
        let word = randomFloats(vocab * width, seed: 8), pos = randomFloats(positions * width, seed: 9)
        let typ = randomFloats(types * width, seed: 10)
        var out = [Float](repeating: .nan, count: rows * width)
        out.withUnsafeMutableBufferPointer { o in
            Kernels.embeddingSum(ids: ids, tokenTypes: tt, rows: rows, sequenceLength: seq, word: word,
                                 position: pos, tokenType: typ, width: width, out: o.baseAddress!)
        }
        let expected = Reference.embeddingSum(ids: ids, tokenTypes: tt, sequenceLength: seq, word: word,
                                              position: pos, tokenType: typ, width: width)
        #expect(relativeError(out, expected) < 1e-6)
    }

    @Test func gatherRowsCopiesTheChosenRows() {
        let table = randomFloats(6 * 5, seed: 11)
        let idx: [Int32] = [5, 0, 5, 2]
        var out = [Float](repeating: 0, count: 4 * 5)
        out.withUnsafeMutableBufferPointer { Kernels.gatherRows(indices: idx, count: 4, table: table, width: 5, out: $0.baseAddress!) }
        for (i, r) in idx.enumerated() { #expect(Array(out[(i * 5)..<(i * 5 + 5)]) == Array(table[(Int(r) * 5)..<(Int(r) * 5 + 5)])) }
    }

    @Test(arguments: shapes)
    func layerNorm(_ shape: (rows: Int, width: Int)) {
        let (rows, width) = shape
        // An offset mean stresses the variance computation.
        let x = randomFloats(rows * width, seed: 12).map { $0 + 3 }
        let gamma = randomFloats(width, seed: 13), beta = randomFloats(width, seed: 14)
        for eps: Float in [1e-12, 1e-5] {
            var out = [Float](repeating: 0, count: rows * width)
            var mean = [Float](repeating: 0, count: rows), rstd = mean
            out.withUnsafeMutableBufferPointer { o in
                mean.withUnsafeMutableBufferPointer { m in
                    rstd.withUnsafeMutableBufferPointer { s in
                        Kernels.layerNorm(x, rows: rows, width: width, gamma: gamma, beta: beta, eps: eps,
                                          out: o.baseAddress!, mean: m.baseAddress!, rstd: s.baseAddress!)
                    }
                }
            }
            let expected = Reference.layerNorm(x, width: width, gamma: gamma, beta: beta, eps: eps)
            // A width-1 row has zero variance: the output is β, exactly.
            #expect(relativeError(out, expected) < 1e-5, "eps \(eps)")
            for r in 0..<rows {
                let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
                let m = row.reduce(0, +) / Double(width)
                #expect(abs(Double(mean[r]) - m) <= 1e-5 * max(1, abs(m)))
            }
        }
    }

    /// The paths `Kernels.gelu` can take here: the Swift loop always, AVX-512 where the CPU has it.
    static let avx512Choices = [false] + (GEMMKernel.isPackedSupported ? [true] : [])

    @Test(arguments: [1, 8, 1001], avx512Choices)
    func geluVariants(_ count: Int, avx512: Bool) {
        let x = randomFloats(count, seed: 15, range: -6...6)
        var exact = [Float](repeating: 0, count: count), approx = exact
        exact.withUnsafeMutableBufferPointer { Kernels.gelu(x, count: count, out: $0.baseAddress!, avx512: avx512) }
        approx.withUnsafeMutableBufferPointer { Kernels.geluTanh(x, count: count, out: $0.baseAddress!) }
        #expect(relativeError(exact, Reference.gelu(x)) < 1e-6)
        #expect(relativeError(approx, Reference.geluTanh(x)) < 1e-6)
    }

    @Test func geluKnownValues() {
        let x: [Float] = [0, 1, -1, 3]
        var out = [Float](repeating: 0, count: 4)
        out.withUnsafeMutableBufferPointer { Kernels.gelu(x, count: 4, out: $0.baseAddress!) }
        // Φ(1) = 0.841344746…, so gelu(1) = 0.841344746, gelu(−1) = −0.158655254.
        #expect(abs(out[1] - 0.841344746) < 1e-6 && abs(out[2] + 0.158655254) < 1e-6 && out[0] == 0)
        #expect(abs(out[3] - 2.995950) < 1e-5)
    }

    @Test(arguments: shapes)
    func biasAndResidual(_ shape: (rows: Int, width: Int)) {
        let (rows, width) = shape
        var x = randomFloats(rows * width, seed: 16)
        let bias = randomFloats(width, seed: 17), y = randomFloats(rows * width, seed: 18)
        let expected = Reference.addBias(x, width: width, bias: bias)
        x.withUnsafeMutableBufferPointer { Kernels.addBias($0.baseAddress!, rows: rows, width: width, bias: bias) }
        #expect(relativeError(x, expected) < 1e-6)
        let sum = zip(x, y).map { Float(Double($0) + Double($1)) }
        x.withUnsafeMutableBufferPointer { Kernels.add($0.baseAddress!, y, count: rows * width, out: $0.baseAddress!) }
        #expect(x == sum)
    }

    @Test(arguments: shapes, avx512Choices)
    func softmaxWithMask(_ shape: (rows: Int, width: Int), avx512: Bool) {
        let (rows, width) = shape
        let x = randomFloats(rows * width, seed: 19, range: -20...20)
        // Drop every third column but never the first, as a padded sequence would.
        let mask = (0..<width).map { $0 > 0 && $0 % 3 == 0 ? -Float.greatestFiniteMagnitude : 0 }
        for m in [nil, mask] {
            var out = x
            out.withUnsafeMutableBufferPointer { o in
                if let m {
                    m.withUnsafeBufferPointer {
                        Kernels.softmaxRows(o.baseAddress!, rows: rows, width: width, scale: 0.125, mask: $0.baseAddress!, avx512: avx512)
                    }
                } else {
                    Kernels.softmaxRows(o.baseAddress!, rows: rows, width: width, scale: 0.125, mask: nil, avx512: avx512)
                }
            }
            #expect(relativeError(out, Reference.softmaxRows(x, width: width, scale: 0.125, mask: m)) < 1e-5)
            for r in 0..<rows {
                let row = out[(r * width)..<((r + 1) * width)]
                #expect(abs(row.reduce(0, +) - 1) < 1e-5)
                if m != nil { for j in 0..<width where j > 0 && j % 3 == 0 { #expect(row[r * width + j] == 0) } }
            }
        }
    }

    @Test(arguments: [(1, 1, 1), (3, 5, 7), (2, 9, 128)])
    func meanPoolAndNormalize(_ dims: (Int, Int, Int)) {
        let (batch, seq, width) = dims
        let x = randomFloats(batch * seq * width, seed: 20)
        let mask = (0..<(batch * seq)).map { i in Float(i % seq < max(1, seq - i / seq) ? 1 : 0) }
        var pooled = [Float](repeating: .nan, count: batch * width)
        pooled.withUnsafeMutableBufferPointer {
            Kernels.meanPool(x, batch: batch, sequenceLength: seq, width: width, mask: mask, out: $0.baseAddress!)
        }
        let expected = Reference.meanPool(x, batch: batch, sequenceLength: seq, width: width, mask: mask)
        #expect(relativeError(pooled, expected) < 1e-5)
        let normalizedExpected = Reference.l2NormalizeRows(pooled, width: width)
        pooled.withUnsafeMutableBufferPointer { Kernels.l2NormalizeRows($0.baseAddress!, rows: batch, width: width) }
        #expect(relativeError(pooled, normalizedExpected) < 1e-6)
    }

    @Test func normalizingAZeroRowKeepsZeros() {
        var x = [Float](repeating: 0, count: 4)
        x.withUnsafeMutableBufferPointer { Kernels.l2NormalizeRows($0.baseAddress!, rows: 1, width: 4) }
        #expect(x == [0, 0, 0, 0])
    }
}
