import Foundation

/// Fused variants of `Kernels` for the inference path: each makes one pass over memory where the
/// unfused sequence makes two or three, and exp and erf are branch-free polynomials, so their loops
/// vectorize instead of calling libm per element. Each has a plain reference in `Reference`.
public enum FusedKernels {
    typealias Vector = SIMD8<Float>
    static let lanes = Vector.scalarCount

    /// In place, x[r, :] = GELU(x[r, :] + bias), with the exact (erf) GELU.
    public static func biasGelu(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            mapRow(x + r * width, width: width, bias: bias) { v in
                0.5 * v * (1 + erf(v * 0.70710678118654752440))
            }
        }
    }

    /// In place, x[r, :] = GELU_tanh(x[r, :] + bias) ("gelu_new", "gelu_pytorch_tanh").
    public static func biasGeluTanh(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            mapRow(x + r * width, width: width, bias: bias) { v in
                // tanh(y) = 1 − 2 / (e^{2y} + 1); exp clamps, so large |y| saturates to ±1 instead of NaN.
                let y = 0.79788456080286535588 * (v + 0.044715 * v * v * v)
                return 0.5 * v * (2 - 2 / (exp(y + y) + 1))
            }
        }
    }

    /// In place over `residual`: residual[r] = LayerNorm(x[r] + bias + residual[r]) — the dense
    /// layer's bias, the skip connection and the norm in one pass per row plus one to write.
    public static func biasResidualLayerNorm(_ x: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                             residual: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                                             gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float) {
        let vectorEnd = width - width % lanes
        for r in 0..<rows {
            let xr = x + r * width, o = residual + r * width
            var sum = Vector(repeating: 0)
            var j = 0
            while j < vectorEnd {
                let v = load(xr + j) + load(bias + j) + load(o + j)
                store(v, o + j)
                sum += v
                j += lanes
            }
            var total = sum.sum()
            while j < width { let v = xr[j] + bias[j] + o[j]; o[j] = v; total += v; j += 1 }
            let mean = total / Float(width)
            // Second pass over the (cache-hot) sum: E[x²] − E[x]² loses digits when the mean is large.
            var sq = Vector(repeating: 0)
            j = 0
            while j < vectorEnd { let d = load(o + j) - mean; sq += d * d; j += lanes }
            var squares = sq.sum()
            while j < width { let d = o[j] - mean; squares += d * d; j += 1 }
            let rstd = 1 / (squares / Float(width) + eps).squareRoot()
            j = 0
            while j < vectorEnd {
                store((load(o + j) - mean) * rstd * load(gamma + j) + load(beta + j), o + j)
                j += lanes
            }
            while j < width { o[j] = (o[j] - mean) * rstd * gamma[j] + beta[j]; j += 1 }
        }
    }

    /// In place, each of `rows` rows (stride `width`) becomes its softmax. Scale and masking are
    /// done before: the runtime folds the scale into the Q·Kᵀ GEMM and leaves padded keys out of
    /// the row altogether, so a masked key costs nothing and gets probability exactly 0.
    public static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        let vectorEnd = width - width % lanes
        for r in 0..<rows {
            let xr = x + r * width
            var top = Vector(repeating: -.infinity)
            var j = 0
            while j < vectorEnd { top = pointwiseMax(top, load(xr + j)); j += lanes }
            var maxValue = top.max()
            while j < width { maxValue = max(maxValue, xr[j]); j += 1 }
            // A plain map: the loop vectorizer turns the scalar exp into vector code for whatever
            // the build targets, where SIMD-typed integer ops would be lowered lane by lane.
            for i in 0..<width { xr[i] = exp(xr[i] - maxValue) }
            var sum = Vector(repeating: 0)
            j = 0
            while j < vectorEnd { sum += load(xr + j); j += lanes }
            var total = sum.sum()
            while j < width { total += xr[j]; j += 1 }
            let inv = 1 / total
            j = 0
            while j < vectorEnd { store(load(xr + j) * inv, xr + j); j += lanes }
            while j < width { xr[j] *= inv; j += 1 }
        }
    }

    // MARK: scalar math, written to vectorize

    /// e^x to about 2 ulp (Cephes' expf: 2^n · p(r) with |r| ≤ ln2/2). Inputs are clamped to the
    /// finite range, so −∞ gives a tiny positive number, never NaN. Branch-free, so loops over it
    /// vectorize. Inlinable, so the losses' loops in other modules vectorise over it too.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let x = x < -87.3 ? -87.3 : (x > 88.3 ? 88.3 : x)
        // Round x·log2(e) to the nearest integer by adding 1.5·2²³: the integer lands in the low mantissa bits.
        let magic: Float = 12582912
        let t = x * 1.44269504088896341 + magic
        let n = t - magic
        let r = x - n * 0.693359375 + n * 2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * r * r + r + 1
        return y * Float(bitPattern: (t.bitPattern &- magic.bitPattern &+ 127) &<< 23)
    }

    /// erf(x) to a few ulp: the odd/even rational approximation on [−4, 4] used by Eigen and XLA;
    /// outside that range erf is ±1 in single precision. Branch-free; inlinable like `exp`.
    @inlinable @inline(__always)
    public static func erf(_ x: Float) -> Float {
        let x = x < -4 ? -4 : (x > 4 ? 4 : x)
        let x2 = x * x
        var p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08
        p = p * x2 - 2.10102402082508e-06
        p = p * x2 - 5.69250639462346e-05
        p = p * x2 - 7.34990630326855e-04
        p = p * x2 - 2.95459980854025e-03
        p = p * x2 - 1.60960333262415e-02
        p = p * x
        var q = x2 * -1.45660718464996e-05 - 2.13374055278905e-04
        q = q * x2 - 1.68282697438203e-03
        q = q * x2 - 7.37332916720468e-03
        q = q * x2 - 1.42647390514189e-02
        return p / q
    }

    // MARK: helpers

    /// x[j] = f(x[j] + bias[j]) over one row: a plain map the loop vectorizer handles.
    @inline(__always)
    static func mapRow(_ x: UnsafeMutablePointer<Float>, width: Int, bias: UnsafePointer<Float>, _ f: (Float) -> Float) {
        for j in 0..<width { x[j] = f(x[j] + bias[j]) }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> Vector { load(UnsafePointer(p)) }

    @inline(__always) static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
    }

}

extension Reference {
    /// GELU(x + bias) per row, in f64, with the exact erf or the tanh form.
    public static func biasGelu(_ x: [Float], width: Int, bias: [Float], tanhForm: Bool = false) -> [Float] {
        let shifted = addBias(x, width: width, bias: bias)
        return tanhForm ? geluTanh(shifted) : gelu(shifted)
    }

    /// LayerNorm(x + bias + residual) per row, in f64.
    public static func biasResidualLayerNorm(_ x: [Float], bias: [Float], residual: [Float], width: Int,
                                             gamma: [Float], beta: [Float], eps: Float) -> [Float] {
        let summed = x.indices.map { i in Float(Double(x[i]) + Double(bias[i % width]) + Double(residual[i])) }
        return layerNorm(summed, width: width, gamma: gamma, beta: beta, eps: eps)
    }
}
