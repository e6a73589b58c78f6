import ArgumentParser
import Foundation
import HDCommandLine
import HDFormats

/// Times our readers on one file, the Swift side of `tools/bench_load.py compare` (docs/PERFORMANCE.md).
struct BenchLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-load",
        abstract: "Time reading every tensor of a file (and touching every value); print medians and peak memory.",
        discussion: """
        The first read warms the page cache and is not counted, so this measures parsing, copying and \
        inflating, not the disk. "read" ends when every tensor is usable as f32 (safetensors F32 tensors \
        are borrowed from the mapping, so their pages are first read by "read + sum").
        """)

    @Argument(help: ArgumentHelp("A safetensors, .npy or .npz file.", valueName: "file"))
    var file: String

    @Option(name: .customLong("repeat"), help: "Timed repetitions (the median is reported).")
    var repeats = 5

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @OptionGroup var threads: ThreadsFlag

    func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeat must be positive, found \(repeats)") }
    }

    struct Report: Encodable {
        var file: String
        var format: String
        var tensors: Int
        var values: Int
        var readSeconds: Double
        var readAndSumSeconds: Double
        var sum: Double
        var peakRSSMiB: Double
        var threads: Int

        enum CodingKeys: String, CodingKey {
            case file, format, tensors, values, sum, threads
            case readSeconds = "read_s", readAndSumSeconds = "read_and_sum_s", peakRSSMiB = "peak_rss_mib"
        }
    }

    func run() throws {
        try ToolErrors.reporting("hd-convert", json: json) {
            let cores = threads.resolved
            func read() throws -> (FileKind, TensorSet) { try TensorFile.read(path: file, threads: cores) }
            func sum(_ set: TensorSet) -> Double {
                var total: Double = 0
                for tensor in set.tensors.values {
                    guard let values = tensor.floats?.buffer else { continue }
                    var partial: Float = 0
                    for v in values { partial += v }
                    total += Double(partial)
                }
                return total
            }
            // Peak memory (VmHWM) is that of one read with every value touched: the high-water mark is taken
            // before the timed repetitions, which hold at most one more model at a time.
            var (kind, tensorCount, valueCount, total) = try { () throws -> (FileKind, Int, Int, Double) in
                let (kind, first) = try read()
                return (kind, first.tensors.count, first.elementCount, sum(first))
            }()
            let peakMiB = ProcessMemory.peakResidentMiB()
            var readTimes: [Double] = [], bothTimes: [Double] = []
            for _ in 0..<repeats {
                var start = DispatchTime.now().uptimeNanoseconds
                _ = try read()
                readTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                start = DispatchTime.now().uptimeNanoseconds
                total = sum(try read().1)
                bothTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
            let report = Report(file: file, format: kind.description, tensors: tensorCount, values: valueCount,
                                readSeconds: median(readTimes), readAndSumSeconds: median(bothTimes), sum: total,
                                peakRSSMiB: peakMiB, threads: cores)
            if json {
                try JSONOutput.print(report, pretty: false)
            } else {
                print("\(file): \(report.format), \(report.tensors) tensors, \(report.values) values, \(cores) threads")
                print(String(format: "read          %.4f s (median of %d)", report.readSeconds, repeats))
                print(String(format: "read + sum    %.4f s (sum %.6f)", report.readAndSumSeconds, total))
                print(String(format: "peak RSS      %.1f MiB (tensors: %.1f MiB as f32)", report.peakRSSMiB, Double(report.values * 4) / 1048576))
            }
        }
    }
}
