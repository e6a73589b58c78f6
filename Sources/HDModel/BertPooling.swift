import Foundation
import HDTensor

/// How a sentence embedding is read off a last hidden state: sentence-transformers' mean over the
/// real tokens, or BERT's first ([CLS]) row; the one implementation the model's outputs and
/// `hd-infer embed` share.
public enum SentencePooling: String, Sendable, CaseIterable {
    case mean, cls

    /// One embedding per sequence [batch × width] from `hidden` [batch × length × width]; `mask`
    /// ([batch × length], 1 for a real token) says which positions the mean counts. L2-normalised
    /// when `normalized`.
    public func pool(_ hidden: UnsafePointer<Float>, batch: Int, sequenceLength: Int, width: Int, mask: [Float],
                     normalized: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: batch * width)
        out.withUnsafeMutableBufferPointer { o in
            switch self {
            case .mean:
                Kernels.meanPool(hidden, batch: batch, sequenceLength: sequenceLength, width: width, mask: mask, out: o.baseAddress!)
            case .cls:
                for b in 0..<batch { (o.baseAddress! + b * width).update(from: hidden + b * sequenceLength * width, count: width) }
            }
            if normalized { Kernels.l2NormalizeRows(o.baseAddress!, rows: batch, width: width) }
        }
        return out
    }
}

extension BertOutput {
    /// Mean of the last hidden state over each sequence's real tokens [B × d] (sentence-transformers'
    /// pooling), L2-normalised when `normalized`.
    public func meanPooled(normalized: Bool = false) -> [Float] { pooled(.mean, normalized: normalized) }

    /// The first token's ([CLS]) last hidden state of each sequence [B × d].
    public func clsPooled(normalized: Bool = false) -> [Float] { pooled(.cls, normalized: normalized) }

    public func pooled(_ pooling: SentencePooling, normalized: Bool) -> [Float] {
        lastHiddenState.withUnsafeBufferPointer {
            pooling.pool($0.baseAddress!, batch: batchSize, sequenceLength: sequenceLength, width: hiddenSize,
                         mask: attentionMask, normalized: normalized)
        }
    }
}

extension BertModel {
    /// BERT's pooler, tanh(W · h_CLS + b) [B × d], when the checkpoint has one.
    public func pooled(_ output: BertOutput) throws -> [Float] {
        guard let pooler = weights.pooler else {
            throw ModelError(.unsupported, file: "<model>", "checkpoint has no pooler (bert.pooler.dense.*)")
        }
        let cls = output.clsPooled()
        var out = [Float](repeating: 0, count: cls.count)
        out.withUnsafeMutableBufferPointer { o in
            linear(cls, rows: output.batchSize, pooler, out: o.baseAddress!)
            for i in 0..<o.count { o[i] = tanh(o[i]) }
        }
        return out
    }
}
