/// The recipe of one run. Everything that changes the arithmetic is in `recipe`, which goes into
/// `student.ckpt`; a resume with a different recipe is refused, because it could not continue exactly.
public struct TrainerOptions: Sendable, Equatable {
    public var steps: Int
    /// Sequences per micro-batch; an optimiser step sees `batchSize · accumulate` sequences.
    public var batchSize: Int
    public var accumulate: Int
    public var learningRate: Float
    public var warmupSteps: Int
    public var weightDecay: Float
    /// Global gradient-norm cap (0 = no clipping).
    public var clipNorm: Float
    public var seed: UInt64
    /// Loss weights: L = αmlm · MLM + α1 · τ² KL (the KL term only with a teacher).
    public var alphaMLM: Float
    public var alphaKL: Float
    public var temperature: Float
    /// Held-out sequences per evaluation (taken from the start of the held-out split, masked the same
    /// way every time so evaluations are comparable).
    public var evalSequences: Int

    public init(steps: Int = 200, batchSize: Int = 8, accumulate: Int = 1, learningRate: Float = 5e-4,
                warmupSteps: Int = 0, weightDecay: Float = 0.01, clipNorm: Float = 1, seed: UInt64 = 0,
                alphaMLM: Float = 1, alphaKL: Float = 1, temperature: Float = 1, evalSequences: Int = 64) {
        self.steps = steps
        self.batchSize = batchSize
        self.accumulate = accumulate
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        self.seed = seed
        self.alphaMLM = alphaMLM
        self.alphaKL = alphaKL
        self.temperature = temperature
        self.evalSequences = evalSequences
    }

    public func validate() throws {
        func bad(_ what: String, _ found: Any) -> DistillError {
            DistillError(.invalidArgument, file: "<argument>", "trainer: expected \(what), found \(found)")
        }
        guard steps > 0 else { throw bad("steps ≥ 1", steps) }
        guard batchSize > 0 else { throw bad("batch ≥ 1", batchSize) }
        guard accumulate > 0 else { throw bad("accumulate ≥ 1", accumulate) }
        guard weightDecay >= 0, weightDecay.isFinite else { throw bad("weight decay ≥ 0", weightDecay) }
        guard clipNorm >= 0, clipNorm.isFinite else { throw bad("clip norm ≥ 0", clipNorm) }
        guard alphaMLM >= 0, alphaKL >= 0, alphaMLM.isFinite, alphaKL.isFinite else { throw bad("loss weights ≥ 0", (alphaMLM, alphaKL)) }
        guard temperature > 0, temperature.isFinite else { throw bad("temperature > 0", temperature) }
        guard evalSequences >= 0 else { throw bad("eval sequences ≥ 0", evalSequences) }
        _ = try LRSchedule(peak: learningRate, warmupSteps: warmupSteps, totalSteps: steps)
    }

    /// The flags as stored in `hd.recipe` (floats in their shortest round-trip form).
    public var recipe: [String: String] {
        ["steps": String(steps), "batch": String(batchSize), "accumulate": String(accumulate),
         "lr": "\(learningRate)", "warmup": String(warmupSteps), "weight_decay": "\(weightDecay)",
         "clip_norm": "\(clipNorm)", "seed": String(seed), "alpha_mlm": "\(alphaMLM)", "alpha_kl": "\(alphaKL)",
         "temperature": "\(temperature)"]
    }
}
