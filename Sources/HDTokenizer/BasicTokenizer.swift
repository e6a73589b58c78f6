import Foundation

/// BERT's pre-WordPiece step, matching Hugging Face's `BertTokenizer` (transformers 5, backed by the
/// `tokenizers` crate: added-token split, `BertNormalizer`, `BertPreTokenizer`):
///
/// 1. `neverSplit` tokens (`[CLS]`, `[MASK]` …) are cut out of the raw text first and kept whole.
/// 2. Each remaining segment is cleaned (U+0000, U+FFFD and categories C* dropped except tab, LF,
///    CR; White_Space mapped to a space), CJK ideographs get spaces around them, accents are
///    stripped (NFD, then Mn dropped), then lower-cased scalar by scalar.
/// 3. Words are split on spaces and each punctuation scalar becomes a word of its own.
///
/// Two places where the classic Python tokenizer (v4 `BertTokenizer`, v5 `BertTokenizerLegacy`)
/// differs and this one follows the `tokenizers` crate: lower-casing is per scalar (Σ → σ even at
/// the end of a word, where Python's `str.lower` gives ς), there is no NFC pass before splitting
/// (Python composes conjoining jamo into syllables), the CJK extension range starts at U+2B920, and
/// unassigned scalars (Cn) are kept. Scalars assigned in recent Unicode versions (about 700, e.g.
/// U+2E43…U+2E5D punctuation) may still differ: the crate's category tables are older than Swift's.
public struct BasicTokenizer: Sendable {
    public let lowercase: Bool
    public let stripAccents: Bool
    public let tokenizeChineseChars: Bool
    public let neverSplit: [String]
    /// `neverSplit` as bytes, and which bytes can start one: most text never reaches the compare.
    private let neverSplitBytes: [[UInt8]]
    private let startsNeverSplit: [Bool]

    /// `stripAccents: nil` follows `lowercase`, as in the original BERT.
    public init(lowercase: Bool = true, stripAccents: Bool? = nil, tokenizeChineseChars: Bool = true,
                neverSplit: [String] = []) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.tokenizeChineseChars = tokenizeChineseChars
        // Longest first, so a token that is a prefix of another never wins (leftmost-longest).
        self.neverSplit = neverSplit.filter { !$0.isEmpty }.sorted { $0.utf8.count > $1.utf8.count }
        self.neverSplitBytes = self.neverSplit.map { Array($0.utf8) }
        var starts = [Bool](repeating: false, count: 256)
        for token in neverSplitBytes { starts[Int(token[0])] = true }
        self.startsNeverSplit = starts
    }

    public func tokenize(_ text: String) -> [String] {
        var words = WordBuffer()
        split(text, into: &words)
        return words.words.map { words.string($0) }
    }

    func split(_ text: String, into words: inout WordBuffer) {
        var text = text
        text.withUTF8 { bytes in
            var segmentStart = 0
            var i = 0
            while i < bytes.count {
                if let length = neverSplitMatch(bytes, at: i) {
                    splitSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart..<i]), into: &words)
                    words.appendNeverSplit(UnsafeBufferPointer(rebasing: bytes[i..<(i + length)]))
                    i += length
                    segmentStart = i
                } else {
                    i += 1
                }
            }
            splitSegment(UnsafeBufferPointer(rebasing: bytes[segmentStart..<bytes.count]), into: &words)
        }
        words.endWord()
    }

    /// The byte length of the longest never-split token starting at `offset`.
    @inline(__always)
    private func neverSplitMatch(_ bytes: UnsafeBufferPointer<UInt8>, at offset: Int) -> Int? {
        guard startsNeverSplit[Int(bytes[offset])] else { return nil }
        for token in neverSplitBytes where token.count <= bytes.count - offset {
            if memcmp(bytes.baseAddress! + offset, token, token.count) == 0 { return token.count }
        }
        return nil
    }

    private func splitSegment(_ bytes: UnsafeBufferPointer<UInt8>, into words: inout WordBuffer) {
        if bytes.allSatisfy({ $0 < 0x80 }) {
            for byte in bytes { splitASCII(byte, into: &words) }
            return
        }
        // Clean and space out CJK first: NFD must see the cleaned text, as in BertNormalizer.
        var cleaned = String.UnicodeScalarView()
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            let value = scalar.value
            if value == 0 || value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if tokenizeChineseChars && Self.isChineseCharacter(value) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        let normalized = stripAccents
            ? String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars
            : cleaned
        for scalar in normalized {
            if scalar.isASCII {
                splitASCII(UInt8(scalar.value), into: &words)
                continue
            }
            if stripAccents && scalar.properties.generalCategory == .nonspacingMark { continue }
            if lowercase && scalar.properties.changesWhenLowercased {
                for lower in scalar.properties.lowercaseMapping.unicodeScalars { splitScalar(lower, into: &words) }
            } else {
                splitScalar(scalar, into: &words)
            }
        }
    }

    /// Cleaning, lower-casing and splitting of one ASCII byte; the common case, kept branch-light.
    @inline(__always)
    private func splitASCII(_ byte: UInt8, into words: inout WordBuffer) {
        switch byte {
        case 0x20, 0x09, 0x0A, 0x0D:
            words.endWord()
        case 0x00..<0x20, 0x7F:
            break
        case 33...47, 58...64, 91...96, 123...126:
            words.appendIsolated(Unicode.Scalar(byte))
        case 0x41...0x5A where lowercase:
            words.append(ascii: byte | 0x20)
        default:
            words.append(ascii: byte)
        }
    }

    @inline(__always)
    private func splitScalar(_ scalar: Unicode.Scalar, into words: inout WordBuffer) {
        if scalar.isASCII {
            splitASCII(UInt8(scalar.value), into: &words)
        } else if Self.isPunctuation(scalar) {
            words.appendIsolated(scalar)
        } else {
            words.append(scalar)
        }
    }

    /// BertNormalizer's control test: Cc, Cf, Co (tab, LF and CR are whitespace instead).
    /// Unassigned scalars (Cn) are kept, as the `tokenizers` crate keeps them (its category tables
    /// list no Cn); Python's `_is_control` drops them.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return false
        default: break
        }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse: return true
        default: return false
        }
    }

    /// Rust's `char::is_whitespace` (the White_Space property), which BertNormalizer uses; on what
    /// survives the control filter it equals Python's space/tab/LF/CR/Zs plus U+2028 and U+2029,
    /// which Python's `str.split` then splits on too.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace
    }

    /// HF's `_is_punctuation`: the ASCII symbol ranges plus every P* category.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 33...47, 58...64, 91...96, 123...126: return true
        default: break
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK ideograph blocks of BertNormalizer (the `tokenizers` crate: its extension range
    /// starts at U+2B920 where the Python tokenizer's starts at U+2B820).
    static func isChineseCharacter(_ value: UInt32) -> Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
