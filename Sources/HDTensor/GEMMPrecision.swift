import CRuntimeKernels

/// What the training products round their operands to before multiplying them.
public enum GEMMPrecision: String, Sendable, CaseIterable {
    /// Single precision throughout: the packed AVX-512 kernel, or OpenBLAS (the default).
    case fp32
    /// Both operands rounded to bfloat16 (8 significant bits, to nearest even), their products
    /// summed in f32 on AMX tiles (`tdpbf16ps`); the result, bias and α stay f32. What PyTorch's CPU
    /// autocast to bfloat16 does to linear layers and batched products: mixed precision, the
    /// weights, their gradients and the optimiser staying f32. Each product then carries a relative
    /// error of about 2⁻⁸ per operand instead of 2⁻²⁴, so a run is not the fp32 run's numbers; it
    /// is as repeatable (each output is the same sum in the same order at any thread count).
    case bf16

    /// Whether this CPU and OS run it: bf16 needs AMX-BF16 and Linux's grant of the tile state
    /// (`hd_amx_bf16_supported`); the AVX-512 `vdpbf16ps` kernel's peak is under the FMA's here,
    /// so bf16 does not run without tiles.
    public var isSupported: Bool { unsupportedReason() == nil }

    /// Why it cannot run on a CPU and OS that have the tiles or not (nil: this one's), or nil when
    /// it can: the messages that refuse it (`--matmul`). fp32 never looks at the tiles, so an fp32
    /// run does not ask Linux for the tile state (`hd_amx_bf16_supported`'s process-wide grant).
    public func unsupportedReason(tiles: Bool? = nil) -> String? {
        switch self {
        case .fp32: nil
        case .bf16: tiles ?? Self.hasTiles ? nil
            : "bf16 products need AMX-BF16 tiles (Intel Xeon 4th generation or later) and Linux ≥ 5.16, which this CPU or OS does not give"
        }
    }

    /// Asked once, on first use: the check requests the tile state for the whole process.
    private static let hasTiles = hd_amx_bf16_supported() != 0
}

extension GEMM {
    /// `multiply` in bf16 (`GEMMPrecision.bf16`): op(A) converted to bf16 in the tiles' layout
    /// (and transposed when `transA`), op(B) packed into bf16 panels, then chunks of (192-row group,
    /// panel) shared out from a counter to `hd_bf16_gemm_tiled`; C, the bias and α as `multiply`'s
    /// packed path.
    static func multiplyBF16(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?,
                             threads: Int) {
        precondition(GEMMPrecision.bf16.isSupported, "gemm: bf16 products need AMX-BF16 (check GEMMPrecision.isSupported first)")
        precondition(packedTakes(alpha: alpha, beta: beta), "gemm: bf16 products take beta 0 or 1 with alpha 1, or beta 0")
        BLAS.checkShapes(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        let panels = (n + GEMMKernel.panelWidth - 1) / GEMMKernel.panelWidth, blocks = (m + tileBlockRows - 1) / tileBlockRows
        let tiles = ScratchBuffers.shared.take(halfwords: hd_bf16_tiled_values(m, k))
        let packed = ScratchBuffers.shared.take(halfwords: hd_bf16_packed_bytes(n, k) / 2)
        defer {
            ScratchBuffers.shared.give(back: tiles)
            ScratchBuffers.shared.give(back: packed)
        }
        let aTiles = bf16(tiles), packedBF16 = bf16(packed), blockValues = hd_bf16_tiled_values(tileBlockRows, k)
        ParallelFor.ranges(blocks, cost: tileBlockRows * k, threads: threads) { _, range in
            convertBlocks(range, transA: transA, m: m, k: k, a: a, lda: lda, into: aTiles + range.lowerBound * blockValues)
        }
        ParallelFor.ranges(panels, cost: k * GEMMKernel.panelWidth, threads: threads) { _, range in
            packBF16Panels(range, transB: transB, n: n, k: k, b: b, ldb: ldb, into: packedBF16)
        }
        let groups = (m + groupRows - 1) / groupRows, chunks = groups * panels
        let workers = min(threads, chunks, max(1, m * n * k / minimumWorkPerWorker))
        let counter = ChunkCounter(count: chunks, workers: workers)
        assert(groupRows % tileBlockRows == 0, "a row group must start at a block of the tiles' layout")
        WorkerPool.shared.run(workers) { _ in
            counter.forEach { chunk in
                let row = chunk / panels * groupRows, panel = chunk % panels, count = min(groupRows, m - row)
                hd_bf16_gemm_tiled(count, n, k, aTiles + row / tileBlockRows * blockValues, packedBF16, panel, panel + 1,
                                   c + row * ldc, ldc, beta == 1 ? 1 : 0, bias == nil ? HD_EPILOGUE_NONE : HD_EPILOGUE_BIAS, bias)
                if alpha != 1 {
                    let first = panel * GEMMKernel.panelWidth
                    scale(c + row * ldc + first, ld: ldc, rows: count, columns: min(GEMMKernel.panelWidth, n - first), by: alpha)
                }
            }
        }
    }

    /// `multiplyStridedBatched` in bf16: each worker runs whole products, as the fp32 path does.
    static func multiplyStridedBatchedBF16(count: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                           a: UnsafePointer<Float>, lda: Int, strideA: Int,
                                           b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                                           beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int, threads: Int) {
        precondition(GEMMPrecision.bf16.isSupported, "gemm: bf16 products need AMX-BF16 (check GEMMPrecision.isSupported first)")
        precondition(packedTakes(alpha: alpha, beta: beta), "gemm: bf16 products take beta 0 or 1 with alpha 1, or beta 0")
        BLAS.checkShapes(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 || count == 0 { return }
        let panels = (n + GEMMKernel.panelWidth - 1) / GEMMKernel.panelWidth, blocks = (m + tileBlockRows - 1) / tileBlockRows
        ParallelFor.ranges(count, cost: m * n * k / 16, threads: threads) { _, range in
            let tiles = ScratchBuffers.shared.take(halfwords: hd_bf16_tiled_values(m, k))
            let packed = ScratchBuffers.shared.take(halfwords: hd_bf16_packed_bytes(n, k) / 2)
            defer {
                ScratchBuffers.shared.give(back: tiles)
                ScratchBuffers.shared.give(back: packed)
            }
            let aTiles = bf16(tiles), packedBF16 = bf16(packed)
            for item in range {
                convertBlocks(0..<blocks, transA: transA, m: m, k: k, a: a + item * strideA, lda: lda, into: aTiles)
                packBF16Panels(0..<panels, transB: transB, n: n, k: k, b: b + item * strideB, ldb: ldb, into: packedBF16)
                let cItem = c + item * strideC
                hd_bf16_gemm_tiled(m, n, k, aTiles, packedBF16, 0, panels, cItem, ldc, beta == 1 ? 1 : 0, HD_EPILOGUE_NONE, nil)
                if alpha != 1 { scale(cItem, ld: ldc, rows: m, columns: n, by: alpha) }
            }
        }
    }

    /// Rows of a block of the tiles' layout (`hd_bf16_convert_tiles`): conversions are split in
    /// whole blocks, and a row group (`groupRows`, 192) starts at a block's first row.
    static let tileBlockRows = 32

    /// The 32-row blocks `blocks` of op(A) (`[m × k]`) in bf16, in the tiles' layout, into `out`
    /// (the first block's place); a transposed A is transposed and converted in one pass.
    static func convertBlocks(_ blocks: Range<Int>, transA: Bool, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                              into out: UnsafeMutablePointer<UInt16>) {
        let first = blocks.lowerBound * tileBlockRows, end = min(m, blocks.upperBound * tileBlockRows)
        guard first < end else { return }
        if transA {
            hd_bf16_transpose_tiles(a, k, m, lda, first, end, out)
        } else {
            hd_bf16_convert_tiles(end - first, k, a + first * lda, lda, out)
        }
    }

    /// Packs panels `range` of W = op(B)ᵀ into their places in `packed`, as `packPanels` in f32.
    static func packBF16Panels(_ range: Range<Int>, transB: Bool, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int,
                               into packed: UnsafeMutablePointer<UInt16>) {
        guard !range.isEmpty else { return }
        let w = panelSource(range, transB: transB, n: n, b: b, ldb: ldb)
        hd_bf16_pack_weights_strided(w.first, w.columns, k, w.columnStride, w.inputStride,
                                     packed + range.lowerBound * hd_bf16_packed_bytes(GEMMKernel.panelWidth, k) / 2)
    }

    /// A scratch buffer's memory as the bf16 values only the C kernels read and write.
    private static func bf16(_ buffer: UnsafeMutableBufferPointer<Float>) -> UnsafeMutablePointer<UInt16> {
        UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: UInt16.self)
    }
}

extension ScratchBuffers {
    /// A buffer of at least `count` 16-bit values (as floats, two to one), to be given back.
    func take(halfwords count: Int) -> UnsafeMutableBufferPointer<Float> { take((count + 1) / 2) }
}
