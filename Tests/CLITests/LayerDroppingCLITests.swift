import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// `hd-distill --keep-layers` (layer dropping) through the built tools, on the small teacher of
/// `DistillCLITests` with 3 layers: the student keeps layers 0 and 2.
@Suite("hd-distill --keep-layers", .serialized)
struct LayerDroppingCLITests {
    static let export = TestSupport.tool("hd-export")
    static let infer = TestSupport.tool("hd-infer")

    /// Lists that are not strictly increasing teacher layer indices of this teacher, and a map
    /// without a teacher, are usage errors (64) naming the flag, the value and what is allowed;
    /// nothing is written.
    @Test(arguments: [
        (["--keep-layers", ""], "expected 0-based teacher layer indices separated by commas"),
        (["--keep-layers", "a"], "expected 0-based teacher layer indices separated by commas"),
        (["--keep-layers", "0,,2"], "expected 0-based teacher layer indices separated by commas"),
        (["--keep-layers", "0, 2"], "expected 0-based teacher layer indices separated by commas"),
        (["--keep-layers", "0,-1"], "expected 0-based teacher layer indices separated by commas"),
        (["--keep-layers", "1,1"], "strictly increasing, at least one, found 1 after 1"),
        (["--keep-layers", "2,0"], "found 0 after 2"),
        (["--keep-layers", "3"], "in 0…2 (the teacher has 3 layers), strictly increasing, at least one, found 3"),
        (["--keep-layers", "0,5"], "found 5"),
        (["--keep-layers", "0", "--mlm-only"], "--mlm-only"),
    ])
    func refusesBadKeepLayers(_ extra: [String], _ says: String) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir, layers: 3)
        let out = dir + "/s.ckpt"
        let result = try DistillCLITests.run(DistillCLITests.flags(teacher, out: out, steps: 2) + extra)
        #expect(result.status == 64, "\(extra): \(result.stderr)")
        #expect(result.stderr.contains("--keep-layers \(extra[1])") || extra.contains("--mlm-only"), "\(result.stderr)")
        #expect(result.stderr.contains(says), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// Layer dropping with pruning: the student has 2 layers and the map in its checkpoint, logs the
    /// layer terms and the pruned widths; hd-export --shrink writes the dense 2-layer student after
    /// its equivalence check, and hd-infer runs it. Without pruning there are no masks: hd-export
    /// writes the 1-layer student as it is (and says so), as hd-convert does, and hd-infer runs it.
    @Test func distilsShrinksAndRuns() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir, layers: 3)
        let out = dir + "/student.ckpt", log = dir + "/log.jsonl"
        let result = try DistillCLITests.run(DistillCLITests.flags(teacher, out: out, steps: 10) + ["--keep-layers", "0,2", "--log", log]
                                             + PruneCLITests.prune)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try SafeTensors.metadata(path: out)["hd.teacher_layers"] == "0,2")
        let student = try MaskedStudent(path: out)
        #expect(student.checkpoint.config.numHiddenLayers == 2 && student.masks != nil)
        let records = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let last = try #require(records.last { $0["kind"] as? String == "train" })
        #expect(last["width_hidden"] as? Int == 16 && (last["hidden"] as? Double ?? 0) > 0 && (last["attention"] as? Double ?? 0) > 0, "\(last)")

        let exported = dir + "/student.safetensors"
        let shrink = try TestSupport.run(Self.export, ["--shrink", out, "-o", exported], allowFailure: true)
        #expect(shrink.status == 0, "\(shrink.stderr)")
        #expect(shrink.stdout.contains("checked:"), "\(shrink.stdout)")
        let dense = try Checkpoint.load(exported).config
        #expect(dense.numHiddenLayers == 2 && dense.hiddenSize == 16)
        let fill = try TestSupport.run(Self.infer, ["fill-mask", exported, "the [MASK] is here."], allowFailure: true)
        #expect(fill.status == 0 && fill.stdout.contains("p="), "\(fill.stderr)")

        let plain = dir + "/plain.ckpt"
        let unpruned = try DistillCLITests.run(DistillCLITests.flags(teacher, out: plain, steps: 2) + ["--keep-layers", "1", "--init", "random"])
        #expect(unpruned.status == 0, "\(unpruned.stderr)")
        let asIs = dir + "/as-is.safetensors"
        let exportedAsIs = try TestSupport.run(Self.export, ["--shrink", plain, "-o", asIs], allowFailure: true)
        #expect(exportedAsIs.status == 0 && exportedAsIs.stdout.contains("note: no pruning masks"), "\(exportedAsIs.stderr)")
        #expect(try Checkpoint.load(asIs).config.numHiddenLayers == 1)
        let converted = dir + "/plain.safetensors"
        let convert = try TestSupport.run(TestSupport.tool("hd-convert"), [plain, "-o", converted], allowFailure: true)
        #expect(convert.status == 0, "\(convert.stderr)")
        #expect(try Checkpoint.load(converted).config.numHiddenLayers == 1)
        let run = try TestSupport.run(Self.infer, ["fill-mask", converted, "the [MASK] is here."], allowFailure: true)
        #expect(run.status == 0, "\(run.stderr)")
    }

    /// SIGKILLed once its first checkpoint is on disk and resumed with the same --keep-layers, a
    /// layer-dropping run ends byte-identical to an uninterrupted one. A resume with another map, with
    /// none, or with a teacher too shallow for the map is refused as bad input (65) naming
    /// hd.teacher_layers, and writes nothing.
    @Test func resumesExactlyWithTheSameMapOnly() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir, layers: 3)
        let keep = ["--keep-layers", "0,2", "--save-every", "3"]
        let reference = dir + "/straight.ckpt"
        let straight = try DistillCLITests.run(DistillCLITests.flags(teacher, out: reference) + keep)
        #expect(straight.status == 0, "\(straight.stderr)")

        let out = dir + "/killed.ckpt"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DistillCLITests.distill)
        process.arguments = DistillCLITests.flags(teacher, out: out) + keep
        process.standardError = FileHandle.nullDevice
        try process.run()
        while process.isRunning && !FileManager.default.fileExists(atPath: out) { usleep(2_000) }
        let killedWhileRunning = process.isRunning
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(killedWhileRunning, "the run finished before it could be killed")
        let saved = dir + "/saved.ckpt"
        try FileManager.default.copyItem(atPath: out, toPath: saved)
        let r = try DistillCLITests.run(DistillCLITests.flags(teacher, out: out) + keep + ["--resume", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try #require(DistillCLITests.bytes(reference)) == #require(DistillCLITests.bytes(out)))

        let shallow = try DistillCLITests.teacher(in: dir, name: "shallow.safetensors")
        let refusals: [(teacher: String, extra: [String], says: String)] = [
            (teacher, ["--keep-layers", "1,2"], "pass --keep-layers 0,2"),
            (teacher, [], "pass --keep-layers 0,2"),
            (shallow, ["--keep-layers", "0,2"], "TEACHER has 2 layers"),
        ]
        for refusal in refusals {
            let again = dir + "/again.ckpt"
            let result = try DistillCLITests.run(DistillCLITests.flags(refusal.teacher, out: again) + refusal.extra + ["--resume", saved])
            #expect(result.status == 65, "\(refusal.extra): \(result.stderr)")
            #expect(result.stderr.contains("hd.teacher_layers") && result.stderr.contains(refusal.says), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: again))
        }
    }
}
