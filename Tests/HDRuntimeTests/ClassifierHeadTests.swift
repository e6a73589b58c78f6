import HDFormats
import HDModel
import HDRuntime
import HDTensor
import HDTestSupport
import Testing

/// The runtime's classifier head (pooler + classifier) against the training path's
/// `BertModel.classifierForward` (dropout off) and against transformers' `BertForSequenceClassification`
/// (fixtures/tiny-classifier, made by tools/make_classifier_fixture.py).
@Suite struct ClassifierHeadTests {
    static func model() throws -> BertModel {
        try BertModel(checkpoint: Checkpoint.load(ClassifierReference.directory))
    }

    /// A reference group as one padded batch, with transformers' own ids.
    static func batch(_ group: ClassifierReference.Group) throws -> TokenBatch {
        try TokenBatch(ids: group.examples.map(\.inputIds), tokenTypes: group.examples.map(\.tokenTypeIds),
                       attentionMask: group.examples.map(\.attentionMask))
    }

    /// The training path's logits for `batch`: forward, then the classifier head without dropout.
    static func trainingLogits(_ model: BertModel, _ batch: TokenBatch) throws -> [Float] {
        let activations = try BertActivations(config: model.config, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength)
        try model.forward(batch, activations: activations)
        let head = try BertClassifierActivations(config: model.config, batchSize: batch.batchSize,
                                                 labels: model.config.id2label!.count)
        var dropout: Dropout? = nil
        try model.classifierForward(activations: activations, head, dropout: &dropout)
        return Array(head.logits)
    }

    @Test(arguments: ["texts", "pairs", "truncated_pairs"], RuntimeEquivalenceTests.kernels)
    func runtimeEqualsTrainingPathAndTransformers(group name: String, kernel: GEMMKernel) throws {
        let reference = try ClassifierReference.load(), group = try #require(reference.groups[name])
        let model = try Self.model(), batch = try Self.batch(group)
        #expect(model.config.id2label == reference.labels)
        for threads in [1, 2] {
            let session = try InferenceSession(model: RuntimeModel(model: model, kernel: kernel), maxBatch: batch.batchSize,
                                               maxLength: batch.sequenceLength, threads: threads)
            try session.forward(batch)
            let output = try session.classify()
            #expect(output.batchSize == batch.batchSize && output.labels == 3)
            let logits = Array(output.logits)
            #expect(relativeError(logits, try Self.trainingLogits(model, batch)) <= 1e-5)
            for (b, example) in group.examples.enumerated() {
                let probabilities = output.probabilities(b).map(Double.init)
                let worst = zip(probabilities, example.probabilities).map { abs($0 - $1) }.max()!
                #expect(worst <= 1e-5, "\(name) \(b): probabilities differ from transformers' by \(worst)")
                #expect(relativeError(Array(output.logits(b)), example.logits.map(Float.init)) <= 1e-5)
                #expect(reference.labels[output.predicted(b)] == example.label)
            }
        }
    }

    /// bf16 and int8 encoders feed the same fp32 head: the labels stay transformers' on this fixture
    /// and the probabilities close.
    @Test(arguments: [Precision.bf16, .int8])
    func lowPrecisionEncoder(precision: Precision) throws {
        guard precision.unsupportedReason(kernel: .packed) == nil, GEMMKernel.isPackedSupported else { return }
        let reference = try ClassifierReference.load(), group = try #require(reference.groups["texts"])
        let batch = try Self.batch(group)
        let session = try InferenceSession(model: RuntimeModel(model: Self.model(), kernel: .packed, precision: precision),
                                           maxBatch: batch.batchSize, maxLength: batch.sequenceLength, threads: 2)
        try session.forward(batch)
        let output = try session.classify()
        for (b, example) in group.examples.enumerated() {
            let worst = zip(output.probabilities(b), example.probabilities).map { abs(Double($0) - $1) }.max()!
            #expect(worst <= 0.05, "\(precision) \(b): \(worst)")
            #expect(abs(output.probabilities(b).reduce(0, +) - 1) <= 1e-5)
        }
    }

    @Test func modelWithoutClassifierIsRefused() throws {
        let model = try BertModel(checkpoint: Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors")))
        let session = try InferenceSession(model: RuntimeModel(model: model), maxBatch: 1, maxLength: 8, threads: 1)
        try session.forward(TokenBatch(ids: [[3, 20, 4]]))
        let error = try #require(throws: ModelError.self) { try session.classify() }
        #expect(error.message.contains("classifier.weight"))
    }

    @Test func paddingAtTheCLSPositionIsRefused() throws {
        let session = try InferenceSession(model: RuntimeModel(model: Self.model()), maxBatch: 1, maxLength: 8, threads: 1)
        try session.forward(TokenBatch(ids: [[0, 3, 20, 4]], attentionMask: [[0, 1, 1, 1]]))
        let error = try #require(throws: ModelError.self) { try session.classify() }
        #expect(error.message.contains("position 0"))
    }

    /// A regression head: one output, the value itself in `probabilities`, no softmax.
    @Test func regressionHeadHasNoSoftmax() throws {
        var checkpoint = try Checkpoint.load(ClassifierReference.directory)
        var config = checkpoint.config
        config.id2label = ["score"]
        config.problemType = "regression"
        var tensors = checkpoint.tensors
        let d = config.hiddenSize
        let w = tensors[BertNames.classifierWeight]!.floats!, b = tensors[BertNames.classifierBias]!.floats!
        tensors[BertNames.classifierWeight] = Tensor(shape: [1, d], floats: Array(w.buffer.prefix(d)))
        tensors[BertNames.classifierBias] = Tensor(shape: [1], floats: [b.buffer[0]])
        checkpoint.config = config
        checkpoint.tensors = tensors
        let model = try BertModel(checkpoint: checkpoint)
        let session = try InferenceSession(model: RuntimeModel(model: model), maxBatch: 1, maxLength: 8, threads: 1)
        let batch = try TokenBatch(ids: [[3, 20, 30, 4]])
        try session.forward(batch)
        let output = try session.classify()
        #expect(output.labels == 1)
        #expect(Array(output.probabilities) == Array(output.logits))
        #expect(relativeError(Array(output.logits), try Self.trainingLogits(model, batch)) <= 1e-5)
    }
}
