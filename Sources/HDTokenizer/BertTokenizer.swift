import Foundation

/// How `BertTokenizer.encode(_:pair:maxLength:truncation:padding:)` pads with `[PAD]`.
public enum PaddingStrategy: Sendable, Hashable {
    case none
    /// Up to `maxLength` (which must be given); a longer, untruncated sequence stays as it is.
    case toMaxLength
    /// Up to the next multiple of the given length (positive).
    case toMultiple(of: Int)
}

/// Model inputs for one sequence or pair, all of the same length.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int]
    /// 0 for `[CLS]`, the first text and its `[SEP]`; 1 for the second text and its `[SEP]`; 0 for padding.
    public var tokenTypeIds: [Int]
    /// 1 for real tokens, 0 for padding.
    public var attentionMask: [Int]

    public init(ids: [Int], tokenTypeIds: [Int], attentionMask: [Int]) {
        self.ids = ids
        self.tokenTypeIds = tokenTypeIds
        self.attentionMask = attentionMask
    }
}

/// BERT's WordPiece tokenizer; ids equal Hugging Face's `BertTokenizer` (transformers 5) for the same
/// vocabulary and casing. See `BasicTokenizer` for where that differs from the classic Python one.
public struct BertTokenizer: Sendable {
    public let vocabulary: Vocabulary
    public let specialIDs: SpecialTokenIDs
    public let basic: BasicTokenizer
    public let wordPiece: WordPiece

    /// `lowercase: true` for uncased checkpoints (the default), false for cased ones;
    /// `stripAccents: nil` follows `lowercase`.
    public init(vocabulary: Vocabulary, lowercase: Bool = true, stripAccents: Bool? = nil,
                tokenizeChineseChars: Bool = true) throws {
        let specialIDs = try vocabulary.specialTokenIDs()
        self.vocabulary = vocabulary
        self.specialIDs = specialIDs
        self.basic = BasicTokenizer(lowercase: lowercase, stripAccents: stripAccents,
                                    tokenizeChineseChars: tokenizeChineseChars, neverSplit: SpecialTokenIDs.names)
        self.wordPiece = WordPiece(vocabulary: vocabulary, unknownID: specialIDs.unk)
    }

    public init(vocabularyFile path: String, lowercase: Bool = true, stripAccents: Bool? = nil,
                tokenizeChineseChars: Bool = true) throws {
        try self.init(vocabulary: Vocabulary(contentsOfFile: path), lowercase: lowercase,
                      stripAccents: stripAccents, tokenizeChineseChars: tokenizeChineseChars)
    }

    /// Word-piece ids of `text`, without `[CLS]`/`[SEP]`.
    public func encode(_ text: String) -> [Int] {
        var words = WordBuffer()
        var ids: [Int] = []
        append(text, words: &words, ids: &ids)
        return ids
    }

    /// Word-piece tokens of `text`, without `[CLS]`/`[SEP]`.
    public func tokenize(_ text: String) -> [String] {
        encode(text).map { vocabulary.tokens[$0] }
    }

    /// `[CLS] a [SEP]`, or `[CLS] a [SEP] b [SEP]` for a pair. With `truncation`, the texts are cut
    /// to fit `maxLength` as HF's "longest_first" does; `maxLength: nil` means no limit.
    public func encode(_ a: String, pair b: String?, maxLength: Int? = nil, truncation: Bool = false,
                       padding: PaddingStrategy = .none) throws -> Encoding {
        let specials = b == nil ? 2 : 3
        if let maxLength, maxLength < (truncation ? specials : 0) {
            throw TokenizerError(.invalidArgument, file: vocabulary.source,
                "encode: maxLength \(maxLength) leaves no room; expected at least \(specials) for the special tokens")
        }
        var words = WordBuffer()
        var first: [Int] = []
        append(a, words: &words, ids: &first)
        var second: [Int] = []
        if let b { append(b, words: &words, ids: &second) }

        if truncation, let maxLength {
            let (n1, n2) = Self.truncatedLengths(first.count, second.count, budget: maxLength - specials)
            first.removeLast(first.count - n1)
            second.removeLast(second.count - n2)
        }
        var ids = [specialIDs.cls] + first + [specialIDs.sep]
        var types = [Int](repeating: 0, count: ids.count)
        if b != nil {
            ids += second + [specialIDs.sep]
            types += [Int](repeating: 1, count: second.count + 1)
        }
        var mask = [Int](repeating: 1, count: ids.count)

        let target: Int
        switch padding {
        case .none:
            target = ids.count
        case .toMaxLength:
            guard let maxLength else {
                throw TokenizerError(.invalidArgument, file: vocabulary.source,
                    "encode: padding .toMaxLength needs maxLength; found nil")
            }
            target = max(ids.count, maxLength)
        case .toMultiple(let multiple):
            guard multiple > 0 else {
                throw TokenizerError(.invalidArgument, file: vocabulary.source,
                    "encode: padding multiple must be positive; found \(multiple)")
            }
            target = (ids.count + multiple - 1) / multiple * multiple
        }
        let pad = target - ids.count
        ids += [Int](repeating: specialIDs.pad, count: pad)
        types += [Int](repeating: 0, count: pad)
        mask += [Int](repeating: 0, count: pad)
        return Encoding(ids: ids, tokenTypeIds: types, attentionMask: mask)
    }

    /// HF's `convert_tokens_to_string`: tokens joined by spaces, "##" continuations glued to the
    /// piece before. Ids outside the vocabulary are refused.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws -> String {
        let specials: Set<Int> = [specialIDs.pad, specialIDs.unk, specialIDs.cls, specialIDs.sep, specialIDs.mask]
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for (position, id) in ids.enumerated() {
            guard let token = vocabulary.token(for: id) else {
                throw TokenizerError(.idOutOfRange, file: vocabulary.source,
                    "decode: id \(id) at position \(position) is outside the vocabulary (0..<\(vocabulary.count))")
            }
            if !(skipSpecialTokens && specials.contains(id)) { tokens.append(token) }
        }
        let joined = tokens.joined(separator: " ").replacingOccurrences(of: " ##", with: "")
        return joined.trimmingPythonWhitespace()
    }

    private func append(_ text: String, words: inout WordBuffer, ids: inout [Int]) {
        words.removeAll()
        basic.split(text, into: &words)
        words.bytes.withUnsafeBufferPointer { bytes in
            for word in words.words {
                let slice = UnsafeBufferPointer(rebasing: bytes[word.start..<word.end])
                if word.neverSplit {
                    ids.append(vocabulary.id(for: String(decoding: slice, as: UTF8.self)) ?? specialIDs.unk)
                } else {
                    wordPiece.encode(slice, scalars: word.scalars, into: &ids)
                }
            }
        }
    }

    /// The `tokenizers` crate's longest-first cut of a pair to `budget` tokens: the shorter text
    /// keeps all it can up to half, the longer takes the rest; when both must be cut, the second
    /// gets the odd token if they tie, otherwise the longer does.
    static func truncatedLengths(_ n1: Int, _ n2: Int, budget: Int) -> (Int, Int) {
        if n1 + n2 <= budget { return (n1, n2) }
        let swap = n1 > n2
        var (short, long) = swap ? (n2, n1) : (n1, n2)
        long = short > budget ? short : max(short, budget - short)
        if short + long > budget {
            short = budget / 2
            long = short + budget % 2
        }
        return swap ? (long, short) : (short, long)
    }
}

extension String {
    /// Python's `str.strip()`: White_Space plus U+001C…U+001F, which `str.isspace` also counts (the
    /// tokenizer's text and HDTasks' labels trim alike, as the Python tools do).
    public func trimmingPythonWhitespace() -> String {
        func isSpace(_ scalar: Unicode.Scalar) -> Bool {
            scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
        }
        var scalars = Substring(self).unicodeScalars
        while let first = scalars.first, isSpace(first) { scalars.removeFirst() }
        while let last = scalars.last, isSpace(last) { scalars.removeLast() }
        return String(scalars)
    }
}
