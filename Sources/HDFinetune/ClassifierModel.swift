import HDFormats
import HDModel
import HDTensor

/// A labelled batch: the token batch (padded to its longest sequence) and, per sequence, a class id
/// (classification) or a target value (regression).
public struct LabelledBatch: Sendable {
    public var tokens: TokenBatch
    public var labels: [Int32]
    public var targets: [Float]

    public init(tokens: TokenBatch, labels: [Int32] = [], targets: [Float] = []) {
        self.tokens = tokens
        self.labels = labels
        self.targets = targets
    }
}

/// Where a trainer's examples come from: `count` examples, any subset of which makes a batch.
/// (`HDTasks` reads task files; the command line adapts them to this.)
public protocol LabelledExamples {
    var count: Int { get }
    /// The examples at `indices`, in that order, as one batch.
    func batch(_ indices: [Int]) throws -> LabelledBatch
}

/// `BertForSequenceClassification` made from any encoder: the encoder's weights, the checkpoint's
/// pooler when it has one (BERT's initialisation otherwise), a classifier for `labels` (the model's
/// own when it already has one with those labels, BERT's initialisation otherwise), and no MLM head
/// (a classifier does not use it).
public enum ClassifierModel {
    public struct Made {
        public let model: BertModel
        /// What was initialised rather than taken from the checkpoint, for the user to know.
        public let notes: [String]
    }

    public static func make(from model: BertModel, labels: [String], regression: Bool, seed: UInt64,
                            standardDeviation sigma: Double = 0.02) throws -> Made {
        var config = model.config
        let outputs = regression ? 1 : labels.count
        guard regression || labels.count >= 2 else {
            throw FinetuneError(.invalidArgument, file: "<argument>", "a classifier needs at least two labels, found \(labels)")
        }
        config.id2label = regression ? [labels.first ?? "LABEL_0"] : labels
        config.problemType = regression ? "regression" : "single_label_classification"
        var tensors = TensorSet()
        for (name, tensor) in try BertParameters.tensorSet(sharing: model).tensors {
            let isHead = name.hasPrefix("cls.") || name == BertNames.poolerWeight || name == BertNames.poolerBias
                || name == BertNames.classifierWeight || name == BertNames.classifierBias
            if !isHead { tensors[name] = tensor }
        }
        var notes: [String] = []
        if model.weights.mlmHead != nil { notes.append("the MLM head is not part of a classifier and was left out") }
        // A separate stream for the head, so its draws do not shift the data order or the dropout masks.
        var rng = Xoshiro256(seed: seed ^ 0x6865_6164) // "head"
        let d = config.hiddenSize
        func normal(_ count: Int) -> [Float] { (0..<count).map { _ in Float(sigma * rng.nextStandardNormal()) } }
        if let pooler = model.weights.pooler {
            tensors[BertNames.poolerWeight] = Tensor(shape: [d, d], values: .float32(pooler.weight), storedAs: .float32)
            tensors[BertNames.poolerBias] = Tensor(shape: [d], values: .float32(pooler.bias), storedAs: .float32)
        } else {
            tensors[BertNames.poolerWeight] = Tensor(shape: [d, d], floats: normal(d * d))
            tensors[BertNames.poolerBias] = Tensor(shape: [d], floats: [Float](repeating: 0, count: d))
            notes.append("the checkpoint has no pooler: BERT's initialisation N(0, \(sigma)) for bert.pooler.dense")
        }
        if let classifier = model.weights.classifier, model.config.id2label == config.id2label,
           model.config.isRegression == regression {
            tensors[BertNames.classifierWeight] = Tensor(shape: [outputs, d], values: .float32(classifier.weight), storedAs: .float32)
            tensors[BertNames.classifierBias] = Tensor(shape: [outputs], values: .float32(classifier.bias), storedAs: .float32)
        } else {
            tensors[BertNames.classifierWeight] = Tensor(shape: [outputs, d], floats: normal(outputs * d))
            tensors[BertNames.classifierBias] = Tensor(shape: [outputs], floats: [Float](repeating: 0, count: outputs))
            if model.weights.classifier != nil {
                notes.append("the checkpoint's classifier has other labels (\(model.config.id2label ?? [])): a new one was initialised")
            }
        }
        let made = try BertModel(config: config, weights: BertWeights(tensors: tensors, config: config, source: "<classifier>"))
        return Made(model: made, notes: notes)
    }
}
