import Foundation
import HDModel
import HDRuntime
import HDTasks

/// The quality figures of `hd-infer compare`: how close the student's sentence embeddings are to the
/// teacher's, how well each model's embeddings tell entailment from contradiction, and how two
/// classifiers score on a labelled file.
enum CompareQuality {
    /// Cosine between the student's and the teacher's mean-pooled embedding of each sentence, over
    /// the teacher dimensions the student kept (all of them when `kept` is nil).
    struct SentenceCosine: Encodable {
        var file: String
        var sentences: Int
        var mean, std, min: Double
        /// The dimensions compared: the student's hidden size.
        var comparedDims: Int
        /// Whether they are the teacher dimensions `hd.kept.hidden` names (false: the same width, all of them).
        var keptDims: Bool

        enum CodingKeys: String, CodingKey {
            case file, sentences, mean, std, min
            case comparedDims = "compared_dims", keptDims = "kept_dims"
        }
    }

    /// ROC AUC of cosine(premise, hypothesis), entailment against contradiction, for each model.
    struct PairAUC: Encodable {
        var file: String
        var entailment, contradiction: Int
        /// Rows neither entailment nor contradiction (neutral, and SNLI's "-" for no consensus).
        var skipped: Int
        var teacher, student: Double
    }

    /// Accuracy and macro-F1 of each classifier on a labelled file, and how often their labels agree.
    struct Classification: Encodable {
        struct Scores: Encodable {
            var accuracy: Double
            var macroF1: Double
            enum CodingKeys: String, CodingKey { case accuracy, macroF1 = "macro_f1" }
        }
        var file: String
        var examples: Int
        var labels: [String]
        var teacher, student: Scores
        /// The share of examples given the same label by both.
        var agreement: Double
    }

    /// A text of an input file and the line it came from.
    struct Line {
        var text: String
        var line: Int
    }

    // MARK: sentences

    /// The sentences of `path`: one per non-blank line, or with `column` (a .tsv, .csv or .jsonl
    /// table, HDTasks' reader) that column of every row.
    static func readSentences(_ path: String, column: String?) throws -> [Line] {
        if let column {
            let file = try TaskFile(contentsOfFile: path, columns: TaskColumns(text: column, pair: nil, label: nil))
            return file.examples.map { Line(text: $0.text, line: $0.line) }
        }
        let lines = try readUTF8File(path).split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { i, raw -> Line? in
            let text = raw.hasSuffix("\r") ? String(raw.dropLast()) : String(raw)
            return text.allSatisfy(\.isWhitespace) ? nil : Line(text: text, line: i + 1)
        }
        guard !lines.isEmpty else {
            throw ModelError(.badInput, file: path, "--sentences: expected at least one sentence (one per line), found only blank lines")
        }
        return lines
    }

    /// The student's dimensions as teacher dimensions: nil when the widths match and the student
    /// records nothing; the `hd.kept.hidden` record otherwise. Refuses differing widths without one.
    static func keptDimensions(teacher: Checkpoint, student: Checkpoint) throws -> [Int]? {
        let t = teacher.config.hiddenSize, s = student.config.hiddenSize
        if let kept = try KeptHidden.indices(in: student, teacherHiddenSize: t) { return kept }
        guard s == t else {
            throw ModelError(.shapeMismatch, file: student.source, field: Checkpoint.MetadataKey.keptHidden,
                "--sentences: the student's hidden size is \(s) and the teacher's \(t), and the student has no metadata \(Checkpoint.MetadataKey.keptHidden) saying which teacher dimensions it kept, so its embeddings cannot be set beside the teacher's; give the student.ckpt itself (its hd.mask.hidden says), re-export it with hd-export --shrink (which records them), or use --pairs, which scores each model on its own")
        }
        return nil
    }

    static func sentenceCosine(_ path: String, _ sentences: [Line], column: String, teacher: TextModel, student: TextModel,
                               kept: [Int]?) throws -> SentenceCosine {
        let t = try teacher.meanEmbeddings(encode(sentences, teacher, file: path, column: column))
        let s = try student.meanEmbeddings(encode(sentences, student, file: path, column: column))
        let dt = teacher.checkpoint.config.hiddenSize, ds = student.checkpoint.config.hiddenSize
        var sum = 0.0, squares = 0.0, least = Double.infinity
        t.withUnsafeBufferPointer { t in
            s.withUnsafeBufferPointer { s in
                for i in sentences.indices {
                    let c = cosine(UnsafeBufferPointer(rebasing: s[(i * ds)..<((i + 1) * ds)]),
                                   UnsafeBufferPointer(rebasing: t[(i * dt)..<((i + 1) * dt)]), kept: kept)
                    sum += c
                    squares += c * c
                    least = Swift.min(least, c)
                }
            }
        }
        let n = Double(sentences.count), mean = sum / n
        return SentenceCosine(file: path, sentences: sentences.count, mean: mean, std: Swift.max(0, squares / n - mean * mean).squareRoot(),
                              min: least, comparedDims: ds, keptDims: kept != nil)
    }

    /// cos(s, t) with s's dimension i set beside t's `kept[i]` (beside t's i without `kept`); the
    /// teacher's norm counts the kept dimensions only, as the pooled-cosine distillation loss does.
    static func cosine(_ s: UnsafeBufferPointer<Float>, _ t: UnsafeBufferPointer<Float>, kept: [Int]?) -> Double {
        var st = 0.0, ss = 0.0, tt = 0.0
        for i in s.indices {
            let x = Double(s[i]), y = Double(t[kept?[i] ?? i])
            st += x * y
            ss += x * x
            tt += y * y
        }
        return st / (Swift.max(ss.squareRoot(), 1e-12) * Swift.max(tt.squareRoot(), 1e-12))
    }

    // MARK: pairs

    /// SNLI-style rows: premise, hypothesis, and whether the hypothesis follows (entailment) or is
    /// contradicted; neutral and "-" rows are counted and left out.
    struct Pairs {
        var premises: [Line] = []
        var hypotheses: [Line] = []
        var entails: [Bool] = []
        var skipped = 0
    }

    static func readPairs(_ path: String, premise: String, hypothesis: String, label: String) throws -> Pairs {
        let file = try TaskFile(contentsOfFile: path, columns: TaskColumns(text: premise, pair: hypothesis, label: label))
        let name = URL(fileURLWithPath: path).lastPathComponent
        var pairs = Pairs()
        for example in file.examples {
            switch example.label {
            case "entailment", "contradiction":
                pairs.premises.append(Line(text: example.text, line: example.line))
                pairs.hypotheses.append(Line(text: example.pair ?? "", line: example.line))
                pairs.entails.append(example.label == "entailment")
            case "neutral", "-":
                pairs.skipped += 1
            default:
                throw ModelError(.badInput, file: path, field: label,
                    "\(name):\(example.line): column \"\(label)\": expected entailment, neutral or contradiction (SNLI's labels; \"-\", no consensus, is skipped), found \"\(example.label ?? "")\"")
            }
        }
        let entailment = pairs.entails.filter { $0 }.count, contradiction = pairs.entails.count - entailment
        guard entailment > 0, contradiction > 0 else {
            throw ModelError(.badInput, file: path, field: label,
                "--pairs: expected at least one entailment and one contradiction row to rank, found \(entailment) and \(contradiction)")
        }
        return pairs
    }

    static func pairAUC(_ path: String, _ pairs: Pairs, columns: (premise: String, hypothesis: String), teacher: TextModel,
                        student: TextModel) throws -> PairAUC {
        func auc(_ model: TextModel) throws -> Double {
            let p = try model.meanEmbeddings(encode(pairs.premises, model, file: path, column: columns.premise))
            let h = try model.meanEmbeddings(encode(pairs.hypotheses, model, file: path, column: columns.hypothesis))
            let d = model.checkpoint.config.hiddenSize
            let scores = p.withUnsafeBufferPointer { p in
                h.withUnsafeBufferPointer { h in
                    pairs.entails.indices.map { i in
                        cosine(UnsafeBufferPointer(rebasing: p[(i * d)..<((i + 1) * d)]), UnsafeBufferPointer(rebasing: h[(i * d)..<((i + 1) * d)]), kept: nil)
                    }
                }
            }
            return try ROCAUC.area(scores: scores, positive: pairs.entails)
        }
        let entailment = pairs.entails.filter { $0 }.count
        return PairAUC(file: path, entailment: entailment, contradiction: pairs.entails.count - entailment, skipped: pairs.skipped,
                       teacher: try auc(teacher), student: try auc(student))
    }

    // MARK: classifiers

    /// Refuses two classifiers that do not share their labels, or a regression head.
    static func checkClassifiers(teacher: ClassifierModel, student: ClassifierModel) throws {
        for model in [teacher, student] where model.isRegression {
            throw ModelError(.unsupported, file: model.checkpoint.source, field: "problem_type",
                "--data: expected a classifier with labels, found a regression head (problem_type regression); score each with hd-infer evaluate")
        }
        guard Set(teacher.labels) == Set(student.labels) else {
            throw ModelError(.badInput, file: student.checkpoint.source, field: "id2label",
                "--data: expected the teacher's labels in id2label (\(teacher.labels.joined(separator: ", "))), found \(student.labels.joined(separator: ", ")); a student distilled from this teacher keeps its labels")
        }
    }

    static func classification(_ path: String, _ file: TaskFile, textColumn: String, labelColumn: String,
                               teacher: ClassifierModel, student: ClassifierModel) throws -> Classification {
        func scores(_ model: ClassifierModel) throws -> (Classification.Scores, [String]) {
            let labels = try LabelSet(id2label: model.labels, source: model.checkpoint.source)
            let gold = try labels.ids(of: file.examples, file: path, column: labelColumn)
            let predicted = try model.predict(file.examples, file: path, column: textColumn).labels
            let metrics = try ClassificationMetrics(predicted: predicted, gold: gold, classCount: labels.count)
            return (.init(accuracy: metrics.accuracy, macroF1: metrics.macroF1), predicted.map { model.labels[$0] })
        }
        let (t, tLabels) = try scores(teacher), (s, sLabels) = try scores(student)
        let agreeing = zip(tLabels, sLabels).filter { $0 == $1 }.count
        return Classification(file: path, examples: file.examples.count, labels: teacher.labels, teacher: t, student: s,
                              agreement: Double(agreeing) / Double(file.examples.count))
    }

    // MARK: running text

    /// Every line's ids for `model`; a line it refuses (empty, too long without --truncate) is named
    /// by `file`, line and `column`.
    static func encode(_ lines: [Line], _ model: TextModel, file: String, column: String) throws -> [[Int]] {
        let name = URL(fileURLWithPath: file).lastPathComponent
        return try lines.map { line in
            do {
                return try model.encode(line.text, place: "\(name):\(line.line) (\(column))")
            } catch let error as ModelError where error.file == "<input>" {
                throw ModelError(.badInput, file: file, field: column, "\(error.message) (tokenised for \(model.checkpoint.source))")
            }
        }
    }
}

extension TextModel {
    /// The mean-pooled embeddings of `sequences` ([count × hidden], as `hd-infer embed` computes
    /// them: the mean of the last hidden state over every token, [CLS] and [SEP] included, not
    /// normalised), run up to the session's batch at a time, each batch padded to its longest.
    func meanEmbeddings(_ sequences: [[Int]]) throws -> [Float] {
        let d = checkpoint.config.hiddenSize
        var out: [Float] = []
        out.reserveCapacity(sequences.count * d)
        for first in stride(from: 0, to: sequences.count, by: session.maxBatch) {
            let chunk = Array(sequences[first..<min(first + session.maxBatch, sequences.count)])
            let batch = try TokenBatch.padding(chunk, padId: tokenizer.specialIDs.pad)
            try session.forward(batch)
            out += SentencePooling.mean.pool(session.lastHiddenState(), batch: chunk.count, sequenceLength: batch.sequenceLength,
                                             width: d, mask: batch.attentionMask.map(Float.init), normalized: false)
        }
        return out
    }
}
