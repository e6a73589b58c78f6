import HDTensor

/// The MLM head's activations on the training path, for at most `maxRows` chosen tokens (the masked
/// positions of a batch), in one arena sized once. `mlmForward` fills it; the caller reads `logits`
/// and writes dL/d(logits) into `logitGradients`; `BertModel.backward` takes it from there.
public final class BertMLMActivations {
    public let maxRows: Int
    public let hiddenSize: Int
    public let vocabSize: Int
    public let arena: Arena
    /// Token indices (b·L + t) of the rows of the current step.
    public private(set) var rows: [Int32] = []
    /// [n × d] each: gathered hidden states, transform dense + bias, after GELU, after LayerNorm.
    let input, pre, activated, transformed: ArenaSlot
    /// [n] statistics of the transform's LayerNorm.
    let mean, rstd: ArenaSlot
    /// [n × V] logits and their gradients; [n × d] ×2 scratch for the backward.
    let logitSlot, logitGradientSlot, scratchA, scratchB: ArenaSlot

    public init(config: BertConfig, maxRows: Int, maxBytes: Int = 8 << 30) throws {
        try config.validate(source: "<model>")
        var layout = ArenaLayout(maxCount: maxBytes / MemoryLayout<Float>.stride)
        let d = config.hiddenSize, V = config.vocabSize
        do {
            guard maxRows > 0 else { throw TensorError("expected room for at least one row, found \(maxRows)") }
            input = try layout.reserve("mlm.input", shape: [maxRows, d])
            pre = try layout.reserve("mlm.pre", shape: [maxRows, d])
            activated = try layout.reserve("mlm.activated", shape: [maxRows, d])
            transformed = try layout.reserve("mlm.transformed", shape: [maxRows, d])
            mean = try layout.reserve("mlm.mean", count: maxRows)
            rstd = try layout.reserve("mlm.rstd", count: maxRows)
            logitSlot = try layout.reserve("mlm.logits", shape: [maxRows, V])
            logitGradientSlot = try layout.reserve("mlm.logits.grad", shape: [maxRows, V])
            scratchA = try layout.reserve("mlm.grad.a", shape: [maxRows, d])
            scratchB = try layout.reserve("mlm.grad.b", shape: [maxRows, d])
        } catch let error as TensorError {
            throw ModelError(.badInput, file: TokenBatch.source, "MLM activations for \(maxRows) rows: \(error.message)")
        }
        self.maxRows = maxRows
        hiddenSize = d
        vocabSize = V
        arena = Arena(layout: layout)
        rows.reserveCapacity(maxRows)
    }

    /// [n × V] logits of the current rows.
    public var logits: UnsafeMutableBufferPointer<Float> { prefix(logitSlot, rows.count * vocabSize) }

    /// [n × V] dL/d(logits), written by the caller before the backward (every element: it is not zeroed).
    public var logitGradients: UnsafeMutableBufferPointer<Float> { prefix(logitGradientSlot, rows.count * vocabSize) }

    func pointer(_ slot: ArenaSlot) -> UnsafeMutablePointer<Float> { arena[slot].baseAddress! }

    private func prefix(_ slot: ArenaSlot, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: arena[slot][0..<count])
    }

    fileprivate func setRows(_ chosen: [Int32]) {
        rows.removeAll(keepingCapacity: true)
        rows.append(contentsOf: chosen)
    }
}

extension BertModel {
    /// The MLM head on the training path: logits of the tokens `rows` (indices b·L + t into the batch
    /// of `activations`, after `forward`) into `mlm.logits`, keeping every intermediate for the
    /// backward. Same arithmetic as `mlmLogits(hidden:rows:)`.
    public func mlmForward(rows chosen: [Int32], activations: BertActivations, mlm: BertMLMActivations) throws {
        guard let head = weights.mlmHead else {
            throw ModelError(.unsupported, file: "<model>", "checkpoint has no MLM head (cls.predictions.*)")
        }
        let d = config.hiddenSize, V = config.vocabSize, T = activations.batchSize * activations.sequenceLength
        guard mlm.hiddenSize == d, mlm.vocabSize == V else {
            throw ModelError(.badInput, file: TokenBatch.source,
                             "MLM activations sized for hidden \(mlm.hiddenSize) × vocab \(mlm.vocabSize), model has \(d) × \(V)")
        }
        guard chosen.count <= mlm.maxRows else {
            throw ModelError(.badInput, file: TokenBatch.source, "MLM rows: expected at most \(mlm.maxRows), found \(chosen.count)")
        }
        if let i = chosen.firstIndex(where: { $0 < 0 || Int($0) >= T }) {
            throw ModelError(.badInput, file: TokenBatch.source,
                             "MLM row \(i): expected a token index below \(T) (batch \(activations.batchSize) × length \(activations.sequenceLength)), found \(chosen[i])")
        }
        mlm.setRows(chosen)
        let n = chosen.count
        guard n > 0 else { return }
        let input = mlm.pointer(mlm.input), pre = mlm.pointer(mlm.pre), act = mlm.pointer(mlm.activated)
        let transformed = mlm.pointer(mlm.transformed)
        chosen.withUnsafeBufferPointer { idx in
            Kernels.gatherRows(indices: idx.baseAddress!, count: n, table: activations.lastHiddenState.baseAddress!,
                               width: d, out: input)
        }
        linear(input, rows: n, head.transform, out: pre)
        activation(pre, count: n * d, out: act)
        layerNorm(act, rows: n, head.transformLayerNorm, out: transformed,
                  mean: mlm.pointer(mlm.mean), rstd: mlm.pointer(mlm.rstd))
        let logits = mlm.pointer(mlm.logitSlot)
        GEMM.multiply(transB: true, m: n, n: V, k: d, a: transformed, lda: d,
                      b: head.decoder.buffer.baseAddress!, ldb: d, c: logits, ldc: V, bias: head.bias.buffer.baseAddress!, precision: productPrecision)
    }

    /// Backward of `mlmForward` from `mlm.logitGradients`: decoder (into the word embeddings' gradient
    /// when tied) and bias, LayerNorm, GELU, transform dense; the rows' input gradients are
    /// scatter-added into `dHidden` (the last hidden state's gradient).
    func mlmBackward(activations: BertActivations, _ mlm: BertMLMActivations, into dHidden: UnsafeMutableBufferPointer<Float>,
                     _ g: BertMLMHeadGradients) {
        guard let head = weights.mlmHead, !mlm.rows.isEmpty else { return }
        let n = mlm.rows.count, d = config.hiddenSize, V = config.vocabSize
        let dLogits = mlm.pointer(mlm.logitGradientSlot)
        let dA = mlm.pointer(mlm.scratchA), dB = mlm.pointer(mlm.scratchB)

        GEMM.multiply(transA: true, m: V, n: d, k: n, a: dLogits, lda: V, b: mlm.pointer(mlm.transformed), ldb: d,
                      beta: 1, c: g.decoder.baseAddress!, ldc: d, rowSumsOfA: g.bias.baseAddress!, precision: productPrecision)
        GEMM.multiply(m: n, n: d, k: V, a: dLogits, lda: V, b: head.decoder.buffer.baseAddress!, ldb: d, c: dA, ldc: d, precision: productPrecision)
        layerNormBackward(dA, x: mlm.pointer(mlm.activated), rows: n, mean: mlm.pointer(mlm.mean),
                          rstd: mlm.pointer(mlm.rstd), head.transformLayerNorm, dx: dB, g.transformLayerNorm)
        activationBackward(dB, x: mlm.pointer(mlm.pre), count: n * d)
        linearBackward(dB, x: mlm.pointer(mlm.input), rows: n, head.transform, g.transform, dx: dA, accumulate: false)
        mlm.rows.withUnsafeBufferPointer { idx in
            Kernels.scatterAddRows(dA, indices: idx.baseAddress!, count: n, width: d, dtable: dHidden.baseAddress!)
        }
    }
}
