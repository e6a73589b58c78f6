import Foundation
import HDDistill
import HDExport
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// The pruning runs, made once for the suite (each takes about a second) in one directory that
/// the tests only read (copy a checkpoint before forging it) and that goes when the suite ends.
struct ExportStudents: Sendable {
    let dir: String
    let teacher: String
    /// Hidden 16, 4 heads × 4, FFN 32: what transformers' BertConfig can express.
    let pruned: String
    /// Hidden 16, 4 heads × 2: attention width 8 ≠ hidden; transformers loads it zero-padded to 4 heads × 4.
    let narrowHeads: String
    /// Hidden 16, 4 heads × 8 (heads not pruned): heads wider than hidden / heads, no exact HF layout.
    let wideHeads: String

    @TaskLocal static var current: ExportStudents?

    init() throws {
        dir = try TestSupport.temporaryDirectory()
        teacher = try DistillCLITests.teacher(in: dir)
        pruned = dir + "/pruned.ckpt"
        narrowHeads = dir + "/narrow-heads.ckpt"
        wideHeads = dir + "/wide-heads.ckpt"
        let schedule = ["--prune-start", "2", "--prune-end", "8", "--prune-every", "2"]
        for (out, widths) in [(pruned, ["--hidden", "16", "--ffn", "32", "--head-size", "4"]),
                              (narrowHeads, ["--hidden", "16", "--ffn", "32", "--head-size", "2"]),
                              (wideHeads, ["--hidden", "16", "--ffn", "32"])] {
            try TestSupport.run(DistillCLITests.distill, DistillCLITests.flags(teacher, out: out, steps: 10) + widths + schedule)
        }
    }

    /// Makes the students around the whole suite (not around each test) and removes them after.
    struct Scope: SuiteTrait, TestScoping {
        var isRecursive: Bool { false }

        func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
            let students = try ExportStudents()
            defer { TestSupport.cleanUp(students.dir) }
            try await ExportStudents.$current.withValue(students) { try await function() }
        }
    }
}

/// hd-export as a user runs it: the built binary on students that hd-distill pruned from the small
/// teacher of `DistillCLITests` (hidden 32, 4 heads × 8, FFN 64), checked against the masked model
/// of the library (the trainer's forward) and, through hd-infer, against the lean runtime.
@Suite("hd-export", .serialized, ExportStudents.Scope())
struct ExportCLITests {
    static let export = TestSupport.tool("hd-export")
    static let infer = TestSupport.tool("hd-infer")

    static func run(_ args: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(export, args, allowFailure: true)
    }

    static func students() throws -> ExportStudents { try #require(ExportStudents.current, "the suite's ExportStudents.Scope trait makes them") }

    /// A copy of `source` in `dir` with its tensors edited.
    static func forged(_ source: String, in dir: String, _ edit: (inout TensorSet) -> Void) throws -> String {
        var set = try SafeTensors.read(path: source)
        edit(&set)
        let path = dir + "/forged.ckpt"
        try SafeTensors.write(set, to: path)
        return path
    }

    /// The student as the trainer runs it: full-width weights with their masks.
    static func maskedModel(_ path: String) throws -> BertModel { try MaskedStudent(path: path).model }

    /// Leftover temp files of an atomic write (`.<name>.tmp-…`) in `dir`.
    static func tempFiles(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("a pruned student exports at its kept widths, loads, and hd-infer on it equals the masked model")
    func prunedStudentExports() throws {
        let students = try Self.students()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let out = tmp + "/student.safetensors", hf = tmp + "/hf"
        let r = try Self.run(["--shrink", students.pruned, "-o", out, "--hf-dir", hf, "--json", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try Self.json(r.stdout)
        let after = try #require(summary["after"] as? [String: Any]), before = try #require(summary["before"] as? [String: Any])
        #expect(after["hidden"] as? Int == 16 && before["hidden"] as? Int == 32)
        #expect((after["parameters"] as? Int ?? .max) < (before["parameters"] as? Int ?? 0))
        #expect((after["flops_per_128_token_sequence"] as? Int ?? .max) < (before["flops_per_128_token_sequence"] as? Int ?? 0))
        let check = try #require(summary["check"] as? [String: Any])
        #expect((check["max_relative_error"] as? Double ?? 1) <= 1e-5 && check["sequences"] as? Int == 5)
        #expect(summary["unpruned"] as? Bool == false)

        let exported = try Checkpoint.load(out)
        #expect(exported.config.hiddenSize == 16 && exported.config.layerShapes == nil && exported.config.attentionScale == nil)
        for l in 0..<2 { #expect(exported.config.layer(l) == LayerShape(attentionHeads: 4, headSize: 4, intermediateSize: 32)) }
        #expect(exported.tensors[BertNames.wordEmbeddings]?.shape == [30522, 16])
        #expect(exported.vocab?.count == 30522)
        // The HF directory holds the same tensors, and its config.json alone (Hugging Face keys) describes them.
        var options = LoadOptions()
        options.configPath = hf + "/config.json"
        let fromHF = try Checkpoint.load(hf, options: options)
        #expect(fromHF.config == exported.config)
        #expect(Set(fromHF.tensors.tensors.keys) == Set(exported.tensors.tensors.keys))
        #expect(fromHF.tensors.tensors.allSatisfy { name, t in t.floats?.array == exported.tensors[name]?.floats?.array })

        // hd-infer's lean runtime on the export against the masked model of the library.
        let text = "the cat sat on the [MASK] and ate the fish."
        let ids = try #require(try Self.json(TestSupport.run(Self.infer, ["tokenize", out, text, "--json"]).stdout)["ids"] as? [Int])
        let fill = try TestSupport.run(Self.infer, ["fill-mask", out, text, "--json", "--top-k", "5", "--threads", "1"])
        let predictions = try #require((try Self.json(fill.stdout)["predictions"] as? [[[String: Any]]])?.first)
        let masked = try Self.maskedModel(students.pruned)
        let position = try #require(ids.firstIndex(of: 103))  // [MASK] in the bert-base vocabulary
        let reference = try masked.mlmLogits(masked.forward(TokenBatch(ids: [ids])), positions: .selected([TokenPosition(batch: 0, position: position)]))
        let scale = reference.map(abs).max()!
        let top = reference.indices.sorted { reference[$0] > reference[$1] }.prefix(5)
        #expect(predictions.compactMap { $0["id"] as? Int } == Array(top))
        for p in predictions {
            let id = try #require(p["id"] as? Int), logit = try #require(p["logit"] as? Double)
            #expect(abs(Float(logit) - reference[id]) <= 1e-5 * scale, "token \(id)")
        }

        // hd-infer runs the checkpoint itself as the same dense model: the same predictions, and
        // bench times a model of the exported size.
        let direct = try TestSupport.run(Self.infer, ["fill-mask", students.pruned, text, "--json", "--top-k", "5", "--threads", "1"])
        #expect(direct.stdout == fill.stdout)
        let bench = try Self.json(TestSupport.run(Self.infer, ["bench", students.pruned, "--seq-len", "16", "--warmup", "0",
                                                                "--iterations", "1", "--json"]).stdout)
        #expect(bench["params"] as? Int == after["parameters"] as? Int)

        // The Python reference reader sees the values our reader sees.
        let python = try TestSupport.python()
        let read = try TestSupport.run(python, [TestSupport.root.appendingPathComponent("tools/interop_read.py").path, out])
        let tensors = try #require(try Self.json(read.stdout)["tensors"] as? [String: [String: Any]])
        let ours = exported.tensors.tensors.mapValues { FileDigest.sha256(of: UnsafeRawBufferPointer($0.floats!.buffer)) }
        #expect(tensors.mapValues { $0["sha256"] as? String ?? "" } == ours)
    }

    @Test("a pruned student.ckpt teaches as the dense model it equals: the next student starts at its widths")
    func prunedStudentIsATeacher() throws {
        let students = try Self.students()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let next = tmp + "/next.ckpt"
        let r = try TestSupport.run(DistillCLITests.distill, DistillCLITests.flags(students.pruned, out: next, steps: 2), allowFailure: true)
        #expect(r.status == 0, "\(r.stderr)")
        let student = try StudentCheckpoint.read(path: next)
        #expect(student.config.hiddenSize == 16)
        for l in 0..<2 { #expect(student.config.layer(l) == LayerShape(attentionHeads: 4, headSize: 4, intermediateSize: 32)) }
        #expect(try TrainingCheckpoint.read(path: next).state.teacherSHA256 == (try FileDigest.sha256(path: students.pruned)))
    }

    @Test("a student whose masks keep everything exports the same model, and says so")
    func unprunedStudentExportsTheSameModel() throws {
        let students = try Self.students()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        // Pruned weights are zero, so with every mask back at 1 this is a valid run before its first pruning step.
        let full = try Self.forged(students.pruned, in: tmp) { set in
            for (name, t) in set.tensors where name.hasPrefix(StudentCheckpoint.Prefix.mask) {
                set[name] = Tensor(shape: t.shape, values: .int64(Array(repeating: 1, count: t.elementCount)), storedAs: .int32)
            }
        }
        let out = tmp + "/same.safetensors"
        let r = try Self.run(["--shrink", full, "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("nothing is pruned yet"), "\(r.stdout)")
        let exported = try Checkpoint.load(out), student = try StudentCheckpoint.read(path: full)
        #expect(exported.config.hiddenSize == 32 && exported.config.layer(0) == student.config.layer(0))
        for (name, t) in exported.tensors.tensors {
            let original = try #require(student.weights[name]?.floats?.array, "\(name)")
            // W_Q and b_Q are scaled by (1/√8)·√8, which f32 may round off 1.
            #expect(relativeError(try #require(t.floats?.array), original) <= 1e-6, "\(name)")
        }
    }

    /// Each bad input: the arguments (given the shared students and a scratch directory), the exit
    /// status and what the message must name.
    enum BadInput: String, CaseIterable, CustomTestStringConvertible {
        case notAStudentCheckpoint, forgedMaskLength, missingTensor, prunedWeightNotZero, outputIsTheInput,
             unwritableOutputDirectory, toleranceExceeded, shapeTransformersCannotLoad, unwritableONNX,
             onnxExternalDataWithoutONNX, onnxIsTheOutput
        var testDescription: String { rawValue }

        func arguments(_ s: ExportStudents, _ tmp: String) throws -> [String] {
            let out = ["-o", tmp + "/out.safetensors"]
            switch self {
            case .notAStudentCheckpoint:
                return ["--shrink", s.teacher] + out
            case .forgedMaskLength:
                return ["--shrink", try forged(s.pruned, in: tmp) { set in
                    set["hd.mask.hidden"] = Tensor(shape: [31], values: .int64(Array(repeating: 1, count: 31)), storedAs: .int32)
                }] + out
            case .missingTensor:
                return ["--shrink", try forged(s.pruned, in: tmp) { $0[BertNames.layer(1).outputWeight] = nil }] + out
            case .prunedWeightNotZero:
                return ["--shrink", try forged(s.pruned, in: tmp) { set in
                    var words = set[BertNames.wordEmbeddings]!.floats!.array
                    for i in words.indices where words[i] == 0 { words[i] = 0.5 }
                    set[BertNames.wordEmbeddings] = Tensor(shape: [30522, 32], floats: words)
                }] + out
            case .outputIsTheInput:
                return ["--shrink", s.pruned, "-o", s.dir + "/./pruned.ckpt"]
            case .unwritableOutputDirectory:
                // A regular file as the parent directory: refused even for root, unlike a chmod.
                return ["--shrink", s.pruned, "-o", s.teacher + "/out.safetensors"]
            case .toleranceExceeded:
                return ["--shrink", s.pruned, "--tolerance", "1e-30"] + out
            case .shapeTransformersCannotLoad:
                return ["--shrink", s.wideHeads, "--hf-dir", tmp + "/hf"] + out
            case .unwritableONNX:
                return ["--shrink", s.pruned, "--onnx", s.teacher + "/student.onnx"] + out
            case .onnxExternalDataWithoutONNX:
                return ["--shrink", s.pruned, "--onnx-external-data"] + out
            case .onnxIsTheOutput:
                return ["--shrink", s.pruned, "--onnx", tmp + "/out.safetensors"] + out
            }
        }

        var status: Int32 { [.outputIsTheInput, .onnxExternalDataWithoutONNX, .onnxIsTheOutput].contains(self) ? 64 : 65 }

        var named: [String] {
            switch self {
            case .notAStudentCheckpoint: ["hd.kind", "student"]
            case .forgedMaskLength: ["hd.mask.hidden", "expected 32", "[31]"]
            case .missingTensor: [BertNames.layer(1).outputWeight]
            case .prunedWeightNotZero: ["expected zeros wherever the masks prune"]
            case .outputIsTheInput: ["is the input checkpoint itself"]
            case .unwritableOutputDirectory: ["out.safetensors", "Not a directory"]
            case .toleranceExceeded: ["equivalence check", "encoder layer 0", "1e-30"]
            case .shapeTransformersCannotLoad: ["--hf-dir", "head size 8 is above hidden / heads", "head size ≤ 4 at hidden 16", "hidden ≥ 32", "canonical"]
            case .unwritableONNX: ["student.onnx", "Not a directory"]
            case .onnxExternalDataWithoutONNX: ["--onnx-external-data needs --onnx"]
            case .onnxIsTheOutput: ["--onnx", "is also the canonical output"]
            }
        }
    }

    @Test(arguments: BadInput.allCases)
    func refusesBadInput(_ bad: BadInput) throws {
        let students = try Self.students()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let r = try Self.run(try bad.arguments(students, tmp))
        #expect(r.status == bad.status, "\(r.stderr)")
        for part in bad.named { #expect(r.stderr.contains(part), "\(part) in: \(r.stderr)") }
        #expect(r.stderr.split(separator: "\n").count == (bad.status == 64 ? 3 : 1), "one line: \(r.stderr)")
        #expect(Self.tempFiles(tmp).isEmpty && Self.tempFiles(students.dir).isEmpty)
        if bad == .shapeTransformersCannotLoad {
            // The canonical file is whole (it loads and runs); the HF directory is not started.
            #expect(try Checkpoint.load(tmp + "/out.safetensors").config.headSizeOverride == 8)
            #expect(!FileManager.default.fileExists(atPath: tmp + "/hf"))
        } else {
            #expect(!FileManager.default.fileExists(atPath: tmp + "/out.safetensors"))
        }
    }

    /// hd-infer reads a student through the same checks: a forged checkpoint is refused (65, one
    /// line naming the problem), not run as some other model.
    @Test(arguments: [BadInput.forgedMaskLength, .missingTensor, .prunedWeightNotZero])
    func inferRefusesForgedStudents(_ bad: BadInput) throws {
        let students = try Self.students()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let forged = try bad.arguments(students, tmp)[1]
        let r = try TestSupport.run(Self.infer, ["fill-mask", forged, "the [MASK] sat on the mat."], allowFailure: true)
        #expect(r.status == 65, "\(r.stderr)")
        for part in bad.named { #expect(r.stderr.contains(part), "\(part) in: \(r.stderr)") }
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
    }
}
