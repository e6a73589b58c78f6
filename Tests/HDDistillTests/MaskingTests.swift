import HDDistill
import HDTestSupport
import HDTokenizer
import HDTensor
import Testing

@Suite struct MaskingTests {
    @Test func generatorsMatchTheirReferenceOutputs() throws {
        var split = SplitMix64(seed: 0)
        #expect(split.next() == 0xE220_A839_7B1D_CDAF)
        var x = try #require(Xoshiro256(state: [1, 2, 3, 4]))
        #expect([x.next(), x.next(), x.next()] == [11520, 0, 1_509_978_240])
        #expect(Xoshiro256(state: [0, 0, 0, 0]) == nil)
        var a = Xoshiro256(seed: 99)
        let saved = a.stateWords
        let draws = (0..<5).map { _ in a.nextInt(below: 1000) }
        var b = try #require(Xoshiro256(state: saved))
        #expect((0..<5).map { _ in b.nextInt(below: 1000) } == draws)
        #expect(draws.allSatisfy { (0..<1000).contains($0) })
    }

    static func corpus() throws -> Corpus {
        try Corpus(files: [TestSupport.fixture("corpus/tiny.txt")], tokenizer: CorpusTests.tokenizer,
                   options: CorpusOptions(sequenceLength: 64, heldOutEvery: 0))
    }

    @Test func masksOnlyOrdinaryTokensInTheRightProportions() throws {
        let corpus = try Self.corpus()
        let specials = corpus.specialIDs
        let masking = try MLMMasking(specialIDs: specials, vocabularySize: 30522)
        var order = try DataOrder(seed: 3, sequenceCount: corpus.sequenceCount(.train))
        var rng = Xoshiro256(seed: 11)
        var selected = 0, candidates = 0, masked = 0, kept = 0, replaced = 0
        let specialSet: Set<Int32> = [specials.pad, specials.unk, specials.cls, specials.sep, specials.mask].reduce(into: []) { $0.insert(Int32($1)) }
        for _ in 0..<200 {
            let batch = masking.trainingBatch(data: corpus, order: &order, batchSize: 4, rng: &rng)
            // The unmasked ids, rebuilt from the labels, to count what changed.
            var original = batch.ids
            for (p, label) in zip(batch.maskedPositions, batch.labels) { original[Int(p)] = label }
            for b in 0..<4 {
                let ordinary = original[(b * 64)..<((b + 1) * 64)].filter { !specialSet.contains($0) }.count
                candidates += ordinary
                // Exactly round(15 % of the ordinary tokens) per sequence.
                #expect(batch.maskedPositions.filter { Int($0) / 64 == b }.count == max(1, Int((Float(ordinary) * 0.15).rounded())))
            }
            #expect(batch.labels.count <= 4 * masking.labelsPerSequence(64))
            #expect(batch.maskedPositions == batch.maskedPositions.sorted())
            #expect(batch.attentionMask.allSatisfy { $0 == 1 } && batch.tokenTypes.allSatisfy { $0 == 0 })
            for (p, label) in zip(batch.maskedPositions, batch.labels) {
                #expect(!specialSet.contains(label))
                selected += 1
                let now = batch.ids[Int(p)]
                if now == Int32(specials.mask) { masked += 1 } else if now == label { kept += 1 } else {
                    replaced += 1
                    #expect(!specialSet.contains(now))
                }
            }
            // Unselected positions are untouched.
            let chosen = Set(batch.maskedPositions)
            #expect(batch.ids.indices.allSatisfy { chosen.contains(Int32($0)) || batch.ids[$0] == original[$0] })
        }
        let rate = Double(selected) / Double(candidates)
        #expect(abs(rate - 0.15) < 0.01, "selection rate \(rate)")
        #expect(abs(Double(masked) / Double(selected) - 0.8) < 0.03)
        #expect(abs(Double(replaced) / Double(selected) - 0.1) < 0.025)
        #expect(abs(Double(kept) / Double(selected) - 0.1) < 0.025)
    }

    @Test func sameStateSameBatch() throws {
        let corpus = try Self.corpus()
        let masking = try MLMMasking(specialIDs: corpus.specialIDs, vocabularySize: 30522)
        var order = try DataOrder(seed: 5, sequenceCount: corpus.sequenceCount(.train))
        var rng = Xoshiro256(seed: 1)
        _ = masking.trainingBatch(data: corpus, order: &order, batchSize: 3, rng: &rng)
        var order2 = try DataOrder(seed: 5, sequenceCount: order.sequenceCount, epoch: order.epoch, position: order.position)
        var rng2 = try #require(Xoshiro256(state: rng.stateWords))
        let a = masking.trainingBatch(data: corpus, order: &order, batchSize: 3, rng: &rng)
        let b = masking.trainingBatch(data: corpus, order: &order2, batchSize: 3, rng: &rng2)
        #expect(a == b)
    }

    /// Even at a tiny rate every sequence gets one label.
    @Test func everySequenceHasALabel() throws {
        let corpus = try Self.corpus()
        let masking = try MLMMasking(specialIDs: corpus.specialIDs, vocabularySize: 30522, rate: 0.001)
        var rng = Xoshiro256(seed: 2)
        let batch = masking.batch(data: corpus, split: .train, indices: [0, 1, 2, 3], rng: &rng)
        let sequences = Set(batch.maskedPositions.map { Int($0) / batch.sequenceLength })
        #expect(sequences == [0, 1, 2, 3])
    }

    @Test func refusesBadArguments() {
        let ids = SpecialTokenIDs(pad: 0, unk: 1, cls: 2, sep: 3, mask: 4)
        #expect(throws: DistillError.self) { try MLMMasking(specialIDs: ids, vocabularySize: 5) }
        #expect(throws: DistillError.self) { try MLMMasking(specialIDs: ids, vocabularySize: 100, rate: 0) }
        #expect(throws: DistillError.self) {
            try MLMMasking(specialIDs: SpecialTokenIDs(pad: 0, unk: 1, cls: 2, sep: 3, mask: 400), vocabularySize: 100)
        }
    }
}

/// A task's examples as distillation batches: padded to the sequence length with [PAD], attention
/// mask 0 and token type 0 on the padding, pair token types kept, and never masked when not asked.
@Suite struct TaskSequencesTests {
    @Test func padsKeepsTypesAndLeavesTextUnmaskedWhenAsked() throws {
        let corpus = try MaskingTests.corpus()
        let ids = corpus.specialIDs
        let a = TaskSequences.Sequence(ids: [Int32(ids.cls), 40, 41, Int32(ids.sep)], tokenTypes: [0, 0, 0, 0])
        let b = TaskSequences.Sequence(ids: [Int32(ids.cls), 40, Int32(ids.sep), 42, Int32(ids.sep)], tokenTypes: [0, 0, 0, 1, 1])
        let task = try TaskSequences(train: [a, b], heldOut: [b], heldOutLabels: [1], sequenceLength: 6,
                                     vocabularySize: corpus.vocabularySize, specialIDs: ids, origin: "task.tsv")
        let masking = try MLMMasking(specialIDs: ids, vocabularySize: corpus.vocabularySize)
        var rng = Xoshiro256(seed: 1)
        let batch = masking.batch(data: task, split: .train, indices: [0, 1], masked: false, rng: &rng)
        let pad = Int32(ids.pad)
        #expect(batch.ids == [Int32(ids.cls), 40, 41, Int32(ids.sep), pad, pad, Int32(ids.cls), 40, Int32(ids.sep), 42, Int32(ids.sep), pad])
        #expect(batch.tokenTypes == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0])
        #expect(batch.attentionMask == [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0])
        #expect(batch.maskedPositions.isEmpty && batch.labels.isEmpty)
        #expect(task.heldOutLabel(0) == 1 && task.sequenceCount(.heldOut) == 1)
        // Masked, padding is never chosen.
        let masked = masking.batch(data: task, split: .train, indices: [0, 1], rng: &rng)
        #expect(masked.maskedPositions.allSatisfy { batch.attentionMask[Int($0)] == 1 })
        #expect(throws: DistillError.self) {
            _ = try TaskSequences(train: [b], heldOut: [], heldOutLabels: [], sequenceLength: 4,
                                  vocabularySize: corpus.vocabularySize, specialIDs: ids, origin: "task.tsv")
        }
    }
}
