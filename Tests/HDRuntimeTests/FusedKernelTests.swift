import Foundation
import HDTensor
import Testing

/// The fused kernels against `Reference` (f64), on widths with and without a vector tail.
@Suite struct FusedKernelTests {
    static func values(_ count: Int, seed: UInt64, spread: Float = 4) -> [Float] {
        var s = seed
        return (0..<count).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float(s >> 40) * 0x1p-24 - 0.5) * 2 * spread
        }
    }

    static func maxError(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }

    @Test(arguments: [(3, 16), (2, 37), (5, 7)])
    func biasGelu(rows: Int, width: Int) {
        let x = Self.values(rows * width, seed: 1), bias = Self.values(width, seed: 2, spread: 1)
        for tanhForm in [false, true] {
            var got = x
            got.withUnsafeMutableBufferPointer { g in
                bias.withUnsafeBufferPointer { b in
                    if tanhForm {
                        FusedKernels.biasGeluTanh(g.baseAddress!, rows: rows, width: width, bias: b.baseAddress!)
                    } else {
                        FusedKernels.biasGelu(g.baseAddress!, rows: rows, width: width, bias: b.baseAddress!)
                    }
                }
            }
            #expect(Self.maxError(got, Reference.biasGelu(x, width: width, bias: bias, tanhForm: tanhForm)) < 2e-6)
        }
    }

    @Test(arguments: [(4, 32), (3, 45), (2, 5)])
    func biasResidualLayerNorm(rows: Int, width: Int) {
        let x = Self.values(rows * width, seed: 3), residual = Self.values(rows * width, seed: 4).map { $0 + 10 }
        let bias = Self.values(width, seed: 5), gamma = Self.values(width, seed: 6), beta = Self.values(width, seed: 7)
        var got = residual
        got.withUnsafeMutableBufferPointer { r in
            FusedKernels.biasResidualLayerNorm(x, bias: bias, residual: r.baseAddress!, rows: rows, width: width,
                                               gamma: gamma, beta: beta, eps: 1e-12)
        }
        let want = Reference.biasResidualLayerNorm(x, bias: bias, residual: residual, width: width, gamma: gamma, beta: beta, eps: 1e-12)
        #expect(Self.maxError(got, want) < 1e-5)
    }

    @Test(arguments: [(3, 16), (4, 21), (2, 3), (1, 128)])
    func softmaxRows(rows: Int, width: Int) {
        let x = Self.values(rows * width, seed: 8, spread: 30)
        var got = x
        got.withUnsafeMutableBufferPointer { FusedKernels.softmaxRows($0.baseAddress!, rows: rows, width: width) }
        #expect(Self.maxError(got, Reference.softmaxRows(x, width: width, scale: 1, mask: nil)) < 1e-6)
    }

    @Test func vectorExpAndErfAreAccurate() {
        var worstExp: Double = 0, worstErf: Double = 0
        for i in 0..<4000 {
            let v = Float(i - 3000) * 0.0291  // −87.3 … 29
            let e = FusedKernels.exp(v)
            worstExp = max(worstExp, abs(Double(e) - Foundation.exp(Double(v))) / Foundation.exp(Double(v)))
            let u = Float(i - 2000) * 0.003  // −6 … 6
            worstErf = max(worstErf, abs(Double(FusedKernels.erf(u)) - Foundation.erf(Double(u))))
        }
        #expect(worstExp < 5e-7)
        #expect(worstErf < 5e-7)
    }
}
