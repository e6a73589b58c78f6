import Foundation
import HDTensor

extension BertOutput {
    /// Mean of the last hidden state over each sequence's real tokens [B × d] (sentence-transformers'
    /// pooling), L2-normalised when `normalized`.
    public func meanPooled(normalized: Bool = false) -> [Float] {
        var out = [Float](repeating: 0, count: batchSize * hiddenSize)
        out.withUnsafeMutableBufferPointer { o in
            Kernels.meanPool(lastHiddenState, batch: batchSize, sequenceLength: sequenceLength, width: hiddenSize,
                             mask: attentionMask, out: o.baseAddress!)
            if normalized { Kernels.l2NormalizeRows(o.baseAddress!, rows: batchSize, width: hiddenSize) }
        }
        return out
    }

    /// The first token's ([CLS]) last hidden state of each sequence [B × d].
    public func clsPooled(normalized: Bool = false) -> [Float] {
        var out = [Float](repeating: 0, count: batchSize * hiddenSize)
        out.withUnsafeMutableBufferPointer { o in
            lastHiddenState.withUnsafeBufferPointer { h in
                for b in 0..<batchSize {
                    (o.baseAddress! + b * hiddenSize).update(from: h.baseAddress! + b * sequenceLength * hiddenSize, count: hiddenSize)
                }
            }
            if normalized { Kernels.l2NormalizeRows(o.baseAddress!, rows: batchSize, width: hiddenSize) }
        }
        return out
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
