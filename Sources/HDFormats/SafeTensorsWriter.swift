#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SafeTensors {
    /// Writes `set` atomically (temp file, fsync, validate by re-reading, rename). The bytes are
    /// deterministic: names in byte order, `__metadata__` first with sorted keys, entry keys sorted,
    /// header padded with spaces to a multiple of 8 so every tensor's data stays 8-byte aligned.
    /// Data is streamed tensor by tensor; nothing the size of the model is buffered.
    /// Each tensor is stored as its `storedAs` type: f32 values as F32, F16, BF16 (rounded to nearest
    /// even) or F64; integer values as I64 or I32.
    public static func write(_ set: TensorSet, to path: String) throws {
        let plan = try WritePlan(set, file: path)
        try AtomicFile.write(to: path, body: { writer in
            try plan.emit { try writer.write($0) }
        }, validate: { temp in
            try plan.verify(try read(path: temp), file: path)
        })
    }

    /// The exact bytes `write` would produce, in memory (for tests and small sets).
    public static func serialize(_ set: TensorSet) throws -> [UInt8] {
        let plan = try WritePlan(set, file: "<memory>")
        var out: [UInt8] = []
        try plan.emit { out.append(contentsOf: $0) }
        return out
    }
}

/// What will be written: the complete header and the tensors in data order, checked up front so a
/// bad set fails before the temp file gets any bytes.
struct WritePlan {
    struct Item {
        let name: String
        let tensor: Tensor
        let dtype: ElementType
    }

    let header: [UInt8]
    let items: [Item]
    let metadata: [String: String]

    init(_ set: TensorSet, file: String) throws {
        var items: [Item] = []
        var json: [UInt8] = [UInt8(ascii: "{")]
        var offset = 0
        if !set.metadata.isEmpty {
            json += Array("\"__metadata__\":{".utf8)
            let keys = set.metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for (i, key) in keys.enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                StrictJSON.appendQuoted(key, to: &json)
                json.append(UInt8(ascii: ":"))
                StrictJSON.appendQuoted(set.metadata[key] ?? "", to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        for name in set.sortedNames {
            guard let tensor = set.tensors[name] else { continue }
            let dtype = try Self.diskType(of: tensor, name: name, file: file)
            guard name != "__metadata__" else {
                throw FormatError(.badEntry, file: file, "a tensor cannot be named \"__metadata__\": that key is reserved for metadata")
            }
            guard let count = ShapeMath.elementCount(tensor.shape), count == tensor.elementCount,
                  let bytes = ShapeMath.byteCount(tensor.shape, itemSize: dtype.byteCount) else {
                throw FormatError(.badShape, file: file, "tensor \(StrictJSON.quoted(name)): shape \(tensor.shape) does not match its \(tensor.elementCount) values")
            }
            let (end, overflow) = offset.addingReportingOverflow(bytes)
            guard !overflow else {
                throw FormatError(.tooLarge, file: file, "tensor \(StrictJSON.quoted(name)): data section exceeds 2^63 bytes")
            }
            if json.count > 1 { json.append(UInt8(ascii: ",")) }
            StrictJSON.appendQuoted(name, to: &json)
            json += Array(":{\"data_offsets\":[\(offset),\(end)],\"dtype\":\"\(dtype.rawValue)\",\"shape\":[".utf8)
            json += Array(tensor.shape.map(String.init).joined(separator: ",").utf8)
            json += Array("]}".utf8)
            items.append(Item(name: name, tensor: tensor, dtype: dtype))
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var header: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { header += $0 }
        header += json
        self.header = header
        self.items = items
        metadata = set.metadata
    }

    static func diskType(of tensor: Tensor, name: String, file: String) throws -> ElementType {
        switch (tensor.values, tensor.storedAs) {
        case (.float32, .float32), (.float32, .float16), (.float32, .bfloat16), (.float32, .float64):
            return tensor.storedAs
        case (.int64(let values), .int32):
            if let bad = values.firstIndex(where: { Int32(exactly: $0) == nil }) {
                throw FormatError(.unsupportedDType, file: file, "tensor \(StrictJSON.quoted(name)): value \(values[bad]) at index \(bad) does not fit I32")
            }
            return .int32
        case (.int64, .int64):
            return .int64
        case (.float32, _), (.int64, _):
            let held = tensor.floats == nil ? "integer" : "f32"
            throw FormatError(.unsupportedDType, file: file, "tensor \(StrictJSON.quoted(name)) holds \(held) values but is marked to be stored as \(tensor.storedAs.rawValue)")
        }
    }

    /// Feeds the file's bytes to `sink` in order, converting through a small reused buffer.
    func emit(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try header.withUnsafeBytes { try sink($0) }
        for item in items { try TensorEncoding.write(item.tensor.values, as: item.dtype, to: sink) }
    }

    /// Checks a re-read file against what was meant to be written, value by value (bitwise, after the
    /// same rounding the writer applied), so a bug in the writer cannot publish a wrong model.
    func verify(_ back: TensorSet, file: String) throws {
        func fail(_ what: String) -> FormatError {
            FormatError(.io, file: file, "written file did not read back as written: \(what); the destination was left untouched")
        }
        guard back.tensors.count == items.count, back.metadata == metadata else { throw fail("tensor count or metadata differ") }
        for item in items {
            let name = StrictJSON.quoted(item.name)
            guard let got = back.tensors[item.name], got.shape == item.tensor.shape, got.storedAs == item.dtype else {
                throw fail("tensor \(name) is missing or has another shape or dtype")
            }
            guard TensorEncoding.readBackMatches(item.tensor.values, got.values, storedAs: item.dtype) else {
                throw fail("tensor \(name) values differ")
            }
        }
    }
}
