import HDTensor

/// Inverted dropout as BERT places it when fine-tuning (embeddings' output, attention probabilities,
/// each residual branch before its add, the classifier's input): each element is kept with
/// probability 1 − p and scaled by 1/(1 − p), so evaluation needs no rescaling. Masks are drawn from
/// one generator, element by element in a fixed order (embeddings, then per layer the attention
/// probabilities, the attention output, the FFN output, then the classifier), so a run with a given
/// seed draws the same masks whatever the thread count.
public struct Dropout: Sendable {
    public let probability: Float
    public private(set) var rng: Xoshiro256

    /// `probability` in [0, 1).
    public init(probability: Float, rng: Xoshiro256) throws {
        guard probability >= 0, probability < 1 else {
            throw ModelError(.badInput, file: "<argument>", "dropout: expected a probability in [0, 1), found \(probability)")
        }
        self.probability = probability
        self.rng = rng
    }

    /// Fills `mask` with 0 (dropped) or 1/(1 − p) (kept). A 24-bit uniform u is kept when u ≥ p.
    public mutating func draw(_ mask: UnsafeMutableBufferPointer<Float>) {
        let keep = 1 / (1 - probability)
        for i in mask.indices { mask[i] = rng.nextUnitFloat() < probability ? 0 : keep }
    }

    /// Draws a mask into `mask` and multiplies `x` by it in place (`count` elements of each).
    public mutating func apply(_ x: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>, count: Int) {
        draw(UnsafeMutableBufferPointer(start: mask, count: count))
        Dropout.multiply(x, by: mask, count: count)
    }

    /// x ← x ⊙ mask: the forward's scaling, and the backward's (the same mask scales the gradient).
    public static func multiply(_ x: UnsafeMutablePointer<Float>, by mask: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] *= mask[i] }
    }
}
