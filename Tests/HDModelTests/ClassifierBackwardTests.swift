import Foundation
import HDFormats
import HDModel
import HDTensor
import HDTestSupport
import Testing

/// The sequence-classifier head (pooler, classifier) and the whole backward under it against
/// transformers' `BertForSequenceClassification` autograd (fixtures/reference/tiny-bert-*-grads.npz,
/// made by tools/make_classifier_grad_reference.py in float64, dropout off): the same loss, and every
/// parameter gradient within 1e-4 relative (max|swift − torch| ≤ 1e-4 · max(max|torch|, 1e-2) per tensor).
@Suite("Classifier head vs transformers' BertForSequenceClassification")
struct ClassifierBackwardTests {
    enum Variant: String, CaseIterable, Sendable {
        case classification = "reference/tiny-bert-classifier-grads.npz"
        case regression = "reference/tiny-bert-regression-grads.npz"
    }

    static func model(_ ref: ReferenceArrays) throws -> BertModel {
        let checkpoint = try Checkpoint.load(TestSupport.fixture("tiny-bert"))
        var config = checkpoint.config
        let weight = try ref.floats("classifier_weight"), labels = weight.count / config.hiddenSize
        config.id2label = (0..<labels).map { "L\($0)" }
        config.problemType = labels == 1 ? "regression" : "single_label_classification"
        var tensors = TensorSet()
        for (name, tensor) in checkpoint.tensors.tensors where !name.hasPrefix("cls.") { tensors[name] = tensor }
        tensors[BertNames.classifierWeight] = Tensor(shape: [labels, config.hiddenSize], floats: weight)
        tensors[BertNames.classifierBias] = Tensor(shape: [labels], floats: try ref.floats("classifier_bias"))
        return try BertModel(config: config, weights: BertWeights(tensors: tensors, config: config, source: checkpoint.source))
    }

    @Test(arguments: Variant.allCases)
    func lossAndEveryGradientMatchTransformers(_ variant: Variant) throws {
        let ref = try ReferenceArrays(variant.rawValue)
        let parameters = try BertParameters(copying: try Self.model(ref))
        let model = parameters.model, batch = try ref.batch()
        #expect(parameters.layout.hasClassifier)
        let gradients = try BertGradients(layout: parameters.layout)
        let activations = try BertActivations(config: model.config, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength)
        let buffers = try BertBackwardBuffers(config: model.config, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength)
        let head = try BertClassifierActivations(config: model.config, batchSize: batch.batchSize, labels: model.config.id2label!.count)
        var none: Dropout? = nil
        try model.forward(batch, activations: activations, dropout: &none)
        try model.classifierForward(activations: activations, head, dropout: &none)

        let expectedLogits = try ref.floats("logits")
        for (a, e) in zip(Array(head.logits), expectedLogits) { #expect(abs(a - e) <= 1e-5 * max(abs(e), 1)) }
        // The loss and dL/dlogits, in Double, as transformers forms them.
        let B = batch.batchSize, n = head.labels
        var loss = 0.0
        if variant == .regression {
            let targets = try ref.floats("targets")
            for b in 0..<B {
                let diff = Double(head.logits[b]) - Double(targets[b])
                loss += diff * diff / Double(B)
                head.logitGradients[b] = Float(2 * diff / Double(B))
            }
        } else {
            let labels = try ref.ints("labels").values
            for b in 0..<B {
                let z = (0..<n).map { Double(head.logits[b * n + $0]) }, top = z.max()!
                let e = z.map { exp($0 - top) }, total = e.reduce(0, +)
                loss += (log(total) + top - z[labels[b]]) / Double(B)
                for j in 0..<n { head.logitGradients[b * n + j] = Float((e[j] / total - (j == labels[b] ? 1 : 0)) / Double(B)) }
            }
        }
        let expectedLoss = try ref.floats("loss")[0]
        #expect(abs(Float(loss) - expectedLoss) <= 1e-5 * abs(expectedLoss), "loss \(loss) vs \(expectedLoss)")

        buffers.prepare()
        try model.backward(batch, activations: activations, classifier: head, buffers: buffers, gradients: gradients)
        try BackwardTests.expectEveryGradient(gradients, of: parameters, match: ref, floor: 1e-2)
    }

    /// Dropout's backward is the exact derivative of the dropped forward: with the masks the forward
    /// drew (replayed by the same seed), a finite difference of the loss along a random direction
    /// equals the gradient's projection on it.
    @Test func dropoutBackwardMatchesFiniteDifferences() throws {
        let ref = try ReferenceArrays(Variant.classification.rawValue)
        let parameters = try BertParameters(copying: try Self.model(ref))
        let model = parameters.model, batch = try ref.batch(), labels = try ref.ints("labels").values.map { Int32($0) }
        let c = model.config, B = batch.batchSize, L = batch.sequenceLength
        let activations = try BertActivations(config: c, batchSize: B, sequenceLength: L, dropout: true)
        let buffers = try BertBackwardBuffers(config: c, batchSize: B, sequenceLength: L)
        let head = try BertClassifierActivations(config: c, batchSize: B, labels: 3)
        func loss(gradient: Bool) throws -> Double {
            var dropout: Dropout? = try Dropout(probability: 0.3, rng: Xoshiro256(seed: 7))
            try model.forward(batch, activations: activations, dropout: &dropout)
            try model.classifierForward(activations: activations, head, dropout: &dropout)
            var total = 0.0
            for b in 0..<B {
                let z = (0..<3).map { Double(head.logits[b * 3 + $0]) }, top = z.max()!
                let e = z.map { exp($0 - top) }, sum = e.reduce(0, +)
                total += (log(sum) + top - z[Int(labels[b])]) / Double(B)
                if gradient { for j in 0..<3 { head.logitGradients[b * 3 + j] = Float((e[j] / sum - (j == Int(labels[b]) ? 1 : 0)) / Double(B)) } }
            }
            return total
        }
        let gradients = try BertGradients(layout: parameters.layout)
        _ = try loss(gradient: true)
        buffers.prepare()
        try model.backward(batch, activations: activations, classifier: head, buffers: buffers, gradients: gradients)
        var rng = Xoshiro256(seed: 11)
        let direction = (0..<parameters.flat.count).map { _ in Float(rng.nextStandardNormal()) }
        let projected = zip(gradients.flat, direction).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let h: Float = 1e-3, original = Array(parameters.flat)
        for i in parameters.flat.indices { parameters.flat[i] = original[i] + h * direction[i] }
        let up = try loss(gradient: false)
        for i in parameters.flat.indices { parameters.flat[i] = original[i] - h * direction[i] }
        let down = try loss(gradient: false)
        _ = parameters.flat.update(fromContentsOf: original)
        let finite = (up - down) / (2 * Double(h))
        #expect(abs(finite - projected) <= 2e-2 * max(abs(projected), 1e-3), "finite difference \(finite) vs gradient \(projected)")
    }
}
