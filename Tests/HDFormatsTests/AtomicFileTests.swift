import Foundation
import HDFormats
import HDTestSupport
import Testing

@Suite("AtomicFile temp files")
struct AtomicFileTests {
    static func touch(_ path: String) throws { try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path)) }

    static func write(_ text: String, to path: String) throws {
        try AtomicFile.write(to: path, body: { try $0.write(text) }, validate: { _ in })
    }

    /// Only `.NAME.tmp-PID-RANDOM-ATTEMPT` of a gone PID goes; a live one (ours), another output's,
    /// and names that only look alike stay.
    @Test func removesOnlyStaleTempFilesOfTheSameOutput() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let dead = try TestSupport.deadPID(), me = getpid()
        let stale = [".out.ckpt.tmp-\(dead)-4242-0", ".out.ckpt.tmp-\(dead)-0-15"]
        let kept = [".out.ckpt.tmp-\(me)-4242-0", ".other.ckpt.tmp-\(dead)-1-0", ".out.ckpt.tmp-\(dead)-1-16",
                    ".out.ckpt.tmp-\(dead)-1", ".out.ckpt.tmp-\(dead)-1-0.bak", ".out.ckpt.tmp--1-0", "out.ckpt.tmp-\(dead)-1-0",
                    ".out.ckpt.tmp-+\(dead)-1-0"]
        for name in stale + kept { try Self.touch(dir + "/" + name) }
        try FileManager.default.createDirectory(atPath: dir + "/.out.ckpt.tmp-\(dead)-7-0", withIntermediateDirectories: false)
        try Self.write("new\n", to: dir + "/out.ckpt")
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        #expect(left == Set(kept + ["out.ckpt", ".out.ckpt.tmp-\(dead)-7-0"]))
        #expect(String(decoding: FileManager.default.contents(atPath: dir + "/out.ckpt") ?? Data(), as: UTF8.self) == "new\n")
    }

    @Test func removeStaleTempFilesReportsWhatWent() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let dead = try TestSupport.deadPID()
        try Self.touch(dir + "/.x.safetensors.tmp-\(dead)-1-0")
        try Self.touch(dir + "/.x.safetensors.tmp-\(getpid())-1-0")
        #expect(AtomicFile.removeStaleTempFiles(of: dir + "/x.safetensors") == [".x.safetensors.tmp-\(dead)-1-0"])
        #expect(AtomicFile.removeStaleTempFiles(of: dir + "/x.safetensors") == [])
    }

    /// The up-front check creates and removes a temp file, and throws the write's own error (naming
    /// the directory and what to do) where the write would fail.
    @Test func checkCreatable() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        try AtomicFile.checkCreatable(dir + "/out.ckpt")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        try Self.touch(dir + "/file")
        for (path, says) in [(dir + "/missing/out.ckpt", "\(dir)/missing does not exist; create it first"),
                             (dir + "/file/out.ckpt", "\(dir)/file is not a directory")] {
            #expect {
                try AtomicFile.checkCreatable(path)
            } throws: { error in
                guard let error = error as? FormatError else { return false }
                return error.kind == .io && error.file == path && error.message.contains(says)
            }
        }
    }
}
