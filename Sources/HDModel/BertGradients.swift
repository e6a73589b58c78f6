import HDTensor

/// Gradient views of one linear layer: `weight` [out × in] as the weight, `bias` [out].
public struct LinearGradients {
    public let weight: UnsafeMutableBufferPointer<Float>
    public let bias: UnsafeMutableBufferPointer<Float>
}

public struct LayerNormGradients {
    public let gamma: UnsafeMutableBufferPointer<Float>
    public let beta: UnsafeMutableBufferPointer<Float>
}

public struct BertEmbeddingsGradients {
    public let word: UnsafeMutableBufferPointer<Float>
    public let position: UnsafeMutableBufferPointer<Float>
    public let tokenType: UnsafeMutableBufferPointer<Float>
    public let layerNorm: LayerNormGradients
}

public struct BertAttentionGradients {
    public let query: LinearGradients
    public let key: LinearGradients
    public let value: LinearGradients
    public let output: LinearGradients
    public let outputLayerNorm: LayerNormGradients
}

public struct BertLayerGradients {
    public let attention: BertAttentionGradients
    public let intermediate: LinearGradients
    public let output: LinearGradients
    public let outputLayerNorm: LayerNormGradients
}

public struct BertMLMHeadGradients {
    public let transform: LinearGradients
    public let transformLayerNorm: LayerNormGradients
    /// The word embeddings' gradient when the decoder is tied: both uses add into one tensor.
    public let decoder: UnsafeMutableBufferPointer<Float>
    public let bias: UnsafeMutableBufferPointer<Float>
}

/// dL/dθ for every trainable tensor, in ONE allocation laid out exactly like `BertParameters.flat`
/// (same `BertParameterLayout`), so `flat` pairs element for element with the parameters for an
/// optimiser, and the named views mirror `BertWeights` for the backward. The backward ADDS into
/// these; call `zero()` at the start of each optimiser step (not of each micro-batch, so
/// `--accumulate` sums micro-batches for free).
public final class BertGradients {
    public let layout: BertParameterLayout
    public let storage: FlatFloats
    public let embeddings: BertEmbeddingsGradients
    public let layers: [BertLayerGradients]
    public let mlmHead: BertMLMHeadGradients?
    /// A sequence classifier's pooler and classifier, when the layout trains them.
    public let pooler: LinearGradients?
    public let classifier: LinearGradients?

    public init(layout: BertParameterLayout) throws {
        self.layout = layout
        let storage = FlatFloats(count: layout.count)
        self.storage = storage
        func view(_ name: String) throws -> UnsafeMutableBufferPointer<Float> {
            guard let e = layout.entry(name) else {
                throw ModelError(.missingTensor, file: "<gradients>", "parameter layout has no tensor \(name)")
            }
            return storage[e]
        }
        func linear(_ w: String, _ b: String) throws -> LinearGradients { LinearGradients(weight: try view(w), bias: try view(b)) }
        func norm(_ g: String, _ b: String) throws -> LayerNormGradients { LayerNormGradients(gamma: try view(g), beta: try view(b)) }

        let word = try view(BertNames.wordEmbeddings)
        embeddings = BertEmbeddingsGradients(
            word: word, position: try view(BertNames.positionEmbeddings), tokenType: try view(BertNames.tokenTypeEmbeddings),
            layerNorm: try norm(BertNames.embeddingsLayerNormWeight, BertNames.embeddingsLayerNormBias))
        layers = try (0..<layout.config.numHiddenLayers).map { i in
            let n = BertNames.layer(i)
            return BertLayerGradients(
                attention: BertAttentionGradients(
                    query: try linear(n.queryWeight, n.queryBias), key: try linear(n.keyWeight, n.keyBias),
                    value: try linear(n.valueWeight, n.valueBias),
                    output: try linear(n.attentionOutputWeight, n.attentionOutputBias),
                    outputLayerNorm: try norm(n.attentionLayerNormWeight, n.attentionLayerNormBias)),
                intermediate: try linear(n.intermediateWeight, n.intermediateBias),
                output: try linear(n.outputWeight, n.outputBias),
                outputLayerNorm: try norm(n.outputLayerNormWeight, n.outputLayerNormBias))
        }
        mlmHead = layout.hasMLMHead
            ? BertMLMHeadGradients(transform: try linear(BertNames.mlmTransformWeight, BertNames.mlmTransformBias),
                                   transformLayerNorm: try norm(BertNames.mlmLayerNormWeight, BertNames.mlmLayerNormBias),
                                   decoder: layout.isTied ? word : try view(BertNames.mlmDecoderWeight),
                                   bias: try view(BertNames.mlmBias))
            : nil
        pooler = layout.hasClassifier ? try linear(BertNames.poolerWeight, BertNames.poolerBias) : nil
        classifier = layout.hasClassifier ? try linear(BertNames.classifierWeight, BertNames.classifierBias) : nil
    }

    /// Every gradient float, in layout order (alignment gaps stay zero).
    public var flat: UnsafeMutableBufferPointer<Float> { storage.buffer }

    /// The gradient of tensor `name`, or nil when it is not trainable.
    public subscript(name: String) -> UnsafeMutableBufferPointer<Float>? { layout.entry(name).map { storage[$0] } }

    public func zero() { ParallelFor.zero(storage.buffer) }
}
