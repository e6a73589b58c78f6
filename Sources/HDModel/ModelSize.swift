/// How a model's MLM head counts: absent, with its decoder tied to the word embeddings (stored
/// once), or with a decoder of its own.
public enum MLMHeadKind: String, Sendable, Codable {
    case none, tied, untied
}

/// The one count of a model's size and cost that every tool, report and log uses (docs/FORMATS.md,
/// "Counting"): `parameters` are every float of the model as its canonical file holds it —
/// embeddings (word, position, type, their LayerNorm), every encoder layer, the pooler when the
/// model has one, the MLM head when it has one (its decoder counted once when tied; `position_ids`
/// is an index, not a parameter), the sequence classifier when it has one; `flopsPer128TokenSequence` is `FlopReport`'s total for one
/// sequence of 128 real tokens (matrix products, attention products and the nominal element-wise
/// costs; the pooler and MLM head are not part of the encoder forward).
public struct ModelSize: Equatable, Sendable, Codable {
    /// The sequence length of every reported FLOP figure, BERT's usual one.
    public static let flopSequenceLength = 128

    public var parameters: Int
    public var flopsPer128TokenSequence: Int

    enum CodingKeys: String, CodingKey {
        case parameters
        case flopsPer128TokenSequence = "flops_per_128_token_sequence"
    }

    public init(config: BertConfig, hasPooler: Bool, mlmHead: MLMHeadKind, classifierLabels: Int = 0) {
        parameters = config.parameterCount(hasPooler: hasPooler, mlmHead: mlmHead, classifierLabels: classifierLabels)
        flopsPer128TokenSequence = FlopReport(config: config, batchSize: 1, sequenceLength: Self.flopSequenceLength).total.total
    }

    public init(_ model: BertModel) {
        let head: MLMHeadKind = model.weights.mlmHead.map { $0.isTied ? .tied : .untied } ?? .none
        self.init(config: model.config, hasPooler: model.weights.pooler != nil, mlmHead: head,
                  classifierLabels: model.weights.classifier?.outFeatures ?? 0)
    }
}

extension BertConfig {
    /// Parameters of a model of this shape (`ModelSize` says what counts).
    /// `classifierLabels`: the classifier's outputs, 0 without one.
    public func parameterCount(hasPooler: Bool, mlmHead: MLMHeadKind, classifierLabels: Int = 0) -> Int {
        let d = hiddenSize
        var n = (vocabSize + maxPositionEmbeddings + typeVocabSize) * d + 2 * d
        for l in 0..<numHiddenLayers {
            let s = layer(l), a = s.attentionWidth, f = s.intermediateSize
            n += 3 * (a * d + a) + (d * a + d) + 2 * d  // Q, K, V; attention output; its LayerNorm
            n += (f * d + f) + (d * f + d) + 2 * d      // FFN in, out; its LayerNorm
        }
        if hasPooler { n += d * d + d }
        n += classifierLabels * d + classifierLabels
        switch mlmHead {
        case .none: break
        case .tied: n += d * d + d + 2 * d + vocabSize
        case .untied: n += d * d + d + 2 * d + vocabSize + vocabSize * d
        }
        return n
    }
}
