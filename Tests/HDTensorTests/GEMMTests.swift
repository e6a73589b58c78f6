import HDTestSupport
import HDTensor
import Testing

@Suite struct GEMMTests {
    struct Case: CustomStringConvertible, Sendable {
        var transA: Bool, transB: Bool, m: Int, n: Int, k: Int, pad: Int, alpha: Float, beta: Float
        var description: String { "A\(transA ? "ᵀ" : "")B\(transB ? "ᵀ" : "") \(m)×\(n)×\(k) pad \(pad) α\(alpha) β\(beta)" }
    }

    static let cases: [Case] = {
        var out: [Case] = []
        for transA in [false, true] {
            for transB in [false, true] {
                for (m, n, k) in [(1, 1, 1), (7, 5, 3), (33, 17, 65), (64, 128, 32)] {
                    for (pad, alpha, beta) in [(0, Float(1), Float(0)), (3, 0.5, 1.5)] {
                        out.append(Case(transA: transA, transB: transB, m: m, n: n, k: k, pad: pad, alpha: alpha, beta: beta))
                    }
                }
            }
        }
        return out
    }()

    @Test(arguments: cases)
    func matchesNaiveMatmul(_ t: Case) {
        // Leading dimensions larger than the logical width check that strides are honoured.
        let (aRows, aCols) = t.transA ? (t.k, t.m) : (t.m, t.k)
        let (bRows, bCols) = t.transB ? (t.n, t.k) : (t.k, t.n)
        let lda = aCols + t.pad, ldb = bCols + t.pad, ldc = t.n + t.pad
        let a = randomFloats(aRows * lda, seed: 1), b = randomFloats(bRows * ldb, seed: 2)
        var expected = randomFloats(t.m * ldc, seed: 3)
        var actual = expected
        Reference.gemm(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                       a: a, lda: lda, b: b, ldb: ldb, beta: t.beta, c: &expected, ldc: ldc)
        actual.withUnsafeMutableBufferPointer { c in
            BLAS.gemm(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                      a: a, lda: lda, b: b, ldb: ldb, beta: t.beta, c: c.baseAddress!, ldc: ldc)
        }
        #expect(relativeError(actual, expected) < 1e-5)
        // Padding columns of C are outside the matrix and must be untouched.
        let original = randomFloats(t.m * ldc, seed: 3)
        for i in 0..<t.m { for j in t.n..<ldc { #expect(actual[i * ldc + j] == original[i * ldc + j]) } }
    }

    /// The kernels `GEMM` can run here: OpenBLAS always, the packed one where the CPU has AVX-512F.
    static let kernels = GEMMKernel.allCases.filter { $0 != .packed || GEMMKernel.isPackedSupported }

    /// The training GEMM against the f64 reference on both kernels: shapes across the packed
    /// kernel's tile edges (12-row tiles, 192-row groups, 32-column panels, 256-input depth passes),
    /// both layouts of each operand, strides wider than the matrices, the α/β pairs training uses
    /// (β 1 accumulates dW; α with β 0 is the cross-correlation's 1/n) and one the packed kernel
    /// hands to OpenBLAS.
    static let trainingCases: [Case] = {
        var out: [Case] = []
        for transA in [false, true] {
            for transB in [false, true] {
                for (m, n, k) in [(1, 1, 1), (13, 33, 257), (193, 65, 31), (12, 32, 0), (200, 7, 600), (800, 33, 45)] {
                    for (pad, alpha, beta) in [(0, Float(1), Float(0)), (3, 1, 1), (1, 0.25, 0), (2, 0.5, 1.5)] {
                        out.append(Case(transA: transA, transB: transB, m: m, n: n, k: k, pad: pad, alpha: alpha, beta: beta))
                    }
                }
            }
        }
        return out
    }()

    @Test(arguments: kernels, trainingCases)
    func trainingGEMMMatchesReference(kernel: GEMMKernel, _ t: Case) {
        let (aRows, aCols) = t.transA ? (t.k, t.m) : (t.m, t.k)
        let (bRows, bCols) = t.transB ? (t.n, t.k) : (t.k, t.n)
        let lda = max(aCols + t.pad, 1), ldb = max(bCols + t.pad, 1), ldc = t.n + t.pad
        let a = randomFloats(aRows * lda, seed: 1), b = randomFloats(bRows * ldb, seed: 2)
        let original = randomFloats(t.m * ldc, seed: 3)
        var expected = original, actual = original
        Reference.gemm(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                       a: a, lda: lda, b: b, ldb: ldb, beta: t.beta, c: &expected, ldc: ldc)
        actual.withUnsafeMutableBufferPointer { c in
            GEMM.multiply(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                          a: a, lda: lda, b: b, ldb: ldb, beta: t.beta, c: c.baseAddress!, ldc: ldc, threads: 2, kernel: kernel)
        }
        #expect(relativeError(actual, expected) < 1e-5, "\(kernel)")
        for i in 0..<t.m { for j in t.n..<ldc { #expect(actual[i * ldc + j] == original[i * ldc + j]) } }
    }

    /// On the packed kernel, and on the tiles in bf16, every output is summed in one order whoever
    /// computes it, so 1, 2 and 3 workers give the same bits (the trainer's resume and its tests
    /// rely on a run being reproducible for a given thread count; here it holds for any).
    @Test(.enabled(if: GEMMKernel.isPackedSupported, "the packed kernel needs AVX-512F"),
          arguments: [false, true], GEMMPrecision.allCases.filter(\.isSupported))
    func packedTrainingGEMMIsTheSameForEveryThreadCount(transA: Bool, precision: GEMMPrecision) {
        let m = 397, n = 161, k = 300
        let a = randomFloats(m * k, seed: 7), b = randomFloats(n * k, seed: 8)
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            var c = randomFloats(m * n, seed: 9)
            c.withUnsafeMutableBufferPointer { c in
                GEMM.multiply(transA: transA, transB: true, m: m, n: n, k: k, a: a, lda: transA ? m : k, b: b, ldb: k,
                              beta: 1, c: c.baseAddress!, ldc: n, threads: threads, kernel: .packed, precision: precision)
            }
            results.append(c)
        }
        #expect(results[0] == results[1] && results[1] == results[2])
    }

    /// A deep product (k = 12,000: a row group's share of A is more than L2 holds, as in the MLM
    /// decoder's input gradient) gives each worker its rows over every panel, and the kernel runs it
    /// depth outer; at 3 workers a share (72 rows) is small enough to run panel outer. Every order
    /// gives the same bits, and the reference's values.
    @Test(.enabled(if: GEMMKernel.isPackedSupported, "the packed kernel needs AVX-512F"))
    func deepProductIsTheSameInEitherLoopOrder() {
        let m = 200, n = 70, k = 12_000
        let a = randomFloats(m * k, seed: 10), b = randomFloats(k * n, seed: 11), original = randomFloats(m * n, seed: 12)
        var expected = original
        Reference.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                       beta: 1, c: &expected, ldc: n)
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            var c = original
            c.withUnsafeMutableBufferPointer { c in
                GEMM.multiply(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: 1, c: c.baseAddress!, ldc: n,
                              threads: threads, kernel: .packed)
            }
            results.append(c)
        }
        #expect(results[0] == results[1] && results[1] == results[2])
        #expect(relativeError(results[0], expected) < 1e-5)
    }

    /// dW and the bias gradient from one read of dY (`rowSumsOfA`): the sums are `Kernels.biasBackward`'s
    /// bit for bit and the product is unchanged, whether the packed kernel transposes A whole (m = 100)
    /// or by row group (m = 900), on OpenBLAS, and in bf16. 37 rows and 100 or 900 columns cross the
    /// transpose's 16 × 16 blocks.
    static let rowSumCases: [(GEMMKernel, GEMMPrecision)] = kernels.map { ($0, .fp32) }
        + (GEMMPrecision.bf16.isSupported ? [(.packed, .bf16)] : [])

    @Test(arguments: rowSumCases, [100, 900])
    func rowSumsOfAAreTheBiasGradient(_ kernelAndPrecision: (GEMMKernel, GEMMPrecision), m: Int) {
        let (kernel, precision) = kernelAndPrecision
        let k = 37, n = 20, lda = m + 3
        let a = randomFloats(k * lda, seed: 13), b = randomFloats(k * n, seed: 14), start = randomFloats(m, seed: 15)
        var want = start, sums = start
        want.withUnsafeMutableBufferPointer { Kernels.biasBackward(a, rows: k, width: m, ld: lda, dbias: $0.baseAddress!) }
        func product(_ rowSums: UnsafeMutablePointer<Float>?) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            c.withUnsafeMutableBufferPointer { c in
                GEMM.multiply(transA: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: n, beta: 1, c: c.baseAddress!, ldc: n,
                              rowSumsOfA: rowSums, threads: 2, kernel: kernel, precision: precision)
            }
            return c
        }
        let withSums = sums.withUnsafeMutableBufferPointer { product($0.baseAddress!) }
        #expect(sums == want)
        #expect(withSums == product(nil))
    }

    /// The attention pattern: per head, Q_h · K_hᵀ read in place from [tokens, heads·size] buffers,
    /// through OpenBLAS and through the training GEMM on each kernel.
    @Test(arguments: [nil] + kernels.map(Optional.some))
    func stridedBatchedHeadsMatchPerHeadMatmul(kernel: GEMMKernel?) {
        let heads = 3, size = 5, tokens = 7, width = heads * size
        let q = randomFloats(tokens * width, seed: 4), k = randomFloats(tokens * width, seed: 5)
        func headSlice(_ x: [Float], head: Int) -> [Float] {
            var out: [Float] = []
            for t in 0..<tokens {
                let start = t * width + head * size
                out += x[start..<(start + size)]
            }
            return out
        }
        var scores = [Float](repeating: 0, count: heads * tokens * tokens)
        scores.withUnsafeMutableBufferPointer { c in
            if let kernel {
                GEMM.multiplyStridedBatched(count: heads, transB: true, m: tokens, n: tokens, k: size,
                                            a: q, lda: width, strideA: size, b: k, ldb: width, strideB: size,
                                            c: c.baseAddress!, ldc: tokens, strideC: tokens * tokens, threads: 2, kernel: kernel)
            } else {
                BLAS.gemmStridedBatched(count: heads, transB: true, m: tokens, n: tokens, k: size,
                                        a: q, lda: width, strideA: size, b: k, ldb: width, strideB: size,
                                        c: c.baseAddress!, ldc: tokens, strideC: tokens * tokens)
            }
        }
        for h in 0..<heads {
            let qh = headSlice(q, head: h), kh = headSlice(k, head: h)
            var expected = [Float](repeating: 0, count: tokens * tokens)
            Reference.gemm(transA: false, transB: true, m: tokens, n: tokens, k: size,
                           a: qh, lda: size, b: kh, ldb: size, c: &expected, ldc: tokens)
            let actual = Array(scores[(h * tokens * tokens)..<((h + 1) * tokens * tokens)])
            #expect(relativeError(actual, expected) < 1e-5, "head \(h)")
        }
    }

    @Test func threadCountIsSettable() {
        let before = BLAS.threads
        BLAS.setThreads(1)
        #expect(BLAS.threads == 1)
        BLAS.setThreads(before)
        #expect(BLAS.threads == before)
    }
}
