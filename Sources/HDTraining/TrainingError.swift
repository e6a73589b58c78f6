import HDErrors

/// The errors of the training machinery that distillation and fine-tuning share (optimiser schedule,
/// the JSONL log): `TypedError`'s one shape.
public typealias TrainingError = TypedError<TrainingErrorKind>

public enum TrainingErrorKind: String, ErrorKind, CaseIterable {
    case invalidArgument, io
}
