import HDTraining
import HDFormats
import HDModel
import HDTensor

/// Losses and figures of one optimiser step.
public struct StepReport: Sendable {
    public var step: Int
    public var learningRate: Float
    /// Mean over the step's micro-batches, unweighted (α not applied), so runs with different weights
    /// compare; nil when the teacher has no MLM head (no MLM term).
    public var mlm: Double?
    /// KL to the teacher: on the MLM logits, or on the class logits in task-specific distillation.
    public var kl: Double?
    /// Hidden, attention and embedding MSE terms (unweighted, each summed over its layers); nil
    /// without a teacher or with every layer weight 0 (`--no-distill-layers`).
    public var layers: LayerTerms?
    /// The self-distilled recipe's cross-correlation term (unweighted), when it is on.
    public var crossCorrelation: Double?
    /// 1 − cosine of the pooled sentence embeddings (unweighted), when `alphaPooled` > 0.
    public var pooled: Double?
    /// The weighted objective that was differentiated.
    public var total: Double
    /// Global gradient norm before clipping (the student's and the projections' gradients together).
    public var gradientNorm: Double
    public var tokens: Int
    /// The pruned student's widths after this step, when pruning.
    public var size: StudentSize?
    /// Time spent in the pruner this step (importance, mask update, zeroing), when pruning: the
    /// overhead that pruning adds to a distillation step.
    public var pruneSeconds: Double?
}

/// A masked student's widths and size as the dense model it equals (per-layer maxima; the schedule
/// keeps every layer at the same widths).
public struct StudentSize: Sendable, Equatable {
    public var hidden: Int
    public var ffn: Int
    public var headSize: Int
    /// Parameters and FLOPs per 128-token sequence of the dense model it equals (the one count).
    public var size: ModelSize
}

public struct EvalReport: Sendable {
    public var step: Int
    /// Held-out MLM loss and top-1 accuracy (a teacher with an MLM head, or none).
    public var mlm: Double?
    public var accuracy: Double?
    public var kl: Double?
    public var layers: LayerTerms?
    /// Mean cosine between the student's and the teacher's pooled sentence embeddings (headless teachers).
    public var pooledCosine: Double?
    /// Task-specific distillation: the student's and the teacher's accuracy on the task's dev labels.
    public var taskAccuracy: Double?
    public var teacherTaskAccuracy: Double?
    public var sequences: Int
}

/// What the teacher's outputs are, which decides the loss terms and the batches.
public enum TeacherHead: String, Sendable {
    /// A masked-LM head (or no teacher: MLM alone): masked batches, MLM + KL on the MLM logits.
    case mlm
    /// An encoder without a head (a sentence-transformers model): unmasked text, layer terms and the
    /// pooled-embedding cosine; no MLM, no KL.
    case none
    /// A sequence classifier: a task's texts, KL on the class logits, layer terms; no MLM.
    case classifier
}

/// Distillation (and MLM training without a teacher): L = αmlm·CE + α1·τ²·KL at the masked positions
/// + α2·Σ hidden MSE + α3·Σ attention MSE + α4·embedding MSE (`LayerDistillation`) + αpooled·(1 − cos)
/// of pooled sentence embeddings (`PooledCosineLoss`) + αcc·cross-correlation of the final hidden
/// states (self-distilled pruning), with the terms the teacher's head allows (`TeacherHead`: for a
/// classifier, KL on its class logits instead of the MLM ones), and structured pruning of the student
/// on a schedule when the recipe prunes (`Pruner`). Parameters, gradients and both Adam moments are
/// flat buffers in `BertParameterLayout` order; every activation buffer is sized once for (batch,
/// sequence length).
public final class Trainer {
    public let options: TrainerOptions
    /// The sequences batches come from: a corpus, or a task's examples (`--task`).
    public let data: any DistillationData
    public let teacherHead: TeacherHead
    public let masking: MLMMasking
    public let parameters: BertParameters
    public let teacher: BertModel?
    public let teacherSHA256: String?
    public let vocab: [String]?
    /// The tokenizer's casing, recorded in the checkpoint for the tools that run the student.
    public let lowercase: Bool?
    /// Whether a classifier teacher's task has text pairs, recorded in the checkpoint (`hd.task.pairs`).
    public let taskPairs: Bool?
    public private(set) var step: Int
    public private(set) var order: DataOrder
    public private(set) var rng: Xoshiro256

    private let gradients: BertGradients
    private let m: FlatFloats, v: FlatFloats
    private let adam: AdamW
    private let schedule: LRSchedule
    let activations: BertActivations, buffers: BertBackwardBuffers
    /// The MLM heads' activations (teacher head `.mlm`), the classifiers' (`.classifier`).
    let mlm: BertMLMActivations?, classifier: BertClassifierActivations?
    let teacherActivations: BertActivations?, teacherMLM: BertMLMActivations?
    let teacherClassifier: BertClassifierActivations?
    /// The hidden/attention/embedding terms and their projections; nil for MLM + KL only.
    let layerDistillation: LayerDistillation?
    /// Structured pruning (HomoDistil or self-distilled), when the recipe prunes.
    public let pruner: Pruner?
    /// The student over `parameters`, with the pruner's masks (LayerNorms over kept dims).
    let model: BertModel

    /// A fresh run from `student`'s weights (`restore(from:file:)` then continues a checkpoint).
    /// The teacher's head (`TeacherHead`) decides the terms: with an MLM head (or no teacher) the
    /// student needs one too; without, `alphaMLM` and `alphaKL` must be 0; with a classifier, the
    /// student needs the same labels, `alphaMLM` must be 0 and `data` must be the task's.
    public init(student: BertModel, teacher: BertModel?, teacherSHA256: String?, vocab: [String]?, lowercase: Bool? = nil, taskPairs: Bool? = nil,
                data: any DistillationData, options: TrainerOptions) throws {
        try options.validate()
        let arg = "<argument>"
        let config = student.config
        let head: TeacherHead = teacher.map { $0.weights.classifier != nil ? .classifier : $0.weights.mlmHead != nil ? .mlm : .none } ?? .mlm
        func refuse(_ flag: String, _ value: Float, _ why: String) throws {
            guard value == 0 else {
                throw DistillError(.invalidArgument, file: arg, field: flag, "\(flag) \(value): \(why); set it to 0 or drop it")
            }
        }
        switch head {
        case .mlm:
            guard student.weights.mlmHead != nil else {
                throw DistillError(.invalidArgument, file: arg, "student: expected a model with an MLM head (cls.predictions.*), found none")
            }
        case .none:
            try refuse("--alpha-mlm", options.alphaMLM, "the teacher has no MLM head, so there is no masked-LM term")
            try refuse("--alpha-kl", options.alphaKL, "the teacher has no MLM head, so there are no logits to match")
        case .classifier:
            try refuse("--alpha-mlm", options.alphaMLM, "task-specific distillation has no masked-LM term")
            guard student.weights.classifier != nil, student.config.id2label == teacher?.config.id2label else {
                throw DistillError(.invalidArgument, file: arg,
                    "student: expected the teacher's classifier (labels \(teacher?.config.id2label ?? [])), found \(student.config.id2label.map { "labels \($0)" } ?? "none")")
            }
            guard data.sequenceCount(.heldOut) == 0 || data.heldOutLabel(0) != nil else {
                throw DistillError(.invalidArgument, file: data.origin, "task-specific distillation needs the task's labelled examples (--task), not plain text")
            }
        }
        if options.alphaPooled > 0, teacher == nil {
            throw DistillError(.invalidArgument, file: arg, field: "--alpha-pooled", "--alpha-pooled needs a teacher")
        }
        guard data.vocabularySize == config.vocabSize else {
            throw DistillError(.invalidArgument, file: arg,
                "corpus/student vocabulary mismatch: the corpus was tokenised with \(data.vocabularySize) tokens, the student has \(config.vocabSize)")
        }
        if let teacher {
            guard teacher.config.vocabSize == config.vocabSize else {
                throw DistillError(.invalidArgument, file: arg,
                    "teacher/student vocabulary mismatch: teacher has \(teacher.config.vocabSize) tokens, student \(config.vocabSize)")
            }
            try Self.checkLayerMap(options.teacherLayers, student: config, teacher: teacher.config)
        } else if let layers = options.teacherLayers {
            throw DistillError(.invalidArgument, file: arg, field: "--keep-layers",
                "--keep-layers \(LayerDropping.text(layers)): maps student layers onto a teacher's, and this run has none (--mlm-only?)")
        }
        guard data.sequenceLength <= config.maxPositionEmbeddings else {
            throw DistillError(.invalidArgument, file: arg,
                "sequence length \(data.sequenceLength) is over the model's \(config.maxPositionEmbeddings) positions")
        }
        self.options = options
        self.data = data
        teacherHead = head
        self.teacher = teacher.map { var teacher = $0; teacher.productPrecision = options.matmul; return teacher }
        self.teacherSHA256 = teacherSHA256
        self.vocab = vocab
        self.lowercase = lowercase
        self.taskPairs = taskPairs
        masking = try MLMMasking(specialIDs: data.specialIDs, vocabularySize: config.vocabSize)
        adam = AdamW(weightDecay: Double(options.weightDecay))
        schedule = try LRSchedule(peak: options.learningRate, warmupSteps: options.warmupSteps, totalSteps: options.steps)

        let parameters = try BertParameters(copying: student)
        let pruner = try options.prune.map { try Pruner(options: $0, layout: parameters.layout) }
        self.parameters = parameters
        self.pruner = pruner
        var model = try BertModel(config: config, weights: parameters.model.weights, masks: pruner?.masks)
        model.productPrecision = options.matmul
        self.model = model
        gradients = try BertGradients(layout: parameters.layout)
        m = FlatFloats(count: parameters.layout.count)
        v = FlatFloats(count: parameters.layout.count)
        let (B, L) = (options.batchSize, data.sequenceLength)
        let rows = B * masking.labelsPerSequence(L)
        activations = try BertActivations(config: config, batchSize: B, sequenceLength: L)
        mlm = head == .mlm ? try BertMLMActivations(config: config, maxRows: rows) : nil
        let labels = config.id2label?.count ?? 0
        classifier = head == .classifier ? try BertClassifierActivations(config: config, batchSize: B, labels: labels) : nil
        layerDistillation = teacher == nil ? nil : LayerDistillation(options: options, config: config, tokens: B * L)
        buffers = try BertBackwardBuffers(config: config, batchSize: B, sequenceLength: L,
                                          attentionGradients: layerDistillation?.needsAttentionGradients ?? false)
        teacherActivations = try teacher.map { try BertActivations(config: $0.config, batchSize: B, sequenceLength: L) }
        teacherMLM = head == .mlm ? try teacher.map { try BertMLMActivations(config: $0.config, maxRows: rows) } : nil
        teacherClassifier = head == .classifier ? try teacher.map { try BertClassifierActivations(config: $0.config, batchSize: B, labels: labels) } : nil

        step = 0
        rng = Xoshiro256(seed: options.seed)
        order = try DataOrder(seed: options.seed, sequenceCount: data.sequenceCount(.train))
    }

    /// Continues `checkpoint` (read from `file`): its weights, Adam moments, step, data order,
    /// generator, masks, importance and projections replace this fresh run's, after checking that
    /// it was written by the same recipe, teacher and data seed on a student of the same shape.
    /// A trainer whose restore threw is half restored: discard it.
    public func restore(from checkpoint: TrainingCheckpoint, file: String) throws {
        guard step == 0 else {
            throw DistillError(.invalidArgument, file: file, "resume: this run has already trained \(step) steps; restore a checkpoint into a fresh trainer")
        }
        let state = checkpoint.state
        // Before the config: a different map usually means a different depth, and this names why.
        guard state.teacherLayers == options.teacherLayers else {
            let described = { (layers: [Int]?) in layers.map { "teacher layers \(LayerDropping.text($0)) (--keep-layers)" } ?? "every teacher layer (no --keep-layers)" }
            throw DistillError(.badMetadata, file: file, field: TrainingState.Key.teacherLayers,
                "resume: metadata \(TrainingState.Key.teacherLayers): the checkpoint's student distils \(described(state.teacherLayers)), this run's \(described(options.teacherLayers))"
                + (state.teacherLayers.map { "; pass --keep-layers \(LayerDropping.text($0))" } ?? "; drop --keep-layers"))
        }
        guard checkpoint.config == model.config else {
            throw DistillError(.invalidArgument, file: file, "resume: the checkpoint's config differs from the student's (another teacher or --init?)")
        }
        guard state.recipe == options.recipe else {
            let keys = Set(state.recipe.keys).union(options.recipe.keys).filter { state.recipe[$0] != options.recipe[$0] }.sorted()
            throw DistillError(.badMetadata, file: file, "resume: the recipe differs in " + keys.map {
                "\($0) (checkpoint \(state.recipe[$0] ?? "unset"), now \(options.recipe[$0] ?? "unset"))" }.joined(separator: ", "))
        }
        try state.checkResume(threads: options.threads, file: file)
        guard state.teacherSHA256 == teacherSHA256 else {
            throw DistillError(.badMetadata, file: file,
                "resume: expected the teacher with sha256 \(state.teacherSHA256 ?? "none"), given \(teacherSHA256 ?? "none")")
        }
        guard let restored = Xoshiro256(state: state.rng), state.dataSeed == options.seed else {
            throw DistillError(.badMetadata, file: file, "resume: generator state or data seed does not match the recipe")
        }
        order = try DataOrder(seed: options.seed, sequenceCount: data.sequenceCount(.train), epoch: state.dataEpoch, position: state.dataPosition)
        step = state.step
        rng = restored
        for entry in parameters.layout.entries {
            guard let weights = checkpoint.weights[entry.name]?.floats, weights.count == entry.count else {
                throw DistillError(.missingTensor, file: file, field: entry.name, "resume: expected \(entry.count) weights of \(entry.name), found none")
            }
            _ = parameters.storage[entry].update(fromContentsOf: weights.buffer)
            for (moments, flat) in [(checkpoint.adamM, m), (checkpoint.adamV, v)] {
                guard let t = moments[entry.name]?.floats, t.count == entry.count else {
                    throw DistillError(.missingTensor, file: file, "resume: no Adam moment of \(entry.count) floats for \(entry.name)")
                }
                _ = flat[entry].update(fromContentsOf: t.buffer)
            }
        }
        if let pruner {
            try pruner.restore(masks: checkpoint.masks, importance: checkpoint.importance,
                               parameters: UnsafeBufferPointer(parameters.flat), file: file)
        } else if !checkpoint.masks.isEmpty || !checkpoint.importance.isEmpty {
            throw DistillError(.badMask, file: file, "resume: expected no pruning masks (this recipe does not prune), found \(checkpoint.masks.count)")
        }
        if let layerDistillation {
            try layerDistillation.restore(from: checkpoint)
        } else if !checkpoint.projections.isEmpty {
            throw DistillError(.badMetadata, file: file,
                "resume: expected no projections (no layer distillation in this recipe), found \(checkpoint.projections.keys.sorted().map { "hd.proj." + $0 })")
        }
    }

    public var isFinished: Bool { step >= options.steps }

    /// One optimiser step over `accumulate` micro-batches: forward, losses (each one's gradient
    /// written where the backward picks it up), backward, global clipping, AdamW. A non-finite loss
    /// or gradient stops the run before the weights change, naming the step and the term.
    public func trainStep() throws -> StepReport {
        try BLAS.withThreads(options.threads) { try optimiserStep() }
    }

    private func optimiserStep() throws -> StepReport {
        gradients.zero()
        layerDistillation?.gradients.buffer.update(repeating: 0)
        var mlmSum = 0.0, klSum = 0.0, ccSum = 0.0, pooledSum = 0.0, layerSum = LayerTerms(), total = 0.0
        let w = 1 / Float(options.accumulate)
        let V = model.config.vocabSize
        for _ in 0..<options.accumulate {
            let batch = masking.trainingBatch(data: data, order: &order, batchSize: options.batchSize, masked: teacherHead == .mlm, rng: &rng)
            let tokens = try run(batch)
            buffers.prepare()
            if let mlm {
                // The cross-entropy writes every dlogits element (so the buffer is not zeroed); the KL adds to it.
                let dLogits = mlm.logitGradients
                let ce = batch.labels.withUnsafeBufferPointer {
                    Losses.crossEntropy(logits: UnsafeBufferPointer(mlm.logits), labels: $0, vocabularySize: V,
                                        gradient: dLogits, overwrite: true, scale: options.alphaMLM * w).loss
                }
                try check(ce, "MLM cross-entropy")
                mlmSum += ce
                total += Double(options.alphaMLM) * ce
                if let teacherMLM {
                    let kl = Losses.klDivergence(teacher: UnsafeBufferPointer(teacherMLM.logits), student: UnsafeBufferPointer(mlm.logits),
                                                 rows: batch.labels.count, vocabularySize: V, temperature: options.temperature,
                                                 gradient: dLogits, scale: options.alphaKL * w)
                    try check(kl, "KL to the teacher")
                    klSum += kl
                    total += Double(options.alphaKL) * kl
                }
            }
            if let classifier, let teacherClassifier {
                classifier.logitGradients.update(repeating: 0)
                let kl = Losses.klDivergence(teacher: UnsafeBufferPointer(teacherClassifier.logits), student: UnsafeBufferPointer(classifier.logits),
                                             rows: batch.batchSize, vocabularySize: classifier.labels, temperature: options.temperature,
                                             gradient: classifier.logitGradients, scale: options.alphaKL * w)
                try check(kl, "KL to the teacher's class probabilities")
                klSum += kl
                total += Double(options.alphaKL) * kl
            }
            if let layerDistillation, let teacherActivations {
                let terms = layerDistillation.terms(student: activations, teacher: teacherActivations, sequences: batch.batchSize,
                                                    keep: hiddenKeep, buffers: buffers, weight: w)
                try check(terms.hidden, "hidden-state MSE")
                try check(terms.attention, "attention MSE")
                try check(terms.embedding, "embedding MSE")
                layerSum = layerSum + terms
                total += Double(options.alphaHidden) * terms.hidden + Double(options.alphaAttention) * terms.attention
                    + Double(options.alphaEmbedding) * terms.embedding
            }
            // The last hidden states of each model (the student may be shallower: `--keep-layers`).
            let last = model.config.numHiddenLayers, teacherLast = teacher?.config.numHiddenLayers ?? last
            if options.alphaPooled > 0, let teacherActivations {
                let pooled = PooledCosineLoss(pooling: options.pooling)(
                    student: UnsafeBufferPointer(activations.hiddenState(last)), teacher: UnsafeBufferPointer(teacherActivations.hiddenState(teacherLast)),
                    batch: batch.batchSize, length: batch.sequenceLength, width: model.config.hiddenSize, attentionMask: batch.attentionMask,
                    keep: hiddenKeep, studentGradient: buffers.hiddenStateGradient(last), scale: options.alphaPooled * w)
                try check(pooled, "pooled-embedding cosine")
                pooledSum += pooled
                total += Double(options.alphaPooled) * pooled
            }
            if options.alphaCrossCorrelation > 0, let teacherActivations {
                let cc = CrossCorrelationLoss(offDiagonalWeight: options.crossCorrelationLambda)(
                    student: UnsafeBufferPointer(activations.hiddenState(last)), teacher: UnsafeBufferPointer(teacherActivations.hiddenState(teacherLast)),
                    width: model.config.hiddenSize, keep: hiddenKeep, studentGradient: buffers.hiddenStateGradient(last),
                    scale: options.alphaCrossCorrelation * w)
                try check(cc, "cross-correlation")
                ccSum += cc
                total += Double(options.alphaCrossCorrelation) * cc
            }
            try model.backward(tokens, activations: activations, mlm: mlm, classifier: classifier, buffers: buffers, gradients: gradients)
        }
        var flat = [gradients.flat]
        if let layerDistillation { flat.append(layerDistillation.gradients.buffer) }
        // A non-finite gradient stops the step before the pruner (importance, masks, zeroing) or the
        // optimiser touches anything.
        let checkedNorm = GradientClipping.norm(flat.map { UnsafeBufferPointer($0) })
        try check(checkedNorm, "gradient norm")
        // Importance from this step's gradients, masks on the schedule, pruned gradients zeroed — all
        // before clipping, so the norm is over the weights that still exist.
        let pruneTime = pruner.map { pruner in
            ContinuousClock().measure {
                pruner.afterBackward(step: step + 1, parameters: parameters.flat, gradients: gradients.flat, zeroed: [m.buffer, v.buffer])
            }
        }
        // Until a unit is pruned (and without a pruner) the gradients are the ones just measured, so
        // their norm is not taken again: a pass over every gradient, 1.5–3 % of a step.
        let unchangedNorm = pruner?.prunesAny == true ? nil : checkedNorm
        let norm = options.clipNorm > 0 ? GradientClipping.clip(flat, maxNorm: options.clipNorm, norm: unchangedNorm)
                                        : unchangedNorm ?? GradientClipping.norm(flat.map { UnsafeBufferPointer($0) })

        let lr = schedule.rate(atUpdate: step)
        for entry in parameters.layout.entries {
            // Biases and LayerNorm parameters (1-D) are not decayed, as in BERT's own recipe.
            adam.update(parameters: parameters.storage[entry], gradients: UnsafeBufferPointer(gradients.storage[entry]),
                        m: m[entry], v: v[entry], step: step + 1, learningRate: lr, decay: entry.shape.count > 1)
        }
        layerDistillation?.update(adam, step: step + 1, learningRate: lr)
        step += 1
        let k = Double(options.accumulate)
        return StepReport(step: step, learningRate: lr, mlm: mlm == nil ? nil : mlmSum / k,
                          kl: teacher == nil || teacherHead == .none ? nil : klSum / k,
                          layers: layerDistillation == nil ? nil : layerSum * (1 / k),
                          crossCorrelation: options.alphaCrossCorrelation > 0 ? ccSum / k : nil,
                          pooled: options.alphaPooled > 0 ? pooledSum / k : nil, total: total / k, gradientNorm: norm,
                          tokens: options.accumulate * options.batchSize * data.sequenceLength, size: studentSize,
                          pruneSeconds: pruneTime.map { Double($0.components.seconds) + Double($0.components.attoseconds) * 1e-18 })
    }

    /// The whole training state, ready for `TrainingCheckpoint.write` (which is atomic).
    public func checkpoint() -> TrainingCheckpoint {
        let weights = parameters.tensorSet().tensors
        var adamM: [String: Tensor] = [:], adamV: [String: Tensor] = [:], projections: [String: Tensor] = [:]
        for entry in parameters.layout.entries {
            adamM[entry.name] = Tensor(shape: entry.shape, floats: Array(m[entry]))
            adamV[entry.name] = Tensor(shape: entry.shape, floats: Array(v[entry]))
        }
        if let layerDistillation {
            let saved = layerDistillation.tensors()
            projections = saved.projections
            adamM.merge(saved.adamM) { a, _ in a }
            adamV.merge(saved.adamV) { a, _ in a }
        }
        let state = TrainingState(step: step, rng: rng.stateWords, dataSeed: options.seed, dataEpoch: order.epoch,
                                  dataPosition: order.position, recipe: options.recipe, teacherSHA256: teacherSHA256,
                                  threads: options.threads, teacherLayers: options.teacherLayers)
        let pruning = pruner?.tensors()
        return TrainingCheckpoint(config: model.config, vocab: vocab, lowercase: lowercase, taskPairs: taskPairs, weights: weights, projections: projections,
                                 adamM: adamM, adamV: adamV, masks: pruning?.masks ?? [:], importance: pruning?.importance ?? [:],
                                 state: state)
    }

    /// Student forward + MLM head at the masked positions, and the teacher's when there is one.
    func run(_ batch: MLMBatch) throws -> TokenBatch {
        let tokens = try TokenBatch(batchSize: batch.batchSize, sequenceLength: batch.sequenceLength, ids: batch.ids.map(Int.init),
                                    tokenTypes: batch.tokenTypes.map(Int.init), attentionMask: batch.attentionMask.map(Int.init))
        var none: Dropout? = nil
        try model.forward(tokens, activations: activations)
        if let mlm { try model.mlmForward(rows: batch.maskedPositions, activations: activations, mlm: mlm) }
        if let classifier { try model.classifierForward(activations: activations, classifier, dropout: &none) }
        if let teacher, let teacherActivations {
            try teacher.forward(tokens, activations: teacherActivations)
            if let teacherMLM { try teacher.mlmForward(rows: batch.maskedPositions, activations: teacherActivations, mlm: teacherMLM) }
            if let teacherClassifier { try teacher.classifierForward(activations: teacherActivations, teacherClassifier, dropout: &none) }
        }
        return tokens
    }

    /// The hidden dimensions' keep flags while pruning, for the terms that compare hidden states.
    var hiddenKeep: UnsafeBufferPointer<Float>? { pruner.map { UnsafeBufferPointer($0.masks.flags(.hidden)) } }

    /// The student's widths and size as a dense model, when pruning (for the log and progress line).
    public var studentSize: StudentSize? {
        guard let pruner else { return nil }
        let widths = pruner.masks.keptWidths
        let head: MLMHeadKind = model.weights.mlmHead.map { $0.isTied ? .tied : .untied } ?? .none
        guard let size = try? pruner.size(hasPooler: model.weights.pooler != nil, mlmHead: head,
                                          classifierLabels: model.weights.classifier?.outFeatures ?? 0) else { return nil }
        return StudentSize(hidden: widths.hidden, ffn: widths.layers.map(\.ffn).max() ?? 0,
                           headSize: widths.layers.map(\.queryKeyHeadSize).max() ?? 0, size: size)
    }

    /// A layer map (`TrainerOptions.teacherLayers`) fits these models: one strictly increasing teacher
    /// layer per student layer; without one the depths must agree, layers matching one to one.
    static func checkLayerMap(_ layers: [Int]?, student: BertConfig, teacher: BertConfig) throws {
        let arg = "<argument>"
        guard let layers else {
            guard student.numHiddenLayers == teacher.numHiddenLayers else {
                throw DistillError(.invalidArgument, file: arg,
                    "teacher/student depth mismatch: teacher has \(teacher.numHiddenLayers) layers, student \(student.numHiddenLayers); layers match one to one unless a map says which teacher layer each student layer learns from (--keep-layers)")
            }
            return
        }
        if let problem = LayerDropping.problem(layers, teacherDepth: teacher.numHiddenLayers) {
            throw DistillError(.invalidArgument, file: arg, field: "--keep-layers", "--keep-layers \(LayerDropping.text(layers)): \(problem)")
        }
        guard layers.count == student.numHiddenLayers else {
            throw DistillError(.invalidArgument, file: arg, field: "--keep-layers",
                "--keep-layers \(LayerDropping.text(layers)): expected one teacher layer per student layer (\(student.numHiddenLayers)), found \(layers.count)")
        }
    }

    private func check(_ value: Double, _ term: String) throws {
        guard value.isFinite else {
            throw DistillError(.nonFinite, file: "<training>",
                "step \(step + 1): \(term) is \(value); stopped before updating the weights (the last checkpoint is intact)")
        }
    }
}
