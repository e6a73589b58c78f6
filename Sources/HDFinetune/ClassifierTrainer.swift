import Foundation
import HDModel
import HDTensor
import HDTraining

/// One optimiser step's figures.
public struct FinetuneStep: Sendable {
    public var step: Int
    public var epoch: Int
    public var loss: Double
    public var learningRate: Float
    public var gradientNorm: Double
    public var examples: Int
}

/// One evaluation over a labelled set.
public struct FinetuneEvaluation: Sendable {
    /// Mean loss (cross-entropy, or MSE for regression).
    public var loss: Double
    /// Arg-max class per example (classification); empty for regression.
    public var predictions: [Int]
    /// The head's outputs per example, [examples × outputs].
    public var logits: [Float]
    public var examples: Int
}

/// Fine-tunes a `BertForSequenceClassification` (`ClassifierModel`): dropout as BERT places it,
/// cross-entropy (or MSE for regression) on the classifier's logits, AdamW with linear warm-up and
/// decay, global gradient clipping, shuffled batches each epoch (drawn from the seed), each padded
/// to its longest sequence. The activations are laid out once for the largest batch and re-laid in
/// the same memory for each batch's length (`Arena.relaid`), so a step allocates nothing large.
public final class ClassifierTrainer {
    public let options: FinetuneOptions
    public let parameters: BertParameters
    public let totalSteps: Int
    public private(set) var step = 0
    /// The model being trained, its products in the run's precision (`FinetuneOptions.matmul`).
    public var model: BertModel {
        var model = parameters.model
        model.productPrecision = options.matmul
        return model
    }

    private let gradients: BertGradients
    private let m: FlatFloats, v: FlatFloats
    private let adam: AdamW
    private let schedule: LRSchedule
    private var dropout: Dropout?
    private var orderRNG: Xoshiro256
    /// Arenas sized for the largest batch (batch size × the longest sequence allowed).
    private let activationArena: Arena, bufferArena: Arena
    private let outputs: Int

    /// `model` must have a classifier head (`ClassifierModel.make`); `trainCount` examples per epoch;
    /// `maxSequenceLength` bounds every batch's length.
    public init(model: BertModel, options: FinetuneOptions, trainCount: Int, maxSequenceLength: Int) throws {
        try options.validate()
        guard let classifier = model.weights.classifier, model.weights.mlmHead == nil else {
            throw FinetuneError(.badModel, file: "<model>", "fine-tuning expects a classifier without an MLM head (ClassifierModel.make)")
        }
        guard trainCount > 0 else {
            throw FinetuneError(.invalidArgument, file: "<argument>", "no training examples")
        }
        guard maxSequenceLength >= 2, maxSequenceLength <= model.config.maxPositionEmbeddings else {
            throw FinetuneError(.invalidArgument, file: "<argument>", field: "--seq-len",
                "--seq-len: expected 2…\(model.config.maxPositionEmbeddings) (the model's positions), found \(maxSequenceLength)")
        }
        self.options = options
        outputs = classifier.outFeatures
        parameters = try BertParameters(copying: model)
        gradients = try BertGradients(layout: parameters.layout)
        m = FlatFloats(count: parameters.layout.count)
        v = FlatFloats(count: parameters.layout.count)
        adam = AdamW(weightDecay: Double(options.weightDecay))
        totalSteps = options.totalSteps(examples: trainCount)
        schedule = try LRSchedule(peak: options.learningRate, warmupSteps: options.warmupSteps(total: totalSteps), totalSteps: totalSteps)
        dropout = options.dropout > 0
            ? try Dropout(probability: options.dropout, rng: Xoshiro256(seed: options.seed ^ 0x6472_6F70)) // "drop"
            : nil
        orderRNG = Xoshiro256(seed: options.seed ^ 0x6F72_6465) // "orde"
        let config = model.config, B = options.batchSize, L = maxSequenceLength
        activationArena = try BertActivations(config: config, batchSize: B, sequenceLength: L, dropout: options.dropout > 0).arena
        bufferArena = try BertBackwardBuffers(config: config, batchSize: B, sequenceLength: L).arena
    }

    /// The batches of one epoch: a fresh permutation of 0..<count (Fisher–Yates from the trainer's
    /// generator), cut into runs of the batch size; the last may be short.
    public func epochOrder(count: Int) -> [[Int]] {
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, orderRNG.nextInt(below: i + 1))
        }
        return stride(from: 0, to: count, by: options.batchSize).map { Array(order[$0..<min($0 + options.batchSize, count)]) }
    }

    /// One optimiser step on `batch`. A non-finite loss or gradient stops before the weights change.
    public func trainStep(_ batch: LabelledBatch, epoch: Int) throws -> FinetuneStep {
        try BLAS.withThreads(options.threads) {
            gradients.zero()
            let tokens = batch.tokens, B = tokens.batchSize, L = tokens.sequenceLength
            let activations = try BertActivations(config: model.config, batchSize: B, sequenceLength: L,
                                                  dropout: dropout != nil, reusing: activationArena)
            let buffers = try BertBackwardBuffers(config: model.config, batchSize: B, sequenceLength: L, reusing: bufferArena)
            let head = try BertClassifierActivations(config: model.config, batchSize: B, labels: outputs)
            try model.forward(tokens, activations: activations, dropout: &dropout)
            try model.classifierForward(activations: activations, head, dropout: &dropout)
            let loss = try self.loss(batch, head: head, gradient: true)
            try check(loss, "loss")
            buffers.prepare()
            try model.backward(tokens, activations: activations, classifier: head, buffers: buffers, gradients: gradients)
            let norm = options.clipNorm > 0 ? GradientClipping.clip(gradients.flat, maxNorm: options.clipNorm)
                                            : GradientClipping.norm(UnsafeBufferPointer(gradients.flat))
            try check(norm, "gradient norm")
            let lr = schedule.rate(atUpdate: step)
            for entry in parameters.layout.entries {
                // Biases and LayerNorm parameters (1-D) are not decayed, as in transformers' Trainer.
                adam.update(parameters: parameters.storage[entry], gradients: UnsafeBufferPointer(gradients.storage[entry]),
                            m: m[entry], v: v[entry], step: step + 1, learningRate: lr, decay: entry.shape.count > 1)
            }
            step += 1
            return FinetuneStep(step: step, epoch: epoch, loss: loss, learningRate: lr, gradientNorm: norm, examples: B)
        }
    }

    /// Loss and predictions on `examples` (no dropout), in batches of the training batch size.
    public func evaluate(_ examples: LabelledExamples) throws -> FinetuneEvaluation {
        try BLAS.withThreads(options.threads) {
            var total = 0.0, predictions: [Int] = [], logits: [Float] = []
            for start in stride(from: 0, to: examples.count, by: options.batchSize) {
                let batch = try examples.batch(Array(start..<min(start + options.batchSize, examples.count)))
                let head = try classify(batch.tokens)
                total += try loss(batch, head: head, gradient: false) * Double(batch.tokens.batchSize)
                let rows = head.logits
                logits += rows
                if !model.config.isRegression {
                    for b in 0..<batch.tokens.batchSize {
                        let row = rows[(b * outputs)..<((b + 1) * outputs)]
                        // The first of equal maxima, as arg-max in numpy and torch.
                        predictions.append(row.indices.max { row[$0] < row[$1] }! - b * outputs)
                    }
                }
            }
            return FinetuneEvaluation(loss: total / Double(max(examples.count, 1)), predictions: predictions, logits: logits,
                                      examples: examples.count)
        }
    }

    /// The head's activations for `tokens` (eval mode: no dropout).
    func classify(_ tokens: TokenBatch) throws -> BertClassifierActivations {
        let activations = try BertActivations(config: model.config, batchSize: tokens.batchSize, sequenceLength: tokens.sequenceLength,
                                              reusing: activationArena)
        let head = try BertClassifierActivations(config: model.config, batchSize: tokens.batchSize, labels: outputs)
        var none: Dropout? = nil
        try model.forward(tokens, activations: activations, dropout: &none)
        try model.classifierForward(activations: activations, head, dropout: &none)
        return head
    }

    /// Mean cross-entropy against `batch.labels` (or MSE against `batch.targets`); with `gradient`,
    /// dL/d(logits) is written into the head's gradient buffer.
    private func loss(_ batch: LabelledBatch, head: BertClassifierActivations, gradient: Bool) throws -> Double {
        let B = batch.tokens.batchSize
        if model.config.isRegression {
            guard batch.targets.count == B else {
                throw FinetuneError(.invalidArgument, file: "<input>", "regression batch of \(B) has \(batch.targets.count) targets")
            }
            var sum = 0.0
            for b in 0..<B {
                let diff = head.logits[b] - batch.targets[b]
                sum += Double(diff * diff)
                if gradient { head.logitGradients[b] = 2 * diff / Float(B) }
            }
            return sum / Double(B)
        }
        guard batch.labels.count == B, batch.labels.allSatisfy({ $0 >= 0 && Int($0) < outputs }) else {
            throw FinetuneError(.invalidArgument, file: "<input>", "batch of \(B) needs \(B) labels in 0..<\(outputs), found \(batch.labels)")
        }
        return batch.labels.withUnsafeBufferPointer { labels in
            Losses.crossEntropy(logits: UnsafeBufferPointer(head.logits), labels: labels, vocabularySize: outputs,
                                gradient: gradient ? head.logitGradients : nil, overwrite: true).loss
        }
    }

    /// A copy of the current weights (to keep the best epoch's).
    public func snapshot() -> [Float] { Array(parameters.flat) }

    /// Puts back weights taken by `snapshot()`.
    public func restore(_ weights: [Float]) {
        precondition(weights.count == parameters.flat.count, "snapshot of another layout")
        _ = parameters.flat.update(fromContentsOf: weights)
    }

    private func check(_ value: Double, _ what: String) throws {
        guard value.isFinite else {
            throw FinetuneError(.nonFinite, file: "<training>", "step \(step + 1): \(what) is \(value); stopped before updating the weights")
        }
    }
}
