import Foundation

/// The shape of one encoder layer. Equal in every layer of a pre-trained BERT; a pruned student may
/// differ per layer (each layer's heads share one head size, so heads stay uniform inside a layer).
public struct LayerShape: Codable, Equatable, Sendable {
    public var attentionHeads: Int
    public var headSize: Int
    public var intermediateSize: Int

    public init(attentionHeads: Int, headSize: Int, intermediateSize: Int) {
        self.attentionHeads = attentionHeads
        self.headSize = headSize
        self.intermediateSize = intermediateSize
    }

    /// Width of Q, K, V and of attention-out's input: heads × head size.
    public var attentionWidth: Int { attentionHeads * headSize }

    enum CodingKeys: String, CodingKey {
        case attentionHeads = "num_attention_heads"
        case headSize = "attention_head_size"
        case intermediateSize = "intermediate_size"
    }
}

/// The feed-forward activation (`hidden_act`), decoded once: the kernels switch on this, never on
/// the string.
public enum Activation: String, Codable, Sendable, CaseIterable {
    /// x · Φ(x), the exact erf form (BERT's "gelu").
    case gelu
    /// The tanh approximation, under both of transformers' names for it.
    case geluNew = "gelu_new"
    case geluPytorchTanh = "gelu_pytorch_tanh"

    /// Whether this is the exact (erf) form rather than the tanh approximation.
    public var isExact: Bool { self == .gelu }
}

/// BERT's configuration: Hugging Face's `config.json` keys, decoded explicitly, plus homodistil's
/// extensions (`hd_*`) for pruned students whose widths HF's BertConfig cannot express.
public struct BertConfig: Codable, Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var hiddenAct: Activation
    public var layerNormEps: Float
    public var padTokenId: Int
    public var positionEmbeddingType: String
    /// Head size when it is not hidden / heads (pruned attention). nil: hidden / heads.
    public var headSizeOverride: Int?
    /// Per-layer widths of a pruned student; nil: every layer has the uniform widths above.
    public var layerShapes: [LayerShape]?
    /// Scale applied to Q·Kᵀ; nil: 1/√(head size). A masked student keeps 1/√(original head size).
    public var attentionScale: Float?
    /// A sequence classifier's label names in id order (HF's `id2label`, a JSON object keyed "0",
    /// "1", …); nil for a model without a classifier head. Its count is the classifier's output width.
    public var id2label: [String]?
    /// HF's `problem_type`: "regression" (one output, MSE) or "single_label_classification"; nil:
    /// regression exactly when there is one label, as transformers decides.
    public var problemType: String?

    public init(vocabSize: Int, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                intermediateSize: Int, maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2,
                hiddenAct: Activation = .gelu, layerNormEps: Float = 1e-12, padTokenId: Int = 0,
                positionEmbeddingType: String = "absolute", headSizeOverride: Int? = nil,
                layerShapes: [LayerShape]? = nil, attentionScale: Float? = nil, id2label: [String]? = nil,
                problemType: String? = nil) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
        self.padTokenId = padTokenId
        self.positionEmbeddingType = positionEmbeddingType
        self.headSizeOverride = headSizeOverride
        self.layerShapes = layerShapes
        self.attentionScale = attentionScale
        self.id2label = id2label
        self.problemType = problemType
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case padTokenId = "pad_token_id"
        case positionEmbeddingType = "position_embedding_type"
        case headSizeOverride = "hd_attention_head_size"
        case layerShapes = "hd_layers"
        case attentionScale = "hd_attention_scale"
        case id2label
        case problemType = "problem_type"
    }

    /// Keys read but not kept: a config of ours is always BERT.
    enum CheckedKeys: String, CodingKey {
        case modelType = "model_type"
    }

    /// Errors thrown while decoding name this file; `decode(json:source:)` puts the real one in.
    static let decodingFile = "<config>"

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 512
        typeVocabSize = try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? 2
        let checked = try decoder.container(keyedBy: CheckedKeys.self)
        if let type = try checked.decodeIfPresent(String.self, forKey: .modelType), !Self.supportedModelTypes.contains(type) {
            throw ModelError(.unsupported, file: Self.decodingFile, field: CheckedKeys.modelType.stringValue,
                "config field model_type: expected one of \(Self.supportedModelTypes.sorted()), found \"\(type)\"; other architectures (RoBERTa's position offset and tokenizer, say) would load as BERT and compute something else")
        }
        let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? Activation.gelu.rawValue
        guard let activation = Activation(rawValue: act) else {
            throw ModelError(.badConfig, file: Self.decodingFile, field: CodingKeys.hiddenAct.stringValue,
                "config field hidden_act: expected one of \(Activation.allCases.map(\.rawValue)), found \"\(act)\"")
        }
        hiddenAct = activation
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-12
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId) ?? 0
        positionEmbeddingType = try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType) ?? "absolute"
        headSizeOverride = try c.decodeIfPresent(Int.self, forKey: .headSizeOverride)
        layerShapes = try c.decodeIfPresent([LayerShape].self, forKey: .layerShapes)
        attentionScale = try c.decodeIfPresent(Float.self, forKey: .attentionScale)
        id2label = try c.decodeIfPresent([String: String].self, forKey: .id2label).map(Self.labelList)
        problemType = try c.decodeIfPresent(String.self, forKey: .problemType)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(typeVocabSize, forKey: .typeVocabSize)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(padTokenId, forKey: .padTokenId)
        try c.encode(positionEmbeddingType, forKey: .positionEmbeddingType)
        try c.encodeIfPresent(headSizeOverride, forKey: .headSizeOverride)
        try c.encodeIfPresent(layerShapes, forKey: .layerShapes)
        try c.encodeIfPresent(attentionScale, forKey: .attentionScale)
        try c.encodeIfPresent(id2label.map(Self.labelObject), forKey: .id2label)
        try c.encodeIfPresent(problemType, forKey: .problemType)
    }

    /// HF's `id2label` object ({"0": "neg", "1": "pos"}) as a list in id order; the keys must be
    /// exactly 0 … n−1.
    static func labelList(_ object: [String: String]) throws -> [String] {
        var labels = [String?](repeating: nil, count: object.count)
        for (key, label) in object {
            guard let id = Int(key), id >= 0, id < object.count, labels[id] == nil else {
                throw ModelError(.badConfig, file: decodingFile, field: CodingKeys.id2label.stringValue,
                    "config field id2label: expected the keys \"0\" … \"\(object.count - 1)\", found \"\(key)\"")
            }
            labels[id] = label
        }
        return labels.map { $0! }
    }

    static func labelObject(_ labels: [String]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0), $1) })
    }

    /// Whether the classifier head is a regression (one output, MSE) rather than a classification.
    public var isRegression: Bool {
        problemType.map { $0 == "regression" } ?? (id2label?.count == 1)
    }

    /// Head size of an unpruned layer.
    public var headSize: Int { headSizeOverride ?? hiddenSize / max(numAttentionHeads, 1) }

    /// The widths of layer `index` (per-layer shapes when present, else the uniform ones).
    public func layer(_ index: Int) -> LayerShape {
        if let layerShapes, index < layerShapes.count { return layerShapes[index] }
        return LayerShape(attentionHeads: numAttentionHeads, headSize: headSize, intermediateSize: intermediateSize)
    }

    /// The Q·Kᵀ scale used by layer `index`.
    public func attentionScale(layer index: Int) -> Float {
        attentionScale ?? 1 / Float(layer(index).headSize).squareRoot()
    }

    /// `model_type`s whose checkpoints are BERT as we compute it; anything else is refused. A config
    /// without the key is taken as BERT.
    public static let supportedModelTypes: Set<String> = ["bert"]

    /// Checks that every width is positive and consistent; `source` names where the config came from.
    public func validate(source: String) throws {
        func fail(_ field: String, _ what: String) -> ModelError {
            ModelError(.badConfig, file: source, "config field \(field): \(what)")
        }
        let positive: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
            ("num_attention_heads", numAttentionHeads), ("intermediate_size", intermediateSize),
            ("max_position_embeddings", maxPositionEmbeddings), ("type_vocab_size", typeVocabSize),
        ]
        for (name, value) in positive where value <= 0 || value > 1 << 24 {
            throw fail(name, "expected a positive integer ≤ \(1 << 24), found \(value)")
        }
        if headSizeOverride == nil, hiddenSize % numAttentionHeads != 0 {
            throw fail("num_attention_heads", "hidden_size \(hiddenSize) is not a multiple of \(numAttentionHeads) heads; set hd_attention_head_size")
        }
        if let h = headSizeOverride, h <= 0 || h > hiddenSize * 4 {
            throw fail("hd_attention_head_size", "expected 1…\(hiddenSize * 4), found \(h)")
        }
        if let shapes = layerShapes {
            guard shapes.count == numHiddenLayers else {
                throw fail("hd_layers", "expected \(numHiddenLayers) entries (num_hidden_layers), found \(shapes.count)")
            }
            for (i, s) in shapes.enumerated() where s.attentionHeads <= 0 || s.headSize <= 0 || s.intermediateSize <= 0
                || s.attentionHeads > 1 << 12 || s.headSize > 1 << 16 || s.intermediateSize > 1 << 24 {
                throw fail("hd_layers[\(i)]", "expected positive widths, found heads \(s.attentionHeads), head size \(s.headSize), intermediate \(s.intermediateSize)")
            }
        }
        guard positionEmbeddingType == "absolute" else {
            throw fail("position_embedding_type", "only \"absolute\" is supported, found \"\(positionEmbeddingType)\"")
        }
        guard layerNormEps.isFinite, layerNormEps > 0 else {
            throw fail("layer_norm_eps", "expected a positive number, found \(layerNormEps)")
        }
        if let s = attentionScale, !(s.isFinite && s > 0) {
            throw fail("hd_attention_scale", "expected a positive number, found \(s)")
        }
        if let labels = id2label, labels.isEmpty || labels.count > 1 << 16 {
            throw fail("id2label", "expected 1…\(1 << 16) labels, found \(labels.count)")
        }
        if let problemType, !["regression", "single_label_classification"].contains(problemType) {
            throw fail("problem_type", "expected \"regression\" or \"single_label_classification\", found \"\(problemType)\" (multi-label classification is not supported)")
        }
        if problemType == "regression", let labels = id2label, labels.count != 1 {
            throw fail("problem_type", "a regression head has one output, found \(labels.count) labels in id2label")
        }
    }

    /// Decodes a `config.json`, naming the file in errors.
    public static func decode(json data: Data, source: String) throws -> BertConfig {
        do {
            let config = try JSONDecoder().decode(BertConfig.self, from: data)
            try config.validate(source: source)
            return config
        } catch let error as ModelError {
            throw error.file == decodingFile ? ModelError(error.kind, file: source, field: error.field, error.message) : error
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelError(.badConfig, file: source, "config is missing the required field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ModelError(.badConfig, file: source, "config field \(path): \(context.debugDescription)")
        } catch {
            throw ModelError(.badConfig, file: source, "config is not valid JSON: \(error)")
        }
    }

    /// Encodes as JSON with sorted keys (deterministic bytes for embedding in metadata).
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
