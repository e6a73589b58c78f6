import Foundation
import HDTensor

/// The distillation losses over raw row-major buffers, each forward and backward in one pass.
/// Conventions shared by all of them: a loss is returned as Double (summed in Double); a gradient
/// buffer, when given, gets `scale · ∂loss/∂x` ADDED to it, so the MLM and KL terms can pile into one
/// dlogits buffer and `scale` can carry a loss weight α or a 1/accumulation factor. Callers zero the
/// buffers once per step.
public enum Losses {
    /// Mean cross-entropy of `rows` rows of `logits` [rows × vocabularySize] against `labels`;
    /// `correct` counts rows whose arg-max is the label (top-1 accuracy for evaluation).
    public static func crossEntropy(logits: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                                    vocabularySize v: Int, gradient: UnsafeMutableBufferPointer<Float>? = nil,
                                    scale: Float = 1) -> (loss: Double, correct: Int) {
        let rows = labels.count
        guard rows > 0 else { return (0, 0) }
        var total = 0.0
        var correct = 0
        let g = scale / Float(rows)
        for r in 0..<rows {
            let row = logits.baseAddress! + r * v
            let label = Int(labels[r])
            var maxValue = row[0]
            var arg = 0
            for j in 1..<v where row[j] > maxValue { maxValue = row[j]; arg = j }
            var sum: Float = 0
            for j in 0..<v { sum += expf(row[j] - maxValue) }
            let logZ = maxValue + logf(sum)
            total += Double(logZ - row[label])
            if arg == label { correct += 1 }
            if let gradient {
                let out = gradient.baseAddress! + r * v
                let inv = 1 / sum
                for j in 0..<v { out[j] += g * expf(row[j] - maxValue) * inv }
                out[label] -= g
            }
        }
        return (total / Double(rows), correct)
    }

    /// Mean over rows of τ² · KL(softmax(teacher/τ) ‖ softmax(student/τ)). The τ² factor (Hinton et al.
    /// 2015) keeps the gradient's size independent of τ, so α1 need not change with it; at τ = 1 this
    /// is the plain KL. The gradient w.r.t. the student logits is τ · (p_s − p_t) / rows; the teacher
    /// is a constant.
    public static func klDivergence(teacher: UnsafeBufferPointer<Float>, student: UnsafeBufferPointer<Float>,
                                    rows: Int, vocabularySize v: Int, temperature tau: Float = 1,
                                    gradient: UnsafeMutableBufferPointer<Float>? = nil, scale: Float = 1) -> Double {
        guard rows > 0 else { return 0 }
        let inv = 1 / tau
        let g = scale * tau / Float(rows)
        var total = 0.0
        for r in 0..<rows {
            let t = teacher.baseAddress! + r * v
            let s = student.baseAddress! + r * v
            var tMax = t[0], sMax = s[0]
            for j in 1..<v {
                tMax = max(tMax, t[j])
                sMax = max(sMax, s[j])
            }
            var tSum: Float = 0, sSum: Float = 0
            for j in 0..<v {
                tSum += expf((t[j] - tMax) * inv)
                sSum += expf((s[j] - sMax) * inv)
            }
            let tLogZ = logf(tSum), sLogZ = logf(sSum)
            var kl = 0.0
            for j in 0..<v {
                let logPt = (t[j] - tMax) * inv - tLogZ
                let logPs = (s[j] - sMax) * inv - sLogZ
                let pt = expf(logPt)
                // p_t = 0 contributes 0 (the limit), not 0 · (−∞).
                if pt > 0 { kl += Double(pt * (logPt - logPs)) }
                if let gradient { gradient[r * v + j] += g * (expf(logPs) - pt) }
            }
            total += kl
        }
        return Double(tau * tau) * total / Double(rows)
    }

    /// Mean squared error between `student` and `target` [rows × rowLength] over the kept columns
    /// (`keep[c] != 0`; nil keeps all): Σ (s − t)² / (rows · kept). Pruned columns neither count nor
    /// get a gradient, so a masked student is not pushed to reproduce dimensions it no longer has.
    public static func meanSquaredError(student: UnsafeBufferPointer<Float>, target: UnsafeBufferPointer<Float>,
                                        rowLength: Int, keep: UnsafeBufferPointer<Float>? = nil,
                                        studentGradient: UnsafeMutableBufferPointer<Float>? = nil,
                                        targetGradient: UnsafeMutableBufferPointer<Float>? = nil,
                                        scale: Float = 1) -> Double {
        let rows = student.count / max(rowLength, 1)
        let kept = keep.map { k in k.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } } ?? rowLength
        guard rows > 0, kept > 0 else { return 0 }
        let g = 2 * scale / Float(rows * kept)
        var total = 0.0
        for r in 0..<rows {
            var rowSum: Float = 0
            for c in 0..<rowLength {
                if let keep, keep[c] == 0 { continue }
                let i = r * rowLength + c
                let d = student[i] - target[i]
                rowSum += d * d
                studentGradient?[i] += g * d
                targetGradient?[i] -= g * d
            }
            total += Double(rowSum)
        }
        return total / Double(rows * kept)
    }

    /// The hidden/embedding term: MSE(H_s, H_t · Wᵀ) with W a learnable [d × d] projection in
    /// nn.Linear layout (initialised to the identity by the caller). Writes the projection into
    /// `projected` [rows × d] (scratch the caller owns, reused across steps) and adds the gradients
    /// w.r.t. H_s and W; the teacher's H_t is a constant.
    public static func projectedMSE(student: UnsafeBufferPointer<Float>, teacher: UnsafeBufferPointer<Float>,
                                    projection: UnsafeBufferPointer<Float>, width d: Int,
                                    keep: UnsafeBufferPointer<Float>? = nil,
                                    projected: UnsafeMutableBufferPointer<Float>,
                                    studentGradient: UnsafeMutableBufferPointer<Float>? = nil,
                                    projectionGradient: UnsafeMutableBufferPointer<Float>? = nil,
                                    scale: Float = 1) -> Double {
        let rows = student.count / max(d, 1)
        guard rows > 0 else { return 0 }
        BLAS.gemm(transB: true, m: rows, n: d, k: d, a: teacher.baseAddress!, lda: d,
                  b: projection.baseAddress!, ldb: d, c: projected.baseAddress!, ldc: d)
        guard let projectionGradient else {
            return meanSquaredError(student: student, target: UnsafeBufferPointer(projected), rowLength: d, keep: keep,
                                    studentGradient: studentGradient, scale: scale)
        }
        // ∂/∂target lands in a scratch copy, then dW += dTargetᵀ · H_t.
        var dTarget = [Float](repeating: 0, count: rows * d)
        let loss = dTarget.withUnsafeMutableBufferPointer { dt in
            let loss = meanSquaredError(student: student, target: UnsafeBufferPointer(projected), rowLength: d, keep: keep,
                                        studentGradient: studentGradient, targetGradient: dt, scale: scale)
            BLAS.gemm(transA: true, m: d, n: d, k: rows, a: UnsafePointer(dt.baseAddress!), lda: d,
                      b: teacher.baseAddress!, ldb: d, beta: 1, c: projectionGradient.baseAddress!, ldc: d)
            return loss
        }
        return loss
    }
}
