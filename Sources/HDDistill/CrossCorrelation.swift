import HDTraining
import Foundation
import HDTensor

/// The self-distilled pruning objective (O'Neill, Dutta, Assem 2021; Barlow Twins' loss):
/// L_cc = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij², where C = Ẑ_sᵀ Ẑ_t / N is the cross-correlation over the N
/// rows (tokens) of the column-standardised features, ẑ = (z − μ) / √(σ² + ε) with the biased variance.
/// Only the kept columns take part (`keep[c] != 0`; nil keeps all): pruned student dimensions are
/// constant zero and have no correlation to speak of. Gradients are added (`scale ·`) for either side.
public struct CrossCorrelationLoss: Sendable {
    public var offDiagonalWeight: Float
    public var epsilon: Float

    public init(offDiagonalWeight: Float = 5e-3, epsilon: Float = 1e-5) {
        self.offDiagonalWeight = offDiagonalWeight
        self.epsilon = epsilon
    }

    public func callAsFunction(student: UnsafeBufferPointer<Float>, teacher: UnsafeBufferPointer<Float>,
                               width d: Int, keep: UnsafeBufferPointer<Float>? = nil,
                               studentGradient: UnsafeMutableBufferPointer<Float>? = nil,
                               teacherGradient: UnsafeMutableBufferPointer<Float>? = nil,
                               scale: Float = 1) -> Double {
        let n = student.count / max(d, 1)
        let columns = (0..<d).filter { keep == nil || keep![$0] != 0 }
        let k = columns.count
        guard n > 0, k > 0 else { return 0 }
        // Kept columns gathered and standardised: [n × k] each, plus 1/σ per column for the backward.
        var a = [Float](repeating: 0, count: n * k), b = a
        var invA = [Float](repeating: 0, count: k), invB = invA
        standardise(student, d: d, columns: columns, into: &a, inverseStd: &invA)
        standardise(teacher, d: d, columns: columns, into: &b, inverseStd: &invB)

        var c = [Float](repeating: 0, count: k * k)
        GEMM.multiply(transA: true, m: k, n: k, k: n, alpha: 1 / Float(n), a: a, lda: k, b: b, ldb: k, c: &c, ldc: k)
        var loss = 0.0
        // G = ∂L/∂C, reusing c's storage once the loss is summed.
        for i in 0..<k {
            for j in 0..<k {
                let x = c[i * k + j]
                if i == j {
                    loss += Double((1 - x) * (1 - x))
                    c[i * k + j] = -2 * (1 - x)
                } else {
                    loss += Double(offDiagonalWeight * x * x)
                    c[i * k + j] = 2 * offDiagonalWeight * x
                }
            }
        }
        if let studentGradient {
            // ∂L/∂Ẑ_s = Ẑ_t Gᵀ / N
            var dz = [Float](repeating: 0, count: n * k)
            GEMM.multiply(transB: true, m: n, n: k, k: k, alpha: 1 / Float(n), a: b, lda: k, b: c, ldb: k, c: &dz, ldc: k)
            standardiseBackward(dz: dz, z: a, inverseStd: invA, d: d, columns: columns, scale: scale, into: studentGradient)
        }
        if let teacherGradient {
            // ∂L/∂Ẑ_t = Ẑ_s G / N
            var dz = [Float](repeating: 0, count: n * k)
            GEMM.multiply(m: n, n: k, k: k, alpha: 1 / Float(n), a: a, lda: k, b: c, ldb: k, c: &dz, ldc: k)
            standardiseBackward(dz: dz, z: b, inverseStd: invB, d: d, columns: columns, scale: scale, into: teacherGradient)
        }
        return loss
    }

    private func standardise(_ x: UnsafeBufferPointer<Float>, d: Int, columns: [Int], into z: inout [Float], inverseStd: inout [Float]) {
        let n = x.count / d, k = columns.count
        for (slot, col) in columns.enumerated() {
            var mean = 0.0
            for r in 0..<n { mean += Double(x[r * d + col]) }
            mean /= Double(n)
            var variance = 0.0
            for r in 0..<n {
                let e = Double(x[r * d + col]) - mean
                variance += e * e
            }
            variance /= Double(n)
            let inv = Float(1 / (variance + Double(epsilon)).squareRoot())
            inverseStd[slot] = inv
            for r in 0..<n { z[r * k + slot] = (x[r * d + col] - Float(mean)) * inv }
        }
    }

    /// dx = (1/σ)(dẑ − mean(dẑ) − ẑ · mean(dẑ ⊙ ẑ)), exact with ε inside σ.
    private func standardiseBackward(dz: [Float], z: [Float], inverseStd: [Float], d: Int, columns: [Int],
                                     scale: Float, into dx: UnsafeMutableBufferPointer<Float>) {
        let k = columns.count, n = dz.count / k
        for (slot, col) in columns.enumerated() {
            var meanD = 0.0, meanDZ = 0.0
            for r in 0..<n {
                meanD += Double(dz[r * k + slot])
                meanDZ += Double(dz[r * k + slot] * z[r * k + slot])
            }
            let md = Float(meanD / Double(n)), mdz = Float(meanDZ / Double(n))
            let s = scale * inverseStd[slot]
            for r in 0..<n { dx[r * d + col] += s * (dz[r * k + slot] - md - z[r * k + slot] * mdz) }
        }
    }
}
