import Foundation
import HDDistill
import HDModel
import HDTensor
import Testing

/// The pooled-embedding term's value against a direct computation, and its gradient against central
/// finite differences, for both poolings, with padding and with pruned hidden dimensions.
@Suite struct PooledCosineTests {
    static let (B, L, d) = (3, 5, 8)
    static let mask: [Int32] = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0]
    static let keep: [Float] = [1, 1, 0, 1, 1, 1, 0, 1]

    static func random(_ seed: UInt64) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        return (0..<(B * L * d)).map { _ in Float(rng.nextStandardNormal()) }
    }

    static func loss(_ pooling: SentencePooling, _ s: [Float], _ t: [Float], keep: [Float]?, gradient: inout [Float]) -> Double {
        s.withUnsafeBufferPointer { sp in
            t.withUnsafeBufferPointer { tp in
                gradient.withUnsafeMutableBufferPointer { g in
                    keep.map { k in
                        k.withUnsafeBufferPointer {
                            PooledCosineLoss(pooling: pooling)(student: sp, teacher: tp, batch: B, length: L, width: d, attentionMask: mask,
                                                               keep: $0, studentGradient: g, scale: 1)
                        }
                    } ?? PooledCosineLoss(pooling: pooling)(student: sp, teacher: tp, batch: B, length: L, width: d, attentionMask: mask,
                                                            keep: nil, studentGradient: g, scale: 1)
                }
            }
        }
    }

    @Test(arguments: [SentencePooling.mean, .cls], [false, true])
    func gradientMatchesFiniteDifferences(_ pooling: SentencePooling, pruned: Bool) {
        let s = Self.random(1), t = Self.random(2), keep = pruned ? Self.keep : nil
        var g = [Float](repeating: 0, count: s.count), scratch = g
        let value = Self.loss(pooling, s, t, keep: keep, gradient: &g)
        #expect(value > 0 && value < 2)
        let h: Float = 1e-2
        for i in stride(from: 0, to: s.count, by: 7) {
            var up = s, down = s
            up[i] += h
            down[i] -= h
            let numeric = (Self.loss(pooling, up, t, keep: keep, gradient: &scratch) - Self.loss(pooling, down, t, keep: keep, gradient: &scratch))
                / Double(2 * h)
            #expect(abs(numeric - Double(g[i])) <= 2e-3 * max(abs(numeric), 0.05), "\(pooling) element \(i): \(numeric) vs \(g[i])")
        }
        // Padding and pruned dimensions get no gradient.
        for b in 0..<Self.B {
            for p in 0..<Self.L where Self.mask[b * Self.L + p] == 0 || (pooling == .cls && p > 0) {
                #expect(g[(b * Self.L + p) * Self.d..<(b * Self.L + p + 1) * Self.d].allSatisfy { $0 == 0 })
            }
        }
        if let keep {
            for i in g.indices where keep[i % Self.d] == 0 { #expect(g[i] == 0) }
        }
    }

    @Test func identicalEmbeddingsCostNothing() {
        let s = Self.random(3)
        var g = [Float](repeating: 0, count: s.count)
        #expect(abs(Self.loss(.mean, s, s, keep: nil, gradient: &g)) < 1e-6)
        #expect(g.allSatisfy { abs($0) < 1e-5 })
    }
}
