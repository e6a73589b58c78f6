import HDTensor

/// One token of a batch.
public struct TokenPosition: Hashable, Sendable {
    public var batch: Int
    public var position: Int
    public init(batch: Int, position: Int) {
        self.batch = batch
        self.position = position
    }
}

/// Which tokens get MLM logits.
public enum MLMPositions: Sendable {
    /// Every token, in batch-major order: B × L rows.
    case all
    /// These tokens, in this order (e.g. the masked positions of an MLM batch).
    case selected([TokenPosition])
}

extension BertModel {
    /// MLM logits [rows × vocab] of the chosen tokens of `output`: transform dense + GELU + LayerNorm,
    /// then the decoder (tied to the word embeddings unless the checkpoint has its own) + `cls.predictions.bias`.
    public func mlmLogits(_ output: BertOutput, positions: MLMPositions = .all) throws -> [Float] {
        let d = config.hiddenSize, L = output.sequenceLength
        switch positions {
        case .all:
            return try output.lastHiddenState.withUnsafeBufferPointer { try mlmLogits(hidden: $0, rows: output.batchSize * L) }
        case .selected(let chosen):
            for p in chosen where !(0..<output.batchSize).contains(p.batch) || !(0..<L).contains(p.position) {
                throw ModelError(.badInput, file: TokenBatch.source,
                                 "MLM position (sequence \(p.batch), token \(p.position)) is outside the batch of \(output.batchSize) × \(L)")
            }
            var rows = [Float](repeating: 0, count: chosen.count * d)
            output.lastHiddenState.withUnsafeBufferPointer { hidden in
                rows.withUnsafeMutableBufferPointer { out in
                    for (i, p) in chosen.enumerated() {
                        (out.baseAddress! + i * d).update(from: hidden.baseAddress! + (p.batch * L + p.position) * d, count: d)
                    }
                }
            }
            return try rows.withUnsafeBufferPointer { try mlmLogits(hidden: $0, rows: chosen.count) }
        }
    }

    /// MLM logits [rows × vocab] of `rows` final hidden states [rows × d].
    public func mlmLogits(hidden: UnsafeBufferPointer<Float>, rows: Int) throws -> [Float] {
        guard let head = weights.mlmHead else {
            throw ModelError(.unsupported, file: "<model>", "checkpoint has no MLM head (cls.predictions.*)")
        }
        let d = config.hiddenSize, V = config.vocabSize
        guard rows >= 0, hidden.count == rows * d else {
            throw ModelError(.badInput, file: TokenBatch.source, "MLM head input: expected \(rows) × \(d) floats, found \(hidden.count)")
        }
        guard rows > 0 else { return [] }
        let (count, overflow) = rows.multipliedReportingOverflow(by: V)
        guard !overflow else {
            throw ModelError(.badInput, file: TokenBatch.source, "MLM logits for \(rows) tokens × vocab \(V) overflow")
        }
        var transformed = [Float](repeating: 0, count: rows * d)
        transformed.withUnsafeMutableBufferPointer { t in
            let t = t.baseAddress!
            linear(hidden.baseAddress!, rows: rows, head.transform, out: t)
            activation(t, count: rows * d, out: t)
            layerNorm(t, rows: rows, head.transformLayerNorm, out: t)
        }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            transformed.withUnsafeBufferPointer { t in
                GEMM.multiply(transB: true, m: rows, n: V, k: d, a: t.baseAddress!, lda: d,
                              b: head.decoder.buffer.baseAddress!, ldb: d, c: out.baseAddress!, ldc: V,
                              bias: head.bias.buffer.baseAddress!, precision: productPrecision)
            }
            initialized = count
        }
    }
}
