import HDDistill
import HDModel
import HDTensor
import HDTestSupport
import Testing

/// `--matmul bf16`: the same distillation with every product of the student and the teacher on
/// bf16 operands (AMX tiles). It is another run's numbers, not the fp32 run's, so the checks are
/// that it follows the fp32 run closely, repeats exactly, and that a checkpoint records it.
@Suite(.serialized, .enabled(if: GEMMPrecision.bf16.isSupported, "bf16 products need AMX-BF16"))
struct BF16TrainingTests {
    static let sha = String(repeating: "0f", count: 32)

    static func options(_ matmul: GEMMPrecision, steps: Int = 8) -> TrainerOptions {
        var options = TrainerOptions(steps: steps, batchSize: 4, learningRate: 1e-3, warmupSteps: 2, seed: 8)
        options.matmul = matmul
        return options
    }

    static func trainer(_ options: TrainerOptions) throws -> Trainer {
        try Trainer(student: TrainerTests.model(), teacher: TrainerTests.model(seed: 9), teacherSHA256: sha, vocab: nil,
                    data: TrainerTests.corpus(), options: options)
    }

    /// Every term on (MLM, KL, hidden, attention, embedding): each step's objective within 1 % of
    /// the fp32 run's, and not equal to it (bf16 really ran).
    @Test func bf16StepsFollowTheSinglePrecisionRun() throws {
        let single = try Self.trainer(Self.options(.fp32)), half = try Self.trainer(Self.options(.bf16))
        var largest = 0.0, equal = 0
        while !single.isFinished {
            let a = try single.trainStep(), b = try half.trainStep()
            largest = max(largest, abs(a.total - b.total) / a.total)
            if a.total == b.total { equal += 1 }
        }
        #expect(largest < 0.01, "largest relative difference of a step's objective: \(largest)")
        #expect(equal < 2, "\(equal) of 8 steps gave the fp32 objective exactly")
    }

    /// A pruned student multiplies its kept units only (`KeptUnits`), gathered, in bf16: through
    /// the schedule to the target widths, each step's objective stays within 2 % of the fp32 run's.
    @Test func prunedBF16StepsFollowTheSinglePrecisionRun() throws {
        func run(_ matmul: GEMMPrecision) throws -> [Double] {
            var options = try PruningTrainerTests.options()
            options.matmul = matmul
            let trainer = try PruningTrainerTests.trainer(options)
            var totals: [Double] = []
            while !trainer.isFinished { totals.append(try trainer.trainStep().total) }
            #expect(trainer.pruner?.masks.flags(.hidden).filter { $0 != 0 }.count == PruningTrainerTests.target.hidden)
            return totals
        }
        let single = try run(.fp32), half = try run(.bf16)
        // The student starts as the teacher: the first steps' objective is rounding noise around 0.
        let compared = zip(single, half).filter { $0.0 > 1e-4 }
        #expect(compared.count >= 8)
        let largest = compared.map { abs($0 - $1) / $0 }.max() ?? 0
        #expect(largest < 0.02, "largest relative difference of a step's objective: \(largest)")
    }

    /// Killed after 3 steps and resumed, a bf16 run ends bit-identical to one that went straight
    /// through; the checkpoint records `matmul` and an fp32 run refuses to continue it.
    @Test func bf16RunResumesExactlyAndOnlyInBF16() throws {
        let options = Self.options(.bf16, steps: 6)
        let straight = try Self.trainer(options)
        while !straight.isFinished { _ = try straight.trainStep() }
        let interrupted = try Self.trainer(options)
        for _ in 0..<3 { _ = try interrupted.trainStep() }
        let saved = interrupted.checkpoint()
        #expect(saved.state.recipe["matmul"] == "bf16")
        let resumed = try TrainerTests.resuming(Self.trainer(options), from: saved)
        while !resumed.isFinished { _ = try resumed.trainStep() }
        #expect(TrainerTests.bits(straight.checkpoint()) == TrainerTests.bits(resumed.checkpoint()))

        let refused = #expect(throws: DistillError.self) {
            try TrainerTests.resuming(Self.trainer(Self.options(.fp32, steps: 6)), from: saved)
        }
        #expect(refused?.message.contains("matmul (checkpoint bf16, now unset)") == true, "\(refused?.message ?? "")")
        #expect(Self.options(.fp32).recipe["matmul"] == nil)
    }
}
