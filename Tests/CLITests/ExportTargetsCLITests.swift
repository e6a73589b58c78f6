import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// hd-export's other targets, through the built binary on the suite's students: `--hf-dir` padded
/// to the widths transformers states, and `--onnx` run by onnxruntime (tools/check_onnx.py in the
/// interop venv) against the Swift forward of the exported model.
extension ExportCLITests {
    /// Two sequences of different lengths, the second padded, as check_onnx.py's stdin and as a batch.
    static let texts = ["the cat sat on the mat and ate the fish.", "paris is a city."]

    /// The padded batch of `texts` in `model`'s vocabulary (hd-infer tokenize), segment 1 on the second half of the first.
    static func batch(_ model: String) throws -> (TokenBatch, String) {
        let ids = try texts.map { text in
            try #require(try json(TestSupport.run(infer, ["tokenize", model, text, "--json"]).stdout)["ids"] as? [Int])
        }
        let L = ids.map(\.count).max()!
        let padded = ids.map { $0 + Array(repeating: 0, count: L - $0.count) }
        let mask = ids.map { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: L - $0.count) }
        let types = ids.enumerated().map { r, row in (0..<L).map { r == 0 && $0 >= row.count / 2 && $0 < row.count ? 1 : 0 } }
        let feeds = ["input_ids": padded, "attention_mask": mask, "token_type_ids": types]
        return (try TokenBatch(ids: padded, tokenTypes: types, attentionMask: mask),
                String(decoding: try JSONSerialization.data(withJSONObject: feeds), as: UTF8.self))
    }

    /// Exports `student` with --onnx and checks onnxruntime's outputs against the Swift forward of
    /// the exported canonical model, ≤ 1e-4 relative. Returns the fused op counts of the optimiser.
    static func onnxMatchesTheSwiftForward(_ student: String, in tmp: String) throws -> [String: Int] {
        let out = tmp + "/student.safetensors", onnx = tmp + "/student.onnx"
        let r = try run(["--shrink", student, "-o", out, "--onnx", onnx, "--json", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(try json(r.stdout)["onnx"] as? [String: Any])
        #expect(summary["path"] as? String == onnx && summary["opset"] as? Int == 17 && summary["external_data"] == nil)
        #expect(summary["inputs"] as? [String] == ["input_ids", "attention_mask", "token_type_ids"])

        let model = try BertModel(checkpoint: Checkpoint.load(out))
        let (batch, feeds) = try Self.batch(out)
        let script = TestSupport.root.appendingPathComponent("tools/check_onnx.py").path
        let ort = try json(TestSupport.run(try TestSupport.python(), [script, onnx, "--optimize", tmp + "/optimized.onnx"], stdin: feeds).stdout)
        let reference = try model.forward(batch)
        for key in ["outputs", "optimized_outputs"] {
            let outputs = try #require(ort[key] as? [String: [String: Any]])
            #expect(Set(outputs.keys) == Set(summary["outputs"] as? [String] ?? []))
            let hidden = try #require(outputs["last_hidden_state"]?["values"] as? [Double]).map(Float.init)
            #expect(outputs["last_hidden_state"]?["shape"] as? [Int] == [2, batch.sequenceLength, model.config.hiddenSize])
            #expect(relativeError(hidden, reference.lastHiddenState) <= 1e-4, "\(key)")
            if model.weights.pooler != nil {
                let pooled = try #require(outputs["pooler_output"]?["values"] as? [Double]).map(Float.init)
                #expect(relativeError(pooled, try model.pooled(reference)) <= 1e-4, "\(key)")
            }
        }
        return try #require(ort["fused"] as? [String: Int])
    }

    @Test("--onnx: onnxruntime on the pruned student equals the Swift forward, padded batch included, and its optimiser fuses every layer")
    func onnxOfAPrunedStudent() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let fused = try Self.onnxMatchesTheSwiftForward(try Self.students().pruned, in: tmp)
        #expect(fused["EmbedLayerNormalization"] == 1 && fused["Attention"] == 2 && fused["SkipLayerNormalization"] == 4, "\(fused)")
    }

    @Test("--onnx: a pruned splade-tiny (hidden 96, 2 heads × 32 of 64, FFN 384) in onnxruntime equals the Swift forward")
    func onnxOfAPrunedSpladeTiny() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let teacher = try TestSupport.realModel("splade-tiny"), student = tmp + "/splade.ckpt"
        try TestSupport.run(DistillCLITests.distill, DistillCLITests.flags(teacher, out: student, steps: 4)
            + ["--hidden", "96", "--ffn", "384", "--head-size", "32", "--prune-start", "1", "--prune-end", "2", "--prune-every", "1"])
        let fused = try Self.onnxMatchesTheSwiftForward(student, in: tmp)
        #expect(fused["EmbedLayerNormalization"] == 1 && fused["Attention"] == 2 && fused["SkipLayerNormalization"] == 4, "\(fused)")
    }

    @Test("--hf-dir pads heads of 2 to hidden / heads = 4 with zeros, and the padded model computes the student")
    func hfDirOfNarrowHeadsIsPadded() throws {
        let tmp = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(tmp) }
        let out = tmp + "/student.safetensors", hf = tmp + "/hf"
        let r = try Self.run(["--shrink", try Self.students().narrowHeads, "-o", out, "--hf-dir", hf, "--json", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try Self.json(r.stdout)
        #expect(summary["hf_dir"] as? String == hf && summary["hf_unloadable"] == nil)
        let padding = try #require(summary["hf_padding"] as? [String: Any])
        #expect(padding["head_size"] as? [Int] == [2, 2] && padding["padded_head_size"] as? Int == 4)
        #expect((padding["max_relative_error"] as? Double ?? 1) <= 1e-5)

        // config.json alone (Hugging Face keys) describes the padded tensors.
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: hf + "/config.json"))) as? [String: Any]
        #expect(config?.keys.contains { $0.hasPrefix("hd_") } == false)
        #expect(config?["hidden_size"] as? Int == 16 && config?["num_attention_heads"] as? Int == 4)
        var options = LoadOptions()
        options.configPath = hf + "/config.json"
        let padded = try BertModel(checkpoint: Checkpoint.load(hf, options: options))
        #expect(padded.config.layer(0) == LayerShape(attentionHeads: 4, headSize: 4, intermediateSize: 32))
        let dense = try BertModel(checkpoint: Checkpoint.load(out))
        let (batch, _) = try Self.batch(out)
        let a = try dense.forward(batch), b = try padded.forward(batch)
        #expect(relativeError(b.lastHiddenState, a.lastHiddenState) <= 1e-5)
        #expect(relativeError(try padded.mlmLogits(b), try dense.mlmLogits(a)) <= 1e-5)
        // hd-infer's fill-mask on the padded directory predicts what it predicts on the student.
        let text = "the cat sat on the [MASK] and ate the fish."
        func topIDs(_ model: String) throws -> [Int] {
            let fill = try TestSupport.run(Self.infer, ["fill-mask", model, text, "--json", "--top-k", "5", "--threads", "1"])
            return (try Self.json(fill.stdout)["predictions"] as? [[[String: Any]]])?.first?.compactMap { $0["id"] as? Int } ?? []
        }
        #expect(try topIDs(hf) == (try topIDs(out)) && (try topIDs(out)).count == 5)
    }
}
