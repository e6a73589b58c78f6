import HDErrors

/// The errors of every reader and writer of HDFormats: `TypedError`'s one shape (kind, file, field, message, exit status).
public typealias FormatError = TypedError<FormatErrorKind>

public enum FormatErrorKind: String, ErrorKind, CaseIterable {
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
