import CRuntimeKernels
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
    /// Milliseconds per forward, and with the roofline, per run of the forward's GEMMs alone and
    /// of its dense products through OpenBLAS (empty without it).
    public struct Samples: Sendable {
        public var forward: [Double] = []
        public var gemmsOnly: [Double] = []
        public var openBLASDenseOnly: [Double] = []
    }

    /// Untimed forwards run at least this long, whatever `warmup` asks: a worker thread just created
    /// starts on its creator's core, and Linux moves it to an idle one only tens of milliseconds
    /// later. Forwards of a few milliseconds (256/1024 at 1 × 128, int8: 3.7 ms) timed after 2
    /// warm-ups read 7–14 ms for the first 2–3 of them, both threads on one core.
    public static let minimumWarmUpSeconds = 0.2

    /// Runs `warmup` untimed forwards (more, until `minimumWarmUpSeconds` have passed), then
    /// `iterations` timed ones. With `roofline`, each timed
    /// forward is followed by a timed run of its GEMMs alone (the same GEMM calls on the same
    /// weights, buffers and threads, minus embeddings, biases, GELU, LayerNorm and softmax), so both
    /// are measured under the same conditions; then come `iterations` runs of its dense products
    /// through OpenBLAS's sgemm. Those are not interleaved: OpenBLAS's own threads keep spinning
    /// for tens of milliseconds after a threaded call and would slow the forward that followed.
    /// Weights in int8 or bf16 are not an f32 matrix OpenBLAS could read: no OpenBLAS runs then.
    public static func time(_ session: InferenceSession, batch: TokenBatch, warmup: Int, iterations: Int,
                            roofline: Bool = false) throws -> Samples {
        func timed(_ scope: InferenceSession.Scope) throws -> Double { try milliseconds(session, batch, scope) }
        let interleaved: [InferenceSession.Scope] = roofline ? [.all, .gemmsOnly] : [.all]
        let warmUpEnd = DispatchTime.now().uptimeNanoseconds + UInt64(minimumWarmUpSeconds * 1e9)
        var warmUps = 0
        while warmUps < warmup || DispatchTime.now().uptimeNanoseconds < warmUpEnd {
            for scope in interleaved { try session.forward(batch, scope: scope) }
            warmUps += 1
        }
        var samples = Samples()
        for _ in 0..<iterations {
            samples.forward.append(try timed(.all))
            if roofline { samples.gemmsOnly.append(try timed(.gemmsOnly)) }
        }
        guard roofline, session.model.precision == .fp32 else { return samples }
        for _ in 0..<warmup { try session.forward(batch, scope: .openBLASDenseOnly) }
        samples.openBLASDenseOnly = try (0..<iterations).map { _ in try timed(.openBLASDenseOnly) }
        return samples
    }

    /// Times several models in one run (`hd-infer compare`): `warmup` untimed forwards of each (more,
    /// until `minimumWarmUpSeconds` have passed), then
    /// `iterations` rounds that time one forward of each, in reverse order every other round. The
    /// models take turns so that whatever the machine does meanwhile (clock changes, other jobs)
    /// falls on all of them alike, and none always runs straight after the same other one. Returns
    /// milliseconds per forward, one list per entry of `runs`.
    public static func alternating(_ runs: [(session: InferenceSession, batch: TokenBatch)], warmup: Int,
                                   iterations: Int) throws -> [[Double]] {
        let warmUpEnd = DispatchTime.now().uptimeNanoseconds + UInt64(minimumWarmUpSeconds * 1e9)
        var warmUps = 0
        while warmUps < warmup || DispatchTime.now().uptimeNanoseconds < warmUpEnd {
            for run in runs { try run.session.forward(run.batch) }
            warmUps += 1
        }
        var samples = [[Double]](repeating: [], count: runs.count)
        for i in 0..<iterations {
            let order = i % 2 == 0 ? Array(runs.indices) : runs.indices.reversed()
            for r in order { samples[r].append(try milliseconds(runs[r].session, runs[r].batch, .all)) }
        }
        return samples
    }

    /// Wall-clock milliseconds of one forward.
    private static func milliseconds(_ session: InferenceSession, _ batch: TokenBatch, _ scope: InferenceSession.Scope) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try session.forward(batch, scope: scope)
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    /// The machine's single-precision FMA peak on `threads` cores in GFLOP/s (the median of 7
    /// runs of `hd_fma_peak` on every worker at once), or nil without AVX-512F.
    public static func fmaPeak(threads: Int) -> Double? {
        guard GEMMKernel.isPackedSupported else { return nil }
        return peak(threads: threads, operationsPerIteration: Int(HD_FMA_PEAK_FLOPS_PER_ITERATION)) { Double(hd_fma_peak($0)) }
    }

    /// The int8 peak of `threads` cores in GOP/s (`vpdpbusd` multiply-adds × 2, `hd_vnni_peak`),
    /// or nil without AVX-512 VNNI.
    public static func vnniPeak(threads: Int) -> Double? {
        guard Precision.Capabilities.current.avx512VNNI else { return nil }
        return peak(threads: threads, operationsPerIteration: Int(HD_VNNI_PEAK_OPS_PER_ITERATION)) { Double(hd_vnni_peak($0)) }
    }

    /// The bf16 peak of `threads` cores in GFLOP/s (`vdpbf16ps`, `hd_bf16_peak`), or nil without
    /// AVX-512 BF16.
    public static func bf16Peak(threads: Int) -> Double? {
        guard Precision.Capabilities.current.avx512BF16 else { return nil }
        return peak(threads: threads, operationsPerIteration: Int(HD_BF16_PEAK_FLOPS_PER_ITERATION)) { Double(hd_bf16_peak($0)) }
    }

    /// The int8 peak of `threads` cores' AMX tiles in GOP/s (`tdpbusd`, `hd_int8_tiles_peak`), or
    /// nil without AMX-INT8.
    public static func amxInt8Peak(threads: Int) -> Double? {
        guard Precision.Capabilities.current.amxInt8 else { return nil }
        return peak(threads: threads, operationsPerIteration: Int(HD_INT8_TILES_PEAK_OPS_PER_ITERATION),
                    iterations: 150_000) { Double(hd_int8_tiles_peak($0)) }
    }

    /// The bf16 peak of `threads` cores' AMX tiles in GFLOP/s (`tdpbf16ps`, `hd_bf16_tiles_peak`),
    /// or nil without AMX-BF16.
    public static func amxBF16Peak(threads: Int) -> Double? {
        guard Precision.Capabilities.current.amxBF16 else { return nil }
        return peak(threads: threads, operationsPerIteration: Int(HD_BF16_TILES_PEAK_FLOPS_PER_ITERATION),
                    iterations: 150_000) { Double(hd_bf16_tiles_peak($0)) }
    }

    /// Operations per second (÷ 1e9) of `loop(iterations)` run on every worker at once: the median
    /// of 7 runs. The default `iterations` of the vector loops are about 10 ms per run at 4 GHz
    /// (long enough to reach the sustained clock, short enough to repeat); a tile iteration takes
    /// 64 cycles, so the tile loops take fewer.
    private static func peak(threads: Int, operationsPerIteration: Int, iterations: Int = 3_000_000,
                             _ loop: (Int) -> Double) -> Double {
        let sink = UnsafeMutableBufferPointer<Double>.allocate(capacity: threads)
        defer { sink.deallocate() }
        // Untimed runs first, for 0.2 s: a worker thread just created starts on its creator's core,
        // and Linux moves it to an idle one only tens of milliseconds later. Timed at once, the
        // first peak of a process on 2 threads read one core's (221 GFLOP/s where the two reach 444).
        let warmUpEnd = DispatchTime.now().uptimeNanoseconds + 200_000_000
        while DispatchTime.now().uptimeNanoseconds < warmUpEnd {
            WorkerPool.shared.run(threads) { sink[$0] = loop(iterations / 4) }
        }
        let times = (0..<7).map { _ -> Double in
            let start = DispatchTime.now().uptimeNanoseconds
            WorkerPool.shared.run(threads) { sink[$0] = loop(iterations) }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        return Double(threads * iterations * operationsPerIteration) / LatencySummary(samples: times).p50 / 1e9
    }
}
