import CRuntimeKernels
import Foundation

/// Element-wise and row-wise kernels of the BERT forward, each a function over raw buffers with
/// explicit sizes (row-major, rows × width) so a backward, a masked variant or a lean runtime can call
/// them on any slice of an arena. Indices (token ids, types) are trusted: the model validates its
/// input once, before the first kernel runs. `Reference` holds a plain f64 version of each for tests.
public enum Kernels {
    /// out[r, :] = word[ids[r], :] + position[r mod seqLen, :] + tokenType[types[r], :], for `rows`
    /// tokens laid out as consecutive sequences of `sequenceLength`. Workers split the rows.
    public static func embeddingSum(ids: UnsafePointer<Int32>, tokenTypes: UnsafePointer<Int32>,
                                    rows: Int, sequenceLength: Int,
                                    word: UnsafePointer<Float>, position: UnsafePointer<Float>,
                                    tokenType: UnsafePointer<Float>, width: Int,
                                    out: UnsafeMutablePointer<Float>) {
        ParallelFor.ranges(rows, cost: width) { _, range in
            for r in range {
                let w = word + Int(ids[r]) * width
                let p = position + (r % sequenceLength) * width
                let t = tokenType + Int(tokenTypes[r]) * width
                let o = out + r * width
                for j in 0..<width { o[j] = w[j] + p[j] + t[j] }
            }
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
    /// Workers split the rows (`threads` of them at most; each row is computed the same way
    /// whichever worker owns it, so the result does not depend on the thread count).
    ///
    /// With `keep` (0/1 per column, a pruning mask over the hidden width), mean and variance are taken
    /// over the kept columns only and dropped columns come out 0, so the result equals LayerNorm of
    /// the smaller dense vector the kept columns form. The unmasked loops stay free of the multiply.
    public static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int,
                                 gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
                                 out: UnsafeMutablePointer<Float>,
                                 mean: UnsafeMutablePointer<Float>? = nil, rstd: UnsafeMutablePointer<Float>? = nil,
                                 keep: UnsafePointer<Float>? = nil, threads: Int = BLAS.threads) {
        let n = keep.map { k in max((0..<width).reduce(Float(0)) { $0 + k[$1] }, 1) } ?? Float(width)
        ParallelFor.ranges(rows, cost: width, threads: threads) { _, range in
            for r in range {
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
    }

    /// Exact GELU, x · Φ(x) = ½x(1 + erf(x/√2)) (BERT's "gelu"). `out` may be `x`.
    /// Uses `FusedKernels`' branch-free erf so the loop vectorizes (libm's scalar `erff` was most of
    /// this kernel's time in a training step); with `avx512` (the default where the CPU has
    /// AVX-512F), CRuntimeKernels' 16-wide version of the same function (the pass is mostly memory
    /// traffic at a training batch's size: its share of a MiniLM step went from 1.6 to 1.3 %).
    public static func gelu(_ x: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>,
                            avx512: Bool = GEMMKernel.isPackedSupported) {
        let invSqrt2 = Float(0.70710678118654752440)
        ParallelFor.elements(count) { start, length in
            if avx512 { return hd_gelu(x + start, length, out + start) }
            let x = x + start, out = out + start
            for i in 0..<length {
                let v = x[i]
                out[i] = 0.5 * v * (1 + FusedKernels.erf(v * invSqrt2))
            }
        }
    }

    /// The tanh approximation ("gelu_new", "gelu_pytorch_tanh"). `out` may be `x`.
    public static func geluTanh(_ x: UnsafePointer<Float>, count: Int, out: UnsafeMutablePointer<Float>) {
        let c = Float(0.79788456080286535588)  // √(2/π)
        ParallelFor.elements(count) { start, length in
            let x = x + start, out = out + start
            for i in 0..<length {
                let v = x[i]
                out[i] = 0.5 * v * (1 + tanh(c * (v + 0.044715 * v * v * v)))
            }
        }
    }

    /// x[r, 0..<width] += bias for every row (rows `ld` floats apart, `width` by default).
    public static func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, ld: Int? = nil,
                               bias: UnsafePointer<Float>) {
        let ld = ld ?? width
        ParallelFor.ranges(rows, cost: width) { _, range in
            for r in range {
                let xr = x + r * ld
                for j in 0..<width { xr[j] += bias[j] }
            }
        }
    }

    /// out = a + b (residual connections). `out` may be `a` or `b`.
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int,
                           out: UnsafeMutablePointer<Float>) {
        ParallelFor.elements(count) { start, length in
            let a = a + start, b = b + start, out = out + start
            for i in 0..<length { out[i] = a[i] + b[i] }
        }
    }

    /// In place, each row becomes softmax(scale · x + mask), where `mask` holds one row of additive
    /// values (0 to keep and a large negative number to drop) per `rowsPerMask` consecutive rows: the
    /// key mask of one sequence is shared by all its heads and queries, so the rows of a whole batch
    /// [B × H × L × L] take `rowsPerMask` = H·L and a [B × L] mask (the default shares one mask row
    /// among all rows). Workers split the rows. Separate map and reduction passes over the
    /// (L1-resident) row with the polynomial exp, so each loop vectorizes; a fused scalar loop with
    /// a running max and sum cannot (Float addition is not reassociated).
    /// With `avx512` (the default where the CPU has AVX-512F), CRuntimeKernels' 16-wide version
    /// of the same passes (`hd_softmax_rows`).
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, scale: Float,
                                   mask: UnsafePointer<Float>?, rowsPerMask: Int = .max, threads: Int = BLAS.threads,
                                   avx512: Bool = GEMMKernel.isPackedSupported) {
        ParallelFor.ranges(rows, cost: width, threads: threads) { _, range in
            if avx512 {
                // One call per mask row's group of rows: a worker's range may start inside a group.
                var r = range.lowerBound
                while r < range.upperBound {
                    let group = r / rowsPerMask, end = mask == nil ? range.upperBound : min(range.upperBound, (group + 1) * rowsPerMask)
                    hd_softmax_rows(x + r * width, end - r, width, scale, mask.map { $0 + group * width }, end - r)
                    r = end
                }
                return
            }
            for r in range {
                let xr = x + r * width
                if let mask {
                    let m = mask + r / rowsPerMask * width
                    for j in 0..<width { xr[j] = xr[j] * scale + m[j] }
                } else {
                    for j in 0..<width { xr[j] *= scale }
                }
                let maxValue = maximum(xr, count: width)
                // The polynomial exp clamps to a tiny positive number; a masked key must get exactly 0
                // (and so no gradient), as libm's e^x underflows to.
                for j in 0..<width { let d = xr[j] - maxValue; xr[j] = d < -87.3 ? 0 : FusedKernels.exp(d) }
                let inv = 1 / sum(xr, count: width)
                for j in 0..<width { xr[j] *= inv }
            }
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

    // MARK: reductions, written to vectorize

    /// The largest of `count` ≥ 1 values. A compare-and-select on SIMD4 (the baseline SSE width)
    /// because the scalar `m = x > m ? x : m` loop does not vectorize, and the standard library's
    /// `pointwiseMax` is an out-of-line call. Which value a NaN yields is unspecified (a NaN logit
    /// makes the loss NaN anyway, which the trainer reports).
    @inlinable
    public static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = x[0]
        var j = 0
        if count >= 8 {
            var a = load4(x), b = load4(x + 4)
            j = 8
            while j + 8 <= count {
                let u = load4(x + j), w = load4(x + j + 4)
                a.replace(with: u, where: u .> a)
                b.replace(with: w, where: w .> b)
                j += 8
            }
            a.replace(with: b, where: b .> a)
            m = Swift.max(Swift.max(a[0], a[1]), Swift.max(a[2], a[3]))
        }
        while j < count { m = x[j] > m ? x[j] : m; j += 1 }
        return m
    }

    /// Σ x over `count` values with 8 independent partial sums, so the loop vectorizes (a single
    /// running Float sum is a serial chain the compiler may not reorder). Fixed order: the same
    /// input gives the same bits.
    @inlinable
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var a = SIMD4<Float>(repeating: 0), b = a
        var j = 0
        while j + 8 <= count { a += load4(x + j); b += load4(x + j + 4); j += 8 }
        a += b
        var total = (a[0] + a[1]) + (a[2] + a[3])
        while j < count { total += x[j]; j += 1 }
        return total
    }

    /// Σ x·y over `count` values, 8 partial sums as in `sum`.
    @inlinable
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var a = SIMD4<Float>(repeating: 0), b = a
        var j = 0
        while j + 8 <= count {
            a += load4(x + j) * load4(y + j)
            b += load4(x + j + 4) * load4(y + j + 4)
            j += 8
        }
        a += b
        var total = (a[0] + a[1]) + (a[2] + a[3])
        while j < count { total += x[j] * y[j]; j += 1 }
        return total
    }

    @inlinable @inline(__always)
    static func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }
}
