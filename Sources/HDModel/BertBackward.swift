import HDTensor

/// Gradients with respect to activations for one (batch, sequence length), in one arena sized once.
///
/// The loss enters here: after `prepare()`, the caller writes dL/d(hidden state k) into
/// `hiddenStateGradient(k)` (hidden-state and embedding distillation losses; k = layers for the last
/// hidden state) and dL/d(attention probabilities) into `attentionGradient(layer)` (attention
/// distillation; only when built with `attentionGradients: true`). The backward adds the gradient
/// flowing from above into the same slots, so afterwards `hiddenStateGradient(k)` holds the total
/// dL/d(hidden state k). The remaining slots are scratch reused by every layer.
public final class BertBackwardBuffers {
    public let batchSize: Int
    public let sequenceLength: Int
    /// The model shape the scratch slots were sized for.
    public let config: BertConfig
    public let arena: Arena
    let hidden: [ArenaSlot]
    let attention: [ArenaSlot]?
    /// [T × d] twice: the output LayerNorm's input gradient, which becomes the attention LayerNorm's
    /// output gradient, and the attention LayerNorm's input gradient.
    let sum, attentionSum: ArenaSlot
    /// [T × max f], [T × max a] ×4, and one layer's [B × max H × L × L] when there is no injection slot.
    let ffn, context, query, key, value: ArenaSlot
    /// [T × d]: a residual branch's gradient through its dropout mask.
    let branch: ArenaSlot
    let probabilities: ArenaSlot

    /// With `reusing`, the buffers lie in that arena's memory when they fit (see `Arena.relaid`).
    public init(config: BertConfig, batchSize: Int, sequenceLength: Int, attentionGradients: Bool = false,
                maxBytes: Int = 8 << 30, reusing: Arena? = nil) throws {
        try config.validate(source: "<model>")
        var layout = ArenaLayout(maxCount: maxBytes / MemoryLayout<Float>.stride)
        let B = batchSize, L = sequenceLength, d = config.hiddenSize
        let shapes = (0..<config.numHiddenLayers).map { config.layer($0) }
        let f = shapes.map(\.intermediateSize).max() ?? 0, a = shapes.map(\.attentionWidth).max() ?? 0
        let heads = shapes.map(\.attentionHeads).max() ?? 0
        do {
            let (T, overflow) = B.multipliedReportingOverflow(by: L)
            guard !overflow, B > 0, L > 0 else { throw TensorError("expected a positive batch × length that fits, found \(B) × \(L)") }
            hidden = try (0...config.numHiddenLayers).map { try layout.reserve("grad.hidden.\($0)", shape: [T, d]) }
            attention = attentionGradients
                ? try shapes.indices.map { try layout.reserve("grad.layer.\($0).probabilities", shape: [B, shapes[$0].attentionHeads, L, L]) }
                : nil
            sum = try layout.reserve("grad.sum", shape: [T, d])
            attentionSum = try layout.reserve("grad.attention.sum", shape: [T, d])
            ffn = try layout.reserve("grad.intermediate", shape: [T, f])
            context = try layout.reserve("grad.context", shape: [T, a])
            query = try layout.reserve("grad.query", shape: [T, a])
            key = try layout.reserve("grad.key", shape: [T, a])
            value = try layout.reserve("grad.value", shape: [T, a])
            branch = try layout.reserve("grad.branch", shape: [T, d])
            probabilities = try layout.reserve("grad.probabilities", shape: attentionGradients ? [0] : [B, heads, L, L])
        } catch let error as TensorError {
            throw ModelError(.badInput, file: TokenBatch.source,
                             "backward buffers for batch \(batchSize) × length \(sequenceLength): \(error.message)")
        }
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.config = config
        arena = reusing?.relaid(layout) ?? Arena(layout: layout)
    }

    public subscript(slot: ArenaSlot) -> UnsafeMutableBufferPointer<Float> { arena[slot] }

    /// dL/d(hidden state `index`) [T × d]: 0 is the embeddings' output, i + 1 the output of layer i.
    public func hiddenStateGradient(_ index: Int) -> UnsafeMutableBufferPointer<Float> { arena[hidden[index]] }

    /// dL/d(attention probabilities of `layer`) [B × H × L × L], when built with `attentionGradients`.
    public func attentionGradient(_ layer: Int) -> UnsafeMutableBufferPointer<Float>? { attention.map { arena[$0[layer]] } }

    /// Where layer `layer`'s dL/d(probabilities) is built: its injection slot (already holding the
    /// distillation gradient, so it is added to) or the shared scratch (overwritten).
    func probabilityGradient(_ layer: Int) -> (UnsafeMutableBufferPointer<Float>, injected: Bool) {
        if let attention { return (arena[attention[layer]], true) }
        return (arena[probabilities], false)
    }

    /// Zeroes every injection slot; call before writing the loss gradients of a step.
    public func prepare() {
        for slot in hidden { ParallelFor.zero(arena[slot]) }
        for slot in attention ?? [] { ParallelFor.zero(arena[slot]) }
    }
}

extension BertModel {
    /// Backpropagates the gradients injected into `buffers` (and, with `mlm`, the logit gradients
    /// written into `mlm.logitGradients`) through the forward recorded in `activations`, ADDING
    /// dL/dθ into `gradients`. The MLM head's gradient reaches the last hidden state; every layer's
    /// reaches the one below; the embeddings' reaches the word, position and type tables (the word
    /// table also receives the tied decoder's). Nothing is allocated.
    public func backward(_ batch: TokenBatch, activations: BertActivations, mlm: BertMLMActivations? = nil,
                         classifier: BertClassifierActivations? = nil,
                         buffers: BertBackwardBuffers, gradients: BertGradients) throws {
        func bad(_ message: String) -> ModelError { ModelError(.badInput, file: TokenBatch.source, message) }
        let layout = gradients.layout
        guard layout.config == config, layout.hasMLMHead == (weights.mlmHead != nil),
              layout.isTied == (weights.mlmHead?.isTied ?? true),
              layout.classifierLabels == 0 || layout.classifierLabels == weights.classifier?.outFeatures else {
            throw bad("gradients laid out for another model (\(layout.entries.count) tensors, MLM head \(layout.hasMLMHead), tied \(layout.isTied)) than this one (MLM head \(weights.mlmHead != nil), tied \(weights.mlmHead?.isTied ?? true))")
        }
        for (what, b, l) in [("activations", activations.batchSize, activations.sequenceLength),
                             ("backward buffers", buffers.batchSize, buffers.sequenceLength)]
            where b != batch.batchSize || l != batch.sequenceLength {
            throw bad("\(what) laid out for batch \(b) × length \(l), given batch \(batch.batchSize) × length \(batch.sequenceLength)")
        }
        guard activations.layers.count == config.numHiddenLayers, buffers.config == config else {
            throw bad("activations or backward buffers were laid out for another model shape than this one (\(config.numHiddenLayers) layers)")
        }
        if activations.dropoutApplied, buffers.attentionGradient(0) != nil {
            throw bad("attention-probability gradients were injected into a forward that applied dropout; distil without dropout")
        }
        if let mlm {
            guard let head = gradients.mlmHead, mlm.hiddenSize == config.hiddenSize, mlm.vocabSize == config.vocabSize else {
                throw bad("MLM activations given, but the model has no MLM head or the head's sizes differ")
            }
            mlmBackward(activations: activations, mlm, into: buffers.hiddenStateGradient(config.numHiddenLayers), head)
        }
        if let classifier {
            guard let pooler = gradients.pooler, let head = gradients.classifier, classifier.batchSize == batch.batchSize else {
                throw bad("classifier activations given, but the gradients do not train a classifier or the batch sizes differ")
            }
            classifierBackward(activations: activations, classifier, into: buffers.hiddenStateGradient(config.numHiddenLayers),
                               pooler: pooler, classifier: head)
        }
        for i in stride(from: config.numHiddenLayers - 1, through: 0, by: -1) {
            layerBackward(i, activations, buffers, gradients.layers[i])
        }
        embeddingsBackward(batch, activations, buffers, gradients.embeddings)
    }

    /// LayerNorm, then the scatter-add of the summed embeddings into the three tables.
    private func embeddingsBackward(_ batch: TokenBatch, _ act: BertActivations, _ buf: BertBackwardBuffers,
                                    _ g: BertEmbeddingsGradients) {
        let d = config.hiddenSize, T = batch.batchSize * batch.sequenceLength, s = act.embeddings
        let dSum = buf[buf.sum].baseAddress!
        if let masks = dropoutMasks(act) {
            Dropout.multiply(buf.hiddenStateGradient(0).baseAddress!, by: act[masks.embeddings].baseAddress!, count: T * d)
        }
        layerNormBackward(buf.hiddenStateGradient(0).baseAddress!, x: act[s.sum].baseAddress!, rows: T,
                          mean: act[s.mean].baseAddress!, rstd: act[s.rstd].baseAddress!,
                          weights.embeddings.layerNorm, dx: dSum, g.layerNorm)
        batch.ids.withUnsafeBufferPointer { ids in
            batch.tokenTypes.withUnsafeBufferPointer { types in
                Kernels.embeddingSumBackward(dSum, ids: ids.baseAddress!, tokenTypes: types.baseAddress!, rows: T,
                                             sequenceLength: batch.sequenceLength, width: d,
                                             paddingId: Int32(exactly: config.padTokenId), dword: g.word.baseAddress!, dposition: g.position.baseAddress!,
                                             dtokenType: g.tokenType.baseAddress!)
            }
        }
    }

    /// Backward of `linear` (y = x · Wᵀ + b): db += Σ dy, dW += dyᵀ · x, and dx = dy · W, added to
    /// `dx` when `accumulate` (a branch joining a residual) or written over it.
    func linearBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int, _ w: LinearWeights,
                        _ g: LinearGradients, dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        GEMM.multiply(transA: true, m: w.outFeatures, n: w.inFeatures, k: rows, a: dy, lda: w.outFeatures,
                      b: x, ldb: w.inFeatures, beta: 1, c: g.weight.baseAddress!, ldc: w.inFeatures,
                      rowSumsOfA: g.bias.baseAddress!, precision: productPrecision)
        GEMM.multiply(m: rows, n: w.inFeatures, k: w.outFeatures, a: dy, lda: w.outFeatures,
                      b: w.weight.buffer.baseAddress!, ldb: w.inFeatures, beta: accumulate ? 1 : 0, c: dx, ldc: w.inFeatures, precision: productPrecision)
    }

    func layerNormBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int, mean: UnsafePointer<Float>,
                           rstd: UnsafePointer<Float>, _ w: LayerNormWeights, dx: UnsafeMutablePointer<Float>,
                           _ g: LayerNormGradients) {
        Kernels.layerNormBackward(dy, x: x, mean: mean, rstd: rstd, gamma: w.gamma.buffer.baseAddress!, rows: rows,
                                  width: w.width, dx: dx, dgamma: g.gamma.baseAddress!, dbeta: g.beta.baseAddress!,
                                  keep: masks?.hiddenKeep)
    }

    /// Backward of `activation`, in place on `dy` (which becomes dL/d(pre-activation)).
    func activationBackward(_ dy: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        if config.hiddenAct.isExact {
            Kernels.geluBackward(dy, x: x, count: count)
        } else {
            Kernels.geluTanhBackward(dy, x: x, count: count)
        }
    }
}
