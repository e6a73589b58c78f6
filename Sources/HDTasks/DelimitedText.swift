/// TSV and CSV records as Python's `csv.reader` reads them (the "excel" dialect; `delimiter='\t'`
/// for TSV), made strict where Python guesses:
/// - A field that starts with `"` is quoted: it ends at the next lone `"`, `""` inside it is one `"`,
///   and it may hold delimiters and line breaks. A `"` anywhere else in a field is an ordinary
///   character, as in Python.
/// - Records end at `\n`, `\r\n` or a lone `\r` outside quotes. An empty physical line is skipped
///   (Python yields `[]` for it; pandas and `datasets` skip it).
/// - Refused, where Python (with its default `strict=False`) carries on: text after a closing quote
///   other than a delimiter or line break (`"ab"c`), and a quote still open at the end of the file
///   (the error names the line where it opened).
/// - A UTF-8 byte-order mark at the very start is dropped (Excel writes one; Python's `utf-8-sig`).
///
/// Works on bytes that are already known to be UTF-8: the delimiter, quote and line breaks are ASCII,
/// so they never occur inside a multi-byte sequence.
struct DelimitedText {
    struct Record {
        var fields: [String]
        /// 1-based physical line where the record starts.
        var line: Int
    }

    let delimiter: UInt8
    /// The path for errors.
    let path: String

    func records(_ bytes: UnsafeBufferPointer<UInt8>) throws -> [Record] {
        let quote = UInt8(ascii: "\""), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1, recordLine = 1
        // Whether the current record has a quoted field (so `""` alone on a line is a record).
        var quotedRecordField = false
        var i = 0
        let n = bytes.count
        if n >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { i = 3 }

        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
        }
        // Ends the record at a line break at `i` (or the end), stepping past the break.
        func endRecord() {
            endField()
            // A line with nothing on it is one empty unquoted field: skip it.
            if !(fields.count == 1 && fields[0].isEmpty && !quotedRecordField) {
                records.append(Record(fields: fields, line: recordLine))
            }
            fields.removeAll(keepingCapacity: true)
            quotedRecordField = false
            if i < n {
                if bytes[i] == cr && i + 1 < n && bytes[i + 1] == lf { i += 1 }
                i += 1
                line += 1
            }
            recordLine = line
        }
        while i < n {
            // At the start of a field.
            if bytes[i] == quote {
                quotedRecordField = true
                let openLine = line
                i += 1
                while true {
                    guard i < n else {
                        throw TaskError.at(.unterminatedQuote, path, line: openLine,
                            "a quoted field opens here and never closes; expected a closing \" (write \"\" for a quote inside a field)")
                    }
                    let b = bytes[i]
                    if b == quote {
                        if i + 1 < n && bytes[i + 1] == quote {
                            field.append(quote)
                            i += 2
                            continue
                        }
                        i += 1
                        break
                    }
                    if b == lf || (b == cr && !(i + 1 < n && bytes[i + 1] == lf)) { line += 1 }
                    field.append(b)
                    i += 1
                }
                // After the closing quote: a delimiter, a line break or the end.
                if i == n || bytes[i] == lf || bytes[i] == cr {
                    endRecord()
                } else if bytes[i] == delimiter {
                    endField()
                    i += 1
                    if i == n { endRecord() }
                } else {
                    throw TaskError.at(.badQuote, path, line: line,
                        "found \(quoted(String(decoding: [bytes[i]], as: UTF8.self))) right after a closing quote; "
                        + "expected a delimiter or the end of the line (write \"\" for a quote inside a quoted field)")
                }
                continue
            }
            // An unquoted field: up to the delimiter or line break.
            while i < n && bytes[i] != delimiter && bytes[i] != lf && bytes[i] != cr {
                field.append(bytes[i])
                i += 1
            }
            if i < n && bytes[i] == delimiter {
                endField()
                i += 1
                if i == n { endRecord() }
            } else {
                endRecord()
            }
        }
        return records
    }
}
