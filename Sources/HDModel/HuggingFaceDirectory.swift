import Foundation
import HDFormats

/// Writes `config.json` + `model.safetensors` + `vocab.txt`, the layout `transformers` loads with
/// `BertForMaskedLM.from_pretrained(dir)` (or `BertModel` when there is no MLM head, or
/// `BertForSequenceClassification` when there is a classifier).
public enum HuggingFaceDirectory {
    /// Why HF's BertConfig cannot describe this model, or nil when it can.
    public static func unloadableReason(_ config: BertConfig) -> String? {
        if let shapes = config.layerShapes, shapes.contains(where: { $0 != shapes[0] }) {
            return "layers have different widths (hd_layers); transformers' BertConfig has one width per model"
        }
        let shape = config.layer(0)
        if shape.attentionWidth != config.hiddenSize {
            return "attention width \(shape.attentionWidth) (heads × head size) differs from hidden size \(config.hiddenSize); transformers derives head size as hidden / heads"
        }
        if shape.intermediateSize != config.intermediateSize || shape.attentionHeads != config.numAttentionHeads {
            return "per-layer widths differ from the top-level config"
        }
        if let scale = config.attentionScale, abs(scale - 1 / Float(shape.headSize).squareRoot()) > 1e-7 * scale {
            return "attention scale \(scale) is not 1/√(head size); fold it into the query weights first (hd-export does)"
        }
        return nil
    }

    /// The config as transformers expects it (no `hd_*` keys); a classifier's labels as `id2label`
    /// and `label2id` (and `problem_type` when set), which `AutoModelForSequenceClassification` reads.
    public static func configJSON(_ config: BertConfig, hasMLMHead: Bool, hasClassifier: Bool = false) -> Data {
        var object: [String: Any] = [
            "architectures": [hasClassifier ? "BertForSequenceClassification" : hasMLMHead ? "BertForMaskedLM" : "BertModel"],
            "model_type": "bert",
            "vocab_size": config.vocabSize,
            "hidden_size": config.hiddenSize,
            "num_hidden_layers": config.numHiddenLayers,
            "num_attention_heads": config.numAttentionHeads,
            "intermediate_size": config.intermediateSize,
            "hidden_act": config.hiddenAct.rawValue,
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": config.maxPositionEmbeddings,
            "type_vocab_size": config.typeVocabSize,
            "initializer_range": 0.02,
            "layer_norm_eps": decimal(config.layerNormEps),
            "pad_token_id": config.padTokenId,
            "position_embedding_type": config.positionEmbeddingType,
        ]
        if let labels = config.id2label {
            object["id2label"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { (String($0), $1) })
            object["label2id"] = Dictionary(labels.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        }
        if let problemType = config.problemType { object["problem_type"] = problemType }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return data + Data("\n".utf8)
    }

    /// The Double whose shortest decimal is the Float's shortest decimal: 1e-12 read as f32 is written
    /// back as 1e-12, not as the f32's exact binary value widened (9.999999960041972e-13). The source's
    /// decimal is kept whenever it has no more digits than f32 holds (every BERT config: 1e-12, 1e-5, …);
    /// otherwise this is the decimal of the f32 value the model computes with.
    static func decimal(_ value: Float) -> Double {
        Double(value.description) ?? Double(value)
    }

    /// The files `write` puts in the directory, in the order it writes them.
    public static let fileNames = ["model.safetensors", "config.json", "vocab.txt"]

    /// Writes the three files into `directory` (created if needed), each atomically.
    /// `written` is called with each file's path once it is in place, so a caller whose write fails
    /// part-way can say which files are new and which are not.
    public static func write(_ checkpoint: Checkpoint, to directory: String, sourceDigest: String?,
                             written: (String) -> Void = { _ in }) throws {
        if let reason = unloadableReason(checkpoint.config) {
            throw ModelError(.unsupported, file: directory, "transformers cannot load this model: \(reason); write safetensors instead")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FormatError(.io, file: directory, "cannot create the directory: \(error.localizedDescription)")
        }
        try SafeTensors.write(checkpoint.canonicalTensorSet(sourceDigest: sourceDigest), to: directory + "/model.safetensors")
        written(directory + "/model.safetensors")
        try writeSmall(configJSON(checkpoint.config, hasMLMHead: checkpoint.hasMLMHead, hasClassifier: checkpoint.hasClassifier), to: directory + "/config.json")
        written(directory + "/config.json")
        if let vocab = checkpoint.vocab {
            try writeSmall(Data((vocab.joined(separator: "\n") + "\n").utf8), to: directory + "/vocab.txt")
            written(directory + "/vocab.txt")
        }
    }

    static func writeSmall(_ data: Data, to path: String) throws {
        try AtomicFile.write(to: path, body: { writer in
            try data.withUnsafeBytes { try writer.write($0) }
        }, validate: { temp in
            let written = try MappedFile(path: temp, minimumBytes: 0)
            guard written.bytes.elementsEqual(data) else {
                throw FormatError(.io, file: path, "read-back differs from what was written")
            }
        })
    }
}
