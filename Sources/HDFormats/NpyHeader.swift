/// The header of a `.npy` array: element type, byte order, layout and shape.
///
/// The header is a Python dict literal. We never evaluate it: we parse exactly the subset numpy writes
/// (`{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and ended by `\n`)
/// and refuse everything else, so a crafted header cannot do more than fail.
struct NpyHeader: Equatable {
    var type: ElementType
    /// True when the data is stored big-endian (`>f4`); it is byte-swapped at load.
    var bigEndian: Bool
    var fortranOrder: Bool
    var shape: [Int]

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// Data starts at a multiple of this, as numpy lays it out.
    static let alignment = 64

    /// Checks magic, version and the header length field (against the cap only): the bytes before
    /// the dict and how long the dict is. Needs the first 12 bytes, or all there are.
    /// numpy.load's default `max_header_size`.
    static let numpyMaxHeaderBytes = 10_000

    static func preamble(_ bytes: UnsafeRawBufferPointer, name: String, file: String,
                         maxHeaderBytes: Int) throws -> (prefix: Int, headerLength: Int) {
        guard bytes.count >= 10 else {
            throw FormatError(.tooSmall, file: file, "array '\(name)': \(bytes.count) bytes, shorter than the 10-byte .npy preamble")
        }
        guard bytes.prefix(6).elementsEqual(magic) else {
            let found = bytes.prefix(6).map { String($0, radix: 16) }.joined(separator: " ")
            throw FormatError(.wrongFormat, file: file, "array '\(name)': expected the .npy magic 93 4e 55 4d 50 59 (\\x93NUMPY), found \(found)")
        }
        let major = bytes[6], minor = bytes[7]
        let lengthFieldSize: Int
        switch (major, minor) {
        case (1, 0): lengthFieldSize = 2
        case (2, 0), (3, 0): lengthFieldSize = 4
        default:
            throw FormatError(.badHeader, file: file, "array '\(name)': .npy version \(major).\(minor) is not supported; expected 1.0, 2.0 or 3.0")
        }
        let prefix = 8 + lengthFieldSize
        guard bytes.count >= prefix else {
            throw FormatError(.truncated, file: file, "array '\(name)': data ends inside the header length field (\(bytes.count) bytes)")
        }
        var headerLength = 0
        for i in 0..<lengthFieldSize { headerLength |= Int(bytes[8 + i]) << (8 * i) }
        guard headerLength <= maxHeaderBytes else {
            throw FormatError(.tooLarge, file: file, "array '\(name)': header of \(headerLength) bytes is over the cap of \(maxHeaderBytes) bytes (ReadLimits.maxHeaderBytes)")
        }
        return (prefix, headerLength)
    }

    /// Splits `bytes` into the parsed header and the offset where data starts.
    static func parse(_ bytes: UnsafeRawBufferPointer, name: String, file: String,
                      maxHeaderBytes: Int) throws -> (header: NpyHeader, dataOffset: Int) {
        let (prefix, headerLength) = try preamble(bytes, name: name, file: file, maxHeaderBytes: maxHeaderBytes)
        guard headerLength <= bytes.count - prefix else {
            throw FormatError(.truncated, file: file, "array '\(name)': header of \(headerLength) bytes runs past the end (\(bytes.count - prefix) bytes after the preamble)")
        }
        // numpy.load refuses headers over 10,000 bytes by default (max_header_size); one of a weight
        // array is under 200 bytes, so a longer one is padding or an attack, never a model.
        guard headerLength <= numpyMaxHeaderBytes else {
            throw FormatError(.tooLarge, file: file, "array '\(name)': header of \(headerLength) bytes is over numpy's own limit of \(numpyMaxHeaderBytes) bytes (numpy.load's max_header_size refuses it too); a weight array's header is under 200 bytes")
        }
        let text = UnsafeRawBufferPointer(rebasing: bytes[prefix..<(prefix + headerLength)])
        guard text.last == UInt8(ascii: "\n") else {
            throw FormatError(.badHeader, file: file, "array '\(name)': header does not end with a newline")
        }
        // Versions 1 and 2 are latin-1 and 3 is UTF-8, but the accepted dict subset is pure ASCII either
        // way; a byte over 0x7F is refused here with an encoding message rather than a syntax one.
        if let bad = text.firstIndex(where: { $0 >= 0x80 }) {
            let what = bytes[6] == 3 ? "a non-ASCII character (UTF-8 is allowed in 3.0 but not in the accepted dict subset)" : "a non-ASCII byte (versions 1.0/2.0 headers are ASCII)"
            throw FormatError(.badHeader, file: file, "array '\(name)': header has \(what) at byte \(bad)")
        }
        var parser = DictParser(text: text, name: name, file: file)
        let header = try parser.parse()
        return (header, prefix + headerLength)
    }

    /// The header bytes (magic, version, length, dict, padding, newline) for this array, version 1.0
    /// unless the dict is too long for its 16-bit length field.
    func encoded() -> [UInt8] {
        let dims = shape.map(String.init)
        let shapeText = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        let descr = (bigEndian ? ">" : "<") + NpyDescr.code(type)
        let dict = "{'descr': '\(descr)', 'fortran_order': \(fortranOrder ? "True" : "False"), 'shape': \(shapeText), }"
        var body = Array(dict.utf8)
        var version: UInt8 = 1
        var prefix = 10
        if body.count + 1 + prefix > Int(UInt16.max) {
            version = 2
            prefix = 12
        }
        let unpadded = prefix + body.count + 1
        body += [UInt8](repeating: UInt8(ascii: " "), count: (NpyHeader.alignment - unpadded % NpyHeader.alignment) % NpyHeader.alignment)
        body.append(UInt8(ascii: "\n"))
        var out = NpyHeader.magic + [version, 0]
        let length = body.count
        for i in 0..<(prefix - 8) { out.append(UInt8(truncatingIfNeeded: length >> (8 * i))) }
        return out + body
    }
}

/// Recursive-descent parser for the accepted header subset. Works on bytes; never builds Python values.
private struct DictParser {
    let text: UnsafeRawBufferPointer
    let name: String
    let file: String
    var at = 0

    init(text: UnsafeRawBufferPointer, name: String, file: String) {
        self.text = text
        self.name = name
        self.file = file
    }

    mutating func parse() throws -> NpyHeader {
        var descr: String?
        var fortran: Bool?
        var shape: [Int]?
        try expect("{")
        skipSpaces()
        while peek() != UInt8(ascii: "}") {
            let key = try string()
            skipSpaces()
            try expect(":")
            skipSpaces()
            switch key {
            case "descr":
                guard descr == nil else { throw duplicate(key) }
                if peek() == UInt8(ascii: "[") {
                    throw FormatError(.unsupportedDType, file: file, "array '\(name)': structured dtype (a list of fields) is not supported; weights must be a plain float or integer array")
                }
                descr = try string()
            case "fortran_order":
                guard fortran == nil else { throw duplicate(key) }
                fortran = try bool()
            case "shape":
                guard shape == nil else { throw duplicate(key) }
                shape = try tuple()
            default:
                throw FormatError(.badHeader, file: file, "array '\(name)': unexpected header key '\(key)'; expected exactly 'descr', 'fortran_order' and 'shape'")
            }
            skipSpaces()
            if peek() == UInt8(ascii: ",") {
                at += 1
                skipSpaces()
            } else if peek() != UInt8(ascii: "}") {
                throw syntax("',' or '}'")
            }
        }
        at += 1
        skipSpaces()
        guard at == text.count - 1 else { throw syntax("only spaces after '}' before the final newline") }
        guard let descr, let fortran, let shape else {
            let missing = [("descr", descr == nil), ("fortran_order", fortran == nil), ("shape", shape == nil)]
                .filter { $0.1 }.map { "'\($0.0)'" }.joined(separator: ", ")
            throw FormatError(.badHeader, file: file, "array '\(name)': header is missing \(missing); expected exactly 'descr', 'fortran_order' and 'shape'")
        }
        let (type, bigEndian) = try NpyDescr.parse(descr, name: name, file: file)
        return NpyHeader(type: type, bigEndian: bigEndian, fortranOrder: fortran, shape: shape)
    }

    private func peek() -> UInt8? { at < text.count ? text[at] : nil }

    private mutating func skipSpaces() {
        while let c = peek(), c == UInt8(ascii: " ") { at += 1 }
    }

    private mutating func expect(_ c: Unicode.Scalar) throws {
        guard peek() == UInt8(ascii: c) else { throw syntax("'\(c)'") }
        at += 1
    }

    /// A '…' string without escapes (none of the accepted values needs one).
    private mutating func string() throws -> String {
        try expect("'")
        let start = at
        while let c = peek(), c != UInt8(ascii: "'") {
            guard c != UInt8(ascii: "\\"), c != UInt8(ascii: "\n") else { throw syntax("a string without escapes or newlines") }
            at += 1
        }
        let value = String(decoding: text[start..<at], as: UTF8.self)
        try expect("'")
        return value
    }

    private mutating func bool() throws -> Bool {
        for (word, value) in [("True", true), ("False", false)] {
            let bytes = Array(word.utf8)
            if at + bytes.count <= text.count, text[at..<(at + bytes.count)].elementsEqual(bytes) {
                at += bytes.count
                return value
            }
        }
        throw syntax("True or False")
    }

    /// `()`, `(5,)` or `(3, 4)`: non-negative decimal integers without leading zeros.
    private mutating func tuple() throws -> [Int] {
        try expect("(")
        skipSpaces()
        var dims: [Int] = []
        while peek() != UInt8(ascii: ")") {
            let start = at
            while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { at += 1 }
            let digits = String(decoding: text[start..<at], as: UTF8.self)
            guard !digits.isEmpty else { throw syntax("a non-negative integer in the shape") }
            guard digits == "0" || !digits.hasPrefix("0"), let value = Int(digits) else {
                throw FormatError(.badShape, file: file, "array '\(name)': shape entry \(digits) is not a valid dimension (leading zero or over \(Int.max))")
            }
            dims.append(value)
            skipSpaces()
            if peek() == UInt8(ascii: ",") {
                at += 1
                skipSpaces()
            } else if peek() != UInt8(ascii: ")") {
                throw syntax("',' or ')' in the shape")
            } else if dims.count == 1 {
                throw syntax("a trailing ',' in a one-element shape tuple")
            }
        }
        at += 1
        return dims
    }

    private func duplicate(_ key: String) -> FormatError {
        FormatError(.duplicateKey, file: file, "array '\(name)': header key '\(key)' appears twice")
    }

    private func syntax(_ expected: String) -> FormatError {
        let found = at < text.count ? "'\(String(decoding: text[at..<min(at + 12, text.count)], as: UTF8.self))'" : "the end"
        return FormatError(.badHeader, file: file, "array '\(name)': header is not the accepted dict subset: expected \(expected) at byte \(at), found \(found)")
    }
}

/// Maps a numpy dtype string to what we load, explaining every refusal.
enum NpyDescr {
    /// The type code a writer stores `type` as. bfloat16 has no numpy type; its values are exact in f32.
    static func code(_ type: ElementType) -> String {
        switch type {
        case .float32, .bfloat16: "f4"
        case .float16: "f2"
        case .float64: "f8"
        case .int64: "i8"
        case .int32: "i4"
        }
    }

    static func parse(_ descr: String, name: String, file: String) throws -> (ElementType, bigEndian: Bool) {
        let chars = Array(descr.utf8)
        guard chars.count >= 2 else {
            throw FormatError(.unsupportedDType, file: file, "array '\(name)': dtype '\(descr)' is not a numpy type string; expected one of <f4 <f2 <f8 <i8 <i4 (or '>' big-endian)")
        }
        let order = chars[0]
        if !"<>|=".utf8.contains(order) {
            throw FormatError(.unsupportedDType, file: file, "array '\(name)': dtype '\(descr)' has no byte-order character, so the writer's byte order is unknown; numpy writes a type string such as '<f8' (little-endian) or '>f8' (big-endian): rewrite the array with numpy.save")
        }
        let kind = Character(Unicode.Scalar(chars[1]))
        let code = String(descr.dropFirst())
        let refusal: String?
        switch kind {
        case "b": refusal = "bool arrays are masks, not weights"
        case "u": refusal = "unsigned integers are not used for weights"
        case "c": refusal = "complex numbers are not weights"
        case "O": refusal = "object arrays need pickle, which can run code"
        case "S", "U", "a": refusal = "string arrays are not weights"
        case "M", "m": refusal = "datetime/timedelta arrays are not weights"
        case "V": refusal = "void/structured records are not weights"
        default: refusal = nil
        }
        if let refusal {
            throw FormatError(.unsupportedDType, file: file, "array '\(name)': dtype '\(descr)' is not supported: \(refusal); expected <f4, <f2, <f8, <i8 or <i4")
        }
        let type: ElementType
        switch code {
        case "f4": type = .float32
        case "f2": type = .float16
        case "f8": type = .float64
        case "i8": type = .int64
        case "i4": type = .int32
        default:
            throw FormatError(.unsupportedDType, file: file, "array '\(name)': dtype '\(descr)' is not supported; expected <f4, <f2, <f8, <i8 or <i4 (or '>' big-endian)")
        }
        switch order {
        case UInt8(ascii: "<"): return (type, false)
        case UInt8(ascii: ">"): return (type, true)
        default:
            throw FormatError(.unsupportedDType, file: file, "array '\(name)': dtype '\(descr)' has byte order '\(Character(Unicode.Scalar(order)))'; expected '<' (little-endian) or '>' (big-endian, byte-swapped at load)")
        }
    }
}
