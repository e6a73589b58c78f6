import HDDistill
import HDTasks
import HDTokenizer

/// A task file as distillation data (`--task`): its texts (and pairs) encoded at the sequence length,
/// split into training and dev examples (`--task-dev`, or `--dev-fraction` of the file stratified by
/// label, as hd-finetune splits), with dev labels mapped to the teacher classifier's ids.
struct TaskData {
    let sequences: TaskSequences

    init(file: String, dev: String?, columns: TaskColumns, devFraction: Double, splitSeed: UInt64, labels: [String],
         tokenizer: BertTokenizer, sequenceLength: Int) throws {
        let labelSet = try LabelSet(id2label: labels, source: "the teacher's id2label")
        let column = columns.label ?? "label"
        let trainFile = try TaskFile(contentsOfFile: file, columns: columns)
        var train = trainFile.examples, devExamples: [Example], devFile = file
        if let dev {
            devExamples = try TaskFile(contentsOfFile: dev, columns: columns).examples
            devFile = dev
        } else {
            let classes = try labelSet.ids(of: train, file: file, column: column)
            let (trainIndices, devIndices) = try StratifiedSplit.split(classes: classes, fraction: devFraction, seed: splitSeed)
            (train, devExamples) = (trainIndices.map { train[$0] }, devIndices.map { train[$0] })
        }
        let encoder = try TaskEncoder(tokenizer: tokenizer, maxLength: sequenceLength)
        func encoded(_ examples: [Example]) throws -> [TaskSequences.Sequence] {
            try examples.map {
                let e = try encoder.encode($0)
                return TaskSequences.Sequence(ids: e.ids.map(Int32.init), tokenTypes: e.tokenTypeIds.map(Int32.init))
            }
        }
        sequences = try TaskSequences(train: try encoded(train), heldOut: try encoded(devExamples),
                                      heldOutLabels: try labelSet.ids(of: devExamples, file: devFile, column: column).map(Int32.init),
                                      sequenceLength: sequenceLength, vocabularySize: tokenizer.vocabulary.count,
                                      specialIDs: tokenizer.specialIDs, origin: file)
    }
}
