import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// A student narrower than its teacher, made once for the suite: hd-distill prunes the small teacher
/// of `DistillCLITests` (hidden 32) to hidden 16, hd-export shrinks it.
struct CompareStudents: Sendable {
    let dir: String
    let teacher: String
    let checkpoint: String
    let exported: String

    @TaskLocal static var current: CompareStudents?

    init() throws {
        dir = try TestSupport.temporaryDirectory()
        teacher = try DistillCLITests.teacher(in: dir)
        checkpoint = dir + "/student.ckpt"
        exported = dir + "/student.safetensors"
        try TestSupport.run(DistillCLITests.distill, DistillCLITests.flags(teacher, out: checkpoint, steps: 8)
            + ["--hidden", "16", "--ffn", "32", "--head-size", "4", "--prune-start", "2", "--prune-end", "6", "--prune-every", "2"])
        try TestSupport.run(ExportCLITests.export, ["--shrink", checkpoint, "-o", exported])
    }

    struct Scope: SuiteTrait, TestScoping {
        var isRecursive: Bool { false }

        func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
            let students = try CompareStudents()
            defer { TestSupport.cleanUp(students.dir) }
            try await CompareStudents.$current.withValue(students) { try await function() }
        }
    }
}

/// `hd-infer compare` as a newcomer runs it: sizes, alternating latency and the quality figures,
/// checked against what the other subcommands (embed, evaluate) and the files say.
@Suite("hd-infer compare", .serialized, CompareStudents.Scope())
struct CompareCLITests {
    static let infer = TestSupport.tool("hd-infer")
    static let tinyBERT = TestSupport.fixture("tiny-bert")
    static let classifier = TestSupport.fixture("tiny-classifier")
    /// Short timings: the tests check the figures' consistency, not the speed.
    static let quick = ["--seq-len", "16", "--warmup", "1", "--iterations", "3", "--threads", "1"]

    static let sentences = ["the cat sat on the mat.", "a dog runs in the park.", "she read the book twice.",
                            "rain fell all night.", "the the the."]
    /// SNLI's layout; rows chosen so both labels have several cosines and a neutral row is left out.
    static let pairRows = [["premise", "hypothesis", "label"],
                           ["the cat sat on the mat.", "a cat is sitting.", "entailment"],
                           ["the cat sat on the mat.", "the dog is running.", "contradiction"],
                           ["a dog runs in the park.", "an animal runs.", "entailment"],
                           ["a dog runs in the park.", "the dog sleeps at home.", "contradiction"],
                           ["she read the book twice.", "she likes the book.", "neutral"],
                           ["she read the book twice.", "she read it.", "entailment"],
                           ["rain fell all night.", "it was dry.", "contradiction"]]

    static func run(_ args: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(infer, ["compare"] + args, allowFailure: true)
    }

    static func students() throws -> CompareStudents { try #require(CompareStudents.current, "the suite's CompareStudents.Scope trait makes them") }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    static func write(_ dir: String, _ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func tsv(_ rows: [[String]]) -> String { rows.map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n" }

    /// `hd-infer embed MODEL - --json` on `texts`: one embedding per text.
    static func embeddings(_ model: String, _ texts: [String]) throws -> [[Double]] {
        let r = try TestSupport.run(infer, ["embed", model, "-", "--json", "--threads", "1"], stdin: texts.joined(separator: "\n") + "\n")
        return try r.stdout.split(separator: "\n").map { line in
            try #require((try json(String(line)))["embedding"] as? [Double])
        }
    }

    @Test("the tiny model against itself: cosine 1, equal AUCs, fractions 1, every JSON key")
    func selfComparison() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let sentences = try Self.write(tmp, "s.txt", Self.sentences.joined(separator: "\n") + "\n\n")
        let pairs = try Self.write(tmp, "snli.tsv", Self.tsv(Self.pairRows))
        let r = try Self.run([Self.tinyBERT, Self.tinyBERT, "--sentences", sentences, "--pairs", pairs, "--json"] + Self.quick)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty, "progress goes to a terminal only: \(r.stderr)")
        let report = try Self.json(r.stdout)
        #expect(Set(report.keys) == ["teacher", "student", "student_fraction", "speedup", "batch", "seq_len", "threads", "warmup",
                                     "iterations", "precision", "sentences", "pairs"])
        let teacher = try #require(report["teacher"] as? [String: Any]), student = try #require(report["student"] as? [String: Any])
        for model in [teacher, student] {
            #expect(Set(model.keys) == ["model", "hidden_size", "layers", "params", "flops_per_128_token_sequence", "latency_ms",
                                        "latency_samples_ms"])
            #expect((model["latency_samples_ms"] as? [Double])?.count == 3)
        }
        // tiny-bert: hidden 32, 2 layers, FFN 64, vocab 100, 64 positions, a pooler, MLM head tied (ModelSize's count).
        let config = BertConfig(vocabSize: 100, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 64,
                                maxPositionEmbeddings: 64)
        #expect(teacher["params"] as? Int == ModelSize(config: config, hasPooler: true, mlmHead: .tied).parameters)
        #expect(teacher["flops_per_128_token_sequence"] as? Int == ModelSize(config: config, hasPooler: true, mlmHead: .tied).flopsPer128TokenSequence)
        let fraction = try #require(report["student_fraction"] as? [String: Double])
        #expect(fraction["params"] == 1 && fraction["flops"] == 1)
        let p50 = { (m: [String: Any]) in (m["latency_ms"] as? [String: Double])?["p50"] ?? .nan }
        let speedup = try #require(report["speedup"] as? Double)
        #expect(speedup > 0 && abs(speedup - p50(teacher) / p50(student)) < 1e-9 * speedup)
        let cosine = try #require(report["sentences"] as? [String: Any])
        #expect(cosine["sentences"] as? Int == Self.sentences.count)  // the blank line is not a sentence
        #expect(abs((cosine["mean"] as? Double ?? 0) - 1) < 1e-6 && abs((cosine["min"] as? Double ?? 0) - 1) < 1e-6)
        #expect((cosine["std"] as? Double ?? 1) < 1e-6)
        #expect(cosine["kept_dims"] as? Bool == false && cosine["compared_dims"] as? Int == 32)
        let auc = try #require(report["pairs"] as? [String: Any])
        #expect(auc["entailment"] as? Int == 3 && auc["contradiction"] as? Int == 3 && auc["skipped"] as? Int == 1)
        #expect(auc["teacher"] as? Double == auc["student"] as? Double)

        // The table carries the same rows.
        let table = try Self.run([Self.tinyBERT, Self.tinyBERT, "--sentences", sentences, "--pairs", pairs] + Self.quick)
        #expect(table.status == 0, "\(table.stderr)")
        for row in ["parameters", "GFLOP / 128-token seq", "p50 latency ms", "p90 latency ms", "speed-up", "cosine to teacher", "pair AUC"] {
            #expect(table.stdout.contains("\n" + row + " "), "\(row) in \(table.stdout)")
        }
        #expect(table.stdout.contains("student/teacher"))
    }

    @Test("a student narrower in hidden: the cosine over the teacher dimensions it kept, as embed's outputs give it",
          arguments: ["exported", "student.ckpt"])
    func keptDimensions(_ which: String) throws {
        let students = try Self.students()
        let student = which == "exported" ? students.exported : students.checkpoint
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let file = try Self.write(tmp, "s.txt", Self.sentences.joined(separator: "\n"))
        let r = try Self.run([students.teacher, student, "--sentences", file, "--json"] + Self.quick)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try Self.json(r.stdout)
        #expect((report["student"] as? [String: Any])?["hidden_size"] as? Int == 16)
        let cosine = try #require(report["sentences"] as? [String: Any])
        #expect(cosine["kept_dims"] as? Bool == true && cosine["compared_dims"] as? Int == 16)

        // The plain computation: embed's vectors, the student's dimension i beside the teacher's kept[i].
        let kept = try Self.keptFromMask(students.checkpoint)
        let t = try Self.embeddings(students.teacher, Self.sentences), s = try Self.embeddings(student, Self.sentences)
        let cosines = zip(t, s).map { t, s in
            let tk = kept.map { t[$0] }
            let dot = zip(s, tk).reduce(0) { $0 + $1.0 * $1.1 }
            return dot / (s.reduce(0) { $0 + $1 * $1 }.squareRoot() * tk.reduce(0) { $0 + $1 * $1 }.squareRoot())
        }
        let mean = cosines.reduce(0, +) / Double(cosines.count)
        let std = (cosines.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(cosines.count)).squareRoot()
        #expect(abs((cosine["mean"] as? Double ?? .nan) - mean) < 1e-5, "\(cosine) vs \(cosines)")
        #expect(abs((cosine["std"] as? Double ?? .nan) - std) < 1e-5)
        #expect(abs((cosine["min"] as? Double ?? .nan) - cosines.min()!) < 1e-5)
        #expect(mean < 0.9999, "a pruned student is not its teacher: \(cosines)")
    }

    /// The hidden dimensions `hd.mask.hidden` keeps in a student.ckpt.
    static func keptFromMask(_ checkpoint: String) throws -> [Int] {
        let mask = try #require(try SafeTensors.read(path: checkpoint).tensors["hd.mask.hidden"])
        guard case .int64(let flags) = mask.values else {
            Issue.record("hd.mask.hidden of \(checkpoint) is not integral")
            return []
        }
        return flags.indices.filter { flags[$0] != 0 }
    }

    @Test("hd-export --shrink records the kept teacher hidden indices, exactly those hd.mask.hidden keeps")
    func keptRecordMatchesMask() throws {
        let students = try Self.students()
        let record = try #require(try SafeTensors.metadata(path: students.exported)[Checkpoint.MetadataKey.keptHidden])
        let kept = try Self.keptFromMask(students.checkpoint)
        #expect(kept.count == 16)
        #expect(try JSONDecoder().decode([Int].self, from: Data(record.utf8)) == kept)
        // A student.ckpt loaded by any tool carries the same record.
        #expect(try Checkpoint.load(students.checkpoint).sourceMetadata[Checkpoint.MetadataKey.keptHidden] == record)
        // hd-convert keeps it: the widths do not change.
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        try TestSupport.run(TestSupport.tool("hd-convert"), [students.exported, "-o", tmp + "/copy.safetensors"])
        #expect(try SafeTensors.metadata(path: tmp + "/copy.safetensors")[Checkpoint.MetadataKey.keptHidden] == record)
    }

    @Test("two classifiers on a labelled file: evaluate's accuracy and macro-F1 for each, full agreement with itself")
    func classifiers() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let data = try Self.write(tmp, "d.tsv", Self.tsv([["text", "label"], ["the cat sat on the mat.", "positive"],
                                                           ["a dog runs.", "negative"], ["rain fell.", "neutral"],
                                                           ["she read the book.", "positive"]]))
        let r = try Self.run([Self.classifier, Self.classifier, "--data", data, "--json"] + Self.quick)
        #expect(r.status == 0, "\(r.stderr)")
        let c = try #require((try Self.json(r.stdout))["classification"] as? [String: Any])
        let evaluated = try Self.json(try TestSupport.run(Self.infer, ["evaluate", Self.classifier, "--data", data, "--json"]).stdout)
        for model in ["teacher", "student"] {
            let scores = try #require(c[model] as? [String: Double])
            #expect(scores["accuracy"] == evaluated["accuracy"] as? Double)
            #expect(scores["macro_f1"] == evaluated["macro_f1"] as? Double)
        }
        #expect(c["agreement"] as? Double == 1)
        #expect(c["examples"] as? Int == 4)
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        var name: String
        var status: Int32
        /// Words the message must hold (the file, the field, what was expected).
        var says: [String]
        var testDescription: String { name }
    }

    static let refusals: [Refusal] = [
        Refusal(name: "widths differ, no hd.kept.hidden", status: 65, says: ["no-record.safetensors", "hd.kept.hidden", "hidden size is 16", "teacher's 32"]),
        Refusal(name: "hd.kept.hidden not ascending", status: 65, says: ["bad-record.safetensors", "hd.kept.hidden", "ascending"]),
        Refusal(name: "classifier labels differ", status: 65, says: ["other-labels", "id2label", "negative, neutral, positive"]),
        Refusal(name: "--data on a model without a classifier", status: 65, says: ["classifier.weight"]),
        Refusal(name: "--pairs without its hypothesis column", status: 65, says: ["no-hypothesis.tsv", "hypothesis"]),
        Refusal(name: "--pairs label outside SNLI's", status: 65, says: ["odd-label.tsv", "label", "entailment, neutral or contradiction", "maybe"]),
        Refusal(name: "--pairs without a contradiction", status: 65, says: ["one-sided.tsv", "contradiction"]),
        Refusal(name: "--seq-len over the position table", status: 65, says: ["max_position_embeddings", "64"]),
        Refusal(name: "--sentences table without --column", status: 64, says: ["--column"]),
        Refusal(name: "--column without --sentences", status: 64, says: ["--sentences"]),
        Refusal(name: "--iterations 0", status: 64, says: ["--iterations"]),
    ]

    @Test(arguments: refusals)
    func refused(_ refusal: Refusal) throws {
        let students = try Self.students()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        func forged(_ name: String, record: String?) throws -> String {
            var set = try SafeTensors.read(path: students.exported)
            set.metadata[Checkpoint.MetadataKey.keptHidden] = record
            try SafeTensors.write(set, to: tmp + "/" + name)
            return tmp + "/" + name
        }
        let sentences = try Self.write(tmp, "s.txt", "a sentence.\n")
        var args: [String]
        switch refusal.name {
        case "widths differ, no hd.kept.hidden":
            args = [students.teacher, try forged("no-record.safetensors", record: nil), "--sentences", sentences]
        case "hd.kept.hidden not ascending":
            args = [students.teacher, try forged("bad-record.safetensors", record: "[" + (0..<16).reversed().map(String.init).joined(separator: ",") + "]"),
                    "--sentences", sentences]
        case "classifier labels differ":
            let other = tmp + "/other-labels"
            try FileManager.default.copyItem(atPath: Self.classifier, toPath: other)
            let config = try String(contentsOfFile: other + "/config.json", encoding: .utf8)
                .replacingOccurrences(of: "\"negative\"", with: "\"bad\"")
            try config.write(toFile: other + "/config.json", atomically: true, encoding: .utf8)
            let data = try Self.write(tmp, "d.tsv", Self.tsv([["text", "label"], ["a cat.", "neutral"]]))
            args = [Self.classifier, other, "--data", data]
        case "--data on a model without a classifier":
            let data = try Self.write(tmp, "d.tsv", Self.tsv([["text", "label"], ["a cat.", "neutral"]]))
            args = [Self.tinyBERT, Self.tinyBERT, "--data", data]
        case "--pairs without its hypothesis column":
            let file = try Self.write(tmp, "no-hypothesis.tsv", Self.tsv(Self.pairRows.map { [$0[0], $0[2]] }))
            args = [Self.tinyBERT, Self.tinyBERT, "--pairs", file]
        case "--pairs label outside SNLI's":
            let file = try Self.write(tmp, "odd-label.tsv", Self.tsv(Self.pairRows + [["a", "b", "maybe"]]))
            args = [Self.tinyBERT, Self.tinyBERT, "--pairs", file]
        case "--pairs without a contradiction":
            let file = try Self.write(tmp, "one-sided.tsv", Self.tsv(Self.pairRows.filter { $0[2] != "contradiction" }))
            args = [Self.tinyBERT, Self.tinyBERT, "--pairs", file]
        case "--seq-len over the position table":
            args = [Self.tinyBERT, Self.tinyBERT, "--seq-len", "65"]
        case "--sentences table without --column":
            args = [Self.tinyBERT, Self.tinyBERT, "--sentences", try Self.write(tmp, "table.tsv", Self.tsv(Self.pairRows))]
        case "--column without --sentences":
            args = [Self.tinyBERT, Self.tinyBERT, "--column", "premise"]
        case "--iterations 0":
            args = [Self.tinyBERT, Self.tinyBERT, "--iterations", "0"]
        default:
            Issue.record("no arguments for \(refusal.name)")
            return
        }
        // The quick flags first: a case's own --seq-len or --iterations comes later and wins.
        let r = try Self.run(Self.quick + args)
        #expect(r.status == refusal.status, "\(r.stderr)")
        #expect(r.stdout.isEmpty, "nothing on stdout: \(r.stdout)")
        for word in refusal.says { #expect(r.stderr.contains(word), "\(word) in: \(r.stderr)") }
    }
}
