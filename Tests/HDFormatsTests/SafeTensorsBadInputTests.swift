import Foundation
import HDFormats
import Testing

/// Builders shared by the safetensors tests (prefixed so they cannot clash with other suites' helpers).
enum STFixture {
    /// A safetensors image: `length` (default: the header's byte count) as u64 LE, the header, the data.
    static func image(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        image(Array(header.utf8), data: data, length: length)
    }

    static func image(_ header: [UInt8], data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian) { out += $0 }
        return out + header + data
    }

    /// A one-tensor header `{"w":{<entry>}}`.
    static func entry(_ body: String) -> String { "{\"w\":{\(body)}}" }

    static func floats(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    /// A fresh empty directory under the system temp dir.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "hd-st-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

struct STBadCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let kind: FormatError.Kind
    /// Substrings the message must contain (the tensor, the field, the cap …).
    let mentions: [String]
    var limits: ReadLimits = .default

    var testDescription: String { name }
}

private let f32Entry = "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"
private let oneFloat = STFixture.floats([1])

private let inMemoryCases: [STBadCase] = [
    // The length field
    STBadCase(name: "header length 2^63", bytes: STFixture.image("{}", length: 1 << 63), kind: .badHeader, mentions: ["2^63"]),
    STBadCase(name: "header length u64 max", bytes: STFixture.image("{}", length: .max), kind: .badHeader, mentions: ["2^63"]),
    STBadCase(name: "header length over cap", bytes: STFixture.image("{}", length: 17 << 20), kind: .tooLarge, mentions: ["ReadLimits.maxHeaderBytes", "16777216"]),
    STBadCase(name: "header past end of file", bytes: STFixture.image("{}", length: 100), kind: .truncated, mentions: ["100", "2 bytes follow"]),
    STBadCase(name: "zero-length header", bytes: STFixture.image(""), kind: .badHeader, mentions: ["not valid JSON"]),
    // The JSON text
    STBadCase(name: "header not UTF-8", bytes: STFixture.image(Array("{\"w".utf8) + [0xFF] + Array("\":{}}".utf8)), kind: .badHeader, mentions: ["UTF-8", "0xff"]),
    STBadCase(name: "overlong UTF-8", bytes: STFixture.image([0x7B, 0x22, 0xC0, 0xAF, 0x22, 0x3A, 0x7B, 0x7D, 0x7D]), kind: .badHeader, mentions: ["UTF-8"]),
    STBadCase(name: "encoded surrogate UTF-8", bytes: STFixture.image([0x7B, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x3A, 0x7B, 0x7D, 0x7D]), kind: .badHeader, mentions: ["UTF-8"]),
    STBadCase(name: "header not JSON", bytes: STFixture.image("{\"w\": }"), kind: .badHeader, mentions: ["not valid JSON", "byte 6"]),
    STBadCase(name: "header plain text", bytes: STFixture.image("hello world"), kind: .badHeader, mentions: ["not valid JSON"]),
    STBadCase(name: "header trailing garbage", bytes: STFixture.image("{} x"), kind: .badHeader, mentions: ["end of input"]),
    STBadCase(name: "header NUL padding", bytes: STFixture.image("{}\u{0}\u{0}"), kind: .badHeader, mentions: ["end of input"]),
    STBadCase(name: "header unterminated", bytes: STFixture.image("{\"w\":{\"dtype\":\"F3"), kind: .badHeader, mentions: ["closing"]),
    STBadCase(name: "raw control char in string", bytes: STFixture.image("{\"w\u{1}\":{}}"), kind: .badHeader, mentions: ["control character"]),
    STBadCase(name: "lone surrogate escape", bytes: STFixture.image("{\"\\udc00\":{}}"), kind: .badHeader, mentions: ["surrogate"]),
    STBadCase(name: "unpaired high surrogate", bytes: STFixture.image("{\"\\ud800x\":{}}"), kind: .badHeader, mentions: ["surrogate"]),
    STBadCase(name: "bad escape", bytes: STFixture.image("{\"\\x\":{}}"), kind: .badHeader, mentions: ["escape", "\\u"]),
    STBadCase(name: "nesting too deep", bytes: STFixture.image("{\"w\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}"), kind: .badHeader, mentions: ["deeper"]),
    STBadCase(name: "header not an object", bytes: STFixture.image("[1,2]"), kind: .badHeader, mentions: ["JSON object", "an array of 2"]),
    STBadCase(name: "duplicate key top level", bytes: STFixture.image("{\"w\":{\(f32Entry)},\"w\":{\(f32Entry)}}", data: oneFloat), kind: .duplicateKey, mentions: ["\"w\"", "top-level"]),
    STBadCase(name: "duplicate key in entry", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]"), data: oneFloat), kind: .duplicateKey, mentions: ["\"dtype\"", "\"w\""]),
    STBadCase(name: "duplicate key in metadata", bytes: STFixture.image("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}"), kind: .duplicateKey, mentions: ["\"k\"", "__metadata__"]),
    // __metadata__
    STBadCase(name: "metadata value not a string", bytes: STFixture.image("{\"__metadata__\":{\"k\":1}}"), kind: .badMetadata, mentions: ["\"k\"", "the number 1"]),
    STBadCase(name: "metadata nested object", bytes: STFixture.image("{\"__metadata__\":{\"k\":{}}}"), kind: .badMetadata, mentions: ["\"k\""]),
    STBadCase(name: "metadata not an object", bytes: STFixture.image("{\"__metadata__\":\"x\"}"), kind: .badMetadata, mentions: ["__metadata__", "the string \"x\""]),
    // Entries
    STBadCase(name: "entry not an object", bytes: STFixture.image("{\"w\":[1]}"), kind: .badEntry, mentions: ["\"w\"", "an array of 1"]),
    STBadCase(name: "missing dtype", bytes: STFixture.image(STFixture.entry("\"shape\":[1],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badEntry, mentions: ["\"w\"", "dtype"]),
    STBadCase(name: "missing shape", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"data_offsets\":[0,4]"), data: oneFloat), kind: .badEntry, mentions: ["\"w\"", "shape"]),
    STBadCase(name: "missing data_offsets", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1]"), data: oneFloat), kind: .badEntry, mentions: ["\"w\"", "data_offsets"]),
    STBadCase(name: "unknown field", bytes: STFixture.image(STFixture.entry(f32Entry + ",\"extra\":0"), data: oneFloat), kind: .badEntry, mentions: ["\"w\"", "\"extra\""]),
    STBadCase(name: "dtype not a string", bytes: STFixture.image(STFixture.entry("\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badEntry, mentions: ["\"w\"", "dtype"]),
    STBadCase(name: "unknown dtype", bytes: STFixture.image(STFixture.entry("\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]"), data: oneFloat), kind: .unsupportedDType, mentions: ["\"w\"", "unknown dtype", "Q7"]),
    STBadCase(name: "lowercase dtype", bytes: STFixture.image(STFixture.entry("\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]"), data: oneFloat), kind: .unsupportedDType, mentions: ["\"w\"", "f32"]),
    STBadCase(name: "unconvertible U8", bytes: STFixture.image(STFixture.entry("\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]"), data: oneFloat), kind: .unsupportedDType, mentions: ["\"w\"", "U8", "cannot be converted"]),
    STBadCase(name: "unconvertible BOOL", bytes: STFixture.image(STFixture.entry("\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]"), data: oneFloat), kind: .unsupportedDType, mentions: ["\"w\"", "BOOL"]),
    STBadCase(name: "unconvertible F8_E4M3", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]"), data: oneFloat), kind: .unsupportedDType, mentions: ["\"w\"", "F8_E4M3"]),
    STBadCase(name: "unconvertible I16", bytes: STFixture.image(STFixture.entry("\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[0,4]"), data: oneFloat), kind: .unsupportedDType, mentions: ["\"w\"", "I16"]),
    // Shapes
    STBadCase(name: "shape negative", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "shape[0]", "-1"]),
    STBadCase(name: "shape fractional", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "1.5"]),
    STBadCase(name: "shape integral float", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "1.0"]),
    STBadCase(name: "shape exponent", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "1e0"]),
    STBadCase(name: "shape huge", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "99999999999999999999"]),
    STBadCase(name: "shape string", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "the string \"1\""]),
    STBadCase(name: "shape not an array", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "shape"]),
    STBadCase(name: "numel overflow", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "overflow"]),
    STBadCase(name: "byte size overflow", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badShape, mentions: ["\"w\"", "overflow"]),
    // Offsets
    STBadCase(name: "end - begin != numel*itemsize", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]"), data: oneFloat), kind: .badOffsets, mentions: ["\"w\"", "expected 8"]),
    STBadCase(name: "offsets reversed", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]"), data: oneFloat), kind: .badOffsets, mentions: ["\"w\"", "[4, 0]"]),
    STBadCase(name: "offsets of three", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]"), data: oneFloat), kind: .badOffsets, mentions: ["\"w\"", "an array of 3"]),
    STBadCase(name: "offsets negative", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]"), data: oneFloat), kind: .badOffsets, mentions: ["\"w\"", "data_offsets"]),
    STBadCase(name: "offsets hole", bytes: STFixture.image("{\"a\":{\(f32Entry)},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", data: STFixture.floats([1, 2, 3])), kind: .badOffsets, mentions: ["\"b\"", "hole", "4..<8"]),
    STBadCase(name: "offsets not starting at 0", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]"), data: STFixture.floats([1, 2])), kind: .badOffsets, mentions: ["\"w\"", "hole"]),
    STBadCase(name: "offsets overlap", bytes: STFixture.image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data: STFixture.floats([1, 2])), kind: .badOffsets, mentions: ["\"a\"", "\"b\"", "overlapping"]),
    STBadCase(name: "two tensors share bytes", bytes: STFixture.image("{\"a\":{\(f32Entry)},\"b\":{\(f32Entry)}}", data: oneFloat), kind: .badOffsets, mentions: ["overlapping"]),
    STBadCase(name: "empty tensor inside another", bytes: STFixture.image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", data: STFixture.floats([1, 2])), kind: .badOffsets, mentions: ["\"b\"", "overlapping"]),
    STBadCase(name: "trailing bytes", bytes: STFixture.image(STFixture.entry(f32Entry), data: STFixture.floats([1, 2])), kind: .trailingBytes, mentions: ["4 trailing bytes"]),
    STBadCase(name: "data but no tensors", bytes: STFixture.image("{}", data: [0]), kind: .trailingBytes, mentions: ["1 trailing bytes"]),
    STBadCase(name: "missing bytes", bytes: STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), data: oneFloat), kind: .truncated, mentions: ["\"w\"", "only 4 bytes"]),
    // Caps
    STBadCase(name: "too many tensors", bytes: STFixture.image("{\"a\":{\(f32Entry)},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", data: STFixture.floats([1, 2])), kind: .tooLarge, mentions: ["2 tensors", "ReadLimits.maxTensorCount"], limits: ReadLimits(maxTensorCount: 1)),
    STBadCase(name: "header over custom cap", bytes: STFixture.image("{}      "), kind: .tooLarge, mentions: ["cap of 4"], limits: ReadLimits(maxHeaderBytes: 4)),
    // Not safetensors at all
    STBadCase(name: "empty", bytes: [], kind: .tooSmall, mentions: ["0 bytes"]),
    STBadCase(name: "shorter than 8 bytes", bytes: [1, 0, 0], kind: .tooSmall, mentions: ["3 bytes", "8-byte"]),
    STBadCase(name: "Git LFS pointer", bytes: Array("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 438000000\n".utf8), kind: .gitLFSPointer, mentions: ["Git LFS", "git lfs pull"]),
    STBadCase(name: "raw pickle", bytes: [0x80, 0x02, 0x7D, 0x71, 0x00, 0x2E, 0, 0, 0, 0], kind: .pickle, mentions: ["pickle", "convert"]),
    STBadCase(name: "PyTorch zip", bytes: [0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 26) + Array("archive/data.pkl".utf8), kind: .pickle, mentions: ["PyTorch"]),
    STBadCase(name: "npy magic", bytes: [0x93] + Array("NUMPY".utf8) + [1, 0, 0, 0], kind: .wrongFormat, mentions: [".npy"]),
]

@Suite("SafeTensors bad input")
struct SafeTensorsBadInputTests {
    @Test("in-memory image is refused", arguments: inMemoryCases)
    func refusesBadImage(_ c: STBadCase) {
        do {
            let set = try SafeTensors.read(bytes: c.bytes, limits: c.limits)
            Issue.record("expected \(c.kind), loaded \(set.tensors.count) tensors")
        } catch let e as FormatError {
            #expect(e.kind == c.kind, "\(e.message)")
            #expect(e.file == "<memory>")
            for m in c.mentions { #expect(e.message.contains(m), "message lacks \(m): \(e.message)") }
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }

    @Test("the same bad images are refused from files, naming the path", arguments: inMemoryCases)
    func refusesBadFile(_ c: STBadCase) throws {
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/bad.safetensors"
        try STFixture.write(c.bytes, to: path)
        let error = #expect(throws: FormatError.self) { try SafeTensors.read(path: path, limits: c.limits) }
        #expect(error?.kind == c.kind, "\(error?.message ?? "")")
        #expect(error?.file == path)
    }

    enum PathCase: String, CaseIterable, Sendable { case missing, directory, overFileCap }

    @Test("paths that are not a readable model file", arguments: PathCase.allCases)
    func refusesPath(_ c: PathCase) throws {
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path: String
        var limits = ReadLimits.default
        let expected: FormatError.Kind
        switch c {
        case .missing:
            path = dir + "/nope.safetensors"
            expected = .notFound
        case .directory:
            path = dir
            expected = .notRegularFile
        case .overFileCap:
            path = dir + "/big.safetensors"
            try STFixture.write(STFixture.image(STFixture.entry(f32Entry), data: oneFloat), to: path)
            limits.maxFileBytes = 16
            expected = .tooLarge
        }
        let error = #expect(throws: FormatError.self) { try SafeTensors.read(path: path, limits: limits) }
        #expect(error?.kind == expected)
        #expect(error?.file == path)
    }

    @Test("data at an unaligned offset loads correctly by copying")
    func unalignedData() throws {
        // Header of 37 bytes: the data starts at file offset 45, not a multiple of 4.
        var header = STFixture.entry("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]")
        while (8 + header.utf8.count) % 4 != 1 { header += " " }
        let bytes = STFixture.image(header, data: STFixture.floats([1.5, -2, 3.25]))
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/unaligned.safetensors"
        try STFixture.write(bytes, to: path)
        let set = try SafeTensors.read(path: path)
        let storage = try #require(set["w"]?.floats)
        #expect(storage.array == [1.5, -2, 3.25])
        #expect(!storage.isBorrowed)
    }

    @Test("an integer that fits Int but not the data is refused without allocating")
    func hugeShapeDoesNotAllocate() {
        // 2^40 floats would be 4 TiB; the offsets check must fire before any allocation.
        let bytes = STFixture.image(STFixture.entry("\"dtype\":\"F32\",\"shape\":[1099511627776],\"data_offsets\":[0,4398046511104]"), data: oneFloat)
        let error = #expect(throws: FormatError.self) { try SafeTensors.read(bytes: bytes) }
        #expect(error?.kind == .truncated)
    }
}
