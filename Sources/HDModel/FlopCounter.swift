

/// FLOPs of one piece of the forward, by kind: dense GEMMs (Q/K/V, attention-out, FFN), the
/// attention GEMMs (Q·Kᵀ and P·V, quadratic in the sequence length) and element-wise work.
public struct FlopCount: Equatable, Sendable, Codable {
    public var gemm: Int = 0
    public var attention: Int = 0
    public var elementwise: Int = 0

    public init(gemm: Int = 0, attention: Int = 0, elementwise: Int = 0) {
        self.gemm = gemm
        self.attention = attention
        self.elementwise = elementwise
    }

    public var total: Int { gemm + attention + elementwise }

    public static func + (a: FlopCount, b: FlopCount) -> FlopCount {
        FlopCount(gemm: a.gemm + b.gemm, attention: a.attention + b.attention, elementwise: a.elementwise + b.elementwise)
    }
}

/// The analytic FLOP count of one forward (DESIGN.md §6), per layer and per kind. A multiply-add is
/// 2 FLOPs. Element-wise work is counted with fixed nominal costs per element (`Cost`), the same
/// whatever the kernels do inside, so counts are comparable across runtimes. Padded positions are
/// not counted: the runtime does no work for them.
public struct FlopReport: Equatable, Sendable {
    /// Nominal FLOPs per element of the element-wise operations.
    public enum Cost {
        /// adding a bias or a residual
        public static let add = 1
        /// mean, variance, normalise, scale, shift
        public static let layerNorm = 8
        /// GELU (erf or tanh form)
        public static let gelu = 8
        /// max, subtract, exp, sum, divide
        public static let softmax = 5
    }

    /// Word + position + type sums and the embeddings' LayerNorm.
    public let embeddings: FlopCount
    public let layers: [FlopCount]

    public var total: FlopCount { layers.reduce(embeddings, +) }

    /// Counts a forward over sequences with `lengths` real tokens each.
    public init(config: BertConfig, lengths: [Int]) {
        let d = config.hiddenSize
        let tokens = lengths.reduce(0, +)
        let squares = lengths.reduce(0) { $0 + $1 * $1 }
        embeddings = FlopCount(elementwise: tokens * d * (2 * Cost.add + Cost.layerNorm))
        layers = (0..<config.numHiddenLayers).map { i in
            let s = config.layer(i), a = s.attentionWidth, f = s.intermediateSize
            let gemm = 2 * tokens * d * (3 * a) + 2 * tokens * a * d + 2 * 2 * tokens * d * f
            let attention = 2 * 2 * squares * a
            let biases = tokens * (3 * a + d + f + d) * Cost.add
            let residualNorms = 2 * tokens * d * (Cost.add + Cost.layerNorm)
            let elementwise = biases + residualNorms + tokens * f * Cost.gelu + squares * s.attentionHeads * Cost.softmax
            return FlopCount(gemm: gemm, attention: attention, elementwise: elementwise)
        }
    }

    /// A batch of `batchSize` sequences of `sequenceLength` real tokens each.
    public init(config: BertConfig, batchSize: Int, sequenceLength: Int) {
        self.init(config: config, lengths: [Int](repeating: sequenceLength, count: batchSize))
    }
}
