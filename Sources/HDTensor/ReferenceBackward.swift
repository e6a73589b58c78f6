import Foundation

/// Float64 backward of each `Kernels` op, written from the calculus of the forward definition (no
/// saved statistics: each recomputes what it needs). The gradient checks test these against central
/// finite differences, then the f32 kernels against these. Results are fresh arrays, never accumulated.
extension Reference {
    /// Gradients of Σ dout ⊙ embeddingSum(…) with respect to the three tables; the row `paddingId`
    /// of the word table is frozen (gets zero), as `nn.Embedding(padding_idx:)`.
    public static func embeddingSumBackward(_ dout: [Double], ids: [Int32], tokenTypes: [Int32], sequenceLength: Int,
                                            vocab: Int, positions: Int, types: Int, width: Int, paddingId: Int32? = nil)
        -> (word: [Double], position: [Double], tokenType: [Double]) {
        var word = [Double](repeating: 0, count: vocab * width)
        var position = [Double](repeating: 0, count: positions * width)
        var tokenType = [Double](repeating: 0, count: types * width)
        for r in ids.indices {
            for j in 0..<width {
                let g = dout[r * width + j]
                if ids[r] != paddingId { word[Int(ids[r]) * width + j] += g }
                position[(r % sequenceLength) * width + j] += g
                tokenType[Int(tokenTypes[r]) * width + j] += g
            }
        }
        return (word, position, tokenType)
    }

    /// y = γ ⊙ (x − μ)/σ + β per row, in float64 (σ = √(var + eps), biased variance).
    public static func layerNorm64(_ x: [Double], width: Int, gamma: [Double], beta: [Double], eps: Double) -> [Double] {
        var out = x
        for r in 0..<(x.count / width) {
            let row = Array(x[(r * width)..<((r + 1) * width)])
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(width)
            let sigma = (variance + eps).squareRoot()
            for j in 0..<width { out[r * width + j] = (row[j] - mean) / sigma * gamma[j] + beta[j] }
        }
        return out
    }

    /// Gradients of Σ dout ⊙ layerNorm64(x) with respect to x, γ and β, from the chain rule through
    /// μ and σ written out term by term (∂x̂_j/∂x_k = (δ_jk − 1/n − x̂_j x̂_k / n) / σ).
    public static func layerNormBackward(_ dout: [Double], x: [Double], width: Int, gamma: [Double], eps: Double)
        -> (dx: [Double], dgamma: [Double], dbeta: [Double]) {
        var dx = [Double](repeating: 0, count: x.count)
        var dgamma = [Double](repeating: 0, count: width), dbeta = [Double](repeating: 0, count: width)
        let n = Double(width)
        for r in 0..<(x.count / width) {
            let row = Array(x[(r * width)..<((r + 1) * width)])
            let mean = row.reduce(0, +) / n
            let sigma = ((row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }) / n + eps).squareRoot()
            let xhat = row.map { ($0 - mean) / sigma }
            for j in 0..<width {
                dgamma[j] += dout[r * width + j] * xhat[j]
                dbeta[j] += dout[r * width + j]
            }
            for k in 0..<width {
                var s = 0.0
                for j in 0..<width {
                    let delta: Double = j == k ? 1 : 0
                    s += dout[r * width + j] * gamma[j] * (delta - 1 / n - xhat[j] * xhat[k] / n) / sigma
                }
                dx[r * width + k] = s
            }
        }
        return (dx, dgamma, dbeta)
    }

    public static func gelu64(_ x: [Double]) -> [Double] { x.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) } }

    public static func geluTanh64(_ x: [Double]) -> [Double] {
        x.map { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }
    }

    /// dout ⊙ d/dx[½x(1 + erf(x/√2))] = dout ⊙ (Φ(x) + x·e^{−x²/2}/√(2π)).
    public static func geluBackward(_ dout: [Double], x: [Double]) -> [Double] {
        zip(dout, x).map { g, v in g * (0.5 * (1 + erf(v / 2.0.squareRoot())) + v * exp(-v * v / 2) / (2 * Double.pi).squareRoot()) }
    }

    /// dout ⊙ d/dx of the tanh form, differentiated by the product and chain rules.
    public static func geluTanhBackward(_ dout: [Double], x: [Double]) -> [Double] {
        let c = (2 / Double.pi).squareRoot()
        return zip(dout, x).map { g, v in
            let t = tanh(c * (v + 0.044715 * v * v * v))
            return g * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v))
        }
    }

    public static func biasBackward(_ dout: [Double], width: Int) -> [Double] {
        var out = [Double](repeating: 0, count: width)
        for (i, g) in dout.enumerated() { out[i % width] += g }
        return out
    }

    /// softmax(scale · x + mask) per row in float64; masked columns (mask ≤ −1e30) get exactly 0.
    public static func softmaxRows64(_ x: [Double], width: Int, scale: Double, mask: [Double]?) -> [Double] {
        var out = x
        for r in 0..<(x.count / width) {
            let logits = (0..<width).map { x[r * width + $0] * scale + (mask?[$0] ?? 0) }
            let top = logits.max() ?? 0
            let e = logits.map { exp($0 - top) }
            let total = e.reduce(0, +)
            for j in 0..<width { out[r * width + j] = e[j] / total }
        }
        return out
    }

    /// Gradient of Σ dout ⊙ softmaxRows64(x) with respect to x, from the full Jacobian
    /// ∂p_j/∂x_k = scale · p_j (δ_jk − p_k).
    public static func softmaxRowsBackward(_ dout: [Double], x: [Double], width: Int, scale: Double, mask: [Double]?) -> [Double] {
        let p = softmaxRows64(x, width: width, scale: scale, mask: mask)
        var dx = [Double](repeating: 0, count: x.count)
        for r in 0..<(x.count / width) {
            for k in 0..<width {
                var s = 0.0
                for j in 0..<width {
                    let delta: Double = j == k ? 1 : 0
                    s += dout[r * width + j] * scale * p[r * width + j] * (delta - p[r * width + k])
                }
                dx[r * width + k] = s
            }
        }
        return dx
    }
}
