import HDFormats
import HDModel
import HDTensor

extension RuntimeModel {
    /// A model of `config`'s shape with random weights (uniform in ±0.05, LayerNorm γ = 1, β = 0), for
    /// timing shapes no file holds (HomoBERT-base 576/2304, -small 256/1024). Built layer by layer
    /// straight into the runtime's layout (dense layers in `precision` on `instructions`, nil for
    /// the precision's default), so memory holds each weight once. Same seed, same weights.
    public static func synthetic(config: BertConfig, seed: UInt64 = 0x5EED, kernel: GEMMKernel = .best,
                                 precision: Precision = .fp32, instructions: MatrixInstructions? = nil) throws -> RuntimeModel {
        try config.validate(source: "<synthetic>")
        let instructions = instructions ?? precision.defaultInstructions()
        try precision.check(kernel: kernel, instructions: instructions)
        var rng = SplitMix64(seed: seed)
        let d = config.hiddenSize
        func random(_ count: Int) -> FloatStorage {
            FloatStorage(count: count) { out in
                for i in out.indices { out[i] = rng.nextUnitFloat() * 0.1 - 0.05 }
            }
        }
        func constant(_ count: Int, _ value: Float) -> FloatStorage {
            FloatStorage(count: count) { $0.initialize(repeating: value) }
        }
        // Packed layers are drawn row-major into one scratch matrix, then packed from it: the same
        // weights as the row-major layout, without a freed matrix per layer left in the heap.
        let largest = (0..<config.numHiddenLayers).map { config.layer($0) }
            .map { max(3 * $0.attentionWidth * d, $0.intermediateSize * d) }.max() ?? 0
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: kernel == .packed ? largest : 0)
        defer { scratch.deallocate() }
        func dense(_ out: Int, _ inputs: Int) -> DenseWeights {
            guard kernel == .packed else {
                return DenseWeights(rowMajor: random(out * inputs), bias: random(out), outFeatures: out, inFeatures: inputs, kernel: kernel)
            }
            let base = scratch.baseAddress!
            for i in 0..<(out * inputs) { base[i] = rng.nextUnitFloat() * 0.1 - 0.05 }
            return .packed(rows: (0..<out).map { UnsafePointer(base + $0 * inputs) }, bias: random(out), inFeatures: inputs,
                           precision: precision, instructions: instructions)
        }
        func norm() -> NormWeights { NormWeights(gamma: constant(d, 1), beta: constant(d, 0)) }
        let layers = (0..<config.numHiddenLayers).map { i -> RuntimeLayer in
            let s = config.layer(i), a = s.attentionWidth
            return RuntimeLayer(shape: s, scale: config.attentionScale(layer: i), qkv: dense(3 * a, d),
                                attentionOutput: dense(d, a), attentionNorm: norm(),
                                intermediate: dense(s.intermediateSize, d), output: dense(d, s.intermediateSize),
                                outputNorm: norm())
        }
        return RuntimeModel(config: config, wordEmbeddings: random(config.vocabSize * d),
                            positionEmbeddings: random(config.maxPositionEmbeddings * d),
                            tokenTypeEmbeddings: random(config.typeVocabSize * d), embeddingsNorm: norm(),
                            layers: layers, mlmHead: nil)
    }
}
