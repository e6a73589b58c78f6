import HDModel
import HDTensor

/// Per-weight importance and its sum per prunable unit (DESIGN.md §4).
/// - `platon`: I = |θ ⊙ ∇θL|, Ī ← β1·Ī + (1 − β1)·I, Ū ← β2·Ū + (1 − β2)·|I − Ī| (with the updated Ī,
///   as PLATON does), score Ī·Ū: a weight that matters steadily ranks above one that spiked once.
/// - `sensitivity`: the current step's I alone.
/// - `magnitude`: |θ|, no gradient needed (the self-distilled recipe's criterion).
/// A unit's score is the sum over every weight it removes, so a unit whose weights are all zero
/// scores exactly zero.
public final class Importance {
    public enum Kind: String, Sendable, CaseIterable { case platon, sensitivity, magnitude }

    public let kind: Kind
    public let beta1: Float, beta2: Float
    public let layout: BertParameterLayout
    /// Ī and Ū (platon), or the last step's I (sensitivity); empty for magnitude.
    public let mean: FlatFloats, uncertainty: FlatFloats

    public init(kind: Kind, layout: BertParameterLayout, beta1: Float = 0.85, beta2: Float = 0.95) {
        self.kind = kind
        self.beta1 = beta1
        self.beta2 = beta2
        self.layout = layout
        mean = FlatFloats(count: kind == .magnitude ? 0 : layout.count)
        uncertainty = FlatFloats(count: kind == .platon ? layout.count : 0)
    }

    /// Folds this step's |θ ⊙ ∇θ| into the buffers (nothing for magnitude), element by element, the
    /// elements split over the workers (on the calling thread alone it was 1.9 % of a 2-thread
    /// MiniLM step's samples, all of them while the other worker waited).
    public func update(parameters: UnsafeBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        let p = parameters.baseAddress!, g = gradients.baseAddress!
        switch kind {
        case .magnitude:
            return
        case .sensitivity:
            let s = mean.buffer.baseAddress!
            ParallelFor.elements(layout.count) { start, count in
                for i in start..<(start + count) { s[i] = abs(p[i] * g[i]) }
            }
        case .platon:
            let a = mean.buffer.baseAddress!, u = uncertainty.buffer.baseAddress!
            let b1 = beta1, b2 = beta2
            ParallelFor.elements(layout.count) { start, count in
                for i in start..<(start + count) {
                    let current = abs(p[i] * g[i])
                    let average = b1 * a[i] + (1 - b1) * current
                    a[i] = average
                    u[i] = b2 * u[i] + (1 - b2) * abs(current - average)
                }
            }
        }
    }

    /// The score of every unit of every group of `masks`, from the buffers (or |θ| for magnitude).
    public func unitScores(masks: PruneMasks, parameters: UnsafeBufferPointer<Float>) -> [PruneGroup: [Double]] {
        var scores = Dictionary(uniqueKeysWithValues: masks.groups.map { ($0, [Double](repeating: 0, count: masks.size($0))) })
        let p = parameters.baseAddress!
        let a = mean.buffer.baseAddress, u = uncertainty.buffer.baseAddress
        for c in PruneMasks.couplings(layout) where c.rows != nil || c.columns != nil {
            let (rows, columns) = c.matrix
            var rowSums = [Double](repeating: 0, count: rows), columnSums = [Double](repeating: 0, count: columns)
            for r in 0..<rows {
                let base = c.entry.offset + r * columns
                var rowSum: Float = 0
                for j in 0..<columns {
                    let i = base + j
                    let s: Float = switch kind {
                    case .magnitude: abs(p[i])
                    case .sensitivity: a![i]
                    case .platon: a![i] * u![i]
                    }
                    rowSum += s
                    if c.columns != nil { columnSums[j] += Double(s) }
                }
                rowSums[r] = Double(rowSum)
            }
            if let g = c.rows { for r in 0..<rows { scores[g]![r] += rowSums[r] } }
            if let g = c.columns { for j in 0..<columns { scores[g]![j] += columnSums[j] } }
        }
        return scores
    }

    /// Zeroes the buffers at pruned weights, so a removed unit's stale averages do not leak into the
    /// scores of the units it shared a matrix with.
    public func zeroPruned(_ masks: PruneMasks) {
        if kind != .magnitude { masks.zeroPruned(mean.buffer, layout: layout) }
        if kind == .platon { masks.zeroPruned(uncertainty.buffer, layout: layout) }
    }

    /// The buffers that a resumed run needs (platon only: sensitivity is recomputed every step).
    public var persistent: [(name: String, buffer: FlatFloats)] {
        kind == .platon ? [("mean", mean), ("uncertainty", uncertainty)] : []
    }
}
