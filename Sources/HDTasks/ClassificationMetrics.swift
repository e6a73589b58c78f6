/// Accuracy, macro-F1, per-class scores and the confusion matrix of predicted against gold class ids.
///
/// Convention (scikit-learn's with `zero_division=0`): precision = tp/(tp+fp), 0 when a class was
/// never predicted; recall = tp/(tp+fn), 0 when it never occurs in gold; F1 = 2tp/(2tp+fp+fn), 0 when
/// that denominator is 0. Macro-F1 is the plain mean over all `classCount` classes, so a class that is
/// neither in gold nor predicted counts as F1 0: it equals
/// `f1_score(gold, pred, labels=range(classCount), average="macro", zero_division=0)` (without
/// `labels=`, scikit-learn averages only over the classes that occur in either list).
/// Encodes as JSON with keys `accuracy`, `macro_f1`, `count`, `per_class`, `confusion`.
public struct ClassificationMetrics: Codable, Sendable, Equatable {
    public struct ClassScores: Codable, Sendable, Equatable {
        public var precision: Double
        public var recall: Double
        public var f1: Double
        /// How many gold examples have this class.
        public var support: Int
    }

    public var accuracy: Double
    public var macroF1: Double
    /// The number of examples scored.
    public var count: Int
    /// Indexed by class id.
    public var perClass: [ClassScores]
    /// `confusion[gold][predicted]`: how many examples of class `gold` were predicted as `predicted`.
    public var confusion: [[Int]]

    enum CodingKeys: String, CodingKey {
        case accuracy, count, confusion
        case macroF1 = "macro_f1"
        case perClass = "per_class"
    }

    public init(predicted: [Int], gold: [Int], classCount: Int) throws {
        func bad(_ message: String) -> TaskError { TaskError(.invalidArgument, file: "<argument>", "metrics: " + message) }
        guard classCount >= 1 else { throw bad("expected at least one class, found \(classCount)") }
        guard predicted.count == gold.count else {
            throw bad("expected as many predictions as gold labels, found \(predicted.count) and \(gold.count)")
        }
        guard !gold.isEmpty else { throw bad("expected at least one example, found none") }
        for (name, ids) in [("predicted", predicted), ("gold", gold)] {
            if let i = ids.firstIndex(where: { !(0..<classCount).contains($0) }) {
                throw bad("\(name) class of example \(i): expected 0..<\(classCount), found \(ids[i])")
            }
        }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classCount), count: classCount)
        for (p, g) in zip(predicted, gold) { confusion[g][p] += 1 }

        var correct = 0
        var perClass: [ClassScores] = []
        for c in 0..<classCount {
            let tp = confusion[c][c]
            correct += tp
            let support = confusion[c].reduce(0, +)
            let predictedCount = confusion.reduce(0) { $0 + $1[c] }
            let fp = predictedCount - tp, fn = support - tp
            func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
            perClass.append(ClassScores(precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn),
                                        f1: ratio(2 * tp, 2 * tp + fp + fn), support: support))
        }
        self.accuracy = Double(correct) / Double(gold.count)
        self.macroF1 = perClass.reduce(0) { $0 + $1.f1 } / Double(classCount)
        self.count = gold.count
        self.perClass = perClass
        self.confusion = confusion
    }
}
