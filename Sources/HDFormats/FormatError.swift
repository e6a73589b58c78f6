/// One error type for every reader and writer. `kind` is what tests match on; `message` is for people:
/// it names the tensor or member, what was expected and what was found, and where useful what to do.
public struct FormatError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        // Any file
        case notFound, notRegularFile, tooSmall, tooLarge, gitLFSPointer, pickle, wrongFormat, io
        // Headers and their fields
        case badHeader, duplicateKey, badMetadata, badEntry, unsupportedDType, badShape, badOffsets
        case truncated, trailingBytes, unaligned
        // Zip archives and deflate streams
        case badZip, unsupportedZip, badMemberName, corruptDeflate, checksumMismatch
        // Values
        case nonFinite
    }

    public let kind: Kind
    /// The path of the file the error is about ("<memory>" for in-memory buffers).
    public let file: String
    public let message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
