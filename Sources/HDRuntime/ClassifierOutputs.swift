import Foundation
import HDModel
import HDTensor

/// A classifier head's result for the batch last run, viewed in the session's arena: valid until the
/// session's next forward or `classify()`.
public struct ClassifierOutput {
    public let batchSize: Int
    /// Outputs per sequence (the number of labels; 1 for a regression head).
    public let labels: Int
    /// [batch × labels] logits: W_c · tanh(W_p · h_CLS + b_p) + b_c.
    public let logits: UnsafeBufferPointer<Float>
    /// [batch × labels]: the softmax of each row of `logits`; for a regression head, the value itself.
    public let probabilities: UnsafeBufferPointer<Float>

    /// Sequence `b`'s logits.
    public func logits(_ b: Int) -> UnsafeBufferPointer<Float> { Self.row(logits, b, labels) }
    /// Sequence `b`'s probabilities (its regression value for a regression head).
    public func probabilities(_ b: Int) -> UnsafeBufferPointer<Float> { Self.row(probabilities, b, labels) }

    /// The id of sequence `b`'s most probable label (the first on a tie, as `argmax` does).
    public func predicted(_ b: Int) -> Int {
        let row = logits(b)
        var best = 0
        for i in row.indices where row[i] > row[best] { best = i }
        return best
    }

    static func row(_ x: UnsafeBufferPointer<Float>, _ b: Int, _ width: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(rebasing: x[(b * width)..<((b + 1) * width)])
    }
}

extension InferenceSession {
    /// Runs the sequence classifier head on the batch last run, as `BertForSequenceClassification`
    /// in eval mode: pooled = tanh(W_p · h_CLS + b_p), logits = W_c · pooled + b_c, then a softmax per
    /// row (none for a regression head). h_CLS is each sequence's first token, which must be real
    /// (not padding). Fp32 whatever the encoder's precision (`RuntimeClassifierHead`); allocates
    /// nothing: the output lives in the session's arena until the next forward.
    public func classify() throws -> ClassifierOutput {
        guard let head = model.classifierHead else {
            throw ModelError(.unsupported, file: "<model>",
                             "the model has no sequence classifier head (\(BertNames.classifierWeight)); classify needs one: fine-tune it with hd-finetune, or convert a BertForSequenceClassification")
        }
        let d = model.config.hiddenSize, n = head.labels.count, B = batchSize
        let h = packedHiddenState.baseAddress!, cls = arena[headCLS].baseAddress!
        for b in 0..<B {
            guard let r = row(sequence: b, position: 0) else {
                throw ModelError(.badInput, file: "<input>",
                                 "sequence \(b) of the batch: expected a real [CLS] token at position 0, found padding")
            }
            (cls + b * d).update(from: h + r * d, count: d)
        }
        let pooled = arena[headPooled].baseAddress!, logits = arena[headLogits].baseAddress!
        let probabilities = arena[headProbabilities].baseAddress!
        // As in a forward: OpenBLAS single-threaded under the session's own workers, then restored.
        BLAS.withThreads(1) {
            dense(cls, rows: B, head.pooler, out: pooled, .bias(head.pooler.bias.buffer.baseAddress!))
            for i in 0..<(B * d) { pooled[i] = tanhf(pooled[i]) }
            dense(pooled, rows: B, head.classifier, out: logits, .bias(head.classifier.bias.buffer.baseAddress!))
        }
        probabilities.update(from: logits, count: B * n)
        if !head.isRegression { FusedKernels.softmaxRows(probabilities, rows: B, width: n) }
        return ClassifierOutput(batchSize: B, labels: n,
                                logits: UnsafeBufferPointer(start: logits, count: B * n),
                                probabilities: UnsafeBufferPointer(start: probabilities, count: B * n))
    }
}
