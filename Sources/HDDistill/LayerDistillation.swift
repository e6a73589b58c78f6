import HDTraining
import HDFormats
import HDModel
import HDTensor

/// The three per-layer distillation terms of DESIGN.md §4, unweighted (α not applied), each summed
/// over the student's layers: Σ_k MSE(H_s^k, H_t^m(k) W_h^kᵀ) over the layers' outputs, Σ_k
/// MSE(A_s^k, A_t^m(k)) over the attention probabilities, and MSE(E_s, E_t W_eᵀ) over the embeddings'
/// output; m(k) = k, or the teacher layer of a layer-dropping run (`TrainerOptions.teacherLayers`).
public struct LayerTerms: Sendable, Equatable {
    public var hidden: Double
    public var attention: Double
    public var embedding: Double

    public init(hidden: Double = 0, attention: Double = 0, embedding: Double = 0) {
        self.hidden = hidden
        self.attention = attention
        self.embedding = embedding
    }

    static func + (a: LayerTerms, b: LayerTerms) -> LayerTerms {
        LayerTerms(hidden: a.hidden + b.hidden, attention: a.attention + b.attention, embedding: a.embedding + b.embedding)
    }

    static func * (a: LayerTerms, k: Double) -> LayerTerms {
        LayerTerms(hidden: a.hidden * k, attention: a.attention * k, embedding: a.embedding * k)
    }
}

/// The hidden-state, attention and embedding distillation losses with their learnable projections.
/// Projections (W_e for the embeddings' output, W_h^i for student layer i's output; d × d, nn.Linear layout,
/// identity at step 0) live in one flat buffer beside their gradients and Adam moments, exist only for
/// the terms whose α is positive, and are named as in `student.ckpt` (`hd.proj.embeddings`,
/// `hd.proj.hidden.<i>`). The [T × d] scratch for the projected teacher states is sized once.
final class LayerDistillation {
    let alphaHidden: Float, alphaAttention: Float, alphaEmbedding: Float
    let width: Int
    /// The products' precision: the run's `--matmul`, as the models'.
    let precision: GEMMPrecision
    /// Projection names (after `hd.proj.`) in buffer order, and the student's and the teacher's
    /// hidden-state index each one maps (0 the embeddings' output, l + 1 layer l's).
    let names: [String]
    private let hiddenIndex: [Int], teacherHiddenIndex: [Int]
    /// The teacher layer of each student layer.
    private let teacherLayers: [Int]
    let weights: FlatFloats, gradients: FlatFloats, m: FlatFloats, v: FlatFloats
    private let projected: FlatFloats

    static let embeddingName = "embeddings"
    static func hiddenName(layer: Int) -> String { "hidden.\(layer)" }

    /// nil when no layer term has a positive weight (KL + MLM only). `config` is the student's.
    init?(options: TrainerOptions, config: BertConfig, tokens: Int) {
        guard options.distillsLayers else { return nil }
        alphaHidden = options.alphaHidden
        alphaAttention = options.alphaAttention
        alphaEmbedding = options.alphaEmbedding
        precision = options.matmul
        width = config.hiddenSize
        teacherLayers = options.teacherLayers ?? Array(0..<config.numHiddenLayers)
        var names: [String] = [], index: [Int] = [], teacherIndex: [Int] = []
        if alphaEmbedding > 0 { names.append(Self.embeddingName); index.append(0); teacherIndex.append(0) }
        if alphaHidden > 0 {
            for layer in 0..<config.numHiddenLayers {
                names.append(Self.hiddenName(layer: layer))
                index.append(layer + 1)
                teacherIndex.append(teacherLayers[layer] + 1)
            }
        }
        self.names = names
        hiddenIndex = index
        teacherHiddenIndex = teacherIndex
        let count = names.count * width * width
        weights = FlatFloats(count: count)
        gradients = FlatFloats(count: count)
        m = FlatFloats(count: count)
        v = FlatFloats(count: count)
        projected = FlatFloats(count: tokens * width)
        for p in names.indices {
            for i in 0..<width { weights.buffer[p * width * width + i * width + i] = 1 }
        }
    }

    var needsAttentionGradients: Bool { alphaAttention > 0 }

    /// Projection `p`'s d × d floats in `buffer`.
    func slice(_ buffer: FlatFloats, _ p: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(rebasing: buffer.buffer[(p * width * width)..<((p + 1) * width * width)])
    }

    /// The terms over the first `sequences` sequences of the batch in `student`/`teacher` (a short last
    /// evaluation batch counts only its real sequences). With `buffers`, adds `weight · α ·` each
    /// term's gradient into the student's injection slots and into the projections' gradients.
    /// `keep` is the hidden dimensions' keep mask (1 kept, 0 pruned; nil keeps all), so a pruned
    /// dimension neither counts in the hidden and embedding MSE nor gets a gradient from them.
    func terms(student: BertActivations, teacher: BertActivations, sequences: Int, keep: UnsafeBufferPointer<Float>?,
               buffers: BertBackwardBuffers? = nil, weight: Float = 1) -> LayerTerms {
        let L = student.sequenceLength, d = width
        let tokens = sequences * L
        var result = LayerTerms()
        for (p, (k, t)) in zip(hiddenIndex, teacherHiddenIndex).enumerated() {
            let alpha = k == 0 ? alphaEmbedding : alphaHidden
            let loss = Losses.projectedMSE(
                student: prefix(student.hiddenState(k), tokens * d), teacher: prefix(teacher.hiddenState(t), tokens * d),
                projection: UnsafeBufferPointer(slice(weights, p)), width: d, keep: keep,
                projected: UnsafeMutableBufferPointer(rebasing: projected.buffer[0..<(tokens * d)]),
                studentGradient: buffers.map { UnsafeMutableBufferPointer(rebasing: $0.hiddenStateGradient(k)[0..<(tokens * d)]) },
                projectionGradient: buffers == nil ? nil : slice(gradients, p), scale: alpha * weight, precision: precision)
            if k == 0 { result.embedding = loss } else { result.hidden += loss }
        }
        if alphaAttention > 0 {
            for (i, slots) in student.layers.enumerated() {
                let probs = student[slots.probabilities]
                let count = probs.count / student.batchSize * sequences
                result.attention += Losses.meanSquaredError(
                    student: prefix(probs, count), target: prefix(teacher[teacher.layers[teacherLayers[i]].probabilities], count), rowLength: L,
                    studentGradient: buffers?.attentionGradient(i).map { UnsafeMutableBufferPointer(rebasing: $0[0..<count]) },
                    scale: alphaAttention * weight)
            }
        }
        return result
    }

    /// One AdamW update of every projection. No weight decay: it would pull an identity-initialised
    /// alignment map towards zero, which is not a regulariser of the student.
    func update(_ adam: AdamW, step: Int, learningRate: Float) {
        for p in names.indices {
            adam.update(parameters: slice(weights, p), gradients: UnsafeBufferPointer(slice(gradients, p)),
                        m: slice(m, p), v: slice(v, p), step: step, learningRate: learningRate, decay: false)
        }
    }

    /// Projections and moments as `student.ckpt` tensors, keyed as `TrainingCheckpoint` keys them.
    func tensors() -> (projections: [String: Tensor], adamM: [String: Tensor], adamV: [String: Tensor]) {
        var projections: [String: Tensor] = [:], adamM: [String: Tensor] = [:], adamV: [String: Tensor] = [:]
        for (p, name) in names.enumerated() {
            let key = StudentCheckpoint.Prefix.projection + name
            projections[name] = Tensor(shape: [width, width], floats: Array(slice(weights, p)))
            adamM[key] = Tensor(shape: [width, width], floats: Array(slice(m, p)))
            adamV[key] = Tensor(shape: [width, width], floats: Array(slice(v, p)))
        }
        return (projections, adamM, adamV)
    }

    /// Takes the projections and their moments from a checkpoint, which must hold exactly the ones
    /// this recipe trains (the reader already checked shapes, finiteness and moment pairing).
    func restore(from checkpoint: TrainingCheckpoint) throws {
        let expected = Set(names), found = Set(checkpoint.projections.keys)
        guard expected == found else {
            throw DistillError(.badMetadata, file: "<resume>",
                "resume: expected the projections \(names.map { "hd.proj." + $0 }) of this recipe, found \(found.sorted().map { "hd.proj." + $0 })")
        }
        for (p, name) in names.enumerated() {
            let key = StudentCheckpoint.Prefix.projection + name
            for (tensor, buffer) in [(checkpoint.projections[name], weights), (checkpoint.adamM[key], m), (checkpoint.adamV[key], v)] {
                guard let floats = tensor?.floats, floats.count == width * width else {
                    throw DistillError(.missingTensor, file: "<resume>", "resume: expected \(width * width) floats for \(key) and its moments")
                }
                _ = slice(buffer, p).update(fromContentsOf: floats.buffer)
            }
        }
    }

    private func prefix(_ buffer: UnsafeMutableBufferPointer<Float>, _ count: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(rebasing: buffer[0..<count])
    }
}
