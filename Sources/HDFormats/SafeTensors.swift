#if _endian(big)
#error("safetensors data is little-endian; F32 tensors are borrowed from the mapping without swapping")
#endif

/// Reads and writes safetensors files: an 8-byte little-endian header length, a JSON header mapping
/// tensor names to `{dtype, shape, data_offsets}` (plus an optional `__metadata__` string map), then the
/// raw data section.
///
/// Reader policy, stricter than the format's reference implementation where that one is lenient:
/// - an entry must have exactly `dtype`, `shape` and `data_offsets`; any other field is `.badEntry`
///   (an unknown field means a writer we do not understand, and guessing is how wrong weights load);
/// - duplicate keys anywhere in the header are `.duplicateKey`;
/// - numbers must be plain non-negative integer literals ("4", not "4.0" or "4e0");
/// - the tensors, sorted by offset, must tile the data section exactly: no holes, overlaps, trailing or
///   missing bytes;
/// - every entry is validated before any tensor memory is allocated.
/// F32/F16/BF16/F64 load as f32 (F32 borrows the mapping when 4-byte aligned, otherwise it is copied);
/// I64/I32 load as `.int64`; any other dtype is `.unsupportedDType`.
public enum SafeTensors {
    /// Known safetensors dtypes this reader refuses, so the error can say "cannot convert" rather than
    /// "unknown".
    static let unconvertibleDTypes: Set<String> = [
        "BOOL", "U8", "I8", "U16", "I16", "U32", "U64", "C64",
        "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",
    ]
    static let entryFields: Set<String> = ["dtype", "shape", "data_offsets"]

    /// Maps `path` and parses it; F32 tensors borrow the mapping (zero copy).
    public static func read(path: String, limits: ReadLimits = .default) throws -> TensorSet {
        let file = try MappedFile(path: path, limits: limits, minimumBytes: 0)
        return try parse(file.bytes, file: path, limits: limits, owner: file)
    }

    /// Parses an in-memory safetensors image; every tensor is copied out of `bytes`.
    public static func read(bytes: UnsafeRawBufferPointer, limits: ReadLimits = .default,
                            name: String = "<memory>") throws -> TensorSet {
        try parse(bytes, file: name, limits: limits, owner: nil)
    }

    public static func read(bytes: [UInt8], limits: ReadLimits = .default, name: String = "<memory>") throws -> TensorSet {
        try bytes.withUnsafeBytes { try parse($0, file: name, limits: limits, owner: nil) }
    }

    struct Entry {
        let name: String
        let dtype: ElementType
        let shape: [Int]
        let count: Int
        let begin: Int
        let end: Int
    }

    /// The `__metadata__` of a safetensors file, with every check of the header `read` makes and no
    /// tensor loaded: what a caller needs to tell a student.ckpt from a model before reading either.
    public static func metadata(path: String, limits: ReadLimits = .default) throws -> [String: String] {
        let file = try MappedFile(path: path, limits: limits, minimumBytes: 0)
        return try withExtendedLifetime(file) { try header(file.bytes, file: path, limits: limits).metadata }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, file: String, limits: ReadLimits, owner: AnyObject?) throws -> TensorSet {
        let (metadata, entries, dataStart) = try header(bytes, file: file, limits: limits)
        // Everything is validated; only now is memory allocated for tensors.
        let data = UnsafeRawBufferPointer(rebasing: bytes[dataStart...])
        var tensors: [String: Tensor] = [:]
        tensors.reserveCapacity(entries.count)
        for e in entries {
            var narrowing: Double?
            var tensor = Tensor(shape: e.shape, values: load(e, from: data, owner: owner, narrowing: &narrowing), storedAs: e.dtype)
            tensor.float64Narrowing = narrowing
            tensors[e.name] = tensor
        }
        return TensorSet(tensors: tensors, metadata: metadata)
    }

    /// Parses and checks the header: metadata, entries, their tiling of the data; `dataStart` is the
    /// offset of the first tensor byte.
    static func header(_ bytes: UnsafeRawBufferPointer, file: String,
                       limits: ReadLimits) throws -> (metadata: [String: String], entries: [Entry], dataStart: Int) {
        try FileKind.require(.safetensors, bytes, file: file, allowUnknown: true)
        guard bytes.count >= 8 else {
            throw FormatError(.tooSmall, file: file, "is \(bytes.count) bytes, shorter than the 8-byte safetensors header length")
        }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard let headerLength = Int(exactly: declared) else {
            throw FormatError(.badHeader, file: file, "header length is \(declared), expected less than 2^63 (not a safetensors file?)")
        }
        guard headerLength <= limits.maxHeaderBytes else {
            throw FormatError(.tooLarge, file: file, "header length is \(headerLength) bytes, over the cap of \(limits.maxHeaderBytes) bytes (ReadLimits.maxHeaderBytes)")
        }
        guard headerLength <= bytes.count - 8 else {
            throw FormatError(.truncated, file: file, "header length is \(headerLength) bytes but only \(bytes.count - 8) bytes follow the length field")
        }
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        if let bad = StrictJSON.firstInvalidUTF8(header) {
            throw FormatError(.badHeader, file: file, "header is not UTF-8: ill-formed byte 0x\(String(header[bad], radix: 16)) at header byte \(bad)")
        }
        let json = try StrictJSON.parse(header, file: file, what: "header", maxDepth: 8)
        guard case .object(let top) = json else {
            throw FormatError(.badHeader, file: file, "header must be a JSON object mapping tensor names to entries, found \(json.summary)")
        }
        let tensorCount = top.members.count - (top["__metadata__"] == nil ? 0 : 1)
        guard tensorCount <= limits.maxTensorCount else {
            throw FormatError(.tooLarge, file: file, "header lists \(tensorCount) tensors, over the cap of \(limits.maxTensorCount) (ReadLimits.maxTensorCount)")
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        entries.reserveCapacity(tensorCount)
        for member in top.members {
            if member.key == "__metadata__" {
                metadata = try parseMetadata(member.value, file: file)
            } else {
                entries.append(try parseEntry(name: member.key, member.value, file: file))
            }
        }
        let dataStart = 8 + headerLength
        try checkTiling(entries, dataLength: bytes.count - dataStart, file: file)
        return (metadata, entries, dataStart)
    }

    static func parseMetadata(_ value: JSONValue, file: String) throws -> [String: String] {
        guard case .object(let object) = value else {
            throw FormatError(.badMetadata, file: file, "__metadata__ must be an object of string values, found \(value.summary)")
        }
        var metadata: [String: String] = [:]
        for m in object.members {
            guard let s = m.value.stringValue else {
                throw FormatError(.badMetadata, file: file, "__metadata__ key \(StrictJSON.quoted(m.key)) must map to a string, found \(m.value.summary)")
            }
            metadata[m.key] = s
        }
        return metadata
    }

    static func parseEntry(name: String, _ value: JSONValue, file: String) throws -> Entry {
        let tensor = "tensor \(StrictJSON.quoted(name))"
        guard case .object(let object) = value else {
            throw FormatError(.badEntry, file: file, "\(tensor): expected an object with dtype, shape and data_offsets, found \(value.summary)")
        }
        for m in object.members where !entryFields.contains(m.key) {
            throw FormatError(.badEntry, file: file, "\(tensor): unknown field \(StrictJSON.quoted(m.key)); entries must have exactly dtype, shape and data_offsets")
        }
        for field in ["dtype", "shape", "data_offsets"] where object[field] == nil {
            throw FormatError(.badEntry, file: file, "\(tensor): missing field \"\(field)\"")
        }
        let dtypeValue = object["dtype"] ?? .null
        guard let dtypeName = dtypeValue.stringValue else {
            throw FormatError(.badEntry, file: file, "\(tensor): dtype must be a string, found \(dtypeValue.summary)")
        }
        guard let dtype = ElementType(rawValue: dtypeName) else {
            if unconvertibleDTypes.contains(dtypeName) {
                throw FormatError(.unsupportedDType, file: file, "\(tensor): dtype \(dtypeName) cannot be converted; supported are F32, F16, BF16, F64 (read as f32) and I64, I32 (read as integers)")
            }
            throw FormatError(.unsupportedDType, file: file, "\(tensor): unknown dtype \(StrictJSON.quoted(dtypeName)); supported are F32, F16, BF16, F64, I64, I32")
        }

        let shapeValue = object["shape"] ?? .null
        guard case .array(let dims) = shapeValue else {
            throw FormatError(.badShape, file: file, "\(tensor): shape must be an array of integers, found \(shapeValue.summary)")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for (axis, d) in dims.enumerated() {
            guard let n = d.nonNegativeInteger else {
                throw FormatError(.badShape, file: file, "\(tensor): shape[\(axis)] must be a non-negative integer below 2^63, found \(d.summary)")
            }
            shape.append(n)
        }
        guard let count = ShapeMath.elementCount(shape), let byteCount = ShapeMath.byteCount(shape, itemSize: dtype.byteCount) else {
            throw FormatError(.badShape, file: file, "\(tensor): shape \(shape) has an element count or byte size that overflows a 64-bit integer")
        }

        let offsetsValue = object["data_offsets"] ?? .null
        guard case .array(let offsets) = offsetsValue, offsets.count == 2,
              let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger else {
            throw FormatError(.badOffsets, file: file, "\(tensor): data_offsets must be [begin, end] with non-negative integers, found \(offsetsValue.summary)")
        }
        guard begin <= end, end - begin == byteCount else {
            throw FormatError(.badOffsets, file: file, "\(tensor): data_offsets [\(begin), \(end)] span \(begin <= end ? String(end - begin) : "a negative number of") bytes, expected \(byteCount) (\(count) × \(dtype.byteCount)-byte \(dtype.rawValue))")
        }
        return Entry(name: name, dtype: dtype, shape: shape, count: count, begin: begin, end: end)
    }

    /// Sorted by offset, the tensors must cover `0..<dataLength` exactly once.
    static func checkTiling(_ entries: [Entry], dataLength: Int, file: String) throws {
        let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        var previous: String?
        for e in sorted {
            if e.begin > expected {
                throw FormatError(.badOffsets, file: file, "tensor \(StrictJSON.quoted(e.name)) starts at data offset \(e.begin), expected \(expected): bytes \(expected)..<\(e.begin) belong to no tensor (a hole)")
            }
            if e.begin < expected {
                let other = previous.map { " tensor \(StrictJSON.quoted($0))," } ?? ""
                throw FormatError(.badOffsets, file: file, "tensor \(StrictJSON.quoted(e.name)) starts at data offset \(e.begin), inside the bytes of\(other) which end at \(expected) (overlapping tensors)")
            }
            expected = e.end
            previous = e.name
        }
        if expected < dataLength {
            throw FormatError(.trailingBytes, file: file, "data section is \(dataLength) bytes but the tensors cover \(expected); \(dataLength - expected) trailing bytes belong to no tensor")
        }
        if expected > dataLength {
            let last = previous.map { "tensor \(StrictJSON.quoted($0)) ends" } ?? "tensors end"
            throw FormatError(.truncated, file: file, "\(last) at data offset \(expected) but the data section is only \(dataLength) bytes (file truncated?)")
        }
    }

    /// The tensor's values as we compute with them; for F64, `narrowing` gets the largest relative
    /// change rounding to f32 made (`Tensor.float64Narrowing`).
    static func load(_ e: Entry, from data: UnsafeRawBufferPointer, owner: AnyObject?, narrowing: inout Double?) -> TensorValues {
        if e.dtype == .float64 { narrowing = 0 }
        let source = data.baseAddress.map { UnsafeRawPointer($0 + e.begin) }
        guard let source, e.count > 0 else {
            return e.dtype.isFloatingPoint ? .float32(FloatStorage(count: 0) { _ in }) : .int64([])
        }
        switch e.dtype {
        case .float32:
            if let owner, Int(bitPattern: source) % MemoryLayout<Float>.alignment == 0 {
                let typed = source.assumingMemoryBound(to: Float.self)
                return .float32(FloatStorage(borrowing: UnsafeBufferPointer(start: typed, count: e.count), owner: owner))
            }
            return .float32(FloatStorage(count: e.count) { ElementConversion.float32ToFloat32(source, count: e.count, into: $0) })
        case .float16:
            return .float32(FloatStorage(count: e.count) { ElementConversion.float16ToFloat32(source, count: e.count, into: $0) })
        case .bfloat16:
            return .float32(FloatStorage(count: e.count) { ElementConversion.bfloat16ToFloat32(source, count: e.count, into: $0) })
        case .float64:
            var worst: Double = 0
            let storage = FloatStorage(count: e.count) { worst = ElementConversion.float64ToFloat32(source, count: e.count, into: $0) }
            narrowing = worst
            return .float32(storage)
        case .int64:
            return .int64((0..<e.count).map { Int64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) })
        case .int32:
            return .int64((0..<e.count).map { Int64(Int32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) })
        }
    }
}
