/// A size that could not be laid out: negative, or overflowing when summed or multiplied.
public struct TensorError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Handle of one slice reserved in an `ArenaLayout`; valid for the arena built from that layout.
public struct ArenaSlot: Hashable, Sendable {
    public let index: Int
}

/// The plan of an arena: named float slices, each starting on a 64-byte boundary so BLAS and the
/// kernels always see cache-line-aligned rows. Sizes are checked as they are added, so a forged
/// batch size or sequence length fails here instead of in the allocator.
public struct ArenaLayout: Sendable {
    public struct Entry: Sendable {
        public let name: String
        /// Offset and length in floats.
        public let offset: Int
        public let count: Int
    }

    public private(set) var entries: [Entry] = []
    /// Total floats including alignment padding.
    public private(set) var totalCount = 0
    /// Largest arena we agree to plan, in floats (default 16 GiB of f32).
    public let maxCount: Int

    /// 64 bytes of f32: every slice starts on a cache line.
    static let alignmentFloats = 16

    public init(maxCount: Int = 1 << 32) { self.maxCount = maxCount }

    /// Reserves `count` floats under `name`.
    public mutating func reserve(_ name: String, count: Int) throws -> ArenaSlot {
        guard count >= 0 else { throw TensorError("arena slice \(name): expected a non-negative size, found \(count)") }
        let padded = (count + Self.alignmentFloats - 1) / Self.alignmentFloats * Self.alignmentFloats
        let (end, overflow) = totalCount.addingReportingOverflow(padded)
        guard !overflow, end <= maxCount else {
            throw TensorError("arena slice \(name): \(count) floats would bring the arena past its cap of \(maxCount) floats")
        }
        entries.append(Entry(name: name, offset: totalCount, count: count))
        totalCount = end
        return ArenaSlot(index: entries.count - 1)
    }

    /// Reserves the product of `dims` (overflow-checked), e.g. `[batch, seq, hidden]`.
    public mutating func reserve(_ name: String, shape dims: [Int]) throws -> ArenaSlot {
        var n = 1
        for d in dims {
            guard d >= 0 else { throw TensorError("arena slice \(name): negative dimension in \(dims)") }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw TensorError("arena slice \(name): element count of \(dims) overflows") }
            n = p
        }
        return try reserve(name, count: n)
    }
}

/// One 64-byte-aligned allocation carved into the slices of a layout. Nothing is allocated after
/// `init`, so a training or inference step reuses the same memory every time. Slices are handed out
/// as mutable buffer pointers valid for the arena's lifetime; the arena is not thread-safe.
public final class Arena {
    public let layout: ArenaLayout
    private let base: UnsafeMutablePointer<Float>
    /// Floats of the allocation (at least `layout.totalCount`).
    public let capacity: Int
    /// The arena whose allocation this one lays out anew (`relaid(_:)`); nil when it owns its memory.
    private let owner: Arena?

    public init(layout: ArenaLayout) {
        self.layout = layout
        let count = max(layout.totalCount, ArenaLayout.alignmentFloats)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.initializeMemory(as: Float.self, repeating: 0, count: count)
        capacity = count
        owner = nil
    }

    private init(layout: ArenaLayout, sharing owner: Arena) {
        self.layout = layout
        base = owner.base
        capacity = owner.capacity
        self.owner = owner.owner ?? owner
    }

    /// `layout` over this arena's memory, when it fits: for work whose shapes change from step to step
    /// (batches padded to their longest sequence), one allocation sized for the largest shape serves
    /// them all. The slices alias this arena's, and nothing is zeroed: use one of the two at a time.
    public func relaid(_ layout: ArenaLayout) -> Arena? {
        layout.totalCount <= capacity ? Arena(layout: layout, sharing: self) : nil
    }

    deinit { if owner == nil { UnsafeMutableRawPointer(base).deallocate() } }

    public subscript(slot: ArenaSlot) -> UnsafeMutableBufferPointer<Float> {
        let e = layout.entries[slot.index]
        return UnsafeMutableBufferPointer(start: base + e.offset, count: e.count)
    }

    /// The slice reserved under `name`, if any (diagnostics and tests; hot code keeps slots).
    public func slice(named name: String) -> UnsafeMutableBufferPointer<Float>? {
        guard let i = layout.entries.firstIndex(where: { $0.name == name }) else { return nil }
        return self[ArenaSlot(index: i)]
    }

    public var byteCount: Int { layout.totalCount * MemoryLayout<Float>.stride }

    /// Sets every float to zero.
    public func zero() { base.update(repeating: 0, count: layout.totalCount) }
}
