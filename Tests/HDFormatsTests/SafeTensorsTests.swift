import Foundation
import HDFormats
import HDTestSupport
import Testing

@Suite("SafeTensors")
struct SafeTensorsTests {
    /// Every dtype the writer supports, an empty tensor with a 0 dim, a scalar and awkward metadata.
    static func sampleSet() -> TensorSet {
        var set = TensorSet(metadata: ["hd.format": "1", "quote\"and\\slash": "line\nbreak ü 日本 🙂", "": "empty key"])
        set["b.f32"] = Tensor(shape: [2, 3], floats: [1, -2.5, 3.25, 0, -0.0, .greatestFiniteMagnitude])
        set["a.f16"] = Tensor(shape: [4], values: .float32(FloatStorage(copying: [1, -2, 0.5, 65504])), storedAs: .float16)
        set["c.bf16"] = Tensor(shape: [2, 2], values: .float32(FloatStorage(copying: [1, -3, 256, 0.5])), storedAs: .bfloat16)
        set["d.f64"] = Tensor(shape: [1, 3], values: .float32(FloatStorage(copying: [0.1, -1e30, .infinity])), storedAs: .float64)
        set["e.i64"] = Tensor(shape: [3], int64s: [.min, 0, .max])
        set["f.i32"] = Tensor(shape: [2], values: .int64([-7, Int64(Int32.max)]), storedAs: .int32)
        set["g.empty"] = Tensor(shape: [0, 768], floats: [])
        set["h.scalar"] = Tensor(shape: [], floats: [42])
        set["Z.upper"] = Tensor(shape: [1], floats: [9])
        return set
    }

    static func floats(_ set: TensorSet, _ name: String) -> [Float]? { set[name]?.floats?.array }

    static func int64s(_ set: TensorSet, _ name: String) -> [Int64]? {
        if case .int64(let v)? = set[name]?.values { return v }
        return nil
    }

    @Test("round trip through a file keeps shapes, dtypes, values and metadata")
    func roundTrip() throws {
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.safetensors"
        let original = Self.sampleSet()
        try SafeTensors.write(original, to: path)
        let back = try SafeTensors.read(path: path)

        #expect(back.metadata == original.metadata)
        #expect(back.sortedNames == original.sortedNames)
        for name in original.sortedNames {
            #expect(back[name]?.shape == original[name]?.shape, "\(name)")
            #expect(back[name]?.storedAs == original[name]?.storedAs, "\(name)")
        }
        // All sample values are exactly representable in their storage type.
        for name in ["b.f32", "a.f16", "c.bf16", "g.empty", "h.scalar", "Z.upper"] {
            #expect(Self.floats(back, name)?.map(\.bitPattern) == Self.floats(original, name)?.map(\.bitPattern), "\(name)")
        }
        #expect(Self.floats(back, "d.f64") == [Float(0.1), -1e30, .infinity])
        #expect(Self.int64s(back, "e.i64") == [.min, 0, .max])
        #expect(Self.int64s(back, "f.i32") == [-7, Int64(Int32.max)])
        // F32 data sits 8-byte aligned after the padded header, so it is borrowed from the mapping.
        #expect(back["b.f32"]?.floats?.isBorrowed == true)
        #expect(back["a.f16"]?.floats?.isBorrowed == false)
    }

    @Test("writing is deterministic and matches serialize")
    func deterministic() throws {
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SafeTensors.write(Self.sampleSet(), to: dir + "/1.safetensors")
        try SafeTensors.write(Self.sampleSet(), to: dir + "/2.safetensors")
        let one = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/1.safetensors")))
        let two = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/2.safetensors")))
        #expect(one == two)
        #expect(try SafeTensors.serialize(Self.sampleSet()) == one)

        let headerLength = one[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
        let header = String(decoding: one[8..<(8 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{\"__metadata__\":{\"\":\"empty key\",\"hd.format\":\"1\","))
        // Byte order: "Z.upper" (0x5A) sorts before "a.f16".
        let z = try #require(header.range(of: "\"Z.upper\""))
        let a = try #require(header.range(of: "\"a.f16\""))
        #expect(z.lowerBound < a.lowerBound)
        #expect(header.contains("\"a.f16\":{\"data_offsets\":[4,12],\"dtype\":\"F16\",\"shape\":[4]}"))
        #expect(header.trimmingCharacters(in: [" "]).hasSuffix("}"))
        // No temp files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["1.safetensors", "2.safetensors"])
    }

    @Test("an empty set round-trips")
    func emptySet() throws {
        let bytes = try SafeTensors.serialize(TensorSet())
        #expect(bytes == STFixture.image("{}      "))
        let back = try SafeTensors.read(bytes: bytes)
        #expect(back.tensors.isEmpty && back.metadata.isEmpty)
    }

    @Test("reads a file written by the Python safetensors package")
    func pythonInterop() throws {
        let root = String(#filePath).components(separatedBy: "/Tests/")[0]
        let set = try SafeTensors.read(path: root + "/fixtures/interop/python_safetensors.safetensors")
        #expect(set.metadata == ["format": "np", "generator": "tools/make_safetensors_interop_fixture.py"])
        #expect(set.tensors.count == 7)
        #expect(set["a.f32"]?.shape == [2, 3])
        #expect(Self.floats(set, "a.f32") == [-1, -0.5, 0, 0.5, 1, 1.5])
        #expect(set["b.f16"]?.storedAs == .float16)
        let f16 = try #require(Self.floats(set, "b.f16"))
        #expect(f16.map(\.bitPattern) == [0, 1, -2, 0.5, 65504, 0x1p-24, .infinity, -0.0].map { (x: Float) in x.bitPattern })
        #expect(set["c.f64"]?.shape == [1, 2] && Self.floats(set, "c.f64") == [1.5, -2.25])
        #expect(Self.int64s(set, "d.i64") == [-1, 0, 1, 2] && set["d.i64"]?.storedAs == .int64)
        #expect(Self.int64s(set, "e.i32") == [7, -8] && set["e.i32"]?.storedAs == .int32)
        #expect(set["f.empty"]?.shape == [0, 3] && set["f.empty"]?.elementCount == 0)
        #expect(set["g.scalar"]?.shape == [] && Self.floats(set, "g.scalar") == [3.25])
    }

    @Test("the Python safetensors package reads what we write")
    func pythonReadsOurs() throws {
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ours.safetensors"
        let set = Self.sampleSet()
        try SafeTensors.write(set, to: path)
        // One line per tensor: name, dtype, shape, values (f64 bit patterns in hex, or ints); numpy
        // has no bfloat16, so BF16 values are skipped (safe_open still validates the whole header).
        let script = """
            import json, struct, sys
            from safetensors import safe_open
            with safe_open(sys.argv[1], framework="np") as f:
                print(json.dumps(f.metadata()))
                for k in sorted(f.keys()):
                    s = f.get_slice(k)
                    dt = s.get_dtype()
                    if dt == "BF16":
                        vals = "-"
                    elif dt.startswith("I"):
                        vals = ",".join(str(int(v)) for v in f.get_tensor(k).ravel())
                    else:
                        vals = ",".join("%016x" % struct.unpack("<Q", struct.pack("<d", float(v)))[0] for v in f.get_tensor(k).ravel())
                    print(k, dt, ",".join(map(str, s.get_shape())), vals)
            """
        let out = try TestSupport.run(try TestSupport.python(), ["-c", script, path]).stdout
        var lines = out.split(separator: "\n").map(String.init)
        let metadataLine = Array(lines.removeFirst().utf8)
        let metadata = try metadataLine.withUnsafeBytes { try StrictJSON.parse($0, file: "python") }
        guard case .object(let object) = metadata else { Issue.record("metadata: \(metadataLine)"); return }
        #expect(Dictionary(uniqueKeysWithValues: object.members.map { ($0.key, $0.value.stringValue ?? "?") }) == set.metadata)

        var expected: [String] = []
        for name in set.sortedNames.sorted() {
            guard let t = set[name] else { continue }
            let values: String
            switch t.values {
            case .int64(let v): values = v.map(String.init).joined(separator: ",")
            case .float32 where t.storedAs == .bfloat16: values = "-"
            case .float32(let f):
                values = f.array.map { x in
                    let stored = t.storedAs == .float16 ? ElementConversion.float(fromFloat16Bits: ElementConversion.float16Bits(x)) : x
                    let hex = String(Double(stored).bitPattern, radix: 16)
                    return String(repeating: "0", count: 16 - hex.count) + hex
                }.joined(separator: ",")
            }
            expected.append("\(name) \(t.storedAs.rawValue) \(t.shape.map(String.init).joined(separator: ",")) \(values)")
        }
        #expect(lines == expected)
    }

    // MARK: Writer failures leave nothing behind

    @Test("a missing destination directory fails cleanly")
    func missingDirectory() throws {
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = #expect(throws: FormatError.self) { try SafeTensors.write(Self.sampleSet(), to: dir + "/no/such/dir/m.safetensors") }
        #expect(error?.kind == .io)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    static let unwritable: [(String, TensorSet, FormatError.Kind)] = [
        ("shape disagrees with values", TensorSet(tensors: ["w": Tensor(shape: [2, 2], floats: [1, 2, 3])]), .badShape),
        ("reserved name", TensorSet(tensors: ["__metadata__": Tensor(shape: [1], floats: [1])]), .badEntry),
        ("I32 overflow", TensorSet(tensors: ["w": Tensor(shape: [1], values: .int64([1 << 40]), storedAs: .int32)]), .unsupportedDType),
        ("floats stored as I64", TensorSet(tensors: ["w": Tensor(shape: [1], values: .float32(FloatStorage(copying: [1])), storedAs: .int64)]), .unsupportedDType),
        ("integers stored as F32", TensorSet(tensors: ["w": Tensor(shape: [1], values: .int64([1]), storedAs: .float32)]), .unsupportedDType),
    ]

    @Test("an unwritable set leaves the existing destination untouched", arguments: 0..<unwritable.count)
    func unwritableSet(_ index: Int) throws {
        let (label, set, kind) = Self.unwritable[index]
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.safetensors"
        try SafeTensors.write(Self.sampleSet(), to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let error = #expect(throws: FormatError.self, "\(label)") { try SafeTensors.write(set, to: path) }
        #expect(error?.kind == kind, "\(label): \(error?.message ?? "")")
        #expect(error?.message.contains("\"") == true, "names the tensor: \(error?.message ?? "")")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m.safetensors"])
    }

    @Test("a destination that is currently mapped is replaced, not truncated")
    func overwriteMapped() throws {
        let dir = try STFixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.safetensors"
        try SafeTensors.write(Self.sampleSet(), to: path)
        let mapped = try SafeTensors.read(path: path)
        try SafeTensors.write(TensorSet(tensors: ["b.f32": Tensor(shape: [1], floats: [7])]), to: path)
        #expect(Self.floats(mapped, "b.f32") == [1, -2.5, 3.25, 0, -0.0, .greatestFiniteMagnitude])
        #expect(Self.floats(try SafeTensors.read(path: path), "b.f32") == [7])
    }
}

@Suite("Element conversion")
struct ElementConversionTests {
    static let float16Table: [(UInt16, Float)] = [
        (0x0000, 0), (0x8000, -0.0), (0x3C00, 1), (0xC000, -2), (0x3800, 0.5), (0x7BFF, 65504),
        (0x0001, 0x1p-24), (0x03FF, 0x1.ff8p-15), (0x0400, 0x1p-14), (0x8001, -0x1p-24),
        (0x3555, 0x1.554p-2), (0x7C00, .infinity), (0xFC00, -.infinity),
    ]

    @Test("binary16 → f32 matches the table, and every non-NaN pattern survives a round trip")
    func float16Decode() {
        for (bits, value) in Self.float16Table {
            #expect(ElementConversion.float(fromFloat16Bits: bits).bitPattern == value.bitPattern, "0x\(String(bits, radix: 16))")
            #expect(ElementConversion.float16Bits(value) == bits)
        }
        #expect(ElementConversion.float(fromFloat16Bits: 0x7E00).isNaN)
        #expect(ElementConversion.float(fromFloat16Bits: 0x7C01).isNaN)
        for bits in UInt16.min...UInt16.max {
            let f = ElementConversion.float(fromFloat16Bits: bits)
            let exponentAllOnes = bits & 0x7C00 == 0x7C00
            if exponentAllOnes && bits & 0x03FF != 0 {
                #expect(f.isNaN)
            } else if ElementConversion.float16Bits(f) != bits {
                Issue.record("0x\(String(bits, radix: 16)) did not round-trip")
            }
        }
    }

    static let roundingToFloat16: [(Float, UInt16)] = [
        (1 + 0x1p-11, 0x3C00),       // tie → even (down)
        (1 + 3 * 0x1p-11, 0x3C02),   // tie → even (up)
        (1 + 0x1p-11 + 0x1p-20, 0x3C01),
        (65519, 0x7BFF), (65520, 0x7C00), (1e10, 0x7C00), (-1e10, 0xFC00),
        (0x1p-25, 0x0000),           // half the smallest subnormal: tie → even (zero)
        (0x1.8p-25, 0x0001), (0x1.8p-24, 0x0002), (1e-10, 0x0000), (-1e-10, 0x8000),
        (0x1.ffcp-15, 0x0400),       // largest subnormal + half ulp rounds up to the smallest normal
        (.nan, 0x7E00), (.greatestFiniteMagnitude, 0x7C00),
    ]

    @Test("f32 → binary16 rounds to nearest even", arguments: 0..<roundingToFloat16.count)
    func float16Rounding(_ i: Int) {
        let (value, bits) = Self.roundingToFloat16[i]
        #expect(ElementConversion.float16Bits(value) == bits, "\(value)")
    }

    @Test("f32 → binary16 agrees with Swift's Float16 on a million patterns")
    func float16AgreesWithStdlib() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<1_000_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: state >> 32))
            if f.isNaN { continue }
            let want = Float16(f).bitPattern
            if ElementConversion.float16Bits(f) != want {
                Issue.record("\(f): got 0x\(String(ElementConversion.float16Bits(f), radix: 16)) want 0x\(String(want, radix: 16))")
                return
            }
        }
    }

    static let roundingToBFloat16: [(Float, UInt16)] = [
        (1, 0x3F80), (-2, 0xC000), (1 + 0x1p-8, 0x3F80), (1 + 3 * 0x1p-8, 0x3F82), (1 + 0x1p-8 + 0x1p-20, 0x3F81),
        (.greatestFiniteMagnitude, 0x7F80), (.infinity, 0x7F80), (-.infinity, 0xFF80), (0x1p-133, 0x0001),
        (Float(bitPattern: 0x7F80_0001), 0x7FC0),   // signalling NaN stays NaN instead of rounding to Inf
    ]

    @Test("f32 ↔ bfloat16 table", arguments: 0..<roundingToBFloat16.count)
    func bfloat16(_ i: Int) {
        let (value, bits) = Self.roundingToBFloat16[i]
        #expect(ElementConversion.bfloat16Bits(value) == bits, "\(value)")
        if !value.isNaN && value.isFinite && bits & 0x7F80 != 0x7F80 {
            #expect(ElementConversion.float(fromBFloat16Bits: bits) == Float(bitPattern: UInt32(bits) << 16))
        }
    }

    @Test("buffer kernels read unaligned little-endian sources")
    func unalignedBuffers() {
        var raw = [UInt8](repeating: 0xAA, count: 1 + 3 * 8)
        let halves: [UInt16] = [0x3C00, 0xC000, 0x0001]
        let doubles: [Double] = [0.1, -1e300, 2.5]
        var out = [Float](repeating: 0, count: 3)
        for (i, h) in halves.enumerated() { raw[1 + 2 * i] = UInt8(h & 0xFF); raw[2 + 2 * i] = UInt8(h >> 8) }
        raw.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { ElementConversion.float16ToFloat32(src.baseAddress! + 1, count: 3, into: $0) } }
        #expect(out == [1, -2, 0x1p-24])
        raw.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { ElementConversion.bfloat16ToFloat32(src.baseAddress! + 1, count: 3, into: $0) } }
        #expect(out == [Float(bitPattern: 0x3C00_0000), -2, Float(bitPattern: 0x0001_0000)])
        for (i, d) in doubles.enumerated() {
            withUnsafeBytes(of: d.bitPattern.littleEndian) { for k in 0..<8 { raw[1 + 8 * i + k] = $0[k] } }
        }
        raw.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { ElementConversion.float64ToFloat32(src.baseAddress! + 1, count: 3, into: $0) } }
        #expect(out == [Float(0.1), -.infinity, 2.5])
    }
}

@Suite("StrictJSON")
struct StrictJSONTests {
    static func parse(_ text: String) throws -> JSONValue {
        try Array(text.utf8).withUnsafeBytes { try StrictJSON.parse($0, file: "<test>") }
    }

    @Test("escapes, surrogate pairs and order are decoded")
    func decodes() throws {
        let v = try Self.parse(#" { "b" : "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude42" , "a" : [ 0 , -1.5e3 , true , false , null ] } "#)
        guard case .object(let o) = v else { Issue.record("not an object"); return }
        #expect(o.members.map(\.key) == ["b", "a"])
        #expect(o["b"] == .string("a\"\\/\u{8}\u{c}\n\r\té🙂"))
        #expect(o["a"] == .array([.number("0"), .number("-1.5e3"), .bool(true), .bool(false), .null]))
    }

    @Test("only plain non-negative integer literals are integers")
    func integers() throws {
        #expect(try Self.parse("9223372036854775807").nonNegativeInteger == Int.max)
        for text in ["9223372036854775808", "-1", "1.0", "1e2", "-0"] {
            #expect(try Self.parse(text).nonNegativeInteger == nil, "\(text)")
        }
    }

    @Test("refuses malformed numbers and literals", arguments: ["01", "1.", ".5", "+1", "1e", "tru", "nul", "[1,]", "{\"a\":1,}", "\"\\u12\"", "", "  "])
    func refuses(_ text: String) {
        let error = #expect(throws: FormatError.self) { try Self.parse(text) }
        #expect(error?.kind == .badHeader)
    }

    @Test("quoting round-trips through the parser")
    func quoting() throws {
        let s = "a\"b\\c\n\u{1}\u{7f} é 🙂"
        #expect(try Self.parse(StrictJSON.quoted(s)) == .string(s))
    }
}
