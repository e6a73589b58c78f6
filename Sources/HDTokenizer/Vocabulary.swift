import Foundation

/// The ids of the five tokens BERT needs beyond the word pieces.
public struct SpecialTokenIDs: Sendable, Equatable {
    public let pad: Int
    public let unk: Int
    public let cls: Int
    public let sep: Int
    public let mask: Int

    public init(pad: Int, unk: Int, cls: Int, sep: Int, mask: Int) {
        (self.pad, self.unk, self.cls, self.sep, self.mask) = (pad, unk, cls, sep, mask)
    }

    /// The spellings, in the order `pad, unk, cls, sep, mask`.
    public static let names = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
}

/// A WordPiece vocabulary: one token per line of `vocab.txt`, id = zero-based line number.
public struct Vocabulary: Sendable {
    /// Where the tokens came from ("<memory>" unless read from a file); every error names it.
    public let source: String
    public let tokens: [String]
    private let ids: [String: Int]

    /// Default cap on a vocabulary file: bert-base's is 230 KB, multilingual ones a few MB.
    public static let defaultMaxFileBytes = 64 << 20
    /// Limit on the tokens' total UTF-8 size, whatever their origin.
    public static let maxTotalBytes = 1 << 30

    /// Tokens from memory. Duplicates are refused (HF silently keeps the last id, which shifts meaning).
    public init(tokens: [String], source: String = "<memory>") throws {
        guard !tokens.isEmpty else {
            throw TokenizerError(.empty, file: source, "vocabulary: expected at least one token, found none")
        }
        // The WordPiece tables index tokens with 32-bit offsets.
        var totalBytes = 0
        for token in tokens { totalBytes += token.utf8.count }
        guard totalBytes <= Self.maxTotalBytes else {
            throw TokenizerError(.tooLarge, file: source,
                "vocabulary: tokens total \(totalBytes) bytes, over the limit of \(Self.maxTotalBytes)")
        }
        var ids = [String: Int](minimumCapacity: tokens.count)
        for (id, token) in tokens.enumerated() {
            if let first = ids.updateValue(id, forKey: token) {
                throw TokenizerError(.duplicateToken, file: source,
                    "vocabulary line \(id + 1): token \(Self.quoted(token)) already appears on line \(first + 1); "
                    + "expected every token once")
            }
        }
        self.source = source
        self.tokens = tokens
        self.ids = ids
    }

    /// Tokens from the bytes of a `vocab.txt`: lines split on `\n`, a trailing `\r` (CRLF files)
    /// dropped, a final newline not starting an extra token. Blank lines stay tokens, as in HF, so
    /// the ids of the following lines do not shift.
    public init<Bytes: Collection>(utf8 bytes: Bytes, source: String = "<memory>") throws
    where Bytes.Element == UInt8 {
        if bytes.starts(with: Array("version https://git-lfs".utf8)) {
            throw TokenizerError(.gitLFSPointer, file: source,
                "vocabulary: found a Git LFS pointer instead of the token list; run `git lfs pull` to fetch it")
        }
        if let encoding = UTF8Validation.utf16(bytes) {
            throw TokenizerError(.notUTF8, file: source, UTF8Validation.utf16Message("vocabulary", encoding: encoding))
        }
        var tokens: [String] = []
        var line: [UInt8] = []
        var lineNumber = 0, offset = 0, lineStart = 0
        func finishLine() throws {
            lineNumber += 1
            if line.last == 0x0D { line.removeLast() }
            guard let token = String(validating: line, as: UTF8.self) else {
                let failure = UTF8Validation.firstInvalid(line) ?? .init(offset: 0, found: [])
                throw TokenizerError(.notUTF8, file: source,
                    "vocabulary line \(lineNumber), byte \(failure.offset + 1) (offset \(lineStart + failure.offset) in the file): "
                    + "expected UTF-8 text, found \(failure.hex); \(failure.hint)")
            }
            tokens.append(token)
            line.removeAll(keepingCapacity: true)
        }
        for byte in bytes {
            offset += 1
            if byte == 0x0A {
                try finishLine()
                lineStart = offset
            } else {
                line.append(byte)
            }
        }
        if !line.isEmpty { try finishLine() }
        try self.init(tokens: tokens, source: source)
    }

    /// Reads a `vocab.txt`, refusing what is not a regular file or is larger than `maxBytes`.
    public init(contentsOfFile path: String, maxBytes: Int = Vocabulary.defaultMaxFileBytes) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError(.notFound, file: path, "vocabulary file not found")
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard !isDirectory.boolValue, attributes?[.type] as? FileAttributeType == .typeRegular else {
            throw TokenizerError(.notRegularFile, file: path,
                "vocabulary: expected a regular file, found a directory or special file")
        }
        if let size = (attributes?[.size] as? NSNumber)?.intValue, size > maxBytes {
            throw TokenizerError(.tooLarge, file: path,
                "vocabulary: file is \(size) bytes, over the cap of \(maxBytes) bytes (maxBytes)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError(.io, file: path, "vocabulary: cannot read the file: \(error)")
        }
        // The size can change between stat and read; the cap must hold for what was read.
        guard data.count <= maxBytes else {
            throw TokenizerError(.tooLarge, file: path,
                "vocabulary: read \(data.count) bytes, over the cap of \(maxBytes) bytes (maxBytes)")
        }
        try self.init(utf8: data, source: path)
    }

    public var count: Int { tokens.count }

    public func id(for token: String) -> Int? { ids[token] }

    public func token(for id: Int) -> String? { tokens.indices.contains(id) ? tokens[id] : nil }

    /// The ids of `[PAD] [UNK] [CLS] [SEP] [MASK]`; one error lists every one that is missing.
    public func specialTokenIDs() throws -> SpecialTokenIDs {
        let found = SpecialTokenIDs.names.map { ids[$0] }
        let missing = zip(SpecialTokenIDs.names, found).filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty, let pad = found[0], let unk = found[1], let cls = found[2],
              let sep = found[3], let mask = found[4] else {
            throw TokenizerError(.missingSpecialToken, file: source,
                "vocabulary: expected the special tokens \(SpecialTokenIDs.names.joined(separator: " ")), "
                + "missing \(missing.joined(separator: " ")) (\(count) tokens, first \(Self.quoted(tokens[0])))")
        }
        return SpecialTokenIDs(pad: pad, unk: unk, cls: cls, sep: sep, mask: mask)
    }

    /// Tokens are untrusted text: show escapes so control characters and blanks are visible.
    static func quoted(_ token: String) -> String {
        "\"" + token.unicodeScalars.map { $0.escaped(asASCII: false) }.joined() + "\""
    }
}
