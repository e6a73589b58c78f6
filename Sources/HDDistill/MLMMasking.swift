import HDTensor
import HDTokenizer

/// One masked-LM batch, flat `[batchSize × sequenceLength]` arrays ready for the model.
public struct MLMBatch: Sendable, Equatable {
    public let batchSize: Int
    public let sequenceLength: Int
    /// Input ids after masking.
    public var ids: [Int32]
    public var tokenTypes: [Int32]
    /// 1 for a real token: packed text has no padding, a task's examples do.
    public var attentionMask: [Int32]
    /// Flat positions `b · L + t` that carry a label, ascending.
    public var maskedPositions: [Int32]
    /// The original id at each masked position.
    public var labels: [Int32]
}

/// BERT's masking as Google's `create_pretraining_data.py` does it: in each sequence, exactly
/// `max(1, round(rate · n))` of its n non-special positions are chosen uniformly at random (a partial
/// Fisher–Yates shuffle); a chosen token becomes `[MASK]` with probability 0.8, a random non-special
/// token with 0.1, and stays itself with 0.1. Special tokens are never chosen. A fixed count rather than
/// transformers' per-token Bernoulli draw bounds the labels of a batch (`maxLabels`), so the MLM
/// head's buffers are sized once, and every sequence contributes to the loss.
/// All randomness comes from the `Xoshiro256` passed in, so the state saved after a batch resumes it.
public struct MLMMasking: Sendable {
    public let specialIDs: SpecialTokenIDs
    public let vocabularySize: Int
    public let rate: Float
    private let special: [Bool]

    public init(specialIDs: SpecialTokenIDs, vocabularySize: Int, rate: Float = 0.15) throws {
        let arg = "<argument>"
        let ids = [specialIDs.pad, specialIDs.unk, specialIDs.cls, specialIDs.sep, specialIDs.mask]
        guard vocabularySize > Set(ids).count, ids.allSatisfy({ (0..<vocabularySize).contains($0) }) else {
            throw DistillError(.invalidArgument, file: arg,
                "masking: expected special ids inside a vocabulary with at least one ordinary token; found ids \(ids), size \(vocabularySize)")
        }
        guard rate > 0, rate <= 1 else {
            throw DistillError(.invalidArgument, file: arg, "masking: rate must be in (0, 1]; found \(rate)")
        }
        var special = [Bool](repeating: false, count: vocabularySize)
        for id in ids { special[id] = true }
        self.specialIDs = specialIDs
        self.vocabularySize = vocabularySize
        self.rate = rate
        self.special = special
    }

    /// Takes `batchSize` sequences from `order`, reads them from `data` and masks them (unless
    /// `masked` is false: a teacher without an MLM head sees, like its student, the text as it is).
    public func trainingBatch(data: any DistillationData, order: inout DataOrder, batchSize: Int, masked: Bool = true,
                              rng: inout Xoshiro256) -> MLMBatch {
        var indices: [Int] = []
        indices.reserveCapacity(batchSize)
        for _ in 0..<batchSize { indices.append(order.next()) }
        return batch(data: data, split: .train, indices: indices, masked: masked, rng: &rng)
    }

    /// Sequences `indices` of `split`, masked (when `masked`). Evaluation passes a generator seeded the
    /// same way every time, so held-out losses are comparable across steps.
    public func batch(data: any DistillationData, split: CorpusSplit, indices: [Int], masked: Bool = true,
                      rng: inout Xoshiro256) -> MLMBatch {
        let length = data.sequenceLength, count = indices.count * length
        var ids = [Int32](repeating: 0, count: count), types = ids, attention = ids
        ids.withUnsafeMutableBufferPointer { i in
            types.withUnsafeMutableBufferPointer { t in
                attention.withUnsafeMutableBufferPointer { a in
                    for (b, index) in indices.enumerated() {
                        let rows = (b * length)..<((b + 1) * length)
                        data.sequence(index, of: split, ids: UnsafeMutableBufferPointer(rebasing: i[rows]),
                                      tokenTypes: UnsafeMutableBufferPointer(rebasing: t[rows]),
                                      attentionMask: UnsafeMutableBufferPointer(rebasing: a[rows]))
                    }
                }
            }
        }
        var batch = MLMBatch(batchSize: indices.count, sequenceLength: length, ids: ids, tokenTypes: types,
                             attentionMask: attention, maskedPositions: [], labels: [])
        if masked { mask(&batch, rng: &rng) }
        return batch
    }

    /// Labels per sequence of `sequenceLength` tokens at most (two of them are `[CLS]`/`[SEP]`).
    public func labelsPerSequence(_ sequenceLength: Int) -> Int {
        max(1, Int((Float(max(sequenceLength - 2, 0)) * rate).rounded()))
    }

    /// Masks `batch.ids` in place and fills its positions and labels.
    public func mask(_ batch: inout MLMBatch, rng: inout Xoshiro256) {
        let length = batch.sequenceLength
        var positions: [Int32] = []
        var labels: [Int32] = []
        var candidates: [Int32] = []
        positions.reserveCapacity(batch.batchSize * labelsPerSequence(length))
        labels.reserveCapacity(positions.capacity)
        candidates.reserveCapacity(length)
        batch.ids.withUnsafeMutableBufferPointer { ids in
            for b in 0..<batch.batchSize {
                candidates.removeAll(keepingCapacity: true)
                for t in (b * length)..<((b + 1) * length) where !isSpecial(ids[t]) { candidates.append(Int32(t)) }
                guard !candidates.isEmpty else { continue }
                let count = min(candidates.count, max(1, Int((Float(candidates.count) * rate).rounded())))
                for i in 0..<count { candidates.swapAt(i, i + rng.nextInt(below: candidates.count - i)) }
                let start = positions.count
                positions.append(contentsOf: candidates[0..<count].sorted())
                for i in start..<positions.count {
                    let t = Int(positions[i])
                    labels.append(ids[t])
                    let u = rng.nextUnitFloat()
                    if u < 0.8 {
                        ids[t] = Int32(specialIDs.mask)
                    } else if u < 0.9 {
                        ids[t] = Int32(randomOrdinaryToken(&rng))
                    }
                }
            }
        }
        batch.maskedPositions = positions
        batch.labels = labels
    }

    private func isSpecial(_ id: Int32) -> Bool { special[Int(id)] }

    /// Rejection sampling: specials are 5 of ~30k ids, so a redraw is rare, and `init` guaranteed an
    /// ordinary token exists.
    private func randomOrdinaryToken(_ rng: inout Xoshiro256) -> Int {
        while true {
            let id = rng.nextInt(below: vocabularySize)
            if !special[id] { return id }
        }
    }
}
