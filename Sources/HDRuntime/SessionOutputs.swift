import HDModel
import HDTensor

extension InferenceSession {
    /// MLM logits [positions.count × vocab] of the chosen tokens of the batch last run: transform
    /// dense + GELU + LayerNorm, then the decoder and its bias. A padded position has no hidden
    /// state and is refused.
    public func mlmLogits(positions: [TokenPosition]) throws -> [Float] {
        // As in a forward: OpenBLAS single-threaded under the session's own workers, then restored.
        try BLAS.withThreads(1) { try headLogits(positions: positions) }
    }

    private func headLogits(positions: [TokenPosition]) throws -> [Float] {
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
        let gelu: Epilogue = config.hiddenAct.isExact ? .biasGelu(head.transform.bias.buffer.baseAddress!)
                                                        : .biasGeluTanh(head.transform.bias.buffer.baseAddress!)
        hiddenRows.withUnsafeBufferPointer { x in
            transformed.withUnsafeMutableBufferPointer { t in
                // Positions may repeat, so there can be more of them than the session has rows (the
                // packed GEMM's scratch): chunks of at most that many.
                for start in stride(from: 0, to: n, by: maxBatch * maxLength) {
                    let count = min(n - start, maxBatch * maxLength)
                    let chunk = t.baseAddress! + start * d
                    dense(x.baseAddress! + start * d, rows: count, head.transform, out: chunk, gelu)
                    Kernels.layerNorm(chunk, rows: count, width: d, gamma: head.norm.gamma.buffer.baseAddress!,
                                      beta: head.norm.beta.buffer.baseAddress!, eps: config.layerNormEps, out: chunk, threads: threads)
                }
            }
        }
        var logits = [Float](repeating: 0, count: n * V)
        // The decoder is the word embedding table, read row-major by the embeddings too: OpenBLAS.
        let decoder = DenseWeights(weight: head.decoder, bias: head.bias, outFeatures: V, inFeatures: d, kernel: .openBLAS)
        transformed.withUnsafeBufferPointer { t in
            logits.withUnsafeMutableBufferPointer { out in
                dense(t.baseAddress!, rows: n, decoder, out: out.baseAddress!, .bias(head.bias.buffer.baseAddress!))
            }
        }
        return logits
    }
}
