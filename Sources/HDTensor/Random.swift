import Foundation
/// SplitMix64 (Steele, Lea, Flood 2014): one UInt64 of state; used to expand a user seed into other
/// generators' states and to hash indices (its output function is a good 64-bit mixer).
public struct SplitMix64: Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// Uniform in [0, 1) with 24 bits.
    /// A standard normal draw (Box–Muller on two 53-bit uniforms, the first in (0, 1) so the
    /// logarithm is finite).
    public mutating func nextStandardNormal() -> Double {
        let u1 = (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992
        let u2 = Double(next() >> 11) / 9_007_199_254_740_992
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// The finaliser alone: a stateless bijective hash of `x`.
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman, Vigna 2018): the generator behind masking and data order. Its whole
/// state is four UInt64s, stored in `student.ckpt` as 16-digit hex words so any language can resume
/// the exact stream. Seeded through SplitMix64 as the authors recommend (never all zero).
public struct Xoshiro256: RandomNumberGenerator, Sendable, Equatable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = SplitMix64(seed: seed)
        state = (s.next(), s.next(), s.next(), s.next())
    }

    /// Restores a saved state; nil for the all-zero state, which the generator can never leave.
    public init?(state words: [UInt64]) {
        guard words.count == 4, words.contains(where: { $0 != 0 }) else { return nil }
        state = (words[0], words[1], words[2], words[3])
    }

    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits, so every value is exactly representable as a Float.
    /// A standard normal draw (Box–Muller on two 53-bit uniforms, the first in (0, 1) so the
    /// logarithm is finite).
    public mutating func nextStandardNormal() -> Double {
        let u1 = (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992
        let u2 = Double(next() >> 11) / 9_007_199_254_740_992
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in 0..<bound (bound > 0), unbiased (Lemire's multiply-and-reject). Written out rather
    /// than `Int.random(in:using:)` because the standard library does not promise a stable algorithm
    /// across releases, and resumed runs must draw the same numbers.
    public mutating func nextInt(below bound: Int) -> Int {
        let b = UInt64(bound)
        var product = next().multipliedFullWidth(by: b)
        if product.low < b {
            let threshold = (0 &- b) % b
            while product.low < threshold { product = next().multipliedFullWidth(by: b) }
        }
        return Int(product.high)
    }

    public static func == (a: Xoshiro256, b: Xoshiro256) -> Bool { a.stateWords == b.stateWords }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
