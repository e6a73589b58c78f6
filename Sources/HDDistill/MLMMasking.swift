import HDTokenizer

/// One masked-LM batch, flat `[batchSize × sequenceLength]` arrays ready for the model.
public struct MLMBatch: Sendable, Equatable {
    public let batchSize: Int
    public let sequenceLength: Int
    /// Input ids after masking.
    public var ids: [Int32]
    public var tokenTypes: [Int32]
    /// 1 for every position: packed sequences have no padding.
    public var attentionMask: [Int32]
    /// Flat positions `b · L + t` that carry a label, ascending.
    public var maskedPositions: [Int32]
    /// The original id at each masked position.
    public var labels: [Int32]
}

/// BERT's masking (Devlin et al. 2019, as transformers' `DataCollatorForLanguageModeling`): each
/// non-special position is selected with probability `rate`; a selected token becomes `[MASK]` with
/// probability 0.8, a random non-special token with 0.1, and stays itself with 0.1. Special tokens are
/// never selected. Unlike the collator, a sequence whose draw selects nothing gets one position
/// chosen uniformly, so every sequence contributes to the loss and a batch never has zero labels.
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

    /// Takes `batchSize` sequences from `order`, packs them from `corpus` and masks them.
    public func trainingBatch(corpus: Corpus, order: inout DataOrder, batchSize: Int, rng: inout Xoshiro256) -> MLMBatch {
        var indices: [Int] = []
        indices.reserveCapacity(batchSize)
        for _ in 0..<batchSize { indices.append(order.next()) }
        return batch(corpus: corpus, split: .train, indices: indices, rng: &rng)
    }

    /// Sequences `indices` of `split`, masked. Evaluation passes a generator seeded the same way every
    /// time, so held-out losses are comparable across steps.
    public func batch(corpus: Corpus, split: CorpusSplit, indices: [Int], rng: inout Xoshiro256) -> MLMBatch {
        let length = corpus.sequenceLength
        var ids = [Int32](repeating: 0, count: indices.count * length)
        ids.withUnsafeMutableBufferPointer { p in
            for (b, index) in indices.enumerated() {
                corpus.sequence(index, of: split, into: UnsafeMutableBufferPointer(rebasing: p[(b * length)..<((b + 1) * length)]))
            }
        }
        var batch = MLMBatch(batchSize: indices.count, sequenceLength: length, ids: ids,
                             tokenTypes: [Int32](repeating: 0, count: ids.count),
                             attentionMask: [Int32](repeating: 1, count: ids.count),
                             maskedPositions: [], labels: [])
        mask(&batch, rng: &rng)
        return batch
    }

    /// Masks `batch.ids` in place and fills its positions and labels.
    public func mask(_ batch: inout MLMBatch, rng: inout Xoshiro256) {
        let length = batch.sequenceLength
        var positions: [Int32] = []
        var labels: [Int32] = []
        positions.reserveCapacity(Int(Float(batch.ids.count) * rate * 1.5) + batch.batchSize)
        labels.reserveCapacity(positions.capacity)
        batch.ids.withUnsafeMutableBufferPointer { ids in
            for b in 0..<batch.batchSize {
                let start = positions.count
                var candidates = 0
                for t in (b * length)..<((b + 1) * length) where !isSpecial(ids[t]) {
                    candidates += 1
                    if rng.nextUnitFloat() < rate {
                        positions.append(Int32(t))
                        labels.append(ids[t])
                    }
                }
                if positions.count == start && candidates > 0 {
                    var pick = rng.nextInt(below: candidates)
                    for t in (b * length)..<((b + 1) * length) where !isSpecial(ids[t]) {
                        if pick == 0 {
                            positions.append(Int32(t))
                            labels.append(ids[t])
                            break
                        }
                        pick -= 1
                    }
                }
                for i in start..<positions.count {
                    let t = Int(positions[i])
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
