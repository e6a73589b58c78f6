import HDFormats

/// One trainable tensor's place in a flat parameter (or gradient, or optimiser-moment) buffer.
public struct ParameterEntry: Sendable, Equatable {
    /// Canonical (Hugging Face) name.
    public let name: String
    public let shape: [Int]
    /// Offset and length in floats; offsets are multiples of 16 (64 bytes) so every tensor starts on
    /// a cache line, as BLAS and the vector kernels like.
    public let offset: Int
    public let count: Int

    public var range: Range<Int> { offset..<(offset + count) }
}

/// The order and offsets of every tensor the training forward uses, shared by the parameters, their
/// gradients and any optimiser state, so an optimiser can walk all of them as one flat array and a
/// pruner can find a tensor's rows and columns by name. Order: `BertNames.requiredShapes`, then the
/// MLM head (transform, its LayerNorm, the decoder only when untied, `cls.predictions.bias`), then a
/// sequence classifier's head (pooler, classifier). A pooler without a classifier takes no part in
/// training and is not in the layout; nor is the NSP head.
public struct BertParameterLayout: Sendable, Equatable {
    public let config: BertConfig
    public let hasMLMHead: Bool
    /// The MLM decoder is the word embeddings (one tensor, two uses, one gradient).
    public let isTied: Bool
    /// The pooler and classifier are trained (a sequence classifier); `classifierLabels` outputs.
    public let classifierLabels: Int
    public var hasClassifier: Bool { classifierLabels > 0 }
    public let entries: [ParameterEntry]
    /// Floats including the alignment gaps (which stay zero in every buffer).
    public let count: Int
    private let index: [String: Int]

    public init(config: BertConfig, hasMLMHead: Bool, isTied: Bool, classifierLabels: Int = 0) throws {
        try config.validate(source: "<model>")
        var shapes = BertNames.requiredShapes(config)
        if hasMLMHead {
            let d = config.hiddenSize
            shapes += [(BertNames.mlmTransformWeight, [d, d]), (BertNames.mlmTransformBias, [d]),
                       (BertNames.mlmLayerNormWeight, [d]), (BertNames.mlmLayerNormBias, [d])]
            if !isTied { shapes.append((BertNames.mlmDecoderWeight, [config.vocabSize, d])) }
            shapes.append((BertNames.mlmBias, [config.vocabSize]))
        }
        if classifierLabels > 0 {
            let d = config.hiddenSize
            shapes += [(BertNames.poolerWeight, [d, d]), (BertNames.poolerBias, [d]),
                       (BertNames.classifierWeight, [classifierLabels, d]), (BertNames.classifierBias, [classifierLabels])]
        }
        var entries: [ParameterEntry] = [], offset = 0
        for (name, shape) in shapes {
            guard let n = ShapeMath.elementCount(shape) else {
                throw ModelError(.shapeMismatch, file: "<model>", "parameter \(name): shape \(shape) overflows")
            }
            let padded = (n + 15) / 16 * 16
            let (end, overflow) = offset.addingReportingOverflow(padded)
            guard !overflow else {
                throw ModelError(.shapeMismatch, file: "<model>", "parameter \(name): total parameter count overflows")
            }
            entries.append(ParameterEntry(name: name, shape: shape, offset: offset, count: n))
            offset = end
        }
        self.config = config
        self.hasMLMHead = hasMLMHead
        self.isTied = isTied
        self.classifierLabels = classifierLabels
        self.entries = entries
        self.count = offset
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    /// The layout of `model`'s trainable tensors.
    public init(model: BertModel) throws {
        try self.init(config: model.config, hasMLMHead: model.weights.mlmHead != nil,
                      isTied: model.weights.mlmHead?.isTied ?? true, classifierLabels: model.weights.classifier?.outFeatures ?? 0)
    }

    public func entry(_ name: String) -> ParameterEntry? { index[name].map { entries[$0] } }

}

/// One zero-filled, 64-byte-aligned float allocation, freed on deinit. It owns the memory that
/// parameter views borrow (`FloatStorage(borrowing:owner:)`), so weights outlive no buffer.
public final class FlatFloats: @unchecked Sendable {
    public let buffer: UnsafeMutableBufferPointer<Float>

    public init(count: Int) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 16) * MemoryLayout<Float>.stride, alignment: 64)
        let base = raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 16))
        buffer = UnsafeMutableBufferPointer(start: base, count: count)
    }

    deinit { UnsafeMutableRawPointer(buffer.baseAddress!).deallocate() }

    /// The floats of `entry`.
    public subscript(entry: ParameterEntry) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: buffer[entry.range])
    }
}

/// The trainable weights of a model in one flat, mutable buffer, and a `BertModel` whose weights are
/// views of it: an optimiser that updates `flat` in place changes what the next forward computes,
/// with no copy and no rebuild. (`FloatStorage` is documented immutable; here its memory changes
/// under it, which is safe as long as updates happen between steps, never during a forward or
/// backward — the trainer's loop is sequential, so they do.) A pooler without a classifier is copied
/// once and kept as it is: MLM training does not use it. A structural mask (a pruned row or column)
/// is a set of indices inside `layout`'s entries, so zeroing it in the parameters, their gradients
/// and the optimiser's moments is the same index walk over three buffers.
public final class BertParameters {
    public let layout: BertParameterLayout
    public let storage: FlatFloats
    /// The model over `storage`: run forward and backward with it.
    public let model: BertModel
    private let frozen: TensorSet

    /// Copies `model`'s weights into a fresh flat buffer.
    public init(copying source: BertModel) throws {
        layout = try BertParameterLayout(model: source)
        storage = FlatFloats(count: layout.count)
        var views = TensorSet()
        var frozen = TensorSet()
        let original = Self.namedStorages(source.weights)
        for entry in layout.entries {
            guard let values = original[entry.name], values.count == entry.count else {
                throw ModelError(.missingTensor, file: "<model>", "parameter \(entry.name) has no weights of \(entry.count) floats to copy")
            }
            let slice = storage[entry]
            _ = slice.update(fromContentsOf: values.buffer)
            views[entry.name] = Tensor(shape: entry.shape,
                                       values: .float32(FloatStorage(borrowing: UnsafeBufferPointer(slice), owner: storage)),
                                       storedAs: .float32)
        }
        if let pooler = source.weights.pooler, !layout.hasClassifier {
            let d = source.config.hiddenSize
            frozen[BertNames.poolerWeight] = Tensor(shape: [d, d], values: .float32(pooler.weight), storedAs: .float32)
            frozen[BertNames.poolerBias] = Tensor(shape: [d], values: .float32(pooler.bias), storedAs: .float32)
            views[BertNames.poolerWeight] = frozen[BertNames.poolerWeight]
            views[BertNames.poolerBias] = frozen[BertNames.poolerBias]
        }
        self.frozen = frozen
        model = try BertModel(config: source.config, weights: BertWeights(tensors: views, config: source.config, source: "<parameters>"))
    }

    /// Every float of every trainable tensor, in layout order (alignment gaps are zero).
    public var flat: UnsafeMutableBufferPointer<Float> { storage.buffer }

    /// The floats of tensor `name`, or nil when it is not trainable.
    public subscript(name: String) -> UnsafeMutableBufferPointer<Float>? { layout.entry(name).map { storage[$0] } }

    /// A copy of every tensor (trainable and frozen) under canonical names, for writing a checkpoint.
    public func tensorSet() -> TensorSet {
        var out = frozen
        for entry in layout.entries {
            out[entry.name] = Tensor(shape: entry.shape, floats: Array(storage[entry]))
        }
        return out
    }

    /// Canonical name → storage of every tensor the layout may hold.
    /// `model`'s tensors under canonical names, sharing its storage (no copy): what a writer needs
    /// of a model that is not being trained, such as the dense model an export writes.
    public static func tensorSet(sharing model: BertModel) throws -> TensorSet {
        let layout = try BertParameterLayout(model: model)
        let storages = namedStorages(model.weights)
        var out = TensorSet()
        for entry in layout.entries {
            guard let values = storages[entry.name], values.count == entry.count else {
                throw ModelError(.missingTensor, file: "<model>", "parameter \(entry.name) has no weights of \(entry.count) floats")
            }
            out[entry.name] = Tensor(shape: entry.shape, values: .float32(values), storedAs: .float32)
        }
        if let pooler = model.weights.pooler, !layout.hasClassifier {
            let d = model.config.hiddenSize
            out[BertNames.poolerWeight] = Tensor(shape: [d, d], values: .float32(pooler.weight), storedAs: .float32)
            out[BertNames.poolerBias] = Tensor(shape: [d], values: .float32(pooler.bias), storedAs: .float32)
        }
        return out
    }

    static func namedStorages(_ w: BertWeights) -> [String: FloatStorage] {
        var out: [String: FloatStorage] = [
            BertNames.wordEmbeddings: w.embeddings.word, BertNames.positionEmbeddings: w.embeddings.position,
            BertNames.tokenTypeEmbeddings: w.embeddings.tokenType,
            BertNames.embeddingsLayerNormWeight: w.embeddings.layerNorm.gamma,
            BertNames.embeddingsLayerNormBias: w.embeddings.layerNorm.beta,
        ]
        for (i, l) in w.layers.enumerated() {
            let n = BertNames.layer(i)
            let pairs: [(String, FloatStorage)] = [
                (n.queryWeight, l.attention.query.weight), (n.queryBias, l.attention.query.bias),
                (n.keyWeight, l.attention.key.weight), (n.keyBias, l.attention.key.bias),
                (n.valueWeight, l.attention.value.weight), (n.valueBias, l.attention.value.bias),
                (n.attentionOutputWeight, l.attention.output.weight), (n.attentionOutputBias, l.attention.output.bias),
                (n.attentionLayerNormWeight, l.attention.outputLayerNorm.gamma),
                (n.attentionLayerNormBias, l.attention.outputLayerNorm.beta),
                (n.intermediateWeight, l.intermediate.weight), (n.intermediateBias, l.intermediate.bias),
                (n.outputWeight, l.output.weight), (n.outputBias, l.output.bias),
                (n.outputLayerNormWeight, l.outputLayerNorm.gamma), (n.outputLayerNormBias, l.outputLayerNorm.beta),
            ]
            for (name, s) in pairs { out[name] = s }
        }
        if let h = w.mlmHead {
            out[BertNames.mlmTransformWeight] = h.transform.weight
            out[BertNames.mlmTransformBias] = h.transform.bias
            out[BertNames.mlmLayerNormWeight] = h.transformLayerNorm.gamma
            out[BertNames.mlmLayerNormBias] = h.transformLayerNorm.beta
            out[BertNames.mlmBias] = h.bias
            if !h.isTied { out[BertNames.mlmDecoderWeight] = h.decoder }
        }
        if let pooler = w.pooler {
            out[BertNames.poolerWeight] = pooler.weight
            out[BertNames.poolerBias] = pooler.bias
        }
        if let classifier = w.classifier {
            out[BertNames.classifierWeight] = classifier.weight
            out[BertNames.classifierBias] = classifier.bias
        }
        return out
    }
}
