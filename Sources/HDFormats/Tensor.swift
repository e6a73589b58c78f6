/// f32 values of one tensor. Either borrowed from a memory-mapped file (zero copy; the mapping is kept
/// alive by `owner`) or owned (allocated 64-byte aligned, freed on deinit). Immutable once built, so it
/// can be shared between tensors and threads without copy-on-write surprises.
public final class FloatStorage: @unchecked Sendable {
    public let buffer: UnsafeBufferPointer<Float>
    private let owner: AnyObject?
    private let ownsMemory: Bool

    /// Allocates `count` floats and lets `fill` write every one of them.
    public init(count: Int, fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        let typed = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        let mutable = UnsafeMutableBufferPointer(start: typed, count: count)
        do { try fill(mutable) } catch { raw.deallocate(); throw error }
        buffer = UnsafeBufferPointer(mutable)
        owner = nil
        ownsMemory = true
    }

    public convenience init<C: Collection>(copying values: C) where C.Element == Float {
        self.init(count: values.count) { out in _ = out.initialize(from: values) }
    }

    /// Borrows memory that `owner` keeps alive (a mapped file). The pointer must be Float-aligned.
    public init(borrowing buffer: UnsafeBufferPointer<Float>, owner: AnyObject) {
        self.buffer = buffer
        self.owner = owner
        ownsMemory = false
    }

    deinit {
        if ownsMemory, let base = buffer.baseAddress { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }

    public var count: Int { buffer.count }
    public var array: [Float] { Array(buffer) }
    /// True when the values live in a mapped file rather than in memory this process allocated.
    public var isBorrowed: Bool { !ownsMemory }
}

/// The values of one tensor as we compute with them.
public enum TensorValues: Sendable {
    case float32(FloatStorage)
    case int64([Int64])

    public var count: Int {
        switch self {
        case .float32(let s): s.count
        case .int64(let a): a.count
        }
    }
}

/// One named tensor: its shape (row-major), its values, and the element type it was stored as.
public struct Tensor: Sendable {
    public var shape: [Int]
    public var values: TensorValues
    /// The on-disk type it was read from, or the type a writer should store it as.
    public var storedAs: ElementType
    /// Set by the readers for values read from F64 (safetensors `F64`, `.npy` `f8`), which are rounded
    /// to f32 at load: the largest relative change that made, max |f32 − f64| / |f64| over the finite
    /// nonzero values (0: every value was exact in f32; +∞: a finite value overflowed f32's range).
    /// nil for every other source type (F16, BF16 and the integers convert exactly).
    public var float64Narrowing: Double?

    public init(shape: [Int], values: TensorValues, storedAs: ElementType) {
        self.shape = shape
        self.values = values
        self.storedAs = storedAs
    }

    public init(shape: [Int], floats: [Float]) {
        self.init(shape: shape, values: .float32(FloatStorage(copying: floats)), storedAs: .float32)
    }

    public init(shape: [Int], int64s: [Int64]) {
        self.init(shape: shape, values: .int64(int64s), storedAs: .int64)
    }

    /// The f32 storage, or nil for integer tensors.
    public var floats: FloatStorage? {
        if case .float32(let s) = values { return s }
        return nil
    }

    public var elementCount: Int { values.count }
}

/// A set of named tensors plus string metadata: what one safetensors file or npz archive holds.
public struct TensorSet: Sendable {
    public var tensors: [String: Tensor]
    public var metadata: [String: String]

    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Names in byte order (the order writers use, so output is deterministic).
    public var sortedNames: [String] { tensors.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) } }

    public subscript(name: String) -> Tensor? {
        get { tensors[name] }
        set { tensors[name] = newValue }
    }

    /// Sum of the element counts.
    public var elementCount: Int { tensors.values.reduce(0) { $0 + $1.elementCount } }

    /// The same tensors with every floating-point one marked to be written as F32, the canonical type.
    /// The values are f32 in memory whatever they were read from, so writing them as F32 loses nothing
    /// more, and an F64 source is never written back as an F64 tensor holding f32-rounded values; what
    /// the rounding at load changed is `float64Narrowings`.
    public func storingFloatsAsF32() -> TensorSet {
        var out = self
        for (name, tensor) in tensors where tensor.floats != nil && tensor.storedAs != .float32 {
            out.tensors[name]?.storedAs = .float32
        }
        return out
    }

    /// The tensors read from F64, in name order, with the largest relative change rounding their
    /// values to f32 made (see `Tensor.float64Narrowing`).
    public var float64Narrowings: [(name: String, maxRelativeChange: Double)] {
        sortedNames.compactMap { name in tensors[name]?.float64Narrowing.map { (name, $0) } }
    }
}

/// Caps that keep a forged header from causing a huge allocation. Every reader takes them.
public struct ReadLimits: Sendable {
    /// Largest file accepted at all.
    public var maxFileBytes: Int
    /// Largest safetensors JSON header / npy header.
    public var maxHeaderBytes: Int
    /// Largest total of decompressed member bytes in one archive.
    public var maxDecompressedBytes: Int
    /// Most tensors / members in one file.
    public var maxTensorCount: Int

    public init(maxFileBytes: Int = 64 << 30, maxHeaderBytes: Int = 16 << 20,
                maxDecompressedBytes: Int = 64 << 30, maxTensorCount: Int = 1 << 20) {
        self.maxFileBytes = maxFileBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxDecompressedBytes = maxDecompressedBytes
        self.maxTensorCount = maxTensorCount
    }

    public static let `default` = ReadLimits()
}

/// Checked element-count and byte-size arithmetic for shapes read from untrusted headers.
public enum ShapeMath {
    /// Product of the dimensions, or nil on a negative dimension or overflow.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = p
        }
        return n
    }

    /// Element count times item size, or nil on overflow.
    public static func byteCount(_ shape: [Int], itemSize: Int) -> Int? {
        guard let n = elementCount(shape) else { return nil }
        let (b, o) = n.multipliedReportingOverflow(by: itemSize)
        return o ? nil : b
    }
}
