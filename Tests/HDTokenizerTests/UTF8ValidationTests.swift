import HDTokenizer
import Testing

@Suite("UTF-8 validation")
struct UTF8ValidationTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: [UInt8]
        /// Offset and bytes of the first invalid sequence, nil when valid.
        let invalid: (Int, [UInt8])?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "ASCII longer than a word", bytes: Array("the quick brown fox jumps".utf8), invalid: nil),
        Case(name: "two, three and four-byte characters", bytes: Array("café – 😀 ok".utf8), invalid: nil),
        Case(name: "empty", bytes: [], invalid: nil),
        Case(name: "Latin-1 é after 8 ASCII bytes", bytes: Array("abcdefghcaf".utf8) + [0xE9], invalid: (11, [0xE9])),
        Case(name: "Latin-1 é then a space", bytes: [0x63, 0xE9, 0x20], invalid: (1, [0xE9])),
        Case(name: "lone continuation byte", bytes: [0x61, 0x80], invalid: (1, [0x80])),
        Case(name: "overlong two-byte NUL", bytes: [0xC0, 0x80], invalid: (0, [0xC0])),
        Case(name: "overlong three-byte", bytes: [0xE0, 0x80, 0x80], invalid: (0, [0xE0])),
        Case(name: "UTF-16 surrogate", bytes: [0xED, 0xA0, 0x80], invalid: (0, [0xED])),
        Case(name: "above U+10FFFF", bytes: [0xF4, 0x90, 0x80, 0x80], invalid: (0, [0xF4])),
        Case(name: "F5 lead byte", bytes: [0xF5, 0x80, 0x80, 0x80], invalid: (0, [0xF5])),
        Case(name: "truncated at the end", bytes: Array("ok ".utf8) + [0xE2, 0x82], invalid: (3, [0xE2, 0x82])),
        Case(name: "bad third byte", bytes: [0xE2, 0x82, 0x41], invalid: (0, [0xE2, 0x82])),
    ]

    @Test(arguments: cases)
    func findsTheFirstInvalidSequence(_ c: Case) {
        let failure = UTF8Validation.firstInvalid(c.bytes)
        #expect(failure?.offset == c.invalid?.0 && failure?.found == c.invalid?.1)
        #expect((failure == nil) == (String(validating: c.bytes, as: UTF8.self) != nil))
    }

    /// Random byte strings (mostly ASCII with some high bytes, to hit every branch) agree with the
    /// standard library's validator on valid/invalid, and the prefix before the offset is valid.
    @Test func agreesWithTheStandardLibrary() {
        var state: UInt64 = 0x1234_5678_9ABC_DEF0
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        for _ in 0..<20_000 {
            let n = Int(next() % 24)
            let bytes = (0..<n).map { _ -> UInt8 in next() % 3 == 0 ? UInt8(0x80 + next() % 128) : UInt8(next() % 128) }
            let failure = UTF8Validation.firstInvalid(bytes)
            #expect((failure == nil) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
            if let failure {
                #expect(String(validating: bytes[..<failure.offset], as: UTF8.self) != nil, "\(bytes)")
            }
        }
    }

    @Test(arguments: [
        ([0xFF, 0xFE, 0x61, 0x00], "little-endian (byte-order mark"),
        ([0xFE, 0xFF, 0x00, 0x61], "big-endian (byte-order mark"),
        (Array("[PAD]\n[UNK]\n".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }), "little-endian (no byte-order mark"),
        (Array("[PAD]\n[UNK]\n".utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }), "big-endian (no byte-order mark"),
    ] as [([UInt8], String)])
    func namesUTF16(_ bytes: [UInt8], _ says: String) {
        #expect(UTF8Validation.utf16(bytes)?.contains(says) == true)
    }

    @Test(arguments: [Array("plain text\n".utf8), Array("a\u{0}b".utf8), [0xEF, 0xBB, 0xBF, 0x61], []] as [[UInt8]])
    func utf8IsNotUTF16(_ bytes: [UInt8]) {
        #expect(UTF8Validation.utf16(bytes) == nil)
    }
}
