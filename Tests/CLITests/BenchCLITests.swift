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

    @Test("--precision: each precision the CPU has runs and is reported, with the int8 / bf16 peaks beside the FMA one",
          arguments: ["fp32", "bf16", "int8"])
    func precisionReported(precision: String) throws {
        let r = try TestSupport.run(TestSupport.tool("hd-infer"),
                                    ["bench", "--shape", "64x128x2", "--seq-len", "20", "--warmup", "1", "--iterations", "2",
                                     "--roofline", "--precision", precision, "--json"], allowFailure: true)
        let cpu = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let has = precision == "fp32" || cpu.contains(precision == "int8" ? "avx512_vnni" : "avx512_bf16")
        guard has else {
            // No fallback: the refusal names the instruction set the CPU lacks.
            #expect(r.status == 64 && r.stderr.contains(precision == "int8" ? "VNNI" : "BF16"), "\(r.stderr)")
            return
        }
        #expect(r.status == 0, "\(r.stderr)")
        let report = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(report["precision"] as? String == precision)
        let roof = try #require(report["roofline"] as? [String: Double])
        // OpenBLAS cannot read int8 or bf16 weights: its ceiling is fp32's only.
        #expect((roof["openblas_sgemm_gflops_per_s"] != nil) == (precision == "fp32"))
        #expect((roof["vnni_peak_gops_per_s"] != nil) == cpu.contains("avx512_vnni"))
        #expect((roof["bf16_peak_gflops_per_s"] != nil) == cpu.contains("avx512_bf16"))
        #expect((roof["amx_int8_peak_gops_per_s"] != nil) == cpu.contains("amx_int8"))
        #expect((roof["amx_bf16_peak_gflops_per_s"] != nil) == cpu.contains("amx_bf16"))
        // The instructions are reported with int8 / bf16 (AMX where the CPU has it), not with fp32.
        let amx = cpu.contains("amx_tile") && cpu.contains(precision == "int8" ? "amx_int8" : "amx_bf16")
        #expect(report["instructions"] as? String == (precision == "fp32" ? nil : amx ? "amx" : "avx512"))
    }

    /// --instructions picks the int8 kernel; AMX with fp32 (which it cannot multiply) is a usage error.
    @Test("--instructions: avx512 runs int8 on the vector kernel; amx with fp32 is a usage error")
    func instructionsChosen() throws {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let fp32 = try TestSupport.run(TestSupport.tool("hd-infer"), ["bench", "--shape", "64x128x2", "--iterations", "1",
                                                                     "--instructions", "amx"], allowFailure: true)
        #expect(fp32.status == 64 && fp32.stderr.contains("AMX multiplies int8 and bf16 only"), "\(fp32.stderr)")
        guard cpu.contains("avx512_vnni") else { return }
        let r = try TestSupport.run(TestSupport.tool("hd-infer"), ["bench", "--shape", "64x128x2", "--iterations", "1",
                                                                  "--precision", "int8", "--instructions", "avx512", "--json"],
                                    allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(report["instructions"] as? String == "avx512" && report["precision"] as? String == "int8")
    }

    @Test("--precision: a value outside fp32|bf16|int8 is a usage error", arguments: ["fp16", "INT8", ""])
    func badPrecision(value: String) throws {
        let r = try TestSupport.run(TestSupport.tool("hd-infer"), ["bench", "--shape", "64x128x2", "--precision", value],
                                    allowFailure: true)
        #expect(r.status == 64, "\(r.stderr)")
    }
}
