import Foundation
import HDFormats
import HDTestSupport
import Testing

/// One case of fixtures/reader-cases/manifest.json (written by tools/make_reader_cases.py): a file and
/// what numpy's or safetensors' own reader does with it.
struct ReaderCase: Decodable, CustomTestStringConvertible, Sendable {
    struct Expected: Decodable, Sendable {
        var dtype: String
        var shape: [Int]
        var weightType: Bool
        var f32: [String]?
        var int64: [Int64]?
        var f64Narrowing: String?

        enum CodingKeys: String, CodingKey {
            case dtype, shape, f32, int64
            case weightType = "weight_type", f64Narrowing = "f64_narrowing"
        }
    }

    struct Reference: Decodable, Sendable {
        var accepts: Bool
        var error: String?
        var tensors: [String: Expected]?
        var metadata: [String: String]?
    }

    var name: String
    var file: String
    var format: String
    var family: String
    var origin: String
    var what: String
    var reference: Reference

    var testDescription: String { "\(name) (\(what))" }
    var path: String { TestSupport.fixture("reader-cases/" + file) }

    static let all: [ReaderCase] = {
        struct Manifest: Decodable { var cases: [ReaderCase] }
        let url = URL(fileURLWithPath: TestSupport.fixture("reader-cases/manifest.json"))
        guard let data = try? Data(contentsOf: url), let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else {
            return []
        }
        return manifest.cases
    }()
}

/// The cases numpy's and safetensors' own tests throw at their readers, replayed against ours: we never
/// accept what they refuse and never load other values. Where we refuse what they accept, the case is
/// listed here with its reason, and docs/FORMATS.md ("Stricter than the reference readers") says why.
@Suite("Reader cases replayed from numpy's and safetensors' tests")
struct ReaderCaseTests {
    /// Cases the reference reader accepts and ours refuses, on purpose. Each must really be refused (a
    /// stale entry fails the test), and each is in docs/FORMATS.md.
    static let stricter: [String: String] = [
        // .npy: only the weight types a BERT checkpoint holds
        "np_dtype_u1": "unsigned and 8/16-bit integers are not weight or index types",
        "np_dtype_le_i2": "unsigned and 8/16-bit integers are not weight or index types",
        "np_dtype_le_u4": "unsigned and 8/16-bit integers are not weight or index types",
        "np_dtype_le_u8": "unsigned and 8/16-bit integers are not weight or index types",
        "np_dtype_le_c8": "complex numbers are not weights",
        "np_dtype_le_c16": "complex numbers are not weights",
        "np_dtype_b1": "bool is not a weight type",
        "np_dtype_le_U3": "strings are not weights",
        "np_dtype_S2": "strings are not weights",
        "np_dtype_le_M8_s": "datetimes are not weights",
        "np_record": "structured dtypes are not weights",
        "np_padded_dtype": "structured dtypes are not weights",
        "np_header_no_newline": "numpy always ends the header with a newline; without it the header's end is a guess",
        "np_descr_name": "descr must be a typestring with its byte order ('<f8'); 'float64' is a dtype name numpy writes nowhere",
        "np_descr_no_byteorder": "descr must state its byte order ('<f8', '>f8'); a bare 'f8' means the writer's native order, unknown here",
        "np_trailing_bytes": "bytes after the data mean the shape or the file is not what its writer meant",
        "np_npz_not_npy_member": "an npz holds .npy members only; anything else is not part of a model",
        // safetensors: strict headers
        "st_duplicate_tensor": "a duplicated key hides which tensor is meant (serde keeps the last one silently)",
        "st_unknown_field": "an entry field we do not know means a writer we have not checked",
        "st_dtype_u8": "U8 is not a weight or index type",
        "st_dtype_bool": "BOOL is not a weight type",
    ]

    /// What docs/FORMATS.md's "Stricter than the reference readers" table says for each stricter case.
    static let documented: [String: String] = [
        "np_dtype_u1": "`u1`", "np_dtype_le_i2": "`i2`", "np_dtype_le_u4": "`u4`", "np_dtype_le_u8": "`u8`",
        "np_dtype_le_c8": "`c8`", "np_dtype_le_c16": "`c16`", "np_dtype_b1": "`b1`", "np_dtype_le_U3": "`U3`",
        "np_dtype_S2": "`S2`", "np_dtype_le_M8_s": "`M8[s]`", "np_record": "structured", "np_padded_dtype": "structured (also inside an npz)",
        "np_header_no_newline": "header without its final", "np_descr_name": "`'float64'`", "np_descr_no_byteorder": "`'f8'`",
        "np_trailing_bytes": "bytes after the data", "np_npz_not_npy_member": "member that is not `.npy`",
        "st_duplicate_tensor": "tensor name twice", "st_unknown_field": "entry with a field other than",
        "st_dtype_u8": "`U8`", "st_dtype_bool": "`BOOL`",
    ]

    @Test("every stricter case is in docs/FORMATS.md's table")
    func stricterCasesAreDocumented() throws {
        let doc = try String(contentsOf: TestSupport.root.appendingPathComponent("docs/FORMATS.md"), encoding: .utf8)
        let section = try #require(doc.range(of: "### Stricter than the reference readers")).upperBound
        let table = doc[section...].components(separatedBy: "\n\n").prefix(3).joined(separator: "\n")
        #expect(Set(Self.documented.keys) == Set(Self.stricter.keys))
        for (name, phrase) in Self.documented {
            #expect(table.contains(phrase), "\(name): FORMATS.md does not mention \(phrase)")
        }
    }

    static let accepted = ReaderCase.all.filter(\.reference.accepts)
    static let refused = ReaderCase.all.filter { !$0.reference.accepts }

    @Test("the manifest is there and covers both families and all three formats")
    func manifestLoads() {
        #expect(ReaderCase.all.count >= 90)
        #expect(Set(ReaderCase.all.map(\.format)) == ["npy", "npz", "safetensors"])
        #expect(Set(ReaderCase.all.map(\.family)) == ["roundtrip", "upstream"])
        for name in Self.stricter.keys {
            #expect(Self.accepted.contains { $0.name == name }, "stricter entry \(name) is not a case the reference accepts")
        }
    }

    /// Reads a case the way a tool does: content sniffing, extension check, the format's reader.
    static func read(_ c: ReaderCase) throws -> TensorSet {
        let (kind, set) = try TensorFile.read(path: c.path, threads: 1)
        guard c.format == "npy" else { return set }
        #expect(kind == .npy)
        // A lone .npy is one tensor named after the file; the manifest calls it "".
        return TensorSet(tensors: ["": set.tensors.values.first!])
    }

    @Test("what the reference refuses, we refuse, with a FormatError naming the file", arguments: refused)
    func refusedStaysRefused(_ c: ReaderCase) {
        do {
            let set = try Self.read(c)
            Issue.record("accepted \(set.sortedNames) although the reference refuses it: \(c.reference.error ?? "")")
        } catch let error as FormatError {
            #expect(error.file == c.path)
            #expect(!error.message.isEmpty)
        } catch {
            Issue.record("threw \(type(of: error)), expected a FormatError: \(error)")
        }
    }

    @Test("what the reference accepts, we load with the same values (or refuse on a listed policy)", arguments: accepted)
    func acceptedLoadsTheSameValues(_ c: ReaderCase) throws {
        let set: TensorSet
        do {
            set = try Self.read(c)
        } catch let error as FormatError {
            #expect(Self.stricter[c.name] != nil, "refused a case the reference accepts, and it is not listed as stricter: \(error)")
            #expect(error.file == c.path)
            return
        }
        #expect(Self.stricter[c.name] == nil, "listed as stricter but accepted; drop it from the table and FORMATS.md")
        let expected = try #require(c.reference.tensors)
        #expect(Set(set.tensors.keys) == Set(expected.keys))
        for (name, want) in expected {
            let got = try #require(set[name], "tensor \(name)")
            try Self.check(got, against: want, tensor: name)
        }
        if c.format == "safetensors" { #expect(set.metadata == (c.reference.metadata ?? [:])) }
    }

    static func check(_ got: Tensor, against want: ReaderCase.Expected, tensor name: String) throws {
        #expect(got.shape == want.shape, "\(name) shape")
        #expect(want.weightType, "\(name): loaded a \(want.dtype) tensor, which is not a weight type")
        if let bits = want.f32 {
            let values = try #require(got.floats, "\(name): expected floats").array
            #expect(values.map { String(format: "%08x", $0.bitPattern) } == bits, "\(name) values")
            // F64 sources report how much rounding to f32 changed them; nothing else does.
            if let narrowing = want.f64Narrowing {
                #expect(got.storedAs == .float64)
                let reference = try #require(Double(narrowing), "f64_narrowing \(narrowing)")
                let measured = try #require(got.float64Narrowing, "\(name): no narrowing recorded for an F64 source")
                #expect(measured == reference, "\(name) largest relative change")
            } else {
                #expect(got.float64Narrowing == nil)
            }
        } else if let ints = want.int64 {
            guard case .int64(let values) = got.values else {
                Issue.record("\(name): expected integers")
                return
            }
            #expect(values == ints, "\(name) values")
        }
    }

    /// Every float layout the readers accept, written back by our writers as the canonical F32
    /// (safetensors, npz stored and deflated, npy) and read again: the same f32 values bit for bit, and
    /// never an F64 tensor.
    @Test("round trips of every accepted float layout through our writers", arguments: accepted.filter { $0.family == "roundtrip" })
    func roundTripThroughWriters(_ c: ReaderCase) throws {
        let set = try Self.read(c).storingFloatsAsF32()
        let named = TensorSet(tensors: Dictionary(uniqueKeysWithValues: set.tensors.map { ($0.key.isEmpty ? "array" : $0.key, $0.value) }))
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        var backs: [(String, TensorSet)] = []
        try SafeTensors.write(named, to: dir + "/out.safetensors")
        backs.append(("safetensors", try SafeTensors.read(path: dir + "/out.safetensors")))
        try Npz.write(named, to: dir + "/stored.npz", compression: .stored)
        backs.append(("npz stored", try Npz.read(path: dir + "/stored.npz", threads: 1)))
        try Npz.write(named, to: dir + "/deflated.npz", compression: .deflated)
        backs.append(("npz deflated", try Npz.read(path: dir + "/deflated.npz", threads: 2)))
        for (name, tensor) in named.tensors {
            try Npy.write(tensor, to: dir + "/\(name.replacingOccurrences(of: "/", with: "_")).npy")
            backs.append(("npy", TensorSet(tensors: [name: try Npy.read(path: dir + "/\(name.replacingOccurrences(of: "/", with: "_")).npy")])))
        }
        let expected = try #require(c.reference.tensors)
        for (writer, back) in backs {
            for (name, tensor) in back.tensors {
                let want = try #require(expected[name == "array" ? "" : name], "\(writer): \(name)")
                #expect(tensor.storedAs == .float32, "\(writer): \(name) written as \(tensor.storedAs.rawValue), expected F32")
                #expect(tensor.shape == want.shape, "\(writer): \(name) shape")
                #expect(tensor.floats?.array.map { String(format: "%08x", $0.bitPattern) } == want.f32, "\(writer): \(name) values")
            }
        }
    }
}

/// Defect 13: FileKind detection agrees with the safetensors parser about leading whitespace.
@Suite("safetensors detection")
struct SafeTensorsDetectionTests {
    struct Sniff: CustomTestStringConvertible, Sendable {
        var label: String
        var bytes: [UInt8]
        var kind: FileKind
        var testDescription: String { label }
    }

    static func image(_ header: String, data: [UInt8] = []) -> [UInt8] {
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8) + data
    }

    static let table: [Sniff] = [
        Sniff(label: "plain header", bytes: image("{}"), kind: .safetensors),
        Sniff(label: "leading space", bytes: image(" {}"), kind: .safetensors),
        Sniff(label: "leading tab, LF, CR", bytes: image("\t\n\r{}"), kind: .safetensors),
        Sniff(label: "leading and trailing spaces, a tensor", bytes: image("   {\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}   ", data: [0, 0, 0, 0]), kind: .safetensors),
        Sniff(label: "whitespace past the sniffed window", bytes: image(String(repeating: " ", count: 5000) + "{}").prefix(4096).map { $0 }, kind: .safetensors),
        Sniff(label: "whitespace then not an object", bytes: image("  []"), kind: .unknown),
        Sniff(label: "only whitespace inside the header", bytes: image("    ") + Array("{}".utf8), kind: .unknown),
        Sniff(label: "text file with a space at byte 8", bytes: Array("abcdefgh {}\n".utf8), kind: .unknown),
        Sniff(label: "vertical tab is not JSON whitespace", bytes: image("\u{0B}{}"), kind: .unknown),
    ]

    @Test("FileKind.detect", arguments: table)
    func detect(_ s: Sniff) {
        #expect(s.bytes.withUnsafeBytes { FileKind.detect($0) } == s.kind)
    }

    @Test("a padded header reads through TensorFile, as the reference implementation reads it")
    func paddedHeaderReads() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let path = dir + "/padded.safetensors"
        let bytes = Self.image("  \n{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}\t ",
                               data: withUnsafeBytes(of: (Float(1.5).bitPattern.littleEndian, Float(-2).bitPattern.littleEndian), Array.init))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (kind, set) = try TensorFile.read(path: path)
        #expect(kind == .safetensors)
        #expect(set["w"]?.floats?.array == [1.5, -2])
    }
}
