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
/// and op(A) is read in place, or copied row-major first when transposed (`hd_transpose`).
/// OpenBLAS stays the fallback elsewhere.
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
    /// beta 0 (what training uses); other combinations go to OpenBLAS. With `precision` `.bf16` the
    /// operands are rounded to bf16 and multiplied on AMX tiles (`GEMMPrecision`; `kernel` is then
    /// not used, and only those alpha and beta are taken).
    ///
    /// `rowSumsOfA` (m floats; with `transA` only): each row of op(A), a column of A, is also added
    /// into it, A's rows in order as `Kernels.biasBackward` adds them — a linear layer's dW = dYᵀ·X
    /// and bias gradient Σ dY together. The packed kernel sums while it transposes A, so dY is read
    /// once for both; elsewhere `biasBackward` runs first. The same bits either way.
    public static func multiply(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                                alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<Float>, ldb: Int,
                                beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                bias: UnsafePointer<Float>? = nil, rowSumsOfA: UnsafeMutablePointer<Float>? = nil,
                                threads: Int = BLAS.threads, kernel: GEMMKernel = defaultKernel,
                                precision: GEMMPrecision = .fp32) {
        precondition(bias == nil || (alpha == 1 && beta == 0), "gemm: a bias needs alpha 1 and beta 0")
        precondition(rowSumsOfA == nil || transA, "gemm: row sums of op(A) are taken while A is transposed (transA)")
        if let rowSumsOfA, n == 0 || precision == .bf16 || kernel != .packed || !packedTakes(alpha: alpha, beta: beta) {
            BLAS.checkShapes(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
            if k > 0 { Kernels.biasBackward(a, rows: k, width: m, ld: lda, dbias: rowSumsOfA) }
        }
        if precision == .bf16 {
            multiplyBF16(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                         beta: beta, c: c, ldc: ldc, bias: bias, threads: threads)
            return
        }
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
        let groups = (m + groupRows - 1) / groupRows
        let workers = min(threads, groups * panels, max(1, m * n * k / minimumWorkPerWorker))
        // A transposed A is copied row-major: a row group at a time by the worker that multiplies
        // it, while the copy is in L2, when there are groups enough to share out (the MLM decoder's
        // dW: 30,522 rows); else whole, up front, its rows split over the workers.
        let transposeByGroup = transA && groups >= 2 * workers
        let transposed = transA && !transposeByGroup ? ScratchBuffers.shared.take(m * k) : nil
        defer { transposed.map { ScratchBuffers.shared.give(back: $0) } }
        if let transposed {
            ParallelFor.ranges(m, cost: k, threads: threads) { _, range in
                hd_transpose(a, k, m, lda, range.lowerBound, range.upperBound, transposed.baseAddress! + range.lowerBound * k, rowSumsOfA)
            }
        }
        let (a, lda) = transposed.map { (UnsafePointer($0.baseAddress!), k) } ?? (a, lda)
        // Each worker packs a contiguous range of panels; then all take chunks of a row group and
        // panels (one panel, or all of them when the group is transposed by its worker) from a
        // shared counter: a busy core then takes fewer chunks instead of holding the rest up.
        ParallelFor.ranges(panels, cost: k * panelWidth, threads: threads) { _, range in
            packPanels(range, transB: transB, n: n, k: k, b: b, ldb: ldb, into: packed.baseAddress!)
        }
        // A deep product, whose row group is more of A than L2 holds (the MLM decoder's input
        // gradient: k = 30,522), gives each worker an equal share of the rows over every panel, which
        // the kernel then runs depth outer, so that A is read once instead of once per panel.
        let deep = !transposeByGroup && groupRows * k > Int(HD_DEPTH_OUTER_VALUES) && panels > 1
        let tileRows = GEMMKernel.tileRows
        let chunkRows = deep ? ((m + workers - 1) / workers + tileRows - 1) / tileRows * tileRows : groupRows
        let chunkPanels = transposeByGroup || deep ? panels : 1
        let chunks = (m + chunkRows - 1) / chunkRows * (panels / chunkPanels)
        let counter = ChunkCounter(count: chunks, workers: workers)
        WorkerPool.shared.run(workers) { _ in
            let block = transposeByGroup ? ScratchBuffers.shared.take(groupRows * k) : nil
            defer { block.map { ScratchBuffers.shared.give(back: $0) } }
            counter.forEach { chunk in
                let group = chunk * chunkPanels / panels, panel = chunk * chunkPanels % panels
                let row = group * chunkRows, rows = min(chunkRows, m - row)
                var (rowsOfA, ldaOfRows) = (a + row * lda, lda)
                if let block {
                    hd_transpose(a, k, m, lda, row, row + rows, block.baseAddress!, rowSumsOfA)
                    (rowsOfA, ldaOfRows) = (UnsafePointer(block.baseAddress!), k)
                }
                hd_packed_gemm(rows, n, k, rowsOfA, ldaOfRows, packed.baseAddress!, panel, panel + chunkPanels, c + row * ldc, ldc,
                               beta == 1 ? 1 : 0, bias == nil ? HD_EPILOGUE_NONE : HD_EPILOGUE_BIAS, bias)
                if alpha != 1 {
                    let first = panel * panelWidth
                    scale(c + row * ldc + first, ld: ldc, rows: rows, columns: min(chunkPanels * panelWidth, n - first), by: alpha)
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
                                              threads: Int = BLAS.threads, kernel: GEMMKernel = defaultKernel,
                                              precision: GEMMPrecision = .fp32) {
        if precision == .bf16 {
            multiplyStridedBatchedBF16(count: count, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                       a: a, lda: lda, strideA: strideA, b: b, ldb: ldb, strideB: strideB,
                                       beta: beta, c: c, ldc: ldc, strideC: strideC, threads: threads)
            return
        }
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
            let transposed = transA ? ScratchBuffers.shared.take(m * k) : nil
            defer {
                ScratchBuffers.shared.give(back: packed)
                transposed.map { ScratchBuffers.shared.give(back: $0) }
            }
            for item in range {
                packPanels(0..<panels, transB: transB, n: n, k: k, b: b + item * strideB, ldb: ldb, into: packed.baseAddress!)
                var (aItem, ldaItem) = (a + item * strideA, lda)
                if let transposed {
                    hd_transpose(aItem, k, m, lda, 0, m, transposed.baseAddress!, nil)
                    (aItem, ldaItem) = (UnsafePointer(transposed.baseAddress!), k)
                }
                let cItem = c + item * strideC
                hd_packed_gemm(m, n, k, aItem, ldaItem, packed.baseAddress!, 0, panels, cItem, ldc,
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
        let w = panelSource(range, transB: transB, n: n, b: b, ldb: ldb)
        hd_pack_weights_strided(w.first, w.columns, k, w.columnStride, w.inputStride, packed + range.lowerBound * k * GEMMKernel.panelWidth)
    }

    /// The columns of W = op(B)ᵀ that panels `range` hold, as the packers read them: W[j][i] at
    /// first[j·columnStride + i·inputStride] for j < columns.
    static func panelSource(_ range: Range<Int>, transB: Bool, n: Int, b: UnsafePointer<Float>, ldb: Int)
        -> (first: UnsafePointer<Float>, columns: Int, columnStride: Int, inputStride: Int) {
        let width = GEMMKernel.panelWidth, first = range.lowerBound * width
        return (transB ? b + first * ldb : b + first, min(n, range.upperBound * width) - first, transB ? ldb : 1, transB ? 1 : ldb)
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
