import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// hd-distill as a user runs it: the built binary on a small BERT over the real bert-base vocabulary
/// (hidden 32, 2 layers, written here) and the committed Austen chapter, so every run takes about a
/// second on one thread.
@Suite("hd-distill", .serialized)
struct DistillCLITests {
    static let distill = TestSupport.tool("hd-distill")
    static let corpus = TestSupport.fixture("corpus/tiny.txt")

    static func run(_ args: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(distill, args, allowFailure: true)
    }

    /// Writes a canonical teacher (config and vocabulary embedded; 2 layers unless `layers` says) into
    /// `dir`; `edit` may change its tensors (a forged teacher). Weights from a fixed linear
    /// congruential sequence, LayerNorm γ 1.
    static func teacher(in dir: String, name: String = "teacher.safetensors", layers: Int = 2,
                        edit: (inout TensorSet) -> Void = { _ in }) throws -> String {
        let config = BertConfig(vocabSize: 30522, hiddenSize: 32, numHiddenLayers: layers, numAttentionHeads: 4,
                                intermediateSize: 64, maxPositionEmbeddings: 64)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var set = TensorSet()
        let head = BertNames.optionalGroups(config).first { $0.group == "MLM head" }?.tensors ?? []
        for (name, shape) in BertNames.requiredShapes(config) + head {
            let n = shape.reduce(1, *)
            if name.hasSuffix("LayerNorm.weight") {
                set[name] = Tensor(shape: shape, floats: [Float](repeating: 1, count: n))
            } else if shape.count == 1 {
                set[name] = Tensor(shape: shape, floats: [Float](repeating: 0, count: n))
            } else {
                set[name] = Tensor(shape: shape, floats: (0..<n).map { _ in
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    return (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.1
                })
            }
        }
        edit(&set)
        let vocab = try String(contentsOfFile: TestSupport.fixture("vocab/bert-base-uncased.txt"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        set.metadata = [Checkpoint.MetadataKey.format: Checkpoint.formatVersion, Checkpoint.MetadataKey.config: config.jsonString(),
                        Checkpoint.MetadataKey.vocab: vocab.joined(separator: "\n")]
        let path = dir + "/" + name
        try SafeTensors.write(set, to: path)
        return path
    }

    /// The flags of the small runs: one thread (the same in every run, which bit-exactness needs).
    static func flags(_ teacher: String, out: String, steps: Int = 12) -> [String] {
        [teacher, "--corpus", corpus, "-o", out, "--steps", String(steps), "--batch", "4", "--seq-len", "32",
         "--held-out-every", "3", "--eval-every", "0", "--eval-sequences", "8", "--threads", "1", "--seed", "7"]
    }

    static func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    enum Kill: String, CaseIterable, CustomTestStringConvertible {
        /// As soon as the first checkpoint is on disk.
        case afterFirstCheckpoint
        /// At a random moment of the run (possibly before any checkpoint, or during a write).
        case atRandom
        var testDescription: String { rawValue }
    }

    /// SIGKILL a run, resume it with --resume (or start again when it died before its first
    /// checkpoint), and the final student.ckpt is byte-identical to an uninterrupted run's: weights,
    /// moments, projections, step, generator and data order.
    @Test(arguments: Kill.allCases)
    func killedAndResumedEqualsUninterrupted(_ moment: Kill) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try Self.teacher(in: dir)
        let reference = dir + "/straight.ckpt"
        let started = Date()
        let straight = try Self.run(Self.flags(teacher, out: reference) + ["--save-every", "3"])
        #expect(straight.status == 0, "\(straight.stderr)")
        let duration = Date().timeIntervalSince(started)

        let out = dir + "/killed.ckpt"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.distill)
        process.arguments = Self.flags(teacher, out: out) + ["--save-every", "3"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        switch moment {
        case .afterFirstCheckpoint:
            while process.isRunning && !FileManager.default.fileExists(atPath: out) { usleep(2_000) }
        case .atRandom:
            usleep(UInt32(Double.random(in: 0..<duration) * 1e6))
        }
        let killedWhileRunning = process.isRunning
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        if moment == .afterFirstCheckpoint { #expect(killedWhileRunning, "the run finished before it could be killed") }

        let resumed = FileManager.default.fileExists(atPath: out)
        let r = try Self.run(Self.flags(teacher, out: out) + ["--save-every", "3"] + (resumed ? ["--resume", out] : []))
        #expect(r.status == 0, "\(r.stderr)")
        if moment == .afterFirstCheckpoint { #expect(r.stderr.contains("step 3 of 12"), "\(r.stderr)") }
        let a = try #require(Self.bytes(reference)), b = try #require(Self.bytes(out))
        #expect(a == b, "killed \(killedWhileRunning ? "mid-run" : "after the end"), resumed: \(resumed)")
    }

    enum Bad: String, CaseIterable, CustomTestStringConvertible {
        case emptyCorpus, noFullSequence, noHeldOutSequence, vocabularyMismatch, resumeOtherRecipe
        case zeroSteps, zeroBatch, negativeAlpha, warmupTooLong, zeroLearningRate, unknownInit, randomWithoutTeacher, noCorpus
        var testDescription: String { rawValue }
    }

    /// Bad input data exits 65 naming the problem; bad flags exit 64 naming the flag. No run writes
    /// a checkpoint.
    @Test(arguments: Bad.allCases)
    func refusesBadInput(_ bad: Bad) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try Self.teacher(in: dir)
        let out = dir + "/out.ckpt"
        func text(_ s: String) throws -> String {
            let path = dir + "/corpus.txt"
            try Data(s.utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        var args = Self.flags(teacher, out: out, steps: 2)
        func replace(_ flag: String, _ value: String) { args[args.firstIndex(of: flag)! + 1] = value }
        let status: Int32, says: String
        switch bad {
        case .emptyCorpus: replace("--corpus", try text("")); (status, says) = (65, "corpus.txt")
        case .noFullSequence: replace("--corpus", try text("Too short.\n\nStill short.\n")); (status, says) = (65, "32")
        case .noHeldOutSequence:
            replace("--held-out-every", "100000"); (status, says) = (65, "held-out")
        case .vocabularyMismatch:
            args += ["--vocab", TestSupport.fixture("tiny-bert/vocab.txt")]; (status, says) = (65, "tiny-bert/vocab.txt: vocabulary: expected 30522 tokens")
        case .resumeOtherRecipe:
            let first = try Self.run(Self.flags(teacher, out: out, steps: 2))
            #expect(first.status == 0, "\(first.stderr)")
            try FileManager.default.moveItem(atPath: out, toPath: dir + "/first.ckpt")
            args += ["--resume", dir + "/first.ckpt", "--no-distill-layers"]; (status, says) = (65, "alpha_hidden")
        case .zeroSteps: replace("--steps", "0"); (status, says) = (64, "--steps")
        case .zeroBatch: replace("--batch", "0"); (status, says) = (64, "--batch")
        case .negativeAlpha: args += ["--alpha-attention", "-1"]; (status, says) = (64, "--alpha-attention")
        case .warmupTooLong: args += ["--warmup", "2"]; (status, says) = (64, "--warmup")
        case .zeroLearningRate: args += ["--lr", "0"]; (status, says) = (64, "--lr")
        case .unknownInit: args += ["--init", "zeros"]; (status, says) = (64, "--init")
        case .randomWithoutTeacher: args += ["--init", "random", "--mlm-only"]; (status, says) = (64, "--init random")
        case .noCorpus: args.removeSubrange(args.firstIndex(of: "--corpus")!...(args.firstIndex(of: "--corpus")! + 1)); (status, says) = (64, "--corpus")
        }
        let r = try Self.run(args)
        #expect(r.status == status, "\(r.stderr)")
        #expect(r.stderr.contains(says), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    enum NonFinite: String, CaseIterable, CustomTestStringConvertible {
        /// lr 1e30: the first update blows the weights up; step 2's forward overflows.
        case hugeLearningRate
        /// A teacher whose last layer's output is ~1e30 (finite weights) and a random student: the
        /// distillation terms overflow at step 1.
        case overflowingTeacher
        var testDescription: String { rawValue }
    }

    /// A non-finite loss stops the run with exit 65 naming the step and the term, before the weights
    /// change and before anything is written: the last good checkpoint on disk stays as it was.
    @Test(arguments: NonFinite.allCases)
    func nonFiniteLossKeepsTheLastCheckpoint(_ kind: NonFinite) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let out = dir + "/student.ckpt"
        let good = try Self.teacher(in: dir)
        let r: TestSupport.ProcessResult, step: Int
        switch kind {
        case .hugeLearningRate:
            // Saved after every step: step 1's checkpoint (weights ~1e30, still finite) is the last good one.
            r = try Self.run(Self.flags(good, out: out, steps: 4) + ["--lr", "1e30", "--save-every", "1"])
            step = 2
            let saved = try SafeTensors.read(path: out)
            #expect(saved.metadata["hd.step"] == "1")
            for (name, t) in saved.tensors { #expect(t.floats?.buffer.allSatisfy(\.isFinite) ?? true, "\(name)") }
        case .overflowingTeacher:
            // A good checkpoint at -o first; the failing run starts fresh over it (no --resume) and
            // dies at step 1, before its first save.
            let first = try Self.run(Self.flags(good, out: out, steps: 1))
            #expect(first.status == 0, "\(first.stderr)")
            let before = try #require(Self.bytes(out))
            let forged = try Self.teacher(in: dir, name: "forged.safetensors") { set in
                set[BertNames.layer(1).outputLayerNormBias] = Tensor(shape: [32], floats: [Float](repeating: 1e30, count: 32))
            }
            // A random student: a copy of the forged teacher would match it exactly.
            r = try Self.run(Self.flags(forged, out: out, steps: 4) + ["--save-every", "1", "--init", "random"])
            step = 1
            #expect(Self.bytes(out) == before, "the checkpoint on disk changed")
        }
        #expect(r.status == 65, "\(r.stderr)")
        let terms = ["MLM cross-entropy", "KL to the teacher", "hidden-state MSE", "attention MSE", "embedding MSE", "gradient norm"]
        #expect(r.stderr.contains("step \(step):") && terms.contains { r.stderr.contains($0) }, "\(r.stderr)")
        #expect(r.stderr.contains("nan") || r.stderr.contains("inf"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.contains(".tmp") })
    }

    /// A held-out split smaller than one batch is still evaluated, whole; the log has a line per step
    /// with every term, an eval line, and a summary with throughput and peak memory.
    @Test func evaluatesASmallHeldOutSplitAndLogsEveryTerm() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try Self.teacher(in: dir)
        let log = dir + "/log.jsonl"
        var args = Self.flags(teacher, out: dir + "/out.ckpt", steps: 2) + ["--log", log]
        args[args.firstIndex(of: "--batch")! + 1] = "64"
        args[args.firstIndex(of: "--eval-sequences")! + 1] = "1000"
        let r = try Self.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let heldOut = try #require(r.stderr.split(separator: " ").firstIndex(of: "held-out").map { i in
            Int(r.stderr.split(separator: " ")[i - 1]) }.flatMap { $0 })
        #expect(heldOut > 0 && heldOut < 64, "\(r.stderr)")
        let records = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map {
            try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let train = records.filter { $0["kind"] as? String == "train" }, eval = records.filter { $0["kind"] as? String == "eval" }
        #expect(train.count == 2 && eval.count == 1)
        for record in train + eval {
            for key in ["mlm", "kl", "hidden", "attention", "embedding"] { #expect(record[key] is Double, "\(key) in \(record)") }
        }
        #expect(eval.first?["sequences"] as? Int == heldOut)
        let summary = try #require(records.last)
        #expect(summary["kind"] as? String == "summary")
        #expect((summary["tokens_per_second"] as? Double ?? 0) > 0 && (summary["peak_rss_mib"] as? Double ?? 0) > 10)
        #expect(r.stderr.contains("peak RSS"))
    }
}
