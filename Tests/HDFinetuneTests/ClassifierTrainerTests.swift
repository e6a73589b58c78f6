import Foundation
import HDFinetune
import HDFormats
import HDModel
import HDTensor
import HDTestSupport
import Testing

/// A task the tiny fixture can learn in a few epochs: a sequence's first token is one of five ids for
/// class 1 and one of five others for class 0; the rest is noise. Lengths vary, so batches are padded
/// to their longest.
struct FirstTokenTask: LabelledExamples {
    let ids: [[Int]]
    let labels: [Int32]

    init(count: Int, seed: UInt64, vocabulary: Int) {
        var rng = Xoshiro256(seed: seed)
        var ids: [[Int]] = [], labels: [Int32] = []
        for _ in 0..<count {
            let length = 3 + rng.nextInt(below: 6)
            let label = rng.nextInt(below: 2)
            let first = (label == 1 ? 10 : 20) + rng.nextInt(below: 5)
            ids.append([first] + (1..<length).map { _ in 30 + rng.nextInt(below: vocabulary - 30) })
            labels.append(Int32(label))
        }
        self.ids = ids
        self.labels = labels
    }

    var count: Int { ids.count }

    func batch(_ indices: [Int]) throws -> LabelledBatch {
        let L = indices.map { ids[$0].count }.max()!
        var flat: [Int] = [], mask: [Int] = []
        for i in indices {
            flat += ids[i] + [Int](repeating: 0, count: L - ids[i].count)
            mask += [Int](repeating: 1, count: ids[i].count) + [Int](repeating: 0, count: L - ids[i].count)
        }
        return LabelledBatch(tokens: try TokenBatch(batchSize: indices.count, sequenceLength: L, ids: flat, attentionMask: mask),
                             labels: indices.map { labels[$0] })
    }
}

@Suite("Fine-tuning a classifier")
struct ClassifierTrainerTests {
    static func encoder() throws -> BertModel {
        try BertModel(checkpoint: try Checkpoint.load(TestSupport.fixture("tiny-bert")))
    }

    static func train(seed: UInt64, threads: Int = 1, epochs: Int = 6, matmul: GEMMPrecision = .fp32) throws
        -> (ClassifierTrainer, [Double], FinetuneEvaluation) {
        let made = try ClassifierModel.make(from: try encoder(), labels: ["low", "high"], regression: false, seed: seed)
        var options = FinetuneOptions()
        options.matmul = matmul
        options.epochs = epochs
        options.batchSize = 16
        options.learningRate = 2e-3
        options.seed = seed
        options.threads = threads
        let train = FirstTokenTask(count: 192, seed: 1, vocabulary: made.model.config.vocabSize)
        let dev = FirstTokenTask(count: 64, seed: 2, vocabulary: made.model.config.vocabSize)
        let trainer = try ClassifierTrainer(model: made.model, options: options, trainCount: train.count, maxSequenceLength: 16)
        var losses: [Double] = []
        for epoch in 1...epochs {
            for indices in trainer.epochOrder(count: train.count) {
                losses.append(try trainer.trainStep(try train.batch(indices), epoch: epoch).loss)
            }
        }
        return (trainer, losses, try trainer.evaluate(dev))
    }

    @Test func learnsASeparableTask() throws {
        let (trainer, losses, dev) = try Self.train(seed: 3)
        #expect(trainer.step == trainer.totalSteps)
        let gold = FirstTokenTask(count: 64, seed: 2, vocabulary: trainer.model.config.vocabSize).labels
        let accuracy = Double(zip(dev.predictions, gold).filter { $0 == Int($1) }.count) / Double(gold.count)
        #expect(accuracy >= 0.9, "dev accuracy \(accuracy)")
        let first: Double = losses.prefix(12).reduce(0, +) / 12, last: Double = losses.suffix(12).reduce(0, +) / 12
        #expect(last < first * 0.5, "mean loss of the last 12 steps \(last), of the first 12 \(first)")
    }

    /// Same seed, same bits (dropout masks, data order and head initialisation all come from it);
    /// another seed, other weights.
    @Test func aSeedGivesTheSameRun() throws {
        let a = try Self.train(seed: 5, epochs: 1), b = try Self.train(seed: 5, epochs: 1), c = try Self.train(seed: 6, epochs: 1)
        #expect(a.1 == b.1)
        #expect(Array(a.0.parameters.flat) == Array(b.0.parameters.flat))
        #expect(Array(a.0.parameters.flat) != Array(c.0.parameters.flat))
    }

    /// bf16 products (`--matmul bf16`): each step's loss within 1 % of the fp32 run's over an epoch
    /// (a run of other numbers, not the same ones), the task learnt as well.
    @Test(.enabled(if: GEMMPrecision.bf16.isSupported, "bf16 products need AMX-BF16"))
    func bf16ProductsFollowTheSinglePrecisionRun() throws {
        let single = try Self.train(seed: 3, epochs: 2), half = try Self.train(seed: 3, epochs: 2, matmul: .bf16)
        let largest = zip(single.1, half.1).map { abs($0 - $1) / $0 }.max() ?? 0
        #expect(largest < 0.01 && single.1 != half.1, "largest relative difference of a step's loss: \(largest)")
        #expect(half.0.model.productPrecision == .bf16)
    }

    @Test func twoThreadsRunBitIdenticallyToThemselves() throws {
        let a = try Self.train(seed: 5, threads: 2, epochs: 1), b = try Self.train(seed: 5, threads: 2, epochs: 1)
        #expect(Array(a.0.parameters.flat) == Array(b.0.parameters.flat))
    }

    @Test func snapshotRestoresTheWeights() throws {
        let (trainer, _, dev) = try Self.train(seed: 3, epochs: 1)
        let kept = trainer.snapshot()
        let train = FirstTokenTask(count: 192, seed: 1, vocabulary: trainer.model.config.vocabSize)
        _ = try trainer.trainStep(try train.batch(Array(0..<16)), epoch: 2)
        trainer.restore(kept)
        let again = try trainer.evaluate(FirstTokenTask(count: 64, seed: 2, vocabulary: trainer.model.config.vocabSize))
        #expect(again.logits == dev.logits)
    }

    @Test func aModelWithTheWrongHeadIsRefused() throws {
        #expect(throws: FinetuneError.self) {
            _ = try ClassifierTrainer(model: try Self.encoder(), options: FinetuneOptions(), trainCount: 10, maxSequenceLength: 16)
        }
        #expect(throws: FinetuneError.self) {
            _ = try ClassifierModel.make(from: try Self.encoder(), labels: ["only"], regression: false, seed: 0)
        }
    }
}
