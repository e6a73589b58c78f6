import HDTokenizer
import Testing

@Suite("encode and decode arguments")
struct EncodeArgumentTests {
    static let tokenizer = try! BertTokenizer(vocabulary: Vocabulary(tokens: [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", "b", ",", "é", "e",
    ]))

    struct BadCall: Sendable, CustomStringConvertible {
        let name: String
        let pair: String?
        let maxLength: Int?
        let truncation: Bool
        let padding: PaddingStrategy
        var description: String { name }
    }

    static let badCalls: [BadCall] = [
        BadCall(name: "maxLength below the two specials", pair: nil, maxLength: 1, truncation: true, padding: .none),
        BadCall(name: "maxLength below the three pair specials", pair: "b", maxLength: 2, truncation: true, padding: .none),
        BadCall(name: "negative maxLength", pair: nil, maxLength: -3, truncation: false, padding: .none),
        BadCall(name: "pad to max length without one", pair: nil, maxLength: nil, truncation: false, padding: .toMaxLength),
        BadCall(name: "pad to a multiple of zero", pair: nil, maxLength: nil, truncation: false, padding: .toMultiple(of: 0)),
        BadCall(name: "pad to a negative multiple", pair: nil, maxLength: nil, truncation: false, padding: .toMultiple(of: -8)),
    ]

    @Test("bad arguments are refused", arguments: badCalls)
    func refused(_ call: BadCall) {
        #expect {
            _ = try Self.tokenizer.encode("a b", pair: call.pair, maxLength: call.maxLength,
                                          truncation: call.truncation, padding: call.padding)
        } throws: { ($0 as? TokenizerError)?.kind == .invalidArgument }
    }

    @Test("decode refuses ids outside the vocabulary", arguments: [[13], [-1], [2, 5, Int.max]])
    func decodeOutOfRange(_ ids: [Int]) {
        #expect {
            _ = try Self.tokenizer.decode(ids)
        } throws: { error in
            guard let error = error as? TokenizerError else { return false }
            return error.kind == .idOutOfRange && error.message.contains("id \(ids.last!)")
        }
    }

    @Test("greedy longest match, [UNK] for a word with an unmatched rest")
    func wordPiece() {
        let t = Self.tokenizer
        #expect(t.tokenize("Unaffable, ÉA") == ["un", "##aff", "##able", ",", "[UNK]"])
        #expect(t.tokenize("unaffablex a") == ["[UNK]", "a"])
        #expect(t.encode(String(repeating: "a", count: 101)) == [t.specialIDs.unk])
        #expect(t.encode("") == [])
    }

    @Test("the basic tokenizer alone")
    func basic() {
        let basic = BasicTokenizer(neverSplit: ["[MASK]"])
        #expect(basic.tokenize("Héllo,[MASK]wörld!! 北京") == ["hello", ",", "[MASK]", "world", "!", "!", "北", "京"])
        let cased = BasicTokenizer(lowercase: false)
        #expect(cased.tokenize("Héllo\u{0}\u{7}\tX") == ["Héllo", "X"])
        let strip = BasicTokenizer(lowercase: false, stripAccents: true)
        #expect(strip.tokenize("Héllo") == ["Hello"])
    }
}
