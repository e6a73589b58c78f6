import Foundation
import HDTokenizer
import Testing

@Suite("Tokenizer matches Hugging Face")
struct ReferenceTests {
    @Test("every sampled corpus line gives HF's ids")
    func corpusLines() throws {
        let lines = try Fixtures.jsonLines("corpus_uncased.jsonl", as: CorpusLine.self)
        #expect(lines.count >= 5000)
        let tokenizer = Fixtures.uncased
        var mismatches: [String] = []
        for line in lines {
            let found = try tokenizer.encode(line.text, pair: nil).ids
            if found != line.ids {
                let show = { (ids: [Int]) in ids.map { tokenizer.vocabulary.token(for: $0) ?? "?\($0)" } }
                mismatches.append("\(line.source) \(line.text.debugDescription)\n  expected \(show(line.ids))\n  found    \(show(found))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(lines.count) lines differ:\n\(mismatches.prefix(10).joined(separator: "\n"))")
    }

    @Test("hard cases", arguments: try Fixtures.jsonLines("hard_cases.jsonl", as: HardCase.self))
    func hardCase(_ hard: HardCase) throws {
        let tokenizer = Fixtures.tokenizer(lowercase: hard.lowercase)
        let found = try tokenizer.encode(hard.text, pair: nil).ids
        #expect(found.map { tokenizer.vocabulary.tokens[$0] } == hard.tokens, "text \(hard.text.debugDescription)")
        #expect(found == hard.ids)
        #expect(tokenizer.encode(hard.text) == Array(hard.ids.dropFirst().dropLast()))
        #expect(try tokenizer.decode(Array(hard.ids.dropFirst().dropLast())) == hard.decoded)
    }

    @Test("pairs, truncation and padding", arguments: try Fixtures.jsonLines("pairs.jsonl", as: PairCase.self))
    func pair(_ pair: PairCase) throws {
        let encoding = try Fixtures.uncased.encode(pair.a, pair: pair.b, maxLength: pair.max_length,
                                                   truncation: pair.truncation, padding: pair.strategy)
        #expect(encoding.ids == pair.ids)
        #expect(encoding.tokenTypeIds == pair.token_type_ids)
        #expect(encoding.attentionMask == pair.attention_mask)
    }

    @Test("decoding then encoding again gives the same ids")
    func roundTrip() throws {
        let lines = try Fixtures.jsonLines("corpus_uncased.jsonl", as: CorpusLine.self)
        let tokenizer = Fixtures.uncased
        let unk = tokenizer.specialIDs.unk
        var checked = 0
        for line in lines where !line.ids.contains(unk) {
            let text = try tokenizer.decode(line.ids, skipSpecialTokens: true)
            #expect(tokenizer.encode(text) == Array(line.ids.dropFirst().dropLast()), "\(line.source)")
            checked += 1
        }
        #expect(checked > 4000)
    }

    @Test("decode keeps or skips special tokens")
    func decodeSpecials() throws {
        let tokenizer = Fixtures.uncased
        let ids = try tokenizer.encode("Unaffable [MASK] tokens", pair: "here").ids
        #expect(try tokenizer.decode(ids) == "[CLS] unaffable [MASK] tokens [SEP] here [SEP]")
        #expect(try tokenizer.decode(ids, skipSpecialTokens: true) == "unaffable tokens here")
        #expect(tokenizer.tokenize("unaffable") == ["una", "##ffa", "##ble"])
    }
}
