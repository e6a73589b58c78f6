import HDTensor

extension BertModel {
    /// Backward of `layerForward(index)`, in reverse order of its steps: reads dL/d(output) from
    /// hidden-state gradient index + 1 and ADDS dL/d(input) into hidden-state gradient `index` (which
    /// may already hold an injected distillation gradient). Parameter gradients are added into `g`.
    func layerBackward(_ index: Int, _ act: BertActivations, _ buf: BertBackwardBuffers, _ g: BertLayerGradients) {
        let w = weights.layers[index], s = act.layers[index], shape = config.layer(index)
        let B = act.batchSize, L = act.sequenceLength, T = B * L
        let d = config.hiddenSize, f = shape.intermediateSize
        let x = act.hiddenState(index).baseAddress!
        let dOut = buf.hiddenStateGradient(index + 1).baseAddress!, dX = buf.hiddenStateGradient(index).baseAddress!
        let dSum = buf[buf.sum].baseAddress!, dAttentionSum = buf[buf.attentionSum].baseAddress!
        let dFF = buf[buf.ffn].baseAddress!, dContext = buf[buf.context].baseAddress!
        let kept = keptUnits(layer: index)

        // output LayerNorm, then FFN out; the residual sends dSum to the attention output unchanged,
        // so the FFN's input gradient is added to it there: dSum becomes dL/d(attention output).
        layerNormBackward(dOut, x: act[s.outputSum].baseAddress!, rows: T, mean: act[s.outputMean].baseAddress!,
                          rstd: act[s.outputRstd].baseAddress!, w.outputLayerNorm, dx: dSum, g.outputLayerNorm)
        // With dropout the FFN branch sees dSum through its mask; the residual sees dSum as it is.
        var dBranch = UnsafePointer(dSum)
        if let masks = dropoutMasks(act) {
            let scaled = buf[buf.branch].baseAddress!
            scaled.update(from: dSum, count: T * d)
            Dropout.multiply(scaled, by: act[masks.output[index]].baseAddress!, count: T * d)
            dBranch = UnsafePointer(scaled)
        }
        linearBackward(dBranch, x: act[s.intermediate].baseAddress!, rows: T, w.output, g.output, dx: dFF, accumulate: false,
                       kept: kept.ffnOutput)
        activationBackward(dFF, x: act[s.intermediatePre].baseAddress!, count: T * f)
        linearBackward(dFF, x: act[s.attentionOutput].baseAddress!, rows: T, w.intermediate, g.intermediate,
                       dx: dSum, accumulate: true, kept: kept.intermediate)

        // attention LayerNorm, then attention-out; the residual sends its input gradient to the layer input.
        layerNormBackward(dSum, x: act[s.attentionSum].baseAddress!, rows: T, mean: act[s.attentionMean].baseAddress!,
                          rstd: act[s.attentionRstd].baseAddress!, w.attention.outputLayerNorm, dx: dAttentionSum,
                          g.attention.outputLayerNorm)
        Kernels.add(dX, dAttentionSum, count: T * d, out: dX)
        if let masks = dropoutMasks(act) {
            Dropout.multiply(dAttentionSum, by: act[masks.attentionOutput[index]].baseAddress!, count: T * d)
        }
        linearBackward(dAttentionSum, x: act[s.context].baseAddress!, rows: T, w.attention.output, g.attention.output,
                       dx: dContext, accumulate: false, kept: kept.output)

        attentionBackward(index, act, buf)
        let dQ = buf[buf.query].baseAddress!, dK = buf[buf.key].baseAddress!, dV = buf[buf.value].baseAddress!
        linearBackward(dQ, x: x, rows: T, w.attention.query, g.attention.query, dx: dX, accumulate: true, kept: kept.query)
        linearBackward(dK, x: x, rows: T, w.attention.key, g.attention.key, dx: dX, accumulate: true, kept: kept.query)
        linearBackward(dV, x: x, rows: T, w.attention.value, g.attention.value, dx: dX, accumulate: true, kept: kept.value)
    }

    /// From dL/d(context) to dL/dQ, dL/dK, dL/dV, per sequence and head, through BLAS on the same
    /// in-place head views as the forward (head h at column h·size, row stride a). With
    /// P = softmax(scale·QKᵀ + mask) and C = P·V: dP = dC·Vᵀ (+ the injected attention gradient),
    /// dV = Pᵀ·dC, dS = softmax backward of dP, dQ = dS·K, dK = dSᵀ·Q.
    private func attentionBackward(_ index: Int, _ act: BertActivations, _ buf: BertBackwardBuffers) {
        let s = act.layers[index], shape = config.layer(index)
        let B = act.batchSize, L = act.sequenceLength
        let a = shape.attentionWidth, heads = shape.attentionHeads, size = shape.headSize
        let q = act[s.query].baseAddress!, k = act[s.key].baseAddress!, v = act[s.value].baseAddress!
        let probs = act[s.probabilities].baseAddress!
        let masks = dropoutMasks(act)
        // C = dropout(P)·V: dV and dP read the dropped probabilities and the mask; the softmax the undropped.
        let attended = masks.map { UnsafePointer(act[$0.droppedProbabilities[index]].baseAddress!) } ?? UnsafePointer(probs)
        let dContext = buf[buf.context].baseAddress!
        let dQ = buf[buf.query].baseAddress!, dK = buf[buf.key].baseAddress!, dV = buf[buf.value].baseAddress!
        // An injected gradient is summed into by the first GEMM (beta 1); scratch is overwritten.
        let (dProbsBuffer, injected) = buf.probabilityGradient(index)
        let dProbs = dProbsBuffer.baseAddress!
        let scale = config.attentionScale(layer: index)
        // dP and dV per sequence, the softmax backward over the whole batch's rows at once (so its
        // workers split them), then dQ and dK per sequence.
        for b in 0..<B {
            let rows = b * L * a, p = attended + b * heads * L * L, dp = dProbs + b * heads * L * L
            GEMM.multiplyStridedBatched(count: heads, transB: true, m: L, n: L, k: size,
                                        a: dContext + rows, lda: a, strideA: size, b: v + rows, ldb: a, strideB: size,
                                        beta: injected ? 1 : 0, c: dp, ldc: L, strideC: L * L, precision: productPrecision)
            GEMM.multiplyStridedBatched(count: heads, transA: true, m: L, n: size, k: L,
                                        a: p, lda: L, strideA: L * L, b: dContext + rows, ldb: a, strideB: size,
                                        c: dV + rows, ldc: a, strideC: size, precision: productPrecision)
        }
        if let masks {
            Dropout.multiply(dProbs, by: act[masks.probabilityMasks[index]].baseAddress!, count: B * heads * L * L)
        }
        Kernels.softmaxRowsBackward(dProbs, probs: probs, rows: B * heads * L, width: L, scale: scale)
        for b in 0..<B {
            let rows = b * L * a, dp = dProbs + b * heads * L * L
            GEMM.multiplyStridedBatched(count: heads, m: L, n: size, k: L,
                                        a: dp, lda: L, strideA: L * L, b: k + rows, ldb: a, strideB: size,
                                        c: dQ + rows, ldc: a, strideC: size, precision: productPrecision)
            GEMM.multiplyStridedBatched(count: heads, transA: true, m: L, n: size, k: L,
                                        a: dp, lda: L, strideA: L * L, b: q + rows, ldb: a, strideB: size,
                                        c: dK + rows, ldc: a, strideC: size, precision: productPrecision)
        }
    }

    /// The masks the recorded forward applied, or nil when it ran without dropout.
    func dropoutMasks(_ act: BertActivations) -> BertActivations.DropoutSlots? {
        act.dropoutApplied ? act.dropout : nil
    }
}
