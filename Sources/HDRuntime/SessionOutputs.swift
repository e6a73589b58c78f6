import HDModel
import HDTensor

extension InferenceSession {
    /// MLM logits [positions.count × vocab] of the chosen tokens of the batch last run: transform
    /// dense + GELU + LayerNorm, then the decoder and its bias. A padded position has no hidden
    /// state and is refused.
    public func mlmLogits(positions: [TokenPosition]) throws -> [Float] {
        let config = model.config
        guard let head = model.mlmHead else {
            throw ModelError(.unsupported, file: "<model>", "checkpoint has no MLM head (cls.predictions.*)")
        }
        let d = config.hiddenSize, V = config.vocabSize, n = positions.count
        guard n > 0 else { return [] }
        var hiddenRows = [Float](repeating: 0, count: n * d)
        let h = packedHiddenState.baseAddress!
        try hiddenRows.withUnsafeMutableBufferPointer { out in
            for (i, p) in positions.enumerated() {
                guard let r = row(sequence: p.batch, position: p.position) else {
                    throw ModelError(.badInput, file: "<input>",
                                     "MLM position (sequence \(p.batch), token \(p.position)): expected a real token inside the batch of \(batchSize) × \(sequenceLength), found padding or out of range")
                }
                (out.baseAddress! + i * d).update(from: h + r * d, count: d)
            }
        }
        var transformed = [Float](repeating: 0, count: n * d)
        hiddenRows.withUnsafeBufferPointer { x in
            transformed.withUnsafeMutableBufferPointer { t in
                let t = t.baseAddress!
                BLAS.gemm(transB: true, m: n, n: d, k: d, a: x.baseAddress!, lda: d,
                          b: head.transform.weight.buffer.baseAddress!, ldb: d, c: t, ldc: d)
                if config.hiddenAct == "gelu" {
                    FusedKernels.biasGelu(t, rows: n, width: d, bias: head.transform.bias.buffer.baseAddress!)
                } else {
                    FusedKernels.biasGeluTanh(t, rows: n, width: d, bias: head.transform.bias.buffer.baseAddress!)
                }
                Kernels.layerNorm(t, rows: n, width: d, gamma: head.norm.gamma.buffer.baseAddress!,
                                  beta: head.norm.beta.buffer.baseAddress!, eps: config.layerNormEps, out: t)
            }
        }
        var logits = [Float](repeating: 0, count: n * V)
        transformed.withUnsafeBufferPointer { t in
            logits.withUnsafeMutableBufferPointer { out in
                BLAS.gemm(transB: true, m: n, n: V, k: d, a: t.baseAddress!, lda: d,
                          b: head.decoder.buffer.baseAddress!, ldb: d, c: out.baseAddress!, ldc: V)
                Kernels.addBias(out.baseAddress!, rows: n, width: V, bias: head.bias.buffer.baseAddress!)
            }
        }
        return logits
    }
}
