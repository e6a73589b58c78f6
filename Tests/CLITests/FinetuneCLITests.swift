import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// `hd-finetune` end to end on the tiny fixture, and what the rest of the chain does with its output
/// (classify, task-specific distillation, export); bad task files as a table.
@Suite("hd-finetune")
struct FinetuneCLITests {
    static let finetune = TestSupport.tool("hd-finetune")
    static let infer = TestSupport.tool("hd-infer")
    static let distill = TestSupport.tool("hd-distill")
    static let export = TestSupport.tool("hd-export")

    /// A sentiment task in the fixture's vocabulary: "good"/"happy" words make `pos`, "bad"/"old" `neg`.
    static func task(_ count: Int, seed: Int = 1) -> String {
        let subjects = ["the cat", "a dog", "the man", "the book", "a house", "the park"]
        let verbs = ["is", "was", "sat", "ran"]
        var rows = ["text\tlabel"], state = UInt64(seed)
        func next(_ n: Int) -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) % n }
        for i in 0..<count {
            let positive = i % 2 == 0
            let word = positive ? ["good", "happy", "new"][next(3)] : ["bad", "old", "small"][next(3)]
            rows.append("\(subjects[next(6)]) \(verbs[next(4)]) \(word) .\t\(positive ? "pos" : "neg")")
        }
        return rows.joined(separator: "\n") + "\n"
    }

    static func write(_ text: String, _ path: String) throws { try text.write(toFile: path, atomically: true, encoding: .utf8) }

    @Test func fineTunesClassifiesDistilsAndExports() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        try Self.write(Self.task(200), "\(tmp)/train.tsv")
        let r = try TestSupport.run(Self.finetune, [TestSupport.fixture("tiny-bert"), "--train", "\(tmp)/train.tsv", "-o", "\(tmp)/cls.ckpt",
                                                    "--epochs", "6", "--batch", "8", "--lr", "2e-3", "--seq-len", "16",
                                                    "--threads", "1", "--json", "--log", "\(tmp)/log.jsonl"])
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(summary["labels"] as? [String] == ["neg", "pos"])
        let epochs = try #require(summary["epochs"] as? [[String: Any]])
        #expect(epochs.count == 6)
        let best = try #require(summary["best_epoch"] as? Int)
        let bestAccuracy = try #require(epochs[best - 1]["accuracy"] as? Double)
        #expect(bestAccuracy >= 0.9, "dev accuracy of the best epoch \(bestAccuracy)")
        #expect(epochs.allSatisfy { ($0["accuracy"] as? Double ?? 1) <= bestAccuracy })

        // The output is a classifier every tool reads: labels in its config, single texts only.
        let checkpoint = try Checkpoint.load("\(tmp)/cls.ckpt")
        #expect(checkpoint.config.id2label == ["neg", "pos"] && checkpoint.hasClassifier && !checkpoint.hasMLMHead)
        #expect(checkpoint.sourceMetadata[Checkpoint.MetadataKey.taskPairs] == "false")
        let c = try TestSupport.run(Self.infer, ["classify", "\(tmp)/cls.ckpt", "the dog was happy .", "a cat is bad .", "--json"])
        let labels = c.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["label"] as? String
        }
        #expect(labels == ["pos", "neg"])
        let pair = try TestSupport.run(Self.infer, ["classify", "\(tmp)/cls.ckpt", "the dog", "--pair", "was happy"], allowFailure: true)
        #expect(pair.status == 65)

        // Task-specific distillation of the classifier, pruned, exported, and classifying again.
        let d = try TestSupport.run(Self.distill, ["\(tmp)/cls.ckpt", "--task", "\(tmp)/train.tsv", "-o", "\(tmp)/student.ckpt",
                                                   "--steps", "6", "--batch", "8", "--seq-len", "16", "--eval-every", "3",
                                                   "--hidden", "24", "--ffn", "32", "--prune-end", "4", "--prune-every", "1",
                                                   "--log", "\(tmp)/distill.jsonl", "--threads", "1"])
        #expect(d.stderr.contains("classifier teacher"))
        let evals = try String(contentsOfFile: "\(tmp)/distill.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.filter { $0["kind"] as? String == "eval" }
        #expect(!evals.isEmpty && evals.allSatisfy { $0["task_accuracy"] is Double && $0["teacher_task_accuracy"] is Double && $0["mlm"] == nil })
        _ = try TestSupport.run(Self.export, ["--shrink", "\(tmp)/student.ckpt", "-o", "\(tmp)/student.safetensors"])
        let shrunk = try Checkpoint.load("\(tmp)/student.safetensors")
        #expect(shrunk.config.hiddenSize == 24 && shrunk.config.id2label == ["neg", "pos"] && shrunk.hasClassifier)
        _ = try TestSupport.run(Self.infer, ["classify", "\(tmp)/student.safetensors", "the dog was happy ."])
        // The student keeps its teacher's single-text task: a pair is refused.
        #expect(shrunk.sourceMetadata[Checkpoint.MetadataKey.taskPairs] == "false")
        let studentPair = try TestSupport.run(Self.infer, ["classify", "\(tmp)/student.safetensors", "the dog", "--pair", "was happy"],
                                              allowFailure: true)
        #expect(studentPair.status == 65)
    }

    /// A pruned student.ckpt fine-tunes as the dense model it equals (its pruned units are gone, so
    /// they stay pruned); a numeric label column trains a regression head.
    @Test func aStudentFineTunesAndARegressionHeadTrains() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        _ = try TestSupport.run(Self.distill, [TestSupport.fixture("tiny-bert"), "--corpus", TestSupport.fixture("corpus/tiny.txt"),
                                               "-o", "\(tmp)/student.ckpt", "--steps", "2", "--batch", "4", "--seq-len", "32",
                                               "--hidden", "24", "--ffn", "32", "--schedule", "one-shot", "--held-out-every", "0",
                                               "--threads", "1"])
        try Self.write(Self.task(48), "\(tmp)/train.tsv")
        _ = try TestSupport.run(Self.finetune, ["\(tmp)/student.ckpt", "--train", "\(tmp)/train.tsv", "-o", "\(tmp)/cls.ckpt",
                                                "--epochs", "1", "--batch", "8", "--seq-len", "16", "--threads", "1"])
        let classifier = try Checkpoint.load("\(tmp)/cls.ckpt")
        #expect(classifier.config.hiddenSize == 24 && classifier.config.intermediateSize == 32 && classifier.hasClassifier)

        let scores = (0..<40).map { i in "\(["the cat", "a dog", "the man"][i % 3]) was \(i % 2 == 0 ? "good" : "bad") .\t\(Double(i % 2) * 2.5 - 1)" }
        try Self.write((["text\tscore"] + scores).joined(separator: "\n") + "\n", "\(tmp)/scores.tsv")
        let r = try TestSupport.run(Self.finetune, [TestSupport.fixture("tiny-bert"), "--train", "\(tmp)/scores.tsv", "--label-column", "score",
                                                    "--regression", "-o", "\(tmp)/reg.ckpt", "--epochs", "2", "--batch", "8", "--seq-len", "16",
                                                    "--threads", "1", "--json"])
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let epochs = try #require(summary["epochs"] as? [[String: Any]])
        #expect(epochs.allSatisfy { $0["accuracy"] == nil && $0["loss"] is Double })
        let regression = try Checkpoint.load("\(tmp)/reg.ckpt")
        #expect(regression.config.isRegression && regression.config.id2label?.count == 1)
        // hd-infer evaluate scores it on the numeric column: MSE and the two correlations.
        let e = try TestSupport.run(Self.infer, ["evaluate", "\(tmp)/reg.ckpt", "--data", "\(tmp)/scores.tsv", "--label-column", "score", "--json"])
        let scored = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect(scored["examples"] as? Int == 40)
        let mse = try #require(scored["mse"] as? Double), pearson = try #require(scored["pearson"] as? Double)
        #expect(mse.isFinite && mse >= 0 && abs(pearson) <= 1 && scored["accuracy"] == nil)
    }

    /// A sentence-transformers-like teacher (the fixture without its MLM head) distils on plain text
    /// with the pooled cosine; asking for the MLM or KL term is a usage error that names the flag.
    @Test func headlessTeacherDistilsWithThePooledCosine() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let source = try Checkpoint.load(TestSupport.fixture("tiny-bert"))
        var headless = source
        headless.tensors = TensorSet(tensors: source.tensors.tensors.filter { !$0.key.hasPrefix("cls.") })
        try SafeTensors.write(headless.canonicalTensorSet(sourceDigest: nil), to: "\(tmp)/encoder.safetensors")
        let corpus = TestSupport.fixture("corpus/tiny.txt")
        let args = ["\(tmp)/encoder.safetensors", "--corpus", corpus, "-o", "\(tmp)/student.ckpt", "--steps", "4", "--batch", "4",
                    "--seq-len", "32", "--eval-every", "2", "--held-out-every", "5", "--threads", "1"]
        for flag in ["--alpha-kl", "--alpha-mlm"] {
            let refused = try TestSupport.run(Self.distill, args + [flag, "0.5"], allowFailure: true)
            #expect(refused.status == 64 && refused.stderr.contains(flag), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(tmp)/student.ckpt"))
        }
        let r = try TestSupport.run(Self.distill, args + ["--log", "\(tmp)/log.jsonl", "--ffn", "32", "--prune-end", "3", "--prune-every", "1"])
        #expect(r.stderr.contains("no MLM or KL term"))
        let records = try String(contentsOfFile: "\(tmp)/log.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let train = records.filter { $0["kind"] as? String == "train" }, evals = records.filter { $0["kind"] as? String == "eval" }
        #expect(train.count == 4 && train.allSatisfy { $0["pooled"] is Double && $0["mlm"] == nil && $0["kl"] == nil })
        #expect(!evals.isEmpty && evals.allSatisfy { ($0["pooled_cosine"] as? Double ?? 0) > 0.5 })
        _ = try TestSupport.run(Self.export, ["--shrink", "\(tmp)/student.ckpt", "-o", "\(tmp)/student.safetensors"])
        _ = try TestSupport.run(Self.infer, ["embed", "\(tmp)/student.safetensors", "the cat sat on the mat ."])
    }

    enum BadTask: String, CaseIterable, Sendable {
        case missingColumn, emptyText, labelOnlyInDev, singleClass, raggedRow, notUTF8, pairOnSingleTextModel, labelCountDisagrees

        /// (train file, dev file or nil, extra flags, what the message must contain).
        func files(_ tmp: String) throws -> (model: String, train: [UInt8], dev: [UInt8]?, flags: [String], says: [String]) {
            let good = Array(FinetuneCLITests.task(12).utf8)
            let model = TestSupport.fixture("tiny-bert")
            switch self {
            case .missingColumn: return (model, Array("sentence\tlabel\nthe cat\tpos\n".utf8), nil, [], ["column \"text\""])
            case .emptyText: return (model, good + Array("  \tpos\n".utf8), nil, [], ["train.tsv:14", "column \"text\""])
            case .labelOnlyInDev: return (model, good, Array("text\tlabel\nthe cat\tmeh\n".utf8), [], ["dev.tsv:2", "meh"])
            case .singleClass: return (model, Array("text\tlabel\nthe cat\tpos\nthe dog\tpos\n".utf8), nil, [], ["column \"label\"", "pos"])
            case .raggedRow: return (model, good + Array("the cat\tpos\textra\n".utf8), nil, [], ["train.tsv:14"])
            case .notUTF8: return (model, good + [0x74, 0xFF, 0x09, 0x70, 0x6F, 0x73, 0x0A], nil, [], ["train.tsv:14"])
            case .pairOnSingleTextModel:
                return ("\(tmp)/single.safetensors", Array("text\tsecond\tlabel\nthe cat\tsat\tpos\na dog\tran\tneg\n".utf8), nil,
                        ["--pair-column", "second"], ["--pair-column"])
            case .labelCountDisagrees:
                return ("\(tmp)/forged", good, nil, [], ["classifier.weight", "id2label"])
            }
        }
    }

    @Test(arguments: BadTask.allCases)
    func badTaskIsRefusedAndNothingIsWritten(_ bad: BadTask) throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        if bad == .pairOnSingleTextModel {
            var single = try Checkpoint.load(ClassifierReference.directory)
            single.sourceMetadata[Checkpoint.MetadataKey.taskPairs] = "false"
            try SafeTensors.write(single.canonicalTensorSet(sourceDigest: nil), to: "\(tmp)/single.safetensors")
        }
        if bad == .labelCountDisagrees {
            try FileManager.default.createDirectory(atPath: "\(tmp)/forged", withIntermediateDirectories: true)
            for file in ["model.safetensors", "vocab.txt"] {
                try FileManager.default.copyItem(atPath: "\(ClassifierReference.directory)/\(file)", toPath: "\(tmp)/forged/\(file)")
            }
            var config = try #require(try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: "\(ClassifierReference.directory)/config.json"))) as? [String: Any])
            config["id2label"] = ["0": "a", "1": "b"]
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: "\(tmp)/forged/config.json"))
        }
        let (model, train, dev, flags, says) = try bad.files(tmp)
        try Data(train).write(to: URL(fileURLWithPath: "\(tmp)/train.tsv"))
        var args = [model, "--train", "\(tmp)/train.tsv", "-o", "\(tmp)/out.ckpt", "--epochs", "1", "--seq-len", "16"] + flags
        if let dev {
            try Data(dev).write(to: URL(fileURLWithPath: "\(tmp)/dev.tsv"))
            args += ["--dev", "\(tmp)/dev.tsv"]
        }
        let r = try TestSupport.run(Self.finetune, args, allowFailure: true)
        #expect(r.status == 65, "\(bad): status \(r.status), \(r.stderr)")
        for phrase in says { #expect(r.stderr.contains(phrase), "\(bad): \(r.stderr) lacks \(phrase)") }
        #expect(!FileManager.default.fileExists(atPath: "\(tmp)/out.ckpt"))
    }
}
