import HDFormats
import HDModel

/// The exact Hugging Face layout of a dense (shrunk) model whose widths transformers' `BertConfig`
/// cannot state as they are. transformers derives head size = hidden / heads and has one FFN width
/// for every layer; a pruned student usually has smaller heads, and may have an FFN width per layer.
/// Both pad exactly:
/// - each head's Q, K and V rows grow to hidden / heads with zero rows (zero weights and biases), and
///   attention-out's input columns with them: a padded dimension adds 0 to every Q·Kᵀ product and
///   0 to every context vector. Q (weights and bias) is scaled by √(hidden / heads) · our scale, so
///   transformers' 1/√(hidden / heads) gives exactly our attention scale.
/// - each layer's FFN grows to the widest layer's with zero rows and biases (GELU(0) = 0) and zero
///   input columns of FFN-out.
/// The residual (hidden) width cannot be padded: LayerNorm's statistics would change.
public enum HuggingFaceLayout {
    /// Why no exact layout exists, with the nearby widths that would have one; nil when one exists.
    public static func refusal(_ config: BertConfig) -> String? {
        let d = config.hiddenSize
        let shapes = (0..<config.numHiddenLayers).map { config.layer($0) }
        let heads = shapes.map(\.attentionHeads)
        guard let h = heads.first, heads.allSatisfy({ $0 == h }) else {
            return "layers have different head counts (\(heads.map(String.init).joined(separator: ", "))); transformers' BertConfig has one num_attention_heads for every layer"
        }
        let widest = shapes.map(\.headSize).max() ?? 0
        if d % h != 0 {
            let below = d / h * h, above = (d / h + 1) * h
            let options = [below, above].filter { $0 > 0 && $0 / h >= widest }.map { "hidden \($0)" }
            var nearby = options.isEmpty ? "hidden \(max(above, (widest * h + h - 1) / h * h))" : options.joined(separator: " or ")
            if below > 0 && below / h < widest { nearby += ", or hidden \(below) with head size ≤ \(below / h)" }
            return "hidden size \(d) is not a multiple of \(h) heads, and transformers derives head size as hidden / heads; widths with an exact layout: \(nearby) (hd-distill --hidden, --head-size; --hf-compatible rounds to such widths)"
        }
        if widest > d / h {
            return "head size \(widest) is above hidden / heads = \(d) / \(h) = \(d / h), and transformers derives head size as hidden / heads; widths with an exact layout: head size ≤ \(d / h) at hidden \(d), or hidden ≥ \(widest * h) (\(h) heads × \(widest)) (hd-distill --hidden, --head-size; --hf-compatible rounds to such widths)"
        }
        return nil
    }

    /// The config transformers gets: head size hidden / heads, the widest FFN, plain scale.
    public static func paddedConfig(_ config: BertConfig) throws -> BertConfig {
        if let reason = refusal(config) {
            throw ModelError(.unsupported, file: "<model>", "no exact Hugging Face layout: \(reason)")
        }
        var padded = config
        padded.numAttentionHeads = config.layer(0).attentionHeads
        padded.intermediateSize = (0..<config.numHiddenLayers).map { config.layer($0).intermediateSize }.max() ?? config.intermediateSize
        padded.headSizeOverride = nil
        padded.layerShapes = nil
        padded.attentionScale = nil
        try padded.validate(source: "<padded model>")
        return padded
    }

    /// `dense` with zero-padded heads and FFN and rescaled queries (see the type's comment): the
    /// model transformers' BertConfig describes that computes what `dense` computes.
    public static func padded(_ dense: BertModel) throws -> BertModel {
        let config = dense.config, padded = try paddedConfig(config)
        let d = config.hiddenSize, heads = padded.numAttentionHeads, P = padded.headSize, F = padded.intermediateSize
        var tensors = try BertParameters.tensorSet(sharing: dense)
        for (l, layer) in dense.weights.layers.enumerated() {
            let names = BertNames.layer(l), s = config.layer(l), hs = s.headSize
            // transformers scales Q·Kᵀ by 1/√P; ours is config.attentionScale(layer:), folded into Q.
            let fold = Float((Double(config.attentionScale(layer: l)) * Double(P).squareRoot()))
            /// Row r of the padded attention width comes from row `source(r)` of ours, or is zero.
            func source(_ r: Int) -> Int? { r % P < hs ? r / P * hs + r % P : nil }
            for (w, b, scale) in [(layer.attention.query, (names.queryWeight, names.queryBias), fold),
                                  (layer.attention.key, (names.keyWeight, names.keyBias), 1),
                                  (layer.attention.value, (names.valueWeight, names.valueBias), 1)] {
                tensors[b.0] = Tensor(shape: [heads * P, d], floats: rows(w.weight, width: d, count: heads * P, scale: scale, source))
                tensors[b.1] = Tensor(shape: [heads * P], floats: rows(w.bias, width: 1, count: heads * P, scale: scale, source))
            }
            tensors[names.attentionOutputWeight] = Tensor(shape: [d, heads * P],
                floats: columns(layer.attention.output.weight, rows: d, width: s.attentionWidth, count: heads * P, source))
            let f = s.intermediateSize
            func ffnSource(_ r: Int) -> Int? { r < f ? r : nil }
            tensors[names.intermediateWeight] = Tensor(shape: [F, d], floats: rows(layer.intermediate.weight, width: d, count: F, scale: 1, ffnSource))
            tensors[names.intermediateBias] = Tensor(shape: [F], floats: rows(layer.intermediate.bias, width: 1, count: F, scale: 1, ffnSource))
            tensors[names.outputWeight] = Tensor(shape: [d, F], floats: columns(layer.output.weight, rows: d, width: f, count: F, ffnSource))
        }
        return try BertModel(config: padded, weights: BertWeights(tensors: tensors, config: padded, source: "<padded model>"))
    }

    /// `count` rows of `width` values: row r is `source(r)`'s row of `storage` times `scale`, or zeros.
    static func rows(_ storage: FloatStorage, width: Int, count: Int, scale: Float, _ source: (Int) -> Int?) -> [Float] {
        var out = [Float](repeating: 0, count: count * width)
        for r in 0..<count {
            guard let from = source(r) else { continue }
            for j in 0..<width { out[r * width + j] = storage.buffer[from * width + j] * scale }
        }
        return out
    }

    /// `rows` rows of `count` columns: column c is `source(c)`'s column of `storage` (`width` wide), or zeros.
    static func columns(_ storage: FloatStorage, rows: Int, width: Int, count: Int, _ source: (Int) -> Int?) -> [Float] {
        var out = [Float](repeating: 0, count: rows * count)
        for c in 0..<count {
            guard let from = source(c) else { continue }
            for r in 0..<rows { out[r * count + c] = storage.buffer[r * width + from] }
        }
        return out
    }
}
