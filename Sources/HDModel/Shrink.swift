import HDFormats

/// Physically removes pruned units: every tensor keeps only the rows and columns its coupling
/// (`PruneMasks.couplings`) marks as kept, which gives a dense model of consistent widths that
/// computes what the masked model computes. The masked model scales Q·Kᵀ by 1/√(original head
/// size); the dense one is a plain BERT with 1/√(kept head size), so the ratio is folded into W_Q
/// and b_Q and the config needs no scale of its own.
public enum Shrink {
    public static func dense(_ model: BertModel, masks: PruneMasks) throws -> BertModel {
        let config = model.config
        guard masks.config == config else {
            throw ModelError(.shapeMismatch, file: "<model>", "shrink: the masks were laid out for another model shape")
        }
        let shrunk = try masks.denseConfig()

        // Gathered from the model's own storage (a mapped file's pages, for a student read from disk):
        // no flat copy of the full-width weights.
        let layout = try BertParameterLayout(model: model)
        let storages = BertParameters.namedStorages(model.weights)
        let kept = Dictionary(uniqueKeysWithValues: masks.groups.map { g in
            (g, masks.flags(g).indices.filter { masks.flags(g)[$0] != 0 })
        })
        var tensors = TensorSet()
        for c in PruneMasks.couplings(layout) {
            let values = storages[c.entry.name]!.buffer
            let (rows, columns) = c.matrix
            let rowIndex = c.rows.map { kept[$0]! } ?? Array(0..<rows)
            let columnIndex = c.columns.map { kept[$0]! } ?? Array(0..<columns)
            var out = [Float]()
            out.reserveCapacity(rowIndex.count * columnIndex.count)
            for r in rowIndex { for j in columnIndex { out.append(values[r * columns + j]) } }
            if case .queryKey(let l)? = c.rows, c.entry.name.hasSuffix("query.weight") || c.entry.name.hasSuffix("query.bias") {
                let fold = config.attentionScale(layer: l) * Float(shrunk.layer(l).headSize).squareRoot()
                for i in out.indices { out[i] *= fold }
            }
            tensors[c.entry.name] = Tensor(shape: c.entry.shape.count == 2 ? [rowIndex.count, columnIndex.count] : [rowIndex.count],
                                           floats: out)
        }
        if let pooler = model.weights.pooler, !layout.hasClassifier {
            // The pooler reads the [CLS] hidden state and feeds tasks: rows and columns are hidden dims.
            let h = kept[.hidden]!, d = config.hiddenSize
            tensors[BertNames.poolerWeight] = Tensor(shape: [h.count, h.count], floats: h.flatMap { r in h.map { pooler.weight.buffer[r * d + $0] } })
            tensors[BertNames.poolerBias] = Tensor(shape: [h.count], floats: h.map { pooler.bias.buffer[$0] })
        }
        return try BertModel(config: shrunk, weights: BertWeights(tensors: tensors, config: shrunk, source: "<shrunk model>"))
    }
}

extension PruneMasks {
    /// The config of the dense model the masked one equals: the kept widths, and the plain
    /// 1/√(head size) attention scale (`Shrink.dense` folds the difference into W_Q). Uniform
    /// layers give a plain BERT config; differing ones per-layer shapes.
    public func denseConfig() throws -> BertConfig {
        let widths = keptWidths
        var layerShapes: [LayerShape] = []
        for (l, w) in widths.layers.enumerated() {
            guard w.queryKeyHeadSize == w.valueHeadSize, w.queryKeyHeadSize > 0, w.ffn > 0 else {
                throw ModelError(.shapeMismatch, file: "<model>",
                    "shrink: layer \(l) keeps \(w.queryKeyHeadSize) Q/K and \(w.valueHeadSize) V dimensions per head and \(w.ffn) FFN neurons; a dense BERT needs equal, positive head sizes and a positive FFN width")
            }
            layerShapes.append(LayerShape(attentionHeads: w.heads, headSize: w.queryKeyHeadSize, intermediateSize: w.ffn))
        }
        var shrunk = config
        shrunk.hiddenSize = widths.hidden
        shrunk.attentionScale = nil
        if Set(layerShapes.map { [$0.attentionHeads, $0.headSize, $0.intermediateSize] }).count == 1 {
            let s = layerShapes[0]
            shrunk.numAttentionHeads = s.attentionHeads
            shrunk.intermediateSize = s.intermediateSize
            shrunk.headSizeOverride = s.headSize * s.attentionHeads == widths.hidden ? nil : s.headSize
            shrunk.layerShapes = nil
        } else {
            shrunk.layerShapes = layerShapes
        }
        try shrunk.validate(source: "<shrunk model>")
        return shrunk
    }
}
