import Foundation
import HDFormats
import HDModel
import Testing

/// A small valid checkpoint built in code, so each bad case below is one edit away from valid.
enum SyntheticCheckpoint {
    static let config = BertConfig(vocabSize: 20, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
                                   intermediateSize: 16, maxPositionEmbeddings: 12, typeVocabSize: 2)

    static func tensors(mlmHead: Bool = true) -> TensorSet {
        var set = TensorSet()
        var shapes = BertNames.requiredShapes(config)
        if mlmHead { shapes += BertNames.optionalGroups(config).first { $0.group == "MLM head" }!.tensors }
        var seed: UInt32 = 7
        for (name, shape) in shapes {
            let n = shape.reduce(1, *)
            let values = (0..<n).map { _ -> Float in
                seed = seed &* 1_664_525 &+ 1_013_904_223
                return Float(Int(seed >> 9) % 2001 - 1000) / 10_000
            }
            set[name] = Tensor(shape: shape, floats: values)
        }
        return set
    }

    static func load(_ set: TensorSet, options: LoadOptions = LoadOptions(), withConfig: Bool = true) throws -> Checkpoint {
        var set = set
        if withConfig { set.metadata[Checkpoint.MetadataKey.config] = config.jsonString() }
        return try Checkpoint.make(set, kind: .safetensors, modelPath: "synthetic.safetensors",
                                   directory: "/nonexistent-dir", options: options)
    }
}

struct BadModelCase: CustomTestStringConvertible, Sendable {
    let name: String
    let kind: ModelError.Kind
    /// Text the message must contain (the tensor or field it is about).
    let mentions: String
    let edit: @Sendable (inout TensorSet) -> Void
    var testDescription: String { name }

    static let all: [BadModelCase] = [
        BadModelCase(name: "required tensor missing", kind: .missingTensor, mentions: "layer.1.attention.self.key.weight") {
            $0[BertNames.layer(1).keyWeight] = nil
        },
        BadModelCase(name: "several missing are all listed", kind: .missingTensor, mentions: "layer.0.output.dense.bias") {
            $0[BertNames.layer(0).outputBias] = nil
            $0[BertNames.layer(0).outputWeight] = nil
        },
        BadModelCase(name: "unexpected tensor", kind: .unexpectedTensor, mentions: "bert.encoder.extra.weight") {
            $0["bert.encoder.extra.weight"] = Tensor(shape: [1], floats: [0])
        },
        BadModelCase(name: "unknown top-level name", kind: .unexpectedTensor, mentions: "lm_head.weight") {
            $0["lm_head.weight"] = Tensor(shape: [1], floats: [0])
        },
        BadModelCase(name: "shape disagrees with config", kind: .shapeMismatch, mentions: "intermediate.dense.weight") {
            $0[BertNames.layer(0).intermediateWeight] = Tensor(shape: [15, 8], floats: Array(repeating: 0, count: 120))
        },
        BadModelCase(name: "Q and attention-out widths disagree", kind: .shapeMismatch, mentions: "attention.output.dense.weight") {
            $0[BertNames.layer(1).attentionOutputWeight] = Tensor(shape: [8, 6], floats: Array(repeating: 0, count: 48))
        },
        BadModelCase(name: "incomplete MLM head", kind: .missingTensor, mentions: "MLM head") {
            $0[BertNames.mlmLayerNormBias] = nil
        },
        BadModelCase(name: "NaN weight", kind: .nonFinite, mentions: "layer.0.attention.self.value.bias") {
            $0[BertNames.layer(0).valueBias] = Tensor(shape: [8], floats: [0, 0, 0, .nan, 0, 0, 0, 0])
        },
        BadModelCase(name: "infinite weight", kind: .nonFinite, mentions: "index 2") {
            $0[BertNames.embeddingsLayerNormWeight] = Tensor(shape: [8], floats: [1, 1, -.infinity, 1, 1, 1, 1, 1])
        },
        BadModelCase(name: "two names for one tensor", kind: .unexpectedTensor, mentions: "LayerNorm.gamma") {
            $0["bert.embeddings.LayerNorm.gamma"] = $0[BertNames.embeddingsLayerNormWeight]
        },
        BadModelCase(name: "integer weights", kind: .shapeMismatch, mentions: "attention.self.query.bias") {
            $0[BertNames.layer(0).queryBias] = Tensor(shape: [8], int64s: Array(repeating: 1, count: 8))
        },
        BadModelCase(name: "decoder bias differs from cls.predictions.bias", kind: .shapeMismatch, mentions: "decoder.bias") {
            $0[BertNames.mlmDecoderBias] = Tensor(shape: [20], floats: Array(repeating: 9, count: 20))
        },
        BadModelCase(name: "position ids not 0…n", kind: .badInput, mentions: "position_ids") {
            $0[BertNames.positionIds] = Tensor(shape: [1, 12], int64s: (0..<12).map { Int64(11 - $0) })
        },
    ]
}

@Suite("Checkpoint refuses bad models")
struct CheckpointBadInputTests {
    @Test("the synthetic checkpoint itself loads")
    func syntheticLoads() throws {
        let checkpoint = try SyntheticCheckpoint.load(SyntheticCheckpoint.tensors())
        #expect(checkpoint.hasMLMHead)
        #expect(checkpoint.config == SyntheticCheckpoint.config)
    }

    @Test(arguments: BadModelCase.all)
    func refuses(_ bad: BadModelCase) throws {
        var set = SyntheticCheckpoint.tensors()
        bad.edit(&set)
        do {
            _ = try SyntheticCheckpoint.load(set)
            Issue.record("\(bad.name): loaded, expected \(bad.kind)")
        } catch let error as ModelError {
            #expect(error.kind == bad.kind, "\(error)")
            #expect(error.message.contains(bad.mentions), "message should mention \(bad.mentions): \(error.message)")
            #expect(error.file == "synthetic.safetensors")
        }
    }

    @Test("--allow-extra drops unknown tensors with a note")
    func allowExtra() throws {
        var set = SyntheticCheckpoint.tensors()
        set["lm_head.weight"] = Tensor(shape: [1], floats: [0])
        var options = LoadOptions()
        options.allowExtra = true
        let checkpoint = try SyntheticCheckpoint.load(set, options: options)
        #expect(checkpoint.tensors["lm_head.weight"] == nil)
        #expect(checkpoint.notes.contains { $0.contains("lm_head.weight") })
    }

    @Test("a tied decoder copy and position ids are dropped; the bias copy is merged")
    func redundantTensorsDropped() throws {
        var set = SyntheticCheckpoint.tensors()
        set[BertNames.mlmDecoderWeight] = set[BertNames.wordEmbeddings]
        set[BertNames.mlmDecoderBias] = set[BertNames.mlmBias]
        set[BertNames.positionIds] = Tensor(shape: [1, 12], int64s: (0..<12).map(Int64.init))
        let checkpoint = try SyntheticCheckpoint.load(set)
        #expect(checkpoint.tensors[BertNames.mlmDecoderWeight] == nil)
        #expect(checkpoint.tensors[BertNames.mlmDecoderBias] == nil)
        #expect(checkpoint.tensors[BertNames.positionIds] == nil)
        #expect(checkpoint.tensors.tensors.count == SyntheticCheckpoint.tensors().tensors.count)
    }

    @Test("an untied decoder is kept")
    func untiedDecoderKept() throws {
        var set = SyntheticCheckpoint.tensors()
        set[BertNames.mlmDecoderWeight] = Tensor(shape: [20, 8], floats: Array(repeating: 0.5, count: 160))
        #expect(try SyntheticCheckpoint.load(set).tensors[BertNames.mlmDecoderWeight] != nil)
    }

    @Test("without a config, shapes give the widths but heads are never guessed: --heads or a refusal")
    func inferredConfig() throws {
        var config = SyntheticCheckpoint.config
        config.hiddenSize = 64
        config.numAttentionHeads = 1
        var set = TensorSet()
        for (name, shape) in BertNames.requiredShapes(config) {
            set[name] = Tensor(shape: shape, floats: Array(repeating: 0.01, count: shape.reduce(1, *)))
        }
        // hidden 64 would once have run as 64 / 64 = 1 head without a word.
        let error = #expect(throws: ModelError.self) { try SyntheticCheckpoint.load(set, withConfig: false) }
        #expect(error?.message.contains("pass --heads") == true && error?.field == "num_attention_heads")
        var options = LoadOptions()
        options.heads = 1
        let checkpoint = try SyntheticCheckpoint.load(set, options: options, withConfig: false)
        #expect(checkpoint.config == config)
        #expect(checkpoint.configSource == "inferred from shapes")
        #expect(checkpoint.notes.contains { $0.contains("1 attention heads from --heads") })
    }

    @Test("without a config, a hidden size that is not a multiple of 64 needs --heads")
    func inferredHeadsNeedFlag() throws {
        #expect(throws: ModelError.self) { try SyntheticCheckpoint.load(SyntheticCheckpoint.tensors(mlmHead: false), withConfig: false) }
        var options = LoadOptions()
        options.heads = 2
        let checkpoint = try SyntheticCheckpoint.load(SyntheticCheckpoint.tensors(mlmHead: false), options: options, withConfig: false)
        #expect(checkpoint.config.numAttentionHeads == 2)
    }

    @Test("config validation names the field", arguments: [
        (#"{"hidden_size": 8}"#, "vocab_size"),
        (#"{"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 16}"#, "num_attention_heads"),
        (#"{"vocab_size": -1, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16}"#, "vocab_size"),
        (#"{"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16, "hidden_act": "relu"}"#, "hidden_act"),
        (#"{"vocab_size": "20", "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16}"#, "vocab_size"),
        (#"not json"#, "not valid JSON"),
    ])
    func badConfig(json: String, mentions: String) throws {
        do {
            _ = try BertConfig.decode(json: Data(json.utf8), source: "config.json")
            Issue.record("decoded \(json)")
        } catch let error as ModelError {
            #expect(error.kind == .badConfig)
            #expect(error.message.contains(mentions), "\(error.message)")
        }
    }
}
