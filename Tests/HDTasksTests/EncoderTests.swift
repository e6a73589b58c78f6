import HDModel
import HDTasks
import HDTokenizer
import Testing

@Suite("task encoding")
struct EncoderTests {
    struct Case: Decodable, Sendable, CustomStringConvertible {
        let a: String
        let b: String?
        let max_length: Int
        let ids: [Int]
        let token_type_ids: [Int]
        var description: String { "\(a.prefix(24))|\(b?.prefix(24) ?? "nil") @\(max_length)" }
    }

    struct Reference: Decodable, Sendable {
        let cases: [Case]
    }

    static let cases = (try? Fixtures.json("tasks/pair_encoding.json", as: Reference.self).cases) ?? []

    @Test("ids and token types equal transformers' BertTokenizer (longest_first)", arguments: cases)
    func matchesTransformers(_ c: Case) throws {
        let encoder = try TaskEncoder(tokenizer: Fixtures.tokenizer, maxLength: c.max_length)
        let encoding = try encoder.encode(c.a, pair: c.b)
        #expect(encoding.ids == c.ids)
        #expect(encoding.tokenTypeIds == c.token_type_ids)
        #expect(encoding.ids.count <= c.max_length)
    }

    @Test("the reference has single texts, pairs and truncated pairs")
    func coverage() {
        #expect(Self.cases.count == 44)
        #expect(Self.cases.contains { $0.b == nil && $0.ids.count == $0.max_length })
        #expect(Self.cases.contains { $0.b != nil && $0.ids.count == $0.max_length })
    }

    @Test("a batch pads to its longest sequence with [PAD], mask 0 and type 0 on padding")
    func batch() throws {
        let encoder = try TaskEncoder(tokenizer: Fixtures.tokenizer, maxLength: 32)
        let a = try encoder.encode(Example(text: "a cat", pair: "a dog sleeps", line: 2))
        let b = try encoder.encode(Example(text: "hello", line: 3))
        let batch = try encoder.batch([a, b])
        let L = a.ids.count
        #expect(batch.batchSize == 2 && batch.sequenceLength == L)
        let pad = Fixtures.tokenizer.specialIDs.pad
        #expect(batch.ids.map(Int.init) == a.ids + b.ids + [Int](repeating: pad, count: L - b.ids.count))
        #expect(batch.tokenTypes.map(Int.init) == a.tokenTypeIds + [Int](repeating: 0, count: L))
        #expect(batch.attentionMask.map(Int.init) == [Int](repeating: 1, count: L + b.ids.count) + [Int](repeating: 0, count: L - b.ids.count))
        #expect(throws: TaskError.self) { try encoder.batch([]) }
        #expect(throws: TaskError.self) { try TaskEncoder(tokenizer: Fixtures.tokenizer, maxLength: 4) }
    }
}
