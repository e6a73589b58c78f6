import HDDistill
import HDFormats
import HDModel
import Testing

/// A step whose gradients overflow stops before the pruner or the optimiser changes anything
/// (issue 17, defect 2): the one-shot schedule would prune at that very step.
@Suite struct NonFiniteStepTests {
    static func state(_ c: TrainingCheckpoint) -> [String: [UInt32]] {
        var out: [String: [UInt32]] = [:]
        for (family, tensors) in [("w.", c.weights), ("m.", c.adamM), ("v.", c.adamV), ("i.", c.importance)] {
            for (name, t) in tensors { out[family + name] = t.floats?.array.map(\.bitPattern) }
        }
        for (name, t) in c.masks { if case .int64(let v) = t.values { out["mask." + name] = v.map { UInt32($0) } } }
        return out
    }

    @Test func overflowingGradientsChangeNothing() throws {
        var options = try PruningTrainerTests.options(.oneShot)
        // The loss itself stays finite (it is checked unweighted); its gradient, scaled by 1e38, overflows.
        options.alphaMLM = 1e38
        let trainer = try PruningTrainerTests.trainer(options)
        let before = Self.state(trainer.checkpoint())
        let error = #expect(throws: DistillError.self) { try trainer.trainStep() }
        #expect(error?.kind == .nonFinite && error?.message.contains("gradient norm") == true, "\(error?.message ?? "")")
        #expect(Self.state(trainer.checkpoint()) == before)
        #expect(trainer.step == 0)
        let pruner = try #require(trainer.pruner)
        #expect(pruner.masks.groups.allSatisfy { pruner.masks.kept($0) == pruner.masks.size($0) })

        // The same step with a sane weight does prune: the check above could have failed.
        let sane = try PruningTrainerTests.trainer(try PruningTrainerTests.options(.oneShot))
        _ = try sane.trainStep()
        #expect(sane.pruner.map { p in p.masks.groups.contains { p.masks.kept($0) < p.masks.size($0) } } == true)
    }
}
