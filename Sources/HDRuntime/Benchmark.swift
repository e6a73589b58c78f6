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
    public static func time(_ session: InferenceSession, batch: TokenBatch, warmup: Int, iterations: Int) throws -> [Double] {
        for _ in 0..<warmup { try session.forward(batch) }
        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            try session.forward(batch)
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        return samples
    }

    /// One GEMM shape of the forward and how often one forward runs it.
    public struct GemmShape: Hashable, Sendable {
        public let m, n, k: Int
        public let transB: Bool
        /// Attention GEMMs run one per worker with OpenBLAS single-threaded, as the runtime does.
        public let perWorker: Bool
        public var flops: Int { 2 * m * n * k }
    }

    /// Every GEMM of a forward over `batchSize` full sequences of `sequenceLength`, with counts.
    public static func gemmShapes(config: BertConfig, batchSize: Int, sequenceLength: Int) -> [GemmShape: Int] {
        let T = batchSize * sequenceLength, d = config.hiddenSize, L = sequenceLength
        var shapes: [GemmShape: Int] = [:]
        for i in 0..<config.numHiddenLayers {
            let s = config.layer(i), a = s.attentionWidth, f = s.intermediateSize
            for shape in [GemmShape(m: T, n: 3 * a, k: d, transB: true, perWorker: false),
                          GemmShape(m: T, n: d, k: a, transB: true, perWorker: false),
                          GemmShape(m: T, n: f, k: d, transB: true, perWorker: false),
                          GemmShape(m: T, n: d, k: f, transB: true, perWorker: false)] {
                shapes[shape, default: 0] += 1
            }
            shapes[GemmShape(m: L, n: L, k: s.headSize, transB: true, perWorker: true), default: 0] += batchSize * s.attentionHeads
            shapes[GemmShape(m: L, n: s.headSize, k: L, transB: false, perWorker: true), default: 0] += batchSize * s.attentionHeads
        }
        return shapes
    }

    /// The roofline of a forward: the sgemm rate this machine reaches on exactly the forward's GEMM
    /// shapes, run the way the runtime runs them, and the time those GEMMs alone would take.
    public struct Roofline: Sendable {
        /// Seconds one forward's GEMMs take at the measured rates.
        public let gemmSeconds: Double
        /// GEMM + attention FLOPs of one forward.
        public let gemmFlops: Int
        public var sgemmGflopsPerSecond: Double { Double(gemmFlops) / gemmSeconds / 1e9 }
    }

    /// Times each GEMM shape of the forward (median of `repeats` after a warm-up) on operands of the
    /// same size, with OpenBLAS on `threads` threads (per-worker shapes: `threads` single-threaded
    /// GEMMs side by side, as the runtime's attention runs).
    public static func roofline(config: BertConfig, batchSize: Int, sequenceLength: Int, threads: Int,
                                repeats: Int = 7) -> Roofline {
        var seconds = 0.0, flops = 0
        let parallel = Parallel(threads: threads)
        for (shape, count) in gemmShapes(config: config, batchSize: batchSize, sequenceLength: sequenceLength) {
            let copies = shape.perWorker ? threads : 1
            let a = [Float](repeating: 0.01, count: shape.m * shape.k * copies)
            let b = [Float](repeating: 0.01, count: shape.n * shape.k * copies)
            var c = [Float](repeating: 0, count: shape.m * shape.n * copies)
            BLAS.setThreads(shape.perWorker ? 1 : threads)
            var samples: [Double] = []
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        let a = a.baseAddress!, b = b.baseAddress!, c = c.baseAddress!
                        func once() {
                            parallel.items(copies) { _, i in
                                BLAS.gemm(transB: shape.transB, m: shape.m, n: shape.n, k: shape.k,
                                          a: a + i * shape.m * shape.k, lda: shape.k,
                                          b: b + i * shape.n * shape.k, ldb: shape.transB ? shape.k : shape.n,
                                          c: c + i * shape.m * shape.n, ldc: shape.n)
                            }
                        }
                        // Small shapes run many times per sample so the clock resolves them.
                        let inner = max(1, 20_000_000 / max(shape.flops, 1))
                        once()
                        for _ in 0..<repeats {
                            let start = DispatchTime.now().uptimeNanoseconds
                            for _ in 0..<inner { once() }
                            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(inner * copies))
                        }
                    }
                }
            }
            seconds += samples.sorted()[samples.count / 2] * Double(count)
            flops += shape.flops * count
        }
        BLAS.setThreads(threads)
        return Roofline(gemmSeconds: seconds, gemmFlops: flops)
    }
}
