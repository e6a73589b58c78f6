import HDDistill
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// Pruning inside the training loop, on the 32-wide test BERT and the committed corpus.
@Suite(.serialized) struct PruningTrainerTests {
    static let target = PruneTarget(hidden: 16, ffn: 24, headSize: 3)

    static func options(_ kind: PruneSchedule.Kind = .cubic, importance: Importance.Kind = .platon, steps: Int = 12) throws -> TrainerOptions {
        var o = TrainerOptions(steps: steps, batchSize: 4, learningRate: 1e-3, seed: 3, evalSequences: 8)
        o.prune = PruneOptions(target: target, schedule: try PruneSchedule(kind: kind, start: 2, end: 9, every: 2),
                               importance: importance, widthMultiple: 4)
        return o
    }

    static func trainer(_ options: TrainerOptions, resume: TrainingCheckpoint? = nil) throws -> Trainer {
        let trainer = try Trainer(student: TrainerTests.model(seed: 9), teacher: TrainerTests.model(seed: 9), teacherSHA256: nil, vocab: nil,
                                  data: TrainerTests.corpus(), options: options)
        return try resume.map { try TrainerTests.resuming(trainer, from: $0) } ?? trainer
    }

    /// Every floats of `name` in the checkpoint.
    static func floats(_ c: TrainingCheckpoint, _ name: String) -> [Float] { c.weights[name]?.floats?.array ?? [] }

    /// After every step: each group keeps exactly what the schedule says at the last mask update, no
    /// unit comes back, and every pruned weight and both its Adam moments are exactly zero.
    @Test(arguments: [PruneSchedule.Kind.cubic, .oneShot], Importance.Kind.allCases)
    func masksFollowTheScheduleNeverRegrowAndPrunedStateIsZero(_ kind: PruneSchedule.Kind, _ importance: Importance.Kind) throws {
        let options = try Self.options(kind, importance: importance)
        let trainer = try Self.trainer(options)
        let pruner = try #require(trainer.pruner)
        var previous = Dictionary(uniqueKeysWithValues: pruner.masks.groups.map { ($0, Array(pruner.masks.flags($0))) })
        var lastUpdate = 0
        while !trainer.isFinished {
            let r = try trainer.trainStep()
            if options.prune!.schedule.updatesMasks(atStep: r.step) { lastUpdate = r.step }
            for g in pruner.masks.groups {
                let flags = Array(pruner.masks.flags(g))
                #expect(zip(previous[g]!, flags).allSatisfy { $0 >= $1 }, "\(g) regrew at step \(r.step)")
                let per = pruner.scheduledKept(g, atStep: lastUpdate)
                #expect(pruner.masks.kept(g) == per * pruner.masks.blocks(g), "\(g) at step \(r.step)")
                previous[g] = flags
            }
            let c = trainer.checkpoint()
            #expect(pruner.masks.prunedAreZero(UnsafeBufferPointer(trainer.parameters.flat), layout: trainer.parameters.layout))
            for moments in [c.adamM, c.adamV] {
                let flat = FlatFloats(count: trainer.parameters.layout.count)
                for e in trainer.parameters.layout.entries { _ = flat[e].update(fromContentsOf: moments[e.name]!.floats!.buffer) }
                #expect(pruner.masks.prunedAreZero(UnsafeBufferPointer(flat.buffer), layout: trainer.parameters.layout))
            }
            #expect(r.size?.hidden == pruner.masks.kept(.hidden))
        }
        #expect(pruner.masks.kept(.hidden) == 16 && pruner.masks.kept(.ffn(1)) == 24 && pruner.masks.kept(.value(0)) == 4 * 3)
        // The log's size is the one count of the dense model the exporter writes.
        let masked = try BertModel(config: trainer.parameters.layout.config, weights: trainer.parameters.model.weights, masks: pruner.masks)
        #expect(trainer.studentSize?.size == ModelSize(try Shrink.dense(masked, masks: pruner.masks)))
        #expect(trainer.studentSize?.size.parameters ?? .max < ModelSize(trainer.parameters.model).parameters)
        // The evaluation runs on the masked model and stays finite.
        #expect(try trainer.evaluate().kl?.isFinite == true)
    }

    /// Killed in the middle of pruning and resumed, a run ends bit-identical to one that went
    /// straight through: weights, moments, masks and PLATON's averages all come back.
    @Test func resumeWhilePruningContinuesExactly() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let options = try Self.options()
        let straight = try Self.trainer(options)
        while !straight.isFinished { _ = try straight.trainStep() }
        let path = dir + "/student.ckpt"
        do {
            let interrupted = try Self.trainer(options)
            for _ in 0..<5 { _ = try interrupted.trainStep() }
            try interrupted.checkpoint().write(to: path)
        }
        let saved = try TrainingCheckpoint.read(path: path)
        #expect(saved.masks.count == 1 + 3 * 2 && !saved.importance.isEmpty)
        let resumed = try Self.trainer(options, resume: saved)
        while !resumed.isFinished { _ = try resumed.trainStep() }
        let a = straight.checkpoint(), b = resumed.checkpoint()
        #expect(TrainerTests.bits(a) == TrainerTests.bits(b))
        for family in [\TrainingCheckpoint.adamM, \TrainingCheckpoint.adamV, \TrainingCheckpoint.importance] {
            #expect(a[keyPath: family].mapValues { $0.floats?.array.map(\.bitPattern) ?? [] }
                    == b[keyPath: family].mapValues { $0.floats?.array.map(\.bitPattern) ?? [] })
        }
        func masks(_ c: TrainingCheckpoint) -> [String: [Int64]] {
            c.masks.mapValues { if case .int64(let v) = $0.values { v } else { [] } }
        }
        #expect(masks(a) == masks(b))

        // Masks that do not belong to the weights (a pruned unit with nonzero weights) are refused.
        var forged = saved
        forged.masks["hidden"] = Tensor(shape: [32], values: .int64((0..<32).map { Int64($0 < 16 ? 1 : 0) }), storedAs: .int32)
        let error = #expect(throws: ModelError.self) { try Self.trainer(options, resume: forged) }
        #expect(error?.kind == .badMask)
        // So is a resume with a different pruning recipe.
        var other = options
        other.prune?.importance = .magnitude
        #expect(throws: DistillError.self) { try Self.trainer(other, resume: saved) }
    }

    /// The self-distilled recipe with the MLM term off: the cross-correlation to the unpruned teacher
    /// alone moves the student (its gradient reaches the weights), stays finite through the pruning,
    /// and starts near 0 for an exact copy (the diagonal is 1; only λ-weighted off-diagonals remain).
    @Test func selfDistilledPruningTrainsAgainstTheUnprunedTeacher() throws {
        var options = try Self.options(importance: .magnitude)
        (options.alphaMLM, options.alphaKL, options.alphaHidden, options.alphaAttention, options.alphaEmbedding) = (0, 0, 0, 0, 0)
        options.alphaCrossCorrelation = 1
        let trainer = try Self.trainer(options)
        var first: StepReport?
        while !trainer.isFinished {
            let r = try trainer.trainStep()
            #expect(r.crossCorrelation?.isFinite == true && r.total == r.crossCorrelation)
            if first == nil { first = r }
        }
        let start = try #require(first)
        #expect(try #require(start.crossCorrelation) < 0.05 * 32, "cross-correlation at step 1: \(start)")
        #expect(start.gradientNorm > 1e-4)
        #expect(trainer.pruner?.masks.kept(.hidden) == 16)
    }
}
