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
        let gelu: Epilogue = config.hiddenAct == "gelu" ? .biasGelu(head.transform.bias.buffer.baseAddress!)
                                                        : .biasGeluTanh(head.transform.bias.buffer.baseAddress!)
        hiddenRows.withUnsafeBufferPointer { x in
            transformed.withUnsafeMutableBufferPointer { t in
                let t = t.baseAddress!
                dense(x.baseAddress!, rows: n, head.transform, out: t, gelu)
                Kernels.layerNorm(t, rows: n, width: d, gamma: head.norm.gamma.buffer.baseAddress!,
                                  beta: head.norm.beta.buffer.baseAddress!, eps: config.layerNormEps, out: t)
            }
        }
        var logits = [Float](repeating: 0, count: n * V)
        let decoder = DenseWeights(weight: head.decoder, bias: head.bias, outFeatures: V, inFeatures: d)
        transformed.withUnsafeBufferPointer { t in
            logits.withUnsafeMutableBufferPointer { out in
                dense(t.baseAddress!, rows: n, decoder, out: out.baseAddress!, .bias(head.bias.buffer.baseAddress!))
            }
        }
        return logits
    }
}
