import Foundation
import HDFormats
import HDTestSupport
import Testing

/// Where the tools write, as a user meets it: an output that is an input (by another name, a hard
/// link or a symlink) or a device node is refused before any work; an output directory that is
/// missing fails in a second, before the corpus is read, not after training; the temp files of a
/// killed write are cleaned up by the next write of the same output; a --resume with another
/// --threads is refused; an --hf-dir that fails after the canonical file says what was written.
@Suite("output paths", .serialized)
struct OutputPathCLITests {
    static let convert = TestSupport.tool("hd-convert")
    static let export = TestSupport.tool("hd-export")

    static func run(_ tool: String, _ args: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(tool, args, allowFailure: true)
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// How the output names the input.
    enum Alias: String, CaseIterable, CustomTestStringConvertible {
        case samePath, dotSlash, hardLink, symlink
        var testDescription: String { rawValue }

        /// A path in `dir` that is `file` (a name in `dir`) by this route, made if needed.
        func path(to file: String, in dir: String) throws -> String {
            switch self {
            case .samePath: return dir + "/" + file
            case .dotSlash: return dir + "/./" + file
            case .hardLink:
                try FileManager.default.linkItem(atPath: dir + "/" + file, toPath: dir + "/hard-" + file)
                return dir + "/hard-" + file
            case .symlink:
                try FileManager.default.createSymbolicLink(atPath: dir + "/sym-" + file, withDestinationPath: dir + "/" + file)
                return dir + "/sym-" + file
            }
        }
    }

    /// `hd-distill TEACHER -o TEACHER` (by any name) used to train and replace the teacher with a
    /// student checkpoint (exit 0). Now: exit 64 naming both, the teacher byte-identical.
    @Test(arguments: Alias.allCases)
    func distillRefusesToOverwriteItsTeacher(_ alias: Alias) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let before = try #require(FileManager.default.contents(atPath: teacher))
        let out = try alias.path(to: "teacher.safetensors", in: dir)
        let r = try DistillCLITests.run(DistillCLITests.flags(teacher, out: out, steps: 1))
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("same file as the input") && r.stderr.contains("teacher.safetensors"), "\(r.stderr)")
        #expect(FileManager.default.contents(atPath: teacher) == before)
    }

    /// A corpus file as the output is an input too.
    @Test func distillRefusesToOverwriteItsCorpus() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let corpus = dir + "/corpus.txt"
        try FileManager.default.copyItem(atPath: DistillCLITests.corpus, toPath: corpus)
        var args = DistillCLITests.flags(teacher, out: corpus, steps: 1)
        args[args.firstIndex(of: "--corpus")! + 1] = corpus
        let r = try DistillCLITests.run(args)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("corpus.txt"), "\(r.stderr)")
        #expect(FileManager.default.contents(atPath: corpus) == FileManager.default.contents(atPath: DistillCLITests.corpus))
    }

    enum BadOutput: String, CaseIterable, CustomTestStringConvertible {
        case missingDirectory, parentIsAFile, deviceNode, directory
        var testDescription: String { rawValue }
    }

    /// An output that cannot be written fails before the teacher and corpus are read (the corpus
    /// given here does not exist, so an error about it would mean the check came too late), with
    /// 65 for a directory that cannot take the file and 64 for an output that is not a file.
    @Test(arguments: BadOutput.allCases)
    func distillChecksTheOutputFirst(_ bad: BadOutput) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let out: String, status: Int32, says: String
        switch bad {
        case .missingDirectory: (out, status, says) = (dir + "/missing/student.ckpt", 65, "\(dir)/missing does not exist")
        case .parentIsAFile: (out, status, says) = (teacher + "/student.ckpt", 65, "is not a directory")
        case .deviceNode: (out, status, says) = ("/dev/null", 64, "found a character device")
        case .directory: (out, status, says) = (dir, 64, "found a directory")
        }
        var args = DistillCLITests.flags(teacher, out: out, steps: 50)
        args[args.firstIndex(of: "--corpus")! + 1] = dir + "/no-such-corpus.txt"
        let r = try DistillCLITests.run(args)
        #expect(r.status == status, "\(r.stderr)")
        #expect(r.stderr.contains(says) && !r.stderr.contains("no-such-corpus"), "\(r.stderr)")
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.contains(".tmp-") })
    }

    /// hd-convert: -o onto its input (any alias) or a device node, --to hf-dir onto the input's own
    /// directory: exit 64, nothing changed.
    @Test(arguments: Alias.allCases)
    func convertRefusesToOverwriteItsInput(_ alias: Alias) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        for name in ["model.safetensors", "config.json", "vocab.txt"] {
            try FileManager.default.copyItem(atPath: TestSupport.fixture("tiny-bert/" + name), toPath: dir + "/" + name)
        }
        let input = dir + "/model.safetensors"
        let before = try #require(FileManager.default.contents(atPath: input))
        let out = try alias.path(to: "model.safetensors", in: dir)
        let cases: [[String]] = [
            [input, "-o", out],
            [dir, "-o", out],  // the directory as input: its model file is an input too
            [input, "-o", "/dev/null"],
            [dir, "--to", "hf-dir", "-o", dir],
            [input, "--to", "hf-dir", "-o", dir + "/."],
        ]
        for args in cases {
            let r = try Self.run(Self.convert, args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("the input") || r.stderr.contains("character device"), "\(args): \(r.stderr)")
        }
        #expect(FileManager.default.contents(atPath: input) == before)
    }

    /// A pruned student made by hd-distill in `dir` (about a second).
    static func student(in dir: String) throws -> String {
        let teacher = try DistillCLITests.teacher(in: dir)
        let out = dir + "/student.ckpt"
        try TestSupport.run(DistillCLITests.distill, DistillCLITests.flags(teacher, out: out, steps: 4)
            + ["--hidden", "16", "--ffn", "32", "--head-size", "4", "--prune-start", "1", "--prune-end", "4", "--prune-every", "1"])
        return out
    }

    /// hd-export: -o onto the student (by a hard link), --hf-dir onto the student's directory: 64,
    /// the student unchanged and nothing written.
    @Test func exportRefusesToOverwriteItsInput() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let student = try Self.student(in: dir)
        let before = try #require(FileManager.default.contents(atPath: student))
        let link = try Alias.hardLink.path(to: "student.ckpt", in: dir)
        for (args, says) in [(["-o", link], "same file as the input"), (["-o", dir + "/out.safetensors", "--hf-dir", dir], "directory of the input"),
                             (["-o", "/dev/null"], "character device")] {
            let r = try Self.run(Self.export, ["--shrink", student] + args)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(says), "\(args): \(r.stderr)")
        }
        #expect(FileManager.default.contents(atPath: student) == before)
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.safetensors") && !FileManager.default.fileExists(atPath: dir + "/config.json"))
    }

    /// An --hf-dir that cannot be made after the canonical file is written: exit 65, the message says
    /// the canonical file is written and complete and lists the HF files not written; --json still
    /// prints the summary, with the error.
    @Test(arguments: [false, true])
    func exportSaysWhatWasWrittenWhenHFDirFails(_ json: Bool) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let student = try Self.student(in: dir)
        let blocker = dir + "/file.txt"
        try Data("a file where a directory should be\n".utf8).write(to: URL(fileURLWithPath: blocker))
        let out = dir + "/dense.safetensors", hf = blocker + "/hf"
        let r = try Self.run(Self.export, ["--shrink", student, "-o", out, "--hf-dir", hf, "--threads", "1"] + (json ? ["--json"] : []))
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("--hf-dir not written") && r.stderr.contains("the canonical \(out) is written and complete"), "\(r.stderr)")
        #expect(r.stderr.contains("not written: \(hf)/model.safetensors, \(hf)/config.json, \(hf)/vocab.txt"), "\(r.stderr)")
        #expect(try SafeTensors.read(path: out).tensors.isEmpty == false)
        if json {
            let summary = try Self.json(r.stdout)
            #expect(summary["output"] as? String == out)
            #expect(summary["hf_dir"] == nil)
            let failure = try #require(summary["hf_error"] as? [String: Any])
            #expect(failure["dir"] as? String == hf && failure["written"] as? [String] == [])
            #expect((failure["error"] as? String)?.isEmpty == false)
        } else {
            #expect(r.stdout.contains("wrote \(out)") && !r.stdout.contains("wrote \(hf)"), "\(r.stdout)")
        }
    }

    /// kill -9 during a write leaves `.NAME.tmp-PID-…`; the next write of NAME removes it when PID is
    /// gone, and leaves a live process's temp (this test's own pid) and other names alone.
    @Test func nextWriteRemovesStaleTempFiles() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let dead = try TestSupport.deadPID()
        let stale = ".out.safetensors.tmp-\(dead)-12345-0", live = ".out.safetensors.tmp-\(getpid())-777-0"
        let others = [".other.safetensors.tmp-\(dead)-1-0", ".out.safetensors.tmp-\(dead)-x-0", ".out.safetensors.tmp-\(dead)-1-0-extra"]
        for name in [stale, live] + others { try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        let r = try Self.run(Self.convert, [TestSupport.fixture("tiny-bert/model.safetensors"), "-o", dir + "/out.safetensors"])
        #expect(r.status == 0, "\(r.stderr)")
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        #expect(left == Set(["out.safetensors", live] + others))
    }

    /// The real thing: SIGKILL hd-distill while it writes its checkpoints (saved every step, so some
    /// kill lands mid-write), then a run writing the same output leaves no temp file of a dead process.
    @Test func killedDistillTempFilesAreCleanedUp() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let out = dir + "/student.ckpt"
        // Leave a temp of a killed writer: hold one the way AtomicFile names it, for a dead pid.
        let dead = try TestSupport.deadPID()
        try Data(repeating: 1, count: 4096).write(to: URL(fileURLWithPath: dir + "/.student.ckpt.tmp-\(dead)-99-0"))
        var killedMidWrite = false
        for _ in 0..<5 where !killedMidWrite {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: DistillCLITests.distill)
            process.arguments = DistillCLITests.flags(teacher, out: out, steps: 400) + ["--save-every", "1"]
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Kill as soon as a temp file of this process appears.
            let prefix = ".student.ckpt.tmp-\(process.processIdentifier)-"
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline {
                if try FileManager.default.contentsOfDirectory(atPath: dir).contains(where: { $0.hasPrefix(prefix) }) { break }
                usleep(200)
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            killedMidWrite = try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.hasPrefix(prefix) }
        }
        #expect(killedMidWrite, "no kill landed during a write in 5 tries")
        let r = try DistillCLITests.run(DistillCLITests.flags(teacher, out: out, steps: 1))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.contains(".tmp-") })
    }

    /// The parallel sums are split by the thread count, so a run resumed with another --threads would
    /// not continue bit-exactly: refused (65) naming both counts; the same count resumes.
    @Test func resumeWithOtherThreadCountIsRefused() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let first = dir + "/first.ckpt"
        let r1 = try DistillCLITests.run(DistillCLITests.flags(teacher, out: first, steps: 2))
        #expect(r1.status == 0, "\(r1.stderr)")
        #expect(try SafeTensors.read(path: first).metadata["hd.threads"] == "1")
        var args = DistillCLITests.flags(teacher, out: dir + "/second.ckpt", steps: 2) + ["--resume", first]
        args[args.firstIndex(of: "--threads")! + 1] = "2"
        let r2 = try DistillCLITests.run(args)
        #expect(r2.status == 65, "\(r2.stderr)")
        #expect(r2.stderr.contains("trained with 1 thread, this run uses 2") && r2.stderr.contains("--threads 1"), "\(r2.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/second.ckpt"))
        args[args.firstIndex(of: "--threads")! + 1] = "1"
        let r3 = try DistillCLITests.run(args)
        #expect(r3.status == 0, "\(r3.stderr)")
    }
}
