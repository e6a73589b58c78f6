/// The one shape of every error the hd-* libraries throw (files, models, tokenizers, training): what
/// kind it is (for callers and tests to match on), the file and, where there is one, the field or
/// tensor it is about, and a message for people that says what was expected, what was found and,
/// where useful, what to do. The command-line tools report any of them through one path
/// (`HDCommandLine.ToolErrors`), with the exit status the kind carries.
public protocol HDError: Error, CustomStringConvertible, Sendable {
    /// The kind's name (`badHeader`, `missingTensor`, …).
    var kindName: String { get }
    /// The path of the file the error is about ("<memory>", "<argument>", "<input>" when none).
    var file: String { get }
    /// The tensor, member, metadata key or config field, when the error is about one.
    var field: String? { get }
    var message: String { get }
    /// The process exit status a tool ends with: 65 for bad input data, 1 for anything else.
    var exitStatus: Int32 { get }
}

/// A kind of error of one library: a string enum whose cases say what went wrong.
public protocol ErrorKind: RawRepresentable, Hashable, Sendable where RawValue == String {
    /// 65 (bad input data) unless the kind says otherwise.
    var exitStatus: Int32 { get }
}

extension ErrorKind {
    public var exitStatus: Int32 { ExitStatus.dataError }
}

/// The exit statuses every hd-* tool documents (sysexits.h's names).
public enum ExitStatus {
    public static let ok: Int32 = 0
    public static let other: Int32 = 1
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
}

/// The one error struct; each library names its own `Kind` enum and an alias (`FormatError`,
/// `ModelError`, `TokenizerError`, `DistillError`), so a library's errors are one type to catch
/// while every error has the same fields.
public struct TypedError<K: ErrorKind>: HDError, Equatable {
    /// The library's kinds: `FormatError.Kind`, `ModelError.Kind`, ….
    public typealias Kind = K

    public let kind: Kind
    public let file: String
    public let field: String?
    public let message: String

    public init(_ kind: Kind, file: String, field: String? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.field = field
        self.message = message
    }

    public var kindName: String { kind.rawValue }
    public var exitStatus: Int32 { kind.exitStatus }
    public var description: String { "\(file): \(message)" }
}
