/// Maps the tensor names of the checkpoint layouts we accept onto canonical Hugging Face names
/// (`BertNames`): HF `BertForMaskedLM` (`bert.` prefix), bare `BertModel` / sentence-transformers
/// (no prefix, or `0.auto_model.` / `auto_model.`), old `LayerNorm.gamma/beta`, and TensorFlow
/// (`bert/encoder/layer_0/attention/self/query/kernel`, kernels stored `[in, out]`).
public enum NameMapping {
    /// What to do with one source tensor.
    public enum Target: Equatable, Sendable {
        /// Store under this canonical name; `transpose` for TF kernels (`[in, out]` → `[out, in]`).
        case canonical(String, transpose: Bool)
        /// Optimiser state or bookkeeping that a model never needs (TF `adam_m`, `global_step`).
        case ignore(reason: String)
        /// Not a name we know.
        case unknown
    }

    /// The layout traits seen in one checkpoint, for `inspect` and error messages.
    public struct Scheme: Equatable, Sendable, CustomStringConvertible {
        public var tensorflow = false
        public var bertPrefix = false
        public var sentenceTransformersPrefix = false
        public var legacyLayerNorm = false

        public init() {}

        public var description: String {
            var parts: [String] = []
            if tensorflow {
                parts.append("TensorFlow (bert/…/kernel, transposed at load)")
            } else if sentenceTransformersPrefix {
                parts.append("sentence-transformers (auto_model. prefix)")
            } else {
                parts.append(bertPrefix ? "Hugging Face (bert. prefix)" : "Hugging Face BertModel (no bert. prefix)")
            }
            if legacyLayerNorm { parts.append("old LayerNorm.gamma/beta names") }
            return parts.joined(separator: ", ")
        }
    }

    /// Maps one name and records which layout traits it shows.
    public static func map(_ name: String, scheme: inout Scheme) -> Target {
        if name == "global_step" { return .ignore(reason: "TensorFlow bookkeeping") }
        if name.contains("/") { return mapTensorFlow(name, scheme: &scheme) }
        var rest = Substring(name)
        for prefix in ["0.auto_model.", "auto_model."] where rest.hasPrefix(prefix) {
            rest = rest.dropFirst(prefix.count)
            scheme.sentenceTransformersPrefix = true
        }
        if rest.hasPrefix("classifier.") {
            // BertForSequenceClassification's head sits beside `bert.`, under its own name.
            return .canonical(String(rest), transpose: false)
        }
        if rest.hasPrefix("bert.") {
            scheme.bertPrefix = true
        } else if rest.hasPrefix("embeddings.") || rest.hasPrefix("encoder.") || rest.hasPrefix("pooler.") {
            rest = "bert." + rest
        } else if !rest.hasPrefix("cls.") {
            return .unknown
        }
        var canonical = String(rest)
        if canonical.hasSuffix("LayerNorm.gamma") {
            canonical = String(canonical.dropLast("gamma".count)) + "weight"
            scheme.legacyLayerNorm = true
        } else if canonical.hasSuffix("LayerNorm.beta") {
            canonical = String(canonical.dropLast("beta".count)) + "bias"
            scheme.legacyLayerNorm = true
        }
        return .canonical(canonical, transpose: false)
    }

    private static func mapTensorFlow(_ name: String, scheme: inout Scheme) -> Target {
        scheme.tensorflow = true
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "adam_m" || parts.last == "adam_v" {
            return .ignore(reason: "TensorFlow optimiser state")
        }
        guard let first = parts.first, first == "bert" || first == "cls", parts.count >= 3,
              !parts.contains(where: \.isEmpty) else { return .unknown }
        if first == "bert" { scheme.bertPrefix = true }
        var components = parts.map { part -> String in
            // layer_3 → layer.3
            if part.hasPrefix("layer_"), let n = Int(part.dropFirst("layer_".count)), n >= 0 { return "layer.\(n)" }
            return part
        }
        let leaf = components.removeLast()
        let path = components.joined(separator: ".")
        switch (path, leaf) {
        case ("bert.embeddings", "word_embeddings"), ("bert.embeddings", "position_embeddings"),
             ("bert.embeddings", "token_type_embeddings"):
            return .canonical("\(path).\(leaf).weight", transpose: false)
        case ("cls.predictions", "output_bias"):
            return .canonical("cls.predictions.bias", transpose: false)
        case ("cls.seq_relationship", "output_weights"):
            return .canonical("cls.seq_relationship.weight", transpose: false)
        case ("cls.seq_relationship", "output_bias"):
            return .canonical("cls.seq_relationship.bias", transpose: false)
        case (_, "kernel"):
            return .canonical("\(path).weight", transpose: true)
        case (_, "gamma"):
            return .canonical("\(path).weight", transpose: false)
        case (_, "beta"), (_, "bias"):
            return .canonical("\(path).bias", transpose: false)
        default:
            return .unknown
        }
    }
}
