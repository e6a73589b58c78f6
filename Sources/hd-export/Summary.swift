import Foundation
import HDExport
import HDModel

/// What `hd-export` printed: the model before (masked, full width) and after (dense), the
/// equivalence check and where the files went. `--json` prints it as one object.
struct Summary: Encodable {
    struct Layer: Encodable, Equatable {
        var heads: Int
        var headSize: Int
        var ffn: Int

        enum CodingKeys: String, CodingKey {
            case heads, ffn
            case headSize = "head_size"
        }
    }

    struct Shape: Encodable {
        var hidden: Int
        var layers: [Layer]
        /// The one count (`ModelSize`): parameters, FLOPs per 128-token sequence.
        var size: ModelSize

        enum CodingKeys: String, CodingKey {
            case hidden, layers
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(hidden, forKey: .hidden)
            try c.encode(layers, forKey: .layers)
            try size.encode(to: encoder)
        }

        init(_ model: BertModel) {
            let c = model.config
            hidden = c.hiddenSize
            layers = (0..<c.numHiddenLayers).map { l in
                let s = c.layer(l)
                return Layer(heads: s.attentionHeads, headSize: s.headSize, ffn: s.intermediateSize)
            }
            size = ModelSize(model)
        }

        /// "hidden 128, 2 heads × 64, FFN 512", with a part per layer when layers differ.
        var widths: String {
            func describe(_ l: Layer) -> String { "\(l.heads) heads × \(l.headSize), FFN \(l.ffn)" }
            if layers.allSatisfy({ $0 == layers[0] }) { return "hidden \(hidden), \(describe(layers[0]))" }
            return "hidden \(hidden); " + layers.enumerated().map { "layer \($0): \(describe($1))" }.joined(separator: "; ")
        }
    }

    struct Check: Encodable {
        var sequences: Int
        var sequenceLength: Int
        var tolerance: Float
        var maxRelativeError: Float
        var worst: String
        /// Index 0: the embeddings' output; k: encoder layer k − 1's output.
        var hiddenStates: [Float]
        var mlmLogits: Float?

        enum CodingKeys: String, CodingKey {
            case sequences, tolerance, worst
            case sequenceLength = "sequence_length", maxRelativeError = "max_relative_error"
            case hiddenStates = "hidden_states", mlmLogits = "mlm_logits"
        }
    }

    var input: String
    var output: String
    var hfDir: String?
    /// Why transformers cannot load the dense model, when it cannot.
    var hfUnloadable: String?
    var unpruned: Bool
    var before: Shape
    var after: Shape
    var check: Check
    var notes: [String]
    /// Why `--hf-dir` could not be written after the canonical file was, and which of its files were.
    var hfFailure: HFFailure?
    /// How `--hf-dir`'s model was padded to transformers' widths, and its check against the dense model.
    var hfPadding: Padding?

    /// The ONNX file `--onnx` wrote.
    var onnx: ONNX?

    struct ONNX: Encodable {
        var path: String
        var externalData: String?
        var bytes: Int
        var opset: Int
        var inputs: [String]
        var outputs: [String]

        enum CodingKeys: String, CodingKey {
            case path, bytes, opset, inputs, outputs
            case externalData = "external_data"
        }

        init(_ written: ONNXFile.Written, model: BertModel) {
            path = written.model
            externalData = written.externalData
            bytes = written.bytes
            opset = BertONNXGraph.opset
            inputs = BertONNXGraph.Input.allCases.map(\.rawValue)
            outputs = [BertONNXGraph.Output.lastHiddenState.rawValue] + (model.weights.pooler == nil ? [] : [BertONNXGraph.Output.poolerOutput.rawValue])
        }
    }

    /// The zero padding of the Hugging Face layout (HuggingFaceLayout): head size and FFN width before
    /// and after, and the padded model's largest relative error against the dense one.
    struct Padding: Encodable {
        var headSize: [Int]
        var paddedHeadSize: Int
        var ffn: [Int]
        var paddedFFN: Int
        var maxRelativeError: Float
        var worst: String

        enum CodingKeys: String, CodingKey {
            case ffn, worst
            case headSize = "head_size", paddedHeadSize = "padded_head_size", paddedFFN = "padded_ffn"
            case maxRelativeError = "max_relative_error"
        }

        init(dense: BertConfig, padded: BertConfig, report: EquivalenceReport) {
            headSize = (0..<dense.numHiddenLayers).map { dense.layer($0).headSize }
            ffn = (0..<dense.numHiddenLayers).map { dense.layer($0).intermediateSize }
            paddedHeadSize = padded.headSize
            paddedFFN = padded.intermediateSize
            (worst, maxRelativeError) = report.worst
        }

        var text: String {
            func list(_ v: [Int]) -> String { Set(v).count == 1 ? "\(v[0])" : v.map(String.init).joined(separator: "/") }
            return "zero-padded for transformers: head size \(list(headSize)) → \(paddedHeadSize), FFN \(list(ffn)) → \(paddedFFN); checked against the dense model: max relative error \(String(format: "%.2g", maxRelativeError)) (\(worst))"
        }
    }

    struct HFFailure: Encodable {
        var dir: String
        var error: String
        /// The files of the directory that were written before the error (complete, each atomically).
        var written: [String]

        /// The one-line error: what is written and complete, what is not.
        func message(canonical: String) -> String {
            let missing = HuggingFaceDirectory.fileNames.map { dir + "/" + $0 }.filter { !written.contains($0) }
            return "\(dir): --hf-dir not written: \(error); the canonical \(canonical) is written and complete (hd-infer runs it)"
                + (written.isEmpty ? "" : "; written in \(dir): \(written.joined(separator: ", "))")
                + "; not written: \(missing.joined(separator: ", ")). Fix the directory and run again to write it"
        }
    }

    enum CodingKeys: String, CodingKey {
        case input, output, unpruned, before, after, check, notes
        case hfDir = "hf_dir", hfUnloadable = "hf_unloadable", hfFailure = "hf_error", hfPadding = "hf_padding", onnx
    }

    init(input: String, output: String, hfDir: String?, student: MaskedStudent, dense: BertModel, exportedNames: Set<String>,
         report: EquivalenceReport, tolerance: Float, hfUnloadable: String?) throws {
        self.input = input
        self.output = output
        self.hfDir = hfDir
        self.hfUnloadable = hfUnloadable
        unpruned = student.isUnpruned
        before = Shape(student.model)
        after = Shape(dense)
        let worst = report.worst
        check = Check(sequences: report.sequences, sequenceLength: report.sequenceLength, tolerance: tolerance,
                      maxRelativeError: worst.error, worst: worst.what, hiddenStates: report.hiddenStates, mlmLogits: report.mlmLogits)
        notes = []
        if student.masks == nil {
            notes.append("no pruning masks (the run did not prune: plain distillation, or --keep-layers alone): the exported model is the checkpoint's own model at its own widths")
        } else if unpruned {
            notes.append("nothing is pruned yet (every mask keeps every unit): the exported model is the checkpoint's own model at its own widths")
        }
        // The dense model holds what BertWeights reads (an NSP head, say, has no place in it); position
        // ids and the decoder's bias copy are implied by any BERT.
        let implied: Set<String> = [BertNames.positionIds, BertNames.mlmDecoderBias]
        let dropped = student.checkpoint.weights.keys.filter { !exportedNames.contains($0) && !implied.contains($0) }.sorted()
        if !dropped.isEmpty { notes.append("not exported (no part of the dense model): \(dropped.joined(separator: ", "))") }
    }

    func printText() {
        print("wrote \(output): \(after.widths)")
        print("  was \(before.widths)")
        let (b, a) = (before.size, after.size)
        print("  parameters \(b.parameters) → \(a.parameters) (\(percent(a.parameters, b.parameters)))")
        print("  FLOPs per \(ModelSize.flopSequenceLength)-token sequence \(b.flopsPer128TokenSequence) → \(a.flopsPer128TokenSequence) (\(percent(a.flopsPer128TokenSequence, b.flopsPer128TokenSequence)))")
        print("checked: \(check.sequences) sequences of \(check.sequenceLength) tokens (one half padding), every hidden state\(check.mlmLogits == nil ? "" : " and the MLM logits"): max relative error \(String(format: "%.2g", check.maxRelativeError)) (\(check.worst)) ≤ \(check.tolerance)")
        if let hfDir { print("wrote \(hfDir)/: config.json, model.safetensors, vocab.txt (transformers BertConfig)") }
        if hfDir != nil, let hfPadding { print("  \(hfPadding.text)") }
        if let onnx {
            print("wrote \(onnx.path)\(onnx.externalData.map { " + \($0)" } ?? ""): ONNX opset \(onnx.opset), \(onnx.inputs.joined(separator: ", ")) → \(onnx.outputs.joined(separator: ", ")) (\(onnx.bytes) bytes)")
        }
        for note in notes { print("note: \(note)") }
    }

    private func percent(_ a: Int, _ b: Int) -> String { String(format: "%.1f %%", 100 * Double(a) / Double(max(b, 1))) }
}
