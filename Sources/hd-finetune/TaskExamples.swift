import HDFinetune
import HDModel
import HDTasks
import HDTokenizer

/// A task file's examples, encoded once, as the trainer's `LabelledExamples`: class ids (or
/// regression targets) beside each example's ids and token types; a batch pads to its longest.
struct TaskExamples: LabelledExamples {
    let encoder: TaskEncoder
    let encodings: [Encoding]
    let labels: [Int32]
    let targets: [Float]

    var count: Int { encodings.count }

    func batch(_ indices: [Int]) throws -> LabelledBatch {
        LabelledBatch(tokens: try encoder.batch(indices.map { encodings[$0] }),
                      labels: labels.isEmpty ? [] : indices.map { labels[$0] },
                      targets: targets.isEmpty ? [] : indices.map { targets[$0] })
    }

    /// `examples` (already split), encoded, with class ids from `labelSet` or, for regression, numeric targets.
    init(_ examples: [Example], encoder: TaskEncoder, labelSet: LabelSet?, file: String, trainFile: String?,
         column: String) throws {
        self.encoder = encoder
        encodings = try examples.map { try encoder.encode($0) }
        if let labelSet {
            let ids = try trainFile.map { try labelSet.devIDs(of: examples, file: file, trainFile: $0, column: column) }
                ?? labelSet.ids(of: examples, file: file, column: column)
            labels = ids.map(Int32.init)
            targets = []
        } else {
            labels = []
            targets = try RegressionTargets.targets(of: examples, file: file, column: column)
        }
    }
}
