/// How well a regression head's values follow the gold targets: mean squared error, Pearson's r and
/// Spearman's ρ (Pearson's r of the ranks, tied values sharing their average rank, as
/// `scipy.stats.spearmanr` does). A correlation of a constant series is undefined and reported as nil.
public struct RegressionMetrics: Codable, Sendable, Equatable {
    public var count: Int
    public var meanSquaredError: Double
    public var pearson: Double?
    public var spearman: Double?

    enum CodingKeys: String, CodingKey {
        case count, pearson, spearman
        case meanSquaredError = "mse"
    }

    public init(predicted: [Float], gold: [Float]) throws {
        guard predicted.count == gold.count, !gold.isEmpty else {
            throw TaskError(.invalidArgument, file: "<argument>",
                "regression metrics: expected as many predictions as targets (at least one), found \(predicted.count) and \(gold.count)")
        }
        let x = predicted.map(Double.init), y = gold.map(Double.init)
        count = y.count
        meanSquaredError = zip(x, y).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(count)
        pearson = Self.correlation(x, y)
        spearman = Self.correlation(Self.ranks(x), Self.ranks(y))
    }

    static func correlation(_ x: [Double], _ y: [Double]) -> Double? {
        let n = Double(x.count), mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        guard sxx > 0, syy > 0 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }

    /// 1-based ranks, ties sharing the average of the ranks they span.
    static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var out = [Double](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && values[order[end + 1]] == values[order[start]] { end += 1 }
            let rank = Double(start + end) / 2 + 1
            for i in start...end { out[order[i]] = rank }
            start = end + 1
        }
        return out
    }
}
