import HDTasks
import Testing

/// Every bad task file is refused with its kind, and the message names `file:line` and the column.
@Suite("bad task files")
struct BadInputTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let file: String
        let bytes: [UInt8]
        var columns = TaskColumns()
        let kind: TaskErrorKind
        let line: Int
        /// The column the message must name; nil when the error is not about one.
        let column: String?
        var description: String { name }

        init(_ name: String, _ file: String, _ text: String, columns: TaskColumns = TaskColumns(),
             _ kind: TaskErrorKind, line: Int, column: String?) {
            self.init(name, file, Array(text.utf8), columns: columns, kind, line: line, column: column)
        }

        init(_ name: String, _ file: String, _ bytes: [UInt8], columns: TaskColumns = TaskColumns(),
             _ kind: TaskErrorKind, line: Int, column: String?) {
            (self.name, self.file, self.bytes, self.columns, self.kind, self.line, self.column) =
                (name, file, bytes, columns, kind, line, column)
        }
    }

    static let cases: [Case] = [
        Case("missing column", "rt.tsv", "sentence\tlabel\nabc\t1\n", .missingColumn, line: 1, column: "text"),
        Case("missing pair column", "p.csv", "text,label\na,1\n", columns: TaskColumns(pair: "hypothesis"),
             .missingColumn, line: 1, column: "hypothesis"),
        Case("empty text", "rt.tsv", "text\tlabel\nok\t1\n \t0\n", .emptyText, line: 3, column: "text"),
        Case("empty pair", "p.csv", "text,pair,label\na,\"  \",1\n", columns: TaskColumns(pair: "pair"),
             .emptyText, line: 2, column: "pair"),
        Case("empty label", "rt.tsv", "text\tlabel\nok\t\n", .badLabel, line: 2, column: "label"),
        Case("ragged row: too many fields", "rt.tsv", "text\tlabel\na\t1\nb\tc\t1\n", .raggedRow, line: 3, column: nil),
        Case("ragged row: too few fields", "rt.csv", "text,label\n\"a\nb\",1\nc\n", .raggedRow, line: 4, column: nil),
        Case("not UTF-8 (Latin-1)", "rt.tsv", Array("text\tlabel\nok\t1\ncaf".utf8) + [0xE9] + Array("\t0\n".utf8),
             .notUTF8, line: 3, column: nil),
        Case("UTF-16", "rt.tsv", [0xFF, 0xFE] + Array("text".utf8).flatMap { [$0, 0] }, .notUTF8, line: 1, column: nil),
        Case("NUL byte", "rt.tsv", Array("text\tlabel\na\t1\n".utf8) + [0] + Array("\t1\n".utf8), .notUTF8, line: 3, column: nil),
        Case("unterminated quote", "rt.tsv", "text\tlabel\na\t1\n\"b\t0\nc\t1\n", .unterminatedQuote, line: 3, column: nil),
        Case("text after a closing quote", "rt.csv", "text,label\n\"a\"b,1\n", .badQuote, line: 2, column: nil),
        Case("duplicate header", "rt.tsv", "text\tlabel\ttext\na\t1\tb\n", .duplicateColumn, line: 1, column: "text"),
        Case("empty file", "rt.tsv", "", .emptyFile, line: 1, column: nil),
        Case("header only", "rt.tsv", "text\tlabel\n", .emptyFile, line: 2, column: nil),
        Case("JSONL: not an object", "d.jsonl", "{\"text\": \"a\", \"label\": 1}\n[\"b\", 0]\n", .badJSON, line: 2, column: nil),
        Case("JSONL: not JSON", "d.jsonl", "{\"text\": \"a\", \"label\": 1}\n{text: b}\n", .badJSON, line: 2, column: nil),
        Case("JSONL: duplicate key", "d.jsonl", "{\"text\": \"a\", \"text\": \"b\", \"label\": 1}\n", .badJSON, line: 1, column: nil),
        Case("JSONL: missing key", "d.jsonl", "{\"text\": \"a\", \"label\": 1}\n\n{\"label\": 0}\n", .missingColumn, line: 3, column: "text"),
        Case("JSONL: non-string text", "d.jsonl", "{\"text\": 5, \"label\": 1}\n", .badJSON, line: 1, column: "text"),
        Case("JSONL: null label", "d.jsonl", "{\"text\": \"a\", \"label\": null}\n", .badLabel, line: 1, column: "label"),
        Case("JSONL: empty text", "d.jsonl", "{\"text\": \"\\t\", \"label\": 1}\n", .emptyText, line: 1, column: "text"),
        Case("JSONL: no lines", "d.jsonl", "\n\n", .emptyFile, line: 1, column: nil),
    ]

    @Test("refused with kind, file:line and column", arguments: cases)
    func refused(_ c: Case) {
        #expect {
            _ = try TaskFile(bytes: c.bytes, path: "/data/" + c.file, columns: c.columns)
        } throws: { error in
            guard let error = error as? TaskError else { return false }
            let column = c.column.map { error.message.contains("\"\($0)\"") && error.field == $0 } ?? true
            return error.kind == c.kind && error.file == "/data/" + c.file
                && error.message.hasPrefix("\(c.file):\(c.line): ") && column
                && error.exitStatus == 65
        }
    }

    struct LabelCase: Sendable, CustomStringConvertible {
        let name: String
        let train: String
        let dev: String?
        let kind: TaskErrorKind
        let line: Int
        var description: String { name }
    }

    static let labelCases: [LabelCase] = [
        LabelCase(name: "single class", train: "text\tlabel\na\tpos\nb\tpos\n", dev: nil, kind: .singleClass, line: 2),
        LabelCase(name: "label only in dev", train: "text\tlabel\na\tpos\nb\tneg\n",
                  dev: "text\tlabel\nc\tneg\nd\tneutral\n", kind: .labelOnlyInDev, line: 3),
    ]

    @Test("label sets refuse one class, and a dev label that training lacks", arguments: labelCases)
    func labels(_ c: LabelCase) {
        #expect {
            let train = try TaskFile(bytes: Array(c.train.utf8), path: "train.tsv")
            let labels = try LabelSet(examples: train.examples, file: train.path)
            if let dev = c.dev {
                let file = try TaskFile(bytes: Array(dev.utf8), path: "dev.tsv")
                _ = try labels.devIDs(of: file.examples, file: file.path, trainFile: train.path)
            }
        } throws: { error in
            guard let error = error as? TaskError else { return false }
            let file = c.dev == nil ? "train.tsv" : "dev.tsv"
            return error.kind == c.kind && error.message.hasPrefix("\(file):\(c.line): ")
                && error.message.contains("\"label\"") && error.field == "label"
        }
    }

    @Test("a model's labels: an unknown label names the line; regression needs finite numbers")
    func unknownAndRegression() throws {
        let labels = try LabelSet(id2label: ["neg", "pos"])
        let file = try TaskFile(bytes: Array("text\tlabel\na\tpos\nb\tmeh\n".utf8), path: "x.tsv")
        #expect { try labels.ids(of: file.examples, file: file.path) } throws: {
            ($0 as? TaskError)?.kind == .unknownLabel && ($0 as? TaskError)?.message.hasPrefix("x.tsv:3: ") == true
        }
        #expect { try LabelSet(id2label: ["a", "b", "a"]) } throws: { ($0 as? TaskError)?.kind == .invalidArgument }
        for bad in ["nan", "inf", "1e999", "0x10", "one"] {
            let f = try TaskFile(bytes: Array("text\tscore\na\t0.5\nb\t\(bad)\n".utf8), path: "r.tsv",
                                 columns: TaskColumns(label: "score"))
            #expect {
                try RegressionTargets.targets(of: f.examples, file: f.path, column: "score")
            } throws: { ($0 as? TaskError)?.kind == .badLabel && ($0 as? TaskError)?.message.hasPrefix("r.tsv:3: ") == true }
        }
        let ok = try TaskFile(bytes: Array("text\tscore\na\t0.5\nb\t-2e1\nc\t 3 \n".utf8), path: "r.tsv",
                              columns: TaskColumns(label: "score"))
        #expect(try RegressionTargets.targets(of: ok.examples, file: ok.path, column: "score") == [0.5, -20, 3])
    }
}
