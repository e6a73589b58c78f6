/// Targets of a regression task (`--regression`): every label must be a finite decimal number
/// (Swift's `Double(_:)` syntax: `3`, `-0.5`, `2.5e-1`; not `nan`, `inf`, hex or blank) whose Float is
/// also finite. The error names the line and column of the first one that is not.
public enum RegressionTargets {
    public static func targets(of examples: [Example], file: String, column: String = "label") throws -> [Float] {
        try examples.map { example in
            guard let label = example.label else {
                throw TaskError.at(.badLabel, file, line: example.line, column: column,
                    "column \(quoted(column)): expected a number, found no label")
            }
            guard !label.lowercased().hasPrefix("0x"), !label.lowercased().hasPrefix("-0x"),
                  let value = Double(label), value.isFinite, Float(value).isFinite else {
                throw TaskError.at(.badLabel, file, line: example.line, column: column,
                    "column \(quoted(column)): expected a finite number for regression, found \(quoted(label))")
            }
            return Float(value)
        }
    }
}
