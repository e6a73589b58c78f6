import Foundation
import HDTokenizer

/// One row of a task file: its text, the second text of a pair task, its label (nil when the file is
/// read without a label column, as `hd-infer classify` and distillation on unlabelled text do), and the
/// 1-based physical line where the row starts, for messages.
public struct Example: Sendable, Equatable {
    public var text: String
    public var pair: String?
    /// Trimmed of surrounding whitespace; never empty.
    public var label: String?
    public var line: Int

    public init(text: String, pair: String? = nil, label: String? = nil, line: Int) {
        self.text = text
        self.pair = pair
        self.label = label
        self.line = line
    }
}

/// Which columns hold the text, the optional second text and the optional label, by header name.
public struct TaskColumns: Sendable, Equatable {
    public var text: String
    public var pair: String?
    public var label: String?

    public init(text: String = "text", pair: String? = nil, label: String? = "label") {
        self.text = text
        self.pair = pair
        self.label = label
    }

    /// The columns in the order a row is read: text, pair, label.
    var named: [String] { [text] + (pair.map { [$0] } ?? []) + (label.map { [$0] } ?? []) }
}

/// How a task file is laid out, from its extension.
public enum TaskFileFormat: String, Sendable, CaseIterable {
    case tsv, csv
    /// One JSON object per line; its keys are the columns (`.jsonl`, `.json`).
    case jsonLines = "jsonl"

    /// From `path`'s extension (case-insensitive); anything else is refused.
    public init(path: String) throws {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "tsv": self = .tsv
        case "csv": self = .csv
        case "jsonl", "json": self = .jsonLines
        case let other:
            throw TaskError(.invalidArgument, file: path,
                "task file: expected a .tsv, .csv, .jsonl or .json file, found \(other.isEmpty ? "no extension" : ".\(other)")")
        }
    }
}

/// A labelled (or unlabelled) task file read whole: TSV, CSV (see `DelimitedText` for the exact
/// dialect) or JSON Lines (see `JSONLinesTable`), with a header naming the columns. Every row must
/// have a non-blank text (and pair, when a pair column is chosen) and, when a label column is
/// chosen, a non-blank label; the file must hold at least one row.
public struct TaskFile: Sendable {
    public let path: String
    public let format: TaskFileFormat
    public let columns: TaskColumns
    /// The header's names (for JSON Lines, the keys of the first object).
    public let header: [String]
    public let examples: [Example]

    /// Files over this are refused before reading: 2 GiB, far above any labelled set.
    public static let defaultMaxBytes = 2 << 30

    public init(contentsOfFile path: String, columns: TaskColumns = TaskColumns(), format: TaskFileFormat? = nil,
                maxBytes: Int = TaskFile.defaultMaxBytes) throws {
        let format = try format ?? TaskFileFormat(path: path)
        let bytes = try Self.readBytes(path, maxBytes: maxBytes)
        try self.init(bytes: bytes, path: path, columns: columns, format: format)
    }

    /// From bytes already in memory; `path` names them in errors and picks the format when none is given.
    public init(bytes: [UInt8], path: String, columns: TaskColumns = TaskColumns(), format: TaskFileFormat? = nil) throws {
        let format = try format ?? TaskFileFormat(path: path)
        try Self.checkText(bytes, path: path)
        let table: (header: [String], rows: [Example])
        switch format {
        case .tsv, .csv:
            let delimiter = UInt8(ascii: format == .tsv ? "\t" : ",")
            let records = try bytes.withUnsafeBufferPointer {
                try DelimitedText(delimiter: delimiter, path: path).records($0)
            }
            table = try Self.examples(records, path: path, columns: columns, format: format)
        case .jsonLines:
            table = try JSONLinesTable(path: path, columns: columns).examples(bytes)
        }
        guard !table.rows.isEmpty else {
            throw TaskError.at(.emptyFile, path, line: 2,
                "expected at least one row after the header, found none")
        }
        self.path = path
        self.format = format
        self.columns = columns
        self.header = table.header
        self.examples = table.rows
    }

    /// Rows of a TSV or CSV file: the first record is the header.
    static func examples(_ records: [DelimitedText.Record], path: String, columns: TaskColumns,
                         format: TaskFileFormat) throws -> (header: [String], rows: [Example]) {
        guard let header = records.first else {
            throw TaskError.at(.emptyFile, path, line: 1, "expected a header row naming the columns, found an empty file")
        }
        var seen: [String: Int] = [:]
        for (i, name) in header.fields.enumerated() {
            if let first = seen.updateValue(i, forKey: name) {
                throw TaskError.at(.duplicateColumn, path, line: header.line, column: name,
                    "column \(quoted(name)) appears twice in the header (columns \(first + 1) and \(i + 1)); expected unique names")
            }
        }
        let indices = try columns.named.map { name in
            guard let index = seen[name] else {
                throw TaskError.at(.missingColumn, path, line: header.line, column: name,
                    "no column \(quoted(name)) in the header; the columns are \(header.fields.map(quoted).joined(separator: ", "))")
            }
            return index
        }
        var rows: [Example] = []
        rows.reserveCapacity(records.count - 1)
        for record in records.dropFirst() {
            guard record.fields.count == header.fields.count else {
                let hint = format == .tsv && record.fields.count > header.fields.count
                    ? " (a tab inside a text? quote the field)" : ""
                throw TaskError.at(.raggedRow, path, line: record.line,
                    "row has \(record.fields.count) fields; expected \(header.fields.count), as the header (line \(header.line)) has\(hint)")
            }
            var values = indices.map { record.fields[$0] }
            let label = columns.label == nil ? nil : values.removeLast()
            let pair = columns.pair == nil ? nil : values.removeLast()
            rows.append(try example(text: values[0], pair: pair, label: label, line: record.line, path: path, columns: columns))
        }
        return (header.fields, rows)
    }

    /// One row's values, checked: texts not blank, label not blank (and trimmed).
    static func example(text: String, pair: String?, label: String?, line: Int, path: String,
                        columns: TaskColumns) throws -> Example {
        func nonBlank(_ value: String, _ column: String) throws {
            guard !value.trimmingPythonWhitespace().isEmpty else {
                throw TaskError.at(.emptyText, path, line: line, column: column,
                    "column \(quoted(column)) is empty; every example needs a text")
            }
        }
        try nonBlank(text, columns.text)
        if let pair, let column = columns.pair { try nonBlank(pair, column) }
        var trimmed: String?
        if let label, let column = columns.label {
            trimmed = label.trimmingPythonWhitespace()
            guard !(trimmed ?? "").isEmpty else {
                throw TaskError.at(.badLabel, path, line: line, column: column,
                    "column \(quoted(column)) is empty; every example needs a label")
            }
        }
        return Example(text: text, pair: pair, label: trimmed, line: line)
    }

    /// Refuses UTF-16, NUL bytes and anything that is not UTF-8, naming the line.
    static func checkText(_ bytes: [UInt8], path: String) throws {
        if let encoding = UTF8Validation.utf16(bytes) {
            throw TaskError.at(.notUTF8, path, line: 1, UTF8Validation.utf16Message("task file", encoding: encoding))
        }
        try bytes.withUnsafeBufferPointer { buffer in
            if let (line, byte, failure) = UTF8Validation.firstInvalidLine(buffer) {
                throw TaskError.at(.notUTF8, path, line: line,
                    "byte \(byte) of the line: expected UTF-8 text, found \(failure.hex); \(failure.hint)")
            }
        }
        if let nul = bytes.firstIndex(of: 0) {
            let line = 1 + bytes[..<nul].lazy.filter { $0 == UInt8(ascii: "\n") }.count
            throw TaskError.at(.notUTF8, path, line: line, "expected text, found a NUL byte (a binary file?)")
        }
    }

    /// The file's bytes, after checking it exists, is a regular file and is at most `maxBytes`.
    static func readBytes(_ path: String, maxBytes: Int) throws -> [UInt8] {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw TaskError(.notFound, file: path, "task file: no such file")
        }
        guard attributes[.type] as? FileAttributeType == .typeRegular else {
            throw TaskError(.notRegularFile, file: path, "task file: expected a regular file, found a directory or special file")
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxBytes else {
            throw TaskError(.tooLarge, file: path, "task file: \(size) bytes, over the limit of \(maxBytes) bytes")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw TaskError(.io, file: path, "task file: cannot open it for reading")
        }
        defer { try? handle.close() }
        do {
            let data = try handle.read(upToCount: maxBytes + 1) ?? Data()
            guard data.count <= maxBytes else {
                throw TaskError(.tooLarge, file: path, "task file: over the limit of \(maxBytes) bytes (it grew while being read)")
            }
            return [UInt8](data)
        } catch let error as TaskError {
            throw error
        } catch {
            throw TaskError(.io, file: path, "task file: read failed: \(error.localizedDescription)")
        }
    }
}
