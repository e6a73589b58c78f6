import Foundation
import HDFormats
import HDTestSupport
import Testing

/// Builds `.npy` images in code: any header text, any data bytes.
enum NpyBytes {
    static func image(header: String, data: [UInt8] = [], version: UInt8 = 1, pad: Bool = true) -> [UInt8] {
        var text = Array(header.utf8)
        let prefix = version == 1 ? 10 : 12
        if pad {
            text += [UInt8](repeating: 0x20, count: (64 - (prefix + text.count + 1) % 64) % 64)
            text.append(0x0A)
        }
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        for i in 0..<(prefix - 8) { out.append(UInt8(truncatingIfNeeded: text.count >> (8 * i))) }
        return out + text + data
    }

    static func dict(_ descr: String, fortran: Bool = false, shape: String) -> String {
        "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
    }

    static func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    static func be<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bigEndian) { Array($0) } }
    }

    /// The fixture formula: value(i) = i * 0.25 - 1 at row-major position i.
    static func expected(_ count: Int) -> [Float] { (0..<count).map { Float($0) * 0.25 - 1 } }
}

func decodeNpy(_ bytes: [UInt8], name: String = "weights", limits: ReadLimits = .default) throws -> Tensor {
    try bytes.withUnsafeBytes { try Npy.decode($0, name: name, file: "<memory>", owner: nil, limits: limits) }
}

func int64s(_ tensor: Tensor?) -> [Int64]? {
    if case .int64(let values)? = tensor?.values { return values }
    return nil
}

@Suite("Npy")
struct NpyTests {
    static func sample() -> [String: Tensor] {
        [
            "f32": Tensor(shape: [2, 3], floats: [1, -2.5, 3.25, 0, -0.0, .greatestFiniteMagnitude]),
            "f16": Tensor(shape: [4], values: .float32(FloatStorage(copying: [1, -2, 0.5, 65504])), storedAs: .float16),
            "f64": Tensor(shape: [1, 3], values: .float32(FloatStorage(copying: [0.1, -1e30, .infinity])), storedAs: .float64),
            "i64": Tensor(shape: [3], int64s: [.min, 0, .max]),
            "i32": Tensor(shape: [2], values: .int64([-7, Int64(Int32.max)]), storedAs: .int32),
            "scalar": Tensor(shape: [], floats: [42]),
            "empty": Tensor(shape: [0, 768], floats: []),
        ]
    }

    @Test("encode → decode keeps shape, dtype and values for every dtype, 0-d and empty arrays")
    func roundTripInMemory() throws {
        for (name, tensor) in Self.sample() {
            let bytes = try Npy.encode(tensor, name: name)
            let back = try decodeNpy(bytes, name: name)
            #expect(back.shape == tensor.shape, "\(name)")
            #expect(back.storedAs == tensor.storedAs, "\(name)")
            #expect(back.floats?.array == tensor.floats?.array, "\(name)")
            #expect(int64s(back) == int64s(tensor), "\(name)")
        }
    }

    @Test("the header is padded so data starts at a multiple of 64, version 1.0")
    func headerAlignment() throws {
        for tensor in Self.sample().values {
            let bytes = try Npy.encode(tensor)
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            #expect(bytes[6] == 1 && (10 + headerLength) % 64 == 0)
            #expect(bytes[10 + headerLength - 1] == 0x0A)
        }
    }

    @Test("a header over 64 KiB switches to version 2.0; reading it is refused past numpy's 10,000-byte limit, as numpy.load does")
    func version2WhenNeeded() throws {
        let shape = [Int](repeating: 1, count: 30_000)
        let bytes = try Npy.encode(Tensor(shape: shape, floats: [7]))
        #expect(bytes[6] == 2)
        #expect(throws: FormatError.self) { try decodeNpy(bytes) }
        do {
            _ = try decodeNpy(bytes)
        } catch let error as FormatError {
            #expect(error.kind == .tooLarge && error.message.contains("numpy's own limit of 10000 bytes"))
        }
        // A long (version 1.0) header under the limit reads back.
        let rank = [Int](repeating: 1, count: 2_000)
        let v2 = try Npy.encode(Tensor(shape: rank, floats: [7]))
        let back = try decodeNpy(v2)
        #expect(back.shape == rank && back.floats?.array == [7])
    }

    @Test("bfloat16 tensors are written as <f4 (numpy has no bfloat16) without loss")
    func bfloat16AsFloat32() throws {
        let tensor = Tensor(shape: [2], values: .float32(FloatStorage(copying: [1, -3])), storedAs: .bfloat16)
        let back = try decodeNpy(try Npy.encode(tensor))
        #expect(back.storedAs == .float32 && back.floats?.array == [1, -3])
    }

    @Test("file round trip through the atomic writer; f32 reads borrow the mapping")
    func fileRoundTrip() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        for (name, tensor) in Self.sample() {
            let path = "\(dir)/\(name).npy"
            try Npy.write(tensor, to: path)
            let back = try Npy.read(path: path)
            #expect(back.shape == tensor.shape && back.storedAs == tensor.storedAs, "\(name)")
            #expect(back.floats?.array == tensor.floats?.array && int64s(back) == int64s(tensor), "\(name)")
            if name == "f32" { #expect(back.floats?.isBorrowed == true) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.hasPrefix(".") })
    }

    @Test("fortran_order True is transposed to C order (rank 2 and 3, floats and integers)")
    func fortranOrder() throws {
        // Column-major (3, 4): memory holds element (r, c) at c * 3 + r.
        let rowMajor = (0..<12).map { Float($0) }
        var columnMajor = [Float](repeating: 0, count: 12)
        for r in 0..<3 { for c in 0..<4 { columnMajor[c * 3 + r] = rowMajor[r * 4 + c] } }
        let f = try decodeNpy(NpyBytes.image(header: NpyBytes.dict("<f4", fortran: true, shape: "(3, 4)"),
                                            data: NpyBytes.le(columnMajor.map(\.bitPattern))))
        #expect(f.shape == [3, 4] && f.floats?.array == rowMajor)

        // (2, 3, 4) i4: element (a, b, c) at a + 2 * b + 6 * c in memory, value = its C index.
        var memory = [Int32](repeating: 0, count: 24)
        for a in 0..<2 { for b in 0..<3 { for c in 0..<4 { memory[a + 2 * b + 6 * c] = Int32(a * 12 + b * 4 + c) } } }
        let i = try decodeNpy(NpyBytes.image(header: NpyBytes.dict("<i4", fortran: true, shape: "(2, 3, 4)"), data: NpyBytes.le(memory)))
        #expect(i.shape == [2, 3, 4] && int64s(i) == (0..<24).map(Int64.init))

        // Rank 1 and 0 are the same in both orders.
        let v = try decodeNpy(NpyBytes.image(header: NpyBytes.dict("<f4", fortran: true, shape: "(2,)"), data: NpyBytes.le([Float(1).bitPattern, Float(2).bitPattern])))
        #expect(v.floats?.array == [1, 2])
    }

    @Test("big-endian data is byte-swapped for every dtype")
    func bigEndian() throws {
        let values: [Float] = [1.5, -2, 1e-3]
        let f4 = try decodeNpy(NpyBytes.image(header: NpyBytes.dict(">f4", shape: "(3,)"), data: NpyBytes.be(values.map(\.bitPattern))))
        #expect(f4.floats?.array == values && f4.storedAs == .float32)
        let f8 = try decodeNpy(NpyBytes.image(header: NpyBytes.dict(">f8", shape: "(3,)"), data: NpyBytes.be(values.map { Double($0).bitPattern })))
        #expect(f8.floats?.array == values && f8.storedAs == .float64)
        let f2 = try decodeNpy(NpyBytes.image(header: NpyBytes.dict(">f2", shape: "(2,)"), data: NpyBytes.be([UInt16(0x3C00), 0xC000])))
        #expect(f2.floats?.array == [1, -2])
        let i8 = try decodeNpy(NpyBytes.image(header: NpyBytes.dict(">i8", shape: "(2,)"), data: NpyBytes.be([Int64(-3), .max])))
        #expect(int64s(i8) == [-3, .max])
        let i4 = try decodeNpy(NpyBytes.image(header: NpyBytes.dict(">i4", fortran: true, shape: "(2, 2)"), data: NpyBytes.be([Int32(0), 2, 1, 3])))
        #expect(int64s(i4) == [0, 1, 2, 3])
    }

    @Test("aligned f32 borrows the owner's bytes; no owner or an unaligned start copies")
    func zeroCopy() throws {
        let bytes = NpyBytes.image(header: NpyBytes.dict("<f4", shape: "(2,)"), data: NpyBytes.le([Float(3).bitPattern, Float(4).bitPattern]))
        final class Owner {}
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count + 1, alignment: 64)
        defer { raw.deallocate() }
        raw.copyBytes(from: bytes)
        let owner = Owner()
        let borrowed = try Npy.decode(UnsafeRawBufferPointer(rebasing: raw[0..<bytes.count]), name: "w", file: "<memory>", owner: owner)
        #expect(borrowed.floats?.isBorrowed == true && borrowed.floats?.array == [3, 4])
        UnsafeMutableRawBufferPointer(rebasing: raw[1...]).copyBytes(from: bytes)
        let shifted = try Npy.decode(UnsafeRawBufferPointer(rebasing: raw[1..<(bytes.count + 1)]), name: "w", file: "<memory>", owner: owner)
        #expect(shifted.floats?.isBorrowed == false && shifted.floats?.array == [3, 4])
        #expect(try decodeNpy(bytes).floats?.isBorrowed == false)
    }

    @Test("arrays written by numpy: fortran order, big-endian, version 2.0 and 3.0 headers")
    func numpyFixtures() throws {
        let dir = TestSupport.fixture("interop")
        let f32 = try Npy.read(path: dir + "/numpy_fortran_f32.npy")
        #expect(f32.shape == [3, 4] && f32.floats?.array == NpyBytes.expected(12))
        let f64 = try Npy.read(path: dir + "/numpy_fortran_f64_3d.npy")
        #expect(f64.shape == [2, 3, 4] && f64.storedAs == .float64 && f64.floats?.array == NpyBytes.expected(24))
        let be = try Npy.read(path: dir + "/numpy_big_endian_f32.npy")
        #expect(be.shape == [2, 3] && be.floats?.array == NpyBytes.expected(6))
        let bei = try Npy.read(path: dir + "/numpy_big_endian_i8.npy")
        #expect(int64s(bei) == (0..<5).map { Int64($0 * 3 - 5) })
        #expect(try Npy.read(path: dir + "/numpy_v2.npy").floats?.array == NpyBytes.expected(4))
        #expect(try Npy.read(path: dir + "/numpy_v3.npy").floats?.array == NpyBytes.expected(3))
    }

    @Test("numpy.load reads what Npy.write writes, value for value")
    func numpyReadsOurs() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        var paths: [String] = []
        for (name, tensor) in Self.sample() {
            paths.append("\(dir)/\(name).npy")
            try Npy.write(tensor, to: paths.last!)
        }
        let python = try TestSupport.python()
        let out = try TestSupport.run(python, [TestSupport.root.appendingPathComponent("tools/interop_read.py").path] + paths)
        let lines = out.stdout.split(separator: "\n")
        #expect(lines.count == paths.count)
        for (path, line) in zip(paths, lines) {
            let name = String(path.split(separator: "/").last!.dropLast(4))
            let read = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let info = (read?["tensors"] as? [String: Any])?[name] as? [String: Any]
            #expect(info?["shape"] as? [Int] == Self.sample()[name]!.shape, "\(name)")
            #expect(info?["sha256"] as? String == InteropDigest.sha256(try Npy.read(path: path)), "\(name)")
        }
    }
}

/// The digest `tools/interop_read.py` prints: sha256 of the values as little-endian f32 (floats) or
/// int64 (integers), row-major.
enum InteropDigest {
    static func sha256(_ tensor: Tensor) -> String {
        switch tensor.values {
        case .float32(let storage):
            FileDigest.sha256(of: UnsafeRawBufferPointer(storage.buffer))
        case .int64(let values):
            values.withUnsafeBytes { FileDigest.sha256(of: $0) }
        }
    }
}

struct NpyBadCase: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let kind: FormatError.Kind
    var testDescription: String { label }

    init(_ label: String, _ kind: FormatError.Kind, _ bytes: [UInt8]) {
        self.label = label
        self.bytes = bytes
        self.kind = kind
    }

    init(_ label: String, _ kind: FormatError.Kind, header: String, data: [UInt8] = [0, 0, 0, 0]) {
        self.init(label, kind, NpyBytes.image(header: header, data: data))
    }

    static let all: [NpyBadCase] = {
        let good = NpyBytes.image(header: NpyBytes.dict("<f4", shape: "(1,)"), data: [0, 0, 128, 63])
        var badMagic = good; badMagic[0] = 0x92
        var v4 = good; v4[6] = 4
        var v11 = good; v11[7] = 1
        var overLength = good; overLength[8] = 0xFF; overLength[9] = 0xFF
        var nonASCII = good; nonASCII[20] = 0xE9
        let d = NpyBytes.dict
        return [
            NpyBadCase("empty", .tooSmall, []),
            NpyBadCase("shorter than the preamble", .tooSmall, Array(good.prefix(7))),
            NpyBadCase("bad magic", .wrongFormat, badMagic),
            NpyBadCase("version 4.0", .badHeader, v4),
            NpyBadCase("version 1.1", .badHeader, v11),
            NpyBadCase("v2 length field cut off", .truncated, [0x93] + Array("NUMPY".utf8) + [2, 0, 16, 0]),
            NpyBadCase("header length past the end", .truncated, overLength),
            NpyBadCase("header over the cap", .tooLarge, NpyBytes.image(header: d("<f4", false, "(1,)") + String(repeating: " ", count: 70_000), data: [0, 0, 0, 0], version: 2)),
            NpyBadCase("no final newline", .badHeader, NpyBytes.image(header: d("<f4", false, "(1,)") + "  ", data: [0, 0, 0, 0], pad: false)),
            NpyBadCase("non-ASCII byte in a 1.0 header", .badHeader, nonASCII),
            NpyBadCase("extra key", .badHeader, header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1, }"),
            NpyBadCase("missing shape", .badHeader, header: "{'descr': '<f4', 'fortran_order': False, }"),
            NpyBadCase("missing descr", .badHeader, header: "{'fortran_order': False, 'shape': (1,), }"),
            NpyBadCase("duplicate key", .duplicateKey, header: "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"),
            NpyBadCase("not a dict", .badHeader, header: "['descr', '<f4']"),
            NpyBadCase("expression in shape", .badHeader, header: d("<f4", false, "(2-1,)")),
            NpyBadCase("function call", .badHeader, header: "{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (1,), }"),
            NpyBadCase("double-quoted key", .badHeader, header: "{\"descr\": '<f4', 'fortran_order': False, 'shape': (1,), }"),
            NpyBadCase("fortran_order not a bool", .badHeader, header: "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }"),
            NpyBadCase("shape (1) is not a tuple", .badHeader, header: d("<f4", false, "(1)")),
            NpyBadCase("negative dimension", .badHeader, header: d("<f4", false, "(-1,)")),
            NpyBadCase("dimension over Int.max", .badShape, header: d("<f4", false, "(99999999999999999999,)")),
            NpyBadCase("leading zero dimension", .badShape, header: d("<f4", false, "(01,)")),
            NpyBadCase("byte size overflows", .badShape, header: d("<f4", false, "(4294967296, 4294967296)")),
            NpyBadCase("text after the dict", .badHeader, header: d("<f4", false, "(1,)") + " x"),
            NpyBadCase("object dtype", .unsupportedDType, header: d("|O", false, "(1,)")),
            NpyBadCase("descr without byte order (f4)", .unsupportedDType, header: d("f4", false, "(1,)")),
            NpyBadCase("descr as a dtype name (float32)", .unsupportedDType, header: d("float32", false, "(1,)")),
            NpyBadCase("structured dtype", .unsupportedDType, header: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"),
            NpyBadCase("bytes string dtype", .unsupportedDType, header: d("|S4", false, "(1,)")),
            NpyBadCase("unicode string dtype", .unsupportedDType, header: d("<U1", false, "(1,)")),
            NpyBadCase("complex dtype", .unsupportedDType, header: d("<c8", false, "(1,)")),
            NpyBadCase("bool dtype", .unsupportedDType, header: d("|b1", false, "(4,)")),
            NpyBadCase("datetime dtype", .unsupportedDType, header: d("<M8[s]", false, "(1,)")),
            NpyBadCase("unsigned dtype", .unsupportedDType, header: d("|u1", false, "(4,)")),
            NpyBadCase("void dtype", .unsupportedDType, header: d("|V4", false, "(1,)")),
            NpyBadCase("native byte order '='", .unsupportedDType, header: d("=f4", false, "(1,)")),
            NpyBadCase("unknown float width", .unsupportedDType, header: d("<f16", false, "(1,)")),
            NpyBadCase("truncated data", .truncated, header: d("<f4", false, "(2,)")),
            NpyBadCase("trailing data", .trailingBytes, header: d("<f4", false, "(1,)"), data: [0, 0, 0, 0, 0]),
        ]
    }()
}

@Suite("Npy bad input")
struct NpyBadInputTests {
    @Test(arguments: NpyBadCase.all)
    func refused(_ bad: NpyBadCase) {
        let limits = ReadLimits(maxHeaderBytes: 65_536)
        do {
            _ = try decodeNpy(bad.bytes, name: "layer.weight", limits: limits)
            Issue.record("\(bad.label): accepted")
        } catch let error as FormatError {
            #expect(error.kind == bad.kind, "\(bad.label): \(error)")
            #expect(error.message.contains("'layer.weight'"), "\(bad.label): \(error)")
        } catch {
            Issue.record("\(bad.label): \(error)")
        }
    }

    @Test("files: missing, a directory, an LFS pointer, an npz given as npy")
    func files() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        try Data("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n".utf8).write(to: URL(fileURLWithPath: dir + "/lfs.npy"))
        try Data([0x50, 0x4B, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)).write(to: URL(fileURLWithPath: dir + "/zip.npy"))
        let cases: [(String, FormatError.Kind)] = [
            (dir + "/missing.npy", .notFound), (dir, .notRegularFile), (dir + "/lfs.npy", .gitLFSPointer), (dir + "/zip.npy", .wrongFormat),
        ]
        for (path, kind) in cases {
            #expect(throws: FormatError.self) { try Npy.read(path: path) }
            do { _ = try Npy.read(path: path) } catch let error as FormatError { #expect(error.kind == kind && error.file == path) }
        }
    }
}
