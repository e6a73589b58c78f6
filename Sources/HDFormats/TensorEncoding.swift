#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the writers turn in-memory values into a stored element type, and how they check a re-read
/// file against what they meant to write. One place, so safetensors, .npy and .npz round identically.
enum TensorEncoding {
    /// Feeds the little-endian bytes of `values` stored as `dtype` to `sink`: f32 and i64 straight from
    /// storage, every other type converted through a small reused buffer.
    static func write(_ values: TensorValues, as dtype: ElementType, to sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let chunk = 8192
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: chunk * 8, alignment: 16)
        defer { scratch.deallocate() }
        switch values {
        case .float32(let storage) where dtype == .float32:
            try sink(UnsafeRawBufferPointer(storage.buffer))
        case .float32(let storage):
            var start = 0
            while start < storage.count {
                let n = min(chunk, storage.count - start)
                let slice = UnsafeBufferPointer(rebasing: storage.buffer[start..<(start + n)])
                switch dtype {
                case .float16: ElementConversion.float32ToFloat16(slice, into: scratch)
                case .bfloat16: ElementConversion.float32ToBFloat16(slice, into: scratch)
                default: ElementConversion.float32ToFloat64(slice, into: scratch)
                }
                try sink(UnsafeRawBufferPointer(start: scratch, count: n * dtype.byteCount))
                start += n
            }
        case .int64(let values) where dtype == .int64:
            try values.withUnsafeBytes { try sink($0) }
        case .int64(let values):
            var start = 0
            while start < values.count {
                let n = min(chunk, values.count - start)
                for i in 0..<n {
                    scratch.storeBytes(of: Int32(truncatingIfNeeded: values[start + i]).littleEndian, toByteOffset: 4 * i, as: Int32.self)
                }
                try sink(UnsafeRawBufferPointer(start: scratch, count: 4 * n))
                start += n
            }
        }
    }

    /// Whether `have` (read back) equals `want` stored as `dtype`: bitwise, after the rounding the
    /// writer applied (f16 and bf16 are lossy; f64 and the integer types are exact).
    static func readBackMatches(_ want: TensorValues, _ have: TensorValues, storedAs dtype: ElementType) -> Bool {
        switch (want, have) {
        case (.float32(let want), .float32(let have)) where dtype == .float32 || dtype == .float64:
            return want.count == have.count
                && (want.count == 0 || memcmp(want.buffer.baseAddress!, have.buffer.baseAddress!, 4 * want.count) == 0)
        case (.float32(let want), .float32(let have)):
            let roundTrip: (Float) -> Float = dtype == .bfloat16
                ? { ElementConversion.float(fromBFloat16Bits: ElementConversion.bfloat16Bits($0)) }
                : { ElementConversion.float(fromFloat16Bits: ElementConversion.float16Bits($0)) }
            return want.count == have.count && zip(want.buffer, have.buffer).allSatisfy { roundTrip($0).bitPattern == $1.bitPattern }
        case (.int64(let want), .int64(let have)):
            return want == have
        default:
            return false
        }
    }
}
