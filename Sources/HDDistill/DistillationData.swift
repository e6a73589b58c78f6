import HDTokenizer

/// The sequences a distillation run draws its batches from, all of one length: a text corpus's
/// packed sequences (every token real, one segment), or a task's examples (padded, maybe pairs,
/// with class labels on the held-out split for task-specific distillation).
public protocol DistillationData: Sendable {
    var sequenceLength: Int { get }
    var vocabularySize: Int { get }
    var specialIDs: SpecialTokenIDs { get }
    /// The files the sequences came from, for messages.
    var origin: String { get }
    func sequenceCount(_ split: CorpusSplit) -> Int
    /// Sequence `index` of `split`: ids, token types and attention mask, `sequenceLength` values each.
    func sequence(_ index: Int, of split: CorpusSplit, ids: UnsafeMutableBufferPointer<Int32>,
                  tokenTypes: UnsafeMutableBufferPointer<Int32>, attentionMask: UnsafeMutableBufferPointer<Int32>)
    /// The class id of held-out example `index` (a task's dev labels); nil for unlabelled text.
    func heldOutLabel(_ index: Int) -> Int32?
}

extension Corpus: DistillationData {
    public var origin: String { files.joined(separator: ", ") }

    public func sequence(_ index: Int, of split: CorpusSplit, ids: UnsafeMutableBufferPointer<Int32>,
                         tokenTypes: UnsafeMutableBufferPointer<Int32>, attentionMask: UnsafeMutableBufferPointer<Int32>) {
        sequence(index, of: split, into: ids)
        tokenTypes.update(repeating: 0)
        attentionMask.update(repeating: 1)
    }

    public func heldOutLabel(_ index: Int) -> Int32? { nil }
}

/// A task's examples for task-specific distillation: each encoded (`[CLS] a [SEP]` or a pair) and
/// right-padded with `[PAD]` to `sequenceLength`; the dev split's class ids for its accuracy.
public struct TaskSequences: DistillationData {
    public struct Sequence: Sendable {
        public var ids: [Int32]
        public var tokenTypes: [Int32]
        public init(ids: [Int32], tokenTypes: [Int32]) {
            self.ids = ids
            self.tokenTypes = tokenTypes
        }
    }

    public let sequenceLength: Int
    public let vocabularySize: Int
    public let specialIDs: SpecialTokenIDs
    public let origin: String
    public let train: [Sequence]
    public let heldOut: [Sequence]
    public let heldOutLabels: [Int32]

    /// Sequences longer than `sequenceLength` are refused (encode with that maximum length).
    public init(train: [Sequence], heldOut: [Sequence], heldOutLabels: [Int32], sequenceLength: Int,
                vocabularySize: Int, specialIDs: SpecialTokenIDs, origin: String) throws {
        guard heldOutLabels.count == heldOut.count else {
            throw DistillError(.invalidArgument, file: origin, "task: \(heldOut.count) dev examples but \(heldOutLabels.count) labels")
        }
        for s in train + heldOut where s.ids.count > sequenceLength || s.ids.count != s.tokenTypes.count || s.ids.isEmpty {
            throw DistillError(.invalidArgument, file: origin,
                "task: an example of \(s.ids.count) tokens (\(s.tokenTypes.count) token types) does not fit sequences of \(sequenceLength)")
        }
        self.train = train
        self.heldOut = heldOut
        self.heldOutLabels = heldOutLabels
        self.sequenceLength = sequenceLength
        self.vocabularySize = vocabularySize
        self.specialIDs = specialIDs
        self.origin = origin
    }

    public func sequenceCount(_ split: CorpusSplit) -> Int { split == .train ? train.count : heldOut.count }

    public func sequence(_ index: Int, of split: CorpusSplit, ids: UnsafeMutableBufferPointer<Int32>,
                         tokenTypes: UnsafeMutableBufferPointer<Int32>, attentionMask: UnsafeMutableBufferPointer<Int32>) {
        let s = split == .train ? train[index] : heldOut[index], n = s.ids.count
        ids.update(repeating: Int32(specialIDs.pad))
        tokenTypes.update(repeating: 0)
        attentionMask.update(repeating: 0)
        for i in 0..<n {
            ids[i] = s.ids[i]
            tokenTypes[i] = s.tokenTypes[i]
            attentionMask[i] = 1
        }
    }

    public func heldOutLabel(_ index: Int) -> Int32? { heldOutLabels[index] }
}
