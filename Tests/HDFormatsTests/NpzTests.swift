import Foundation
import HDFormats
import HDTestSupport
import Testing

@Suite("Npz")
struct NpzTests {
    static func sample() -> TensorSet {
        var set = TensorSet()
        for (name, tensor) in NpyTests.sample() { set[name] = tensor }
        set["bert/encoder/layer_0/kernel"] = Tensor(shape: [3, 5], floats: (0..<15).map { Float($0) / 7 })
        set["big"] = Tensor(shape: [300, 257], floats: (0..<(300 * 257)).map { Float($0 % 1000) * 0.5 })
        return set
    }

    static func expectSame(_ a: TensorSet, _ b: TensorSet, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.sortedNames == b.sortedNames, sourceLocation: sourceLocation)
        for name in a.sortedNames {
            #expect(a[name]?.shape == b[name]?.shape && a[name]?.storedAs == b[name]?.storedAs, "\(name)", sourceLocation: sourceLocation)
            #expect(a[name]?.floats?.array == b[name]?.floats?.array && int64s(a[name]) == int64s(b[name]), "\(name)", sourceLocation: sourceLocation)
        }
    }

    @Test("round trip, stored and deflated, with every dtype, 0-d, empty and slash names", arguments: [Npz.Compression.stored, .deflated])
    func roundTrip(_ compression: Npz.Compression) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let path = dir + "/m.npz"
        try Npz.write(Self.sample(), to: path, compression: compression)
        let back = try Npz.read(path: path)
        Self.expectSame(back, Self.sample())
        // Stored members are aligned by the writer, so f32 tensors borrow the mapping.
        #expect(back["big"]?.floats?.isBorrowed == (compression == .stored))
        for threads in [1, 2, 4] { Self.expectSame(try Npz.read(path: path, threads: threads), back) }
    }

    @Test("output is deterministic: the same set gives the same bytes", arguments: [Npz.Compression.stored, .deflated])
    func deterministic(_ compression: Npz.Compression) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        try Npz.write(Self.sample(), to: dir + "/a.npz", compression: compression)
        try Npz.write(Self.sample(), to: dir + "/b.npz", compression: compression)
        #expect(FileManager.default.contents(atPath: dir + "/a.npz") == FileManager.default.contents(atPath: dir + "/b.npz"))
    }

    @Test("in-memory read equals the file read")
    func inMemory() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        try Npz.write(Self.sample(), to: dir + "/m.npz", compression: .deflated)
        let bytes = try #require(FileManager.default.contents(atPath: dir + "/m.npz"))
        let back = try [UInt8](bytes).withUnsafeBytes { try Npz.read(bytes: $0, threads: 2) }
        Self.expectSame(back, Self.sample())
    }

    @Test("65 536 members need the zip64 end records; both readers take them")
    func zip64EndRecords() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        var set = TensorSet()
        for i in 0..<65_536 { set["t\(i)"] = Tensor(shape: [], floats: [Float(i)]) }
        let path = dir + "/many.npz"
        try Npz.write(set, to: path)
        let back = try Npz.read(path: path)
        #expect(back.tensors.count == 65_536 && back["t65535"]?.floats?.array == [65_535])
        let python = try TestSupport.python()
        let out = try TestSupport.run(python, ["-c", "import numpy as np, sys; z = np.load(sys.argv[1]); print(len(z.files), float(z['t65535']))", path])
        #expect(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "65536 65535.0")
    }

    @Test("archives written by numpy.savez and savez_compressed")
    func numpyArchives() throws {
        for file in ["numpy_savez.npz", "numpy_savez_compressed.npz"] {
            let set = try Npz.read(path: TestSupport.fixture("interop/" + file))
            #expect(set.sortedNames == ["a/b", "empty", "f16", "f32", "f64", "i32", "i64", "scalar"], "\(file)")
            #expect(set["f32"]?.shape == [3, 4] && set["f32"]?.floats?.array == NpyBytes.expected(12), "\(file)")
            #expect(set["f64"]?.storedAs == .float64 && set["f64"]?.floats?.array == NpyBytes.expected(5), "\(file)")
            #expect(set["f16"]?.storedAs == .float16 && set["f16"]?.floats?.array == NpyBytes.expected(6), "\(file)")
            #expect(int64s(set["i64"]) == (0..<4).map { Int64($0 * 3 - 5) } && set["i32"]?.storedAs == .int32, "\(file)")
            #expect(int64s(set["i32"]) == (0..<4).map { Int64($0 * 3 - 5) }, "\(file)")
            #expect(set["scalar"]?.shape == [] && set["scalar"]?.floats?.array == [-1], "\(file)")
            #expect(set["empty"]?.shape == [0, 3] && set["a/b"]?.floats?.array == [-1, -0.75], "\(file)")
        }
    }

    @Test("numpy.load reads what Npz.write writes, stored and deflated", arguments: [Npz.Compression.stored, .deflated])
    func numpyReadsOurs(_ compression: Npz.Compression) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let path = dir + "/m.npz"
        try Npz.write(Self.sample(), to: path, compression: compression)
        let python = try TestSupport.python()
        let out = try TestSupport.run(python, [TestSupport.root.appendingPathComponent("tools/interop_read.py").path, path])
        let read = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        let tensors = try #require(read?["tensors"] as? [String: [String: Any]])
        let set = Self.sample()
        #expect(tensors.keys.sorted() == set.tensors.keys.sorted())
        for name in set.sortedNames {
            #expect(tensors[name]?["shape"] as? [Int] == set[name]?.shape, "\(name)")
            let expected = name == "f16" ? InteropDigest.sha256(try Npz.read(path: path)[name]!) : InteropDigest.sha256(set[name]!)
            #expect(tensors[name]?["sha256"] as? String == expected, "\(name)")
        }
    }

    @Test("the tiny-bert fixture reads the same stored and deflated")
    func tinyBert() throws {
        let stored = try Npz.read(path: TestSupport.fixture("tiny-bert/model.npz"))
        let deflated = try Npz.read(path: TestSupport.fixture("tiny-bert/model-deflated.npz"))
        #expect(!stored.tensors.isEmpty)
        Self.expectSame(stored, deflated)
    }

    @Test("writer refuses what it cannot store, leaving no file behind")
    func writerRefuses() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let bad: [(TensorSet, FormatError.Kind)] = [
            (TensorSet(tensors: ["": Tensor(shape: [1], floats: [1])]), .badMemberName),
            (TensorSet(tensors: ["x": Tensor(shape: [2], floats: [1])]), .badShape),
            (TensorSet(tensors: ["x": Tensor(shape: [1], values: .int64([1 << 40]), storedAs: .int32)]), .unsupportedDType),
            (TensorSet(tensors: ["x": Tensor(shape: [1], values: .int64([1]), storedAs: .float32)]), .unsupportedDType),
        ]
        for (set, kind) in bad {
            do {
                try Npz.write(set, to: dir + "/bad.npz")
                Issue.record("accepted \(set.sortedNames)")
            } catch let error as FormatError {
                #expect(error.kind == kind, "\(error)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}
