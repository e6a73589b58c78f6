/// Errors about a model as a whole (as opposed to a file's bytes, which are `FormatError`s).
public struct ModelError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case badConfig, missingTensor, unexpectedTensor, shapeMismatch, nonFinite, badVocab, badInput, unsupported
    }

    public let kind: Kind
    public let file: String
    public let message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
