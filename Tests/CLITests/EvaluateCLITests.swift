import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// `hd-infer evaluate` on the transformers-made classifier (fixtures/tiny-classifier): files whose gold
/// labels are transformers' predictions for some rows and another label for others, so the expected
/// accuracy, per-class scores and confusion matrix follow from the committed reference.
@Suite("hd-infer evaluate")
struct EvaluateCLITests {
    static let infer = TestSupport.tool("hd-infer")

    static func run(_ args: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(infer, args, allowFailure: true)
    }

    /// Gold labels: transformers' label for the first 7 examples, "neutral" for the rest.
    static func gold(_ examples: [ClassifierReference.Example]) -> [String] {
        examples.enumerated().map { $0.offset < 7 ? $0.element.label : "neutral" }
    }

    /// The expected confusion matrix (rows gold, columns predicted = transformers' label).
    static func confusion(_ examples: [ClassifierReference.Example], gold: [String], labels: [String]) -> [[Int]] {
        var m = [[Int]](repeating: [Int](repeating: 0, count: labels.count), count: labels.count)
        for (example, g) in zip(examples, gold) { m[labels.firstIndex(of: g)!][labels.firstIndex(of: example.label)!] += 1 }
        return m
    }

    static func tsv(_ rows: [[String]]) -> String { rows.map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n" }

    @Test("texts (TSV) and pairs (CSV): accuracy, macro-F1, per-class, confusion as the reference implies", arguments: [1, 4, 32])
    func metrics(batch: Int) throws {
        let reference = try ClassifierReference.load()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let texts = try #require(reference.groups["texts"]?.examples)
        let pairs = try #require(reference.groups["pairs"]?.examples)
        let textGold = Self.gold(texts)
        try Self.tsv([["label", "sentence"]] + zip(texts, textGold).map { [$1, $0.text] })
            .write(toFile: "\(tmp)/texts.tsv", atomically: true, encoding: .utf8)
        let csv = "premise,hypothesis,gold\n" + pairs.map { "\"\($0.text)\",\"\($0.pair!)\",\($0.label)" }.joined(separator: "\n") + "\n"
        try csv.write(toFile: "\(tmp)/pairs.csv", atomically: true, encoding: .utf8)

        for (file, args, examples, gold) in [
            ("texts.tsv", ["--text-column", "sentence"], texts, textGold),
            ("pairs.csv", ["--text-column", "premise", "--pair-column", "hypothesis", "--label-column", "gold"], pairs, pairs.map(\.label)),
        ] {
            let r = try Self.run(["evaluate", ClassifierReference.directory, "--data", "\(tmp)/\(file)", "--json",
                                  "--batch", String(batch)] + args)
            #expect(r.status == 0, "\(r.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let confusion = Self.confusion(examples, gold: gold, labels: reference.labels)
            let correct = (0..<3).reduce(0) { $0 + confusion[$1][$1] }
            #expect(report["examples"] as? Int == examples.count)
            #expect(report["labels"] as? [String] == reference.labels)
            #expect(report["confusion"] as? [[Int]] == confusion)
            #expect(abs((report["accuracy"] as? Double ?? -1) - Double(correct) / Double(examples.count)) < 1e-12)
            let perClass = try #require(report["per_class"] as? [[String: Any]])
            var f1s: [Double] = []
            for (c, entry) in perClass.enumerated() {
                let tp = confusion[c][c], support = confusion[c].reduce(0, +), predicted = confusion.reduce(0) { $0 + $1[c] }
                #expect(entry["label"] as? String == reference.labels[c])
                #expect(entry["support"] as? Int == support)
                #expect(abs((entry["precision"] as? Double ?? -1) - (predicted == 0 ? 0 : Double(tp) / Double(predicted))) < 1e-12)
                #expect(abs((entry["recall"] as? Double ?? -1) - (support == 0 ? 0 : Double(tp) / Double(support))) < 1e-12)
                f1s.append(support + predicted == 0 ? 0 : 2 * Double(tp) / Double(support + predicted))
            }
            #expect(abs((report["macro_f1"] as? Double ?? -1) - f1s.reduce(0, +) / 3) < 1e-12)
            #expect((report["examples_per_second"] as? Double ?? 0) > 0)
        }
    }

    @Test("plain output names accuracy, macro-F1, every label and the confusion matrix")
    func plain() throws {
        let reference = try ClassifierReference.load()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let texts = try #require(reference.groups["texts"]?.examples)
        try Self.tsv([["text", "label"]] + zip(texts, Self.gold(texts)).map { [$0.text, $1] })
            .write(toFile: "\(tmp)/t.tsv", atomically: true, encoding: .utf8)
        let r = try Self.run(["evaluate", ClassifierReference.directory, "--data", "\(tmp)/t.tsv"])
        #expect(r.status == 0, "\(r.stderr)")
        for needle in ["accuracy    0.7000", "macro-F1", "confusion (rows: gold, columns: predicted)", "negative", "neutral", "positive", "examples/s"] {
            #expect(r.stdout.contains(needle), "\(needle)")
        }
    }

    /// Bad input: exit status, the message's key words, nothing on stdout.
    struct BadCase: CustomTestStringConvertible, Sendable {
        var name: String
        var file: String
        var content: String
        var extra: [String] = []
        var model: String? = nil
        var status: Int32 = 65
        var says: [String]
        var testDescription: String { name }
    }

    static let badCases: [BadCase] = [
        BadCase(name: "a label the model does not know", file: "d.tsv", content: "text\tlabel\nthe cat\tpositive\nthe dog\tangry\n",
                says: ["d.tsv:3", "\"angry\" is not one of the model's 3 labels"]),
        BadCase(name: "a missing label column", file: "d.tsv", content: "text\tgold\nthe cat\tpositive\n", says: ["d.tsv", "label"]),
        BadCase(name: "a missing pair column", file: "d.tsv", content: "text\tlabel\nthe cat\tpositive\n", extra: ["--pair-column", "hypothesis"],
                says: ["hypothesis"]),
        BadCase(name: "an empty text", file: "d.tsv", content: "text\tlabel\nthe cat\tpositive\n \tneutral\n", says: ["d.tsv:3"]),
        BadCase(name: "a ragged row", file: "d.tsv", content: "text\tlabel\nthe cat\tpositive\tx\n", says: ["d.tsv:2"]),
        BadCase(name: "a line that is not UTF-8", file: "d.tsv", content: "text\tlabel\nthe caf\u{E9}\tpositive\n", says: ["d.tsv"]),
        BadCase(name: "a model without a classifier", file: "d.tsv", content: "text\tlabel\nthe cat\tpositive\n",
                model: TestSupport.fixture("tiny-bert/model.safetensors"), says: ["expected a sequence classifier"]),
        BadCase(name: "an unknown file extension", file: "d.txt", content: "text\tlabel\nthe cat\tpositive\n", says: ["d.txt", ".txt"]),
        BadCase(name: "no --data", file: "", content: "", status: 64, says: ["--data"]),
    ]

    @Test(arguments: badCases)
    func refused(_ c: BadCase) throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        var args = ["evaluate", c.model ?? ClassifierReference.directory] + c.extra
        if !c.file.isEmpty {
            var bytes = Data(c.content.utf8)
            // "é" as Latin-1 (one byte 0xE9), which is not UTF-8.
            if c.name.contains("UTF-8") { bytes = bytes.replacingOccurrences(of: Data("é".utf8), with: Data([0xE9])) }
            try bytes.write(to: URL(fileURLWithPath: "\(tmp)/\(c.file)"))
            args += ["--data", "\(tmp)/\(c.file)"]
        }
        let r = try Self.run(args)
        #expect(r.status == c.status, "\(r.stderr)")
        for needle in c.says { #expect(r.stderr.contains(needle), "\(needle) in \(r.stderr)") }
        #expect(r.stdout.isEmpty)
    }

    @Test("--pair-column on a model fine-tuned without pairs is refused naming the flag and hd.task.pairs")
    func pairColumnOnSingleTextModel() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let checkpoint = try Checkpoint.load(ClassifierReference.directory)
        var set = checkpoint.canonicalTensorSet(sourceDigest: nil)
        set.metadata["hd.task.pairs"] = "false"
        try SafeTensors.write(set, to: "\(tmp)/m.safetensors")
        try "a,b,label\nthe cat,the dog,positive\n".write(toFile: "\(tmp)/d.csv", atomically: true, encoding: .utf8)
        let r = try Self.run(["evaluate", "\(tmp)/m.safetensors", "--data", "\(tmp)/d.csv", "--text-column", "a", "--pair-column", "b"])
        #expect(r.status == 65)
        #expect(r.stderr.contains("--pair-column b") && r.stderr.contains("hd.task.pairs = \"false\""), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }
}

extension Data {
    /// Every occurrence of `target` replaced by `replacement`.
    fileprivate func replacingOccurrences(of target: Data, with replacement: Data) -> Data {
        var out = Data(), i = startIndex
        while i < endIndex {
            if self[i...].starts(with: target) {
                out.append(replacement)
                i += target.count
            } else {
                out.append(self[i])
                i += 1
            }
        }
        return out
    }
}
