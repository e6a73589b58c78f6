/// The classes of a classification task: label strings and their ids (`id2label`, as a checkpoint's
/// config stores it).
///
/// From training examples, the distinct labels are sorted and numbered from 0: in numeric order when
/// every label is a decimal integer that fits in 64 bits (optional sign, ASCII digits: "2" < "10"),
/// ties between spellings of one number ("1", "01") broken by byte order; otherwise in byte order of
/// their UTF-8 (which is Python's `sorted` on `str`). The same labels give the same ids whatever the
/// row order, so a split, a resumed run and `tools/task_split.py` agree.
public struct LabelSet: Sendable, Equatable {
    public let id2label: [String]
    private let ids: [String: Int]

    public var count: Int { id2label.count }

    /// Labels in id order, e.g. from a checkpoint's config. Empty or repeated labels are refused.
    public init(id2label: [String], source: String = "<config>") throws {
        guard !id2label.isEmpty else {
            throw TaskError(.invalidArgument, file: source, field: "id2label", "labels: expected at least one, found none")
        }
        var ids: [String: Int] = [:]
        for (id, label) in id2label.enumerated() {
            if let first = ids.updateValue(id, forKey: label) {
                throw TaskError(.invalidArgument, file: source, field: "id2label",
                    "labels: \(quoted(label)) is both id \(first) and id \(id); expected each label once")
            }
        }
        self.id2label = id2label
        self.ids = ids
    }

    /// The sorted distinct labels of training examples, read from `column` of `file`. Every example
    /// needs a label, and there must be at least two distinct ones.
    public init(examples: [Example], file: String, column: String = "label") throws {
        var distinct: Set<String> = []
        for example in examples {
            guard let label = example.label else {
                throw TaskError.at(.badLabel, file, line: example.line, column: column,
                    "column \(quoted(column)): expected a label, found none (was the file read without a label column?)")
            }
            distinct.insert(label)
        }
        guard let first = examples.first else {
            throw TaskError(.emptyFile, file: file, field: column, "labels: expected examples, found none")
        }
        guard distinct.count >= 2 else {
            throw TaskError.at(.singleClass, file, line: first.line, column: column,
                "column \(quoted(column)): every example has the label \(quoted(first.label ?? "")); "
                + "a classifier needs at least two classes")
        }
        try self.init(id2label: Self.sorted(distinct), source: file)
    }

    /// The order described on the type.
    public static func sorted(_ labels: some Sequence<String>) -> [String] {
        func bytesBefore(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
        let labels = Array(labels)
        let numbers = labels.map(integer)
        if numbers.allSatisfy({ $0 != nil }) {
            return zip(labels, numbers).sorted { x, y in
                x.1! != y.1! ? x.1! < y.1! : bytesBefore(x.0, y.0)
            }.map(\.0)
        }
        return labels.sorted(by: bytesBefore)
    }

    /// A decimal integer: optional `+`/`-`, then one or more ASCII digits, fitting in Int64.
    static func integer(_ s: String) -> Int64? {
        var digits = Substring(s)
        if digits.first == "+" || digits.first == "-" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int64(s)
    }

    public func id(of label: String) -> Int? { ids[label] }

    /// Class ids of examples checked against a model's labels: a label the set lacks is `unknownLabel`.
    public func ids(of examples: [Example], file: String, column: String = "label") throws -> [Int] {
        try examples.map { example in
            try id(of: example, file: file, column: column) { label in
                TaskError.at(.unknownLabel, file, line: example.line, column: column,
                    "column \(quoted(column)): label \(quoted(label)) is not one of the model's \(count) labels (\(listed))")
            }
        }
    }

    /// Class ids of dev examples checked against the labels of the training file: a label that only
    /// dev has is `labelOnlyInDev` (the classifier could never predict it).
    public func devIDs(of examples: [Example], file: String, trainFile: String, column: String = "label") throws -> [Int] {
        try examples.map { example in
            try id(of: example, file: file, column: column) { label in
                TaskError.at(.labelOnlyInDev, file, line: example.line, column: column,
                    "column \(quoted(column)): label \(quoted(label)) appears in dev but not in the training file "
                    + "\(TaskError.displayName(trainFile)) (its labels: \(listed)); every dev label must occur in training")
            }
        }
    }

    private func id(of example: Example, file: String, column: String,
                    unknown: (String) -> TaskError) throws -> Int {
        guard let label = example.label else {
            throw TaskError.at(.badLabel, file, line: example.line, column: column,
                "column \(quoted(column)): expected a label, found none")
        }
        guard let id = ids[label] else { throw unknown(label) }
        return id
    }

    private var listed: String {
        let shown = id2label.prefix(10).map(quoted).joined(separator: ", ")
        return count > 10 ? shown + ", …" : shown
    }
}
