import HDFormats

/// Rows of a JSON Lines task file: one JSON object per line (lines split on `\n`, a trailing `\r`
/// dropped, blank lines skipped), parsed strictly (`StrictJSON`: duplicate keys refused). The keys
/// are the columns; keys other than the chosen ones are ignored. A text must be a JSON string; a
/// label may be a string, a number (kept as its literal text, so `1` is the label "1") or a boolean.
struct JSONLinesTable {
    let path: String
    let columns: TaskColumns

    func examples(_ bytes: [UInt8]) throws -> (header: [String], rows: [Example]) {
        var header: [String]?
        var rows: [Example] = []
        var line = 0
        var start = bytes.startIndex
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start += 3 }
        while start < bytes.endIndex {
            line += 1
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            var slice = bytes[start..<end]
            start = end == bytes.endIndex ? end : end + 1
            if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }

            let value: JSONValue
            do {
                value = try slice.withUnsafeBytes { try StrictJSON.parse($0, file: path, what: "line \(line)") }
            } catch let error as FormatError {
                throw TaskError.at(.badJSON, path, line: line, "not valid JSON: \(error.message)")
            }
            guard case .object(let object) = value else {
                throw TaskError.at(.badJSON, path, line: line,
                    "expected a JSON object (one example per line), found \(value.summary)")
            }
            if header == nil { header = object.members.map(\.key) }
            func text(_ column: String) throws -> String {
                let value = try member(object, column, line: line)
                guard case .string(let s) = value else {
                    throw TaskError.at(.badJSON, path, line: line, column: column,
                        "column \(quoted(column)): expected a string, found \(value.summary)")
                }
                return s
            }
            let a = try text(columns.text)
            let b = try columns.pair.map(text)
            let label = try columns.label.map { column -> String in
                switch try member(object, column, line: line) {
                case .string(let s): return s
                case .number(let literal): return literal
                case .bool(let flag): return flag ? "true" : "false"
                case let other:
                    throw TaskError.at(.badLabel, path, line: line, column: column,
                        "column \(quoted(column)): expected a string, number or boolean label, found \(other.summary)")
                }
            }
            rows.append(try TaskFile.example(text: a, pair: b, label: label, line: line, path: path, columns: columns))
        }
        guard let header else {
            throw TaskError.at(.emptyFile, path, line: 1, "expected one JSON object per line, found no lines")
        }
        return (header, rows)
    }

    private func member(_ object: JSONObject, _ column: String, line: Int) throws -> JSONValue {
        guard let value = object[column] else {
            throw TaskError.at(.missingColumn, path, line: line, column: column,
                "no key \(quoted(column)) in this line's object; its keys are \(object.members.map { quoted($0.key) }.joined(separator: ", "))")
        }
        return value
    }
}
