import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// Issue 17's "one loader, one count" through the real binaries: every tool opens a student.ckpt
/// as the dense model it equals, and every tool reports the same size for the same model.
extension ExportCLITests {
    @Test("hd-convert, hd-infer and hd-distill open a student.ckpt through the one loader, as hd-export's dense model")
    func everyToolOpensAStudent() throws {
        let students = try Self.students()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let exported = tmp + "/exported.safetensors", converted = tmp + "/converted.safetensors"
        #expect(try Self.run(["--shrink", students.pruned, "-o", exported]).status == 0)
        let convert = try TestSupport.run(ConvertCLITests.convert, [students.pruned, "-o", converted, "--json"], allowFailure: true)
        #expect(convert.status == 0, "\(convert.stderr)")
        let a = try Checkpoint.load(exported), b = try Checkpoint.load(converted)
        #expect(a.config == b.config && a.vocab == b.vocab && a.lowercase == b.lowercase)
        #expect(Set(a.tensors.tensors.keys) == Set(b.tensors.tensors.keys))
        for (name, t) in a.tensors.tensors { #expect(b.tensors[name]?.floats?.array == t.floats?.array, "\(name)") }
        // The same count everywhere: hd-convert's summary, hd-export's `after`, the loader's.
        #expect(try Self.json(convert.stdout)["parameters"] as? Int == a.size.parameters)

        // hd-infer embeds the checkpoint as it embeds the export.
        let text = "the cat sat on the mat."
        let onCkpt = try TestSupport.run(Self.infer, ["embed", students.pruned, text, "--json", "--threads", "1"])
        let onExport = try TestSupport.run(Self.infer, ["embed", exported, text, "--json", "--threads", "1"])
        #expect(onCkpt.status == 0 && onCkpt.stdout == onExport.stdout, "\(onCkpt.stderr)")

        // Load flags cannot rewrite a student's embedded config or vocabulary: refused, not ignored.
        let flagged = try TestSupport.run(Self.infer, ["embed", students.pruned, text, "--heads", "2"], allowFailure: true)
        #expect(flagged.status == 65 && flagged.stderr.contains("--heads cannot apply to a student.ckpt"), "\(flagged.stderr)")
    }

    @Test("hd-distill's log and hd-export's summary count the same student the same way")
    func trainerAndExporterCountAlike() throws {
        let students = try Self.students()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let ckpt = tmp + "/s.ckpt", log = tmp + "/log.jsonl"
        let widths = ["--hidden", "16", "--ffn", "32", "--head-size", "4", "--prune-start", "2", "--prune-end", "8", "--prune-every", "2"]
        let r = try DistillCLITests.run(DistillCLITests.flags(students.teacher, out: ckpt, steps: 10) + widths + ["--log", log])
        #expect(r.status == 0, "\(r.stderr)")
        let records = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { try Self.json(String($0)) }
        let last = try #require(records.last { $0["kind"] as? String == "train" })
        let export = try Self.run(["--shrink", ckpt, "-o", tmp + "/s.safetensors", "--json"])
        let after = try #require(try Self.json(export.stdout)["after"] as? [String: Any])
        #expect(last["parameters"] as? Int == after["parameters"] as? Int)
        #expect(last["flops_per_128_token_sequence"] as? Int == after["flops_per_128_token_sequence"] as? Int)
        #expect(last["flops_per_sequence"] == nil)
    }
}

/// Checkpoints that would load silently wrong are refused or read as they are (defects 3 and 5).
@Suite("loader refusals")
struct LoaderRefusalCLITests {
    static func modelDirectory(config edit: (inout [String: Any]) -> Void, dropConfig: Bool = false) throws -> String {
        let dir = try TestSupport.temporaryDirectory()
        for name in ["model.safetensors", "vocab.txt"] {
            try FileManager.default.copyItem(atPath: TestSupport.fixture("tiny-bert/" + name), toPath: dir + "/" + name)
        }
        if !dropConfig {
            let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("tiny-bert/config.json")))
            var config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            edit(&config)
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
        }
        return dir
    }

    @Test("a model_type other than bert is refused by every tool that loads it")
    func otherModelTypesAreRefused() throws {
        let dir = try Self.modelDirectory { $0["model_type"] = "roberta" }
        defer { TestSupport.cleanUp(dir) }
        for (tool, args) in [(ConvertCLITests.convert, [dir, "-o", dir + "/out.safetensors"]),
                             (ExportCLITests.infer, ["tokenize", dir, "hello"])] {
            let r = try TestSupport.run(tool, args, allowFailure: true)
            #expect(r.status == 65 && r.stderr.contains("model_type") && r.stderr.contains("roberta"), "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.safetensors"))
        // With --json the one reporting path also says why there is no result, on stdout.
        let json = try TestSupport.run(ConvertCLITests.convert, [dir, "-o", dir + "/out.safetensors", "--json"], allowFailure: true)
        let error = try #require(try ExportCLITests.json(json.stdout)["error"] as? [String: Any], "\(json.stdout)")
        #expect(json.status == 65 && error["kind"] as? String == "unsupported" && error["field"] as? String == "model_type")
        #expect(error["exit_status"] as? Int == 65 && (error["file"] as? String)?.hasSuffix("config.json") == true, "\(error)")
    }

    @Test("without a config the head count is never guessed: hd-infer refuses until --heads says it")
    func headsAreNotGuessed() throws {
        let dir = try Self.modelDirectory(config: { _ in }, dropConfig: true)
        defer { TestSupport.cleanUp(dir) }
        // The safetensors fixture embeds no hd.config; an npz holds no metadata at all.
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        try FileManager.default.copyItem(atPath: TestSupport.fixture("tiny-bert/model.npz"), toPath: dir + "/model.npz")
        let refused = try TestSupport.run(ExportCLITests.infer, ["embed", dir + "/model.npz", "hello world"], allowFailure: true)
        #expect(refused.status == 65 && refused.stderr.contains("pass --heads N or --config"), "\(refused.stderr)")
        let told = try TestSupport.run(ExportCLITests.infer, ["embed", dir + "/model.npz", "hello world", "--heads", "4", "--json"], allowFailure: true)
        let withConfig = try TestSupport.run(ExportCLITests.infer, ["embed", TestSupport.fixture("tiny-bert/model.npz"), "hello world", "--json"], allowFailure: true)
        #expect(told.status == 0 && told.stdout == withConfig.stdout, "\(told.stderr)")
    }

    @Test("casing comes from tokenizer_config.json and is recorded in the canonical file", arguments: [true, false])
    func casingIsReadAndRecorded(_ lowercase: Bool) throws {
        let dir = try Self.modelDirectory { _ in }
        defer { TestSupport.cleanUp(dir) }
        try Data("{\"do_lower_case\": \(lowercase)}".utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        let out = dir + "/canonical.safetensors"
        let r = try TestSupport.run(ConvertCLITests.convert, [dir, "-o", out], allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try SafeTensors.read(path: out).metadata[Checkpoint.MetadataKey.lowercase] == String(lowercase))
        #expect(try Checkpoint.load(out).lowercase == lowercase)
        // hd-infer tokenizes by the recorded casing: "CAT" is "cat" only when uncased.
        let ids = try TestSupport.run(ExportCLITests.infer, ["tokenize", out, "CAT", "--json"], allowFailure: true)
        let lower = try TestSupport.run(ExportCLITests.infer, ["tokenize", out, "cat", "--json"], allowFailure: true)
        #expect((ids.stdout.replacingOccurrences(of: "CAT", with: "cat") == lower.stdout) == lowercase, "\(ids.stdout) \(lower.stdout)")
    }
}
