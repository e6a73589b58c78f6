import CRuntimeKernels
import HDRuntime
import HDTensor
import Testing

/// CRuntimeKernels against OpenBLAS and the Swift kernels. The packed GEMM: row counts around the
/// 12-row tile, column counts around the 16-float vectors and 32-column panels, depths around the
/// 256-input passes, panel ranges split as the workers split them, and every epilogue. The
/// softmax: widths around its 16-float vectors.
@Suite(.enabled(if: GEMMKernel.isPackedSupported, "the runtime's C kernels need AVX-512F"))
struct RuntimeKernelsTests {
    @Test(arguments: [
        (1, 1, 1), (12, 32, 256), (13, 33, 257), (11, 31, 255), (5, 16, 7), (7, 17, 600),
        (24, 48, 512), (25, 100, 3), (128, 96, 768), (3, 15, 0),
    ])
    func packedEqualsOpenBLAS(m: Int, n: Int, k: Int) {
        let a = ParallelTests.values(m * k, seed: 3), w = ParallelTests.values(n * k, seed: 4)
        let bias = ParallelTests.values(n, seed: 5)
        var product = [Float](repeating: 0, count: m * n)
        BLAS.setThreads(1)
        if k > 0 { BLAS.gemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: w, ldb: k, c: &product, ldc: n) }
        var rows = [Float](repeating: .nan, count: hd_packed_rows_count(m, k))
        var panels = [Float](repeating: .nan, count: hd_packed_weights_count(n, k))
        hd_pack_rows(a, m, k, k, &rows)
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
                    hd_packed_gemm(m, n, k, rows, panels, first, end, &got, ldc, epilogue, bias)
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

    /// Packing reads rows `lda` apart: a strided matrix packs as its compact copy does.
    @Test(arguments: [(25, 40), (12, 16), (7, 33)])
    func packRowsHonoursTheRowStride(m: Int, k: Int) {
        let lda = k + 5, wide = FusedKernelTests.values(m * lda, seed: 9)
        let compact = (0..<m).flatMap { wide[($0 * lda)..<($0 * lda + k)] }
        var fromWide = [Float](repeating: .nan, count: hd_packed_rows_count(m, k))
        var fromCompact = fromWide
        hd_pack_rows(wide, m, k, lda, &fromWide)
        hd_pack_rows(compact, m, k, k, &fromCompact)
        #expect(fromWide == fromCompact)
        // Block b holds input i of row 12b + r at i·12 + r.
        #expect(fromCompact[1 * 12 + 2] == compact[2 * k + 1])
    }

    @Test(arguments: [(3, 16), (4, 21), (2, 3), (1, 1), (2, 15), (2, 17), (1, 128), (3, 384)])
    func softmaxEqualsReference(rows: Int, width: Int) {
        let x = FusedKernelTests.values(rows * width, seed: 8, spread: 30)
        var got = x
        hd_softmax_rows(&got, rows, width)
        #expect(FusedKernelTests.maxError(got, Reference.softmaxRows(x, width: width, scale: 1, mask: nil)) < 1e-6)
    }
}
