import Foundation
import HDModel
import HDTensor

/// The sentence-embedding term for teachers without an MLM head (sentence-transformers encoders):
/// the mean over the batch of 1 − cos(pool(H_s), pool(H_t)), with pool the mean over each sequence's
/// real tokens (sentence-transformers' pooling) or its first ([CLS]) row. While the hidden size is
/// pruned, both embeddings are compared over the kept dimensions only: the student has no others.
public struct PooledCosineLoss: Sendable {
    public let pooling: SentencePooling

    public init(pooling: SentencePooling) { self.pooling = pooling }

    /// Returns the mean of 1 − cos over `batch` sequences of `length` tokens and, with `mean`, the
    /// mean cosine itself (for evaluation); with `studentGradient`, adds scale · ∂loss/∂H_s into it.
    public func callAsFunction(student: UnsafeBufferPointer<Float>, teacher: UnsafeBufferPointer<Float>,
                               batch: Int, length: Int, width d: Int, attentionMask: [Int32], keep: UnsafeBufferPointer<Float>?,
                               studentGradient: UnsafeMutableBufferPointer<Float>? = nil, scale: Float = 1) -> Double {
        let mask = attentionMask.map(Float.init)
        let s = pooling.pool(student.baseAddress!, batch: batch, sequenceLength: length, width: d, mask: mask, normalized: false)
        let t = pooling.pool(teacher.baseAddress!, batch: batch, sequenceLength: length, width: d, mask: mask, normalized: false)
        var loss = 0.0
        var dPooled = [Float](repeating: 0, count: d)
        for b in 0..<batch {
            var st = 0.0, ss = 0.0, tt = 0.0
            for k in 0..<d where (keep?[k] ?? 1) != 0 {
                let (x, y) = (Double(s[b * d + k]), Double(t[b * d + k]))
                st += x * y; ss += x * x; tt += y * y
            }
            let ns = max(ss.squareRoot(), 1e-12), nt = max(tt.squareRoot(), 1e-12)
            let cos = st / (ns * nt)
            loss += 1 - cos
            guard let g = studentGradient else { continue }
            // ∂(1 − cos)/∂s_k = −(t_k / (|s||t|) − cos · s_k / |s|²), over the kept k.
            let factor = Double(scale) / Double(batch)
            for k in 0..<d {
                let kept = (keep?[k] ?? 1) != 0
                dPooled[k] = kept ? Float(-factor * (Double(t[b * d + k]) / (ns * nt) - cos * Double(s[b * d + k]) / (ns * ns))) : 0
            }
            // The pooling's backward: the mean spreads the gradient evenly over the real tokens.
            let base = g.baseAddress! + b * length * d
            switch pooling {
            case .cls:
                for k in 0..<d { base[k] += dPooled[k] }
            case .mean:
                let real = max(attentionMask[(b * length)..<((b + 1) * length)].reduce(0) { $0 + Int($1) }, 1)
                for i in 0..<length where attentionMask[b * length + i] != 0 {
                    let row = base + i * d
                    for k in 0..<d { row[k] += dPooled[k] / Float(real) }
                }
            }
        }
        return loss / Double(batch)
    }
}
