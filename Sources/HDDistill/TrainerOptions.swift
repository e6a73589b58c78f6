import HDModel
import HDTensor
import HDTraining
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
    /// Loss weights: L = αmlm · MLM + α1 · τ² KL + α2 · Σ hidden MSE + α3 · Σ attention MSE +
    /// α4 · embedding MSE (every term but MLM only with a teacher; `LayerTerms`).
    public var alphaMLM: Float
    public var alphaKL: Float
    public var alphaHidden: Float
    public var alphaAttention: Float
    public var alphaEmbedding: Float
    public var temperature: Float
    /// Held-out sequences per evaluation (taken from the start of the held-out split, masked the same
    /// way every time so evaluations are comparable).
    public var evalSequences: Int
    /// Where the student's weights came from; recorded so a resume cannot mix the two.
    public var initialization: StudentInitialization
    /// Self-distilled pruning's term: αcc · (Σ(1 − C_ii)² + λ Σ_{i≠j} C_ij²) on the final hidden
    /// states against the teacher's (0: off).
    public var alphaCrossCorrelation: Float = 0
    public var crossCorrelationLambda: Float = 5e-3
    /// Weight of 1 − cos(pool(H_s), pool(H_t)) on the last hidden states (sentence embeddings; 0: off).
    public var alphaPooled: Float = 0
    /// How that term pools a sequence: the mean over real tokens (sentence-transformers) or [CLS].
    public var pooling: SentencePooling = .mean
    /// Structured pruning while training; nil trains at full width.
    public var prune: PruneOptions?
    /// Layer dropping (`--keep-layers`): student layer j is distilled from teacher layer
    /// `teacherLayers[j]` (hidden-state and attention terms); nil matches layers one to one. Recorded
    /// as `hd.teacher_layers` rather than in `recipe`, so runs without it keep their checkpoints as
    /// they were; a resume must match it all the same (`Trainer.restore`).
    public var teacherLayers: [Int]?
    /// Threads of every step and evaluation (OpenBLAS's and the element-wise passes'), set for the
    /// call and restored after it. Results are bit-identical for a given count, not across counts,
    /// so the count is recorded in the checkpoint (`hd.threads`) and a resume must match it.
    public var threads = 1
    /// What the student's and the teacher's products round their operands to (`--matmul`): fp32, or
    /// bf16 on AMX tiles (mixed precision: weights, gradients and AdamW stay f32). In `recipe` as
    /// `matmul` only when bf16, so fp32 runs keep their checkpoints as they were; a resume must match.
    public var matmul: GEMMPrecision = .fp32

    public init(steps: Int = 200, batchSize: Int = 8, accumulate: Int = 1, learningRate: Float = 5e-4,
                warmupSteps: Int = 0, weightDecay: Float = 0.01, clipNorm: Float = 1, seed: UInt64 = 0,
                alphaMLM: Float = 1, alphaKL: Float = 1, alphaHidden: Float = 1, alphaAttention: Float = 1,
                alphaEmbedding: Float = 1, temperature: Float = 1, evalSequences: Int = 64,
                initialization: StudentInitialization = .copy) {
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
        self.alphaHidden = alphaHidden
        self.alphaAttention = alphaAttention
        self.alphaEmbedding = alphaEmbedding
        self.temperature = temperature
        self.evalSequences = evalSequences
        self.initialization = initialization
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
        let alphas = [alphaMLM, alphaKL, alphaHidden, alphaAttention, alphaEmbedding]
        guard alphas.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw bad("finite loss weights ≥ 0 (mlm, kl, hidden, attention, embedding)", alphas)
        }
        guard temperature > 0, temperature.isFinite else { throw bad("temperature > 0", temperature) }
        guard evalSequences > 0 else { throw bad("eval sequences ≥ 1", evalSequences) }
        guard threads > 0 else { throw bad("threads ≥ 1", threads) }
        if let reason = matmul.unsupportedReason() {
            throw DistillError(.invalidArgument, file: "<argument>", field: "--matmul", "--matmul \(matmul.rawValue): \(reason); use --matmul fp32")
        }
        guard alphaPooled >= 0, alphaPooled.isFinite else { throw bad("a finite pooled-cosine weight ≥ 0", alphaPooled) }
        guard alphaCrossCorrelation >= 0, alphaCrossCorrelation.isFinite, crossCorrelationLambda >= 0, crossCorrelationLambda.isFinite else {
            throw bad("finite cross-correlation weights ≥ 0", (alphaCrossCorrelation, crossCorrelationLambda))
        }
        if let prune, prune.schedule.kind == .cubic, prune.schedule.end > steps {
            throw bad("--prune-end ≤ --steps (the target must be reached within the run)", "\(prune.schedule.end) > \(steps)")
        }
        _ = try LRSchedule(peak: learningRate, warmupSteps: warmupSteps, totalSteps: steps)
    }

    /// Whether any hidden-state, attention or embedding term is on (with a teacher).
    /// The self-distilled recipe (O'Neill et al. 2021, DESIGN.md §4): the unpruned model is only the
    /// cross-correlation's reference, so no KL and no layer terms; `alpha` weighs the
    /// cross-correlation, `lambda` its off-diagonal terms.
    public mutating func useSelfDistilledRecipe(alpha: Float, lambda: Float) {
        (alphaKL, alphaHidden, alphaAttention, alphaEmbedding) = (0, 0, 0, 0)
        alphaCrossCorrelation = alpha
        crossCorrelationLambda = lambda
    }

    public var distillsLayers: Bool { alphaHidden > 0 || alphaAttention > 0 || alphaEmbedding > 0 }

    /// The flags as stored in `hd.recipe` (floats in their shortest round-trip form).
    public var recipe: [String: String] {
        ["steps": String(steps), "batch": String(batchSize), "accumulate": String(accumulate),
         "lr": "\(learningRate)", "warmup": String(warmupSteps), "weight_decay": "\(weightDecay)",
         "clip_norm": "\(clipNorm)", "seed": String(seed), "alpha_mlm": "\(alphaMLM)", "alpha_kl": "\(alphaKL)",
         "alpha_hidden": "\(alphaHidden)", "alpha_attention": "\(alphaAttention)", "alpha_embedding": "\(alphaEmbedding)",
         "temperature": "\(temperature)", "init": initialization.rawValue,
         "alpha_cc": "\(alphaCrossCorrelation)", "cc_lambda": "\(crossCorrelationLambda)"]
            .merging(alphaPooled > 0 ? ["alpha_pooled": "\(alphaPooled)", "pooling": pooling.rawValue] : [:]) { a, _ in a }
            .merging(prune?.recipe ?? [:]) { a, _ in a }
            .merging(matmul == .fp32 ? [:] : ["matmul": matmul.rawValue]) { a, _ in a }
    }
}
