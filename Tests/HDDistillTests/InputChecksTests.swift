import Foundation
import HDDistill
import HDTestSupport
import HDTokenizer
import Testing

/// A corpus that is not UTF-8 is refused naming the line and byte (it used to train on U+FFFD);
/// the thread count is recorded in the training state and a resume with another is refused.
@Suite struct InputChecksTests {
    struct BadCorpus: CustomTestStringConvertible, Sendable {
        let name: String
        let bytes: [UInt8]
        let says: String
        var testDescription: String { name }
    }

    static let badCorpora: [BadCorpus] = [
        BadCorpus(name: "Latin-1 on line 3", bytes: Array("First line here.\nSecond one.\nUn caf".utf8) + [0xE9, 0x0A],
                  says: "corpus line 3, byte 7 (offset 35 in the file): expected UTF-8 text, found 0xE9; Latin-1"),
        BadCorpus(name: "Latin-1 on the last line, no newline", bytes: Array("ok\n".utf8) + [0x61, 0xFC],
                  says: "corpus line 2, byte 2 (offset 4 in the file)"),
        BadCorpus(name: "random bytes", bytes: [0x41, 0x42, 0x0A, 0x9F, 0x12, 0xC3, 0x28],
                  says: "corpus line 2, byte 1 (offset 3 in the file): expected UTF-8 text, found 0x9F"),
        BadCorpus(name: "UTF-16 with a byte-order mark", bytes: [0xFF, 0xFE] + "Some text.\n".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] },
                  says: "corpus: expected UTF-8 text, found UTF-16 little-endian (byte-order mark FF FE)"),
        BadCorpus(name: "UTF-16 without a byte-order mark", bytes: "Some text.\nMore.\n".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] },
                  says: "UTF-16 little-endian (no byte-order mark"),
        BadCorpus(name: "a NUL byte", bytes: Array("some text\nmore\u{0}x".utf8), says: "corpus line 2, byte 5 (offset 14 in the file): expected UTF-8 text, found a NUL byte"),
    ]

    @Test(arguments: badCorpora)
    func corpusThatIsNotUTF8IsRefused(_ bad: BadCorpus) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let path = dir + "/c.txt"
        try Data(bad.bytes).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try Corpus(files: [path], tokenizer: CorpusTests.tokenizer, options: CorpusOptions(sequenceLength: 4, heldOutEvery: 0))
        } throws: { error in
            guard let error = error as? DistillError else { return false }
            return error.kind == .binaryText && error.file == path && error.message.contains(bad.says)
        }
    }

    @Test func threadsRoundTripThroughMetadata() throws {
        var state = TrainingState(step: 3, rng: [1, 2, 3, 4], dataSeed: 9, threads: 2)
        let back = try TrainingState(metadata: state.metadata, file: "s.ckpt")
        #expect(back == state && back.threads == 2 && state.metadata["hd.threads"] == "2")
        state.threads = nil
        #expect(state.metadata["hd.threads"] == nil)
        #expect(try TrainingState(metadata: state.metadata, file: "s.ckpt").threads == nil)
    }

    @Test(arguments: ["0", "-1", "two", "01", " 2", ""])
    func badThreadsMetadataIsRefused(_ text: String) throws {
        var m = TrainingState(step: 3, rng: [1, 2, 3, 4], dataSeed: 9).metadata
        m["hd.threads"] = text
        #expect {
            _ = try TrainingState(metadata: m, file: "s.ckpt")
        } throws: { error in
            (error as? DistillError)?.message.contains("hd.threads: expected a positive decimal integer") == true
        }
    }

    @Test func resumeChecksTheThreadCount() throws {
        let state = TrainingState(step: 3, rng: [1, 2, 3, 4], dataSeed: 9, threads: 4)
        try state.checkResume(threads: 4, file: "s.ckpt")
        try TrainingState(step: 3, rng: [1, 2, 3, 4], dataSeed: 9).checkResume(threads: 1, file: "s.ckpt")
        #expect {
            try state.checkResume(threads: 1, file: "s.ckpt")
        } throws: { error in
            guard let error = error as? DistillError else { return false }
            return error.file == "s.ckpt" && error.message.contains("trained with 4 threads, this run uses 1") && error.message.contains("--threads 4")
        }
    }
}
