import HDTensor

/// What a forward returns besides the last hidden state.
public struct ForwardOptions: Sendable {
    /// Every hidden state: the embeddings' output, then each layer's.
    public var hiddenStates = false
    /// Every layer's attention probabilities [B × H × L × L].
    public var attentions = false

    public init(hiddenStates: Bool = false, attentions: Bool = false) {
        self.hiddenStates = hiddenStates
        self.attentions = attentions
    }
}

/// The result of `BertModel.forward`, copied out of the activations.
public struct BertOutput: Sendable {
    public let batchSize: Int
    public let sequenceLength: Int
    public let hiddenSize: Int
    /// [B × L × d]
    public let lastHiddenState: [Float]
    /// layers + 1 tensors of [B × L × d] when asked for.
    public let hiddenStates: [[Float]]?
    /// One [B × H_i × L × L] tensor per layer when asked for.
    public let attentions: [[Float]]?
    /// The batch's mask as floats [B × L], for pooling.
    public let attentionMask: [Float]
}

/// The BERT encoder (and its MLM head) over weights in Hugging Face's layout.
public struct BertModel: Sendable {
    public let config: BertConfig
    public let weights: BertWeights
    /// Structural pruning masks (training): LayerNorms then normalise over kept hidden dimensions only,
    /// so with pruned weights at zero this model computes what the physically smaller one does.
    public let masks: PruneMasks?
    /// With masks, whether the encoder's dense layers run on the kept units only (`KeptUnits`: the
    /// same values, fewer multiply-adds) rather than at full width over zeros; false is for tests
    /// that check the two agree.
    public let gathersKeptUnits: Bool
    /// What every product of the forward and backward rounds its operands to (`GEMMPrecision`):
    /// fp32, or bf16 on AMX tiles, which the trainer sets from `--matmul`. The caller checks
    /// `isSupported` first.
    public var productPrecision: GEMMPrecision = .fp32

    public init(config: BertConfig, weights: BertWeights, masks: PruneMasks? = nil, gathersKeptUnits: Bool = true) throws {
        try config.validate(source: "<model>")
        if let masks, masks.config != config {
            throw ModelError(.shapeMismatch, file: "<model>", "pruning masks were laid out for another model shape than this one")
        }
        self.config = config
        self.weights = weights
        self.masks = masks
        self.gathersKeptUnits = gathersKeptUnits
    }

    /// Builds the model from a loaded checkpoint.
    public init(checkpoint: Checkpoint) throws {
        try self.init(config: checkpoint.config,
                      weights: BertWeights(tensors: checkpoint.tensors, config: checkpoint.config, source: checkpoint.source))
    }

    /// Runs the encoder and returns copies of the outputs `options` asks for.
    public func forward(_ batch: TokenBatch, options: ForwardOptions = ForwardOptions()) throws -> BertOutput {
        let activations = try BertActivations(config: config, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength)
        try forward(batch, activations: activations)
        return BertOutput(
            batchSize: batch.batchSize, sequenceLength: batch.sequenceLength, hiddenSize: config.hiddenSize,
            lastHiddenState: Array(activations.lastHiddenState),
            hiddenStates: options.hiddenStates ? (0...config.numHiddenLayers).map { Array(activations.hiddenState($0)) } : nil,
            attentions: options.attentions ? activations.layers.map { Array(activations[$0.probabilities]) } : nil,
            attentionMask: batch.attentionMask.map(Float.init))
    }

    /// Runs the encoder into `activations`, which must have been laid out for this batch's shape.
    /// Nothing of the batch's size is allocated: a training loop or a benchmark reuses one
    /// activation set (a pruned student's gathered operands come from `ScratchBuffers`).
    public func forward(_ batch: TokenBatch, activations: BertActivations) throws {
        var noDropout: Dropout? = nil
        try forward(batch, activations: activations, dropout: &noDropout)
    }

    /// The training forward: as above, with `dropout` (when given) drawing its masks into the
    /// activations' dropout slots, which must exist (`BertActivations(dropout: true)`).
    public func forward(_ batch: TokenBatch, activations: BertActivations, dropout: inout Dropout?) throws {
        try config.validate(batch)
        if dropout != nil, activations.dropout == nil {
            throw ModelError(.badInput, file: TokenBatch.source, "dropout asked for, but the activations were laid out without dropout slots")
        }
        guard activations.batchSize == batch.batchSize, activations.sequenceLength == batch.sequenceLength,
              activations.layers.count == config.numHiddenLayers else {
            throw ModelError(.badInput, file: TokenBatch.source,
                             "activations laid out for batch \(activations.batchSize) × length \(activations.sequenceLength), given batch \(batch.batchSize) × length \(batch.sequenceLength)")
        }
        activations.dropoutApplied = dropout != nil
        batch.additiveMask(into: activations[activations.mask])
        embeddingsForward(batch, activations, dropout: &dropout)
        for i in 0..<config.numHiddenLayers {
            layerForward(i, input: UnsafePointer(activations.hiddenState(i).baseAddress!), activations, dropout: &dropout)
        }
    }

    /// word + position + type embeddings, then LayerNorm (then dropout when training).
    private func embeddingsForward(_ batch: TokenBatch, _ act: BertActivations, dropout: inout Dropout?) {
        let e = weights.embeddings, d = config.hiddenSize, T = batch.batchSize * batch.sequenceLength
        let slots = act.embeddings
        let sum = act[slots.sum].baseAddress!
        batch.ids.withUnsafeBufferPointer { ids in
            batch.tokenTypes.withUnsafeBufferPointer { types in
                Kernels.embeddingSum(ids: ids.baseAddress!, tokenTypes: types.baseAddress!, rows: T,
                                     sequenceLength: batch.sequenceLength, word: e.word.buffer.baseAddress!,
                                     position: e.position.buffer.baseAddress!, tokenType: e.tokenType.buffer.baseAddress!,
                                     width: d, out: sum)
            }
        }
        layerNorm(sum, rows: T, e.layerNorm, out: act[slots.output].baseAddress!,
                  mean: act[slots.mean].baseAddress!, rstd: act[slots.rstd].baseAddress!)
        if let masks = act.dropout {
            dropout?.apply(act[slots.output].baseAddress!, mask: act[masks.embeddings].baseAddress!, count: T * d)
        }
    }

    /// y = x · Wᵀ + b for `rows` rows of x.
    func linear(_ x: UnsafePointer<Float>, rows: Int, _ w: LinearWeights, out: UnsafeMutablePointer<Float>) {
        GEMM.multiply(transB: true, m: rows, n: w.outFeatures, k: w.inFeatures, a: x, lda: w.inFeatures,
                      b: w.weight.buffer.baseAddress!, ldb: w.inFeatures, c: out, ldc: w.outFeatures,
                      bias: w.bias.buffer.baseAddress!, precision: productPrecision)
    }

    func layerNorm(_ x: UnsafePointer<Float>, rows: Int, _ w: LayerNormWeights, out: UnsafeMutablePointer<Float>,
                   mean: UnsafeMutablePointer<Float>? = nil, rstd: UnsafeMutablePointer<Float>? = nil) {
        Kernels.layerNorm(x, rows: rows, width: w.width, gamma: w.gamma.buffer.baseAddress!,
                          beta: w.beta.buffer.baseAddress!, eps: config.layerNormEps, out: out, mean: mean, rstd: rstd,
                          keep: masks?.hiddenKeep)
    }

    /// The configured activation: exact erf GELU, or its tanh form.
    func activation(_ x: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
        if config.hiddenAct.isExact {
            Kernels.gelu(x, count: count, out: out)
        } else {
            Kernels.geluTanh(x, count: count, out: out)
        }
    }
}
