import Foundation
import HDTestSupport
import Testing

/// hd-distill on a corpus that is not UTF-8: it used to train on it (exit 0), the bad bytes turned
/// into [UNK]. Now exit 65 naming the file, line and byte (or UTF-16), and no checkpoint.
@Suite("hd-distill corpus encoding")
struct DistillCorpusCLITests {
    struct Bad: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: @Sendable (_ text: [UInt8]) -> [UInt8]
        let says: [String]
        var testDescription: String { name }
    }

    static let bad: [Bad] = [
        Bad(name: "Latin-1 (an é on line 3)", bytes: { text in
            var lines = text.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            lines[2] = Array("Caf".utf8) + [0xE9] + lines[2]
            return Array(lines.joined(separator: [0x0A]))
        }, says: ["corpus.txt: corpus line 3, byte 4", "found 0xE9", "Latin-1"]),
        Bad(name: "UTF-16 with a byte-order mark", bytes: { text in
            [0xFF, 0xFE] + String(decoding: text, as: UTF8.self).utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        }, says: ["corpus.txt: corpus: expected UTF-8 text, found UTF-16 little-endian"]),
        Bad(name: "random bytes", bytes: { _ in
            var state: UInt64 = 42
            return (0..<4096).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56) | 0x01  // no NUL, so the UTF-8 check is what refuses it
            }
        }, says: ["corpus.txt: corpus line", "expected UTF-8 text"]),
    ]

    @Test(arguments: bad)
    func refusesACorpusThatIsNotUTF8(_ bad: Bad) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let text = try #require(FileManager.default.contents(atPath: DistillCLITests.corpus))
        let corpus = dir + "/corpus.txt", out = dir + "/out.ckpt"
        try Data(bad.bytes(Array(text))).write(to: URL(fileURLWithPath: corpus))
        var args = DistillCLITests.flags(teacher, out: out, steps: 2)
        args[args.firstIndex(of: "--corpus")! + 1] = corpus
        let r = try DistillCLITests.run(args)
        #expect(r.status == 65, "\(r.stderr)")
        for part in bad.says { #expect(r.stderr.contains(part), "\(part) in: \(r.stderr)") }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
