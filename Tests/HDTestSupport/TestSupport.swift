import Foundation

/// Paths and helpers shared by every test target: the repository root (from #filePath), committed
/// fixtures, real checkpoints (fetched by `tools/fetch-models.sh` into the ignored `.cache/`), the
/// Python interop venv (`tools/venv.sh`) and the built command-line tools.
public enum TestSupport {
    /// The repository root, found from this file's path (Tests/HDTestSupport/TestSupport.swift).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func fixture(_ relative: String) -> String {
        root.appendingPathComponent("fixtures").appendingPathComponent(relative).path
    }

    /// The directory of a real checkpoint (`splade-tiny`, `minilm`, `bert-base-mpnet`), fetched and
    /// sha256-verified on first use.
    public static func realModel(_ name: String) throws -> String {
        try lastLine(of: run("/bin/bash", [root.appendingPathComponent("tools/fetch-models.sh").path, name]))
    }

    /// The interop venv's python (numpy + safetensors), created on first use.
    public static func python() throws -> String {
        try lastLine(of: run("/bin/bash", [root.appendingPathComponent("tools/venv.sh").path]))
    }

    /// A built executable of this package (tests run with the same configuration as the tools).
    public static func tool(_ name: String) -> String {
        // The test bundle lives in .build/<triple>/<config>/; the executables sit beside it.
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = argv0.deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
            dir = dir.deletingLastPathComponent()
        }
        return root.appendingPathComponent(".build/release/\(name)").path
    }

    /// A fresh temporary directory, removed by the caller with `cleanUp`.
    public static func temporaryDirectory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hd-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// A pid that is gone: a process that ran and was reaped (for stale-temp-file tests).
    public static func deadPID() throws -> pid_t {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    public static func cleanUp(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

    public struct ProcessResult: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    public struct ProcessFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs a program to completion, capturing its output.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], stdin: String? = nil,
                           allowFailure: Bool = false) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = root
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        let result = ProcessResult(status: process.terminationStatus,
                                   stdout: String(decoding: outData, as: UTF8.self),
                                   stderr: String(decoding: errData, as: UTF8.self))
        if !allowFailure && result.status != 0 {
            throw ProcessFailure(description: "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
        return result
    }

    static func lastLine(of result: ProcessResult) throws -> String {
        guard let line = result.stdout.split(separator: "\n").last.map(String.init), !line.isEmpty else {
            throw ProcessFailure(description: "expected a path on the last line of output, found: \(result.stdout) \(result.stderr)")
        }
        return line
    }
}

/// max|a − b| / max(max|b|, floor) over the whole tensor: the error relative to the reference tensor's
/// scale, so a near-zero element of a large tensor does not demand more digits than f32 has.
public func relativeError(_ a: [Float], _ b: [Float], floor: Float = .leastNormalMagnitude) -> Float {
    guard a.count == b.count else { return .infinity }
    var diff: Float = 0, scale: Float = floor
    for i in a.indices {
        diff = max(diff, abs(a[i] - b[i]))
        scale = max(scale, abs(b[i]))
    }
    return diff / scale
}
