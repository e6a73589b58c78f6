/// Element types a tensor can be stored as on disk. Floating types are converted to f32 at load;
/// integer types are kept as Int64 for integral tensors such as `position_ids`.
public enum ElementType: String, Sendable, CaseIterable {
    case float64 = "F64", float32 = "F32", float16 = "F16", bfloat16 = "BF16"
    case int64 = "I64", int32 = "I32"

    public var byteCount: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16: 2
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float64, .float32, .float16, .bfloat16: true
        case .int64, .int32: false
        }
    }

    /// The safetensors dtype string ("F32", …).
    public var safetensorsName: String { rawValue }

    /// The little-endian NumPy descr ("<f4", …); bfloat16 has none.
    public var numpyDescr: String? {
        switch self {
        case .float64: "<f8"
        case .float32: "<f4"
        case .float16: "<f2"
        case .int64: "<i8"
        case .int32: "<i4"
        case .bfloat16: nil
        }
    }
}
