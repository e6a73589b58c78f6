import Foundation
import HDTestSupport
import Testing

/// `hd-infer bench --roofline --json` as a benchmark script reads it: every figure present, and the
/// figures consistent with one another (rates from the same FLOP count and medians).
@Suite("hd-infer bench")
struct BenchCLITests {
    @Test("--roofline --json: FLOPs by op add up, each ceiling's fraction is the forward's rate over it")
    func rooflineReport() throws {
        let r = try TestSupport.run(TestSupport.tool("hd-infer"),
                                    ["bench", "--shape", "96x192x2", "--batch", "2", "--seq-len", "40", "--warmup", "1",
                                     "--iterations", "3", "--roofline", "--json"], allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let byOp = try #require(report["flops_by_op"] as? [String: Int])
        let total = try #require(report["flops_per_forward"] as? Int)
        #expect(Set(byOp.keys) == ["gemm", "attention", "elementwise"])
        #expect(byOp.values.reduce(0, +) == total)
        // Dense layers per layer and sequence of n = 40 tokens: 2n·d·(3d + d + 2f), d = 96, f = 192.
        #expect(byOp["gemm"] == 2 * 2 * 2 * 40 * 96 * (4 * 96 + 2 * 192))
        #expect(byOp["attention"] == 2 * 2 * 2 * 2 * 40 * 40 * 96)
        let rate = try #require(report["gflops_per_s"] as? Double)
        let p50 = try #require((report["latency_ms"] as? [String: Double])?["p50"])
        #expect(abs(rate - Double(total) / p50 / 1e6) <= 1e-9 * rate)
        let roof = try #require(report["roofline"] as? [String: Double])
        for (ceiling, fraction) in [("sgemm_gflops_per_s", "fraction_of_sgemm"), ("openblas_sgemm_gflops_per_s", "fraction_of_openblas_sgemm"),
                                    ("fma_peak_gflops_per_s", "fraction_of_fma_peak")] {
            guard let c = roof[ceiling] else {
                #expect(ceiling == "fma_peak_gflops_per_s", "\(ceiling) missing")  // only without AVX-512F
                continue
            }
            #expect(c > 0)
            #expect(abs(try #require(roof[fraction]) - rate / c) <= 1e-9 * rate / c, "\(fraction)")
        }
        #expect((report["openblas_core"] as? String)?.isEmpty == false)
    }
}
