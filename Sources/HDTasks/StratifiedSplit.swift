import HDTensor

/// A train/dev split stratified by class, deterministic for a seed. `tools/task_split.py` reproduces it
/// bit for bit; the algorithm, exactly:
///
/// 1. One generator for the whole split: `Xoshiro256(seed:)` (xoshiro256** seeded by four SplitMix64
///    outputs; see HDTensor's Random.swift).
/// 2. For each class id c in increasing order: the indices i (0-based, in example order) with
///    `classes[i] == c`, ascending; n of them.
/// 3. Fisher–Yates shuffle of that list: for j = n−1 down to 1, r = `nextInt(below: j + 1)` (Lemire's
///    multiply-and-reject on the 128-bit product), swap positions j and r.
/// 4. k = ⌊fraction·n + 0.5⌋ (the product in Double), then when n ≥ 2, k is clamped to 1…n−1 (every
///    class with two examples is in both parts); when n = 1, k = 0 (the example stays in train).
/// 5. The first k of the shuffled list go to dev, the rest to train.
/// 6. Both parts are returned sorted ascending, so training keeps the file's order until the trainer
///    shuffles it.
///
/// Regression tasks, which have no classes, pass the same class for every example.
public enum StratifiedSplit {
    public static func split(classes: [Int], fraction: Double, seed: UInt64) throws -> (train: [Int], dev: [Int]) {
        guard fraction > 0, fraction < 1 else {
            throw TaskError(.invalidArgument, file: "<argument>", field: "dev-fraction",
                "split: expected a dev fraction strictly between 0 and 1, found \(fraction)")
        }
        guard let top = classes.max() else {
            throw TaskError(.invalidArgument, file: "<argument>", "split: expected examples, found none")
        }
        guard classes.allSatisfy({ $0 >= 0 }) else {
            throw TaskError(.invalidArgument, file: "<argument>", "split: class ids must be non-negative")
        }
        var byClass = [[Int]](repeating: [], count: top + 1)
        for (i, c) in classes.enumerated() { byClass[c].append(i) }

        var rng = Xoshiro256(seed: seed)
        var train: [Int] = [], dev: [Int] = []
        for var members in byClass where !members.isEmpty {
            let n = members.count
            var j = n - 1
            while j >= 1 {
                members.swapAt(j, rng.nextInt(below: j + 1))
                j -= 1
            }
            var k = Int((fraction * Double(n) + 0.5).rounded(.down))
            k = n >= 2 ? min(max(k, 1), n - 1) : 0
            dev += members[..<k]
            train += members[k...]
        }
        return (train.sorted(), dev.sorted())
    }
}
