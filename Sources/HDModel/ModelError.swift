import HDErrors

/// The errors of a model as a whole (as opposed to a file's bytes, which are `FormatError`s): `TypedError`'s one shape (kind, file, field, message, exit status).
public typealias ModelError = TypedError<ModelErrorKind>

public enum ModelErrorKind: String, ErrorKind, CaseIterable {
    case badConfig, missingTensor, unexpectedTensor, shapeMismatch, nonFinite, badVocab, badInput, unsupported
    // Student checkpoints (student.ckpt): metadata and pruning masks
    case badMetadata, badMask
}
