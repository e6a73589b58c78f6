import Foundation
import HDFormats

/// How to load a checkpoint: where its config and vocab come from when not beside it or embedded,
/// and how strict to be.
public struct LoadOptions: Sendable {
    /// A `config.json` that overrides any other config source.
    public var configPath: String?
    /// A `vocab.txt` that overrides any other vocab source.
    public var vocabPath: String?
    /// Attention heads, when the config is inferred from shapes (or to override the config's).
    public var heads: Int?
    /// Drop tensors we do not know instead of refusing the file.
    public var allowExtra = false
    /// Refuse NaN/±Inf weights (convert and export always check; inference may skip the pass).
    public var checkFinite = true
    public var limits: ReadLimits = .default
    /// Cores for parallel decompression (0: all).
    public var threads = 0

    public init() {}
}

/// A BERT checkpoint in canonical form: f32 tensors under canonical HF names (`BertNames`), the
/// config that fits them, and the vocabulary when one was found. Every format and naming scheme we
/// read ends up here, so everything downstream has one loader and one model.
public struct Checkpoint: Sendable {
    public var config: BertConfig
    public var tensors: TensorSet
    public var vocab: [String]?
    /// Whether the tokenizer lower-cases and strips accents (BERT uncased) or keeps case.
    public var lowercase: Bool
    /// The file that was read.
    public var source: String
    public var kind: FileKind
    public var scheme: NameMapping.Scheme
    /// Where the config came from ("config.json beside the input", "--config", "embedded", "inferred").
    public var configSource: String
    /// Things the user should know (tied decoder dropped, heads guessed, extra tensors dropped).
    public var notes: [String]
    /// The metadata the source file carried (safetensors `__metadata__`).
    public var sourceMetadata: [String: String]

    public var hasMLMHead: Bool { tensors[BertNames.mlmBias] != nil }
    public var hasPooler: Bool { tensors[BertNames.poolerWeight] != nil }
    /// Whether it is a sequence classifier (`classifier.*`, labels in `config.id2label`).
    public var hasClassifier: Bool { tensors[BertNames.classifierWeight] != nil }
    /// Parameters and FLOPs per 128-token sequence (`ModelSize`, the one count).
    public var size: ModelSize {
        ModelSize(config: config, hasPooler: hasPooler,
                  mlmHead: hasMLMHead ? (tensors[BertNames.mlmDecoderWeight] == nil ? .tied : .untied) : .none,
                  classifierLabels: tensors[BertNames.classifierWeight]?.shape.first ?? 0)
    }

    public init(config: BertConfig, tensors: TensorSet, vocab: [String]?, lowercase: Bool = true, source: String, kind: FileKind,
                scheme: NameMapping.Scheme, configSource: String, notes: [String] = [],
                sourceMetadata: [String: String] = [:]) {
        self.config = config
        self.tensors = tensors
        self.vocab = vocab
        self.lowercase = lowercase
        self.source = source
        self.kind = kind
        self.scheme = scheme
        self.configSource = configSource
        self.notes = notes
        self.sourceMetadata = sourceMetadata
    }

    /// Metadata keys of our canonical files (docs/FORMATS.md).
    public enum MetadataKey {
        public static let format = "hd.format"
        public static let config = "hd.config"
        public static let vocab = "hd.vocab"
        public static let source = "hd.source"
        /// "true" or "false": the tokenizer's casing (`lowercase`).
        public static let lowercase = "hd.do_lower_case"
        /// "student" in a student.ckpt (`StudentCheckpoint`); absent in a canonical model file.
        public static let kind = "hd.kind"
        /// "true" or "false" in a fine-tuned classifier: whether it was trained on text pairs.
        /// Carried into every canonical file made from it, so `hd-infer classify` can refuse a pair.
        public static let taskPairs = "hd.task.pairs"
        /// In a shrunk student (and every canonical file made from it): which of its teacher's hidden
        /// dimensions it kept, a JSON array of ascending indices (`KeptHidden`), so its embeddings can
        /// be compared with the teacher's over those dimensions.
        public static let keptHidden = "hd.kept.hidden"
    }

    public static let formatVersion = "1"

    /// The `__metadata__` of a canonical file: config and vocab embedded, so one file is a whole model.
    public func canonicalMetadata(sourceDigest: String?) -> [String: String] {
        // "format": "pt" is what transformers checks before loading a safetensors file.
        var m = [MetadataKey.format: Self.formatVersion, MetadataKey.config: config.jsonString(), "format": "pt"]
        if let vocab {
            m[MetadataKey.vocab] = vocab.joined(separator: "\n")
            m[MetadataKey.lowercase] = String(lowercase)
        }
        let base = source.split(separator: "/").last.map(String.init) ?? source
        m[MetadataKey.source] = sourceDigest.map { "\(base) sha256:\($0)" } ?? base
        if hasClassifier, let pairs = sourceMetadata[MetadataKey.taskPairs] { m[MetadataKey.taskPairs] = pairs }
        // Converting or fine-tuning keeps the hidden width, so the record stays true of the copy.
        if let kept = sourceMetadata[MetadataKey.keptHidden] { m[MetadataKey.keptHidden] = kept }
        return m
    }

    /// The canonical tensors plus their metadata, ready for a writer.
    public func canonicalTensorSet(sourceDigest: String?) -> TensorSet {
        TensorSet(tensors: tensors.tensors, metadata: canonicalMetadata(sourceDigest: sourceDigest)).storingFloatsAsF32()
    }
}
