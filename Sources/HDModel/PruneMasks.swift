/// One group of prunable units (DESIGN.md §4). Each group has its own mask and keeps its own top-k.
public enum PruneGroup: Hashable, Sendable, CustomStringConvertible {
    /// A residual dimension everywhere: embedding columns, every LayerNorm entry, the input columns
    /// of Q/K/V/FFN-in and the MLM transform, the output rows of attention-out, FFN-out and the MLM
    /// transform.
    case hidden
    /// A dimension inside each head of layer `l`: the output rows of Q and K together.
    case queryKey(Int)
    /// A dimension inside each head of layer `l`: the output row of V and the input column of attention-out.
    case value(Int)
    /// An FFN neuron of layer `l`: the output row of FFN-in and the input column of FFN-out.
    case ffn(Int)

    /// The name of its mask in `student.ckpt` (without the `hd.mask.` prefix).
    public var description: String {
        switch self {
        case .hidden: "hidden"
        case .queryKey(let l): "layer.\(l).query_key"
        case .value(let l): "layer.\(l).value"
        case .ffn(let l): "layer.\(l).ffn"
        }
    }
}

/// Which group masks the rows (axis 0) and which the columns (axis 1) of one trainable tensor; 1-D
/// tensors only have rows. Every structural operation (zeroing pruned weights, their gradients and
/// Adam moments; summing importance per unit; shrinking at export) walks this one table.
public struct PruneCoupling: Sendable {
    public let entry: ParameterEntry
    public let rows: PruneGroup?
    public let columns: PruneGroup?

    /// Row count and row length of the tensor as a matrix (a vector is one column).
    public var matrix: (rows: Int, columns: Int) {
        entry.shape.count == 2 ? (entry.shape[0], entry.shape[1]) : (entry.count, 1)
    }
}

/// The keep flags (1 kept, 0 pruned) of every prunable unit of one model shape, as floats so kernels
/// multiply by them. Attention groups split into heads that all keep the same count, so the masked
/// model is a dense model with a uniform head size. The flags are mutable in place: a model built
/// with these masks sees a pruning step at its next forward.
public final class PruneMasks: @unchecked Sendable {
    public let config: BertConfig
    public let groups: [PruneGroup]
    private let storage: [PruneGroup: FlatFloats]

    /// Everything kept.
    public init(config: BertConfig) throws {
        try config.validate(source: "<model>")
        self.config = config
        var groups: [PruneGroup] = [.hidden]
        for l in 0..<config.numHiddenLayers { groups += [.queryKey(l), .value(l), .ffn(l)] }
        self.groups = groups
        var storage: [PruneGroup: FlatFloats] = [:]
        for g in groups {
            let flags = FlatFloats(count: Self.size(g, config))
            flags.buffer.update(repeating: 1)
            storage[g] = flags
        }
        self.storage = storage
    }

    static func size(_ group: PruneGroup, _ config: BertConfig) -> Int {
        switch group {
        case .hidden: config.hiddenSize
        case .queryKey(let l), .value(let l): config.layer(l).attentionWidth
        case .ffn(let l): config.layer(l).intermediateSize
        }
    }

    /// Units of `group`.
    public func size(_ group: PruneGroup) -> Int { Self.size(group, config) }

    /// The blocks that keep equal counts: the heads of an attention group, else one block.
    public func blocks(_ group: PruneGroup) -> Int {
        switch group {
        case .queryKey(let l), .value(let l): config.layer(l).attentionHeads
        case .hidden, .ffn: 1
        }
    }

    /// The flags of `group`, mutable in place.
    public func flags(_ group: PruneGroup) -> UnsafeMutableBufferPointer<Float> { storage[group]!.buffer }

    /// Units of `group` still kept.
    public func kept(_ group: PruneGroup) -> Int { flags(group).reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }

    /// The 0/1 column mask of LayerNorms over the hidden width, or nil while nothing is pruned (the
    /// unmasked kernels are then used).
    public var hiddenKeep: UnsafePointer<Float>? {
        kept(.hidden) == config.hiddenSize ? nil : UnsafePointer(flags(.hidden).baseAddress!)
    }

    /// The widths the masked model has as a dense model: hidden, and per layer (heads, head size of
    /// Q/K, head size of V, FFN). Q/K and V keep equal counts under one schedule, which a dense BERT needs.
    public var keptWidths: (hidden: Int, layers: [(heads: Int, queryKeyHeadSize: Int, valueHeadSize: Int, ffn: Int)]) {
        (kept(.hidden), (0..<config.numHiddenLayers).map { l in
            let heads = config.layer(l).attentionHeads
            return (heads, kept(.queryKey(l)) / heads, kept(.value(l)) / heads, kept(.ffn(l)))
        })
    }

    /// Which groups index the rows and columns of each tensor of `layout` (which must be this config's).
    public static func couplings(_ layout: BertParameterLayout) -> [PruneCoupling] {
        var table: [String: (PruneGroup?, PruneGroup?)] = [
            BertNames.wordEmbeddings: (nil, .hidden), BertNames.positionEmbeddings: (nil, .hidden),
            BertNames.tokenTypeEmbeddings: (nil, .hidden),
            BertNames.embeddingsLayerNormWeight: (.hidden, nil), BertNames.embeddingsLayerNormBias: (.hidden, nil),
            BertNames.mlmTransformWeight: (.hidden, .hidden), BertNames.mlmTransformBias: (.hidden, nil),
            BertNames.mlmLayerNormWeight: (.hidden, nil), BertNames.mlmLayerNormBias: (.hidden, nil),
            BertNames.mlmDecoderWeight: (nil, .hidden), BertNames.mlmBias: (nil, nil),
            // The pooler reads the [CLS] hidden state; its output is a hidden-sized vector the
            // classifier reads, so both its rows and its columns follow the hidden mask.
            BertNames.poolerWeight: (.hidden, .hidden), BertNames.poolerBias: (.hidden, nil),
            BertNames.classifierWeight: (nil, .hidden), BertNames.classifierBias: (nil, nil),
        ]
        for l in 0..<layout.config.numHiddenLayers {
            let n = BertNames.layer(l)
            let rows: [(String, PruneGroup?, PruneGroup?)] = [
                (n.queryWeight, .queryKey(l), .hidden), (n.queryBias, .queryKey(l), nil),
                (n.keyWeight, .queryKey(l), .hidden), (n.keyBias, .queryKey(l), nil),
                (n.valueWeight, .value(l), .hidden), (n.valueBias, .value(l), nil),
                (n.attentionOutputWeight, .hidden, .value(l)), (n.attentionOutputBias, .hidden, nil),
                (n.attentionLayerNormWeight, .hidden, nil), (n.attentionLayerNormBias, .hidden, nil),
                (n.intermediateWeight, .ffn(l), .hidden), (n.intermediateBias, .ffn(l), nil),
                (n.outputWeight, .hidden, .ffn(l)), (n.outputBias, .hidden, nil),
                (n.outputLayerNormWeight, .hidden, nil), (n.outputLayerNormBias, .hidden, nil),
            ]
            for (name, r, c) in rows { table[name] = (r, c) }
        }
        // Every layout entry is in the table: a tensor added to the layout must say how it is pruned.
        return layout.entries.map { entry in
            let (r, c) = table[entry.name]!
            return PruneCoupling(entry: entry, rows: r, columns: c)
        }
    }

    /// Zeroes every float of `buffer` (laid out by `layout`) that a pruned unit removes: used on the
    /// weights, their gradients and both Adam moments, so pruned weights stay exactly zero.
    public func zeroPruned(_ buffer: UnsafeMutableBufferPointer<Float>, layout: BertParameterLayout) {
        for c in Self.couplings(layout) where c.rows != nil || c.columns != nil {
            let (rows, columns) = c.matrix
            let base = buffer.baseAddress! + c.entry.offset
            let rowFlags = c.rows.map { flags($0) }, columnFlags = c.columns.map { flags($0) }
            for r in 0..<rows {
                let row = base + r * columns
                if let rowFlags, rowFlags[r] == 0 {
                    row.update(repeating: 0, count: columns)
                } else if let columnFlags {
                    for j in 0..<columns { row[j] *= columnFlags[j] }
                }
            }
        }
    }

    /// True when every float that a pruned unit removes is zero in `buffer`.
    public func prunedAreZero(_ buffer: UnsafeBufferPointer<Float>, layout: BertParameterLayout) -> Bool {
        prunedAreZero(layout: layout) { buffer.baseAddress! + $0.offset }
    }

    /// The same check over a model's own weights, read where they lie (no flat copy).
    public func prunedAreZero(_ model: BertModel) throws -> Bool {
        let storages = BertParameters.namedStorages(model.weights)
        return prunedAreZero(layout: try BertParameterLayout(model: model)) { UnsafePointer(storages[$0.name]!.buffer.baseAddress!) }
    }

    /// Whether every weight a pruned unit couples is zero; `values` gives each tensor's floats.
    private func prunedAreZero(layout: BertParameterLayout, values: (ParameterEntry) -> UnsafePointer<Float>) -> Bool {
        for c in Self.couplings(layout) where c.rows != nil || c.columns != nil {
            let (rows, columns) = c.matrix
            let base = values(c.entry)
            let rowFlags = c.rows.map { flags($0) }, columnFlags = c.columns.map { flags($0) }
            for r in 0..<rows {
                for j in 0..<columns where (rowFlags?[r] ?? 1) == 0 || (columnFlags?[j] ?? 1) == 0 {
                    if base[r * columns + j] != 0 { return false }
                }
            }
        }
        return true
    }

    /// Checks that `flags` are 0/1 with equal kept counts per head before they replace `group`'s.
    public func set(_ group: PruneGroup, from values: [Float], source: String) throws {
        func bad(_ message: String) -> ModelError { ModelError(.badInput, file: source, "mask \(group): \(message)") }
        guard values.count == size(group) else { throw bad("expected \(size(group)) flags, found \(values.count)") }
        guard values.allSatisfy({ $0 == 0 || $0 == 1 }) else { throw bad("expected only 0 and 1") }
        let heads = blocks(group), per = values.count / heads
        let counts = (0..<heads).map { h in values[(h * per)..<((h + 1) * per)].reduce(0, +) }
        guard Set(counts).count == 1, counts[0] > 0 else {
            throw bad("expected every head to keep the same positive count, found \(counts.map { Int($0) })")
        }
        _ = flags(group).update(fromContentsOf: values)
    }
}
