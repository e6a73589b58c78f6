/// Finding where text stops being UTF-8, so every reader (vocabularies, corpora, hd-infer's inputs)
/// can refuse it naming the line and byte, instead of decoding it with replacement characters
/// (which tokenise to `[UNK]` or vanish). Also names the two encodings that are mistaken for a
/// binary file: UTF-16 (a byte-order mark or NULs between ASCII letters).
public enum UTF8Validation {
    /// Where the first invalid sequence starts.
    public struct Failure: Sendable, Equatable {
        /// 0-based offset of the byte in the bytes given.
        public var offset: Int
        /// The bytes found there (the lead byte and its continuation bytes, up to 4), for the message.
        public var found: [UInt8]

        public init(offset: Int, found: [UInt8]) {
            self.offset = offset
            self.found = found
        }

        /// "0xE9" or "0xE2 0x82" — the bytes that do not form a UTF-8 sequence.
        public var hex: String {
            found.map { "0x" + String($0, radix: 16, uppercase: true).leftPadded(2) }.joined(separator: " ")
        }

        /// What the bytes look like and what to do, for the end of a message.
        public var hint: String {
            let lead = found.first ?? 0
            if (0xA0...0xFF).contains(lead) && (found.count == 1 || !(0x80...0xBF).contains(found[1])) {
                return "Latin-1 or Windows-1252 text? convert it to UTF-8, e.g. `iconv -f latin1 -t utf-8`"
            }
            return "convert it to UTF-8 (e.g. with iconv) or remove the bytes"
        }
    }

    /// The first invalid UTF-8 sequence in `bytes` (Unicode's well-formed table: no overlong forms,
    /// no surrogates, nothing above U+10FFFF, no truncated sequence at the end), or nil when all of
    /// it is UTF-8. A run of ASCII is checked eight bytes at a time.
    public static func firstInvalid(_ bytes: UnsafeBufferPointer<UInt8>) -> Failure? {
        let n = bytes.count
        guard let base = bytes.baseAddress else { return nil }
        var i = 0
        while i < n {
            // ASCII fast path: eight bytes with no high bit.
            if i + 8 <= n {
                let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 == 0 {
                    i += 8
                    continue
                }
            }
            let b0 = base[i]
            if b0 < 0x80 {
                i += 1
                continue
            }
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF  // the second byte's range
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return Failure(offset: i, found: [b0])
            }
            var k = 1
            while k < length {
                guard i + k < n else { return Failure(offset: i, found: Array(bytes[i..<n])) }
                let b = base[i + k]
                let ok = k == 1 ? (low...high).contains(b) : (0x80...0xBF).contains(b)
                guard ok else { return Failure(offset: i, found: Array(bytes[i..<(i + k)])) }
                k += 1
            }
            i += length
        }
        return nil
    }

    public static func firstInvalid<Bytes: Collection>(_ bytes: Bytes) -> Failure? where Bytes.Element == UInt8 {
        if let result = bytes.withContiguousStorageIfAvailable({ firstInvalid($0) }) { return result }
        return Array(bytes).withUnsafeBufferPointer { firstInvalid($0) }
    }

    /// "UTF-16 little-endian (byte-order mark FF FE)" when the start of a file says it is UTF-16:
    /// a byte-order mark, or (without one) NULs in every other byte of mostly-ASCII text. Nil otherwise.
    public static func utf16(_ prefix: some Collection<UInt8>) -> String? {
        let head = Array(prefix.prefix(4096))
        if head.count >= 2 {
            if head[0] == 0xFF && head[1] == 0xFE { return "UTF-16 little-endian (byte-order mark FF FE)" }
            if head[0] == 0xFE && head[1] == 0xFF { return "UTF-16 big-endian (byte-order mark FE FF)" }
        }
        let pairs = head.count / 2
        guard pairs >= 2 else { return nil }
        var evenNUL = 0, oddNUL = 0
        for p in 0..<pairs {
            if head[2 * p] == 0 { evenNUL += 1 }
            if head[2 * p + 1] == 0 { oddNUL += 1 }
        }
        // ASCII as UTF-16 puts a NUL in every pair; allow some non-ASCII characters.
        if oddNUL * 4 >= pairs * 3 && evenNUL * 4 < pairs { return "UTF-16 little-endian (no byte-order mark; NULs after the ASCII letters)" }
        if evenNUL * 4 >= pairs * 3 && oddNUL * 4 < pairs { return "UTF-16 big-endian (no byte-order mark; NULs before the ASCII letters)" }
        return nil
    }

    /// The message for a UTF-16 file, after "file: ".
    public static func utf16Message(_ what: String, encoding: String) -> String {
        "\(what): expected UTF-8 text, found \(encoding); convert it, e.g. `iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8`"
    }

    /// Lines of `bytes` split on `\n`, checked one by one: the 1-based line, the 1-based byte in that
    /// line and the failure (its offset counted from the start of `bytes`), for the first invalid one.
    public static func firstInvalidLine(_ bytes: UnsafeBufferPointer<UInt8>) -> (line: Int, byte: Int, failure: Failure)? {
        guard let failure = firstInvalid(bytes) else { return nil }
        var line = 1, lineStart = 0
        for i in 0..<failure.offset where bytes[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        return (line, failure.offset - lineStart + 1, failure)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
