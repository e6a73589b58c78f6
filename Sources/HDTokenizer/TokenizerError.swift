/// The one error type of HDTokenizer. It mirrors HDFormats' `FormatError` (this module depends on
/// nothing, so it cannot share it): `kind` is what tests and callers match on; `message` names the
/// line, token or argument, what was expected and what was found.
public struct TokenizerError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        // Reading a vocabulary file
        case notFound, notRegularFile, tooLarge, gitLFSPointer, io
        // Vocabulary contents
        case empty, notUTF8, duplicateToken, missingSpecialToken
        // Calls
        case invalidArgument, idOutOfRange
    }

    public let kind: Kind
    /// The vocabulary file the error is about ("<memory>" for in-memory vocabularies and calls).
    public let file: String
    public let message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
