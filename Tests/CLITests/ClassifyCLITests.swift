import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// `hd-infer classify` and hd-convert on a transformers-made classifier (fixtures/tiny-classifier,
/// tools/make_classifier_fixture.py): the same label on every example and probabilities within 1e-4
/// of transformers' (the done-when check), pairs and truncation included.
@Suite("hd-infer classify / hd-convert of a classifier")
struct ClassifyCLITests {
    static let infer = TestSupport.tool("hd-infer")
    static let convert = TestSupport.tool("hd-convert")

    static func run(_ tool: String, _ args: [String], stdin: String? = nil) throws -> TestSupport.ProcessResult {
        try TestSupport.run(tool, args, stdin: stdin, allowFailure: true)
    }

    static func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// The fixture with its checkpoint changed by `edit` (config, tensors, metadata), written as a
    /// canonical safetensors file in `dir`.
    static func variant(_ dir: String, _ name: String, edit: (inout Checkpoint, inout [String: String]) throws -> Void) throws -> String {
        var checkpoint = try Checkpoint.load(ClassifierReference.directory)
        var extra: [String: String] = [:]
        try edit(&checkpoint, &extra)
        var set = checkpoint.canonicalTensorSet(sourceDigest: nil)
        set.metadata.merge(extra) { _, new in new }
        let path = "\(dir)/\(name).safetensors"
        try SafeTensors.write(set, to: path)
        return path
    }

    /// Every group of the reference through stdin (text, or text<TAB>pair), batched by 4 and padded
    /// per batch, for the Hugging Face directory itself and for hd-convert's canonical file.
    @Test("classify equals transformers: same labels, probabilities within 1e-4")
    func classifyMatchesTransformers() throws {
        let reference = try ClassifierReference.load()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let canonical = "\(tmp)/classifier.safetensors"
        let converted = try Self.run(Self.convert, [ClassifierReference.directory, "-o", canonical])
        #expect(converted.status == 0, "\(converted.stderr)")
        var worst = 0.0
        for model in [ClassifierReference.directory, canonical] {
            for (name, group) in reference.groups {
                let lines = group.examples.map { $0.text + ($0.pair.map { "\t" + $0 } ?? "") }
                let seqLen = group.maxLength.map { ["--seq-len", String($0)] } ?? []
                let r = try Self.run(Self.infer, ["classify", model, "-", "--json", "--batch", "4", "--threads", "2"] + seqLen,
                                     stdin: lines.joined(separator: "\n") + "\n")
                #expect(r.status == 0, "\(r.stderr)")
                let out = try Self.jsonLines(r.stdout)
                #expect(out.count == group.examples.count)
                for (example, got) in zip(group.examples, out) {
                    #expect(got["text"] as? String == example.text)
                    #expect(got["pair"] as? String == example.pair)
                    #expect(got["label"] as? String == example.label, "\(name): \(example.text)")
                    #expect(got["labels"] as? [String] == reference.labels)
                    let probabilities = try #require(got["probabilities"] as? [Double])
                    #expect(probabilities.count == example.probabilities.count)
                    for (p, q) in zip(probabilities, example.probabilities) { worst = max(worst, abs(p - q)) }
                }
            }
        }
        #expect(worst <= 1e-4, "largest probability difference from transformers: \(worst)")
    }

    @Test("plain output: the top K labels, most probable first; --pair as an argument")
    func plainTopK() throws {
        let reference = try ClassifierReference.load()
        let example = try #require(reference.groups["pairs"]?.examples.first)
        let r = try Self.run(Self.infer, ["classify", ClassifierReference.directory, example.text, "--pair", example.pair!, "--top", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0] == "\(example.text) [SEP] \(example.pair!)  (fp32)")
        let ranked = example.probabilities.indices.sorted { example.probabilities[$0] > example.probabilities[$1] }
        for (line, id) in zip(lines.dropFirst(), ranked) {
            #expect(line.trimmingCharacters(in: .whitespaces).hasPrefix(reference.labels[id]))
            #expect(line.hasSuffix(String(format: "p=%.4f", example.probabilities[id])))
        }
    }

    @Test("several TEXT arguments, batched: one result each, in order")
    func severalArguments() throws {
        let reference = try ClassifierReference.load()
        let examples = try #require(reference.groups["texts"]?.examples)
        let r = try Self.run(Self.infer, ["classify", ClassifierReference.directory, "--json", "--batch", "3"] + examples.map(\.text))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.jsonLines(r.stdout).map { $0["label"] as? String } == examples.map(\.label))
    }

    /// Bad input: each refused with its exit status, the message naming what is wrong, nothing on stdout.
    struct BadCase: CustomTestStringConvertible, Sendable {
        var name: String
        var args: @Sendable (String) throws -> [String]
        var status: Int32
        var says: String
        var testDescription: String { name }
    }

    static let badCases: [BadCase] = [
        BadCase(name: "a model without a classifier", args: { _ in ["classify", TestSupport.fixture("tiny-bert/model.safetensors"), "the cat"] },
                status: 65, says: "expected a sequence classifier (classifier.weight"),
        BadCase(name: "--pair on a model with one token type", args: { dir in
            let model = try variant(dir, "one-type") { c, _ in
                c.config.typeVocabSize = 1
                let d = c.config.hiddenSize
                let types = c.tensors[BertNames.tokenTypeEmbeddings]!.floats!
                c.tensors[BertNames.tokenTypeEmbeddings] = Tensor(shape: [1, d], floats: Array(types.buffer.prefix(d)))
            }
            return ["classify", model, "the cat", "--pair", "a dog"]
        }, status: 65, says: "type_vocab_size 1"),
        BadCase(name: "--pair on a model fine-tuned without pairs", args: { dir in
            ["classify", try variant(dir, "no-pairs") { _, m in m["hd.task.pairs"] = "false" }, "the cat", "--pair", "a dog"]
        }, status: 65, says: "hd.task.pairs = \"false\""),
        BadCase(name: "--seq-len over the position table", args: { _ in ["classify", ClassifierReference.directory, "the cat", "--seq-len", "65"] },
                status: 65, says: "expected at most the model's 64 positions"),
        BadCase(name: "an empty text", args: { _ in ["classify", ClassifierReference.directory, "the cat", " "] },
                status: 65, says: "text 2: the text is empty"),
        BadCase(name: "an empty pair", args: { _ in ["classify", ClassifierReference.directory, "the cat", "--pair", ""] },
                status: 65, says: "the pair's second text is empty"),
        BadCase(name: "no TEXT", args: { _ in ["classify", ClassifierReference.directory] }, status: 64, says: "expected TEXT"),
        BadCase(name: "--pair with two texts", args: { _ in ["classify", ClassifierReference.directory, "a", "b", "--pair", "c"] },
                status: 64, says: "--pair pairs with one TEXT"),
        BadCase(name: "--pair with stdin", args: { _ in ["classify", ClassifierReference.directory, "-", "--pair", "c"] },
                status: 64, says: "text<TAB>pair"),
        BadCase(name: "--top 0", args: { _ in ["classify", ClassifierReference.directory, "a", "--top", "0"] }, status: 64, says: "--top"),
        BadCase(name: "--seq-len 4", args: { _ in ["classify", ClassifierReference.directory, "a", "--seq-len", "4"] }, status: 64, says: "--seq-len"),
        BadCase(name: "--batch 0", args: { _ in ["classify", ClassifierReference.directory, "a", "--batch", "0"] }, status: 64, says: "--batch"),
    ]

    @Test(arguments: badCases)
    func refused(_ c: BadCase) throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let r = try Self.run(Self.infer, try c.args(tmp))
        #expect(r.status == c.status, "\(r.stderr)")
        #expect(r.stderr.contains(c.says), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test("hd.task.pairs survives hd-convert: the converted file refuses a pair too")
    func pairsFlagSurvivesConversion() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let model = try Self.variant(tmp, "no-pairs") { _, m in m["hd.task.pairs"] = "false" }
        let converted = "\(tmp)/converted.safetensors"
        let c = try Self.run(Self.convert, [model, "-o", converted])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(try SafeTensors.read(path: converted).metadata["hd.task.pairs"] == "false")
        let r = try Self.run(Self.infer, ["classify", converted, "the cat", "--pair", "a dog"])
        #expect(r.status == 65 && r.stderr.contains("hd.task.pairs"), "\(r.stderr)")
    }

    @Test("stdin: a bad line is reported in its place, the others run, exit 65")
    func badStdinLines() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let model = try Self.variant(tmp, "no-pairs") { _, m in m["hd.task.pairs"] = "false" }
        let stdin = "the cat sat.\n\ngood day!\tit was bad.\na\tb\tc\nthe cat\t \nthe dog ran.\n"
        let r = try Self.run(Self.infer, ["classify", model, "-", "--json", "--batch", "2"], stdin: stdin)
        #expect(r.status == 65)
        let out = try Self.jsonLines(r.stdout)
        #expect(out.count == 6)
        #expect(out.map { $0["line"] as? Int } == [nil, 2, 3, 4, 5, nil])
        #expect(out[0]["text"] as? String == "the cat sat." && out[5]["text"] as? String == "the dog ran.")
        #expect((out[2]["error"] as? String)?.contains("hd.task.pairs") == true)
        #expect((out[3]["error"] as? String)?.contains("3 TAB-separated fields") == true)
        #expect((out[4]["error"] as? String)?.contains("stdin line 5: the pair's second text is empty") == true)
        #expect(r.stderr.contains("4 of 6 lines failed"))
    }

    @Test("hd-convert: the canonical file keeps pooler, classifier and labels; inspect and --to hf-dir show them")
    func convertClassifier() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let out = "\(tmp)/c.safetensors"
        var r = try Self.run(Self.convert, [ClassifierReference.directory, "-o", out, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(summary["labels"] as? [String] == ["negative", "neutral", "positive"])
        let set = try SafeTensors.read(path: out)
        for name in [BertNames.poolerWeight, BertNames.poolerBias, BertNames.classifierWeight, BertNames.classifierBias] {
            #expect(set[name] != nil, "\(name)")
        }
        let config = try #require(try JSONSerialization.jsonObject(with: Data(set.metadata["hd.config"]!.utf8)) as? [String: Any])
        #expect(config["id2label"] as? [String: String] == ["0": "negative", "1": "neutral", "2": "positive"])
        #expect(config["problem_type"] as? String == "single_label_classification")

        r = try Self.run(Self.convert, ["inspect", out, "--json"])
        let inspect = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(inspect["labels"] as? [String] == ["negative", "neutral", "positive"])
        r = try Self.run(Self.convert, ["inspect", out])
        #expect(r.stdout.contains("classifier: 3 labels (single_label_classification): 0 negative, 1 neutral, 2 positive"))

        r = try Self.run(Self.convert, [out, "--to", "hf-dir", "-o", "\(tmp)/hf"])
        #expect(r.status == 0, "\(r.stderr)")
        let hf = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(tmp)/hf/config.json"))) as? [String: Any])
        #expect(hf["architectures"] as? [String] == ["BertForSequenceClassification"])
        #expect(hf["id2label"] as? [String: String] == ["0": "negative", "1": "neutral", "2": "positive"])
        #expect(hf["label2id"] as? [String: Int] == ["negative": 0, "neutral": 1, "positive": 2])
        #expect(hf["problem_type"] as? String == "single_label_classification")
        // And back: the directory hd-convert wrote classifies as the source does.
        let again = try Self.run(Self.infer, ["classify", "\(tmp)/hf", "the cat sat on the mat.", "--json"])
        let first = try Self.run(Self.infer, ["classify", ClassifierReference.directory, "the cat sat on the mat.", "--json"])
        #expect(again.status == 0 && again.stdout == first.stdout, "\(again.stderr)")
    }

    @Test("hd-convert refuses a classifier whose label count disagrees with its config (65, nothing written)")
    func labelCountMismatch() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let dir = "\(tmp)/model"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for name in ["model.safetensors", "vocab.txt"] {
            try FileManager.default.copyItem(atPath: "\(ClassifierReference.directory)/\(name)", toPath: "\(dir)/\(name)")
        }
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(ClassifierReference.directory)/config.json"))) as? [String: Any])
        config["id2label"] = ["0": "negative", "1": "positive"]
        config["label2id"] = ["negative": 0, "positive": 1]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: "\(dir)/config.json"))
        let r = try Self.run(Self.convert, [dir, "-o", "\(tmp)/out.safetensors"])
        #expect(r.status == 65)
        #expect(r.stderr.contains("classifier.weight has 3 rows (one per label) but the config's id2label names 2 labels"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(tmp)/out.safetensors"))
        let c = try Self.run(Self.infer, ["classify", dir, "the cat"])
        #expect(c.status == 65 && c.stdout.isEmpty)
    }
}
