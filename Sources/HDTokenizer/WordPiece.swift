/// Greedy longest-match-first WordPiece, as in HF's `WordpieceTokenizer` and the `tokenizers`
/// crate: a word is cut into the longest vocabulary piece from its start, then the longest "##"
/// continuation from there, and so on; a word with any unmatched rest, or longer than
/// `maxInputCharsPerWord` Unicode scalars, becomes `[UNK]` as a whole.
public struct WordPiece: Sendable {
    public let unknownID: Int
    public let maxInputCharsPerWord: Int
    /// Every token, for the first piece of a word.
    private let initial: PieceTable
    /// Tokens that start with "##", keyed without the prefix, for the pieces after the first.
    private let continuation: PieceTable

    public init(vocabulary: Vocabulary, unknownID: Int, maxInputCharsPerWord: Int = 100) {
        var initial: [(key: ArraySlice<UInt8>, id: Int)] = []
        var continuation: [(key: ArraySlice<UInt8>, id: Int)] = []
        initial.reserveCapacity(vocabulary.count)
        for (id, token) in vocabulary.tokens.enumerated() {
            let bytes = Array(token.utf8)
            initial.append((bytes[...], id))
            if bytes.starts(with: [0x23, 0x23]) { continuation.append((bytes[2...], id)) }
        }
        self.initial = PieceTable(initial)
        self.continuation = PieceTable(continuation)
        self.unknownID = unknownID
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    /// The ids of one word's pieces, appended to `ids`.
    public func encode(word: String, into ids: inout [Int]) {
        var word = word
        let scalars = word.unicodeScalars.count
        word.withUTF8 { encode($0, scalars: scalars, into: &ids) }
    }

    /// `word` is valid UTF-8 (it comes from a Swift String) of `scalars` scalars.
    func encode(_ word: UnsafeBufferPointer<UInt8>, scalars: Int, into ids: inout [Int]) {
        guard scalars <= maxInputCharsPerWord, let base = word.baseAddress else {
            if scalars > maxInputCharsPerWord { ids.append(unknownID) }
            return
        }
        let firstPiece = ids.count
        var start = 0
        while start < word.count {
            let table = start == 0 ? initial : continuation
            // Nothing longer than the longest key can match; start there, not at the word's end.
            var end = min(word.count, start + table.maxKeyBytes)
            var found: Int?
            while end > start {
                // Candidates end on scalar boundaries only: skip back over UTF-8 continuation bytes.
                if end == word.count || word[end] & 0xC0 != 0x80, let id = table.id(base + start, end - start) {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.removeSubrange(firstPiece...)
                ids.append(unknownID)
                return
            }
            ids.append(id)
            start = end
        }
    }
}
