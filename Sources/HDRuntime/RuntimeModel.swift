import Foundation
import HDFormats
import HDModel
import HDTensor

/// y = x · Wᵀ + b with W `[outFeatures, inFeatures]` (Hugging Face's layout), stored as `kernel`
/// reads it: row-major for OpenBLAS, in panels for the packed kernel (see `GEMMKernel`), in
/// `precision`'s panels for the int8 and bf16 kernels (`weight` then holds their bytes).
public struct DenseWeights: Sendable {
    public let weight: FloatStorage
    public let bias: FloatStorage
    public let outFeatures: Int
    public let inFeatures: Int
    public let kernel: GEMMKernel
    public var precision: Precision = .fp32
    /// What the int8 and bf16 kernels multiply with (`.avx512` in fp32).
    public var instructions: MatrixInstructions = .avx512
}

public struct NormWeights: Sendable {
    public let gamma: FloatStorage
    public let beta: FloatStorage
}

/// One encoder layer as the runtime runs it: Q, K and V stacked into one `[3a, d]` matrix (rows
/// 0..<a are Q, then K, then V) so the three projections are one GEMM that reads the input once.
public struct RuntimeLayer: Sendable {
    public let shape: LayerShape
    public let scale: Float
    public let qkv: DenseWeights
    public let attentionOutput: DenseWeights
    public let attentionNorm: NormWeights
    public let intermediate: DenseWeights
    public let output: DenseWeights
    public let outputNorm: NormWeights
}

/// The MLM head: transform dense + GELU + LayerNorm, then the decoder `[vocab, d]` and its bias.
public struct RuntimeMLMHead: Sendable {
    public let transform: DenseWeights
    public let norm: NormWeights
    public let decoder: FloatStorage
    public let bias: FloatStorage
}

/// `BertForSequenceClassification`'s head: the pooler (dense + tanh on the [CLS] state) and the
/// classifier `[labels, d]`. Both stay fp32 row-major through OpenBLAS whatever the encoder's
/// precision: they read one row per sequence (a few thousand multiply-adds), so neither packing
/// nor low precision would buy anything, and the logits keep f32 accuracy after an int8 encoder.
public struct RuntimeClassifierHead: Sendable {
    public let pooler: DenseWeights
    public let classifier: DenseWeights
    /// Label names in id order (the config's `id2label`).
    public let labels: [String]
    /// A regression head (one output, no softmax): `BertConfig.isRegression`.
    public let isRegression: Bool
}

/// Dense BERT weights laid out for the runtime. Everything but the stacked Q/K/V is shared with the
/// source model (zero copy when that came from a mapped file).
public final class RuntimeModel: Sendable {
    public let config: BertConfig
    public let wordEmbeddings: FloatStorage
    public let positionEmbeddings: FloatStorage
    public let tokenTypeEmbeddings: FloatStorage
    public let embeddingsNorm: NormWeights
    public let layers: [RuntimeLayer]
    public let mlmHead: RuntimeMLMHead?
    /// The sequence classifier's pooler and linear, when the model is one.
    public let classifierHead: RuntimeClassifierHead?
    /// The model's size as every tool counts it (`ModelSize`): that of the model it was built from,
    /// pooler included (the runtime runs it only in a classifier head).
    public let size: ModelSize

    /// `size` defaults to a model of `config` with these weights and no pooler.
    public init(config: BertConfig, wordEmbeddings: FloatStorage, positionEmbeddings: FloatStorage,
                tokenTypeEmbeddings: FloatStorage, embeddingsNorm: NormWeights, layers: [RuntimeLayer],
                mlmHead: RuntimeMLMHead?, classifierHead: RuntimeClassifierHead? = nil, size: ModelSize? = nil) {
        self.size = size ?? ModelSize(config: config, hasPooler: false,
                                      mlmHead: mlmHead.map { $0.decoder === wordEmbeddings ? .tied : .untied } ?? .none)
        self.config = config
        self.wordEmbeddings = wordEmbeddings
        self.positionEmbeddings = positionEmbeddings
        self.tokenTypeEmbeddings = tokenTypeEmbeddings
        self.embeddingsNorm = embeddingsNorm
        self.layers = layers
        self.mlmHead = mlmHead
        self.classifierHead = classifierHead
    }

    /// `init(model:kernel:precision:instructions:)` in fp32, which every CPU the kernel runs on can do.
    public convenience init(model: BertModel, kernel: GEMMKernel = .best) {
        try! self.init(model: model, kernel: kernel, precision: .fp32)
    }

    /// Builds the runtime's layout from a validated model, with every encoder dense layer laid out
    /// for `kernel` in `precision` on `instructions` (nil: `precision.defaultInstructions()`; the MLM
    /// head's transform and the classifier head stay fp32); throws `ModelError(.unsupported)` when
    /// this CPU lacks them. Q, K and V are
    /// copied into one stacked matrix per layer; weights borrowed from a mapped file have their
    /// pages handed back to the kernel right after they are copied or packed (the file still backs
    /// them), so resident memory holds each matrix once rather than twice.
    public convenience init(model: BertModel, kernel: GEMMKernel = .best, precision: Precision,
                            instructions: MatrixInstructions? = nil) throws {
        let instructions = instructions ?? precision.defaultInstructions()
        try precision.check(kernel: kernel, instructions: instructions)
        let w = model.weights
        let layers = w.layers.indices.map { i -> RuntimeLayer in
            let l = w.layers[i], a = l.attention
            let parts = [a.query, a.key, a.value], bias = RuntimeModel.stack(parts.map(\.bias))
            let qkv: DenseWeights
            if kernel == .packed {
                let rows = parts.flatMap { p in (0..<p.outFeatures).map { p.weight.buffer.baseAddress! + $0 * p.inFeatures } }
                qkv = .packed(rows: rows, bias: bias, inFeatures: a.query.inFeatures, precision: precision,
                              instructions: instructions)
            } else {
                qkv = DenseWeights(rowMajor: RuntimeModel.stack(parts.map(\.weight)), bias: bias,
                                   outFeatures: 3 * a.query.outFeatures, inFeatures: a.query.inFeatures, kernel: .openBLAS)
            }
            parts.forEach { RuntimeModel.releasePages($0.weight) }
            return RuntimeLayer(
                shape: model.config.layer(i), scale: model.config.attentionScale(layer: i), qkv: qkv,
                attentionOutput: DenseWeights(a.output, kernel, precision, instructions),
                attentionNorm: NormWeights(a.outputLayerNorm),
                intermediate: DenseWeights(l.intermediate, kernel, precision, instructions),
                output: DenseWeights(l.output, kernel, precision, instructions),
                outputNorm: NormWeights(l.outputLayerNorm))
        }
        let head = w.mlmHead.map {
            RuntimeMLMHead(transform: DenseWeights($0.transform, kernel, .fp32, .avx512), norm: NormWeights($0.transformLayerNorm),
                           decoder: $0.decoder, bias: $0.bias)
        }
        var classifierHead: RuntimeClassifierHead?
        if let pooler = w.pooler, let classifier = w.classifier, let labels = model.config.id2label {
            // Row-major, borrowed from the model as it is (no copy, no packing): see RuntimeClassifierHead.
            classifierHead = RuntimeClassifierHead(pooler: DenseWeights(pooler, .openBLAS, .fp32, .avx512),
                                                   classifier: DenseWeights(classifier, .openBLAS, .fp32, .avx512),
                                                   labels: labels, isRegression: model.config.isRegression)
        }
        let e = w.embeddings
        self.init(config: model.config, wordEmbeddings: e.word, positionEmbeddings: e.position,
                  tokenTypeEmbeddings: e.tokenType, embeddingsNorm: NormWeights(e.layerNorm), layers: layers, mlmHead: head,
                  classifierHead: classifierHead, size: ModelSize(model))
    }

    /// The precision of the encoder's dense layers.
    public var precision: Precision { layers.first?.qkv.precision ?? .fp32 }

    /// What the encoder's int8 or bf16 dense layers multiply with.
    public var instructions: MatrixInstructions { layers.first?.qkv.instructions ?? .avx512 }

    static func stack(_ parts: [FloatStorage]) -> FloatStorage {
        FloatStorage(count: parts.reduce(0) { $0 + $1.count }) { out in
            var offset = 0
            for p in parts {
                (out.baseAddress! + offset).update(from: p.buffer.baseAddress!, count: p.count)
                offset += p.count
            }
        }
    }

    /// Hands back the pages of a borrowed buffer (a mapped file, or an inflated archive member)
    /// once the runtime has its own copy (`ResidentPages`); memory this process owns stays.
    static func releasePages(_ storage: FloatStorage) {
        guard storage.isBorrowed else { return }
        ResidentPages.release(UnsafeRawBufferPointer(storage.buffer))
    }
}

extension DenseWeights {
    init(_ w: LinearWeights, _ kernel: GEMMKernel, _ precision: Precision, _ instructions: MatrixInstructions) {
        self.init(rowMajor: w.weight, bias: w.bias, outFeatures: w.outFeatures, inFeatures: w.inFeatures, kernel: kernel,
                  precision: precision, instructions: instructions)
    }
}

extension NormWeights {
    init(_ w: LayerNormWeights) { self.init(gamma: w.gamma, beta: w.beta) }
}
