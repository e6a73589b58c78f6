import HDErrors

/// The errors of HDTokenizer: vocabularies and encoding calls: `TypedError`'s one shape (kind, file, field, message, exit status).
public typealias TokenizerError = TypedError<TokenizerErrorKind>

public enum TokenizerErrorKind: String, ErrorKind, CaseIterable {
    // Reading a vocabulary file
    case notFound, notRegularFile, tooLarge, gitLFSPointer, io
    // Vocabulary contents
    case empty, notUTF8, duplicateToken, missingSpecialToken
    // Calls
    case invalidArgument, idOutOfRange
}
