import HDFormats
import HDModel
import Testing

/// One bad input to the forward: building the batch or running it must throw `.badInput` naming `mentions`.
struct BadBatchCase: CustomTestStringConvertible, Sendable {
    let name: String
    let mentions: String
    let run: @Sendable (BertModel) throws -> Void
    var testDescription: String { name }

    static let all: [BadBatchCase] = [
        BadBatchCase(name: "id at vocab size", mentions: "vocab_size 20") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, 20]]))
        },
        BadBatchCase(name: "negative id", mentions: "non-negative") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, -1]]))
        },
        BadBatchCase(name: "id beyond 32 bits", mentions: "32-bit") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, 1 << 40]]))
        },
        BadBatchCase(name: "token type beyond type vocab", mentions: "type_vocab_size 2") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, 2]], tokenTypes: [[0, 2]]))
        },
        BadBatchCase(name: "longer than the position table", mentions: "max_position_embeddings 12") { m in
            _ = try m.forward(try TokenBatch(ids: [[Int](repeating: 1, count: 13)]))
        },
        BadBatchCase(name: "mask row of the wrong length", mentions: "attention mask of sequence 1") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, 2, 3], [1, 2, 3]], attentionMask: [[1, 1, 1], [1, 1]]))
        },
        BadBatchCase(name: "mask with fewer rows than ids", mentions: "expected 2 sequences") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, 2], [3, 4]], attentionMask: [[1, 1]]))
        },
        BadBatchCase(name: "flat mask of the wrong count", mentions: "expected 6 values") { m in
            _ = try m.forward(try TokenBatch(batchSize: 2, sequenceLength: 3, ids: [1, 2, 3, 4, 5, 6], attentionMask: [1, 1, 1]))
        },
        BadBatchCase(name: "mask value not 0 or 1", mentions: "expected 0 or 1, found 2") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, 2]], attentionMask: [[1, 2]]))
        },
        BadBatchCase(name: "all-zero mask", mentions: "sequence 1 is all zeros") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, 2], [3, 4]], attentionMask: [[1, 0], [0, 0]]))
        },
        BadBatchCase(name: "ragged rows", mentions: "input ids of sequence 1") { m in
            _ = try m.forward(try TokenBatch(ids: [[1, 2, 3], [1, 2]]))
        },
        BadBatchCase(name: "empty batch", mentions: "at least one sequence") { m in
            _ = try m.forward(try TokenBatch(ids: []))
        },
        BadBatchCase(name: "empty sequence", mentions: "at least one sequence") { m in
            _ = try m.forward(try TokenBatch(ids: [[]]))
        },
        BadBatchCase(name: "batch × length overflows", mentions: "overflows") { m in
            _ = try m.forward(try TokenBatch(batchSize: Int.max / 2, sequenceLength: 4, ids: []))
        },
        BadBatchCase(name: "activations over the memory cap", mentions: "cap") { m in
            _ = try BertActivations(config: m.config, batchSize: 1 << 20, sequenceLength: 12, maxBytes: 1 << 30)
        },
        BadBatchCase(name: "padding with mismatched token types", mentions: "token types of sequence 0") { m in
            _ = try m.forward(try TokenBatch.padding([[1, 2, 3]], tokenTypes: [[0, 0]]))
        },
    ]
}

/// One edit that makes a tensor set unusable for `BertWeights`.
struct BadWeightsCase: CustomTestStringConvertible, Sendable {
    let name: String
    let kind: ModelError.Kind
    let mentions: String
    let edit: @Sendable (inout TensorSet) -> Void
    var testDescription: String { name }

    static let all: [BadWeightsCase] = [
        BadWeightsCase(name: "missing query weight", kind: .missingTensor, mentions: "bert.encoder.layer.1.attention.self.query.weight") {
            $0[BertNames.layer(1).queryWeight] = nil
        },
        BadWeightsCase(name: "transposed FFN weight", kind: .shapeMismatch, mentions: "expected shape [16, 8], found [8, 16]") {
            $0[BertNames.layer(0).intermediateWeight] = Tensor(shape: [8, 16], floats: Array(repeating: 0, count: 128))
        },
        BadWeightsCase(name: "integer LayerNorm", kind: .shapeMismatch, mentions: "embeddings.LayerNorm.bias") {
            $0[BertNames.embeddingsLayerNormBias] = Tensor(shape: [8], int64s: Array(repeating: 0, count: 8))
        },
        BadWeightsCase(name: "half a pooler", kind: .missingTensor, mentions: "bert.pooler.dense.bias missing") {
            $0[BertNames.poolerWeight] = Tensor(shape: [8, 8], floats: Array(repeating: 0, count: 64))
        },
        BadWeightsCase(name: "MLM head without its bias", kind: .missingTensor, mentions: "cls.predictions.bias missing") {
            $0[BertNames.mlmBias] = nil
        },
        BadWeightsCase(name: "decoder of the wrong shape", kind: .shapeMismatch, mentions: "cls.predictions.decoder.weight") {
            $0[BertNames.mlmDecoderWeight] = Tensor(shape: [8, 20], floats: Array(repeating: 0, count: 160))
        },
        BadWeightsCase(name: "decoder bias differing from cls.predictions.bias", kind: .shapeMismatch, mentions: "differ first at index 0") {
            $0[BertNames.mlmDecoderBias] = Tensor(shape: [20], floats: Array(repeating: 5, count: 20))
        },
    ]
}

@Suite("Forward refuses bad inputs and weights")
struct ForwardBadInputTests {
    static func model() throws -> BertModel {
        let config = SyntheticCheckpoint.config
        return try BertModel(config: config, weights: BertWeights(tensors: SyntheticCheckpoint.tensors(), config: config,
                                                                  source: "synthetic"))
    }

    @Test(arguments: BadBatchCase.all)
    func refusesBatch(_ bad: BadBatchCase) throws {
        let model = try Self.model()
        do {
            try bad.run(model)
            Issue.record("\(bad.name): accepted")
        } catch let error as ModelError {
            #expect(error.kind == .badInput, "\(error)")
            #expect(error.message.contains(bad.mentions), "should mention \(bad.mentions): \(error.message)")
        }
    }

    @Test(arguments: BadWeightsCase.all)
    func refusesWeights(_ bad: BadWeightsCase) throws {
        var set = SyntheticCheckpoint.tensors()
        bad.edit(&set)
        do {
            _ = try BertWeights(tensors: set, config: SyntheticCheckpoint.config, source: "synthetic.safetensors")
            Issue.record("\(bad.name): accepted")
        } catch let error as ModelError {
            #expect(error.kind == bad.kind, "\(error)")
            #expect(error.message.contains(bad.mentions), "should mention \(bad.mentions): \(error.message)")
            #expect(error.file == "synthetic.safetensors")
        }
    }

    @Test func untiedDecoderIsUsed() throws {
        var set = SyntheticCheckpoint.tensors()
        let config = SyntheticCheckpoint.config
        set[BertNames.mlmDecoderWeight] = Tensor(shape: [20, 8], floats: Array(repeating: 0, count: 160))
        let model = try BertModel(config: config, weights: BertWeights(tensors: set, config: config, source: "s"))
        #expect(model.weights.mlmHead?.isTied == false)
        // A zero decoder leaves only cls.predictions.bias in the logits.
        let logits = try model.mlmLogits(try model.forward(try TokenBatch(ids: [[1, 2]])))
        let bias = try #require(set[BertNames.mlmBias]?.floats?.array)
        #expect(logits == bias + bias)
    }
}
