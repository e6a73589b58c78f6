import Foundation
import HDTensor

/// `BertForSequenceClassification`'s head on the training path, for one batch size, in one arena:
/// the [CLS] rows of the last hidden state, the pooler (dense + tanh), dropout, the classifier. The
/// forward fills it; the caller reads `logits` [B × labels] and writes dL/d(logits) into
/// `logitGradients`; `BertModel.backward(classifier:)` takes it from there.
public final class BertClassifierActivations {
    public let batchSize: Int
    public let hiddenSize: Int
    public let labels: Int
    public let arena: Arena
    /// [B × d] each: [CLS] hidden states, pooler output (after tanh), the dropout mask, the dropped output.
    let cls, pooled, mask, dropped: ArenaSlot
    /// [B × d] ×2 scratch for the backward.
    let dDropped, dPre: ArenaSlot
    let logitSlot, logitGradientSlot: ArenaSlot
    /// Whether the last forward applied dropout.
    var dropoutApplied = false

    public init(config: BertConfig, batchSize: Int, labels: Int) throws {
        let d = config.hiddenSize
        var layout = ArenaLayout()
        do {
            guard batchSize > 0, labels > 0 else { throw TensorError("expected a positive batch and label count, found \(batchSize), \(labels)") }
            cls = try layout.reserve("classifier.cls", shape: [batchSize, d])
            pooled = try layout.reserve("classifier.pooled", shape: [batchSize, d])
            mask = try layout.reserve("classifier.mask", shape: [batchSize, d])
            dropped = try layout.reserve("classifier.dropped", shape: [batchSize, d])
            dDropped = try layout.reserve("classifier.grad.dropped", shape: [batchSize, d])
            dPre = try layout.reserve("classifier.grad.pre", shape: [batchSize, d])
            logitSlot = try layout.reserve("classifier.logits", shape: [batchSize, labels])
            logitGradientSlot = try layout.reserve("classifier.logits.grad", shape: [batchSize, labels])
        } catch let error as TensorError {
            throw ModelError(.badInput, file: TokenBatch.source, "classifier activations for batch \(batchSize): \(error.message)")
        }
        self.batchSize = batchSize
        hiddenSize = d
        self.labels = labels
        arena = Arena(layout: layout)
    }

    /// [B × labels] logits of the last forward.
    public var logits: UnsafeMutableBufferPointer<Float> { arena[logitSlot] }
    /// [B × labels]: the caller's dL/d(logits), read by the backward.
    public var logitGradients: UnsafeMutableBufferPointer<Float> { arena[logitGradientSlot] }
    /// [B × d]: the pooler's output (before dropout), BERT's sentence representation.
    public var pooledOutput: UnsafeMutableBufferPointer<Float> { arena[pooled] }
}

extension BertModel {
    /// The classifier's logits for the batch in `activations` (a forward must have filled them):
    /// pooled = tanh(W_p · h_CLS + b_p), then dropout (when given), then logits = W_c · pooled + b_c.
    public func classifierForward(activations: BertActivations, _ head: BertClassifierActivations,
                                  dropout: inout Dropout?) throws {
        guard let pooler = weights.pooler, let classifier = weights.classifier else {
            throw ModelError(.unsupported, file: "<model>", "the model has no classifier head (\(BertNames.poolerWeight), \(BertNames.classifierWeight))")
        }
        let B = activations.batchSize, L = activations.sequenceLength, d = config.hiddenSize
        guard head.batchSize == B, head.hiddenSize == d, head.labels == classifier.outFeatures else {
            throw ModelError(.badInput, file: TokenBatch.source,
                "classifier activations laid out for batch \(head.batchSize), \(head.labels) labels; given batch \(B), \(classifier.outFeatures) labels")
        }
        let last = activations.lastHiddenState.baseAddress!, cls = head.arena[head.cls].baseAddress!
        for b in 0..<B { (cls + b * d).update(from: last + b * L * d, count: d) }
        let pooled = head.arena[head.pooled].baseAddress!, dropped = head.arena[head.dropped].baseAddress!
        linear(cls, rows: B, pooler, out: pooled)
        for i in 0..<(B * d) { pooled[i] = tanh(pooled[i]) }
        dropped.update(from: pooled, count: B * d)
        dropout?.apply(dropped, mask: head.arena[head.mask].baseAddress!, count: B * d)
        head.dropoutApplied = dropout != nil
        linear(dropped, rows: B, classifier, out: head.logits.baseAddress!)
    }

    /// Backward of `classifierForward` from `head.logitGradients`: the classifier's and pooler's
    /// parameter gradients are added into `pooler` and `classifier`, and dL/d(h_CLS) into the [CLS]
    /// rows of `dHidden` (dL/d(last hidden state)).
    func classifierBackward(activations: BertActivations, _ head: BertClassifierActivations,
                            into dHidden: UnsafeMutableBufferPointer<Float>,
                            pooler gPooler: LinearGradients, classifier gClassifier: LinearGradients) {
        guard let pooler = weights.pooler, let classifier = weights.classifier else { return }
        let B = head.batchSize, L = activations.sequenceLength, d = config.hiddenSize
        let a = head.arena
        let dDropped = a[head.dDropped].baseAddress!, dPre = a[head.dPre].baseAddress!
        linearBackward(head.logitGradients.baseAddress!, x: a[head.dropped].baseAddress!, rows: B, classifier, gClassifier,
                       dx: dDropped, accumulate: false)
        if head.dropoutApplied { Dropout.multiply(dDropped, by: a[head.mask].baseAddress!, count: B * d) }
        // tanh' = 1 − tanh².
        let pooled = a[head.pooled].baseAddress!
        for i in 0..<(B * d) { dDropped[i] *= 1 - pooled[i] * pooled[i] }
        linearBackward(dDropped, x: a[head.cls].baseAddress!, rows: B, pooler, gPooler, dx: dPre, accumulate: false)
        for b in 0..<B {
            let row = dHidden.baseAddress! + b * L * d
            Kernels.add(row, dPre + b * d, count: d, out: row)
        }
    }
}
