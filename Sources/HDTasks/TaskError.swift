import HDErrors

/// The errors of HDTasks: labelled task files, label sets, splits, encoding and metrics:
/// `TypedError`'s one shape. `file` is the path as given, `field` the column the error is about;
/// the message starts with `name:line:` (the file's last path component and the 1-based physical
/// line where the row starts), so a user can jump to the row.
public typealias TaskError = TypedError<TaskErrorKind>

public enum TaskErrorKind: String, ErrorKind, CaseIterable {
    // Reading the file
    case notFound, notRegularFile, tooLarge, io, notUTF8
    // Its layout
    case emptyFile, duplicateColumn, missingColumn, raggedRow, badQuote, unterminatedQuote, badJSON
    // Its values
    case emptyText, badLabel
    // Labels across files and models
    case singleClass, labelOnlyInDev, unknownLabel
    // Calls
    case invalidArgument
}

extension TaskError {
    /// `name:line: message`, with `name` the last component of `path`.
    static func at(_ kind: TaskErrorKind, _ path: String, line: Int, column: String? = nil, _ message: String) -> TaskError {
        TaskError(kind, file: path, field: column, "\(displayName(path)):\(line): \(message)")
    }

    static func displayName(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
    }
}

/// A value quoted for a message, cut to 60 characters.
func quoted(_ s: String) -> String {
    let clipped = s.count > 60 ? s.prefix(57) + "…" : Substring(s)
    var out = "\""
    for ch in clipped {
        switch ch {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default: out.append(ch)
        }
    }
    return out + "\""
}
