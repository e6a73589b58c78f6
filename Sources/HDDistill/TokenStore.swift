/// Token ids of a whole split in one contiguous buffer, two bytes each when the vocabulary fits in
/// 16 bits (BERT's 30522 does) and four otherwise: a 100 MB corpus (~25 M tokens) costs 50 MB here
/// instead of 200 MB as `[Int]`.
public struct TokenStore: Sendable {
    private var narrow: [UInt16] = []
    private var wide: [UInt32] = []
    public let isNarrow: Bool

    public init(vocabularySize: Int) {
        isNarrow = vocabularySize <= Int(UInt16.max) + 1
    }

    /// A store holding `ids` (already checked to lie below `vocabularySize`: `TokenFile.read`).
    public init<C: Collection>(vocabularySize: Int, copying ids: C) where C.Element: BinaryInteger {
        self.init(vocabularySize: vocabularySize)
        if isNarrow {
            narrow = ids.map { UInt16(truncatingIfNeeded: $0) }
        } else {
            wide = ids.map { UInt32(truncatingIfNeeded: $0) }
        }
    }

    /// The ids widened to Int64, as the token file stores them (I32 on disk).
    public var int64s: [Int64] { isNarrow ? narrow.map(Int64.init) : wide.map(Int64.init) }

    public var count: Int { isNarrow ? narrow.count : wide.count }

    /// Bytes held by the ids (capacity, not just count: that is what the process pays for).
    public var bytes: Int { isNarrow ? narrow.capacity * 2 : wide.capacity * 4 }

    /// Appends ids the tokenizer produced; they are below the vocabulary size, so they fit.
    public mutating func append(contentsOf ids: [Int]) {
        if isNarrow {
            narrow.append(contentsOf: ids.lazy.map { UInt16(truncatingIfNeeded: $0) })
        } else {
            wide.append(contentsOf: ids.lazy.map { UInt32(truncatingIfNeeded: $0) })
        }
    }

    public mutating func append(_ id: Int) {
        if isNarrow { narrow.append(UInt16(truncatingIfNeeded: id)) } else { wide.append(UInt32(truncatingIfNeeded: id)) }
    }

    /// Gives back the spare capacity left by doubling growth once the split is complete (a fresh
    /// exact-size copy: `Array(array)` would share the oversized buffer).
    public mutating func shrinkToFit() {
        if isNarrow { narrow = Self.exactCopy(narrow) } else { wide = Self.exactCopy(wide) }
    }

    private static func exactCopy<T>(_ a: [T]) -> [T] {
        [T](unsafeUninitializedCapacity: a.count) { out, initialized in
            initialized = out.initialize(fromContentsOf: a)
        }
    }

    public subscript(index: Int) -> Int { isNarrow ? Int(narrow[index]) : Int(wide[index]) }

    /// Copies ids `start ..< start + out.count` into `out`, widened to Int32 for the model.
    public func copy(from start: Int, into out: UnsafeMutableBufferPointer<Int32>) {
        if isNarrow {
            narrow.withUnsafeBufferPointer { src in
                for i in 0..<out.count { out[i] = Int32(src[start + i]) }
            }
        } else {
            wide.withUnsafeBufferPointer { src in
                for i in 0..<out.count { out[i] = Int32(truncatingIfNeeded: src[start + i]) }
            }
        }
    }
}
