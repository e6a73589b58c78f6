import HDFormats
import HDModel

/// Losses and figures of one optimiser step.
public struct StepReport: Sendable {
    public var step: Int
    public var learningRate: Float
    /// Mean over the step's micro-batches, unweighted (α not applied), so runs with different weights compare.
    public var mlm: Double
    public var kl: Double?
    /// The weighted objective that was differentiated.
    public var total: Double
    /// Global gradient norm before clipping.
    public var gradientNorm: Double
    public var tokens: Int
}

public struct EvalReport: Sendable {
    public var step: Int
    public var mlm: Double
    public var accuracy: Double
    public var kl: Double?
    public var sequences: Int
}

/// MLM training, with knowledge distillation from a teacher's MLM logits when one is given
/// (L = αmlm·CE + α1·τ²·KL at the masked positions). Parameters, gradients and both Adam moments are
/// flat buffers in `BertParameterLayout` order; every activation buffer is sized once for
/// (batch, sequence length). The hidden/attention/embedding MSE terms and pruning plug in here next.
public final class Trainer {
    public let options: TrainerOptions
    public let corpus: Corpus
    public let masking: MLMMasking
    public let parameters: BertParameters
    public let teacher: BertModel?
    public let teacherSHA256: String?
    public let vocab: [String]?
    public private(set) var step: Int
    public private(set) var order: DataOrder
    public private(set) var rng: Xoshiro256

    private let gradients: BertGradients
    private let m: FlatFloats, v: FlatFloats
    private let adam: AdamW
    private let schedule: LRSchedule
    private let activations: BertActivations, mlm: BertMLMActivations, buffers: BertBackwardBuffers
    private let teacherActivations: BertActivations?, teacherMLM: BertMLMActivations?

    /// A fresh run from `student`'s weights, or a resumed one when `resume` is given (its weights,
    /// moments, step, data order and generator replace the fresh state).
    public init(student: BertModel, teacher: BertModel?, teacherSHA256: String?, vocab: [String]?, corpus: Corpus,
                options: TrainerOptions, resume: StudentCheckpoint? = nil) throws {
        try options.validate()
        let arg = "<argument>"
        let config = student.config
        guard student.weights.mlmHead != nil else {
            throw DistillError(.invalidArgument, file: arg, "student: expected a model with an MLM head (cls.predictions.*), found none")
        }
        guard corpus.vocabularySize == config.vocabSize else {
            throw DistillError(.invalidArgument, file: arg,
                "corpus/student vocabulary mismatch: the corpus was tokenised with \(corpus.vocabularySize) tokens, the student has \(config.vocabSize)")
        }
        if let resume, resume.config != config {
            throw DistillError(.invalidArgument, file: arg, "resume: the checkpoint's config differs from the student's")
        }
        if let teacher {
            guard teacher.config.vocabSize == config.vocabSize, teacher.weights.mlmHead != nil else {
                throw DistillError(.invalidArgument, file: arg,
                    "teacher/student vocabulary mismatch: teacher has \(teacher.config.vocabSize) tokens\(teacher.weights.mlmHead == nil ? " and no MLM head" : ""), student \(config.vocabSize)")
            }
        }
        guard corpus.sequenceLength <= config.maxPositionEmbeddings else {
            throw DistillError(.invalidArgument, file: arg,
                "sequence length \(corpus.sequenceLength) is over the model's \(config.maxPositionEmbeddings) positions")
        }
        self.options = options
        self.corpus = corpus
        self.teacher = teacher
        self.teacherSHA256 = teacherSHA256
        self.vocab = vocab
        masking = try MLMMasking(specialIDs: corpus.specialIDs, vocabularySize: config.vocabSize)
        adam = AdamW(weightDecay: Double(options.weightDecay))
        schedule = try LRSchedule(peak: options.learningRate, warmupSteps: options.warmupSteps, totalSteps: options.steps)

        let base = try resume.map { try BertModel(config: $0.config, weights: BertWeights(tensors: TensorSet(tensors: $0.weights), config: $0.config, source: "<resume>")) } ?? student
        parameters = try BertParameters(copying: base)
        gradients = try BertGradients(layout: parameters.layout)
        m = FlatFloats(count: parameters.layout.count)
        v = FlatFloats(count: parameters.layout.count)
        let (B, L) = (options.batchSize, corpus.sequenceLength)
        let rows = B * masking.labelsPerSequence(L)
        activations = try BertActivations(config: config, batchSize: B, sequenceLength: L)
        mlm = try BertMLMActivations(config: config, maxRows: rows)
        buffers = try BertBackwardBuffers(config: config, batchSize: B, sequenceLength: L)
        teacherActivations = try teacher.map { try BertActivations(config: $0.config, batchSize: B, sequenceLength: L) }
        teacherMLM = try teacher.map { try BertMLMActivations(config: $0.config, maxRows: rows) }

        if let resume {
            let state = resume.state
            guard state.recipe == options.recipe else {
                let keys = Set(state.recipe.keys).union(options.recipe.keys).filter { state.recipe[$0] != options.recipe[$0] }.sorted()
                throw DistillError(.badMetadata, file: "<resume>", "resume: the recipe differs in " + keys.map {
                    "\($0) (checkpoint \(state.recipe[$0] ?? "unset"), now \(options.recipe[$0] ?? "unset"))" }.joined(separator: ", "))
            }
            guard state.teacherSHA256 == teacherSHA256 else {
                throw DistillError(.badMetadata, file: "<resume>",
                    "resume: expected the teacher with sha256 \(state.teacherSHA256 ?? "none"), given \(teacherSHA256 ?? "none")")
            }
            guard let restored = Xoshiro256(state: state.rng), state.dataSeed == options.seed else {
                throw DistillError(.badMetadata, file: "<resume>", "resume: generator state or data seed does not match the recipe")
            }
            step = state.step
            rng = restored
            order = try DataOrder(seed: options.seed, sequenceCount: corpus.sequenceCount(.train), epoch: state.dataEpoch, position: state.dataPosition)
            for entry in parameters.layout.entries {
                for (moments, flat) in [(resume.adamM, m), (resume.adamV, v)] {
                    guard let t = moments[entry.name]?.floats, t.count == entry.count else {
                        throw DistillError(.missingTensor, file: "<resume>", "resume: no Adam moment of \(entry.count) floats for \(entry.name)")
                    }
                    _ = flat[entry].update(fromContentsOf: t.buffer)
                }
            }
        } else {
            step = 0
            rng = Xoshiro256(seed: options.seed)
            order = try DataOrder(seed: options.seed, sequenceCount: corpus.sequenceCount(.train))
        }
    }

    public var isFinished: Bool { step >= options.steps }

    /// One optimiser step over `accumulate` micro-batches. A non-finite loss or gradient stops the
    /// run before the weights change, naming the step and the term.
    public func trainStep() throws -> StepReport {
        gradients.zero()
        var mlmSum = 0.0, klSum = 0.0, total = 0.0
        let w = 1 / Float(options.accumulate)
        let V = parameters.model.config.vocabSize
        for _ in 0..<options.accumulate {
            let batch = masking.trainingBatch(corpus: corpus, order: &order, batchSize: options.batchSize, rng: &rng)
            let tokens = try run(batch)
            let dLogits = mlm.logitGradients
            dLogits.update(repeating: 0)
            buffers.prepare()
            let ce = batch.labels.withUnsafeBufferPointer {
                Losses.crossEntropy(logits: UnsafeBufferPointer(mlm.logits), labels: $0, vocabularySize: V,
                                    gradient: dLogits, scale: options.alphaMLM * w).loss
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
            try parameters.model.backward(tokens, activations: activations, mlm: mlm, buffers: buffers, gradients: gradients)
        }
        let norm = options.clipNorm > 0 ? GradientClipping.clip(gradients.flat, maxNorm: options.clipNorm)
                                        : GradientClipping.norm(UnsafeBufferPointer(gradients.flat))
        try check(norm, "gradient norm")
        let lr = schedule.rate(atUpdate: step)
        for entry in parameters.layout.entries {
            // Biases and LayerNorm parameters (1-D) are not decayed, as in BERT's own recipe.
            adam.update(parameters: parameters.storage[entry], gradients: UnsafeBufferPointer(gradients.storage[entry]),
                        m: m[entry], v: v[entry], step: step + 1, learningRate: lr, decay: entry.shape.count > 1)
        }
        step += 1
        let k = Double(options.accumulate)
        return StepReport(step: step, learningRate: lr, mlm: mlmSum / k, kl: teacher == nil ? nil : klSum / k,
                          total: total / k, gradientNorm: norm,
                          tokens: options.accumulate * options.batchSize * corpus.sequenceLength)
    }

    /// MLM loss, top-1 accuracy and KL to the teacher on the first `evalSequences` held-out sequences
    /// (whole batches), masked with a generator seeded the same way at every evaluation.
    public func evaluate() throws -> EvalReport {
        let B = options.batchSize
        let available = min(options.evalSequences, corpus.sequenceCount(.heldOut)) / B * B
        guard available > 0 else {
            throw DistillError(.tooShort, file: corpus.files.joined(separator: ", "),
                "evaluation: expected at least one batch of \(B) held-out sequences, the held-out split has \(corpus.sequenceCount(.heldOut))")
        }
        var evalRNG = Xoshiro256(seed: options.seed ^ 0x6576_616C)
        let V = parameters.model.config.vocabSize
        var loss = 0.0, kl = 0.0, correct = 0, labels = 0
        for start in stride(from: 0, to: available, by: B) {
            let batch = masking.batch(corpus: corpus, split: .heldOut, indices: Array(start..<(start + B)), rng: &evalRNG)
            _ = try run(batch)
            let n = batch.labels.count
            let (ce, hits) = batch.labels.withUnsafeBufferPointer {
                Losses.crossEntropy(logits: UnsafeBufferPointer(mlm.logits), labels: $0, vocabularySize: V)
            }
            loss += ce * Double(n)
            correct += hits
            labels += n
            if let teacherMLM {
                kl += Double(n) * Losses.klDivergence(teacher: UnsafeBufferPointer(teacherMLM.logits), student: UnsafeBufferPointer(mlm.logits),
                                                      rows: n, vocabularySize: V, temperature: options.temperature)
            }
        }
        return EvalReport(step: step, mlm: loss / Double(labels), accuracy: Double(correct) / Double(labels),
                          kl: teacher == nil ? nil : kl / Double(labels), sequences: available)
    }

    /// The whole training state, ready for `StudentCheckpoint.write` (which is atomic).
    public func checkpoint() -> StudentCheckpoint {
        let weights = parameters.tensorSet().tensors
        var adamM: [String: Tensor] = [:], adamV: [String: Tensor] = [:]
        for entry in parameters.layout.entries {
            adamM[entry.name] = Tensor(shape: entry.shape, floats: Array(m[entry]))
            adamV[entry.name] = Tensor(shape: entry.shape, floats: Array(v[entry]))
        }
        let state = TrainingState(step: step, rng: rng.stateWords, dataSeed: options.seed, dataEpoch: order.epoch,
                                  dataPosition: order.position, recipe: options.recipe, teacherSHA256: teacherSHA256)
        return StudentCheckpoint(config: parameters.model.config, vocab: vocab, weights: weights, adamM: adamM, adamV: adamV, state: state)
    }

    /// Student forward + MLM head at the masked positions, and the teacher's when there is one.
    private func run(_ batch: MLMBatch) throws -> TokenBatch {
        let tokens = try TokenBatch(batchSize: batch.batchSize, sequenceLength: batch.sequenceLength, ids: batch.ids.map(Int.init))
        try parameters.model.forward(tokens, activations: activations)
        try parameters.model.mlmForward(rows: batch.maskedPositions, activations: activations, mlm: mlm)
        if let teacher, let teacherActivations, let teacherMLM {
            try teacher.forward(tokens, activations: teacherActivations)
            try teacher.mlmForward(rows: batch.maskedPositions, activations: teacherActivations, mlm: teacherMLM)
        }
        return tokens
    }

    private func check(_ value: Double, _ term: String) throws {
        guard value.isFinite else {
            throw DistillError(.nonFinite, file: "<training>",
                "step \(step + 1): \(term) is \(value); stopped before updating the weights (the last checkpoint is intact)")
        }
    }
}
