import HDTensor

/// Every activation of one forward pass over a (batch, sequence length), in one arena sized once.
/// The forward fills it; a backward reads it (each LayerNorm keeps its mean and 1/std, each GELU its
/// input, each softmax its probabilities). T = batch × length tokens; widths are per layer.
public final class BertActivations {
    public struct EmbeddingSlots: Sendable {
        /// word + position + type, before LayerNorm [T × d]
        public let sum, mean, rstd: ArenaSlot
        /// hidden state 0 [T × d]
        public let output: ArenaSlot
    }

    public struct LayerSlots: Sendable {
        /// [T × a] each, biases added.
        public let query, key, value: ArenaSlot
        /// softmax(scale · QKᵀ + mask) [B × H × L × L]
        public let probabilities: ArenaSlot
        /// probabilities · V, heads side by side [T × a]
        public let context: ArenaSlot
        /// attention-out dense + bias + residual, before LayerNorm [T × d]; `attentionMean/Rstd` [T]
        public let attentionSum, attentionMean, attentionRstd: ArenaSlot
        /// after the attention LayerNorm [T × d]
        public let attentionOutput: ArenaSlot
        /// intermediate dense + bias, before GELU [T × f]; `intermediate` after GELU
        public let intermediatePre, intermediate: ArenaSlot
        /// output dense + bias + residual, before LayerNorm [T × d]; then its statistics
        public let outputSum, outputMean, outputRstd: ArenaSlot
        /// the layer's output: hidden state i + 1 [T × d]
        public let output: ArenaSlot
    }

    /// Dropout masks (0 or 1/(1 − p)) of one training forward, and the dropped attention
    /// probabilities the context product reads (the backward needs both them and the undropped ones).
    public struct DropoutSlots: Sendable {
        /// [T × d]: the embeddings' output.
        public let embeddings: ArenaSlot
        /// Per layer: the probabilities' mask and the dropped probabilities [B × H × L × L]; the
        /// attention output's and the FFN output's masks [T × d], applied before each residual add.
        public let probabilityMasks, droppedProbabilities, attentionOutput, output: [ArenaSlot]
    }

    public let batchSize: Int
    public let sequenceLength: Int
    public let arena: Arena
    /// Present when laid out with `dropout: true` (fine-tuning).
    public let dropout: DropoutSlots?
    /// Whether the forward that filled these activations applied dropout (the backward then applies
    /// the same masks).
    public internal(set) var dropoutApplied = false
    public let embeddings: EmbeddingSlots
    public let layers: [LayerSlots]
    /// additive key mask [B × L]
    public let mask: ArenaSlot

    /// Lays out the activations of `config` for `batchSize` × `sequenceLength`; refuses (as bad
    /// input) a size whose arena would exceed `maxBytes`.
    /// With `reusing`, the activations lie in that arena's memory when they fit (see `Arena.relaid`).
    public init(config: BertConfig, batchSize: Int, sequenceLength: Int, dropout: Bool = false, maxBytes: Int = 8 << 30,
                reusing: Arena? = nil) throws {
        var layout = ArenaLayout(maxCount: maxBytes / MemoryLayout<Float>.stride)
        do {
            let B = batchSize, L = sequenceLength, d = config.hiddenSize
            let T = try Self.product([B, L])
            embeddings = EmbeddingSlots(sum: try layout.reserve("embeddings.sum", shape: [T, d]),
                                        mean: try layout.reserve("embeddings.mean", count: T),
                                        rstd: try layout.reserve("embeddings.rstd", count: T),
                                        output: try layout.reserve("embeddings.output", shape: [T, d]))
            layers = try (0..<config.numHiddenLayers).map { i in
                let s = config.layer(i), a = s.attentionWidth, f = s.intermediateSize
                func slot(_ name: String, _ shape: [Int]) throws -> ArenaSlot {
                    try layout.reserve("layer.\(i).\(name)", shape: shape)
                }
                return LayerSlots(
                    query: try slot("query", [T, a]), key: try slot("key", [T, a]), value: try slot("value", [T, a]),
                    probabilities: try slot("probabilities", [B, s.attentionHeads, L, L]),
                    context: try slot("context", [T, a]),
                    attentionSum: try slot("attention.sum", [T, d]), attentionMean: try slot("attention.mean", [T]),
                    attentionRstd: try slot("attention.rstd", [T]), attentionOutput: try slot("attention.output", [T, d]),
                    intermediatePre: try slot("intermediate.pre", [T, f]), intermediate: try slot("intermediate", [T, f]),
                    outputSum: try slot("output.sum", [T, d]), outputMean: try slot("output.mean", [T]),
                    outputRstd: try slot("output.rstd", [T]), output: try slot("output", [T, d]))
            }
            mask = try layout.reserve("mask", shape: [B, L])
            if dropout {
                let n = config.numHiddenLayers
                func perLayer(_ name: String, _ shape: (LayerShape) -> [Int]) throws -> [ArenaSlot] {
                    try (0..<n).map { try layout.reserve("dropout.layer.\($0).\(name)", shape: shape(config.layer($0))) }
                }
                self.dropout = DropoutSlots(
                    embeddings: try layout.reserve("dropout.embeddings", shape: [T, d]),
                    probabilityMasks: try perLayer("probabilities.mask") { [B, $0.attentionHeads, L, L] },
                    droppedProbabilities: try perLayer("probabilities.dropped") { [B, $0.attentionHeads, L, L] },
                    attentionOutput: try perLayer("attention.output") { _ in [T, d] },
                    output: try perLayer("output") { _ in [T, d] })
            } else {
                self.dropout = nil
            }
        } catch let error as TensorError {
            throw ModelError(.badInput, file: TokenBatch.source,
                             "activations for batch \(batchSize) × length \(sequenceLength): \(error.message)")
        }
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        arena = reusing?.relaid(layout) ?? Arena(layout: layout)
    }

    private static func product(_ dims: [Int]) throws -> Int {
        try dims.reduce(1) { n, d in
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o, d >= 0 else { throw TensorError("size \(dims) overflows") }
            return p
        }
    }

    public subscript(slot: ArenaSlot) -> UnsafeMutableBufferPointer<Float> { arena[slot] }

    /// Hidden state `index`: 0 is the embeddings' output, i + 1 the output of layer i. [T × d]
    public func hiddenState(_ index: Int) -> UnsafeMutableBufferPointer<Float> {
        index == 0 ? arena[embeddings.output] : arena[layers[index - 1].output]
    }

    /// The last hidden state [T × d].
    public var lastHiddenState: UnsafeMutableBufferPointer<Float> { hiddenState(layers.count) }
}
