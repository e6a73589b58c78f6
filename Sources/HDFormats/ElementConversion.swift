/// Conversions between on-disk element types and f32, by bit manipulation so they are exact for every
/// input (subnormals, ±0, ±Inf, NaN) and do not depend on F16C or compiler-rt half support.
/// Sources are raw little-endian bytes at any alignment (file data after an odd-length header is
/// unaligned), so every load is `loadUnaligned`; the loops carry no allocation and vectorise.
public enum ElementConversion {
    // MARK: Scalars

    /// IEEE binary16 bits → f32 (exact; NaN payloads kept).
    @inline(__always)
    public static func float(fromFloat16Bits h: UInt16) -> Float {
        // Move exponent+mantissa into f32 position and rebias. Inf/NaN need the exponent maxed out;
        // subnormals are renormalised with one float subtraction (F. Giesen's half_to_float).
        let shiftedExponent: UInt32 = 0x7C00 << 13
        var o = UInt32(h & 0x7FFF) << 13
        let exponent = o & shiftedExponent
        o &+= (127 - 15) << 23
        if exponent == shiftedExponent {
            o &+= (128 - 16) << 23
        } else if exponent == 0 {
            o &+= 1 << 23
            o = (Float(bitPattern: o) - Float(bitPattern: 113 << 23)).bitPattern
        }
        return Float(bitPattern: o | UInt32(h & 0x8000) << 16)
    }

    /// f32 → IEEE binary16 bits, rounding to nearest even; overflow → ±Inf, NaN → quiet NaN.
    @inline(__always)
    public static func float16Bits(_ value: Float) -> UInt16 {
        let f32Infinity: UInt32 = 255 << 23
        let f16Overflow: UInt32 = (127 + 16) << 23
        let denormMagic: UInt32 = ((127 - 15) + (23 - 10) + 1) << 23
        var u = value.bitPattern
        let sign = u & 0x8000_0000
        u ^= sign
        let o: UInt32
        if u >= f16Overflow {
            o = u > f32Infinity ? 0x7E00 : 0x7C00
        } else if u < (113 << 23) {
            // Result is subnormal or zero: adding a magic constant makes the FPU round the mantissa
            // (to nearest even) into the low bits.
            o = (Float(bitPattern: u) + Float(bitPattern: denormMagic)).bitPattern &- denormMagic
        } else {
            let mantissaOdd = (u >> 13) & 1
            u &+= (UInt32(15) &- 127) << 23 &+ 0xFFF
            u &+= mantissaOdd
            o = u >> 13
        }
        return UInt16(truncatingIfNeeded: o | sign >> 16)
    }

    /// bfloat16 bits → f32 (exact: bf16 is the top half of an f32).
    @inline(__always)
    public static func float(fromBFloat16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// f32 → bfloat16 bits, rounding to nearest even; NaN stays NaN (quieted) rather than rounding to Inf.
    @inline(__always)
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        let u = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: u >> 16) | 0x0040 }
        let rounded = u &+ 0x7FFF &+ ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    // MARK: Buffers to f32 (readers)

    /// Reads `count` little-endian binary16 values from `source` into `destination[0..<count]`.
    public static func float16ToFloat32(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count >= count, "destination too small")
        guard let d = destination.baseAddress else { return }
        for i in 0..<count {
            d[i] = float(fromFloat16Bits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }

    /// Reads `count` little-endian bfloat16 values from `source` into `destination[0..<count]`.
    public static func bfloat16ToFloat32(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count >= count, "destination too small")
        guard let d = destination.baseAddress else { return }
        for i in 0..<count {
            d[i] = float(fromBFloat16Bits: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }

    /// Reads `count` little-endian f64 values, rounding each to the nearest f32 (overflow → ±Inf), and
    /// returns the largest relative change that made: max |f32 − f64| / |f64| over the finite nonzero
    /// values (0 when every value is exact in f32, +∞ when a finite value overflowed).
    @discardableResult
    public static func float64ToFloat32(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutableBufferPointer<Float>) -> Double {
        precondition(destination.count >= count, "destination too small")
        guard let d = destination.baseAddress else { return 0 }
        var worst: Double = 0
        for i in 0..<count {
            let wide = Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
            let narrow = Float(wide)
            d[i] = narrow
            if wide.isFinite, wide != 0 {
                let change = abs(Double(narrow) - wide) / abs(wide)
                if change > worst { worst = change }
            }
        }
        return worst
    }

    /// Copies `count` little-endian f32 values from a source of any alignment.
    public static func float32ToFloat32(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count >= count, "destination too small")
        guard let d = destination.baseAddress else { return }
        for i in 0..<count {
            d[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        }
    }

    // MARK: f32 buffers to disk types (writers)

    /// Writes `source.count` little-endian binary16 values (2 bytes each) to `destination`.
    public static func float32ToFloat16(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawPointer) {
        for (i, x) in source.enumerated() {
            destination.storeBytes(of: float16Bits(x).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    /// Writes `source.count` little-endian bfloat16 values (2 bytes each) to `destination`.
    public static func float32ToBFloat16(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawPointer) {
        for (i, x) in source.enumerated() {
            destination.storeBytes(of: bfloat16Bits(x).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    /// Writes `source.count` little-endian f64 values (exact widening, 8 bytes each) to `destination`.
    public static func float32ToFloat64(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableRawPointer) {
        for (i, x) in source.enumerated() {
            destination.storeBytes(of: Double(x).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self)
        }
    }
}
