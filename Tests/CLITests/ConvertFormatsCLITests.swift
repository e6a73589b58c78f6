import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// hd-convert and the defects of issue 17 that a user meets through it: F64 inputs (12), the output's
/// extension, side files given as directories or empty files, and layer_norm_eps's decimal (14).
extension ConvertCLITests {
    /// The tiny BERT as F64 (each f32 weight f moved up by a quarter of its ulp, so that the f64 value
    /// is not exact in f32 and rounds back to f), written by numpy and safetensors themselves: a
    /// safetensors file and an `np.savez_compressed` archive. Prints the expected largest relative
    /// change, computed by numpy in f64.
    static let makeF64Model = """
    import sys, json, numpy as np
    from safetensors.numpy import load_file, save_file
    src, out = sys.argv[1], sys.argv[2]
    t = load_file(src)
    wide, worst = {}, 0.0
    for k, v in t.items():
        if v.dtype != np.float32:
            wide[k] = v
            continue
        d = v.astype(np.float64) + np.spacing(np.abs(v)).astype(np.float64) / 4
        assert (d.astype(np.float32) == v).all()
        nz = d != 0
        worst = max(worst, float((np.abs(v.astype(np.float64)[nz] - d[nz]) / np.abs(d[nz])).max(initial=0)))
        wide[k] = d
    save_file(wide, out + "/f64.safetensors")
    np.savez_compressed(out + "/f64.npz", **wide)
    print(json.dumps({"max_relative_change": worst}))
    """

    @Test("an F64 input is written as canonical F32, narrowed values equal the f32 originals, and the change is reported")
    func f64InputIsNarrowedAndSaysSo() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let script = "\(tmp)/make.py"
        try Self.makeF64Model.write(toFile: script, atomically: true, encoding: .utf8)
        let made = try TestSupport.run(try TestSupport.python(), [script, TestSupport.fixture("tiny-bert/model.safetensors"), tmp])
        struct Made: Decodable { var max_relative_change: Double }
        let expectedChange = try JSONDecoder().decode(Made.self, from: Data(made.stdout.utf8)).max_relative_change
        #expect(expectedChange > 1e-9 && expectedChange < 6e-8)
        let original = try SafeTensors.read(path: TestSupport.fixture("tiny-bert/model.safetensors"))
        for input in ["f64.safetensors", "f64.npz"] {
            let output = "\(tmp)/\(input).out.safetensors"
            let r = try Self.run(["\(tmp)/\(input)", "--config", TestSupport.fixture("tiny-bert/config.json"),
                                  "--vocab", TestSupport.fixture("tiny-bert/vocab.txt"), "-o", output, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            struct Summary: Decodable {
                struct Narrowing: Decodable { var tensors: Int; var changed: Int; var max_relative_change: Double? }
                var notes: [String]
                var narrowed_from_f64: Narrowing?
            }
            let summary = try JSONDecoder().decode(Summary.self, from: Data(r.stdout.utf8))
            let narrowing = try #require(summary.narrowed_from_f64, "\(input): --json says nothing about narrowing")
            #expect(narrowing.tensors == 44 && narrowing.changed > 0)
            let change = try #require(narrowing.max_relative_change)
            #expect(abs(change - expectedChange) <= 1e-9 * expectedChange, "\(input): \(change) vs numpy's \(expectedChange)")
            #expect(summary.notes.contains { $0.contains("narrowed to f32") && $0.contains("largest relative change") })

            let back = try SafeTensors.read(path: output)
            for name in back.sortedNames {
                let tensor = try #require(back[name])
                #expect(tensor.storedAs == .float32, "\(input): \(name) written as \(tensor.storedAs.rawValue)")
                let want = try #require(original[name]?.floats?.array, "\(name)")
                #expect(tensor.floats?.array.map(\.bitPattern) == want.map(\.bitPattern), "\(input): \(name) values")
            }
        }
        // The text summary says it too.
        let r = try Self.run(["\(tmp)/f64.safetensors", "--config", TestSupport.fixture("tiny-bert/config.json"), "-o", "\(tmp)/text.safetensors"])
        #expect(r.status == 0 && r.stdout.contains("note: 44 F64 tensor(s) narrowed to f32"), "\(r.stdout)")
    }

    @Test("an f32 input says nothing about narrowing")
    func f32InputHasNoNarrowing() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let r = try Self.run([TestSupport.fixture("tiny-bert/model.safetensors"), "-o", "\(tmp)/m.safetensors", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("narrowed"))
    }

    @Test("an F16 or BF16 input is written as F32 too, values exact")
    func halfInputsBecomeF32() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        for input in ["model-f16.safetensors", "model-bf16.safetensors"] {
            let source = try SafeTensors.read(path: TestSupport.fixture("tiny-bert/" + input))
            let output = "\(tmp)/\(input)"
            let r = try Self.run([TestSupport.fixture("tiny-bert/" + input), "-o", output])
            #expect(r.status == 0, "\(r.stderr)")
            let back = try SafeTensors.read(path: output)
            for name in back.sortedNames {
                #expect(back[name]?.storedAs == .float32, "\(input): \(name)")
                #expect(back[name]?.floats?.array == source[name]?.floats?.array, "\(input): \(name)")
            }
        }
    }

    static let extensionRuns: [BadRun] = [
        BadRun(name: "-o out.npz without --to npz", args: { tmp in [TestSupport.fixture("tiny-bert/model.safetensors"), "-o", "\(tmp)/out.npz"] },
               status: 64, says: "pass --to npz"),
        BadRun(name: "-o OUT.NPZ (any case)", args: { tmp in [TestSupport.fixture("tiny-bert/model.safetensors"), "-o", "\(tmp)/OUT.NPZ"] },
               status: 64, says: "pass --to npz"),
        BadRun(name: "--to npz -o out.safetensors", args: { tmp in [TestSupport.fixture("tiny-bert/model.safetensors"), "--to", "npz", "-o", "\(tmp)/out.safetensors"] },
               status: 64, says: "name the output .npz"),
        BadRun(name: "-o out.npy", args: { tmp in [TestSupport.fixture("tiny-bert/model.safetensors"), "-o", "\(tmp)/out.npy"] },
               status: 64, says: "writes no .npy"),
        BadRun(name: "--to hf-dir -o out.safetensors", args: { tmp in [TestSupport.fixture("tiny-bert/model.safetensors"), "--to", "hf-dir", "-o", "\(tmp)/out.safetensors"] },
               status: 64, says: "writes a directory"),
        BadRun(name: "--config a directory", args: { tmp in [TestSupport.fixture("tiny-bert/model.npz"), "--config", tmp, "-o", "\(tmp)/o.safetensors"] },
               status: 65, says: "--config: expected a config.json file (a JSON object of BERT's config keys), found a directory"),
        BadRun(name: "--config an empty file", args: { tmp in
            FileManager.default.createFile(atPath: "\(tmp)/empty.json", contents: Data())
            return [TestSupport.fixture("tiny-bert/model.npz"), "--config", "\(tmp)/empty.json", "-o", "\(tmp)/o.safetensors"] },
               status: 65, says: "--config: expected a config.json file (a JSON object of BERT's config keys), found an empty file"),
        BadRun(name: "--vocab a directory", args: { tmp in [TestSupport.fixture("tiny-bert/model.safetensors"), "--vocab", tmp, "-o", "\(tmp)/o.safetensors"] },
               status: 65, says: "--vocab: expected a vocab.txt file (one token per line), found a directory"),
        BadRun(name: "--vocab an empty file", args: { tmp in
            FileManager.default.createFile(atPath: "\(tmp)/vocab.txt", contents: Data())
            return [TestSupport.fixture("tiny-bert/model.safetensors"), "--vocab", "\(tmp)/vocab.txt", "-o", "\(tmp)/o.safetensors"] },
               status: 65, says: "--vocab: expected a vocab.txt file (one token per line), found an empty file"),
        BadRun(name: "--vocab a missing file", args: { tmp in [TestSupport.fixture("tiny-bert/model.safetensors"), "--vocab", "\(tmp)/nope.txt", "-o", "\(tmp)/o.safetensors"] },
               status: 65, says: "--vocab: expected a vocab.txt file (one token per line), found no such file"),
    ]

    @Test("outputs whose extension contradicts --to, and side files that are not files", arguments: extensionRuns)
    func refusesFormats(_ bad: BadRun) throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let r = try Self.run(bad.args(tmp))
        #expect(r.status == bad.status, "\(r.stderr)")
        #expect(r.stderr.contains(bad.says), "\(r.stderr)")
        #expect(!r.stderr.contains("model file"), "speaks of model files: \(r.stderr)")
        let written = try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix("out") || $0.hasPrefix("o.") || $0.hasPrefix("OUT") }
        #expect(written.isEmpty, "wrote \(written)")
    }

    @Test("-o out.npz with --to npz writes a real .npz that numpy reads")
    func npzOutputIsAnNpz() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let r = try Self.run([TestSupport.fixture("tiny-bert/model.safetensors"), "--to", "npz", "-o", "\(tmp)/out.npz"])
        #expect(r.status == 0, "\(r.stderr)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(tmp)/out.npz"))
        #expect(bytes.prefix(4) == Data([0x50, 0x4B, 0x03, 0x04]))
        let python = try TestSupport.python()
        let check = try TestSupport.run(python, ["-c", "import numpy as np, sys; z = np.load(sys.argv[1]); print(len(z.files), z['bert.embeddings.word_embeddings.weight'].dtype)", "\(tmp)/out.npz"])
        #expect(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "44 float32")
    }

    @Test("config.json in an hf-dir keeps layer_norm_eps's decimal (1e-12, not 9.999999960041972e-13)", arguments: ["1e-12", "1e-05", "1e-06", "1e-07"])
    func layerNormEpsDecimal(_ eps: String) throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        var config = try String(contentsOfFile: TestSupport.fixture("tiny-bert/config.json"), encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: "\"layer_norm_eps\": *[0-9.eE+-]+")
        let range = NSRange(config.startIndex..., in: config)
        config = pattern.stringByReplacingMatches(in: config, range: range, withTemplate: "\"layer_norm_eps\": \(eps)")
        #expect(config.contains("\"layer_norm_eps\": \(eps)"))
        try config.write(toFile: "\(tmp)/config.json", atomically: true, encoding: .utf8)
        let canonical = "\(tmp)/m.safetensors"
        var r = try Self.run([TestSupport.fixture("tiny-bert/model.npz"), "--config", "\(tmp)/config.json", "-o", canonical])
        #expect(r.status == 0, "\(r.stderr)")
        r = try Self.run([canonical, "--to", "hf-dir", "-o", "\(tmp)/hf"])
        #expect(r.status == 0, "\(r.stderr)")
        let written = try String(contentsOfFile: "\(tmp)/hf/config.json", encoding: .utf8)
        #expect(written.contains("\"layer_norm_eps\" : \(eps)") || written.contains("\"layer_norm_eps\": \(eps)"), "\(written)")
        let object = try JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: Any]
        #expect((object?["layer_norm_eps"] as? Double) == Double(eps))
    }
}
