import Foundation

/// Backward of each `Kernels` op, in the forward file's order (llm.c style: one op, one gradient).
/// Parameter gradients (γ, β, biases, embedding tables) are ACCUMULATED (+=) so micro-batches of a
/// gradient-accumulation step add up without a copy; input gradients say per function whether they
/// overwrite or accumulate. `Reference` holds a float64 version of each for the gradient checks.
extension Kernels {
    /// Scatter-add of `embeddingSum`: dword[ids[r]] += dout[r], dposition[r mod seqLen] += dout[r],
    /// dtokenType[types[r]] += dout[r]. A word used twice in a batch receives both rows. Tokens whose
    /// id is `paddingId` add nothing to `dword` (PyTorch's `nn.Embedding(padding_idx:)`, which BERT
    /// uses, so the pad row is never trained by lookups); they still reach the other two tables.
    public static func embeddingSumBackward(_ dout: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
                                            tokenTypes: UnsafePointer<Int32>, rows: Int, sequenceLength: Int,
                                            width: Int, paddingId: Int32? = nil, dword: UnsafeMutablePointer<Float>,
                                            dposition: UnsafeMutablePointer<Float>,
                                            dtokenType: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let g = dout + r * width
            let p = dposition + (r % sequenceLength) * width
            let t = dtokenType + Int(tokenTypes[r]) * width
            for j in 0..<width {
                p[j] += g[j]
                t[j] += g[j]
            }
            if ids[r] == paddingId { continue }
            let w = dword + Int(ids[r]) * width
            for j in 0..<width { w[j] += g[j] }
        }
    }

    /// Rows of `dout` added to rows `indices[i]` of `dtable` (backward of `gatherRows`).
    public static func scatterAddRows(_ dout: UnsafePointer<Float>, indices: UnsafePointer<Int32>, count: Int,
                                      width: Int, dtable: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            let src = dout + i * width, dst = dtable + Int(indices[i]) * width
            for j in 0..<width { dst[j] += src[j] }
        }
    }

    /// Backward of `layerNorm` from its saved per-row `mean` and `rstd`: with x̂ = (x − mean)·rstd and
    /// g = dout ⊙ γ, dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)). `dx` is ACCUMULATED (a residual
    /// branch has usually written into it already); dγ += Σ_rows dout ⊙ x̂, dβ += Σ_rows dout.
    /// `dx` may not alias `dout`. With `keep`, the forward's column mask: the means run over kept
    /// columns and dropped columns receive nothing (their outputs were constant 0).
    public static func layerNormBackward(_ dout: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                         gamma: UnsafePointer<Float>, rows: Int, width: Int,
                                         dx: UnsafeMutablePointer<Float>, dgamma: UnsafeMutablePointer<Float>,
                                         dbeta: UnsafeMutablePointer<Float>, keep: UnsafePointer<Float>? = nil) {
        let invN = 1 / (keep.map { k in max((0..<width).reduce(Float(0)) { $0 + k[$1] }, 1) } ?? Float(width))
        for r in 0..<rows {
            let xr = x + r * width, o = dx + r * width
            let m = mean[r], s = rstd[r]
            var sumG: Float = 0, sumGX: Float = 0
            if let keep {
                let g = dout + r * width
                for j in 0..<width {
                    let xhat = (xr[j] - m) * s, gk = g[j] * keep[j]
                    let gj = gk * gamma[j]
                    sumG += gj
                    sumGX += gj * xhat
                    dgamma[j] += gk * xhat
                    dbeta[j] += gk
                }
                let meanG = sumG * invN, meanGX = sumGX * invN
                for j in 0..<width {
                    let xhat = (xr[j] - m) * s
                    o[j] += s * (g[j] * gamma[j] - meanG - xhat * meanGX) * keep[j]
                }
            } else {
                let g = dout + r * width
                for j in 0..<width {
                    let xhat = (xr[j] - m) * s
                    let gj = g[j] * gamma[j]
                    sumG += gj
                    sumGX += gj * xhat
                    dgamma[j] += g[j] * xhat
                    dbeta[j] += g[j]
                }
                let meanG = sumG * invN, meanGX = sumGX * invN
                for j in 0..<width {
                    let xhat = (xr[j] - m) * s
                    o[j] += s * (g[j] * gamma[j] - meanG - xhat * meanGX)
                }
            }
        }
    }

    /// In place, gradient ← gradient ⊙ GELU'(x) for the exact GELU: Φ(x) + x·φ(x). Uses
    /// `FusedKernels`' branch-free erf and exp (a few ulp) so the loop vectorizes: libm's scalar calls
    /// were most of this kernel's time. In place by signature: with separate dout and dx pointers the
    /// backward's in-place call failed the vectorizer's overlap check and ran the scalar loop.
    public static func geluBackward(_ gradient: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        let invSqrt2 = Float(0.70710678118654752440), invSqrt2Pi = Float(0.39894228040143267794)
        ParallelFor.elements(count) { start, length in
            let gradient = gradient + start, x = x + start
            for i in 0..<length {
                let v = x[i]
                let cdf = 0.5 * (1 + FusedKernels.erf(v * invSqrt2))
                let pdf = invSqrt2Pi * FusedKernels.exp(-0.5 * v * v)
                gradient[i] *= cdf + v * pdf
            }
        }
    }

    /// In place, gradient ← gradient ⊙ GELU'(x) for the tanh form: with u = c(x + 0.044715x³),
    /// t = tanh u, GELU' = ½(1 + t) + ½x(1 − t²)·c(1 + 3·0.044715x²). tanh u = 1 − 2/(e^{2u} + 1)
    /// through the vectorizable exp (which clamps, so it saturates to ±1). In place for the same
    /// reason as `geluBackward`.
    public static func geluTanhBackward(_ gradient: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        let c = Float(0.79788456080286535588)
        ParallelFor.elements(count) { start, length in
            let gradient = gradient + start, x = x + start
            for i in 0..<length {
                let v = x[i]
                let t = 1 - 2 / (FusedKernels.exp(2 * c * (v + 0.044715 * v * v * v)) + 1)
                let du = c * (1 + 3 * 0.044715 * v * v)
                gradient[i] *= 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du
            }
        }
    }

    /// dbias += Σ_rows dout (backward of `addBias`: each bias entry feeds one column of every row).
    /// Workers split the columns, so each column is still summed over rows in order.
    public static func biasBackward(_ dout: UnsafePointer<Float>, rows: Int, width: Int,
                                    dbias: UnsafeMutablePointer<Float>) {
        ParallelFor.ranges(width, cost: rows) { _, columns in
            let dbias = dbias + columns.lowerBound, count = columns.count
            for r in 0..<rows {
                let g = dout + r * width + columns.lowerBound
                for j in 0..<count { dbias[j] += g[j] }
            }
        }
    }

    /// In place, each row of `dprobs` becomes the gradient of `softmaxRows`' input x (before the
    /// scale): scale · p ⊙ (dp − Σ p ⊙ dp), from the saved output `probs`. The additive mask is a
    /// constant; a masked column has p = 0 and so gets no gradient.
    public static func softmaxRowsBackward(_ dprobs: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
                                           rows: Int, width: Int, scale: Float) {
        for r in 0..<rows {
            let g = dprobs + r * width, p = probs + r * width
            let dot = Kernels.dot(p, g, count: width)
            for j in 0..<width { g[j] = scale * p[j] * (g[j] - dot) }
        }
    }
}
