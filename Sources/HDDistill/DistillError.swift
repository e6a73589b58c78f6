/// The one error type of HDDistill, shaped like HDFormats' `FormatError`: `kind` is what tests and
/// callers match on; `message` names the file, tensor or field, what was expected and what was found.
public struct DistillError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        // Corpus files
        case notFound, notRegularFile, io, binaryText
        // Corpus contents
        case emptyCorpus, tooShort
        // Student checkpoints
        case missingTensor, unexpectedTensor, shapeMismatch, badMetadata, badMask
        // Calls and training
        case invalidArgument, nonFinite
    }

    public let kind: Kind
    /// The file the error is about ("<memory>" or "<argument>" when there is none).
    public let file: String
    public let message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
