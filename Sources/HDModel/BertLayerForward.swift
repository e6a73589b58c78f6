import HDTensor

extension BertModel {
    /// Encoder layer `index`: self-attention, residual + LayerNorm, FFN, residual + LayerNorm.
    /// `input` is hidden state `index` [T × d]; every intermediate lands in the layer's slots. With
    /// `dropout`, BERT's three: on the attention probabilities and on each branch before its residual add.
    func layerForward(_ index: Int, input x: UnsafePointer<Float>, _ act: BertActivations, dropout: inout Dropout?) {
        let w = weights.layers[index], s = act.layers[index], shape = config.layer(index)
        let B = act.batchSize, L = act.sequenceLength, T = B * L
        let d = config.hiddenSize, a = shape.attentionWidth, f = shape.intermediateSize
        let heads = shape.attentionHeads, size = shape.headSize
        let q = act[s.query].baseAddress!, k = act[s.key].baseAddress!, v = act[s.value].baseAddress!
        let probs = act[s.probabilities].baseAddress!, context = act[s.context].baseAddress!
        let mask = act[act.mask].baseAddress!

        // A pruned student's dense layers run on its kept units (`KeptUnits`).
        let kept = keptUnits(layer: index)
        linear(x, rows: T, w.attention.query, out: q, kept: kept.query)
        linear(x, rows: T, w.attention.key, out: k, kept: kept.query)
        linear(x, rows: T, w.attention.value, out: v, kept: kept.value)

        // Heads are read in place from the [T × a] buffers: head h of sequence b starts at
        // (b·L)·a + h·size with row stride a, so no reshaping copies are needed. The scores of every
        // sequence first, then one softmax over the whole batch's rows (its workers split them), each
        // sequence's H·L rows under that sequence's key mask, then the contexts.
        let scale = config.attentionScale(layer: index)
        for b in 0..<B {
            let rowsOffset = b * L * a, p = probs + b * heads * L * L
            GEMM.multiplyStridedBatched(count: heads, transB: true, m: L, n: L, k: size,
                                        a: q + rowsOffset, lda: a, strideA: size,
                                        b: k + rowsOffset, ldb: a, strideB: size,
                                        c: p, ldc: L, strideC: L * L, precision: productPrecision)
        }
        Kernels.softmaxRows(probs, rows: B * heads * L, width: L, scale: scale, mask: mask, rowsPerMask: heads * L)
        // The context reads the dropped probabilities; the softmax backward needs the undropped ones.
        var attended = probs
        if dropout != nil, let slots = act.dropout {
            attended = act[slots.droppedProbabilities[index]].baseAddress!
            attended.update(from: probs, count: B * heads * L * L)
            dropout!.apply(attended, mask: act[slots.probabilityMasks[index]].baseAddress!, count: B * heads * L * L)
        }
        for b in 0..<B {
            let rowsOffset = b * L * a, p = attended + b * heads * L * L
            GEMM.multiplyStridedBatched(count: heads, m: L, n: size, k: L,
                                        a: p, lda: L, strideA: L * L,
                                        b: v + rowsOffset, ldb: a, strideB: size,
                                        c: context + rowsOffset, ldc: a, strideC: size, precision: productPrecision)
        }

        let attentionSum = act[s.attentionSum].baseAddress!, h1 = act[s.attentionOutput].baseAddress!
        linear(context, rows: T, w.attention.output, out: attentionSum, kept: kept.output)
        if let slots = act.dropout { dropout?.apply(attentionSum, mask: act[slots.attentionOutput[index]].baseAddress!, count: T * d) }
        Kernels.add(attentionSum, x, count: T * d, out: attentionSum)
        layerNorm(attentionSum, rows: T, w.attention.outputLayerNorm, out: h1,
                  mean: act[s.attentionMean].baseAddress!, rstd: act[s.attentionRstd].baseAddress!)

        let pre = act[s.intermediatePre].baseAddress!, hidden = act[s.intermediate].baseAddress!
        linear(h1, rows: T, w.intermediate, out: pre, kept: kept.intermediate)
        activation(pre, count: T * f, out: hidden)

        let outputSum = act[s.outputSum].baseAddress!
        linear(hidden, rows: T, w.output, out: outputSum, kept: kept.ffnOutput)
        if let slots = act.dropout { dropout?.apply(outputSum, mask: act[slots.output[index]].baseAddress!, count: T * d) }
        Kernels.add(outputSum, h1, count: T * d, out: outputSum)
        layerNorm(outputSum, rows: T, w.outputLayerNorm, out: act[s.output].baseAddress!,
                  mean: act[s.outputMean].baseAddress!, rstd: act[s.outputRstd].baseAddress!)
    }
}
