import HDFormats

/// A dense layer in Hugging Face's layout: `weight` is `[outFeatures, inFeatures]` row-major, so
/// y = x · Wᵀ + b is one GEMM with `transB` and no transposed copy.
public struct LinearWeights: Sendable {
    public let weight: FloatStorage
    public let bias: FloatStorage
    public let outFeatures: Int
    public let inFeatures: Int
}

public struct LayerNormWeights: Sendable {
    public let gamma: FloatStorage
    public let beta: FloatStorage
    public let width: Int
}

public struct BertEmbeddingsWeights: Sendable {
    /// [vocab, hidden]; also the MLM decoder when tied.
    public let word: FloatStorage
    /// [max positions, hidden]
    public let position: FloatStorage
    /// [type vocab, hidden]
    public let tokenType: FloatStorage
    public let layerNorm: LayerNormWeights
}

/// `attention.self.{query,key,value}` and `attention.output.{dense,LayerNorm}`.
public struct BertAttentionWeights: Sendable {
    public let query: LinearWeights
    public let key: LinearWeights
    public let value: LinearWeights
    public let output: LinearWeights
    public let outputLayerNorm: LayerNormWeights
}

/// One encoder layer: attention, then `intermediate.dense` → GELU → `output.dense` → `output.LayerNorm`.
public struct BertLayerWeights: Sendable {
    public let attention: BertAttentionWeights
    public let intermediate: LinearWeights
    public let output: LinearWeights
    public let outputLayerNorm: LayerNormWeights
}

/// `cls.predictions`: transform (dense + GELU + LayerNorm), then the decoder and its bias.
public struct BertMLMHeadWeights: Sendable {
    public let transform: LinearWeights
    public let transformLayerNorm: LayerNormWeights
    /// [vocab, hidden]: the word embeddings when tied, else `cls.predictions.decoder.weight`.
    public let decoder: FloatStorage
    /// `cls.predictions.bias`, [vocab].
    public let bias: FloatStorage
    public let isTied: Bool
}

/// Every tensor of a BERT checkpoint, pulled out of a canonical `TensorSet` by name into structs that
/// mirror the names (`layers[3].attention.query` is `bert.encoder.layer.3.attention.self.query.*`).
/// Storage is shared with the tensor set: nothing is copied.
public struct BertWeights: Sendable {
    public let embeddings: BertEmbeddingsWeights
    public let layers: [BertLayerWeights]
    /// `bert.pooler.dense`, when the checkpoint has one.
    public let pooler: LinearWeights?
    public let mlmHead: BertMLMHeadWeights?
    /// `classifier`, [labels × hidden]: a sequence classifier's head over the pooler's output, when
    /// the checkpoint has one (then it has a pooler and the config names its labels).
    public let classifier: LinearWeights?

    /// Reads the weights `config` describes from `tensors`. `source` names the file in errors.
    /// A missing or wrong-shaped tensor is a `ModelError` naming it; the pooler and the MLM head are
    /// optional but must be complete when any of their tensors is present.
    public init(tensors: TensorSet, config: BertConfig, source: String) throws {
        try config.validate(source: source)
        let reader = Reader(tensors: tensors, source: source)
        let d = config.hiddenSize

        embeddings = BertEmbeddingsWeights(
            word: try reader.floats(BertNames.wordEmbeddings, [config.vocabSize, d]),
            position: try reader.floats(BertNames.positionEmbeddings, [config.maxPositionEmbeddings, d]),
            tokenType: try reader.floats(BertNames.tokenTypeEmbeddings, [config.typeVocabSize, d]),
            layerNorm: try reader.layerNorm(BertNames.embeddingsLayerNormWeight, BertNames.embeddingsLayerNormBias, d))

        layers = try (0..<config.numHiddenLayers).map { i in
            let n = BertNames.layer(i), s = config.layer(i)
            let a = s.attentionWidth, f = s.intermediateSize
            return BertLayerWeights(
                attention: BertAttentionWeights(
                    query: try reader.linear(n.queryWeight, n.queryBias, out: a, in: d),
                    key: try reader.linear(n.keyWeight, n.keyBias, out: a, in: d),
                    value: try reader.linear(n.valueWeight, n.valueBias, out: a, in: d),
                    output: try reader.linear(n.attentionOutputWeight, n.attentionOutputBias, out: d, in: a),
                    outputLayerNorm: try reader.layerNorm(n.attentionLayerNormWeight, n.attentionLayerNormBias, d)),
                intermediate: try reader.linear(n.intermediateWeight, n.intermediateBias, out: f, in: d),
                output: try reader.linear(n.outputWeight, n.outputBias, out: d, in: f),
                outputLayerNorm: try reader.layerNorm(n.outputLayerNormWeight, n.outputLayerNormBias, d))
        }

        try reader.requireWholeGroup("pooler", [BertNames.poolerWeight, BertNames.poolerBias])
        pooler = tensors[BertNames.poolerWeight] == nil ? nil
            : try reader.linear(BertNames.poolerWeight, BertNames.poolerBias, out: d, in: d)

        try reader.requireWholeGroup("classifier", [BertNames.classifierWeight, BertNames.classifierBias])
        if tensors[BertNames.classifierWeight] == nil {
            classifier = nil
        } else {
            guard pooler != nil else {
                throw ModelError(.missingTensor, file: source, field: BertNames.poolerWeight,
                    "a classifier (\(BertNames.classifierWeight)) needs the pooler it reads (\(BertNames.poolerWeight), \(BertNames.poolerBias)), which is missing")
            }
            guard let labels = config.id2label else {
                throw ModelError(.badConfig, file: source, field: "id2label",
                    "the checkpoint has a classifier (\(BertNames.classifierWeight)) but its config names no labels (id2label)")
            }
            classifier = try reader.linear(BertNames.classifierWeight, BertNames.classifierBias, out: labels.count, in: d)
        }

        let headNames = [BertNames.mlmTransformWeight, BertNames.mlmTransformBias, BertNames.mlmLayerNormWeight,
                         BertNames.mlmLayerNormBias, BertNames.mlmBias]
        try reader.requireWholeGroup("MLM head", headNames)
        if tensors[BertNames.mlmBias] == nil {
            for name in [BertNames.mlmDecoderWeight, BertNames.mlmDecoderBias] where tensors[name] != nil {
                throw ModelError(.missingTensor, file: source, "\(name) is present but the MLM head (\(BertNames.mlmBias) …) is not")
            }
            mlmHead = nil
        } else {
            let bias = try reader.floats(BertNames.mlmBias, [config.vocabSize])
            if tensors[BertNames.mlmDecoderBias] != nil {
                let other = try reader.floats(BertNames.mlmDecoderBias, [config.vocabSize])
                if let i = (0..<config.vocabSize).first(where: { other.buffer[$0] != bias.buffer[$0] }) {
                    throw ModelError(.shapeMismatch, file: source,
                                     "\(BertNames.mlmDecoderBias) must equal \(BertNames.mlmBias); they differ first at index \(i) (\(other.buffer[i]) vs \(bias.buffer[i]))")
                }
            }
            let untied = tensors[BertNames.mlmDecoderWeight] != nil
            mlmHead = BertMLMHeadWeights(
                transform: try reader.linear(BertNames.mlmTransformWeight, BertNames.mlmTransformBias, out: d, in: d),
                transformLayerNorm: try reader.layerNorm(BertNames.mlmLayerNormWeight, BertNames.mlmLayerNormBias, d),
                decoder: untied ? try reader.floats(BertNames.mlmDecoderWeight, [config.vocabSize, d]) : embeddings.word,
                bias: bias, isTied: !untied)
        }
    }

    /// Looks tensors up by canonical name and checks dtype and shape before handing out storage.
    private struct Reader {
        let tensors: TensorSet
        let source: String

        func floats(_ name: String, _ shape: [Int]) throws -> FloatStorage {
            guard let t = tensors[name] else {
                throw ModelError(.missingTensor, file: source, "tensor \(name) is missing (expected shape \(shape))")
            }
            guard t.shape == shape else {
                throw ModelError(.shapeMismatch, file: source, "tensor \(name): expected shape \(shape), found \(t.shape)")
            }
            guard let storage = t.floats, storage.count == ShapeMath.elementCount(shape) else {
                throw ModelError(.shapeMismatch, file: source,
                                 "tensor \(name): expected \(ShapeMath.elementCount(shape) ?? -1) f32 values, found \(t.elementCount) \(t.floats == nil ? "integer" : "f32") values")
            }
            return storage
        }

        func linear(_ weight: String, _ bias: String, out: Int, in inputs: Int) throws -> LinearWeights {
            LinearWeights(weight: try floats(weight, [out, inputs]), bias: try floats(bias, [out]),
                          outFeatures: out, inFeatures: inputs)
        }

        func layerNorm(_ gamma: String, _ beta: String, _ width: Int) throws -> LayerNormWeights {
            LayerNormWeights(gamma: try floats(gamma, [width]), beta: try floats(beta, [width]), width: width)
        }

        func requireWholeGroup(_ group: String, _ names: [String]) throws {
            let missing = names.filter { tensors[$0] == nil }
            guard missing.isEmpty || missing.count == names.count else {
                throw ModelError(.missingTensor, file: source,
                                 "the \(group) is incomplete: \(missing.joined(separator: ", ")) missing while \(names.filter { tensors[$0] != nil }.joined(separator: ", ")) present")
            }
        }
    }
}
