import Foundation
import HDDistill
import HDFormats
import HDModel
import HDTestSupport
import Testing

@Suite(.serialized) struct TrainerTests {
    /// A small BERT over the real bert-base vocabulary (hidden 32, 2 layers), seeded, tied MLM head,
    /// so the committed Austen corpus tokenises to real word pieces.
    static func model(seed: UInt64 = 1) throws -> BertModel {
        let config = BertConfig(vocabSize: 30522, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4,
                                intermediateSize: 64, maxPositionEmbeddings: 64)
        var rng = Xoshiro256(seed: seed)
        var set = TensorSet()
        let head = BertNames.optionalGroups(config).first { $0.group == "MLM head" }?.tensors ?? []
        for (name, shape) in BertNames.requiredShapes(config) + head {
            let n = shape.reduce(1, *)
            let values: [Float]
            if name.hasSuffix("LayerNorm.weight") {
                values = [Float](repeating: 1, count: n)
            } else if shape.count == 1 {
                values = [Float](repeating: 0, count: n)
            } else {
                values = (0..<n).map { _ in (rng.nextUnitFloat() - 0.5) * 0.1 }
            }
            set[name] = Tensor(shape: shape, floats: values)
        }
        return try BertModel(config: config, weights: BertWeights(tensors: set, config: config, source: "<test>"))
    }

    static func corpus() throws -> Corpus {
        try Corpus(files: [TestSupport.fixture("corpus/tiny.txt")], tokenizer: CorpusTests.tokenizer,
                   options: CorpusOptions(sequenceLength: 32, heldOutEvery: 3))
    }

    static func bits(_ c: StudentCheckpoint) -> [String: [UInt32]] {
        c.weights.mapValues { $0.floats.map { $0.buffer.map(\.bitPattern) } ?? [] }
    }

    @Test func twoHundredStepsLowerTheHeldOutLoss() throws {
        let corpus = try Self.corpus()
        let options = TrainerOptions(steps: 200, batchSize: 8, learningRate: 3e-3, warmupSteps: 10, seed: 4, evalSequences: 16)
        let trainer = try Trainer(student: Self.model(), teacher: nil, teacherSHA256: nil, vocab: nil, corpus: corpus, options: options)
        let before = try trainer.evaluate()
        var first = 0.0, last = 0.0
        while !trainer.isFinished {
            let r = try trainer.trainStep()
            if r.step <= 10 { first += r.mlm / 10 }
            if r.step > 190 { last += r.mlm / 10 }
        }
        let after = try trainer.evaluate()
        // ln(30522) ≈ 10.3 at the start; the frequent words of one chapter are quickly learnt.
        #expect(before.mlm > 9.5)
        #expect(after.mlm < before.mlm - 2, "held-out MLM \(before.mlm) → \(after.mlm)")
        #expect(last < first - 2, "training MLM \(first) → \(last)")
    }

    /// Killed after 3 steps and resumed from the checkpoint, a run ends bit-identical to one that
    /// went straight through: weights, moments, generator and data order all come back.
    @Test func resumeContinuesExactly() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let corpus = try Self.corpus()
        let teacher = try Self.model(seed: 9)
        let sha = String(repeating: "0f", count: 32)
        let options = TrainerOptions(steps: 6, batchSize: 4, accumulate: 2, learningRate: 1e-3, warmupSteps: 2, seed: 8)
        let straight = try Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, corpus: corpus, options: options)
        while !straight.isFinished { _ = try straight.trainStep() }

        let path = dir + "/student.ckpt"
        do {
            let interrupted = try Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, corpus: corpus, options: options)
            for _ in 0..<3 { _ = try interrupted.trainStep() }
            try interrupted.checkpoint().write(to: path)
        }
        let saved = try StudentCheckpoint.read(path: path)
        #expect(saved.state.step == 3 && saved.state.teacherSHA256 == sha)
        let resumed = try Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, corpus: corpus,
                                  options: options, resume: saved)
        while !resumed.isFinished { _ = try resumed.trainStep() }
        let a = straight.checkpoint(), b = resumed.checkpoint()
        #expect(Self.bits(a) == Self.bits(b))
        #expect(a.state == b.state)
        #expect(a.adamV.mapValues { $0.floats?.array ?? [] } == b.adamV.mapValues { $0.floats?.array ?? [] })

        var other = options
        other.learningRate = 2e-3
        let error = #expect(throws: DistillError.self) {
            try Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, corpus: corpus, options: other, resume: saved)
        }
        #expect(error?.message.contains("lr") == true)
        #expect(throws: DistillError.self) {
            try Trainer(student: Self.model(), teacher: teacher, teacherSHA256: nil, vocab: nil, corpus: corpus, options: options, resume: saved)
        }
    }

    /// The teacher distilled into a copy of itself has KL 0 and a zero KL gradient.
    @Test func selfDistillationHasZeroKL() throws {
        let corpus = try Self.corpus()
        let options = TrainerOptions(steps: 1, batchSize: 4, alphaMLM: 0, evalSequences: 8)
        let trainer = try Trainer(student: Self.model(seed: 9), teacher: Self.model(seed: 9), teacherSHA256: nil, vocab: nil,
                                  corpus: corpus, options: options)
        let eval = try trainer.evaluate()
        #expect(abs(eval.kl ?? 1) < 1e-6)
        let r = try trainer.trainStep()
        #expect(abs(r.kl ?? 1) < 1e-6 && r.gradientNorm < 1e-4)
    }

    @Test func refusesMismatchedVocabularies() throws {
        let corpus = try Self.corpus()
        let tiny = try BertModel(checkpoint: Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors")))
        let error = #expect(throws: DistillError.self) {
            try Trainer(student: Self.model(), teacher: tiny, teacherSHA256: nil, vocab: nil, corpus: corpus, options: TrainerOptions())
        }
        #expect(error?.message.contains("vocabulary mismatch") == true)
        #expect(throws: DistillError.self) {
            try Trainer(student: tiny, teacher: nil, teacherSHA256: nil, vocab: nil, corpus: corpus, options: TrainerOptions())
        }
    }
}
