import HDTasks
import Testing

@Suite("labels and splits")
struct LabelSplitTests {
    @Test("label order: numeric when all are integers, else UTF-8 byte order", arguments: [
        (["1", "10", "0", "2"], ["0", "1", "2", "10"]),
        (["-1", "+3", "01", "1", "0"], ["-1", "0", "01", "1", "+3"]),
        (["pos", "neg", "Neutral", "10", "9"], ["10", "9", "Neutral", "neg", "pos"]),
        (["é", "z", "e"], ["e", "z", "é"]),
        (["1.0", "2", "10"], ["1.0", "10", "2"]),
    ])
    func order(_ labels: [String], _ expected: [String]) {
        #expect(LabelSet.sorted(labels) == expected)
    }

    struct SplitCase: Decodable, Sendable {
        let seed: UInt64
        let fraction: Double
        let train: [Int]
        let dev: [Int]
    }

    struct SplitFixture: Decodable, Sendable {
        let file: String
        let cases: [SplitCase]
    }

    @Test("the split equals tools/task_split.py's on the committed fixture")
    func matchesPython() throws {
        let fixture = try Fixtures.json("tasks/split_small.expected.json", as: SplitFixture.self)
        let file = try TaskFile(contentsOfFile: Fixtures.path("tasks/" + fixture.file))
        let labels = try LabelSet(examples: file.examples, file: file.path)
        #expect(labels.id2label == ["0", "2", "7", "10"])
        let classes = try labels.ids(of: file.examples, file: file.path)
        #expect(fixture.cases.count == 5)
        for c in fixture.cases {
            let (train, dev) = try StratifiedSplit.split(classes: classes, fraction: c.fraction, seed: c.seed)
            #expect(train == c.train, "seed \(c.seed) fraction \(c.fraction)")
            #expect(dev == c.dev, "seed \(c.seed) fraction \(c.fraction)")
        }
    }

    @Test("stratified: every class with two examples in both parts; a singleton stays in train")
    func stratified() throws {
        let classes = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]
        for fraction in [0.01, 0.2, 0.5, 0.99] {
            let (train, dev) = try StratifiedSplit.split(classes: classes, fraction: fraction, seed: 3)
            #expect((train + dev).sorted() == Array(classes.indices))
            for c in [0, 1] {
                #expect(dev.contains { classes[$0] == c })
                #expect(train.contains { classes[$0] == c })
            }
            #expect(train.contains(12))
        }
        let first = try StratifiedSplit.split(classes: classes, fraction: 0.2, seed: 3)
        #expect(first.dev.count == 1 + 2)  // round(0.4) → 1 (at least one), round(2.0) = 2
        let again = try StratifiedSplit.split(classes: classes, fraction: 0.2, seed: 3)
        #expect(again.train == first.train && again.dev == first.dev)
        for bad in [0.0, 1.0, -0.1, .nan] {
            #expect(throws: TaskError.self) { try StratifiedSplit.split(classes: classes, fraction: bad, seed: 0) }
        }
    }
}
