import Foundation
import HDTensor
import HDTokenizer

/// How a text file is cut into paragraphs.
public enum ParagraphMode: String, Sendable, CaseIterable {
    /// `blankLine` if the first MiB of the file holds a blank line, else `line`.
    case auto
    /// Blocks of lines separated by blank (whitespace-only) lines: hard-wrapped books.
    case blankLine = "blank-line"
    /// Every non-blank line is a paragraph: one review or article per line.
    case line
}

/// The held-out split, the packing length and the paragraph rule.
public struct CorpusOptions: Sendable {
    /// Tokens per packed sequence, `[CLS]` and the closing `[SEP]` included.
    public var sequenceLength: Int
    /// Paragraph i is held out when `SplitMix64.mix(i) % heldOutEvery == 0` (0 = no held-out split).
    /// The hash depends on the paragraph's index over all files only, not on the seed, so every run
    /// on the same files evaluates on the same text; hashing rather than taking every k-th index
    /// keeps periodic structure in a file (headings every n paragraphs) out of the choice.
    public var heldOutEvery: Int
    public var paragraphMode: ParagraphMode
    /// Largest corpus file accepted.
    public var maxFileBytes: Int

    public init(sequenceLength: Int = 128, heldOutEvery: Int = 20, paragraphMode: ParagraphMode = .auto,
                maxFileBytes: Int = 16 << 30) {
        self.sequenceLength = sequenceLength
        self.heldOutEvery = heldOutEvery
        self.paragraphMode = paragraphMode
        self.maxFileBytes = maxFileBytes
    }
}

public enum CorpusSplit: String, Sendable { case train, heldOut = "held-out" }

/// Text files tokenised once into two compact token streams (train, held-out) and cut into packed
/// sequences, as BERT pre-training does: each paragraph's word pieces are followed by `[SEP]`, the
/// paragraphs of a split are concatenated, and sequence i is `[CLS]` + tokens
/// `i·(L−2) ..< (i+1)·(L−2)` of that stream + `[SEP]`. Every position is a real token (no padding),
/// the final partial sequence is dropped, token types are all 0. Paragraphs are tokenised as they
/// are read, so memory is the id streams (2 bytes a token) plus one read chunk.
public struct Corpus: Sendable {
    public let files: [String]
    public let sequenceLength: Int
    /// Size of the vocabulary the ids index (a model trained on them must have the same).
    public let vocabularySize: Int
    public let specialIDs: SpecialTokenIDs
    public let train: TokenStore
    public let heldOut: TokenStore
    /// Paragraph rule used for each file (what `auto` resolved to).
    public let modes: [ParagraphMode]
    public let trainParagraphs: Int
    public let heldOutParagraphs: Int
    /// Where each paragraph of a split starts in its token stream, plus the stream's length at the
    /// end (`paragraphs + 1` values, the first 0): paragraph k is ids `offsets[k] ..< offsets[k+1]`,
    /// its word pieces and its closing `[SEP]`. Kept for the token file (`TokenFile`), which records
    /// them because a `[SEP]` written in the text tokenises to the same id as the separator.
    public let trainParagraphOffsets: [Int]
    public let heldOutParagraphOffsets: [Int]

    public init(files: [String], tokenizer: BertTokenizer, options: CorpusOptions = CorpusOptions()) throws {
        let arg = "<argument>"
        guard !files.isEmpty else { throw DistillError(.emptyCorpus, file: arg, "corpus: expected at least one text file, found none") }
        guard options.sequenceLength >= 3 else {
            throw DistillError(.invalidArgument, file: arg,
                "corpus: sequence length must be at least 3 ([CLS], one token, [SEP]); found \(options.sequenceLength)")
        }
        guard options.heldOutEvery >= 0 else {
            throw DistillError(.invalidArgument, file: arg, "corpus: held-out period must be 0 (none) or positive; found \(options.heldOutEvery)")
        }
        let size = tokenizer.vocabulary.count
        var builder = Builder(tokenizer: tokenizer, heldOutEvery: options.heldOutEvery,
                              train: TokenStore(vocabularySize: size), heldOut: TokenStore(vocabularySize: size))
        var modes: [ParagraphMode] = []
        for path in files {
            modes.append(try builder.ingest(path: path, mode: options.paragraphMode, maxBytes: options.maxFileBytes))
        }
        builder.train.shrinkToFit()
        builder.heldOut.shrinkToFit()
        let listed = files.joined(separator: ", ")
        guard builder.trainParagraphs + builder.heldOutParagraphs > 0 else {
            throw DistillError(.emptyCorpus, file: listed, "corpus: expected text, found no non-blank line")
        }
        let perSequence = options.sequenceLength - 2
        guard builder.train.count >= perSequence else {
            throw DistillError(.tooShort, file: listed,
                "corpus: one training sequence of length \(options.sequenceLength) needs \(perSequence) tokens "
                + "between [CLS] and [SEP]; the training split has \(builder.train.count) tokens "
                + "(\(builder.trainParagraphs) paragraphs, \(builder.heldOutParagraphs) more held out)")
        }
        self.files = files
        self.sequenceLength = options.sequenceLength
        self.vocabularySize = size
        self.specialIDs = tokenizer.specialIDs
        self.train = builder.train
        self.heldOut = builder.heldOut
        self.modes = modes
        self.trainParagraphs = builder.trainParagraphs
        self.heldOutParagraphs = builder.heldOutParagraphs
        self.trainParagraphOffsets = builder.trainOffsets
        self.heldOutParagraphOffsets = builder.heldOutOffsets
    }

    /// A corpus whose streams were tokenised earlier (`TokenFile.read`, which checks every part).
    init(files: [String], sequenceLength: Int, vocabularySize: Int, specialIDs: SpecialTokenIDs, train: TokenStore,
         heldOut: TokenStore, modes: [ParagraphMode], trainParagraphOffsets: [Int], heldOutParagraphOffsets: [Int]) {
        self.files = files
        self.sequenceLength = sequenceLength
        self.vocabularySize = vocabularySize
        self.specialIDs = specialIDs
        self.train = train
        self.heldOut = heldOut
        self.modes = modes
        self.trainParagraphs = trainParagraphOffsets.count - 1
        self.heldOutParagraphs = heldOutParagraphOffsets.count - 1
        self.trainParagraphOffsets = trainParagraphOffsets
        self.heldOutParagraphOffsets = heldOutParagraphOffsets
    }

    public func sequenceCount(_ split: CorpusSplit) -> Int {
        store(split).count / (sequenceLength - 2)
    }

    /// Writes packed sequence `index` of `split` (`[CLS] … [SEP]`, `sequenceLength` ids) into `out`.
    /// Indices come from `DataOrder`, which draws them below `sequenceCount`.
    public func sequence(_ index: Int, of split: CorpusSplit, into out: UnsafeMutableBufferPointer<Int32>) {
        let inner = sequenceLength - 2
        out[0] = Int32(specialIDs.cls)
        store(split).copy(from: index * inner, into: UnsafeMutableBufferPointer(rebasing: out[1..<(1 + inner)]))
        out[sequenceLength - 1] = Int32(specialIDs.sep)
    }

    public func store(_ split: CorpusSplit) -> TokenStore { split == .train ? train : heldOut }
}

/// Streams files into paragraphs and paragraphs into the two token stores.
private struct Builder {
    let tokenizer: BertTokenizer
    let heldOutEvery: Int
    var train: TokenStore
    var heldOut: TokenStore
    var paragraphIndex = 0
    var trainParagraphs = 0
    var heldOutParagraphs = 0
    var trainOffsets = [0]
    var heldOutOffsets = [0]

    static let chunkBytes = 1 << 20

    init(tokenizer: BertTokenizer, heldOutEvery: Int, train: TokenStore, heldOut: TokenStore) {
        self.tokenizer = tokenizer
        self.heldOutEvery = heldOutEvery
        self.train = train
        self.heldOut = heldOut
    }

    mutating func ingest(path: String, mode requested: ParagraphMode, maxBytes: Int) throws -> ParagraphMode {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw DistillError(.notFound, file: path, "corpus file not found: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw DistillError(.notRegularFile, file: path, "corpus: expected a regular text file, found a directory or special file")
        }
        guard Int(info.st_size) <= maxBytes else {
            throw DistillError(.io, file: path, "corpus: file is \(info.st_size) bytes, over the cap of \(maxBytes) (maxFileBytes)")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DistillError(.io, file: path, "corpus: cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }

        var chunk = [UInt8](repeating: 0, count: Self.chunkBytes)
        var line: [UInt8] = []
        var paragraph: [UInt8] = []
        var mode = requested
        var offset = 0
        var lineNumber = 1, lineStart = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DistillError(.io, file: path, "corpus: read failed after \(offset) bytes: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            if offset == 0, let encoding = UTF8Validation.utf16(chunk[0..<n]) {
                throw DistillError(.binaryText, file: path, UTF8Validation.utf16Message("corpus", encoding: encoding))
            }
            if mode == .auto { mode = Self.detect(chunk[0..<n]) }
            for i in 0..<n {
                let byte = chunk[i]
                if byte == 0 {
                    throw DistillError(.binaryText, file: path,
                        "corpus line \(lineNumber), byte \(offset + i - lineStart + 1) (offset \(offset + i) in the file): expected UTF-8 text, found a NUL byte (a binary file?)")
                }
                if byte == 0x0A {
                    try Self.checkUTF8(line, path: path, line: lineNumber, start: lineStart)
                    endLine(&line, &paragraph, mode: mode)
                    lineNumber += 1
                    lineStart = offset + i + 1
                } else {
                    line.append(byte)
                }
            }
            offset += n
        }
        try Self.checkUTF8(line, path: path, line: lineNumber, start: lineStart)
        endLine(&line, &paragraph, mode: mode)
        flush(&paragraph)
        return mode == .auto ? .line : mode
    }

    /// Refuses a line that is not UTF-8, naming its line and byte: decoding it would turn the bytes
    /// into U+FFFD ([UNK]) and train on them without a word.
    static func checkUTF8(_ line: [UInt8], path: String, line number: Int, start: Int) throws {
        guard let failure = UTF8Validation.firstInvalid(line) else { return }
        throw DistillError(.binaryText, file: path,
            "corpus line \(number), byte \(failure.offset + 1) (offset \(start + failure.offset) in the file): expected UTF-8 text, found \(failure.hex); \(failure.hint)")
    }

    /// A blank line anywhere in the first chunk means the file is written in blocks.
    static func detect(_ bytes: ArraySlice<UInt8>) -> ParagraphMode {
        var blank = true
        var lines = 0
        for byte in bytes {
            if byte == 0x0A {
                if blank && lines > 0 { return .blankLine }
                lines += 1
                blank = true
            } else if !Self.isSpace(byte) {
                blank = false
            }
        }
        return .line
    }

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C }

    private mutating func endLine(_ line: inout [UInt8], _ paragraph: inout [UInt8], mode: ParagraphMode) {
        let blank = line.allSatisfy(Self.isSpace)
        if !blank {
            // The basic tokenizer treats a newline as a space, so a block's lines join cleanly.
            paragraph.append(contentsOf: line)
            paragraph.append(0x0A)
        }
        line.removeAll(keepingCapacity: true)
        if mode == .line || blank { flush(&paragraph) }
    }

    private mutating func flush(_ paragraph: inout [UInt8]) {
        guard !paragraph.isEmpty else { return }
        // Every line was checked to be UTF-8 (`checkUTF8`), so nothing is replaced here.
        let ids = tokenizer.encode(String(decoding: paragraph, as: UTF8.self))
        paragraph.removeAll(keepingCapacity: true)
        let index = paragraphIndex
        paragraphIndex += 1
        guard !ids.isEmpty else { return }
        if heldOutEvery > 0 && SplitMix64.mix(UInt64(index)) % UInt64(heldOutEvery) == 0 {
            heldOut.append(contentsOf: ids)
            heldOut.append(tokenizer.specialIDs.sep)
            heldOutParagraphs += 1
            heldOutOffsets.append(heldOut.count)
        } else {
            train.append(contentsOf: ids)
            train.append(tokenizer.specialIDs.sep)
            trainParagraphs += 1
            trainOffsets.append(train.count)
        }
    }
}
