import HDModel
import HDTensor

/// How far a shrunk model is from the masked model it came from on one batch: the relative error
/// (max |masked − dense| / max |dense|) of every hidden state, the masked side gathered on the kept
/// hidden dimensions, and of the MLM logits when there is a head.
public struct EquivalenceReport: Sendable {
    public let sequences: Int
    public let sequenceLength: Int
    /// Index 0: the embeddings' output; index k: the output of encoder layer k − 1.
    public let hiddenStates: [Float]
    public let mlmLogits: Float?

    /// What each compared tensor is, with its error, in forward order.
    public var comparisons: [(what: String, error: Float)] {
        hiddenStates.enumerated().map { k, e in (k == 0 ? "the embeddings' output" : "the output of encoder layer \(k - 1)", e) }
            + (mlmLogits.map { [("the MLM logits", $0)] } ?? [])
    }

    /// The largest error and where it is.
    public var worst: (what: String, error: Float) {
        comparisons.max { $0.error < $1.error }!
    }

    /// Refuses the export when the first tensor over `tolerance` (NaN included) is found; `file` is
    /// the checkpoint the models came from.
    public func check(tolerance: Float, file: String) throws {
        // The first one over is where the models part; later ones only inherit its difference.
        guard let first = comparisons.first(where: { !($0.error <= tolerance) }) else { return }
        throw ModelError(.badInput, file: file,
            "equivalence check: the shrunk model differs from the masked one at \(first.what): relative error \(first.error) over \(sequences) sequences of \(sequenceLength) tokens, expected ≤ \(tolerance); the weights do not match what the masks describe")
    }
}

public enum Equivalence {
    /// Runs `masked` (at full width with `masks`, every product over the zeros too — not gathered on
    /// its kept units, which would compute much as `Shrink` does) and `dense` (its `Shrink.dense`)
    /// on `batch` and compares them tensor by tensor.
    public static func measure(masked: BertModel, masks: PruneMasks, dense: BertModel, batch: TokenBatch) throws -> EquivalenceReport {
        let kept = masks.flags(.hidden).indices.filter { masks.flags(.hidden)[$0] != 0 }
        let fullWidth = try BertModel(config: masked.config, weights: masked.weights, masks: masks, gathersKeptUnits: false)
        return try measure(reference: fullWidth, keptHidden: kept, candidate: dense, batch: batch)
    }

    /// Runs `reference` and `candidate`, two dense models of the same hidden width (the shrunk model
    /// and its zero-padded Hugging Face layout, say), on `batch` and compares them tensor by tensor.
    public static func measure(reference: BertModel, candidate: BertModel, batch: TokenBatch) throws -> EquivalenceReport {
        try measure(reference: reference, keptHidden: Array(0..<reference.config.hiddenSize), candidate: candidate, batch: batch)
    }

    /// `reference`'s hidden states gathered on `keptHidden` against `candidate`'s.
    static func measure(reference masked: BertModel, keptHidden kept: [Int], candidate dense: BertModel, batch: TokenBatch) throws -> EquivalenceReport {
        let options = ForwardOptions(hiddenStates: true)
        let d = masked.config.hiddenSize
        let L = batch.sequenceLength
        // One sequence at a time and one model at a time, so the check's memory is one sequence's
        // forward (a BERT-base export's peak RSS is its weights, not the check's activations). The
        // error over the batch is max |Δ| over max |reference| across every sequence, accumulated.
        var hidden = [Extent](repeating: Extent(), count: masked.config.numHiddenLayers + 1), logits = Extent()
        for row in 0..<batch.batchSize {
            let part = (row * L)..<((row + 1) * L)
            let one = try TokenBatch(batchSize: 1, sequenceLength: L, ids: batch.ids[part].map(Int.init),
                                     tokenTypes: batch.tokenTypes[part].map(Int.init), attentionMask: batch.attentionMask[part].map(Int.init))
            let (reference, referenceLogits): ([[Float]], [Float]?) = try {
                let a = try masked.forward(one, options: options)
                let gathered = a.hiddenStates!.map { full in (0..<L).flatMap { r in kept.map { full[r * d + $0] } } }
                return (gathered, masked.weights.mlmHead == nil ? nil : try masked.mlmLogits(a))
            }()
            let b = try dense.forward(one, options: options)
            for (k, (x, y)) in zip(reference, b.hiddenStates!).enumerated() { hidden[k].add(x, y) }
            if let referenceLogits { logits.add(referenceLogits, try dense.mlmLogits(b)) }
        }
        let mlmLogits = masked.weights.mlmHead == nil ? nil : logits.relativeError
        return EquivalenceReport(sequences: batch.batchSize, sequenceLength: L, hiddenStates: hidden.map(\.relativeError), mlmLogits: mlmLogits)
    }

    /// The running max |a − b| and max |b| of one compared tensor over the sequences.
    struct Extent {
        var diff: Float = 0
        var scale: Float = .leastNormalMagnitude

        mutating func add(_ a: [Float], _ b: [Float]) {
            for i in a.indices {
                let e = abs(a[i] - b[i])
                diff = e.isNaN || diff.isNaN ? .nan : max(diff, e)
                scale = max(scale, abs(b[i]))
            }
        }

        /// max |a − b| / max |b|: the error relative to the reference's scale, so a near-zero
        /// element does not demand more digits than f32 has. NaN anywhere gives NaN.
        var relativeError: Float { diff / scale }
    }
}

extension Equivalence {
    /// The check's input: `sequences` rows of ids drawn from the whole vocabulary by a seeded
    /// generator (token type 0, then 1 from halfway), and one more row whose second half is padding,
    /// so the attention mask's path is compared too. 128 tokens, or the position table.
    public static func checkBatch(_ config: BertConfig, sequences: Int, seed: UInt64 = 0) throws -> TokenBatch {
        var rng = Xoshiro256(seed: seed)
        let length = min(128, config.maxPositionEmbeddings), half = max(1, length / 2)
        var ids: [[Int]] = [], types: [[Int]] = [], mask: [[Int]] = []
        for row in 0...sequences {
            let real = row < sequences ? length : half
            ids.append((0..<length).map { $0 < real ? Int.random(in: 0..<config.vocabSize, using: &rng) : config.padTokenId })
            types.append((0..<length).map { config.typeVocabSize > 1 && $0 >= half && $0 < real ? 1 : 0 })
            mask.append((0..<length).map { $0 < real ? 1 : 0 })
        }
        return try TokenBatch(ids: ids, tokenTypes: types, attentionMask: mask)
    }
}
