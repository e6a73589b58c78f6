import CRuntimeKernels
import Foundation
import HDTensor

/// The distillation losses over raw row-major buffers, each forward and backward in one pass.
/// Conventions shared by all of them: a loss is returned as Double (summed in Double); a gradient
/// buffer, when given, gets `scale · ∂loss/∂x` ADDED to it, so the MLM and KL terms can pile into one
/// dlogits buffer and `scale` can carry a loss weight α or a 1/accumulation factor. Callers zero the
/// buffers once per step, or let the first term write its gradient over whatever the buffer holds
/// (`crossEntropy(overwrite: true)`, which writes every element of its rows).
public enum Losses {
    /// Mean cross-entropy of `rows` rows of `logits` [rows × vocabularySize] against `labels`;
    /// `correct` counts rows whose arg-max is the label (top-1 accuracy for evaluation).
    ///
    /// With `overwrite`, the gradient rows are written instead of added to: the caller's first term
    /// into a buffer it has not zeroed. That path takes the exponentials straight from the sum pass
    /// into the gradient row and scales them in place, one exp per logit instead of two.
    /// `avx512` picks the rows' kernel: `hd_cross_entropy_row` (AVX-512, where the CPU has it: 16
    /// lanes where Swift's loops get SSE's 4 — 11 % of a splade-tiny MLM step at 1 thread went to
    /// this loss before) or the Swift loops below; they agree within a few ulp (different sum order).
    public static func crossEntropy(logits: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>,
                                    vocabularySize v: Int, gradient: UnsafeMutableBufferPointer<Float>? = nil,
                                    overwrite: Bool = false, scale: Float = 1,
                                    avx512: Bool = GEMMKernel.isPackedSupported) -> (loss: Double, correct: Int) {
        let rows = labels.count
        guard rows > 0 else { return (0, 0) }
        let g = scale / Float(rows)
        let (total, correct) = Self.overRows(rows, width: v) { range in
            var total = 0.0, correct = 0
            for r in range {
                let row = logits.baseAddress! + r * v
                let label = Int(labels[r])
                let dRow = gradient.map { $0.baseAddress! + r * v }
                var maxValue: Float = 0, sum: Float = 0
                if avx512 {
                    sum = hd_cross_entropy_row(row, v, label, g, dRow, overwrite ? 1 : 0, &maxValue)
                } else {
                    maxValue = Kernels.maximum(row, count: v)
                    sum = expSum(row, count: v, shift: maxValue, scale: 1, store: overwrite ? dRow : nil)
                    if let dRow {
                        let factor = g / sum
                        if overwrite {
                            for j in 0..<v { dRow[j] *= factor }
                        } else {
                            addExp(row, count: v, shift: maxValue, scale: 1, factor: factor, into: dRow)
                        }
                        dRow[label] -= g
                    }
                }
                let logZ = maxValue + logf(sum)
                total += Double(logZ - row[label])
                // Top-1 is the first arg-max; the label's logit is the maximum only for a hit, so the scan
                // for an earlier tie runs only then.
                if row[label] == maxValue && !(0..<label).contains(where: { row[$0] == maxValue }) { correct += 1 }
            }
            return (total, correct)
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
        let (total, _) = Self.overRows(rows, width: v) { range in
            var total = 0.0
            for r in range {
                let t = teacher.baseAddress! + r * v
                let s = student.baseAddress! + r * v
                let tMax = Kernels.maximum(t, count: v), sMax = Kernels.maximum(s, count: v)
                let tLogZ = logf(expSum(t, count: v, shift: tMax, scale: inv))
                let sLogZ = logf(expSum(s, count: v, shift: sMax, scale: inv))
                total += klRow(t, s, count: v, tShift: tMax, sShift: sMax, scale: inv, tLogZ: tLogZ,
                                       sLogZ: sLogZ, gradientFactor: g, gradient: gradient.map { $0.baseAddress! + r * v })
            }
            return (total, 0)
        }
        return Double(tau * tau) * total / Double(rows)
    }

    /// Mean squared error between `student` and `target` [rows × rowLength] over the kept columns
    /// (`keep[c] != 0`; nil keeps all): Σ (s − t)² / (rows · kept). Pruned columns neither count nor
    /// get a gradient, so a masked student is not pushed to reproduce dimensions it no longer has.
    /// Workers split the rows (`overRows`).
    public static func meanSquaredError(student: UnsafeBufferPointer<Float>, target: UnsafeBufferPointer<Float>,
                                        rowLength: Int, keep: UnsafeBufferPointer<Float>? = nil,
                                        studentGradient: UnsafeMutableBufferPointer<Float>? = nil,
                                        targetGradient: UnsafeMutableBufferPointer<Float>? = nil,
                                        scale: Float = 1) -> Double {
        let rows = student.count / max(rowLength, 1)
        let kept = keep.map { k in k.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } } ?? rowLength
        guard rows > 0, kept > 0 else { return 0 }
        let g = 2 * scale / Float(rows * kept)
        let s = student.baseAddress!, t = target.baseAddress!
        let ds = studentGradient?.baseAddress, dt = targetGradient?.baseAddress
        let k = keep?.baseAddress
        let (total, _) = Self.overRows(rows, width: rowLength) { range in
            var total = 0.0
            for r in range {
                let o = r * rowLength
                // Eight partial sums in a fixed order, so the loop vectorises (a single running sum
                // is a serial chain: the attention term's 19 M probabilities per MiniLM step spent
                // 2 % of the step in it). A dropped column's difference is multiplied by 0, which
                // leaves the sum and the gradients as they were, as skipping it would.
                var partial = SIMD8<Float>(repeating: 0)
                var c = 0
                while c + 8 <= rowLength {
                    var d = Self.load8(s + o + c) - Self.load8(t + o + c)
                    if let k { d *= Self.load8(k + c) }
                    partial += d * d
                    if let ds { Self.store8(Self.load8(ds + o + c) + g * d, ds + o + c) }
                    if let dt { Self.store8(Self.load8(dt + o + c) - g * d, dt + o + c) }
                    c += 8
                }
                var rowSum = partial.sum()
                while c < rowLength {
                    let d = (s[o + c] - t[o + c]) * (k?[c] ?? 1)
                    rowSum += d * d
                    ds?[o + c] += g * d
                    dt?[o + c] -= g * d
                    c += 1
                }
                total += Double(rowSum)
            }
            return (total, 0)
        }
        return total / Double(rows * kept)
    }

    /// The hidden/embedding term: MSE(H_s, H_t · Wᵀ) with W a learnable [d × d] projection in
    /// nn.Linear layout (initialised to the identity by the caller). Writes the projection into
    /// `projected` [rows × d] (scratch the caller owns, reused across steps) and adds the gradients
    /// w.r.t. H_s and W; the teacher's H_t is a constant. With `projectionGradient`, `projected` ends
    /// holding dL/d(H_t · Wᵀ) instead (it is the scratch of dW, so nothing is allocated per call).
    /// Both products run in `precision` (the run's `--matmul`).
    public static func projectedMSE(student: UnsafeBufferPointer<Float>, teacher: UnsafeBufferPointer<Float>,
                                    projection: UnsafeBufferPointer<Float>, width d: Int,
                                    keep: UnsafeBufferPointer<Float>? = nil,
                                    projected: UnsafeMutableBufferPointer<Float>,
                                    studentGradient: UnsafeMutableBufferPointer<Float>? = nil,
                                    projectionGradient: UnsafeMutableBufferPointer<Float>? = nil,
                                    scale: Float = 1, precision: GEMMPrecision = .fp32) -> Double {
        let rows = student.count / max(d, 1)
        guard rows > 0 else { return 0 }
        GEMM.multiply(transB: true, m: rows, n: d, k: d, a: teacher.baseAddress!, lda: d,
                      b: projection.baseAddress!, ldb: d, c: projected.baseAddress!, ldc: d, precision: precision)
        let loss = meanSquaredError(student: student, target: UnsafeBufferPointer(projected), rowLength: d, keep: keep,
                                    studentGradient: studentGradient, scale: scale)
        guard let projectionGradient else { return loss }
        // dL/d(projected) = −2·scale·(s − p)/(rows · kept) on kept columns, 0 on pruned ones; written
        // over `projected`, then dW += dProjectedᵀ · H_t.
        let kept = keep.map { k in k.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } } ?? d
        guard kept > 0 else { return loss }
        let g = 2 * scale / Float(rows * kept)
        let p = projected.baseAddress!, s = student.baseAddress!
        ParallelFor.ranges(rows, cost: d) { _, range in
            for r in range {
                let pr = p + r * d, sr = s + r * d
                if let keep {
                    for c in 0..<d { pr[c] = keep[c] == 0 ? 0 : g * (pr[c] - sr[c]) }
                } else {
                    for c in 0..<d { pr[c] = g * (pr[c] - sr[c]) }
                }
            }
        }
        GEMM.multiply(transA: true, m: d, n: d, k: rows, a: UnsafePointer(p), lda: d,
                      b: teacher.baseAddress!, ldb: d, beta: 1, c: projectionGradient.baseAddress!, ldc: d,
                      precision: precision)
        return loss
    }

    /// Runs `body` over contiguous ranges of `rows` rows of `width` on `ParallelFor`'s workers (each
    /// row's gradient is its own) and adds the ranges' (loss, count) in range order: the loss's bits
    /// depend on the thread count, never on scheduling.
    @inline(__always) static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    private static func overRows(_ rows: Int, width: Int,
                                 _ body: (Range<Int>) -> (Double, Int)) -> (Double, Int) {
        let threads = BLAS.threads, workers = ParallelFor.workers(rows, cost: width, threads: threads)
        return withUnsafeTemporaryAllocation(of: (Double, Int).self, capacity: workers) { partial in
            ParallelFor.ranges(rows, cost: width, threads: threads) { w, range in partial.initializeElement(at: w, to: body(range)) }
            return partial.reduce((0.0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
        }
    }
}

/// The softmax loops of the cross-entropy and the KL over one vocabulary-wide row, with
/// `FusedKernels.exp` (a branch-free polynomial within 2 ulp of libm, inlined across modules) so
/// the loops vectorise; the ~30k-wide rows of the MLM head would otherwise spend much of a training
/// step in scalar `expf` calls. Reductions keep independent partial sums in a fixed order.
/// Arguments below −87.3 give a tiny positive number instead of 0, which no sum or gradient here
/// can tell apart.
extension Losses {
    /// Σ_j e^((x_j − shift)·scale). With `store`, the exponentials are also written there (one
    /// exp per element for a caller that needs them again), else through a 64-float block on the
    /// stack; the sum is the same either way. Per 64 elements, a map loop, which vectorises, then a
    /// SIMD sum: one loop doing both is a serial Float reduction the compiler may not reorder, and
    /// spread over scalar partial sums it ran at half the speed.
    static func expSum(_ x: UnsafePointer<Float>, count: Int, shift: Float, scale: Float,
                              store: UnsafeMutablePointer<Float>? = nil) -> Float {
        var block = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
        return withUnsafeMutableBytes(of: &block) { raw in
            let b = raw.baseAddress!.assumingMemoryBound(to: Float.self), size = raw.count / MemoryLayout<Float>.stride
            var total: Float = 0
            var j = 0
            while j < count {
                let n = min(size, count - j), xj = x + j, out = store.map { $0 + j } ?? b
                for i in 0..<n { out[i] = FusedKernels.exp((xj[i] - shift) * scale) }
                total += Kernels.sum(out, count: n)
                j += n
            }
            return total
        }
    }

    /// out_j += factor · e^((x_j − shift)·scale).
    static func addExp(_ x: UnsafePointer<Float>, count: Int, shift: Float, scale: Float, factor: Float,
                              into out: UnsafeMutablePointer<Float>) {
        for j in 0..<count { out[j] += factor * FusedKernels.exp((x[j] - shift) * scale) }
    }

    /// One row of KL(p_t ‖ p_s) from the rows' shifts and log-partition functions, adding
    /// gradientFactor · (p_s − p_t) into `gradient`. Partial sums in Float, the row in Double.
    static func klRow(_ t: UnsafePointer<Float>, _ s: UnsafePointer<Float>, count: Int, tShift: Float,
                             sShift: Float, scale: Float, tLogZ: Float, sLogZ: Float, gradientFactor g: Float,
                             gradient: UnsafeMutablePointer<Float>?) -> Double {
        if let gradient {
            for j in 0..<count {
                let logPt = (t[j] - tShift) * scale - tLogZ, logPs = (s[j] - sShift) * scale - sLogZ
                gradient[j] += g * (FusedKernels.exp(logPs) - FusedKernels.exp(logPt))
            }
        }
        var a: (Float, Float, Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0, 0, 0)
        @inline(__always) func term(_ j: Int) -> Float {
            let logPt = (t[j] - tShift) * scale - tLogZ, logPs = (s[j] - sShift) * scale - sLogZ
            return FusedKernels.exp(logPt) * (logPt - logPs)
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
