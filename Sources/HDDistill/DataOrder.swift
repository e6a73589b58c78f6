import HDTensor

/// Which training sequence comes next: epoch after epoch, each a fresh permutation of all sequences.
/// Epoch e's permutation is a Fisher–Yates shuffle driven by `Xoshiro256(seed: seed ^ mix(e))`, so the
/// whole position in the data is (epoch, position) — two integers in `student.ckpt` — and a resumed
/// run rebuilds the same permutation instead of storing it.
public struct DataOrder: Sendable, Equatable {
    public let seed: UInt64
    public let sequenceCount: Int
    public private(set) var epoch: Int
    /// Sequences already taken from the current epoch.
    public private(set) var position: Int
    private var permutation: [Int32]

    public init(seed: UInt64, sequenceCount: Int, epoch: Int = 0, position: Int = 0) throws {
        let arg = "<argument>"
        guard sequenceCount > 0, sequenceCount <= Int(Int32.max) else {
            throw DistillError(.invalidArgument, file: arg, "data order: expected 1…\(Int32.max) sequences, found \(sequenceCount)")
        }
        guard epoch >= 0, (0...sequenceCount).contains(position) else {
            throw DistillError(.badMetadata, file: arg,
                "data order: expected epoch ≥ 0 and position in 0…\(sequenceCount), found epoch \(epoch) position \(position)")
        }
        self.seed = seed
        self.sequenceCount = sequenceCount
        self.epoch = epoch
        self.position = position
        permutation = Self.permutation(seed: seed, epoch: epoch, count: sequenceCount)
    }

    public mutating func next() -> Int {
        if position == sequenceCount {
            epoch += 1
            position = 0
            permutation = Self.permutation(seed: seed, epoch: epoch, count: sequenceCount)
        }
        defer { position += 1 }
        return Int(permutation[position])
    }

    static func permutation(seed: UInt64, epoch: Int, count: Int) -> [Int32] {
        var rng = Xoshiro256(seed: seed ^ SplitMix64.mix(UInt64(epoch)))
        var order = (0..<Int32(count)).map { $0 }
        order.withUnsafeMutableBufferPointer { p in
            var i = p.count - 1
            while i > 0 {
                p.swapAt(i, rng.nextInt(below: i + 1))
                i -= 1
            }
        }
        return order
    }

    public static func == (a: DataOrder, b: DataOrder) -> Bool {
        a.seed == b.seed && a.sequenceCount == b.sequenceCount && a.epoch == b.epoch && a.position == b.position
    }
}
