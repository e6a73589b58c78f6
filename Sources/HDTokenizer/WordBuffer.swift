/// The basic tokenizer's output: words as UTF-8 ranges of one byte buffer, so splitting a line
/// costs no String per word and WordPiece can probe slices of the bytes directly.
struct WordBuffer {
    struct Word {
        var start: Int
        var end: Int
        /// Unicode scalars in the word: HF's 100-character limit counts these.
        var scalars: Int
        /// A special token found in the raw text: looked up whole, never split into pieces.
        var neverSplit: Bool
    }

    private(set) var bytes: [UInt8] = []
    private(set) var words: [Word] = []
    private var openStart: Int?
    private var openScalars = 0

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        words.removeAll(keepingCapacity: true)
        openStart = nil
        openScalars = 0
    }

    /// Extends the open word (or opens one) by an ASCII byte.
    @inline(__always)
    mutating func append(ascii byte: UInt8) {
        if openStart == nil { openStart = bytes.count }
        bytes.append(byte)
        openScalars += 1
    }

    /// Extends the open word (or opens one) by a scalar.
    @inline(__always)
    mutating func append(_ scalar: Unicode.Scalar) {
        if scalar.isASCII { return append(ascii: UInt8(scalar.value)) }
        if openStart == nil { openStart = bytes.count }
        UTF8.encode(scalar) { bytes.append($0) }
        openScalars += 1
    }

    @inline(__always)
    mutating func endWord() {
        guard let start = openStart else { return }
        words.append(Word(start: start, end: bytes.count, scalars: openScalars, neverSplit: false))
        openStart = nil
        openScalars = 0
    }

    /// A one-scalar word (a punctuation mark), closing the word before it.
    @inline(__always)
    mutating func appendIsolated(_ scalar: Unicode.Scalar) {
        endWord()
        append(scalar)
        endWord()
    }

    mutating func appendNeverSplit(_ token: UnsafeBufferPointer<UInt8>) {
        endWord()
        let start = bytes.count
        bytes.append(contentsOf: token)
        let scalars = token.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
        words.append(Word(start: start, end: bytes.count, scalars: scalars, neverSplit: true))
    }

    func string(_ word: Word) -> String {
        String(decoding: bytes[word.start..<word.end], as: UTF8.self)
    }
}
