// libFuzzer target for the labelled task files (HDTasks.TaskFile(bytes:path:columns:format:)): every
// input is read as TSV, CSV and JSON Lines, with and without a pair column (built by
// tools/fuzz/run.sh taskfile with the sources listed in ./sources).
//
// Properties checked beyond "no crash, no sanitizer report":
// - an accepted file has at least one example; every text (and pair) is non-empty after Python's
//   strip; every label is non-empty; line numbers increase, past the header's line 1 in TSV and CSV;
// - the labels of an accepted file either make a `LabelSet` whose ids map every example back to its
//   label, or are refused as a single class;
// - every error is a `TaskError` naming the input ("fuzz.tsv", …) as its file.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTaskFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    for format in TaskFileFormat.allCases {
        for pair in [nil, "pair"] as [String?] {
            check(bytes, format: format, columns: TaskColumns(text: "text", pair: pair, label: "label"))
        }
    }
    return 0
}

func check(_ bytes: [UInt8], format: TaskFileFormat, columns: TaskColumns) {
    let path = "fuzz." + format.rawValue
    do {
        let file = try TaskFile(bytes: bytes, path: path, columns: columns, format: format)
        guard !file.examples.isEmpty else { fatalError("accepted a file without examples") }
        // A header takes line 1 of TSV and CSV; JSON Lines has none.
        var previous = format == .jsonLines ? 0 : 1
        for e in file.examples {
            guard !e.text.trimmingPythonWhitespace().isEmpty, e.pair.map({ !$0.trimmingPythonWhitespace().isEmpty }) ?? true,
                  e.label.map({ !$0.isEmpty }) ?? false else {
                fatalError("accepted an empty text, pair or label at line \(e.line)")
            }
            guard e.line > previous else { fatalError("line numbers do not increase: \(previous) then \(e.line)") }
            previous = e.line
        }
        do {
            let labels = try LabelSet(examples: file.examples, file: path)
            let ids = try labels.ids(of: file.examples, file: path)
            for (e, id) in zip(file.examples, ids) where labels.id2label[id] != e.label {
                fatalError("label \(e.label ?? "nil") maps to id \(id) = \(labels.id2label[id])")
            }
        } catch let error as TaskError where error.kind == .singleClass {
            // A file with one label is a valid file but not a classification task.
        }
    } catch let error as TaskError {
        if error.file != path { fatalError("error names the wrong file: \(error)") }
    } catch {
        fatalError("unexpected error type: \(error)")
    }
}
