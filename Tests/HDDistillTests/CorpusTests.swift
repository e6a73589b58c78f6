import Foundation
import HDDistill
import HDTestSupport
import HDTokenizer
import HDTensor
import Testing

@Suite struct CorpusTests {
    static let tokenizer: BertTokenizer = {
        // The committed bert-base vocabulary; a failure here is a broken checkout, not a test result.
        try! BertTokenizer(vocabularyFile: TestSupport.fixture("vocab/bert-base-uncased.txt"))
    }()

    static func write(_ text: String, in dir: String, name: String = "c.txt") throws -> String {
        let path = dir + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func packsTheFixtureCorpus() throws {
        let corpus = try Corpus(files: [TestSupport.fixture("corpus/tiny.txt")], tokenizer: Self.tokenizer,
                                options: CorpusOptions(sequenceLength: 32, heldOutEvery: 5))
        #expect(corpus.modes == [.blankLine])
        #expect(corpus.train.isNarrow)
        #expect(corpus.heldOutParagraphs > 0 && corpus.trainParagraphs > corpus.heldOutParagraphs)
        let n = corpus.sequenceCount(.train)
        #expect(n == corpus.train.count / 30)
        var seq = [Int32](repeating: -1, count: 32)
        seq.withUnsafeMutableBufferPointer { corpus.sequence(n - 1, of: .train, into: $0) }
        #expect(seq.first == Int32(Self.tokenizer.specialIDs.cls) && seq.last == Int32(Self.tokenizer.specialIDs.sep))
        #expect((0..<30).allSatisfy { Int(seq[1 + $0]) == corpus.train[(n - 1) * 30 + $0] })
    }

    /// The stream is the paragraphs' word pieces, each followed by [SEP]; held-out paragraphs are
    /// chosen by the hash of their index and removed from the training stream.
    @Test func streamIsParagraphsJoinedBySeparators() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let paragraphs = (0..<40).map { "Paragraph number \($0) says hello to the world." }
        let path = try Self.write(paragraphs.joined(separator: "\n"), in: dir)
        let corpus = try Corpus(files: [path], tokenizer: Self.tokenizer,
                                options: CorpusOptions(sequenceLength: 16, heldOutEvery: 4))
        #expect(corpus.modes == [.line])
        var train: [Int] = [], held: [Int] = []
        for (i, p) in paragraphs.enumerated() {
            let ids = Self.tokenizer.encode(p) + [Self.tokenizer.specialIDs.sep]
            if SplitMix64.mix(UInt64(i)) % 4 == 0 { held += ids } else { train += ids }
        }
        #expect((0..<corpus.train.count).map { corpus.train[$0] } == train)
        #expect((0..<corpus.heldOut.count).map { corpus.heldOut[$0] } == held)
        #expect(corpus.heldOutParagraphs + corpus.trainParagraphs == 40)
    }

    @Test func blankLineBlocksJoinTheirLines() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let text = "first block line one\nline two of it\n\n  \r\nsecond block\n\n"
        let path = try Self.write(String(repeating: text, count: 8), in: dir)
        let corpus = try Corpus(files: [path], tokenizer: Self.tokenizer,
                                options: CorpusOptions(sequenceLength: 8, heldOutEvery: 0))
        #expect(corpus.modes == [.blankLine])
        #expect(corpus.trainParagraphs == 16)
        let forced = try Corpus(files: [path], tokenizer: Self.tokenizer,
                                options: CorpusOptions(sequenceLength: 8, heldOutEvery: 0, paragraphMode: .line))
        #expect(forced.trainParagraphs == 24)
    }

    enum Bad: String, CaseIterable, CustomTestStringConvertible {
        case missing, directory, empty, blanksOnly, binary, tooShort, noFiles
        var testDescription: String { rawValue }
    }

    @Test(arguments: Bad.allCases)
    func refusesBadCorpora(_ bad: Bad) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let files: [String]
        let expected: DistillError.Kind
        switch bad {
        case .missing: (files, expected) = ([dir + "/nope.txt"], .notFound)
        case .directory: (files, expected) = ([dir], .notRegularFile)
        case .empty: (files, expected) = ([try Self.write("", in: dir)], .emptyCorpus)
        case .blanksOnly: (files, expected) = ([try Self.write(" \n\n\t\n", in: dir)], .emptyCorpus)
        case .binary: (files, expected) = ([try Self.write("some text\u{0}more", in: dir)], .binaryText)
        case .tooShort: (files, expected) = ([try Self.write("just a few words\n", in: dir)], .tooShort)
        case .noFiles: (files, expected) = ([], .emptyCorpus)
        }
        let error = #expect(throws: DistillError.self) {
            try Corpus(files: files, tokenizer: Self.tokenizer, options: CorpusOptions(sequenceLength: 64, heldOutEvery: 0))
        }
        #expect(error?.kind == expected)
        if !files.isEmpty { #expect(error?.file.contains(files[0]) == true) }
    }

    @Test func dataOrderIsAPermutationPerEpochAndResumes() throws {
        var order = try DataOrder(seed: 7, sequenceCount: 10)
        let first = (0..<10).map { _ in order.next() }
        #expect(first.sorted() == Array(0..<10))
        let mid = order
        let second = (0..<10).map { _ in order.next() }
        #expect(second.sorted() == Array(0..<10) && second != first)
        #expect(order.epoch == 1 && order.position == 10)
        var resumed = try DataOrder(seed: 7, sequenceCount: 10, epoch: mid.epoch, position: mid.position)
        #expect((0..<10).map { _ in resumed.next() } == second)
        #expect(throws: DistillError.self) { try DataOrder(seed: 7, sequenceCount: 10, epoch: 0, position: 11) }
    }
}
