import Foundation
import HDTokenizer
import Testing

@Suite("Vocabulary")
struct VocabularyTests {
    static let specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"

    struct BadVocabulary: Sendable, CustomStringConvertible {
        let name: String
        let bytes: [UInt8]
        let kind: TokenizerError.Kind
        /// Text the message must contain: the line, the token or what is missing.
        let mentions: String
        var description: String { name }
    }

    static let badVocabularies: [BadVocabulary] = [
        BadVocabulary(name: "empty file", bytes: [], kind: .empty, mentions: "found none"),
        BadVocabulary(name: "duplicate token", bytes: Array((specials + "the\nof\nthe\n").utf8),
                      kind: .duplicateToken, mentions: "line 8: token \"the\" already appears on line 6"),
        BadVocabulary(name: "duplicate special", bytes: Array((specials + "[CLS]\n").utf8),
                      kind: .duplicateToken, mentions: "line 6"),
        BadVocabulary(name: "duplicate after CRLF strip", bytes: Array((specials + "a\r\na\n").utf8),
                      kind: .duplicateToken, mentions: "line 7"),
        BadVocabulary(name: "invalid UTF-8", bytes: Array(specials.utf8) + [0x61, 0xFF, 0x0A],
                      kind: .notUTF8, mentions: "line 6"),
        BadVocabulary(name: "Latin-1 token", bytes: Array(specials.utf8) + [0x63, 0x61, 0x66, 0xE9, 0x0A],
                      kind: .notUTF8, mentions: "line 6, byte 4 (offset 34 in the file): expected UTF-8 text, found 0xE9; Latin-1"),
        BadVocabulary(name: "UTF-16 with a byte-order mark", bytes: [0xFF, 0xFE] + specials.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] },
                      kind: .notUTF8, mentions: "UTF-16 little-endian"),
        BadVocabulary(name: "UTF-16 without a byte-order mark", bytes: specials.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] },
                      kind: .notUTF8, mentions: "UTF-16 big-endian"),
        BadVocabulary(name: "Git LFS pointer", bytes: Array("version https://git-lfs.github.com/spec/v1\noid sha256:00\n".utf8),
                      kind: .gitLFSPointer, mentions: "git lfs pull"),
    ]

    @Test("bad vocabularies are refused", arguments: badVocabularies)
    func refused(_ bad: BadVocabulary) {
        #expect {
            _ = try Vocabulary(utf8: bad.bytes, source: "bad.txt")
        } throws: { error in
            guard let error = error as? TokenizerError else { return false }
            return error.kind == bad.kind && error.file == "bad.txt" && error.message.contains(bad.mentions)
        }
    }

    static let missingSpecials: [(String, [String])] = [
        ("no [MASK]", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the"]),
        ("no [CLS] or [SEP]", ["[PAD]", "[UNK]", "[MASK]"]),
        ("lower-case specials", ["[pad]", "[unk]", "[cls]", "[sep]", "[mask]"]),
        ("BOM before [PAD]", ["\u{FEFF}[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]),
    ]

    @Test("a vocabulary without BERT's special tokens cannot make a tokenizer", arguments: missingSpecials)
    func missingSpecial(_ name: String, _ tokens: [String]) throws {
        let vocabulary = try Vocabulary(tokens: tokens)
        let missing = SpecialTokenIDs.names.filter { !tokens.contains($0) }
        #expect {
            _ = try BertTokenizer(vocabulary: vocabulary)
        } throws: { error in
            guard let error = error as? TokenizerError else { return false }
            return error.kind == .missingSpecialToken && error.message.contains("missing \(missing.joined(separator: " "))")
        }
    }

    @Test("lines: CRLF, no final newline, blank lines keep their ids")
    func lineHandling() throws {
        let vocabulary = try Vocabulary(utf8: Array("[PAD]\r\n[UNK]\r\n\r\nhello\r\n##lo".utf8))
        #expect(vocabulary.tokens == ["[PAD]", "[UNK]", "", "hello", "##lo"])
        #expect(vocabulary.id(for: "hello") == 3)
        #expect(vocabulary.token(for: 4) == "##lo")
        #expect(vocabulary.token(for: 5) == nil)
        #expect(vocabulary.token(for: -1) == nil)
        #expect(try Vocabulary(utf8: Array("a\nb\n".utf8)).count == 2)
    }

    @Test("the committed bert-base-uncased vocabulary")
    func bertBase() throws {
        let vocabulary = try Vocabulary(contentsOfFile: Fixtures.vocabularyPath)
        #expect(vocabulary.count == 30522)
        #expect(try vocabulary.specialTokenIDs() == SpecialTokenIDs(pad: 0, unk: 100, cls: 101, sep: 102, mask: 103))
    }

    @Test("files: missing, a directory, over the size cap")
    func files() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hdtok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("vocab.txt")
        try Data(Self.specials.utf8).write(to: file)

        let cases: [(String, Int, TokenizerError.Kind)] = [
            (directory.appendingPathComponent("absent.txt").path, 1 << 20, .notFound),
            (directory.path, 1 << 20, .notRegularFile),
            (file.path, 10, .tooLarge),
        ]
        for (path, cap, kind) in cases {
            #expect {
                _ = try Vocabulary(contentsOfFile: path, maxBytes: cap)
            } throws: { error in
                (error as? TokenizerError)?.kind == kind && (error as? TokenizerError)?.file == path
            }
        }
        #expect(try Vocabulary(contentsOfFile: file.path).count == 5)
    }
}
