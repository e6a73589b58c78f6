import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// hd-convert as a user runs it: the built binary, real checkpoints, real files on disk.
@Suite("hd-convert", .serialized)
struct ConvertCLITests {
    static let convert = TestSupport.tool("hd-convert")

    static func run(_ args: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(convert, args, allowFailure: true)
    }

    /// Canonical tensors of a file, as our reader sees them, keyed by name → sha256 of f32 bytes.
    static func digests(_ path: String, config: String? = nil) throws -> [String: String] {
        var options = LoadOptions()
        options.configPath = config
        let checkpoint = try Checkpoint.load(path, options: options)
        return checkpoint.tensors.tensors.mapValues { FileDigest.sha256(of: UnsafeRawBufferPointer($0.floats!.buffer)) }
    }

    /// safetensors → canonical safetensors → npz (stored and deflated) → safetensors: bit-identical
    /// tensors all the way, and the Python libraries read every one of our outputs with identical values.
    @Test(arguments: ["splade-tiny", "minilm"])
    func realRoundTrip(model: String) throws {
        let dir = try TestSupport.realModel(model)
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let canonical = "\(tmp)/canonical.safetensors"
        var r = try Self.run([dir + "/model.safetensors", "-o", canonical])
        #expect(r.status == 0, "\(r.stderr)")
        let reference = try Self.digests(dir + "/model.safetensors")
        #expect(try Self.digests(canonical) == reference)

        let config = dir + "/config.json"
        for (npz, extra) in [("stored.npz", [String]()), ("deflated.npz", ["--compress"])] {
            r = try Self.run([canonical, "--to", "npz", "-o", "\(tmp)/\(npz)"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let back = "\(tmp)/\(npz).safetensors"
            r = try Self.run(["\(tmp)/\(npz)", "--config", config, "-o", back])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Self.digests(back) == reference, "\(npz) round trip")
        }

        // The Python reference readers (safetensors, numpy.load) see the same values.
        let python = try TestSupport.python()
        let files = [canonical, "\(tmp)/stored.npz", "\(tmp)/deflated.npz"]
        let out = try TestSupport.run(python, [TestSupport.root.appendingPathComponent("tools/interop_read.py").path] + files)
        let lines = out.stdout.split(separator: "\n")
        #expect(lines.count == files.count)
        for line in lines {
            struct Read: Decodable {
                struct T: Decodable { let sha256: String; let dtype: String }
                let file: String
                let tensors: [String: T]
            }
            let read = try JSONDecoder().decode(Read.self, from: Data(line.utf8))
            #expect(read.tensors.mapValues(\.sha256) == reference, "python read of \(read.file)")
            #expect(read.tensors.values.allSatisfy { $0.dtype == "float32" })
        }
    }

    @Test("--to hf-dir writes config.json, model.safetensors and vocab.txt")
    func hfDirectory() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let r = try Self.run([TestSupport.fixture("tiny-bert/model-tf.npz"), "--to", "hf-dir", "-o", "\(tmp)/hf"])
        #expect(r.status == 0, "\(r.stderr)")
        for file in ["config.json", "model.safetensors", "vocab.txt"] {
            #expect(FileManager.default.fileExists(atPath: "\(tmp)/hf/\(file)"), "\(file)")
        }
        #expect(try Self.digests("\(tmp)/hf") == Self.digests(TestSupport.fixture("tiny-bert/model.safetensors")))
        let vocab = try String(contentsOfFile: "\(tmp)/hf/vocab.txt", encoding: .utf8)
        #expect(vocab == (try String(contentsOfFile: TestSupport.fixture("tiny-bert/vocab.txt"), encoding: .utf8)))
    }

    @Test("the canonical file is a whole model: config and vocab travel inside it")
    func canonicalIsSelfContained() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        #expect(try Self.run([TestSupport.fixture("tiny-bert/model-deflated.npz"), "-o", "\(tmp)/m.safetensors"]).status == 0)
        let checkpoint = try Checkpoint.load("\(tmp)/m.safetensors")
        #expect(checkpoint.configSource == "embedded")
        #expect(checkpoint.vocab?.count == 100)
        #expect(checkpoint.sourceMetadata[Checkpoint.MetadataKey.source]?.contains("model-deflated.npz sha256:") == true)
    }

    @Test("output is deterministic: converting twice gives identical bytes")
    func deterministic() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        for name in ["a", "b"] {
            #expect(try Self.run([TestSupport.fixture("tiny-bert/model-legacy.safetensors"), "-o", "\(tmp)/\(name).safetensors"]).status == 0)
        }
        let a = try Data(contentsOf: URL(fileURLWithPath: "\(tmp)/a.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: "\(tmp)/b.safetensors"))
        #expect(a == b)
    }

    @Test("inspect --json reports tensors, scheme and config")
    func inspectJSON() throws {
        let r = try Self.run(["inspect", TestSupport.fixture("tiny-bert/model-tf.npz"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect((object?["scheme"] as? String)?.contains("TensorFlow") == true)
        #expect((object?["tensors"] as? [Any])?.count == 44)  // embeddings 5, 2 layers × 16, pooler 2, MLM head 5
        #expect(((object?["config"] as? [String: Any])?["hidden_size"] as? Int) == 32)
    }

    struct BadRun: CustomTestStringConvertible, Sendable {
        let name: String
        let args: @Sendable (String) -> [String]
        let status: Int32
        let says: String
        var testDescription: String { name }
    }

    static let badRuns: [BadRun] = [
        BadRun(name: "missing file", args: { _ in ["/nonexistent/model.safetensors"] }, status: 65, says: "no such file"),
        BadRun(name: "a directory without a model", args: { tmp in [tmp] }, status: 65, says: "directory without model.safetensors"),
        BadRun(name: "unknown flag", args: { tmp in [tmp, "--frobnicate"] }, status: 64, says: "frobnicate"),
        BadRun(name: "--compress without npz", args: { tmp in [tmp, "--compress"] }, status: 64, says: "--compress"),
        BadRun(name: "default output would replace the input", args: { _ in [TestSupport.fixture("tiny-bert/model.safetensors")] }, status: 64, says: "pass -o"),
        BadRun(name: "output directory does not exist", args: { _ in
            [TestSupport.fixture("tiny-bert/model.safetensors"), "-o", "/nonexistent-dir/x.safetensors"] }, status: 65, says: "temp file"),
        BadRun(name: "wrong heads for the config", args: { _ in
            [TestSupport.fixture("tiny-bert/model.safetensors"), "--heads", "3", "-o", "/tmp/never.safetensors"] }, status: 65, says: "num_attention_heads"),
    ]

    @Test(arguments: badRuns)
    func refuses(_ bad: BadRun) throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let r = try Self.run(bad.args(tmp))
        #expect(r.status == bad.status, "\(r.stderr)")
        #expect(r.stderr.contains(bad.says), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"), "trapped: \(r.stderr)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }

    @Test("a bad file exits 65 with one line naming it, and the destination is untouched")
    func badFileLeavesDestination() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let bad = "\(tmp)/truncated.safetensors"
        let good = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("tiny-bert/model.safetensors")))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: bad))
        let destination = "\(tmp)/out.safetensors"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: destination))
        let r = try Self.run([bad, "-o", destination])
        #expect(r.status == 65)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains(bad))
        #expect(try Data(contentsOf: URL(fileURLWithPath: destination)) == Data("keep me".utf8))
    }
}
