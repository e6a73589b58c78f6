import CRuntimeKernels
import Synchronization

/// The training path's single-precision GEMM: every product of the forward and backward (dense
/// layers, attention, the losses' projections) goes through here. Same layout rules as `BLAS.gemm`
/// (row-major, `[out, in]` weights read as `transB`, sub-matrices by base pointer and leading
/// dimension).
///
/// Where the CPU runs AVX-512F it runs CRuntimeKernels' packed GEMM, the runtime's kernel (0.8–0.9
/// of the FMA peak) instead of OpenBLAS's AVX2 one (this machine and CI set
/// `OPENBLAS_CORETYPE=Haswell`): op(B) is packed into 32-column panels per call — a pass over n × k
/// values, small next to the 2·m·n·k of a training batch's product (m is batch × sequence rows) —
/// and op(A) is read in place, transposed or not. OpenBLAS stays the fallback elsewhere.
///
/// Determinism: on the packed kernel every output is the same sum in the same order whatever
/// worker computes it and however the rows and panels are cut, so results do not depend on the
/// thread count at all; on OpenBLAS they depend on it (OpenBLAS splits its sums), as before.
public enum GEMM {
    /// The kernel calls run on unless told otherwise: `.packed` where the CPU and OS run AVX-512F.
    public static let defaultKernel: GEMMKernel = .best

    /// Rows of a chunk's row group: 16 register tiles of 12 rows, so a group's slice of A
    /// (192 × 256 inputs, 192 KiB) stays in L2 while a worker's panels pass over it. As the runtime's
    /// dense layer (`InferenceSession.packedGroupRows`), where all the rows of a large batch came
    /// back from L3 per panel.
    static let groupRows = 16 * GEMMKernel.tileRows

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, as `BLAS.gemm`, on `threads` workers; with `bias`
    /// (n floats; alpha 1, beta 0), C = op(A) · op(B) + bias, the bias added to each tile as the
    /// packed kernel stores it. The packed kernel takes beta 0 or 1 with alpha 1, and any alpha with
    /// beta 0 (what training uses); other combinations go to OpenBLAS.
    public static func multiply(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                                alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<Float>, ldb: Int,
                                beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                bias: UnsafePointer<Float>? = nil,
                                threads: Int = BLAS.threads, kernel: GEMMKernel = defaultKernel) {
        precondition(bias == nil || (alpha == 1 && beta == 0), "gemm: a bias needs alpha 1 and beta 0")
        guard kernel == .packed, packedTakes(alpha: alpha, beta: beta) else {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c, ldc: ldc)
            if let bias { Kernels.addBias(c, rows: m, width: n, ld: ldc, bias: bias) }
            return
        }
        BLAS.checkShapes(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        let panelWidth = GEMMKernel.panelWidth
        let panels = (n + panelWidth - 1) / panelWidth
        let packed = ScratchBuffers.shared.take(hd_packed_weights_count(n, k))
        defer { ScratchBuffers.shared.give(back: packed) }
        // Each worker packs a contiguous range of panels, then all take chunks of (row group, panel)
        // from a shared counter: a busy core then takes fewer chunks instead of holding the rest up.
        ParallelFor.ranges(panels, cost: k * panelWidth, threads: threads) { _, range in
            packPanels(range, transB: transB, n: n, k: k, b: b, ldb: ldb, into: packed.baseAddress!)
        }
        let groups = (m + groupRows - 1) / groupRows, chunks = groups * panels
        let next = Atomic<Int>(0)
        let workers = min(threads, chunks, max(1, m * n * k / minimumWorkPerWorker))
        WorkerPool.shared.run(workers) { _ in
            while case let chunk = next.wrappingAdd(1, ordering: .relaxed).oldValue, chunk < chunks {
                let row = chunk / panels * groupRows, panel = chunk % panels, rows = min(groupRows, m - row)
                let block = transA ? a + row : a + row * lda
                hd_packed_gemm(rows, n, k, block, lda, transA ? 1 : 0, packed.baseAddress!, panel, panel + 1, c + row * ldc, ldc,
                               beta == 1 ? 1 : 0, bias == nil ? HD_EPILOGUE_NONE : HD_EPILOGUE_BIAS, bias)
                if alpha != 1 {
                    scale(c + row * ldc + panel * panelWidth, ld: ldc, rows: rows,
                          columns: min(panelWidth, n - panel * panelWidth), by: alpha)
                }
            }
        }
    }

    /// `count` independent products whose operands sit at fixed strides from the base pointers (one
    /// per attention head: head h of Q at `q + h·headSize` with `lda = heads·headSize`), as
    /// `BLAS.gemmStridedBatched`. On the packed kernel the products are split over the workers,
    /// each run whole by one of them: a head's product is too small (128 × 128 × 64) to split.
    public static func multiplyStridedBatched(count: Int, transA: Bool = false, transB: Bool = false,
                                              m: Int, n: Int, k: Int, alpha: Float = 1,
                                              a: UnsafePointer<Float>, lda: Int, strideA: Int,
                                              b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                                              beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int,
                                              threads: Int = BLAS.threads, kernel: GEMMKernel = defaultKernel) {
        guard kernel == .packed, packedTakes(alpha: alpha, beta: beta) else {
            BLAS.gemmStridedBatched(count: count, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                    a: a, lda: lda, strideA: strideA, b: b, ldb: ldb, strideB: strideB,
                                    beta: beta, c: c, ldc: ldc, strideC: strideC)
            return
        }
        BLAS.checkShapes(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 || count == 0 { return }
        let panels = (n + GEMMKernel.panelWidth - 1) / GEMMKernel.panelWidth
        ParallelFor.ranges(count, cost: m * n * k / 16, threads: threads) { _, range in
            let packed = ScratchBuffers.shared.take(hd_packed_weights_count(n, k))
            defer { ScratchBuffers.shared.give(back: packed) }
            for item in range {
                packPanels(0..<panels, transB: transB, n: n, k: k, b: b + item * strideB, ldb: ldb, into: packed.baseAddress!)
                let cItem = c + item * strideC
                hd_packed_gemm(m, n, k, a + item * strideA, lda, transA ? 1 : 0, packed.baseAddress!, 0, panels, cItem, ldc,
                               beta == 1 ? 1 : 0, HD_EPILOGUE_NONE, nil)
                if alpha != 1 { scale(cItem, ld: ldc, rows: m, columns: n, by: alpha) }
            }
        }
    }

    /// Products smaller than this many multiply-adds per worker stay on fewer workers: a hand-off
    /// costs about what a 32 × 32 × 32 product does.
    static let minimumWorkPerWorker = 32768

    static func packedTakes(alpha: Float, beta: Float) -> Bool {
        (beta == 0 || beta == 1) && (alpha == 1 || beta == 0)
    }

    /// Packs panels `range` of W = op(B)ᵀ (`[n × k]`, W[j][i] = op(B)[i][j]) into their places in
    /// `packed`: B `[n × k]` when `transB` (W itself, rows ldb apart), else B `[k × n]` (Wᵀ: each
    /// panel row is a contiguous run of B's row).
    static func packPanels(_ range: Range<Int>, transB: Bool, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int,
                           into packed: UnsafeMutablePointer<Float>) {
        guard !range.isEmpty else { return }
        let width = GEMMKernel.panelWidth, first = range.lowerBound * width
        let columns = min(n, range.upperBound * width) - first
        hd_pack_weights_strided(transB ? b + first * ldb : b + first, columns, k, transB ? ldb : 1, transB ? 1 : ldb,
                                packed + range.lowerBound * k * width)
    }

    /// C[rows × columns] *= alpha (row stride `ld`).
    static func scale(_ c: UnsafeMutablePointer<Float>, ld: Int, rows: Int, columns: Int, by alpha: Float) {
        for r in 0..<rows {
            let row = c + r * ld
            for j in 0..<columns { row[j] *= alpha }
        }
    }
}

/// Float buffers kept between calls for the training path's scratch: the packed operands of every
/// GEMM (a training step makes hundreds of calls whose packed operands are up to megabytes, and
/// freshly allocated buffers of that size come from the kernel zero-filled, page by page — perf,
/// MiniLM distillation step at 1 thread: 4 % of the time in page faults) and the gathered operands
/// of a pruned student's dense layers. Callers on several threads (the workers of a batched
/// product, parallel tests) each take their own buffer; the pool holds as many as were ever in use
/// at once.
public final class ScratchBuffers: Sendable {
    public static let shared = ScratchBuffers()

    /// A buffer no caller holds: handed from one thread to the next only through the lock.
    private struct Free: @unchecked Sendable { let buffer: UnsafeMutableBufferPointer<Float> }
    private let free = Mutex<[Free]>([])

    /// A buffer of at least `count` floats (at least one), its contents undefined, to be given
    /// back: the smallest free one that fits, or else a new one (the largest free one, too small,
    /// is freed for it).
    public func take(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let count = max(count, 1)
        let reused: Free? = free.withLock { buffers in
            if let i = buffers.indices.filter({ buffers[$0].buffer.count >= count })
                .min(by: { buffers[$0].buffer.count < buffers[$1].buffer.count }) {
                return buffers.remove(at: i)
            }
            if let largest = buffers.indices.max(by: { buffers[$0].buffer.count < buffers[$1].buffer.count }) {
                buffers.remove(at: largest).buffer.deallocate()
            }
            return nil
        }
        return reused?.buffer ?? .allocate(capacity: count)
    }

    public func give(back buffer: UnsafeMutableBufferPointer<Float>) {
        let returned = Free(buffer: buffer)
        free.withLock { $0.append(returned) }
    }
}
