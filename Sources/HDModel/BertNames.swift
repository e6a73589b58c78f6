/// Canonical tensor names: Hugging Face's `BertForMaskedLM` names (with the `bert.` prefix). Code that
/// reads weights goes through these, so its structure mirrors the names on disk.
public enum BertNames {
    public static let wordEmbeddings = "bert.embeddings.word_embeddings.weight"
    public static let positionEmbeddings = "bert.embeddings.position_embeddings.weight"
    public static let tokenTypeEmbeddings = "bert.embeddings.token_type_embeddings.weight"
    public static let embeddingsLayerNormWeight = "bert.embeddings.LayerNorm.weight"
    public static let embeddingsLayerNormBias = "bert.embeddings.LayerNorm.bias"
    /// Integral buffer some checkpoints carry; optional, never used for compute.
    public static let positionIds = "bert.embeddings.position_ids"

    public static let poolerWeight = "bert.pooler.dense.weight"
    public static let poolerBias = "bert.pooler.dense.bias"

    public static let mlmTransformWeight = "cls.predictions.transform.dense.weight"
    public static let mlmTransformBias = "cls.predictions.transform.dense.bias"
    public static let mlmLayerNormWeight = "cls.predictions.transform.LayerNorm.weight"
    public static let mlmLayerNormBias = "cls.predictions.transform.LayerNorm.bias"
    public static let mlmBias = "cls.predictions.bias"
    /// A separate (untied) decoder; absent when tied to the word embeddings.
    public static let mlmDecoderWeight = "cls.predictions.decoder.weight"
    /// HF writes the decoder bias under both names; it must equal `cls.predictions.bias`.
    public static let mlmDecoderBias = "cls.predictions.decoder.bias"

    /// `BertForSequenceClassification`'s head: pooler → dropout → this linear, [labels × hidden].
    public static let classifierWeight = "classifier.weight"
    public static let classifierBias = "classifier.bias"

    public static let nspWeight = "cls.seq_relationship.weight"
    public static let nspBias = "cls.seq_relationship.bias"

    /// Names of encoder layer `index`.
    public struct Layer: Sendable {
        public let prefix: String
        public init(_ index: Int) { prefix = "bert.encoder.layer.\(index)." }

        public var queryWeight: String { prefix + "attention.self.query.weight" }
        public var queryBias: String { prefix + "attention.self.query.bias" }
        public var keyWeight: String { prefix + "attention.self.key.weight" }
        public var keyBias: String { prefix + "attention.self.key.bias" }
        public var valueWeight: String { prefix + "attention.self.value.weight" }
        public var valueBias: String { prefix + "attention.self.value.bias" }
        public var attentionOutputWeight: String { prefix + "attention.output.dense.weight" }
        public var attentionOutputBias: String { prefix + "attention.output.dense.bias" }
        public var attentionLayerNormWeight: String { prefix + "attention.output.LayerNorm.weight" }
        public var attentionLayerNormBias: String { prefix + "attention.output.LayerNorm.bias" }
        public var intermediateWeight: String { prefix + "intermediate.dense.weight" }
        public var intermediateBias: String { prefix + "intermediate.dense.bias" }
        public var outputWeight: String { prefix + "output.dense.weight" }
        public var outputBias: String { prefix + "output.dense.bias" }
        public var outputLayerNormWeight: String { prefix + "output.LayerNorm.weight" }
        public var outputLayerNormBias: String { prefix + "output.LayerNorm.bias" }
    }

    public static func layer(_ index: Int) -> Layer { Layer(index) }

    /// Every canonical name a checkpoint of `config` must hold, with its expected shape.
    public static func requiredShapes(_ config: BertConfig) -> [(String, [Int])] {
        let d = config.hiddenSize
        var out: [(String, [Int])] = [
            (wordEmbeddings, [config.vocabSize, d]),
            (positionEmbeddings, [config.maxPositionEmbeddings, d]),
            (tokenTypeEmbeddings, [config.typeVocabSize, d]),
            (embeddingsLayerNormWeight, [d]), (embeddingsLayerNormBias, [d]),
        ]
        for i in 0..<config.numHiddenLayers {
            let n = layer(i), s = config.layer(i)
            let a = s.attentionWidth, f = s.intermediateSize
            out += [
                (n.queryWeight, [a, d]), (n.queryBias, [a]),
                (n.keyWeight, [a, d]), (n.keyBias, [a]),
                (n.valueWeight, [a, d]), (n.valueBias, [a]),
                (n.attentionOutputWeight, [d, a]), (n.attentionOutputBias, [d]),
                (n.attentionLayerNormWeight, [d]), (n.attentionLayerNormBias, [d]),
                (n.intermediateWeight, [f, d]), (n.intermediateBias, [f]),
                (n.outputWeight, [d, f]), (n.outputBias, [d]),
                (n.outputLayerNormWeight, [d]), (n.outputLayerNormBias, [d]),
            ]
        }
        return out
    }

    /// Optional groups: each is present whole or absent whole.
    public static func optionalGroups(_ config: BertConfig) -> [(group: String, tensors: [(String, [Int])])] {
        let d = config.hiddenSize
        return [
            ("pooler", [(poolerWeight, [d, d]), (poolerBias, [d])]),
            ("MLM head", [(mlmTransformWeight, [d, d]), (mlmTransformBias, [d]),
                          (mlmLayerNormWeight, [d]), (mlmLayerNormBias, [d]), (mlmBias, [config.vocabSize])]),
            ("MLM decoder", [(mlmDecoderWeight, [config.vocabSize, d])]),
            ("MLM decoder bias", [(mlmDecoderBias, [config.vocabSize])]),
            ("NSP head", [(nspWeight, [2, d]), (nspBias, [2])]),
            ("classifier", [(classifierWeight, [config.id2label?.count ?? 0, d]), (classifierBias, [config.id2label?.count ?? 0])]),
            ("position ids", [(positionIds, [1, config.maxPositionEmbeddings])]),
        ]
    }
}
