import Foundation
import HDDistill
import HDFormats
import HDTestSupport
import HDTokenizer
import Testing

/// The token file (`hd-distill --tokenize-only`): written from a corpus and read back, it packs the
/// same sequences as the text; every defect of a file is refused naming the tensor or key.
@Suite struct TokenFileTests {
    static let tokenizer = CorpusTests.tokenizer
    static var vocab: [String] { tokenizer.vocabulary.tokens }

    static func corpus(sequenceLength: Int = 32, heldOutEvery: Int = 5) throws -> Corpus {
        try Corpus(files: [TestSupport.fixture("corpus/tiny.txt")], tokenizer: tokenizer,
                   options: CorpusOptions(sequenceLength: sequenceLength, heldOutEvery: heldOutEvery))
    }

    static func sequences(_ c: Corpus, _ split: CorpusSplit) -> [[Int32]] {
        (0..<c.sequenceCount(split)).map { i in
            var s = [Int32](repeating: -1, count: c.sequenceLength)
            s.withUnsafeMutableBufferPointer { c.sequence(i, of: split, into: $0) }
            return s
        }
    }

    @Test func roundTripPacksTheSameSequences() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let text = try Self.corpus()
        let path = dir + "/corpus.tokens"
        try TokenFile.write(text, vocabulary: Self.vocab, lowercase: true, heldOutEvery: 5, to: path)
        // Streams, not sequences: the same file packs at another length too.
        for length in [32, 17] {
            let fromText = length == 32 ? text : try Self.corpus(sequenceLength: length)
            let (back, header) = try TokenFile.read(path: path, tokenizer: Self.tokenizer, sequenceLength: length)
            #expect(header.heldOutEvery == 5 && header.modes == [.blankLine] && header.lowercase)
            #expect(back.trainParagraphs == fromText.trainParagraphs && back.heldOutParagraphs == fromText.heldOutParagraphs)
            #expect(back.trainParagraphOffsets == fromText.trainParagraphOffsets)
            #expect(back.heldOutParagraphOffsets == fromText.heldOutParagraphOffsets)
            #expect(back.sequenceCount(.train) == fromText.sequenceCount(.train) && back.sequenceCount(.heldOut) > 0)
            #expect(Self.sequences(back, .train) == Self.sequences(fromText, .train))
            #expect(Self.sequences(back, .heldOut) == Self.sequences(fromText, .heldOut))
        }
        // The offsets say where paragraphs end: each closes with [SEP].
        let sep = Self.tokenizer.specialIDs.sep
        #expect(text.trainParagraphOffsets.dropFirst().allSatisfy { text.train[$0 - 1] == sep })
        #expect(text.trainParagraphOffsets.last == text.train.count)
    }

    /// numpy reads the file as safetensors documents it: I32 ids, I64 offsets (checked byte for byte
    /// here against the header, so the layout in docs/FORMATS.md is what is written).
    @Test func layoutIsPlainSafetensors() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let text = try Self.corpus()
        let path = dir + "/corpus.tokens"
        try TokenFile.write(text, vocabulary: Self.vocab, lowercase: true, heldOutEvery: 5, to: path)
        let set = try SafeTensors.read(path: path)
        #expect(set.tensors[TokenFile.trainIDs]?.storedAs == .int32)
        #expect(set.tensors[TokenFile.trainOffsets]?.storedAs == .int64)
        #expect(set.tensors[TokenFile.trainIDs]?.shape == [text.train.count])
        #expect(set.metadata[TokenFile.Key.kind] == "tokens")
        #expect(set.metadata[TokenFile.Key.vocabSHA256] == TokenFile.vocabularySHA256(Self.vocab))
        #expect(TokenFile.looksLikeTokenFile(path) && !TokenFile.looksLikeTokenFile(TestSupport.fixture("corpus/tiny.txt")))
    }

    enum Bad: String, CaseIterable, CustomTestStringConvertible {
        case notTokens, wrongFormat, extraKey, badVocabSize, otherVocabulary, otherCasing, badSpecial, otherSpecial
        case badSources, missingIDs, extraTensor, idsAsF32, idsTwoDimensional, idOutOfRange, negativeID
        case offsetsNotFromZero, offsetsShort, offsetsNotIncreasing, paragraphWithoutSep, heldOutWithoutSplit, tooShortForLength
        var testDescription: String { rawValue }
    }

    /// Each bad file is built from a good one by one change, so the error is about that change.
    @Test(arguments: Bad.allCases)
    func refusesBadTokenFiles(_ bad: Bad) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let good = dir + "/good.tokens", path = dir + "/bad.tokens"
        try TokenFile.write(try Self.corpus(), vocabulary: Self.vocab, lowercase: true, heldOutEvery: 5, to: good)
        var set = try SafeTensors.read(path: good)
        set = TensorSet(tensors: set.tensors.mapValues { t in
            guard case .int64(let v) = t.values else { return t }
            return Tensor(shape: t.shape, values: .int64(Array(v)), storedAs: t.storedAs)
        }, metadata: set.metadata)
        let ids = { (name: String) -> [Int64] in
            if case .int64(let v)? = set.tensors[name]?.values { return v }
            return []
        }
        func put(_ name: String, _ values: [Int64], as type: ElementType = .int32, shape: [Int]? = nil) {
            set.tensors[name] = Tensor(shape: shape ?? [values.count], values: .int64(values), storedAs: type)
        }
        var length = 32
        let expected: (DistillError.Kind, String)
        switch bad {
        case .notTokens: set.metadata[TokenFile.Key.kind] = "student"; expected = (.badMetadata, TokenFile.Key.kind)
        case .wrongFormat: set.metadata[TokenFile.Key.format] = "2"; expected = (.badMetadata, TokenFile.Key.format)
        case .extraKey: set.metadata["hd.tokens.extra"] = "1"; expected = (.badMetadata, "hd.tokens.extra")
        case .badVocabSize: set.metadata[TokenFile.Key.vocabSize] = "-3"; expected = (.badMetadata, TokenFile.Key.vocabSize)
        case .otherVocabulary:
            set.metadata[TokenFile.Key.vocabSHA256] = String(repeating: "0", count: 64); expected = (.badMetadata, TokenFile.Key.vocabSHA256)
        case .otherCasing: set.metadata[TokenFile.Key.lowercase] = "false"; expected = (.badMetadata, TokenFile.Key.lowercase)
        case .badSpecial: set.metadata[TokenFile.Key.special] = "{\"cls\":1}"; expected = (.badMetadata, TokenFile.Key.special)
        case .otherSpecial:
            set.metadata[TokenFile.Key.special] = "{\"cls\":101,\"mask\":103,\"pad\":0,\"sep\":101,\"unk\":100}"; expected = (.badMetadata, TokenFile.Key.special)
        case .badSources: set.metadata[TokenFile.Key.sources] = "[{\"file\":\"a\"}]"; expected = (.badMetadata, TokenFile.Key.sources)
        case .missingIDs: set.tensors[TokenFile.trainIDs] = nil; expected = (.missingTensor, TokenFile.trainIDs)
        case .extraTensor: put("train.labels", [1]); expected = (.unexpectedTensor, "train.labels")
        case .idsAsF32:
            set.tensors[TokenFile.heldOutIDs] = Tensor(shape: [2], floats: [1, 2]); expected = (.shapeMismatch, TokenFile.heldOutIDs)
        case .idsTwoDimensional:
            let v = ids(TokenFile.trainIDs); put(TokenFile.trainIDs, v, shape: [1, v.count]); expected = (.shapeMismatch, TokenFile.trainIDs)
        case .idOutOfRange:
            var v = ids(TokenFile.trainIDs); v[3] = Int64(Self.vocab.count); put(TokenFile.trainIDs, v); expected = (.badMetadata, TokenFile.trainIDs)
        case .negativeID:
            var v = ids(TokenFile.heldOutIDs); v[0] = -1; put(TokenFile.heldOutIDs, v); expected = (.badMetadata, TokenFile.heldOutIDs)
        case .offsetsNotFromZero:
            var o = ids(TokenFile.trainOffsets); o[0] = 1; put(TokenFile.trainOffsets, o, as: .int64); expected = (.badMetadata, TokenFile.trainOffsets)
        case .offsetsShort:
            let o = ids(TokenFile.trainOffsets); put(TokenFile.trainOffsets, Array(o.dropLast()), as: .int64); expected = (.badMetadata, TokenFile.trainOffsets)
        case .offsetsNotIncreasing:
            var o = ids(TokenFile.trainOffsets); o[2] = o[1]; put(TokenFile.trainOffsets, o, as: .int64); expected = (.badMetadata, TokenFile.trainOffsets)
        case .paragraphWithoutSep:
            var v = ids(TokenFile.trainIDs); let end = Int(ids(TokenFile.trainOffsets)[1]); v[end - 1] = 1000
            put(TokenFile.trainIDs, v); expected = (.badMetadata, TokenFile.trainIDs)
        case .heldOutWithoutSplit: set.metadata[TokenFile.Key.heldOutEvery] = "0"; expected = (.badMetadata, TokenFile.Key.heldOutEvery)
        case .tooShortForLength: length = ids(TokenFile.trainIDs).count + 3; expected = (.tooShort, "")
        }
        try SafeTensors.write(set, to: path)
        let error = #expect(throws: DistillError.self) {
            _ = try TokenFile.read(path: path, tokenizer: Self.tokenizer, sequenceLength: length)
        }
        #expect(error?.kind == expected.0)
        if !expected.1.isEmpty { #expect(error?.field == expected.1) }
        #expect(error?.file == path)
        #expect(error?.exitStatus == 65)
    }

    /// A file that is not safetensors at all reaches the format reader, which names what it is.
    @Test func refusesTextAsTokenFile() throws {
        #expect(throws: FormatError.self) {
            _ = try TokenFile.read(path: TestSupport.fixture("corpus/tiny.txt"), tokenizer: Self.tokenizer, sequenceLength: 32)
        }
    }
}
