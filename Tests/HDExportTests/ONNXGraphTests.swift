import Foundation
import HDExport
import HDFormats
import HDModel
import HDTestSupport
import ONNXProto
import Testing

/// The ONNX graph of a dense model: its structure (read back from the serialized bytes), and what
/// onnxruntime computes with it (tools/check_onnx.py in the interop venv) against the Swift forward.
@Suite("ONNX graph") struct ONNXGraphTests {
    /// tiny-bert (hidden 32, 4 heads × 8, FFN 64, with a pooler) shrunk to different widths per layer:
    /// hidden 24, layer 0 4 heads × 5 and FFN 40, layer 1 4 heads × 3 and FFN 24.
    static func perLayerStudent(activation: Activation = .gelu) throws -> BertModel {
        var checkpoint = try Checkpoint.load(TestSupport.fixture("tiny-bert"))
        checkpoint.config.hiddenAct = activation
        let parameters = try BertParameters(copying: try BertModel(checkpoint: checkpoint))
        let config = checkpoint.config
        let masks = try PruneMasks(config: config)
        try masks.set(.hidden, from: ShrinkTests.flags(size: 32, count: 24, seed: 1), source: "<test>")
        for (l, (perHead, ffn)) in [(5, 40), (3, 24)].enumerated() {
            for (g, seed) in [(PruneGroup.queryKey(l), 10), (.value(l), 20)] {
                try masks.set(g, from: (0..<4).flatMap { h in ShrinkTests.flags(size: 8, count: perHead, seed: UInt64(seed + 4 * l + h)) }, source: "<test>")
            }
            try masks.set(.ffn(l), from: ShrinkTests.flags(size: 64, count: ffn, seed: UInt64(30 + l)), source: "<test>")
        }
        masks.zeroPruned(parameters.flat, layout: parameters.layout)
        return try Shrink.dense(try BertModel(config: config, weights: parameters.model.weights, masks: masks), masks: masks)
    }

    /// `checkpoint` shrunk by seeded masks to `hidden`, `perHead` dimensions per head and `ffn` neurons in every layer.
    static func shrunk(_ checkpoint: Checkpoint, hidden: Int, perHead: Int, ffn: Int) throws -> BertModel {
        let parameters = try BertParameters(copying: try BertModel(checkpoint: checkpoint))
        let config = checkpoint.config, heads = config.numAttentionHeads, hs = config.headSize
        let masks = try PruneMasks(config: config)
        try masks.set(.hidden, from: ShrinkTests.flags(size: config.hiddenSize, count: hidden, seed: 1), source: "<test>")
        for l in 0..<config.numHiddenLayers {
            for (g, seed) in [(PruneGroup.queryKey(l), 10), (.value(l), 20)] {
                try masks.set(g, from: (0..<heads).flatMap { h in ShrinkTests.flags(size: hs, count: perHead, seed: UInt64(seed + heads * l + h)) }, source: "<test>")
            }
            try masks.set(.ffn(l), from: ShrinkTests.flags(size: config.intermediateSize, count: ffn, seed: UInt64(30 + l)), source: "<test>")
        }
        masks.zeroPruned(parameters.flat, layout: parameters.layout)
        return try Shrink.dense(try BertModel(config: config, weights: parameters.model.weights, masks: masks), masks: masks)
    }

    /// Two sequences of different lengths: the second is padded (attention mask 0, id 0).
    static let batch: TokenBatch = try! TokenBatch(ids: [[2, 15, 27, 4, 88, 9, 31, 3], [2, 41, 7, 3, 0, 0, 0, 0]],
                                                   tokenTypes: [[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0, 0, 0]],
                                                   attentionMask: [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0]])

    static func tensor(_ proto: Onnx_ModelProto, _ name: String) -> Onnx_TensorProto? {
        proto.graph.initializer.first { $0.name == name }
    }

    @Test func structureStatesOpsetInputsOutputsAndEveryLayersOwnWidths() throws {
        let model = try Self.perLayerStudent()
        let bytes: Data = try BertONNXGraph.model(model).serializedBytes()
        let proto = try Onnx_ModelProto(serializedBytes: bytes)
        #expect(proto.opsetImport.map(\.version) == [17] && proto.irVersion == 8)
        #expect(proto.graph.input.map(\.name) == ["input_ids", "attention_mask", "token_type_ids"])
        for input in proto.graph.input {
            #expect(input.type.tensorType.elemType == Int32(Onnx_TensorProto.DataType.int64.rawValue))
            #expect(input.type.tensorType.shape.dim.map(\.dimParam) == ["batch", "sequence"])
        }
        #expect(proto.graph.output.map(\.name) == ["last_hidden_state", "pooler_output"])
        #expect(proto.graph.output[0].type.tensorType.shape.dim.map(\.dimValue) == [0, 0, 24])

        let ops = proto.graph.node.map(\.opType)
        func count(_ op: String) -> Int { ops.filter { $0 == op }.count }
        #expect(count("LayerNormalization") == 5 && count("Softmax") == 2 && count("Erf") == 2 && count("Tanh") == 1)
        #expect(count("MatMul") == 2 * 8 + 1)  // per layer: Q, K, V, Q·Kᵀ, P·V, out, FFN in, FFN out; the pooler
        #expect(Set(ops).isSubset(of: ["Gather", "Shape", "Slice", "Unsqueeze", "Add", "LayerNormalization", "Cast", "Sub", "Mul",
                                       "MatMul", "Reshape", "Transpose", "Div", "Softmax", "Erf", "Tanh"]))
        // Each node reads only graph inputs, initializers or earlier outputs (topological order).
        var known = Set(proto.graph.input.map(\.name) + proto.graph.initializer.map(\.name))
        for node in proto.graph.node {
            for input in node.input { #expect(known.contains(input), "\(node.name) reads \(input) before it is made") }
            known.formUnion(node.output)
        }
        #expect(Set(proto.graph.output.map(\.name)).isSubset(of: known))

        // True widths, per layer: transposed weights [in, out] and the heads' Reshape shapes.
        for (l, (perHead, ffn)) in [(5, 40), (3, 24)].enumerated() {
            let n = BertNames.layer(l)
            #expect(Self.tensor(proto, n.queryWeight + ".T")?.dims == [24, Int64(4 * perHead)])
            #expect(Self.tensor(proto, n.valueBias)?.dims == [Int64(4 * perHead)])
            #expect(Self.tensor(proto, n.attentionOutputWeight + ".T")?.dims == [Int64(4 * perHead), 24])
            #expect(Self.tensor(proto, n.intermediateWeight + ".T")?.dims == [24, Int64(ffn)])
            #expect(Self.tensor(proto, n.outputWeight + ".T")?.dims == [Int64(ffn), 24])
            #expect(proto.graph.initializer.contains { $0.int64Data == [0, 0, 4, Int64(perHead)] })
        }
        // The transposed weight holds W[out, in] at [in, out].
        let q = try #require(Self.tensor(proto, BertNames.layer(1).queryWeight + ".T"))
        let stored = q.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let w = model.weights.layers[1].attention.query
        #expect((0..<w.outFeatures).allSatisfy { r in (0..<w.inFeatures).allSatisfy { c in stored[c * w.outFeatures + r] == w.weight.buffer[r * w.inFeatures + c] } })
    }

    /// What check_onnx.py printed for `path` on `Self.batch`.
    static func runORT(_ path: String, optimized: String? = nil, batch b: TokenBatch = batch) throws -> [String: Any] {
        let L = b.sequenceLength
        func rows(_ v: [Int32]) -> [[Int]] { (0..<b.batchSize).map { r in v[(r * L)..<((r + 1) * L)].map(Int.init) } }
        let feeds: [String: Any] = ["input_ids": rows(b.ids), "attention_mask": rows(b.attentionMask), "token_type_ids": rows(b.tokenTypes)]
        let stdin = String(decoding: try JSONSerialization.data(withJSONObject: feeds), as: UTF8.self)
        let script = TestSupport.root.appendingPathComponent("tools/check_onnx.py").path
        let r = try TestSupport.run(try TestSupport.python(), [script, path] + (optimized.map { ["--optimize", $0] } ?? []), stdin: stdin)
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    static func values(_ outputs: Any?, _ name: String) throws -> [Float] {
        let o = try #require((outputs as? [String: Any])?[name] as? [String: Any], "output \(name)")
        return try #require(o["values"] as? [Double]).map(Float.init)
    }

    /// onnxruntime equals the Swift forward (last hidden state and pooler) ≤ 1e-4 relative on a
    /// padded batch, before and after its transformer optimiser, which fuses attention, GELU and
    /// the residual LayerNorms of every layer.
    @Test(arguments: [Activation.gelu, .geluNew])
    func onnxruntimeComputesTheSwiftForward(_ activation: Activation) throws {
        let model = try Self.perLayerStudent(activation: activation)
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let path = tmp + "/student.onnx"
        let written = try ONNXFile.write(BertONNXGraph.model(model), to: path)
        #expect(written.externalData == nil)
        let out = try Self.runORT(path, optimized: tmp + "/optimized.onnx")
        #expect(out["opset"] as? Int == 17)

        let reference = try model.forward(Self.batch)
        let pooled = try model.pooled(reference)
        for key in ["outputs", "optimized_outputs"] {
            #expect(relativeError(try Self.values(out[key], "last_hidden_state"), reference.lastHiddenState) <= 1e-4, "\(key)")
            #expect(relativeError(try Self.values(out[key], "pooler_output"), pooled) <= 1e-4, "\(key)")
        }
        let fused = try #require(out["fused"] as? [String: Int])
        #expect(fused["EmbedLayerNormalization"] == 1 && fused["Attention"] == 2, "\(fused)")
        #expect(fused["SkipLayerNormalization"] == 4, "\(fused)")
        #expect((fused["Gelu"] ?? 0) + (fused["BiasGelu"] ?? 0) + (fused["FastGelu"] ?? 0) == 2, "\(fused)")
    }

    /// A sequence classifier (transformers-made fixtures/tiny-classifier, 3 labels) gets a `logits`
    /// output, [batch, labels], equal to the training path's head ≤ 1e-4 relative on a padded batch.
    @Test func aClassifierGetsLogits() throws {
        let model = try BertModel(checkpoint: try Checkpoint.load(ClassifierReference.directory))
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let proto = try BertONNXGraph.model(model)
        #expect(proto.graph.output.map(\.name) == ["last_hidden_state", "pooler_output", "logits"])
        #expect(proto.graph.output[2].type.tensorType.shape.dim.map(\.dimValue) == [0, 3])
        _ = try ONNXFile.write(proto, to: tmp + "/classifier.onnx")
        let out = try Self.runORT(tmp + "/classifier.onnx", optimized: tmp + "/optimized.onnx")

        let b = Self.batch
        let activations = try BertActivations(config: model.config, batchSize: b.batchSize, sequenceLength: b.sequenceLength)
        let head = try BertClassifierActivations(config: model.config, batchSize: b.batchSize, labels: 3)
        var none: Dropout? = nil
        try model.forward(b, activations: activations, dropout: &none)
        try model.classifierForward(activations: activations, head, dropout: &none)
        for key in ["outputs", "optimized_outputs"] {
            #expect(relativeError(try Self.values(out[key], "logits"), Array(head.logits)) <= 1e-4, "\(key)")
        }
    }

    /// all-MiniLM-L6-v2 (hidden 384, 12 heads × 32, FFN 1536, 6 layers, a pooler) pruned to hidden 288,
    /// 12 heads × 16, FFN 768: onnxruntime equals the Swift forward, and the optimiser fuses all 6 layers.
    @Test func aPrunedMiniLMInOnnxruntime() throws {
        let model = try Self.shrunk(try Checkpoint.load(try TestSupport.realModel("minilm")), hidden: 288, perHead: 16, ffn: 768)
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let path = tmp + "/minilm.onnx"
        try ONNXFile.write(BertONNXGraph.model(model), to: path)
        let out = try Self.runORT(path, optimized: tmp + "/optimized.onnx")
        let reference = try model.forward(Self.batch)
        for key in ["outputs", "optimized_outputs"] {
            #expect(relativeError(try Self.values(out[key], "last_hidden_state"), reference.lastHiddenState) <= 1e-4, "\(key)")
            if model.weights.pooler != nil {
                #expect(relativeError(try Self.values(out[key], "pooler_output"), try model.pooled(reference)) <= 1e-4, "\(key)")
            }
        }
        let fused = try #require(out["fused"] as? [String: Int])
        #expect(fused["Attention"] == 6 && fused["SkipLayerNormalization"] == 12 && fused["BiasGelu"] == 6, "\(fused)")
        // Its Hugging Face layout pads the heads from 16 to 288 / 12 = 24.
        let padded = try HuggingFaceLayout.padded(model)
        #expect(padded.config.headSize == 24 && HuggingFaceDirectory.unloadableReason(padded.config) == nil)
        let report = try Equivalence.measure(reference: model, candidate: padded, batch: Equivalence.checkBatch(model.config, sequences: 1))
        #expect(report.worst.error <= 1e-5, "\(report.worst)")
    }

    @Test func externalDataLoadsAndComputesTheSame() throws {
        let model = try Self.perLayerStudent()
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let path = tmp + "/student.onnx"
        let written = try ONNXFile.write(BertONNXGraph.model(model), to: path, externalData: .always)
        #expect(written.externalData == path + ".data")
        let proto = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: path)))
        let word = try #require(Self.tensor(proto, BertNames.wordEmbeddings))
        #expect(word.dataLocation == .external && word.rawData.isEmpty)
        #expect(word.externalData.map(\.key) == ["location", "offset", "length"] && word.externalData[0].value == "student.onnx.data")
        let out = try Self.runORT(path)
        #expect(relativeError(try Self.values(out["outputs"], "last_hidden_state"), try model.forward(Self.batch).lastHiddenState) <= 1e-4)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).filter { $0.contains(".tmp-") }.isEmpty)
    }
}
