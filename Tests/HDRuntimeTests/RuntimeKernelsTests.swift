import CRuntimeKernels
import HDRuntime
import HDTensor
import Testing

/// CRuntimeKernels against OpenBLAS and the Swift kernels. The packed GEMM: row counts around the
/// 12-row tile, column counts around the 16-float vectors and 32-column panels, depths around the
/// 256-input passes, an input row stride past its width, panel ranges split as the workers split
/// them, and every epilogue. The
/// strided packing of the attention's operands. The softmax: widths around its 16-float vectors,
/// with and without a scale.
@Suite(.enabled(if: GEMMKernel.isPackedSupported, "the runtime's C kernels need AVX-512F"))
struct RuntimeKernelsTests {
    @Test(arguments: [
        (1, 1, 1), (12, 32, 256), (13, 33, 257), (11, 31, 255), (5, 16, 7), (7, 17, 600),
        (24, 48, 512), (25, 100, 3), (128, 96, 768), (3, 15, 0),
    ])
    func packedEqualsOpenBLAS(m: Int, n: Int, k: Int) {
        // A is read in place with its row stride: 3 floats of garbage between rows must not count.
        let lda = k + 3, a = ParallelTests.values(m * lda, seed: 3), w = ParallelTests.values(n * k, seed: 4)
        let bias = ParallelTests.values(n, seed: 5)
        var product = [Float](repeating: 0, count: m * n)
        BLAS.setThreads(1)
        if k > 0 { BLAS.gemm(transB: true, m: m, n: n, k: k, a: a, lda: lda, b: w, ldb: k, c: &product, ldc: n) }
        var panels = [Float](repeating: .nan, count: hd_packed_weights_count(n, k))
        w.withUnsafeBufferPointer { w in
            let rowPointers = (0..<n).map { j in w.baseAddress.map { UnsafePointer($0 + j * k) } }
            hd_pack_weights(rowPointers, n, k, &panels)
        }
        let panelCount = (n + 31) / 32
        let epilogues: [(hd_epilogue, (UnsafeMutablePointer<Float>) -> Void)] = [
            (HD_EPILOGUE_NONE, { _ in }),
            (HD_EPILOGUE_BIAS, { Kernels.addBias($0, rows: m, width: n, bias: bias) }),
            (HD_EPILOGUE_BIAS_GELU, { FusedKernels.biasGelu($0, rows: m, width: n, bias: bias) }),
            (HD_EPILOGUE_BIAS_GELU_TANH, { FusedKernels.biasGeluTanh($0, rows: m, width: n, bias: bias) }),
        ]
        // Whole range, and two workers' halves; a canary column past n must stay untouched.
        for (epilogue, reference) in epilogues {
            var want = product
            reference(&want)
            for splits in [[0, panelCount], [0, panelCount / 2, panelCount]] {
                let ldc = n + 1
                var got = [Float](repeating: -7, count: m * ldc)
                for (first, end) in zip(splits, splits.dropFirst()) {
                    hd_packed_gemm(m, n, k, a, lda, 0, panels, first, end, &got, ldc, 0, epilogue, bias)
                }
                var worst: Float = 0
                for i in 0..<m {
                    for j in 0..<n { worst = max(worst, abs(got[i * ldc + j] - want[i * n + j])) }
                    #expect(got[i * ldc + n] == -7, "column \(n) of row \(i) was written")
                }
                let scale = max(want.map(abs).max() ?? 0, 1)
                #expect(worst <= 1e-5 * scale, "\(m)×\(n)×\(k), epilogue \(epilogue.rawValue): max difference \(worst)")
            }
        }
    }

    /// The attention's operands: K_h (rows `ld` apart) packs as W, V_h as Wᵀ, each as its compact
    /// row-major copy packs through `hd_pack_weights`.
    @Test(arguments: [(20, 64, 0), (33, 48, 7), (5, 1, 3), (64, 31, 0)])
    func stridedPackingEqualsRowPacking(tokens: Int, size: Int, offset: Int) {
        let ld = 3 * size + offset, rowsMajor = FusedKernelTests.values(tokens * ld, seed: 10)
        func packed(_ w: [Float], n: Int, k: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: hd_packed_weights_count(n, k))
            w.withUnsafeBufferPointer { w in
                let rows = (0..<n).map { j in w.baseAddress.map { UnsafePointer($0 + j * k) } }
                hd_pack_weights(rows, n, k, &out)
            }
            return out
        }
        // W = K_h: n = tokens outputs of `size` inputs; W = V_hᵀ: n = size outputs of `tokens` inputs.
        let kCompact = (0..<tokens).flatMap { t in rowsMajor[(t * ld + offset)..<(t * ld + offset + size)] }
        let vTransposed = (0..<size).flatMap { j in (0..<tokens).map { t in rowsMajor[t * ld + offset + j] } }
        var kPacked = [Float](repeating: .nan, count: hd_packed_weights_count(tokens, size))
        var vPacked = [Float](repeating: .nan, count: hd_packed_weights_count(size, tokens))
        rowsMajor.withUnsafeBufferPointer { m in
            hd_pack_weights_strided(m.baseAddress! + offset, tokens, size, ld, 1, &kPacked)
            hd_pack_weights_strided(m.baseAddress! + offset, size, tokens, 1, ld, &vPacked)
        }
        #expect(kPacked == packed(kCompact, n: tokens, k: size))
        #expect(vPacked == packed(vTransposed, n: size, k: tokens))
    }

    @Test(arguments: [(3, 16, 1), (4, 21, 0.125), (2, 3, 1), (1, 1, 0.5), (2, 15, 1), (2, 17, 0.125), (1, 128, 1), (3, 384, 0.125)])
    func softmaxEqualsReference(rows: Int, width: Int, scale: Float) {
        let x = FusedKernelTests.values(rows * width, seed: 8, spread: 30)
        var got = x
        hd_softmax_rows(&got, rows, width, scale, nil, 1)
        #expect(FusedKernelTests.maxError(got, Reference.softmaxRows(x, width: width, scale: scale, mask: nil)) < 1e-6)
    }
}
