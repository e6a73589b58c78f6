import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// hd-distill's pruning flags, through the built binary on the small teacher of `DistillCLITests`.
@Suite("hd-distill pruning", .serialized)
struct PruneCLITests {
    static let prune = ["--hidden", "16", "--ffn", "32", "--head-size", "4", "--prune-start", "2", "--prune-end", "8", "--prune-every", "2"]

    /// A pruning run ends at the target widths, logs them with the size of the dense equivalent,
    /// and stores the masks with the weights; pruned weights are zero in the file.
    @Test func aPruningRunReachesItsTargetAndStoresTheMasks() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let out = dir + "/student.ckpt", log = dir + "/log.jsonl"
        let result = try DistillCLITests.run(DistillCLITests.flags(teacher, out: out, steps: 10) + Self.prune + ["--log", log])
        #expect(result.status == 0, "\(result.stderr)")
        let records = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let train = records.filter { $0["kind"] as? String == "train" }
        #expect(train.map { $0["width_hidden"] as? Int } .last == 16 && train.last?["width_ffn"] as? Int == 32)
        #expect(train.first?["width_hidden"] as? Int == 32)
        let parameters = train.compactMap { $0["parameters"] as? Int }
        #expect(parameters.count == 10 && zip(parameters, parameters.dropFirst()).allSatisfy { $0 >= $1 } && parameters.last! < parameters.first!)
        #expect(train.allSatisfy { ($0["prune_seconds"] as? Double ?? -1) >= 0 })

        let set = try SafeTensors.read(path: out)
        let hidden = try #require(set.tensors["hd.mask.hidden"])
        guard case .int64(let flags) = hidden.values else { Issue.record("hd.mask.hidden is not integral"); return }
        #expect(flags.filter { $0 == 1 }.count == 16 && hidden.storedAs == .int32)
        let word = try #require(set.tensors[BertNames.wordEmbeddings]?.floats?.array)
        for j in flags.indices where flags[j] == 0 { #expect((0..<100).allSatisfy { word[$0 * 32 + j] == 0 }) }
    }

    /// --hf-compatible moves the target to widths with an exact Hugging Face layout (the teacher has
    /// 4 heads of 8): hidden up to a multiple of the heads and of --width-multiple, head size ≤
    /// hidden / heads; hd-export --hf-dir then writes the student.
    @Test(arguments: [
        (["--hidden", "16", "--ffn", "32"], 16, 4),
        (["--hidden", "18", "--ffn", "32", "--head-size", "2", "--width-multiple", "2"], 20, 2),
        (["--hidden", "10", "--ffn", "32", "--head-size", "6", "--width-multiple", "1"], 12, 3),
    ])
    func hfCompatibleRoundsTheTarget(_ widths: [String], _ hidden: Int, _ headSize: Int) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let out = dir + "/student.ckpt"
        let schedule = ["--prune-start", "2", "--prune-end", "8", "--prune-every", "2", "--hf-compatible"]
        let result = try DistillCLITests.run(DistillCLITests.flags(teacher, out: out, steps: 10) + widths + schedule)
        #expect(result.status == 0, "\(result.stderr)")
        let dense = try MaskedStudent(path: out).denseModel().config
        #expect(dense.hiddenSize == hidden && dense.layer(0).headSize == headSize, "\(widths)")
        let export = try TestSupport.run(TestSupport.tool("hd-export"), ["--shrink", out, "-o", dir + "/s.safetensors", "--hf-dir", dir + "/hf"], allowFailure: true)
        #expect(export.status == 0, "\(export.stderr)")
    }

    /// Inconsistent pruning flags are usage errors (64); a target wider than the teacher is bad
    /// input for this teacher (65). Each names the flag.
    @Test(arguments: [
        (["--target", "homobert-huge"], 64, "--target"),
        (["--target", "homobert-base", "--hidden", "16"], 64, "--target"),
        (["--recipe", "self-distilled"], 64, "self-distilled"),
        (["--recipe", "self-distilled", "--hidden", "16", "--importance", "platon"], 64, "magnitude"),
        (["--prune-start", "3"], 64, "--prune-start"),
        (["--hidden", "16", "--width-multiple", "0"], 64, "--width-multiple"),
        (["--hidden", "16", "--prune-end", "50"], 64, "--prune-end"),
        (["--hidden", "16", "--mlm-only"], 64, "--mlm-only"),
        (["--hf-compatible"], 64, "--hf-compatible"),
        (["--hidden", "64"], 65, "--hidden"),
        (["--head-size", "9"], 65, "--head-size"),
    ])
    func refusesBadPruningFlags(_ extra: [String], _ status: Int32, _ named: String) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let result = try DistillCLITests.run(DistillCLITests.flags(teacher, out: dir + "/s.ckpt", steps: 10) + extra)
        #expect(result.status == status, "\(extra): \(result.stderr)")
        #expect(result.stderr.contains(named), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/s.ckpt"))
    }
}
