import ArgumentParser
import Foundation
import HDCommandLine
import HDModel
import HDRuntime
import HDTensor
import HDTokenizer

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time forwards of a model: latency percentiles, tokens/s, FLOPs by op, GFLOP/s, peak memory.")

    @Argument(help: ArgumentHelp("Checkpoint file or Hugging Face directory (or use --shape).", valueName: "model"))
    var model: String?

    @Option(name: .long, help: ArgumentHelp("Random weights of this size instead of a file: hidden x ffn x layers[x heads], e.g. 768x3072x12 (heads default to hidden / 64).", valueName: "shape"))
    var shape: String?

    @Option(name: .long, help: "Tokens per sequence.")
    var seqLen = 128

    @Option(name: .long, help: "Sequences per forward.")
    var batch = 1

    @Option(name: .long, help: "Threads for OpenBLAS and the runtime's own kernels.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: "Untimed forwards before timing; they go on for at least 0.2 s (until the worker threads have settled on their own cores).")
    var warmup = 5

    @Option(name: .long, help: "Timed forwards.")
    var iterations = 20

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Flag(name: .long, help: "Also time, interleaved with the forwards, their GEMMs alone (same calls, weights and threads); then their dense layers through OpenBLAS sgemm (same shapes and weight memory) and the AVX-512 FMA peak of the same cores; report the fraction of each that the whole forward reached.")
    var roofline = false

    @Option(name: .long, help: ArgumentHelp("Kernels: packed (weights packed once at load; AVX-512F GEMM with the bias and GELU fused, AVX-512F softmax) or openblas (row-major weights, OpenBLAS sgemm, the Swift element-wise kernels). Default: packed where the CPU has AVX-512F.", valueName: "kernel"))
    var kernel: GEMMKernel = .best

    @Option(name: .long, help: ArgumentHelp("Arithmetic of the dense layers (Q/K/V, attention output, FFN): fp32, bf16 (AVX-512 BF16 or AMX-BF16) or int8 (AVX-512 VNNI or AMX-INT8; weights per output channel, activations per row). Attention products, embeddings, LayerNorm, softmax and the MLM head stay fp32.", valueName: "precision"))
    var precision: Precision = .fp32

    @Option(name: .long, help: ArgumentHelp("What int8 and bf16 multiply with: amx (tile registers) or avx512 (vector registers; the same int8 results bit for bit). Default: amx where the CPU and OS have it.", valueName: "instructions"))
    var instructions: MatrixInstructions?

    @Option(name: .long, help: ArgumentHelp("Tokenize this text file as the input (padded where it runs out) instead of random ids; needs the model's vocabulary.", valueName: "file"))
    var text: String?

    func validate() throws {
        guard (model == nil) != (shape == nil) else { throw ValidationError("give either MODEL or --shape, not both or neither") }
        for (name, value) in [("--seq-len", seqLen), ("--batch", batch), ("--threads", threads), ("--iterations", iterations)] where value <= 0 {
            throw ValidationError("\(name) must be positive, found \(value)")
        }
        if warmup < 0 { throw ValidationError("--warmup must be ≥ 0, found \(warmup)") }
        if let shape { _ = try Self.config(shape: shape) }
        if text != nil, shape != nil { throw ValidationError("--text needs a model with a vocabulary, not --shape") }
        if kernel == .packed, !GEMMKernel.isPackedSupported {
            throw ValidationError("--kernel packed needs AVX-512F, which this CPU lacks; use --kernel openblas")
        }
        if let reason = precision.unsupportedReason(kernel: kernel, instructions: chosenInstructions) {
            throw ValidationError("--precision \(precision.rawValue)\(instructions.map { " --instructions \($0.rawValue)" } ?? ""): \(reason)")
        }
    }

    private var chosenInstructions: MatrixInstructions { instructions ?? precision.defaultInstructions() }

    /// `HxFxL[xHEADS]` → a BERT-base-like config with those widths.
    static func config(shape: String) throws -> BertConfig {
        let parts = shape.split(separator: "x").map { Int($0) }
        guard parts.count == 3 || parts.count == 4, parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("--shape: expected hidden x ffn x layers[x heads] of positive integers, e.g. 768x3072x12, found \"\(shape)\"")
        }
        let d = parts[0]!, heads = parts.count == 4 ? parts[3]! : max(1, d / 64)
        guard d % heads == 0 else { throw ValidationError("--shape: hidden \(d) is not a multiple of \(heads) heads") }
        return BertConfig(vocabSize: 30522, hiddenSize: d, numHiddenLayers: parts[2]!, numAttentionHeads: heads,
                          intermediateSize: parts[1]!)
    }

    struct Report: Encodable {
        struct Latency: Encodable { var p50, p90, p99, mean: Double }
        /// The forward's rate against three ceilings measured in the same run: its own GEMMs alone,
        /// OpenBLAS's sgemm on its dense layers' shapes (fp32 only: int8 and bf16 weights are no
        /// f32 matrix), and the FMA peak of `threads` cores; beside it the int8 (`vpdpbusd`) and bf16
        /// (`vdpbf16ps`) peaks of the same cores, and their AMX tiles' (`tdpbusd`, `tdpbf16ps`),
        /// where the CPU has them.
        struct Roofline: Encodable {
            var sgemmGflopsPerS: Double
            var gemmMs: Double
            var fractionOfSgemm: Double
            var openblasSgemmGflopsPerS: Double?
            var openblasDenseMs: Double?
            var fractionOfOpenblasSgemm: Double?
            var fmaPeakGflopsPerS: Double?
            var fractionOfFmaPeak: Double?
            var vnniPeakGopsPerS: Double?
            var bf16PeakGflopsPerS: Double?
            var amxInt8PeakGopsPerS: Double?
            var amxBF16PeakGflopsPerS: Double?
            enum CodingKeys: String, CodingKey {
                case sgemmGflopsPerS = "sgemm_gflops_per_s", gemmMs = "gemm_ms", fractionOfSgemm = "fraction_of_sgemm"
                case openblasSgemmGflopsPerS = "openblas_sgemm_gflops_per_s", openblasDenseMs = "openblas_dense_ms"
                case fractionOfOpenblasSgemm = "fraction_of_openblas_sgemm"
                case fmaPeakGflopsPerS = "fma_peak_gflops_per_s", fractionOfFmaPeak = "fraction_of_fma_peak"
                case vnniPeakGopsPerS = "vnni_peak_gops_per_s", bf16PeakGflopsPerS = "bf16_peak_gflops_per_s"
                case amxInt8PeakGopsPerS = "amx_int8_peak_gops_per_s", amxBF16PeakGflopsPerS = "amx_bf16_peak_gflops_per_s"
            }
        }
        var model: String
        var params: Int
        var weightsMB: Double
        var batch, seqLen, tokens, threads, iterations: Int
        var flopsPerForward: Int
        var flopsByOp: [String: Int]
        var flopsByLayer: [Int]
        var latencyMs: Latency
        var latencySamplesMs: [Double]
        var tokensPerS: Double
        var gflopsPerS: Double
        var peakRssMB: Double
        var roofline: Roofline?
        var openblasCoretype: String?
        var openblasCore: String
        var gemmKernel: String
        var precision: String
        /// `MatrixInstructions` of the int8 / bf16 dense layers; nil in fp32.
        var instructions: String?

        enum CodingKeys: String, CodingKey {
            case model, params, batch, threads, iterations, tokens, roofline
            case weightsMB = "weights_mb", seqLen = "seq_len", flopsPerForward = "flops_per_forward"
            case flopsByOp = "flops_by_op", flopsByLayer = "flops_by_layer", latencyMs = "latency_ms", latencySamplesMs = "latency_samples_ms"
            case tokensPerS = "tokens_per_s", gflopsPerS = "gflops_per_s", peakRssMB = "peak_rss_mb"
            case openblasCoretype = "openblas_coretype", openblasCore = "openblas_core", gemmKernel = "gemm_kernel"
            case precision, instructions
        }
    }

    func run() throws {
        try ToolErrors.reporting("hd-infer", json: json) {
            let (runtime, vocabulary) = try loadModel()
            let input = try makeBatch(runtime.config, vocabulary: vocabulary)
            let session = try InferenceSession(model: runtime, maxBatch: batch, maxLength: seqLen, threads: threads)
            // The peaks before the forwards: the roofline's OpenBLAS runs leave OpenBLAS's threads
            // spinning for tens of milliseconds, which a peak timed after them would share a core with.
            let peaks = roofline ? (fma: Benchmark.fmaPeak(threads: threads), vnni: Benchmark.vnniPeak(threads: threads),
                                    bf16: Benchmark.bf16Peak(threads: threads),
                                    amxInt8: Benchmark.amxInt8Peak(threads: threads),
                                    amxBF16: Benchmark.amxBF16Peak(threads: threads)) : nil
            let timings = try Benchmark.time(session, batch: input, warmup: warmup, iterations: iterations, roofline: roofline)
            let samples = timings.forward, latency = LatencySummary(samples: samples)
            let L = input.sequenceLength
            let lengths = (0..<batch).map { b in input.attentionMask[(b * L)..<((b + 1) * L)].reduce(0) { $0 + Int($1) } }
            let flops = FlopReport(config: runtime.config, lengths: lengths)
            let total = flops.total, tokens = lengths.reduce(0, +)
            var report = Report(
                model: model ?? "random \(shape!)", params: runtime.size.parameters,
                weightsMB: Double(runtime.size.parameters * 4) / 1_048_576, batch: batch, seqLen: seqLen, tokens: tokens,
                threads: threads, iterations: iterations, flopsPerForward: total.total,
                flopsByOp: ["gemm": total.gemm, "attention": total.attention, "elementwise": total.elementwise],
                flopsByLayer: flops.layers.map(\.total),
                latencyMs: .init(p50: latency.p50, p90: latency.p90, p99: latency.p99, mean: latency.mean),
                latencySamplesMs: samples,
                tokensPerS: Double(tokens) / (latency.p50 / 1000), gflopsPerS: Double(total.total) / (latency.p50 / 1000) / 1e9,
                peakRssMB: ProcessMemory.peakResidentMiB(), roofline: nil,
                openblasCoretype: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], openblasCore: BLAS.coreName,
                gemmKernel: kernel.rawValue, precision: precision.rawValue,
                instructions: precision == .fp32 ? nil : runtime.instructions.rawValue)
            if let peaks {
                // FLOPs of the GEMMs over the median time of the forward's GEMMs alone; of the dense
                // layers over OpenBLAS's median time for them; the FMA peak of the same cores.
                let gemmMs = LatencySummary(samples: timings.gemmsOnly).p50
                let rate = Double(total.gemm + total.attention) / (gemmMs / 1000) / 1e9
                let openBLASMs = timings.openBLASDenseOnly.isEmpty ? nil : LatencySummary(samples: timings.openBLASDenseOnly).p50
                let openBLASRate = openBLASMs.map { Double(total.gemm) / ($0 / 1000) / 1e9 }
                let peak = peaks.fma
                report.roofline = .init(sgemmGflopsPerS: rate, gemmMs: gemmMs, fractionOfSgemm: report.gflopsPerS / rate,
                                        openblasSgemmGflopsPerS: openBLASRate, openblasDenseMs: openBLASMs,
                                        fractionOfOpenblasSgemm: openBLASRate.map { report.gflopsPerS / $0 },
                                        fmaPeakGflopsPerS: peak, fractionOfFmaPeak: peak.map { report.gflopsPerS / $0 },
                                        vnniPeakGopsPerS: peaks.vnni, bf16PeakGflopsPerS: peaks.bf16,
                                        amxInt8PeakGopsPerS: peaks.amxInt8, amxBF16PeakGflopsPerS: peaks.amxBF16)
            }
            if json { try JSONOutput.print(report) } else { printTable(report) }
        }
    }

    /// The runtime model, and the vocabulary when the checkpoint has one. The loader's finite-value
    /// pass is skipped: it would touch every page of a mapped file and inflate resident memory.
    private func loadModel() throws -> (RuntimeModel, [String]?) {
        if let shape {
            return (try RuntimeModel.synthetic(config: try Self.config(shape: shape), kernel: kernel, precision: precision,
                                               instructions: chosenInstructions), nil)
        }
        var options = LoadOptions()
        options.checkFinite = false
        let checkpoint = try Checkpoint.load(model!, options: options)
        return (try RuntimeModel(model: try BertModel(checkpoint: checkpoint), kernel: kernel, precision: precision,
                                 instructions: chosenInstructions), checkpoint.vocab)
    }

    private func makeBatch(_ config: BertConfig, vocabulary: [String]?) throws -> TokenBatch {
        guard let text else { return try Self.randomBatch(batch: batch, seqLen: seqLen, vocabSize: config.vocabSize) }
        guard let vocabulary else {
            throw ModelError(.badVocab, file: model!, "--text needs the model's vocabulary (vocab.txt beside it or embedded)")
        }
        let tokenizer = try BertTokenizer(vocabulary: Vocabulary(tokens: vocabulary, source: model!))
        let content = try readUTF8File(text)
        let pieces = tokenizer.encode(content), body = max(0, seqLen - 2)
        let sequences = (0..<batch).map { b -> [Int] in
            let chunk = pieces.dropFirst(b * body).prefix(body)
            return [tokenizer.specialIDs.cls] + chunk + [tokenizer.specialIDs.sep]
        }
        // Every row padded to --seq-len (not only to the longest row): the forward is timed at the
        // shape the report names, whatever the length of the text.
        func padded(_ row: [Int], _ value: Int) -> [Int] { row + [Int](repeating: value, count: seqLen - row.count) }
        return try TokenBatch(ids: sequences.map { padded($0, tokenizer.specialIDs.pad) },
                              attentionMask: sequences.map { padded([Int](repeating: 1, count: $0.count), 0) })
    }

    /// `batch` sequences of `seqLen` random ids below `vocabSize`, every token real.
    static func randomBatch(batch: Int, seqLen: Int, vocabSize: Int) throws -> TokenBatch {
        var rng = SystemRandomNumberGenerator()
        // Ids past the special tokens, as real text would have.
        let low = min(1000, vocabSize - 1)
        return try TokenBatch(batchSize: batch, sequenceLength: seqLen,
                              ids: (0..<(batch * seqLen)).map { _ in Int.random(in: low..<vocabSize, using: &rng) })
    }

    private func printTable(_ r: Report) {
        func row(_ name: String, _ value: String) { print(name.padding(toLength: 22, withPad: " ", startingAt: 0) + value) }
        func g(_ x: Double) -> String { String(format: "%.2f", x) }
        row("model", r.model)
        row("parameters", "\(r.params) (\(g(r.weightsMB)) MiB f32)")
        row("input", "batch \(r.batch) × seq \(r.seqLen) (\(r.tokens) real tokens), \(r.threads) threads")
        row("latency ms", "p50 \(g(r.latencyMs.p50))  p90 \(g(r.latencyMs.p90))  p99 \(g(r.latencyMs.p99))  mean \(g(r.latencyMs.mean))  (\(r.iterations) runs)")
        row("tokens/s", String(format: "%.0f", r.tokensPerS))
        row("GFLOP per forward", "\(g(Double(r.flopsPerForward) / 1e9)) (gemm \(g(Double(r.flopsByOp["gemm"]!) / 1e9)), attention \(g(Double(r.flopsByOp["attention"]!) / 1e9)), element-wise \(g(Double(r.flopsByOp["elementwise"]!) / 1e9)))")
        row("GFLOP/s", g(r.gflopsPerS))
        if let roof = r.roofline {
            func percent(_ x: Double) -> String { String(format: "%.0f %%", x * 100) }
            row("sgemm roofline", "\(g(roof.sgemmGflopsPerS)) GFLOP/s on the forward's GEMMs alone (\(g(roof.gemmMs)) ms); reached \(percent(roof.fractionOfSgemm))")
            if let rate = roof.openblasSgemmGflopsPerS, let ms = roof.openblasDenseMs, let fraction = roof.fractionOfOpenblasSgemm {
                row("OpenBLAS sgemm", "\(g(rate)) GFLOP/s on the dense layers' shapes (\(g(ms)) ms); reached \(percent(fraction))")
            }
            if let peak = roof.fmaPeakGflopsPerS, let fraction = roof.fractionOfFmaPeak {
                row("FMA peak", "\(g(peak)) GFLOP/s on \(r.threads) cores (AVX-512 FMAs alone); reached \(percent(fraction))")
            }
            if let peak = roof.vnniPeakGopsPerS { row("int8 peak", "\(g(peak)) GOP/s on \(r.threads) cores (vpdpbusd alone)") }
            if let peak = roof.bf16PeakGflopsPerS { row("bf16 peak", "\(g(peak)) GFLOP/s on \(r.threads) cores (vdpbf16ps alone)") }
            if let peak = roof.amxInt8PeakGopsPerS { row("AMX int8 peak", "\(g(peak)) GOP/s on \(r.threads) cores (tdpbusd alone)") }
            if let peak = roof.amxBF16PeakGflopsPerS { row("AMX bf16 peak", "\(g(peak)) GFLOP/s on \(r.threads) cores (tdpbf16ps alone)") }
        }
        row("peak RSS", "\(g(r.peakRssMB)) MiB")
        row("OpenBLAS core", "\(r.openblasCore) (OPENBLAS_CORETYPE \(r.openblasCoretype ?? "unset"))")
        row("GEMM kernel", r.gemmKernel)
        row("precision", r.precision + (r.instructions.map { " (\($0))" } ?? ""))
    }
}

extension GEMMKernel: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension MatrixInstructions: ExpressibleByArgument {}
