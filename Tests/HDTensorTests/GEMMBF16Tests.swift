import HDTestSupport
import HDTensor
import Testing

/// The training GEMM in bf16 (`GEMMPrecision.bf16`, AMX tiles) against an f64 reference on the
/// operands rounded to bf16: the only error left is the f32 summation's, so each output must be
/// within (k + 2) · 2⁻²⁴ · (|α| Σ|a·b| + |β·c|) of it. That bound fails for a kernel that rounds
/// differently, drops or repeats a depth step, or reads a wrong column.
@Suite(.enabled(if: GEMMPrecision.bf16.isSupported, "bf16 products need AMX-BF16"))
struct GEMMBF16Tests {
    typealias Case = GEMMTests.Case

    /// Shapes across the tiles' edges (16-row tiles, 32-row blocks, 192-row groups, 32-column
    /// panels, 32-input depth steps), both layouts of each operand, wide strides, and the α/β
    /// pairs training uses.
    static let cases: [Case] = {
        var out: [Case] = []
        for transA in [false, true] {
            for transB in [false, true] {
                for (m, n, k) in [(1, 1, 1), (13, 33, 257), (193, 65, 31), (12, 32, 0), (200, 7, 600), (47, 17, 64)] {
                    for (pad, alpha, beta) in [(0, Float(1), Float(0)), (3, 1, 1), (1, 0.25, 0)] {
                        out.append(Case(transA: transA, transB: transB, m: m, n: n, k: k, pad: pad, alpha: alpha, beta: beta))
                    }
                }
            }
        }
        return out
    }()

    /// x rounded to bf16 as `vcvtne2ps2bf16` does: to nearest even (the test's values are normal).
    static func bf16(_ x: Float) -> Float {
        let bits = x.bitPattern
        return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
    }

    /// The f64 reference of op(A)·op(B) on bf16 operands and the bound each output must be within.
    static func reference(_ t: Case, a: [Float], lda: Int, b: [Float], ldb: Int, c: [Float], ldc: Int,
                          bias: [Float]?) -> (values: [Double], bounds: [Double]) {
        var values = [Double](repeating: 0, count: t.m * ldc), bounds = values
        for i in 0..<t.m {
            for j in 0..<t.n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<t.k {
                    let x = Double(bf16(t.transA ? a[p * lda + i] : a[i * lda + p]))
                    let y = Double(bf16(t.transB ? b[j * ldb + p] : b[p * ldb + j]))
                    sum += x * y
                    magnitude += abs(x * y)
                }
                let old = Double(t.beta) * Double(c[i * ldc + j]) + Double(bias?[j] ?? 0)
                values[i * ldc + j] = Double(t.alpha) * sum + old
                bounds[i * ldc + j] = Double(t.k + 2) * 0x1p-24 * (abs(Double(t.alpha)) * magnitude + abs(old)) + 1e-30
            }
        }
        return (values, bounds)
    }

    @Test(arguments: cases)
    func bf16GEMMMatchesTheReferenceOnRoundedOperands(_ t: Case) {
        let (aRows, aCols) = t.transA ? (t.k, t.m) : (t.m, t.k)
        let (bRows, bCols) = t.transB ? (t.n, t.k) : (t.k, t.n)
        let lda = max(aCols + t.pad, 1), ldb = max(bCols + t.pad, 1), ldc = t.n + t.pad
        let a = randomFloats(aRows * lda, seed: 1), b = randomFloats(bRows * ldb, seed: 2)
        let original = randomFloats(t.m * ldc, seed: 3)
        let bias = t.alpha == 1 && t.beta == 0 ? randomFloats(t.n, seed: 4) : nil
        var actual = original
        actual.withUnsafeMutableBufferPointer { c in
            GEMM.multiply(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                          a: a, lda: lda, b: b, ldb: ldb, beta: t.beta, c: c.baseAddress!, ldc: ldc, bias: bias,
                          threads: 2, precision: .bf16)
        }
        let (expected, bounds) = Self.reference(t, a: a, lda: lda, b: b, ldb: ldb, c: original, ldc: ldc, bias: bias)
        var worst = 0.0
        for i in 0..<t.m {
            for j in 0..<t.n { worst = max(worst, abs(Double(actual[i * ldc + j]) - expected[i * ldc + j]) / bounds[i * ldc + j]) }
            for j in t.n..<ldc { #expect(actual[i * ldc + j] == original[i * ldc + j], "padding column \(j) of row \(i)") }
        }
        #expect(worst <= 1, "worst error \(worst) × the f32 summation's bound")
    }

    /// bf16 changes the products: against the fp32 product of the unrounded operands the error is
    /// that of 8-bit significands, far above f32's but well under 1 %, so a test that passed
    /// whichever precision ran would be caught here.
    @Test func bf16IsNotTheSinglePrecisionProduct() {
        let m = 64, n = 64, k = 256
        let a = randomFloats(m * k, seed: 11), b = randomFloats(n * k, seed: 12)
        var single = [Float](repeating: 0, count: m * n), half = single
        for (precision, out) in [(GEMMPrecision.fp32, 0), (.bf16, 1)] {
            var c = [Float](repeating: 0, count: m * n)
            c.withUnsafeMutableBufferPointer {
                GEMM.multiply(transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: $0.baseAddress!, ldc: n,
                              threads: 1, precision: precision)
            }
            if out == 0 { single = c } else { half = c }
        }
        let error = relativeError(half, single)
        #expect(error > 1e-4 && error < 1e-2, "relative error \(error)")
    }

    /// The attention's batched products, per head read in place at fixed strides, equal one
    /// `multiply` per head on the same slices in bf16, bit for bit (each product is one call of the
    /// same kernel), with each operand layout.
    @Test(arguments: [(false, true), (true, false), (false, false)])
    func stridedBatchedHeadsMatchOneProductPerHead(transA: Bool, transB: Bool) {
        let heads = 3, size = 40, tokens = 37, width = heads * size
        let x = randomFloats(tokens * width, seed: 4), y = randomFloats(tokens * width, seed: 5)
        // (m, n, k) per head: S = Q·Kᵀ, tokens × tokens over the head size; X·V, tokens deep; the
        // backward's Xᵀ·Y, size × size, tokens deep.
        let (m, n, k) = transA ? (size, size, tokens) : transB ? (tokens, tokens, size) : (tokens, size, tokens)
        let ldc = n, stride = m * n
        var batched = [Float](repeating: 0, count: heads * stride), single = batched
        batched.withUnsafeMutableBufferPointer { c in
            GEMM.multiplyStridedBatched(count: heads, transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5,
                                        a: x, lda: width, strideA: size, b: y, ldb: width, strideB: size,
                                        c: c.baseAddress!, ldc: ldc, strideC: stride, threads: 2, precision: .bf16)
        }
        single.withUnsafeMutableBufferPointer { c in
            for h in 0..<heads {
                x.withUnsafeBufferPointer { a in
                    y.withUnsafeBufferPointer { b in
                        GEMM.multiply(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a.baseAddress! + h * size,
                                      lda: width, b: b.baseAddress! + h * size, ldb: width, c: c.baseAddress! + h * stride,
                                      ldc: ldc, threads: 1, precision: .bf16)
                    }
                }
            }
        }
        let same = batched == single
        #expect(same)
    }
}

/// Where the tiles are missing, bf16 is refused naming what it needs; fp32 runs anywhere.
@Test(arguments: [(GEMMPrecision.bf16, false, String?("AMX-BF16 tiles")), (.bf16, true, nil), (.fp32, false, nil), (.fp32, true, nil)])
func gemmPrecisionNamesWhatItNeeds(precision: GEMMPrecision, tiles: Bool, expected: String?) {
    let reason = precision.unsupportedReason(tiles: tiles)
    #expect((reason == nil) == (expected == nil), "\(reason ?? "nil")")
    if let expected { #expect(reason?.contains(expected) == true && reason?.contains("Linux") == true) }
}
