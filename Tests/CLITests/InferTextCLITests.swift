import Foundation
import HDModel
import HDTestSupport
import Testing

/// hd-infer's text commands as a user runs them: the built binary on real checkpoints, checked
/// against the library's reference forward (itself checked against transformers in HDModelTests).
@Suite("hd-infer tokenize / fill-mask / embed")
struct InferTextCLITests {
    static let infer = TestSupport.tool("hd-infer")

    static func run(_ args: [String], stdin: String? = nil) throws -> TestSupport.ProcessResult {
        try TestSupport.run(infer, args, stdin: stdin, allowFailure: true)
    }

    static func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    @Test("tokenize - gives Hugging Face's ids for real lines, one JSON object per line")
    func tokenizeMatchesHF() throws {
        struct Line: Decodable { let text: String; let ids: [Int] }
        let url = URL(fileURLWithPath: TestSupport.fixture("tokenizer/corpus_uncased.jsonl"))
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").prefix(300)
            .map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
            .filter { !$0.text.allSatisfy(\.isWhitespace) && !$0.text.contains("\n") && !$0.text.contains("\r") }
        let model = try TestSupport.realModel("splade-tiny")
        let r = try Self.run(["tokenize", model, "-", "--json"], stdin: lines.map(\.text).joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let out = try Self.jsonLines(r.stdout)
        #expect(out.count == lines.count)
        for (line, got) in zip(lines, out) {
            #expect(got["ids"] as? [Int] == line.ids, "\(line.text)")
        }
    }

    @Test("fill-mask: top-k sorted, probabilities from a softmax, top-1 equals the reference forward's argmax")
    func fillMask() throws {
        let dir = try TestSupport.realModel("splade-tiny")
        let text = "the [MASK] sat on the mat and the dog ate the [MASK]."
        let r = try Self.run(["fill-mask", dir, text, "--json", "--top-k", "4"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try Self.jsonLines(r.stdout).first)
        let perMask = try #require(object["predictions"] as? [[[String: Any]]])
        #expect(perMask.count == 2)

        let checkpoint = try Checkpoint.load(dir)
        let model = try BertModel(checkpoint: checkpoint)
        let ids = try #require(try Self.jsonLines(Self.run(["tokenize", dir, text, "--json"]).stdout).first?["ids"] as? [Int])
        let output = try model.forward(TokenBatch(ids: [ids]))
        let maskID = checkpoint.vocab!.firstIndex(of: "[MASK]")!
        let positions = ids.indices.filter { ids[$0] == maskID }.map { TokenPosition(batch: 0, position: $0) }
        let logits = try model.mlmLogits(output, positions: .selected(positions))
        let V = checkpoint.config.vocabSize
        for (m, predictions) in perMask.enumerated() {
            #expect(predictions.count == 4)
            let probs = predictions.compactMap { $0["prob"] as? Double }
            #expect(probs == probs.sorted(by: >) && probs.allSatisfy { $0 > 0 && $0 <= 1 })
            let row = logits[(m * V)..<((m + 1) * V)]
            let argmax = row.indices.max { row[$0] < row[$1] }! - m * V
            #expect(predictions[0]["id"] as? Int == argmax)
            #expect(predictions[0]["token"] as? String == checkpoint.vocab![argmax])
            let logit = try #require(predictions[0]["logit"] as? Double)
            #expect(abs(Float(logit) - row.max()!) <= 1e-4 * max(1, abs(row.max()!)))
        }
    }

    @Test("embed --normalize equals the reference forward's normalised mean pooling (MiniLM)")
    func embedMatchesReference() throws {
        let dir = try TestSupport.realModel("minilm")
        let texts = ["A man is eating food.", "The quick brown fox jumps over the lazy dog.", "Pruning keeps predictions close to the teacher's."]
        let r = try Self.run(["embed", dir, "-", "--normalize", "--json"], stdin: texts.joined(separator: "\n"))
        #expect(r.status == 0, "\(r.stderr)")
        let out = try Self.jsonLines(r.stdout)
        #expect(out.count == texts.count)
        let model = try BertModel(checkpoint: try Checkpoint.load(dir))
        for (text, got) in zip(texts, out) {
            let ids = try #require(try Self.jsonLines(Self.run(["tokenize", dir, text, "--json"]).stdout).first?["ids"] as? [Int])
            let want = try model.forward(TokenBatch(ids: [ids])).meanPooled(normalized: true)
            let embedding = try #require(got["embedding"] as? [Double]).map(Float.init)
            #expect(embedding.count == 384)
            let cosine = zip(embedding, want).map(*).reduce(0, +)
            #expect(cosine >= 0.99999, "\(text): cosine \(cosine)")
        }
    }

    struct BadText: CustomTestStringConvertible, Sendable {
        let name: String
        let args: @Sendable (_ splade: String, _ minilm: String) -> [String]
        let stdin: String?
        let says: String
        var testDescription: String { name }
    }

    static let badTexts: [BadText] = [
        BadText(name: "empty text", args: { s, _ in ["embed", s, ""] }, stdin: nil, says: "empty"),
        BadText(name: "whitespace-only stdin line", args: { s, _ in ["tokenize", s, "-"] }, stdin: "ok\n   \n", says: "stdin line 2 is empty"),
        BadText(name: "fill-mask without [MASK]", args: { s, _ in ["fill-mask", s, "no mask here"] }, stdin: nil, says: "no [MASK]"),
        BadText(name: "fill-mask on a model without MLM head", args: { _, m in ["fill-mask", m, "a [MASK]"] }, stdin: nil, says: "no MLM head"),
        BadText(name: "longer than the position table", args: { s, _ in ["embed", s, String(repeating: "word ", count: 600)] }, stdin: nil, says: "--truncate"),
        BadText(name: "missing model", args: { _, _ in ["embed", "/nonexistent.safetensors", "x"] }, stdin: nil, says: "no such file"),
    ]

    @Test(arguments: badTexts)
    func refuses(_ bad: BadText) throws {
        let r = try Self.run(bad.args(try TestSupport.realModel("splade-tiny"), try TestSupport.realModel("minilm")), stdin: bad.stdin)
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains(bad.says), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
    }

    @Test("--truncate cuts an over-long text to the position table")
    func truncate() throws {
        let dir = try TestSupport.realModel("splade-tiny")
        let r = try Self.run(["tokenize", dir, String(repeating: "word ", count: 600), "--truncate", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try Self.jsonLines(r.stdout).first?["ids"] as? [Int])?.count == 512)
    }
}
