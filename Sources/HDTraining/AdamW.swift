import Foundation
import HDTensor

/// AdamW (Loshchilov, Hutter 2019) over flat parameter buffers, operation for operation what
/// `torch.optim.AdamW` (single-tensor path) computes: decoupled decay θ ← θ·(1 − lr·λ) first, then
/// m ← m + (1−β1)(g − m), v ← β2·v + (1−β2)·g², θ ← θ − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε).
/// Hyper-parameters are Double, like PyTorch's Python floats, and every scalar is formed in Double
/// before it meets the Float buffers, so the two agree to the last bit or two.
public struct AdamW: Sendable, Equatable {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double

    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-6, weightDecay: Double = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// One update of `parameters` in place. `step` counts updates from 1 (it sets the bias
    /// correction); `decay: false` is for biases and LayerNorm parameters, which BERT recipes leave
    /// undecayed. All four buffers have the same length (the caller's flat layout guarantees it).
    public func update(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>,
                       m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>,
                       step: Int, learningRate: Float, decay: Bool = true) {
        let t = Double(step), lr = Double(learningRate)
        let stepSize = Float(lr / (1 - pow(beta1, t)))
        let correction2Root = Float((1 - pow(beta2, t)).squareRoot())
        let shrink = Float(decay ? 1 - lr * weightDecay : 1)
        let (c1, b2, c2, eps) = (Float(1 - beta1), Float(beta2), Float(1 - beta2), Float(epsilon))
        ParallelFor.elements(parameters.count) { start, count in
            let p = parameters.baseAddress! + start, g = gradients.baseAddress! + start
            let mp = m.baseAddress! + start, vp = v.baseAddress! + start
            for i in 0..<count {
                let gi = g[i]
                let mi = mp[i] + c1 * (gi - mp[i])
                let vi = vp[i] * b2 + c2 * gi * gi
                mp[i] = mi
                vp[i] = vi
                // v ≥ 0, so taking its magnitude changes nothing, but it lets the compiler drop libm's
                // errno path for a negative square root, which otherwise keeps this loop scalar.
                p[i] = p[i] * shrink - stepSize * (mi / (vi.magnitude.squareRoot() / correction2Root + eps))
            }
        }
    }
}

/// Linear warm-up to the peak rate, then linear decay to zero at `totalSteps`. Update s (0-based)
/// uses peak · (s+1)/warmup during warm-up and peak · (total − s)/(total − warmup) after, so the first
/// update already moves (transformers' schedule spends it at rate 0) and the last one is not zero.
public struct LRSchedule: Sendable, Equatable {
    public let peak: Float
    public let warmupSteps: Int
    public let totalSteps: Int

    public init(peak: Float, warmupSteps: Int, totalSteps: Int) throws {
        guard peak > 0, peak.isFinite, totalSteps > 0, warmupSteps >= 0, warmupSteps < totalSteps else {
            throw TrainingError(.invalidArgument, file: "<argument>",
                "learning-rate schedule: expected peak > 0, total ≥ 1 and 0 ≤ warm-up < total; "
                + "found peak \(peak), warm-up \(warmupSteps), total \(totalSteps)")
        }
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func rate(atUpdate s: Int) -> Float {
        if s < warmupSteps { return peak * Float(s + 1) / Float(warmupSteps) }
        return peak * Float(max(0, totalSteps - s)) / Float(totalSteps - warmupSteps)
    }
}

public enum GradientClipping {
    /// The global L2 norm of `gradients` (summed in Double); a NaN or ∞ in any gradient shows up here.
    public static func norm(_ gradients: UnsafeBufferPointer<Float>) -> Double {
        sumOfSquares(gradients).squareRoot()
    }

    /// The global L2 norm over several buffers (the model's gradients and the projections'), as if
    /// they were one: for a single buffer it is exactly `norm`.
    public static func norm(_ buffers: [UnsafeBufferPointer<Float>]) -> Double {
        buffers.reduce(0) { $0 + sumOfSquares($1) }.squareRoot()
    }

    /// Scales `gradients` so their global norm is at most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`
    /// does (factor maxNorm / (norm + 1e-6), capped at 1). Returns the norm before clipping; a
    /// non-finite norm leaves the buffer untouched for the caller to report.
    @discardableResult
    public static func clip(_ gradients: UnsafeMutableBufferPointer<Float>, maxNorm: Float) -> Double {
        clip([gradients], maxNorm: maxNorm)
    }

    /// `clip` over several buffers with one global norm, as clip_grad_norm_ over every parameter.
    /// `norm`: their `norm(_:)`, when the caller has just taken it and nothing has changed them since.
    @discardableResult
    public static func clip(_ buffers: [UnsafeMutableBufferPointer<Float>], maxNorm: Float, norm known: Double? = nil) -> Double {
        let total = known ?? norm(buffers.map { UnsafeBufferPointer($0) })
        guard total.isFinite else { return total }
        let factor = Float(Double(maxNorm) / (total + 1e-6))
        if factor < 1 {
            for gradients in buffers {
                ParallelFor.elements(gradients.count) { start, count in
                    let g = gradients.baseAddress! + start
                    for i in 0..<count { g[i] *= factor }
                }
            }
        }
        return total
    }

    /// Float partial sums (vectorised, in `Kernels.dot`) within blocks of 4096; Double between
    /// blocks. Workers split the blocks and their Double sums are added in worker order, so the bits
    /// depend on the thread count only (with one worker, every block in order).
    private static func sumOfSquares(_ gradients: UnsafeBufferPointer<Float>) -> Double {
        let block = 4096, blocks = (gradients.count + block - 1) / block
        let threads = BLAS.threads, workers = ParallelFor.workers(blocks, cost: block, threads: threads)
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: workers) { partial in
            ParallelFor.ranges(blocks, cost: block, threads: threads) { w, range in
                var sum = 0.0
                for b in range {
                    let start = b * block, count = min(block, gradients.count - start)
                    sum += Double(Kernels.dot(gradients.baseAddress! + start, gradients.baseAddress! + start, count: count))
                }
                partial.initializeElement(at: w, to: sum)
            }
            return (0..<workers).reduce(0.0) { $0 + partial[$1] }
        }
    }
}
