import HDErrors
import HDTensor

/// The errors of fine-tuning: `TypedError`'s one shape.
public typealias FinetuneError = TypedError<FinetuneErrorKind>

public enum FinetuneErrorKind: String, ErrorKind, CaseIterable {
    case invalidArgument, nonFinite, badModel
}

/// The recipe of one fine-tuning run (`hd-finetune`'s flags): transformers' `Trainer` defaults for
/// BERT on a classification task, except AdamW's ε, which is the toolchain's 1e-6 throughout.
public struct FinetuneOptions: Sendable, Equatable {
    public var epochs = 3
    public var batchSize = 32
    public var learningRate: Float = 5e-5
    /// Warm-up steps = ⌈ratio · total steps⌉ (transformers' rounding).
    public var warmupRatio: Float = 0.1
    public var weightDecay: Float = 0.01
    /// Global gradient-norm clip (transformers' `max_grad_norm`); 0 turns it off.
    public var clipNorm: Float = 1
    /// BERT's dropout probability everywhere it places dropout (embeddings, attention, residual
    /// branches, classifier input); 0 turns it off.
    public var dropout: Float = 0.1
    /// Seeds the head's initialisation, the data order and the dropout masks.
    public var seed: UInt64 = 0
    /// OpenBLAS threads for every step and evaluation.
    public var threads = 1
    /// One numeric output trained with MSE instead of classes with cross-entropy.
    public var regression = false
    /// What the encoder's products round their operands to (`--matmul`): fp32, or bf16 on AMX tiles
    /// (mixed precision, as hd-distill's; the head's small products stay f32).
    public var matmul: GEMMPrecision = .fp32

    public init() {}

    public func validate() throws {
        func bad(_ flag: String, _ expected: String, _ found: String) -> FinetuneError {
            FinetuneError(.invalidArgument, file: "<argument>", field: flag, "\(flag): expected \(expected), found \(found)")
        }
        guard epochs >= 1, epochs <= 1000 else { throw bad("--epochs", "1…1000", "\(epochs)") }
        guard batchSize >= 1, batchSize <= 4096 else { throw bad("--batch", "1…4096", "\(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else { throw bad("--lr", "a positive number", "\(learningRate)") }
        guard warmupRatio >= 0, warmupRatio < 1 else { throw bad("--warmup-ratio", "a ratio in [0, 1)", "\(warmupRatio)") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw bad("--weight-decay", "a non-negative number", "\(weightDecay)") }
        guard clipNorm >= 0, clipNorm.isFinite else { throw bad("--clip-norm", "a non-negative number", "\(clipNorm)") }
        guard dropout >= 0, dropout < 1 else { throw bad("--dropout", "a probability in [0, 1)", "\(dropout)") }
        guard threads >= 1, threads <= 1024 else { throw bad("--threads", "1…1024", "\(threads)") }
        if let reason = matmul.unsupportedReason() {
            throw FinetuneError(.invalidArgument, file: "<argument>", field: "--matmul", "--matmul \(matmul.rawValue): \(reason); use --matmul fp32")
        }
    }

    /// Optimiser steps of the run: `epochs` × ⌈examples / batch⌉ (the last batch of an epoch may be short).
    public func totalSteps(examples: Int) -> Int { epochs * ((examples + batchSize - 1) / batchSize) }

    public func warmupSteps(total: Int) -> Int { Int((Double(warmupRatio) * Double(total)).rounded(.up)) }
}
