import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// The arrays of a reference npz written by tools/reference_forward.py.
struct ReferenceArrays {
    let set: TensorSet
    let path: String

    init(_ relative: String) throws {
        path = TestSupport.fixture(relative)
        set = try Npz.read(path: path)
    }

    func floats(_ name: String) throws -> [Float] {
        guard let s = set[name]?.floats else { throw ModelError(.missingTensor, file: path, "no f32 array \(name)") }
        return s.array
    }

    func ints(_ name: String) throws -> (shape: [Int], values: [Int]) {
        guard let t = set[name], case .int64(let v) = t.values else {
            throw ModelError(.missingTensor, file: path, "no int64 array \(name)")
        }
        return (t.shape, v.map { Int($0) })
    }

    func batch() throws -> TokenBatch {
        let ids = try ints("input_ids"), types = try ints("token_type_ids"), mask = try ints("attention_mask")
        return try TokenBatch(batchSize: ids.shape[0], sequenceLength: ids.shape[1], ids: ids.values,
                              tokenTypes: types.values, attentionMask: mask.values)
    }
}

@Suite("BERT forward vs the numpy float64 reference")
struct ForwardTests {
    static func tinyModel(_ edit: (inout BertConfig) -> Void = { _ in }) throws -> BertModel {
        let checkpoint = try Checkpoint.load(TestSupport.fixture("tiny-bert"))
        var config = checkpoint.config
        edit(&config)
        return try BertModel(config: config, weights: BertWeights(tensors: checkpoint.tensors, config: config,
                                                                  source: checkpoint.source))
    }

    /// Every hidden state, every attention map, the MLM logits and both poolings within 1e-5.
    @Test func tinyModelMatchesReference() throws {
        let ref = try ReferenceArrays("reference/tiny-bert-forward.npz")
        let model = try Self.tinyModel()
        let output = try model.forward(try ref.batch(), options: ForwardOptions(hiddenStates: true, attentions: true))
        let hidden = try #require(output.hiddenStates), attentions = try #require(output.attentions)
        #expect(hidden.count == 3 && attentions.count == 2)
        for (i, h) in hidden.enumerated() {
            #expect(relativeError(h, try ref.floats("hidden_state_\(i)")) < 1e-5, "hidden state \(i)")
        }
        for (i, a) in attentions.enumerated() {
            #expect(relativeError(a, try ref.floats("attention_\(i)")) < 1e-5, "attention \(i)")
        }
        #expect(output.lastHiddenState == hidden[2])
        #expect(relativeError(try model.mlmLogits(output), try ref.floats("mlm_logits")) < 1e-5)
        #expect(relativeError(output.meanPooled(normalized: true), try ref.floats("mean_pooled_normalized")) < 1e-5)
        #expect(relativeError(try model.pooled(output), try ref.floats("pooler_output")) < 1e-5)
    }

    /// The tanh GELU and an explicit attention scale (a pruned student's config) take their own paths.
    @Test func tanhGELUAndExplicitScaleMatchReference() throws {
        let ref = try ReferenceArrays("reference/tiny-bert-forward.npz")
        let model = try Self.tinyModel { $0.hiddenAct = .geluNew; $0.attentionScale = 0.3 }
        let output = try model.forward(try ref.batch())
        #expect(relativeError(output.lastHiddenState, try ref.floats("variant_last_hidden_state")) < 1e-5)
        #expect(relativeError(try model.mlmLogits(output), try ref.floats("variant_mlm_logits")) < 1e-5)
    }

    @Test func selectedPositionsAreRowsOfAllPositions() throws {
        let ref = try ReferenceArrays("reference/tiny-bert-forward.npz")
        let model = try Self.tinyModel()
        let output = try model.forward(try ref.batch())
        let all = try model.mlmLogits(output), V = model.config.vocabSize, L = output.sequenceLength
        let chosen = [TokenPosition(batch: 2, position: 1), TokenPosition(batch: 0, position: 8), TokenPosition(batch: 2, position: 1)]
        let some = try model.mlmLogits(output, positions: .selected(chosen))
        for (i, p) in chosen.enumerated() {
            let row = (p.batch * L + p.position) * V
            #expect(relativeError(Array(some[(i * V)..<((i + 1) * V)]), Array(all[row..<(row + V)])) < 1e-6)
        }
        #expect(throws: ModelError.self) {
            try model.mlmLogits(output, positions: .selected([TokenPosition(batch: 3, position: 0)]))
        }
    }

    /// A padded sequence gives the same real-token states as the same sequence alone.
    @Test func paddingDoesNotLeakIntoRealTokens() throws {
        let model = try Self.tinyModel()
        let alone = try model.forward(try TokenBatch(ids: [[3, 25, 26, 4]]))
        let padded = try model.forward(try TokenBatch.padding([[3, 25, 26, 4], [3, 7, 80, 99, 12, 4]]))
        let d = model.config.hiddenSize
        #expect(relativeError(Array(padded.lastHiddenState[0..<(4 * d)]), alone.lastHiddenState) < 1e-5)
    }

    @Test func activationsAreReusableAndShapeChecked() throws {
        let model = try Self.tinyModel()
        let batch = try TokenBatch(ids: [[3, 25, 26, 4], [3, 40, 4, 0]])
        let activations = try BertActivations(config: model.config, batchSize: 2, sequenceLength: 4)
        try model.forward(batch, activations: activations)
        let first = Array(activations.lastHiddenState)
        try model.forward(batch, activations: activations)
        #expect(Array(activations.lastHiddenState) == first)
        #expect(first == (try model.forward(batch)).lastHiddenState)
        #expect(throws: ModelError.self) { try model.forward(try TokenBatch(ids: [[3, 4]]), activations: activations) }
    }

    @Test func modelWithoutMLMHeadRefusesLogits() throws {
        let config = SyntheticCheckpoint.config
        let weights = try BertWeights(tensors: SyntheticCheckpoint.tensors(mlmHead: false), config: config, source: "synthetic")
        let model = try BertModel(config: config, weights: weights)
        let output = try model.forward(try TokenBatch(ids: [[1, 2, 3]]))
        let finite = output.lastHiddenState.allSatisfy { $0.isFinite }
        #expect(finite)
        do {
            _ = try model.mlmLogits(output)
            Issue.record("expected .unsupported")
        } catch let error as ModelError {
            #expect(error.kind == .unsupported && error.message.contains("no MLM head"))
        }
    }
}
