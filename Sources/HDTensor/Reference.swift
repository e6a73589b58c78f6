import Foundation

/// Naive versions of `BLAS` and `Kernels`: plain loops over arrays, f64 accumulation, written from the
/// definitions rather than from the fast code. Only tests use them, to check the fast path.
public enum Reference {
    /// C = alpha · op(A) · op(B) + beta · C with the same layout rules as `BLAS.gemm`.
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: [Float], lda: Int, b: [Float], ldb: Int,
                            beta: Float = 0, c: inout [Float], ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                c[i * ldc + j] = Float(Double(alpha) * s + old)
            }
        }
    }

    public static func embeddingSum(ids: [Int32], tokenTypes: [Int32], sequenceLength: Int,
                                    word: [Float], position: [Float], tokenType: [Float], width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: ids.count * width)
        for r in ids.indices {
            for j in 0..<width {
                let s = Double(word[Int(ids[r]) * width + j]) + Double(position[(r % sequenceLength) * width + j])
                    + Double(tokenType[Int(tokenTypes[r]) * width + j])
                out[r * width + j] = Float(s)
            }
        }
        return out
    }

    public static func layerNorm(_ x: [Float], width: Int, gamma: [Float], beta: [Float], eps: Float) -> [Float] {
        var out = x
        for r in 0..<(x.count / width) {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(width)
            let rstd = 1 / (variance + Double(eps)).squareRoot()
            for j in 0..<width {
                out[r * width + j] = Float((row[j] - mean) * rstd * Double(gamma[j]) + Double(beta[j]))
            }
        }
        return out
    }

    public static func gelu(_ x: [Float]) -> [Float] {
        x.map { v in Float(0.5 * Double(v) * (1 + erf(Double(v) / 2.0.squareRoot()))) }
    }

    public static func geluTanh(_ x: [Float]) -> [Float] {
        x.map { v in
            let d = Double(v)
            return Float(0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d))))
        }
    }

    public static func addBias(_ x: [Float], width: Int, bias: [Float]) -> [Float] {
        x.enumerated().map { i, v in Float(Double(v) + Double(bias[i % width])) }
    }

    public static func softmaxRows(_ x: [Float], width: Int, scale: Float, mask: [Float]?) -> [Float] {
        var out = x
        for r in 0..<(x.count / width) {
            let logits = (0..<width).map { j in
                Double(x[r * width + j]) * Double(scale) + Double(mask?[j] ?? 0)
            }
            let top = logits.max() ?? 0
            let e = logits.map { Foundation.exp($0 - top) }
            let total = e.reduce(0, +)
            for j in 0..<width { out[r * width + j] = Float(e[j] / total) }
        }
        return out
    }

    public static func meanPool(_ x: [Float], batch: Int, sequenceLength: Int, width: Int, mask: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: batch * width)
        for b in 0..<batch {
            let weights = (0..<sequenceLength).map { Double(mask[b * sequenceLength + $0]) }
            let total = weights.reduce(0, +)
            guard total > 0 else { continue }
            for j in 0..<width {
                var s = 0.0
                for t in 0..<sequenceLength { s += weights[t] * Double(x[(b * sequenceLength + t) * width + j]) }
                out[b * width + j] = Float(s / total)
            }
        }
        return out
    }

    public static func l2NormalizeRows(_ x: [Float], width: Int, eps: Float = 1e-12) -> [Float] {
        var out = x
        for r in 0..<(x.count / width) {
            let norm = (0..<width).reduce(0.0) { $0 + Double(x[r * width + $1]) * Double(x[r * width + $1]) }.squareRoot()
            let d = max(norm, Double(eps))
            for j in 0..<width { out[r * width + j] = Float(Double(x[r * width + j]) / d) }
        }
        return out
    }
}
