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

    /// The attention pattern: per head, Q_h · K_hᵀ read in place from [tokens, heads·size] buffers.
    @Test func stridedBatchedHeadsMatchPerHeadMatmul() {
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
            BLAS.gemmStridedBatched(count: heads, transB: true, m: tokens, n: tokens, k: size,
                                    a: q, lda: width, strideA: size, b: k, ldb: width, strideB: size,
                                    c: c.baseAddress!, ldc: tokens, strideC: tokens * tokens)
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
