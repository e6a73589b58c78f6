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
            let maxValue = FastExp.maximum(row, count: v)
            let sum = FastExp.sum(row, count: v, shift: maxValue, scale: 1)
            let logZ = maxValue + logf(sum)
            total += Double(logZ - row[label])
            // Top-1 is the first arg-max; the label's logit is the maximum only for a hit, so the scan
            // for an earlier tie runs only then.
            if row[label] == maxValue && !(0..<label).contains(where: { row[$0] == maxValue }) { correct += 1 }
            if let gradient {
                FastExp.add(row, count: v, shift: maxValue, scale: 1, factor: g / sum, into: gradient.baseAddress! + r * v)
                gradient[r * v + label] -= g
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
            let tMax = FastExp.maximum(t, count: v), sMax = FastExp.maximum(s, count: v)
            let tLogZ = logf(FastExp.sum(t, count: v, shift: tMax, scale: inv))
            let sLogZ = logf(FastExp.sum(s, count: v, shift: sMax, scale: inv))
            total += FastExp.klRow(t, s, count: v, tShift: tMax, sShift: sMax, scale: inv, tLogZ: tLogZ, sLogZ: sLogZ,
                                   gradientFactor: g, gradient: gradient.map { $0.baseAddress! + r * v })
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
    /// w.r.t. H_s and W; the teacher's H_t is a constant. With `projectionGradient`, `projected` ends
    /// holding dL/d(H_t · Wᵀ) instead (it is the scratch of dW, so nothing is allocated per call).
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
        let loss = meanSquaredError(student: student, target: UnsafeBufferPointer(projected), rowLength: d, keep: keep,
                                    studentGradient: studentGradient, scale: scale)
        guard let projectionGradient else { return loss }
        // dL/d(projected) = −2·scale·(s − p)/(rows · kept) on kept columns, 0 on pruned ones; written
        // over `projected`, then dW += dProjectedᵀ · H_t.
        let kept = keep.map { k in k.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } } ?? d
        guard kept > 0 else { return loss }
        let g = 2 * scale / Float(rows * kept)
        let p = projected.baseAddress!, s = student.baseAddress!
        if let keep {
            for r in 0..<rows {
                for c in 0..<d { p[r * d + c] = keep[c] == 0 ? 0 : g * (p[r * d + c] - s[r * d + c]) }
            }
        } else {
            for i in 0..<(rows * d) { p[i] = g * (p[i] - s[i]) }
        }
        BLAS.gemm(transA: true, m: d, n: d, k: rows, a: UnsafePointer(p), lda: d,
                  b: teacher.baseAddress!, ldb: d, beta: 1, c: projectionGradient.baseAddress!, ldc: d)
        return loss
    }
}

/// The softmax loops of the losses over a vocabulary-wide row with a polynomial e^x (Cephes' expf:
/// Cody–Waite reduction, degree-6 polynomial, within 2 ulp of libm over its range) written as plain
/// Float code without calls or branches, so the compiler vectorises the loops; the ~30k-wide rows of
/// the MLM head would otherwise spend much of a training step in scalar `expf` calls. Reductions keep
/// 8 independent partial sums (one vector's worth). Arguments below −87.3 give the smallest normal
/// instead of 0, which no sum or gradient here can tell apart.
enum FastExp {
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let clamped = x < -87.33654 ? -87.33654 : (x > 88.37626 ? 88.37626 : x)
        // Round to nearest by the 1.5·2²³ trick: the integer lands in the low mantissa bits.
        let shifted = clamped * 1.44269504088896341 + 12_582_912
        let n = shifted - 12_582_912
        let r = (clamped - n * 0.693359375) + n * 2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * r * r + r + 1
        let exponent = (shifted.bitPattern &- Float(12_582_912).bitPattern &+ 127) << 23
        return y * Float(bitPattern: exponent)
    }

    static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = x[0]
        for j in 1..<count { m = x[j] > m ? x[j] : m }
        return m
    }

    /// Σ_j e^((x_j − shift)·scale).
    static func sum(_ x: UnsafePointer<Float>, count: Int, shift: Float, scale: Float) -> Float {
        var a: (Float, Float, Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0, 0, 0)
        var j = 0
        while j + 8 <= count {
            a.0 += exp((x[j] - shift) * scale); a.1 += exp((x[j + 1] - shift) * scale)
            a.2 += exp((x[j + 2] - shift) * scale); a.3 += exp((x[j + 3] - shift) * scale)
            a.4 += exp((x[j + 4] - shift) * scale); a.5 += exp((x[j + 5] - shift) * scale)
            a.6 += exp((x[j + 6] - shift) * scale); a.7 += exp((x[j + 7] - shift) * scale)
            j += 8
        }
        var out = ((a.0 + a.1) + (a.2 + a.3)) + ((a.4 + a.5) + (a.6 + a.7))
        while j < count { out += exp((x[j] - shift) * scale); j += 1 }
        return out
    }

    /// out_j += factor · e^((x_j − shift)·scale).
    static func add(_ x: UnsafePointer<Float>, count: Int, shift: Float, scale: Float, factor: Float,
                    into out: UnsafeMutablePointer<Float>) {
        for j in 0..<count { out[j] += factor * exp((x[j] - shift) * scale) }
    }

    /// One row of KL(p_t ‖ p_s) from the rows' shifts and log-partition functions, adding
    /// gradientFactor · (p_s − p_t) into `gradient`. Partial sums in Float, the row in Double.
    static func klRow(_ t: UnsafePointer<Float>, _ s: UnsafePointer<Float>, count: Int, tShift: Float, sShift: Float,
                      scale: Float, tLogZ: Float, sLogZ: Float, gradientFactor g: Float,
                      gradient: UnsafeMutablePointer<Float>?) -> Double {
        if let gradient {
            for j in 0..<count {
                let logPt = (t[j] - tShift) * scale - tLogZ, logPs = (s[j] - sShift) * scale - sLogZ
                gradient[j] += g * (exp(logPs) - exp(logPt))
            }
        }
        var a: (Float, Float, Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0, 0, 0)
        @inline(__always) func term(_ j: Int) -> Float {
            let logPt = (t[j] - tShift) * scale - tLogZ, logPs = (s[j] - sShift) * scale - sLogZ
            return exp(logPt) * (logPt - logPs)
        }
        var j = 0
        while j + 8 <= count {
            a.0 += term(j); a.1 += term(j + 1); a.2 += term(j + 2); a.3 += term(j + 3)
            a.4 += term(j + 4); a.5 += term(j + 5); a.6 += term(j + 6); a.7 += term(j + 7)
            j += 8
        }
        var kl = Double(((a.0 + a.1) + (a.2 + a.3)) + ((a.4 + a.5) + (a.6 + a.7)))
        while j < count { kl += Double(term(j)); j += 1 }
        return kl
    }
}
