import HDErrors

/// The errors of HDDistill: corpora, training and the trainer's state: `TypedError`'s one shape (kind, file, field, message, exit status).
public typealias DistillError = TypedError<DistillErrorKind>

public enum DistillErrorKind: String, ErrorKind, CaseIterable {
    // Corpus files
    case notFound, notRegularFile, io, binaryText
    // Corpus contents
    case emptyCorpus, tooShort
    // Student checkpoints
    case missingTensor, unexpectedTensor, shapeMismatch, badMetadata, badMask
    // Calls and training
    case invalidArgument, nonFinite
}
