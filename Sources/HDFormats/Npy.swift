#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// NumPy `.npy` arrays: versions 1.0, 2.0 and 3.0 in, version 1.0 (2.0 when the header needs it) out.
///
/// Loaded types: `f4`, `f2`, `f8` (to f32) and `i8`, `i4` (to Int64). Byte order policy: big-endian
/// data (`>f4`) is byte-swapped explicitly at load and the tensor remembers only its element type, so
/// it is written back little-endian. `fortran_order: True` data is transposed to C order at load.
/// Writers emit C order, little-endian, with data starting at a multiple of 64 bytes like numpy.
/// bfloat16 tensors are written as `<f4` (numpy has no bfloat16; the values are exact in f32).
/// This code assumes a little-endian host (x86-64, arm64), where `<f4` data can be borrowed in place.
public enum Npy {
    /// Decodes one `.npy` image. Aligned little-endian C-order f32 data is borrowed in place when
    /// `owner` keeps `bytes` alive; everything else is converted into memory this call allocates.
    public static func decode(_ bytes: UnsafeRawBufferPointer, name: String, file: String, owner: AnyObject?,
                              limits: ReadLimits = .default) throws -> Tensor {
        let (header, dataOffset) = try NpyHeader.parse(bytes, name: name, file: file, maxHeaderBytes: limits.maxHeaderBytes)
        let expected = try dataByteCount(header, name: name, file: file)
        let found = bytes.count - dataOffset
        if found < expected {
            throw FormatError(.truncated, file: file, "array '\(name)': shape \(header.shape) of \(NpyDescr.code(header.type)) needs \(expected) data bytes, found \(found)")
        }
        if found > expected {
            throw FormatError(.trailingBytes, file: file, "array '\(name)': \(found - expected) bytes follow the \(expected) data bytes that shape \(header.shape) needs")
        }
        return tensor(header, data: UnsafeRawBufferPointer(rebasing: bytes[dataOffset...]), owner: owner)
    }

    /// Maps and decodes the file at `path`; f32 tensors borrow the mapping.
    public static func read(path: String, limits: ReadLimits = .default) throws -> Tensor {
        let mapped = try MappedFile(path: path, limits: limits, minimumBytes: 10)
        try FileKind.require(.npy, mapped.bytes, file: path)
        return try decode(mapped.bytes, name: arrayName(of: path), file: path, owner: mapped, limits: limits)
    }

    /// The complete `.npy` image of `tensor`.
    public static func encode(_ tensor: Tensor, name: String = "array") throws -> [UInt8] {
        let header = try self.header(for: tensor, name: name, file: "<memory>")
        var out = header.encoded()
        try writeData(tensor, header: header) { out += $0 }
        return out
    }

    /// Writes `tensor` to `path` atomically, re-reading the result before it replaces the destination.
    public static func write(_ tensor: Tensor, to path: String) throws {
        let name = arrayName(of: path)
        let header = try self.header(for: tensor, name: name, file: path)
        try AtomicFile.write(to: path, body: { out in
            try out.write(header.encoded())
            try writeData(tensor, header: header) { try out.write($0) }
        }, validate: { temp in
            try verify(read(path: temp), against: tensor, header: header, name: name, file: path)
        })
    }

    // MARK: - Reading

    /// numel × itemsize, or `.badShape` when it overflows.
    static func dataByteCount(_ header: NpyHeader, name: String, file: String) throws -> Int {
        guard let bytes = ShapeMath.byteCount(header.shape, itemSize: header.type.byteCount) else {
            throw FormatError(.badShape, file: file, "array '\(name)': shape \(header.shape) overflows the addressable size")
        }
        return bytes
    }

    /// True when the data can be used in place: little-endian f32 in C order.
    static func isBorrowable(_ header: NpyHeader) -> Bool {
        header.type == .float32 && !header.bigEndian && (!header.fortranOrder || header.shape.count < 2)
    }

    /// Builds the tensor from data whose length the caller has checked against the header.
    static func tensor(_ header: NpyHeader, data: UnsafeRawBufferPointer, owner: AnyObject?) -> Tensor {
        let count = data.count / header.type.byteCount
        if let owner, isBorrowable(header), count > 0, Int(bitPattern: data.baseAddress) % MemoryLayout<Float>.alignment == 0 {
            let floats = data.baseAddress!.assumingMemoryBound(to: Float.self)
            let storage = FloatStorage(borrowing: UnsafeBufferPointer(start: floats, count: count), owner: owner)
            return Tensor(shape: header.shape, values: .float32(storage), storedAs: .float32)
        }
        var source = data
        var swapped: UnsafeMutableRawBufferPointer?
        defer { swapped?.deallocate() }
        if header.bigEndian && count > 0 {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count, alignment: 64)
            byteSwap(data, itemSize: header.type.byteCount, into: copy)
            swapped = copy
            source = UnsafeRawBufferPointer(copy)
        }
        let reorder = header.fortranOrder && header.shape.count >= 2
        switch header.type {
        case .float32, .float16, .float64, .bfloat16:
            var narrowing: Double = 0
            let storage = FloatStorage(count: count) { out in
                guard count > 0 else { return }
                if reorder {
                    let columnMajor = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
                    defer { columnMajor.deallocate() }
                    narrowing = toFloat(source, type: header.type, count: count, into: columnMajor)
                    fortranToC(UnsafePointer(columnMajor.baseAddress!), shape: header.shape, into: out.baseAddress!)
                } else {
                    narrowing = toFloat(source, type: header.type, count: count, into: out)
                }
            }
            var tensor = Tensor(shape: header.shape, values: .float32(storage), storedAs: header.type)
            if header.type == .float64 { tensor.float64Narrowing = narrowing }
            return tensor
        case .int64, .int32:
            var values = [Int64](repeating: 0, count: count)
            values.withUnsafeMutableBufferPointer { out in
                guard count > 0 else { return }
                if reorder {
                    let columnMajor = UnsafeMutableBufferPointer<Int64>.allocate(capacity: count)
                    defer { columnMajor.deallocate() }
                    toInt64(source, type: header.type, count: count, into: columnMajor)
                    fortranToC(UnsafePointer(columnMajor.baseAddress!), shape: header.shape, into: out.baseAddress!)
                } else {
                    toInt64(source, type: header.type, count: count, into: out)
                }
            }
            return Tensor(shape: header.shape, values: .int64(values), storedAs: header.type)
        }
    }

    /// Converts to f32; returns the largest relative change (nonzero only for f8, see
    /// `Tensor.float64Narrowing`).
    private static func toFloat(_ source: UnsafeRawBufferPointer, type: ElementType, count: Int, into out: UnsafeMutableBufferPointer<Float>) -> Double {
        let base = source.baseAddress!
        switch type {
        case .float16: ElementConversion.float16ToFloat32(base, count: count, into: out)
        case .float64: return ElementConversion.float64ToFloat32(base, count: count, into: out)
        case .bfloat16: ElementConversion.bfloat16ToFloat32(base, count: count, into: out)
        default: ElementConversion.float32ToFloat32(base, count: count, into: out)
        }
        return 0
    }

    private static func toInt64(_ source: UnsafeRawBufferPointer, type: ElementType, count: Int, into out: UnsafeMutableBufferPointer<Int64>) {
        let base = source.baseAddress!
        if type == .int32 {
            for i in 0..<count { out[i] = Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        } else {
            for i in 0..<count { out[i] = Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        }
    }

    private static func byteSwap(_ data: UnsafeRawBufferPointer, itemSize: Int, into out: UnsafeMutableRawBufferPointer) {
        var item = 0
        while item < data.count {
            for k in 0..<itemSize { out[item + k] = data[item + itemSize - 1 - k] }
            item += itemSize
        }
    }

    /// Column-major (Fortran) `src` of `shape` → row-major `dst`. Walks the output in order; the
    /// innermost loop strides through the source by the last axis's Fortran stride.
    static func fortranToC<T>(_ src: UnsafePointer<T>, shape: [Int], into dst: UnsafeMutablePointer<T>) {
        let rank = shape.count
        var strides = [Int](repeating: 1, count: rank)
        for k in 1..<rank { strides[k] = strides[k - 1] * shape[k - 1] }
        let inner = shape[rank - 1], innerStride = strides[rank - 1]
        var index = [Int](repeating: 0, count: rank - 1)
        var base = 0, o = 0
        while true {
            var s = base
            for _ in 0..<inner {
                dst[o] = src[s]
                s += innerStride
                o += 1
            }
            var k = rank - 2
            while k >= 0 {
                index[k] += 1
                base += strides[k]
                if index[k] < shape[k] { break }
                base -= strides[k] * shape[k]
                index[k] = 0
                k -= 1
            }
            if k < 0 { return }
        }
    }

    // MARK: - Writing

    /// The header a writer uses for `tensor`, after checking that its values fit its shape and type.
    static func header(for tensor: Tensor, name: String, file: String) throws -> NpyHeader {
        guard let count = ShapeMath.elementCount(tensor.shape), count == tensor.elementCount else {
            throw FormatError(.badShape, file: file, "array '\(name)': shape \(tensor.shape) does not hold its \(tensor.elementCount) values")
        }
        switch (tensor.values, tensor.storedAs) {
        case (.float32, .float32), (.float32, .float16), (.float32, .float64), (.float32, .bfloat16), (.int64, .int64):
            break
        case (.int64(let values), .int32):
            if let bad = values.firstIndex(where: { Int32(exactly: $0) == nil }) {
                throw FormatError(.unsupportedDType, file: file, "array '\(name)': value \(values[bad]) at index \(bad) does not fit <i4")
            }
        case (.float32, _), (.int64, _):
            let held = tensor.floats == nil ? "integer" : "f32"
            throw FormatError(.unsupportedDType, file: file, "array '\(name)' holds \(held) values but is marked to be stored as \(tensor.storedAs.rawValue)")
        }
        let type: ElementType = tensor.storedAs == .bfloat16 ? .float32 : tensor.storedAs
        return NpyHeader(type: type, bigEndian: false, fortranOrder: false, shape: tensor.shape)
    }

    /// Feeds the little-endian data bytes of `tensor` as `header` stores it to `sink`.
    static func writeData(_ tensor: Tensor, header: NpyHeader, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try TensorEncoding.write(tensor.values, as: header.type, to: sink)
    }

    /// Checks a re-read array against what was written: shape, type, and every value bitwise after
    /// the rounding the writer applied (f16 is the only lossy type).
    static func verify(_ back: Tensor, against tensor: Tensor, header: NpyHeader, name: String, file: String) throws {
        func fail(_ what: String) -> FormatError {
            FormatError(.io, file: file, "array '\(name)' did not read back as written: \(what); the destination was left untouched")
        }
        guard back.shape == tensor.shape, back.storedAs == header.type else {
            throw fail("shape \(back.shape) \(back.storedAs.rawValue), expected \(tensor.shape) \(header.type.rawValue)")
        }
        guard TensorEncoding.readBackMatches(tensor.values, back.values, storedAs: header.type) else {
            throw fail("values differ")
        }
    }

    // MARK: - Files

    /// `dir/embeddings.npy` → `embeddings`.
    static func arrayName(of path: String) -> String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        return base.hasSuffix(".npy") ? String(base.dropLast(4)) : base
    }
}
