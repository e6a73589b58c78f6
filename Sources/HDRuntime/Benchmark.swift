import Foundation
import HDModel
import HDTensor

/// Latency statistics of repeated forwards, in milliseconds.
public struct LatencySummary: Codable, Equatable, Sendable {
    public let p50, p90, p99, mean: Double

    /// Nearest-rank percentiles of `samples` (which must not be empty).
    public init(samples: [Double]) {
        let s = samples.sorted()
        func rank(_ q: Double) -> Double { s[min(s.count - 1, max(0, Int((q * Double(s.count)).rounded(.up)) - 1))] }
        p50 = rank(0.5)
        p90 = rank(0.9)
        p99 = rank(0.99)
        mean = s.reduce(0, +) / Double(s.count)
    }
}

public enum Benchmark {
    /// Runs `warmup` untimed forwards, then `iterations` timed ones; milliseconds per forward.
    /// With `roofline`, each timed forward is followed by a timed run of its GEMMs alone (the same
    /// GEMM calls on the same weights, buffers and threads, minus embeddings, biases, GELU,
    /// LayerNorm and softmax), so both are measured under the same conditions.
    public static func time(_ session: InferenceSession, batch: TokenBatch, warmup: Int, iterations: Int,
                            roofline: Bool = false) throws -> (forward: [Double], gemmsOnly: [Double]) {
        for _ in 0..<warmup {
            try session.forward(batch)
            if roofline { try session.forward(batch, scope: .gemmsOnly) }
        }
        var forward: [Double] = [], gemmsOnly: [Double] = []
        forward.reserveCapacity(iterations)
        gemmsOnly.reserveCapacity(roofline ? iterations : 0)
        func timed(_ scope: InferenceSession.Scope) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try session.forward(batch, scope: scope)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
        for _ in 0..<iterations {
            forward.append(try timed(.all))
            if roofline { gemmsOnly.append(try timed(.gemmsOnly)) }
        }
        return (forward, gemmsOnly)
    }
}
