import CRuntimeKernels
import HDModel
import HDTensor
import Synchronization

/// Runs a `RuntimeModel` on batches of up to `maxBatch` sequences of up to `maxLength` tokens.
///
/// All activations live in one arena laid out at `init`; a forward allocates nothing. Padded
/// positions are dropped before the first layer: real tokens are packed into consecutive rows
/// (sequence by sequence), every dense layer runs on those rows only, and each sequence attends
/// over its own real tokens, so padding costs no FLOPs and needs no mask. Outputs at padded
/// positions are zero. Not thread-safe: one session per thread of callers.
public final class InferenceSession {
    public let model: RuntimeModel
    public let maxBatch: Int
    public let maxLength: Int
    public let threads: Int

    let arena: Arena
    let hidden, work, context, projection: ArenaSlot
    /// Per worker, for the attention of one (sequence, head) at a time (see `attention`): its
    /// L × L scores and, with the packed kernels, the packed right-hand operand of the product
    /// being run.
    let scores, attentionPanels: ArenaSlot
    /// A dense layer's input rows in the model's precision (int8: u8 rows padded to 4 bytes, with
    /// their scales, then their zero points (int32), in `rowScales`; bf16: rows padded to 2
    /// values), `convertedStride` bytes apart; empty in fp32.
    let converted, rowScales: ArenaSlot
    let convertedStride: Int
    /// The classifier head's [maxBatch × d] [CLS] rows and pooled rows, [maxBatch × labels] logits and
    /// probabilities; empty without a classifier head.
    let headCLS, headPooled, headLogits, headProbabilities: ArenaSlot
    /// Packed row → flat index b·L + t of the batch last run.
    let rowToken: UnsafeMutableBufferPointer<Int>
    /// Packed rows of sequence b are sequenceStart[b]..<sequenceStart[b + 1].
    let sequenceStart: UnsafeMutableBufferPointer<Int>
    let parallel: Parallel
    /// Whether the model's weights are packed, which means this CPU runs CRuntimeKernels' AVX-512F
    /// kernels: the softmax uses them too.
    let usesPackedKernels: Bool

    /// Shape of the batch last run.
    public private(set) var batchSize = 0
    public private(set) var sequenceLength = 0
    /// Real (unpadded) tokens of the batch last run: the rows of `packedHiddenState`.
    public private(set) var rows = 0

    /// Lays out the arena; `threads` workers share the GEMMs, element-wise kernels and attention
    /// heads. OpenBLAS's thread count is process-wide: a session keeps it at 1 outside its large
    /// GEMMs. Refuses (as bad input) a shape whose arena would exceed `maxBytes`.
    public init(model: RuntimeModel, maxBatch: Int, maxLength: Int, threads: Int, maxBytes: Int = 8 << 30) throws {
        func bad(_ message: String) -> ModelError { ModelError(.badInput, file: "<input>", message) }
        guard maxBatch > 0, maxLength > 0, threads > 0 else {
            throw bad("expected a positive batch, length and thread count, found batch \(maxBatch) × length \(maxLength), \(threads) threads")
        }
        usesPackedKernels = model.layers.contains { $0.qkv.kernel == .packed } || model.mlmHead?.transform.kernel == .packed
        guard maxLength <= model.config.maxPositionEmbeddings else {
            throw bad("sequence length \(maxLength) exceeds the position table (max_position_embeddings \(model.config.maxPositionEmbeddings))")
        }
        let (T, overflow) = maxBatch.multipliedReportingOverflow(by: maxLength)
        guard !overflow else { throw bad("batch \(maxBatch) × length \(maxLength) overflows") }
        let shapes = model.layers.map(\.shape)
        let widest = shapes.map { max(3 * $0.attentionWidth, $0.intermediateSize) }.max() ?? 0
        let attention = shapes.map(\.attentionWidth).max() ?? 0
        let d = model.config.hiddenSize
        var layout = ArenaLayout(maxCount: maxBytes / MemoryLayout<Float>.stride)
        do {
            hidden = try layout.reserve("hidden", shape: [T, d])
            // Q/K/V of a layer, then (once attention is done with them) its FFN intermediate.
            work = try layout.reserve("qkv+intermediate", shape: [T, widest])
            context = try layout.reserve("context", shape: [T, attention])
            projection = try layout.reserve("projection", shape: [T, d])
            // Workers take (sequence, head) pairs, each with its own scratch. The scores' checked
            // size bounds maxLength, so the packed counts below cannot overflow.
            scores = try layout.reserve("scores", shape: [threads, maxLength, maxLength])
            let L = maxLength, size = shapes.map(\.headSize).max() ?? 0, packed = usesPackedKernels
            attentionPanels = try layout.reserve("attention panels", shape: [
                threads, packed ? max(hd_packed_weights_count(L, size), hd_packed_weights_count(size, L)) : 0])
            // Room for the widest input of a dense layer: int8 takes k rounded up to a tile step of
            // 64 bytes, bf16 k rounded up to one of 32 values of 2 bytes, so 2 × (k rounded up to
            // 64) bytes serves both.
            let inputs = shapes.map { max(d, $0.attentionWidth, $0.intermediateSize) }.max() ?? 0
            let lowPrecision = model.precision != .fp32, step = Int(HD_INT8_DEPTH_STEP)
            convertedStride = lowPrecision ? 2 * ((inputs + step - 1) / step * step) : 0
            converted = try layout.reserve("converted input", shape: [T, convertedStride / MemoryLayout<Float>.stride])
            rowScales = try layout.reserve("row scales and zero points", shape: [lowPrecision ? 2 * T : 0])
            let headRows = model.classifierHead == nil ? 0 : maxBatch, labels = model.classifierHead?.labels.count ?? 0
            headCLS = try layout.reserve("classifier [CLS] rows", shape: [headRows, d])
            headPooled = try layout.reserve("classifier pooled rows", shape: [headRows, d])
            headLogits = try layout.reserve("classifier logits", shape: [headRows, labels])
            headProbabilities = try layout.reserve("classifier probabilities", shape: [headRows, labels])
        } catch let error as TensorError {
            throw bad("activations for batch \(maxBatch) × length \(maxLength): \(error.message)")
        }
        self.model = model
        self.maxBatch = maxBatch
        self.maxLength = maxLength
        self.threads = threads
        arena = Arena(layout: layout)
        rowToken = .allocate(capacity: T)
        sequenceStart = .allocate(capacity: maxBatch + 1)
        parallel = Parallel(threads: threads)
    }

    deinit {
        rowToken.deallocate()
        sequenceStart.deallocate()
    }

    /// Runs the encoder on `batch`; read the result with `packedHiddenState`, `lastHiddenState()`
    /// or `mlmLogits(positions:)`.
    public func forward(_ batch: TokenBatch) throws { try forward(batch, scope: .all) }

    /// What a forward runs, for the roofline: everything; only its GEMMs (the same calls on the
    /// same weights and threads, with the element-wise work, embeddings and softmax left out); or
    /// only its dense layers' products, through OpenBLAS's threaded sgemm on the same weight memory
    /// (a packed matrix is read as if row-major: the values are permuted, the shapes and bytes
    /// streamed are the same). Only `all` computes the model.
    enum Scope { case all, gemmsOnly, openBLASDenseOnly }

    /// OpenBLAS runs single-threaded inside a forward (the session's workers split the work) except
    /// in the large dense GEMMs (see `openBLASDense`); its count is back to the caller's afterwards.
    func forward(_ batch: TokenBatch, scope: Scope) throws {
        try BLAS.withThreads(1) { try run(batch, scope: scope) }
    }

    private func run(_ batch: TokenBatch, scope: Scope) throws {
        guard batch.batchSize <= maxBatch, batch.sequenceLength <= maxLength else {
            throw ModelError(.badInput, file: "<input>",
                             "batch \(batch.batchSize) × length \(batch.sequenceLength) does not fit this session's \(maxBatch) × \(maxLength)")
        }
        try model.config.validate(batch)
        pack(batch)
        if scope == .all { embed(batch) }
        for layer in model.layers { run(layer, scope) }
    }

    /// The last hidden state of the real tokens, [rows × d], in batch-major order.
    public var packedHiddenState: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(rebasing: UnsafeBufferPointer(arena[hidden])[0..<(rows * model.config.hiddenSize)])
    }

    /// The packed row of token `position` of sequence `sequence`, or nil when it is padding.
    public func row(sequence: Int, position: Int) -> Int? {
        guard (0..<batchSize).contains(sequence), (0..<sequenceLength).contains(position) else { return nil }
        let flat = sequence * sequenceLength + position
        let range = sequenceStart[sequence]..<sequenceStart[sequence + 1]
        // Rows of a sequence are in position order, so a binary search finds the token.
        var lo = range.lowerBound, hi = range.upperBound
        while lo < hi {
            let mid = (lo + hi) / 2
            if rowToken[mid] < flat { lo = mid + 1 } else { hi = mid }
        }
        return lo < range.upperBound && rowToken[lo] == flat ? lo : nil
    }

    /// The last hidden state as [B × L × d], zeros at padded positions.
    public func lastHiddenState() -> [Float] {
        let d = model.config.hiddenSize
        var out = [Float](repeating: 0, count: batchSize * sequenceLength * d)
        let h = UnsafePointer(arena[hidden].baseAddress!)
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<rows { (o.baseAddress! + rowToken[r] * d).update(from: h + r * d, count: d) }
        }
        return out
    }

    // MARK: forward

    private func pack(_ batch: TokenBatch) {
        batchSize = batch.batchSize
        sequenceLength = batch.sequenceLength
        var r = 0
        for b in 0..<batch.batchSize {
            sequenceStart[b] = r
            for t in 0..<batch.sequenceLength where batch.attentionMask[b * batch.sequenceLength + t] == 1 {
                rowToken[r] = b * batch.sequenceLength + t
                r += 1
            }
        }
        sequenceStart[batch.batchSize] = r
        rows = r
    }

    private func embed(_ batch: TokenBatch) {
        let m = model, d = m.config.hiddenSize, L = batch.sequenceLength, eps = m.config.layerNormEps
        let out = arena[hidden].baseAddress!, tokens = rowToken.baseAddress!
        batch.ids.withUnsafeBufferPointer { ids in
            batch.tokenTypes.withUnsafeBufferPointer { types in
                let ids = ids.baseAddress!
                let types = types.baseAddress!
                parallel.rows(rows, width: d) { range in
                    let word = m.wordEmbeddings.buffer.baseAddress!, position = m.positionEmbeddings.buffer.baseAddress!
                    for r in range {
                        let flat = tokens[r]
                        // One row at a time: a packed row's position is its own, not r mod L.
                        Kernels.embeddingSum(ids: ids + flat, tokenTypes: types + flat, rows: 1,
                                             sequenceLength: 1, word: word, position: position + (flat % L) * d,
                                             tokenType: m.tokenTypeEmbeddings.buffer.baseAddress!, width: d,
                                             out: out + r * d)
                    }
                    let first = out + range.lowerBound * d
                    // Already on one of this pass's workers: no split inside.
                    Kernels.layerNorm(first, rows: range.count, width: d, gamma: m.embeddingsNorm.gamma.buffer.baseAddress!,
                                      beta: m.embeddingsNorm.beta.buffer.baseAddress!, eps: eps, out: first, threads: 1)
                }
            }
        }
    }

    /// Runs one encoder layer on the hidden rows.
    private func run(_ layer: RuntimeLayer, _ scope: Scope) {
        let T = rows, d = model.config.hiddenSize
        let eps = model.config.layerNormEps, all = scope == .all
        let h = arena[hidden].baseAddress!, w = arena[work].baseAddress!
        let proj = arena[projection].baseAddress!
        let gelu: Epilogue = model.config.hiddenAct.isExact ? .biasGelu(layer.intermediate.bias.buffer.baseAddress!)
                                                              : .biasGeluTanh(layer.intermediate.bias.buffer.baseAddress!)
        guard scope != .openBLASDenseOnly else {
            let ctx = arena[context].baseAddress!
            for (x, weights, out) in [(h, layer.qkv, w), (ctx, layer.attentionOutput, proj), (h, layer.intermediate, w), (w, layer.output, proj)] {
                openBLASDense(x, rows: T, weights, out: out, .none)
            }
            return
        }

        dense(h, rows: T, layer.qkv, out: w, all ? .bias(layer.qkv.bias.buffer.baseAddress!) : .none)
        attention(layer, softmax: all)
        dense(arena[context].baseAddress!, rows: T, layer.attentionOutput, out: proj, .none)
        if all { residualNorm(proj, layer.attentionOutput, layer.attentionNorm, into: h, width: d, eps: eps) }
        dense(h, rows: T, layer.intermediate, out: w, all ? gelu : .none)
        dense(w, rows: T, layer.output, out: proj, .none)
        if all { residualNorm(proj, layer.output, layer.outputNorm, into: h, width: d, eps: eps) }
    }

    /// Per (sequence, head): S = scale · Q_h·K_hᵀ over the sequence's real tokens, softmax, then
    /// P·V_h into the head's columns of `context`. Heads are read in place from the Q/K/V rows
    /// (row stride 3a), never copied out as matrices of their own. Each worker runs its products
    /// single-threaded in its own scratch region: they are too small (L × L × head size) to gain
    /// from splitting one of them.
    ///
    /// With the packed kernels, both products run on the packed GEMM: Q_h and P are its input,
    /// read in place, K_h and V_hᵀ its weight panels (`hd_pack_weights_strided`, straight from
    /// the Q/K/V rows), and the softmax applies the scale. OpenBLAS's small-matrix path was the
    /// forward's largest cost outside the dense layers (1 × 384: 13 % of the time for 8 % of
    /// the FLOPs, with AVX2 kernels under `OPENBLAS_CORETYPE=Haswell`).
    private func attention(_ layer: RuntimeLayer, softmax: Bool) {
        let heads = layer.shape.attentionHeads, size = layer.shape.headSize, a = layer.shape.attentionWidth
        let L = maxLength, scale = layer.scale, packed = usesPackedKernels, panel = GEMMKernel.panelWidth
        let qkv = arena[work].baseAddress!, ctx = arena[context].baseAddress!, starts = sequenceStart.baseAddress!
        let allScores = arena[scores].baseAddress!, allPanels = arena[attentionPanels], panelsEach = allPanels.count / threads
        parallel.items(batchSize * heads) { worker, item in
            let b = item / heads, hd = item % heads
            let start = starts[b], n = starts[b + 1] - start
            let q = qkv + start * 3 * a + hd * size, k = q + a, v = q + 2 * a
            let out = ctx + start * a + hd * size
            let s = allScores + worker * L * L
            guard packed else {
                BLAS.gemm(transB: true, m: n, n: n, k: size, alpha: scale, a: q, lda: 3 * a, b: k, ldb: 3 * a, c: s, ldc: n)
                if softmax { FusedKernels.softmaxRows(s, rows: n, width: n) }
                BLAS.gemm(m: n, n: size, k: n, a: s, lda: n, b: v, ldb: 3 * a, c: out, ldc: a)
                return
            }
            let panels = allPanels.baseAddress! + worker * panelsEach
            hd_pack_weights_strided(k, n, size, 3 * a, 1, panels)
            hd_packed_gemm(n, n, size, q, 3 * a, panels, 0, (n + panel - 1) / panel, s, n, 0, HD_EPILOGUE_NONE, nil)
            // The scale is the softmax's (the packed GEMM has no α).
            if softmax { hd_softmax_rows(s, n, n, scale, nil, 1) }
            hd_pack_weights_strided(v, size, n, 1, 3 * a, panels)
            hd_packed_gemm(n, size, n, s, n, panels, 0, (size + panel - 1) / panel, out, a, 0, HD_EPILOGUE_NONE, nil)
        }
    }

    /// Element-wise work fused into a dense layer's GEMM, applied to a block of its output while
    /// the block is still in cache.
    enum Epilogue {
        case none
        case bias(UnsafePointer<Float>)
        case biasGelu(UnsafePointer<Float>)
        case biasGeluTanh(UnsafePointer<Float>)

        /// The packed GEMM applies the epilogue itself, to each tile it stores.
        var packed: (hd_epilogue, UnsafePointer<Float>?) {
            switch self {
            case .none: (HD_EPILOGUE_NONE, nil)
            case .bias(let b): (HD_EPILOGUE_BIAS, b)
            case .biasGelu(let b): (HD_EPILOGUE_BIAS_GELU, b)
            case .biasGeluTanh(let b): (HD_EPILOGUE_BIAS_GELU_TANH, b)
            }
        }

        /// Applies to rows × columns of `out` (row stride `ld`).
        func apply(_ out: UnsafeMutablePointer<Float>, ld: Int, rows: Range<Int>, columns c: Range<Int>) {
            for r in rows {
                let row = out + r * ld + c.lowerBound
                switch self {
                case .none: return
                case .bias(let b): Kernels.addBias(row, rows: 1, width: c.count, bias: b + c.lowerBound)
                case .biasGelu(let b): FusedKernels.biasGelu(row, rows: 1, width: c.count, bias: b + c.lowerBound)
                case .biasGeluTanh(let b): FusedKernels.biasGeluTanh(row, rows: 1, width: c.count, bias: b + c.lowerBound)
                }
            }
        }
    }

    /// From this many rows on, an OpenBLAS dense GEMM runs on OpenBLAS's own threads; below, its
    /// columns are split over the workers, each calling OpenBLAS single-threaded with the epilogue
    /// fused. With few rows, OpenBLAS's threads cost more in hand-offs than they gain (1 × 32:
    /// 0.65–0.94× the time of OpenBLAS-threaded in interleaved runs); from a few hundred rows its
    /// shared packing wins (1 × 384 and 8 × 128: the split took 1.2–1.3× as long). The packed
    /// kernel always splits its panels over the workers: the weights are packed already.
    static let threadedGemmMinimumRows = 256

    /// Rows of the packed GEMM's row groups: 16 register tiles of 12 rows, 590 KiB of BERT-base
    /// input (k = 768). A multiple of the tile's rows, so that only a group's last tile is partial.
    static let packedGroupRows = 16 * GEMMKernel.tileRows
    /// The next chunk of the packed GEMM being run.
    private let nextChunk = Atomic<Int>(0)

    /// out = x · Wᵀ, then the epilogue over all of `out`. Leaves OpenBLAS single-threaded.
    func dense(_ x: UnsafePointer<Float>, rows: Int, _ w: DenseWeights, out: UnsafeMutablePointer<Float>,
               _ epilogue: Epilogue) {
        let n = w.outFeatures, k = w.inFeatures, weight = w.weight.buffer.baseAddress!
        if w.kernel == .packed {
            // int8 and bf16 read their input converted, once per layer, on the calling thread: a
            // pass over m × k values is microseconds, less than handing half of it to a worker and
            // waiting for it (perf, int8 1 × 128 on a busy machine: 12 % of the samples were the
            // caller spinning on that hand-off).
            let ldq = convertedStride, q = UnsafeMutableRawPointer(arena[converted].baseAddress!)
            let scales = arena[rowScales].baseAddress!
            let zeroPoints = UnsafeMutableRawPointer(scales + rows).assumingMemoryBound(to: Int32.self)
            switch w.precision {
            case .fp32: break
            case .int8: hd_int8_quantize_rows(rows, k, x, k, q.assumingMemoryBound(to: UInt8.self), ldq, scales, zeroPoints)
            case .bf16: hd_bf16_convert_rows(rows, k, x, k, q.assumingMemoryBound(to: UInt16.self), ldq / 2)
            }
            let tile = GEMMKernel.panelWidth
            // Workers take chunks of panels from a shared counter rather than fixed halves: on a
            // busy machine one core often runs slower, and the other finishes its share and waits
            // (8 % of a 576/2304 forward). Chunks are pairs of panels (a worker's prefetch of the
            // next panel is then mostly for itself), but the last 2 per worker are single panels,
            // so that the workers finish close together. A chunk's result does not depend on who
            // computes it.
            // Past `packedGroupRows` rows, the rows are cut in groups of that many, and the
            // chunks go group by group: the group's input rows stay in L2 while a worker's panels
            // pass over them, where all the rows of a large batch came back from L3 per panel.
            let panels = (n + tile - 1) / tile, groupRows = Self.packedGroupRows
            let pairs = (panels - min(panels, 2 * threads)) / 2, chunksPerGroup = panels - pairs
            let chunks = (rows + groupRows - 1) / groupRows * chunksPerGroup
            let (kind, bias) = epilogue.packed
            nextChunk.store(0, ordering: .relaxed)
            WorkerPool.shared.run(min(threads, chunks)) { _ in
                while case let c = nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue, c < chunks {
                    let row = c / chunksPerGroup * groupRows, p = c % chunksPerGroup
                    let first = p < pairs ? 2 * p : pairs + p, end = p < pairs ? first + 2 : first + 1
                    let m = min(groupRows, rows - row), c = out + row * n
                    let int8 = q.assumingMemoryBound(to: UInt8.self) + row * ldq
                    let bf16 = (q + row * ldq).assumingMemoryBound(to: UInt16.self)
                    let bf16Weights = UnsafeRawPointer(weight).assumingMemoryBound(to: UInt16.self)
                    switch (w.precision, w.instructions) {
                    case (.fp32, _): hd_packed_gemm(m, n, k, x + row * k, k, weight, first, end, c, n, 0, kind, bias)
                    case (.int8, .avx512):
                        hd_int8_gemm(m, n, k, int8, ldq, scales + row, zeroPoints + row, weight, first, end, c, n, kind, bias)
                    case (.int8, .amx):
                        hd_int8_gemm_tiles(m, n, k, int8, ldq, scales + row, zeroPoints + row, weight, first, end, c, n, kind, bias)
                    case (.bf16, .avx512): hd_bf16_gemm(m, n, k, bf16, ldq / 2, bf16Weights, first, end, c, n, kind, bias)
                    case (.bf16, .amx): hd_bf16_gemm_tiles(m, n, k, bf16, ldq / 2, bf16Weights, first, end, c, n, 0, kind, bias)
                    }
                }
            }
            return
        }
        openBLASDense(x, rows: rows, w, out: out, epilogue)
    }

    /// `dense` through OpenBLAS, reading `w.weight` as a row-major `[outFeatures, inFeatures]` matrix.
    private func openBLASDense(_ x: UnsafePointer<Float>, rows: Int, _ w: DenseWeights, out: UnsafeMutablePointer<Float>,
                               _ epilogue: Epilogue) {
        let n = w.outFeatures, k = w.inFeatures, weight = w.weight.buffer.baseAddress!
        guard threads > 1, rows >= Self.threadedGemmMinimumRows else {
            parallel.columns(n, tile: 16) { columns in
                BLAS.gemm(transB: true, m: rows, n: columns.count, k: k, a: x, lda: k, b: weight + columns.lowerBound * k,
                          ldb: k, c: out + columns.lowerBound, ldc: n)
                epilogue.apply(out, ld: n, rows: 0..<rows, columns: columns)
            }
            return
        }
        BLAS.withThreads(threads) {
            BLAS.gemm(transB: true, m: rows, n: n, k: k, a: x, lda: k, b: weight, ldb: k, c: out, ldc: n)
        }
        if case .none = epilogue { return }
        parallel.rows(rows, width: n) { epilogue.apply(out, ld: n, rows: $0, columns: 0..<n) }
    }

    /// hidden = LayerNorm(projection + bias + hidden), rows split over the workers.
    private func residualNorm(_ x: UnsafeMutablePointer<Float>, _ dense: DenseWeights, _ norm: NormWeights, into h: UnsafeMutablePointer<Float>,
                              width d: Int, eps: Float) {
        let bias = dense.bias.buffer.baseAddress!, gamma = norm.gamma.buffer.baseAddress!, beta = norm.beta.buffer.baseAddress!
        parallel.rows(rows, width: d) { r in
            FusedKernels.biasResidualLayerNorm(x + r.lowerBound * d, bias: bias, residual: h + r.lowerBound * d,
                                               rows: r.count, width: d, gamma: gamma, beta: beta, eps: eps)
        }
    }
}
