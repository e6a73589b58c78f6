import Foundation
import HDTasks
import Testing

@Suite("classification metrics")
struct MetricsTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let predicted: [Int]
        let gold: [Int]
        let classes: Int
        let accuracy: Double
        let macroF1: Double
        let f1: [Double]
        var description: String { name }
    }

    // Derived by hand; scikit-learn's f1_score(labels=range(K), average="macro", zero_division=0) agrees.
    static let cases: [Case] = [
        Case(name: "perfect", predicted: [0, 1, 1], gold: [0, 1, 1], classes: 2, accuracy: 1, macroF1: 1, f1: [1, 1]),
        Case(name: "all wrong", predicted: [1, 0], gold: [0, 1], classes: 2, accuracy: 0, macroF1: 0, f1: [0, 0]),
        // class 0: tp 1 fp 1 fn 1 → 2/4; class 1: tp 1 fp 1 fn 1 → 2/4
        Case(name: "half", predicted: [0, 1, 0, 1], gold: [0, 1, 1, 0], classes: 2, accuracy: 0.5, macroF1: 0.5, f1: [0.5, 0.5]),
        // class 0: tp 2 fp 1 fn 0 → 4/5; class 1: tp 0 fp 0 fn 1 → 0; class 2: tp 1 fp 0 fn 0 → 1
        Case(name: "never predicted", predicted: [0, 0, 0, 2], gold: [0, 0, 1, 2], classes: 3, accuracy: 0.75,
             macroF1: (0.8 + 0 + 1) / 3, f1: [0.8, 0, 1]),
        // class 2 in neither list: F1 0, still averaged
        Case(name: "absent class", predicted: [0, 1], gold: [0, 1], classes: 3, accuracy: 1, macroF1: 2.0 / 3, f1: [1, 1, 0]),
        // class 0: tp 1 fp 0 fn 2 → 2/4; class 1: tp 2 fp 2 fn 0 → 4/6
        Case(name: "skewed", predicted: [0, 1, 1, 1, 1], gold: [0, 0, 0, 1, 1], classes: 2, accuracy: 0.6,
             macroF1: (0.5 + 2.0 / 3) / 2, f1: [0.5, 2.0 / 3]),
    ]

    @Test("accuracy, macro-F1 and per-class F1", arguments: cases)
    func scores(_ c: Case) throws {
        let m = try ClassificationMetrics(predicted: c.predicted, gold: c.gold, classCount: c.classes)
        #expect(abs(m.accuracy - c.accuracy) < 1e-12)
        #expect(abs(m.macroF1 - c.macroF1) < 1e-12)
        #expect(zip(m.perClass.map(\.f1), c.f1).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(m.perClass.map(\.support) == (0..<c.classes).map { k in c.gold.filter { $0 == k }.count })
    }

    @Test("confusion matrix, precision and recall, and the JSON keys")
    func confusionAndJSON() throws {
        let m = try ClassificationMetrics(predicted: [0, 0, 0, 2], gold: [0, 0, 1, 2], classCount: 3)
        #expect(m.confusion == [[2, 0, 0], [1, 0, 0], [0, 0, 1]])
        #expect(m.perClass[0].precision == 2.0 / 3 && m.perClass[0].recall == 1)
        #expect(m.perClass[1].precision == 0 && m.perClass[1].recall == 0)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(m)) as? [String: Any]
        #expect(Set(json?.keys.map { $0 } ?? []) == ["accuracy", "macro_f1", "count", "per_class", "confusion"])
        #expect(try JSONDecoder().decode(ClassificationMetrics.self, from: JSONEncoder().encode(m)) == m)
    }

    @Test("bad calls", arguments: [
        ([0], [0, 1], 2), ([], [], 2), ([0, 2], [0, 1], 2), ([0, 1], [-1, 1], 2), ([0], [0], 0),
    ])
    func bad(_ predicted: [Int], _ gold: [Int], _ classes: Int) {
        #expect { try ClassificationMetrics(predicted: predicted, gold: gold, classCount: classes) } throws: {
            ($0 as? TaskError)?.kind == .invalidArgument
        }
    }
}

/// Regression metrics against values worked out by hand (and by scipy's definitions: Spearman's ρ is
/// Pearson's r of average ranks).
@Suite struct RegressionMetricsTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var predicted: [Float], gold: [Float], mse: Double, pearson: Double?, spearman: Double?
        var testDescription: String { "\(predicted) vs \(gold)" }
    }

    static let cases: [Case] = [
        Case(predicted: [1, 2, 3], gold: [1, 2, 3], mse: 0, pearson: 1, spearman: 1),
        Case(predicted: [3, 2, 1], gold: [1, 2, 3], mse: 8.0 / 3, pearson: -1, spearman: -1),
        // Monotone but not linear: ρ is 1, r is not.
        Case(predicted: [1, 2, 10], gold: [1, 2, 3], mse: 49.0 / 3, pearson: 0.912245460839306, spearman: 1),
        // Ties: ranks (1.5, 1.5, 3) against (1, 2, 3).
        Case(predicted: [5, 5, 7], gold: [1, 2, 3], mse: (16 + 9 + 16) / 3.0, pearson: 0.8660254037844387, spearman: 0.8660254037844387),
        // A constant series has no correlation.
        Case(predicted: [2, 2, 2], gold: [1, 2, 3], mse: 2.0 / 3, pearson: nil, spearman: nil),
    ]

    @Test(arguments: cases)
    func matchesHandValues(_ c: Case) throws {
        let m = try RegressionMetrics(predicted: c.predicted, gold: c.gold)
        #expect(abs(m.meanSquaredError - c.mse) < 1e-12)
        #expect((m.pearson == nil) == (c.pearson == nil) && abs((m.pearson ?? 0) - (c.pearson ?? 0)) < 1e-12)
        #expect((m.spearman == nil) == (c.spearman == nil) && abs((m.spearman ?? 0) - (c.spearman ?? 0)) < 1e-12)
    }

    @Test func mismatchedCountsAreRefused() {
        #expect(throws: TaskError.self) { _ = try RegressionMetrics(predicted: [1], gold: [1, 2]) }
        #expect(throws: TaskError.self) { _ = try RegressionMetrics(predicted: [], gold: []) }
    }
}

/// ROC AUC against pairs counted by hand: of the nP·nN (positive, negative) pairs, the share where
/// the positive scores higher, a tie counting ½.
@Suite struct ROCAUCTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var scores: [Double], positive: [Bool], auc: Double
        var testDescription: String { "\(scores) \(positive.map { $0 ? "P" : "N" }.joined())" }
    }

    static let cases: [Case] = [
        // Every positive above every negative, and the reverse.
        Case(scores: [0.9, 0.8, 0.2, 0.1], positive: [true, true, false, false], auc: 1),
        Case(scores: [0.1, 0.2, 0.8, 0.9], positive: [true, true, false, false], auc: 0),
        // P {0.9, 0.8}, N {0.8, 0.3}: 0.9 > 0.8, 0.9 > 0.3, 0.8 = 0.8 (½), 0.8 > 0.3 → 3.5 / 4.
        Case(scores: [0.9, 0.8, 0.8, 0.3], positive: [true, true, false, false], auc: 0.875),
        // P {0.5, 0.2, 0.7}, N {0.4, 0.6}: wins 0.5>0.4, 0.7>0.4, 0.7>0.6 → 3 / 6.
        Case(scores: [0.5, 0.4, 0.2, 0.6, 0.7], positive: [true, false, true, false, true], auc: 0.5),
        // All tied: every pair is ½.
        Case(scores: [1, 1, 1], positive: [true, false, false], auc: 0.5),
        // P {−1, 0}, N {0, 0, −2}: −1 beats −2 only; 0 ties 0 twice (½ each) and beats −2 → 3 / 6.
        Case(scores: [-1, 0, 0, 0, -2], positive: [true, true, false, false, false], auc: 0.5),
    ]

    @Test(arguments: cases)
    func matchesHandCount(_ c: Case) throws {
        #expect(abs(try ROCAUC.area(scores: c.scores, positive: c.positive) - c.auc) < 1e-12)
    }

    @Test func oneClassOrNonFiniteIsRefused() {
        #expect(throws: TaskError.self) { _ = try ROCAUC.area(scores: [1, 2], positive: [true, true]) }
        #expect(throws: TaskError.self) { _ = try ROCAUC.area(scores: [1], positive: [true, false]) }
        #expect(throws: TaskError.self) { _ = try ROCAUC.area(scores: [.nan, 2], positive: [true, false]) }
    }
}
