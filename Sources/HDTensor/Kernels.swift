import Foundation

/// Element-wise and row-wise kernels of the BERT forward, each a function over raw buffers with
/// explicit sizes (row-major, rows × width) so a backward, a masked variant or a lean runtime can call
/// them on any slice of an arena. Indices (token ids, types) are trusted: the model validates its
/// input once, before the first kernel runs. `Reference` holds a plain f64 version of each for tests.
public enum Kernels {
    /// out[r, :] = word[ids[r], :] + position[r mod seqLen, :] + tokenType[types[r], :], for `rows`
    /// tokens laid out as consecutive sequences of `sequenceLength`.
    public static func embeddingSum(ids: UnsafePointer<Int32>, tokenTypes: UnsafePointer<Int32>,
                                    rows: Int, sequenceLength: Int,
                                    word: UnsafePointer<Float>, position: UnsafePointer<Float>,
                                    tokenType: UnsafePointer<Float>, width: Int,
                                    out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let w = word + Int(ids[r]) * width
            let p = position + (r % sequenceLength) * width
            let t = tokenType + Int(tokenTypes[r]) * width
            let o = out + r * width
            for j in 0..<width { o[j] = w[j] + p[j] + t[j] }
        }
    }

    /// Copies rows `indices[i]` of `table` (rows × width) to row i of `out`.
    public static func gatherRows(indices: UnsafePointer<Int32>, count: Int, table: UnsafePointer<Float>,
                                  width: Int, out: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            (out + i * width).update(from: table + Int(indices[i]) * width, count: width)
        }
    }

    /// out = γ ⊙ (x − mean) / √(var + eps) + β over each row (biased variance, as PyTorch).
    /// `mean` and `rstd` (one float per row) are kept when given, for the backward. `out` may be `x`.
    ///
    /// With `keep` (0/1 per column, a pruning mask over the hidden width), mean and variance are taken
    /// over the kept columns only and dropped columns come out 0, so the result equals LayerNorm of
    /// the smaller dense vector the kept columns form. The unmasked loops stay free of the multiply.
    public static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int,
                                 gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                                 out: UnsafeMutablePointer<Float>,
                                 mean: UnsafeMutablePointer<Float>? = nil, rstd: UnsafeMutablePointer<Float>? = nil,
                                 keep: UnsafePointer<Float>? = nil) {
        let n = keep.map { k in max((0..<width).reduce(Float(0)) { $0 + k[$1] }, 1) } ?? Float(width)
        for r in 0..<rows {
            let xr = x + r * width, o = out + r * width
            // Two passes: the one-pass E[x²] − E[x]² loses digits when the mean is large.
            var sum: Float = 0, sq: Float = 0
            let m: Float, s: Float
            if let keep {
                for j in 0..<width { sum += xr[j] * keep[j] }
                m = sum / n
                for j in 0..<width { let d = (xr[j] - m) * keep[j]; sq += d * d }
                s = 1 / (sq / n + eps).squareRoot()
                for j in 0..<width { o[j] = ((xr[j] - m) * s * gamma[j] + beta[j]) * keep[j] }
            } else {
                for j in 0..<width { sum += xr[j] }
                m = sum / n
                for j in 0..<width { let d = xr[j] - m; sq += d * d }
                s = 1 / (sq / n + eps).squareRoot()
                for j in 0..<width { o[j] = (xr[j] - m) * s * gamma[j] + beta[j] }
            }
            mean?[r] = m
            rstd?[r] = s
        }
    }

    /// Exact GELU, x · Φ(x) = ½x(1 + erf(x/√2)) (BERT's "gelu"). `out` may be `x`.
    public static func gelu(_ x: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
        let invSqrt2 = Float(0.70710678118654752440)
        for i in 0..<count {
            let v = x[i]
            out[i] = 0.5 * v * (1 + erf(v * invSqrt2))
        }
    }

    /// The tanh approximation ("gelu_new", "gelu_pytorch_tanh"). `out` may be `x`.
    public static func geluTanh(_ x: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
        let c = Float(0.79788456080286535588)  // √(2/π)
        for i in 0..<count {
            let v = x[i]
            out[i] = 0.5 * v * (1 + tanh(c * (v + 0.044715 * v * v * v)))
        }
    }

    /// x[r, :] += bias for every row.
    public static func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * width
            for j in 0..<width { xr[j] += bias[j] }
        }
    }

    /// out = a + b (residual connections). `out` may be `a` or `b`.
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int,
                           out: UnsafeMutablePointer<Float>) {
        for i in 0..<count { out[i] = a[i] + b[i] }
    }

    /// In place, each row becomes softmax(scale · x + mask), where `mask` (one additive value per
    /// column, 0 to keep and a large negative number to drop) is shared by every row, as the key mask
    /// of one sequence is shared by all its heads and queries.
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, scale: Float,
                                   mask: UnsafePointer<Float>?) {
        for r in 0..<rows {
            let xr = x + r * width
            var maxValue = -Float.infinity
            if let mask {
                for j in 0..<width { let v = xr[j] * scale + mask[j]; xr[j] = v; maxValue = max(maxValue, v) }
            } else {
                for j in 0..<width { let v = xr[j] * scale; xr[j] = v; maxValue = max(maxValue, v) }
            }
            var sum: Float = 0
            for j in 0..<width { let e = exp(xr[j] - maxValue); xr[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0..<width { xr[j] *= inv }
        }
    }

    /// out[b, :] = Σ_t mask[b, t] · x[b, t, :] / Σ_t mask[b, t] (sentence-transformers' mean pooling).
    /// A sequence whose mask sums to zero pools to zeros.
    public static func meanPool(_ x: UnsafePointer<Float>, batch: Int, sequenceLength: Int, width: Int,
                                mask: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        for b in 0..<batch {
            let o = out + b * width
            o.update(repeating: 0, count: width)
            var total: Float = 0
            for t in 0..<sequenceLength {
                let m = mask[b * sequenceLength + t]
                if m == 0 { continue }
                total += m
                let xr = x + (b * sequenceLength + t) * width
                for j in 0..<width { o[j] += m * xr[j] }
            }
            if total > 0 {
                let inv = 1 / total
                for j in 0..<width { o[j] *= inv }
            }
        }
    }

    /// Each row divided by max(‖row‖₂, eps), as torch.nn.functional.normalize.
    public static func l2NormalizeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, eps: Float = 1e-12) {
        for r in 0..<rows {
            let xr = x + r * width
            var sq: Float = 0
            for j in 0..<width { sq += xr[j] * xr[j] }
            let inv = 1 / max(sq.squareRoot(), eps)
            for j in 0..<width { xr[j] *= inv }
        }
    }
}
