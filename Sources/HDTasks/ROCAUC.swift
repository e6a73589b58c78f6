/// The area under the ROC curve of a score that should rank positives above negatives: the chance
/// that a random positive scores above a random negative, a tie counting ½ (the Mann–Whitney U over
/// nP·nN; scikit-learn's `roc_auc_score`). 1 ranks every positive first, 0.5 is chance. `hd-infer
/// compare` scores each model's cosine(premise, hypothesis) this way, entailment against
/// contradiction, a figure that needs no fine-tuning and no common width.
public enum ROCAUC {
    public static func area(scores: [Double], positive: [Bool]) throws -> Double {
        let positives = positive.reduce(0) { $0 + ($1 ? 1 : 0) }, negatives = positive.count - positives
        guard scores.count == positive.count, positives > 0, negatives > 0 else {
            throw TaskError(.invalidArgument, file: "<argument>",
                "ROC AUC: expected one score per example and at least one positive and one negative, found \(scores.count) scores for \(positives) positives and \(negatives) negatives")
        }
        if let i = scores.firstIndex(where: { !$0.isFinite }) {
            throw TaskError(.invalidArgument, file: "<argument>", "ROC AUC: expected finite scores, found \(scores[i]) at \(i)")
        }
        // Average ranks give each tie between a positive and a negative half a win.
        let ranks = RegressionMetrics.ranks(scores)
        var positiveRanks = 0.0
        for i in ranks.indices where positive[i] { positiveRanks += ranks[i] }
        let p = Double(positives)
        return (positiveRanks - p * (p + 1) / 2) / (p * Double(negatives))
    }
}
