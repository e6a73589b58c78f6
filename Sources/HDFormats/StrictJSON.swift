/// A JSON value as parsed by `StrictJSON`. Objects keep document order; numbers keep their literal text
/// so callers can demand exact integers instead of trusting a round trip through Double.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The value as an exact integer in 0...Int.max; nil for non-numbers, negatives, fractions, exponents
    /// and anything too large. "1.0" and "1e3" are refused on purpose: a size field written that way is
    /// not what any sane writer produces, and accepting it would mean trusting float rounding.
    public var nonNegativeInteger: Int? {
        guard case .number(let literal) = self else { return nil }
        guard literal.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(literal)
    }

    /// A short description for error messages ("the string \"F32\"", "the number -1", "an array of 3").
    public var summary: String {
        func clip(_ s: String) -> String { s.count > 40 ? String(s.prefix(40)) + "…" : s }
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return "the number \(clip(n))"
        case .string(let s): return "the string \(StrictJSON.quoted(clip(s)))"
        case .array(let a): return "an array of \(a.count)"
        case .object(let o): return "an object with \(o.members.count) keys"
        }
    }
}

public struct JSONMember: Sendable, Equatable {
    public let key: String
    public let value: JSONValue
}

/// An object's members in document order; keys are unique (the parser refuses duplicates).
public struct JSONObject: Sendable, Equatable {
    public let members: [JSONMember]

    /// Linear lookup: the objects read here are either tiny (tensor entries) or iterated whole.
    public subscript(key: String) -> JSONValue? {
        members.first { $0.key == key }?.value
    }
}

/// A strict JSON parser for untrusted headers (RFC 8259 with no extensions): rejects duplicate keys,
/// raw control characters and ill-formed UTF-8 in strings, lone surrogate escapes, trailing garbage and
/// nesting deeper than a limit. Errors are `.badHeader` (syntax) or `.duplicateKey`.
public enum StrictJSON {
    /// Parses exactly one value surrounded by optional whitespace. `what` names the text in errors
    /// ("header"); `file` is the path reported.
    public static func parse(_ bytes: UnsafeRawBufferPointer, file: String, what: String = "JSON text",
                             maxDepth: Int = 32) throws -> JSONValue {
        var parser = Parser(bytes: bytes, file: file, what: what, maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index < bytes.count {
            throw parser.error("expected end of input after the value", found: parser.index)
        }
        return value
    }

    /// Offset of the first byte that does not start a well-formed UTF-8 sequence, or nil if all are valid.
    public static func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        while i < bytes.count {
            if bytes[i] < 0x80 { i += 1; continue }
            guard let n = utf8SequenceLength(bytes, at: i) else { return i }
            i += n
        }
        return nil
    }

    /// Length of the well-formed sequence at `i` per Unicode Table 3-7 (no overlongs, no encoded
    /// surrogates, nothing above U+10FFFF), or nil.
    static func utf8SequenceLength(_ p: UnsafeRawBufferPointer, at i: Int) -> Int? {
        func cont(_ k: Int, _ lo: UInt8 = 0x80, _ hi: UInt8 = 0xBF) -> Bool {
            i + k < p.count && p[i + k] >= lo && p[i + k] <= hi
        }
        switch p[i] {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: return cont(1) ? 2 : nil
        case 0xE0: return cont(1, 0xA0) && cont(2) ? 3 : nil
        case 0xE1...0xEC, 0xEE...0xEF: return cont(1) && cont(2) ? 3 : nil
        case 0xED: return cont(1, 0x80, 0x9F) && cont(2) ? 3 : nil
        case 0xF0: return cont(1, 0x90) && cont(2) && cont(3) ? 4 : nil
        case 0xF1...0xF3: return cont(1) && cont(2) && cont(3) ? 4 : nil
        case 0xF4: return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : nil
        default: return nil
        }
    }

    /// `s` as a JSON string literal, quotes included.
    public static func quoted(_ s: String) -> String {
        var out: [UInt8] = []
        appendQuoted(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `s` as a JSON string literal. Non-ASCII text is kept as UTF-8 (valid JSON, and shorter).
    public static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x00..<0x20, 0x7F:
                out += Array("\\u00".utf8)
                out += [hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

private struct Parser {
    let bytes: UnsafeRawBufferPointer
    let file: String
    let what: String
    let maxDepth: Int
    var index = 0
    /// Keys of the objects being parsed, outermost first, so a duplicate can be located by path.
    var path: [String] = []
    /// Reused for strings that contain escapes, so parsing does not allocate per escape.
    var scratch: [UInt8] = []

    init(bytes: UnsafeRawBufferPointer, file: String, what: String, maxDepth: Int) {
        self.bytes = bytes
        self.file = file
        self.what = what
        self.maxDepth = maxDepth
    }

    func error(_ expected: String, found at: Int) -> FormatError {
        let found: String
        if at >= bytes.count {
            found = "end of input"
        } else {
            let b = bytes[at]
            found = (0x21...0x7E).contains(b) ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
        }
        return FormatError(.badHeader, file: file, "\(what) is not valid JSON: \(expected) at byte \(at), found \(found)")
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws -> JSONValue {
        guard index < bytes.count else { throw error("expected a value", found: index) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("expected a value", found: index)
        }
    }

    mutating func expectLiteral(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        let start = word.utf8Start
        for k in 0..<n where index + k >= bytes.count || bytes[index + k] != start[k] {
            throw error("expected '\(word)'", found: index + k)
        }
        index += n
    }

    func checkDepth(_ depth: Int) throws {
        if depth > maxDepth {
            throw FormatError(.badHeader, file: file, "\(what) nests deeper than \(maxDepth) levels at byte \(index)")
        }
    }

    mutating func parseObject(depth: Int) throws -> JSONValue {
        try checkDepth(depth)
        index += 1
        var members: [JSONMember] = []
        var seen = Set<String>()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject(members: members))
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected a string key", found: index)
            }
            let keyStart = index
            let key = try parseString()
            guard seen.insert(key).inserted else {
                let location = path.isEmpty ? "the top-level object" : "the object at " + path.map { StrictJSON.quoted($0) }.joined(separator: " → ")
                throw FormatError(.duplicateKey, file: file, "\(what) has the key \(StrictJSON.quoted(key)) twice in \(location) (second at byte \(keyStart)); duplicate keys are ambiguous, so the file is refused")
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after an object key", found: index)
            }
            index += 1
            skipWhitespace()
            path.append(key)
            let value = try parseValue(depth: depth)
            path.removeLast()
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            guard index < bytes.count else { throw error("expected ',' or '}'", found: index) }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(JSONObject(members: members)) }
            throw error("expected ',' or '}'", found: index)
        }
    }

    mutating func parseArray(depth: Int) throws -> JSONValue {
        try checkDepth(depth)
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw error("expected ',' or ']'", found: index) }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw error("expected ',' or ']'", found: index)
        }
    }

    mutating func parseNumber() throws -> JSONValue {
        let start = index
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9") }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { throw error("expected a digit", found: index) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if isDigit(index) { throw error("expected no leading zero", found: index) }
        } else {
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { throw error("expected a digit after '.'", found: index) }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { throw error("expected an exponent digit", found: index) }
            while isDigit(index) { index += 1 }
        }
        return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }

    mutating func parseString() throws -> String {
        index += 1
        let start = index
        var escaped = false
        scratch.removeAll(keepingCapacity: true)
        var runStart = index
        while true {
            guard index < bytes.count else { throw error("expected a closing '\"'", found: index) }
            let b = bytes[index]
            if b == UInt8(ascii: "\"") { break }
            if b < 0x20 { throw error("expected no raw control character in a string (escape it)", found: index) }
            if b == UInt8(ascii: "\\") {
                scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                escaped = true
                try parseEscape()
                runStart = index
                continue
            }
            if b < 0x80 { index += 1; continue }
            guard let n = StrictJSON.utf8SequenceLength(bytes, at: index) else {
                throw error("expected well-formed UTF-8 in a string", found: index)
            }
            index += n
        }
        let end = index
        index += 1
        if !escaped {
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<end]))
        return String(decoding: scratch, as: UTF8.self)
    }

    /// Decodes one escape at `index` (the backslash) into `scratch`.
    mutating func parseEscape() throws {
        guard index + 1 < bytes.count else { throw error("expected an escape character", found: index + 1) }
        let c = bytes[index + 1]
        index += 2
        switch c {
        case UInt8(ascii: "\""): scratch.append(0x22)
        case UInt8(ascii: "\\"): scratch.append(0x5C)
        case UInt8(ascii: "/"): scratch.append(0x2F)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let high = try parseHex4()
            var scalar = high
            if (0xD800...0xDBFF).contains(high) {
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw error("expected a low surrogate escape after \\u\(String(high, radix: 16))", found: index)
                }
                index += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("expected a low surrogate (\\uDC00-\\uDFFF)", found: index - 4)
                }
                scalar = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(high) {
                throw error("expected no lone low surrogate", found: index - 4)
            }
            guard let u = Unicode.Scalar(scalar) else { throw error("expected a Unicode scalar", found: index - 4) }
            UTF8.encode(u) { scratch.append($0) }
        default:
            throw error("expected an escape (one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u)", found: index - 1)
        }
    }

    mutating func parseHex4() throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw error("expected a hex digit", found: index) }
            let b = bytes[index]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw error("expected a hex digit", found: index)
            }
            v = v << 4 | UInt32(d)
            index += 1
        }
        return v
    }
}
