import Foundation
import HDFormats

/// `student.ckpt` (DESIGN.md §5, docs/FORMATS.md) as the model layer reads it: one safetensors file
/// holding a pruning run's model and, untouched, its trainer's state.
/// - weights under their canonical HF names (f32, full width even when masked);
/// - `hd.mask.<unit>` (1-D, stored as I32 0/1) for the pruned units;
/// - the trainer's tensor families (`hd.proj.*`, `hd.adam.m.*`, `hd.adam.v.*`, `hd.importance.*`) and
///   metadata keys, which this layer carries but does not interpret: HDDistill's
///   `TrainingCheckpoint` checks and uses them;
/// - metadata: `hd.format`, `hd.kind` = "student", `hd.config`, `hd.vocab` (optional).
/// Every tool opens it through `Checkpoint.load` (as the dense model it equals) or `MaskedStudent`.
public struct StudentCheckpoint: Sendable {
    public var config: BertConfig
    public var vocab: [String]?
    /// The tokenizer's casing (`Checkpoint.lowercase`), when the run recorded it.
    public var lowercase: Bool?
    /// A classifier student's `hd.task.pairs` (trained on text pairs or not), carried from its teacher.
    public var taskPairs: Bool?
    public var weights: [String: Tensor]
    /// Keyed by the part after `hd.mask.`.
    public var masks: [String: Tensor]
    /// The trainer's tensors under their full names (`hd.adam.m.…`, `hd.proj.…`, …).
    public var trainerTensors: [String: Tensor]
    /// The metadata keys that are not the model's (`hd.step`, `hd.rng`, `hd.recipe`, …).
    public var trainerMetadata: [String: String]

    public static let kind = "student"

    /// Prefixes of the `hd.*` tensor families; any other `hd.*` name is refused.
    public enum Prefix {
        public static let mask = "hd.mask."
        public static let projection = "hd.proj."
        public static let adamM = "hd.adam.m."
        public static let adamV = "hd.adam.v."
        public static let importance = "hd.importance."
        /// The families that belong to the trainer.
        public static let trainer = [projection, adamM, adamV, importance]
    }

    /// The metadata keys this layer owns; the rest are the trainer's.
    static let modelKeys: Set<String> = [Checkpoint.MetadataKey.format, Checkpoint.MetadataKey.kind,
                                         Checkpoint.MetadataKey.config, Checkpoint.MetadataKey.vocab,
                                         Checkpoint.MetadataKey.lowercase, Checkpoint.MetadataKey.taskPairs]

    public init(config: BertConfig, vocab: [String]?, lowercase: Bool? = nil, taskPairs: Bool? = nil, weights: [String: Tensor],
                masks: [String: Tensor] = [:], trainerTensors: [String: Tensor] = [:], trainerMetadata: [String: String] = [:]) {
        self.config = config
        self.vocab = vocab
        self.lowercase = lowercase
        self.taskPairs = taskPairs
        self.weights = weights
        self.masks = masks
        self.trainerTensors = trainerTensors
        self.trainerMetadata = trainerMetadata
    }

    /// Weights no loss of ours reaches among `weights`: the pooler, unless a classifier reads it (MLM
    /// and distillation of an encoder never use it; task-specific distillation trains both).
    public static func frozenNames(in weights: [String: Tensor]) -> Set<String> {
        weights[BertNames.classifierWeight] != nil ? [] : [BertNames.poolerWeight, BertNames.poolerBias]
    }

    public var tensorSet: TensorSet {
        var set = TensorSet()
        for (k, v) in weights { set[k] = v }
        for (k, v) in masks { set[Prefix.mask + k] = v }
        for (k, v) in trainerTensors { set[k] = v }
        var m = trainerMetadata
        m[Checkpoint.MetadataKey.format] = Checkpoint.formatVersion
        m[Checkpoint.MetadataKey.kind] = Self.kind
        m[Checkpoint.MetadataKey.config] = config.jsonString()
        if let vocab { m[Checkpoint.MetadataKey.vocab] = vocab.joined(separator: "\n") }
        if let lowercase { m[Checkpoint.MetadataKey.lowercase] = String(lowercase) }
        if let taskPairs { m[Checkpoint.MetadataKey.taskPairs] = String(taskPairs) }
        set.metadata = m
        return set
    }

    public static func read(path: String, limits: ReadLimits = .default) throws -> StudentCheckpoint {
        try decode(SafeTensors.read(path: path, limits: limits), file: path)
    }

    /// Whether `path` is a safetensors file whose metadata says it is a student checkpoint (its header
    /// alone is read). A file of another kind (npz, a directory, a plain model) is not; an
    /// unreadable one throws.
    public static func isStudent(path: String) throws -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { return false }
        let mapped = try MappedFile(path: path)
        let isSafeTensors = withExtendedLifetime(mapped) { FileKind.detect(mapped.bytes) == .safetensors }
        guard isSafeTensors else { return false }
        return try SafeTensors.metadata(path: path)[Checkpoint.MetadataKey.kind] == kind
    }

    /// Splits a tensor set into a checkpoint, refusing a wrong kind, a bad config or vocabulary,
    /// anything missing, extra, misshapen or non-finite among the weights, malformed masks and
    /// `hd.*` tensors of no known family.
    public static func decode(_ set: TensorSet, file: String) throws -> StudentCheckpoint {
        let m = set.metadata
        let (formatKey, kindKey, configKey, vocabKey) = (Checkpoint.MetadataKey.format, Checkpoint.MetadataKey.kind,
                                                         Checkpoint.MetadataKey.config, Checkpoint.MetadataKey.vocab)
        guard m[formatKey] == Checkpoint.formatVersion, m[kindKey] == kind else {
            throw ModelError(.badMetadata, file: file, field: kindKey,
                "metadata: expected \(formatKey) \"\(Checkpoint.formatVersion)\" and \(kindKey) \"\(kind)\" (a student.ckpt written by hd-distill), found "
                + "\(m[formatKey].map { "\"\($0.prefix(40))\"" } ?? "none") and \(m[kindKey].map { "\"\($0.prefix(40))\"" } ?? "none")")
        }
        guard let configText = m[configKey] else {
            throw ModelError(.badMetadata, file: file, field: configKey, "metadata \(configKey): expected the model config as JSON, found nothing")
        }
        let config = try BertConfig.decode(json: Data(configText.utf8), source: file + " (\(configKey))")
        let vocab = m[vocabKey].map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        if let vocab, vocab.count != config.vocabSize {
            throw ModelError(.badMetadata, file: file, field: vocabKey,
                "metadata \(vocabKey): expected \(config.vocabSize) tokens (vocab_size), found \(vocab.count)")
        }
        func flag(_ key: String) throws -> Bool? {
            try m[key].map { text in
                guard let value = Bool(text) else {
                    throw ModelError(.badMetadata, file: file, field: key, "metadata \(key): expected \"true\" or \"false\", found \"\(text.prefix(40))\"")
                }
                return value
            }
        }
        let lowercase = try flag(Checkpoint.MetadataKey.lowercase), taskPairs = try flag(Checkpoint.MetadataKey.taskPairs)
        var weights: [String: Tensor] = [:], masks: [String: Tensor] = [:], trainer: [String: Tensor] = [:]
        for (name, tensor) in set.tensors {
            if name.hasPrefix(Prefix.mask) {
                masks[String(name.dropFirst(Prefix.mask.count))] = tensor
            } else if Prefix.trainer.contains(where: { name.hasPrefix($0) }) {
                trainer[name] = tensor
            } else if name.hasPrefix("hd.") {
                throw ModelError(.unexpectedTensor, file: file, field: name,
                    "tensor \(name): unknown hd.* family; expected one of \(([Prefix.mask] + Prefix.trainer).map { $0 + "*" }.joined(separator: ", "))")
            } else {
                weights[name] = tensor
            }
        }
        try checkWeights(weights, config: config, file: file)
        try checkMasks(masks, file: file)
        return StudentCheckpoint(config: config, vocab: vocab, lowercase: lowercase, taskPairs: taskPairs, weights: weights, masks: masks, trainerTensors: trainer,
                                 trainerMetadata: m.filter { !modelKeys.contains($0.key) })
    }

    private static func checkWeights(_ weights: [String: Tensor], config: BertConfig, file: String) throws {
        var expected: [String: [Int]] = [:]
        let required = BertNames.requiredShapes(config)
        for (name, shape) in required { expected[name] = shape }
        let missing = required.map(\.0).filter { weights[$0] == nil }
        guard missing.isEmpty else {
            throw ModelError(.missingTensor, file: file, field: missing[0],
                "weights: expected every BERT tensor of the config, missing \(missing.count): \(missing.prefix(8).joined(separator: ", "))")
        }
        for group in BertNames.optionalGroups(config) {
            let present = group.tensors.filter { weights[$0.0] != nil }.map(\.0)
            if !present.isEmpty && present.count != group.tensors.count {
                throw ModelError(.missingTensor, file: file,
                    "weights: the \(group.group) group is partial; expected \(group.tensors.map(\.0).joined(separator: ", ")), found \(present.joined(separator: ", "))")
            }
            for (name, shape) in group.tensors { expected[name] = shape }
        }
        for name in weights.keys.sorted() {
            guard let shape = expected[name], let tensor = weights[name] else {
                throw ModelError(.unexpectedTensor, file: file, field: name, "tensor \(name): not a BERT tensor of this config nor an hd.* family")
            }
            if name == BertNames.positionIds {
                guard tensor.shape == shape else { throw shapeError(name, shape, tensor.shape, file) }
            } else {
                try expectFloat(tensor, name, shape: shape, file: file)
            }
        }
    }

    /// Masks are 1-D, integral 0/1 with at least one kept unit. Which units exist and how long each
    /// mask is depends on the model: `restoreMasks` checks that.
    private static func checkMasks(_ masks: [String: Tensor], file: String) throws {
        for (name, t) in masks {
            let field = Prefix.mask + name
            guard case .int64(let values) = t.values, t.shape.count == 1 else {
                throw ModelError(.badMask, file: file, field: field, "tensor \(field): expected a 1-D integer tensor, found \(t.storedAs.rawValue) of shape \(t.shape)")
            }
            if let i = values.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                throw ModelError(.badMask, file: file, field: field, "tensor \(field): expected 0 or 1, found \(values[i]) at index \(i)")
            }
            guard values.contains(1) else {
                throw ModelError(.badMask, file: file, field: field, "tensor \(field): expected at least one kept unit, found all \(values.count) pruned")
            }
        }
    }

    /// Fills `masks` from `hd.mask.*` (`saved`, keyed without the prefix): one tensor per group of
    /// `masks` and nothing else, each of its group's length, 0/1 with equal per-head counts. The
    /// weights in `parameters` (laid out by `layout`) must be zero wherever the masks prune, or the
    /// masked model would not be the smaller dense one the masks describe.
    public static func restoreMasks(_ saved: [String: Tensor], into masks: PruneMasks, parameters: UnsafeBufferPointer<Float>,
                                    layout: BertParameterLayout, file: String) throws {
        try restoreMasks(saved, into: masks, file: file) { masks.prunedAreZero(parameters, layout: layout) }
    }

    /// `restoreMasks` against a model's own weights (the exporter's and the loader's case: no flat copy).
    public static func restoreMasks(_ saved: [String: Tensor], into masks: PruneMasks, model: BertModel, file: String) throws {
        try restoreMasks(saved, into: masks, file: file) { try masks.prunedAreZero(model) }
    }

    private static func restoreMasks(_ saved: [String: Tensor], into masks: PruneMasks, file: String,
                                     prunedAreZero: () throws -> Bool) throws {
        let expected = Set(masks.groups.map { "\($0)" }), found = Set(saved.keys)
        if found != expected {
            let missing = expected.subtracting(found).sorted(), extra = found.subtracting(expected).sorted()
            throw ModelError(.badMask, file: file,
                "\(Prefix.mask)*: expected one mask per prunable unit of this model; missing \(missing.prefix(3).map { Prefix.mask + $0 }), unexpected \(extra.prefix(3).map { Prefix.mask + $0 })")
        }
        for g in masks.groups {
            let name = Prefix.mask + "\(g)"
            guard let t = saved["\(g)"], t.shape == [masks.size(g)], case .int64(let values) = t.values else {
                throw ModelError(.badMask, file: file, field: name, "\(name): expected \(masks.size(g)) integer flags, found shape \(saved["\(g)"]?.shape ?? [])")
            }
            do {
                try masks.set(g, from: values.map(Float.init), source: file)
            } catch let error as ModelError {
                throw ModelError(.badMask, file: file, field: name, error.message)
            }
        }
        guard try prunedAreZero() else {
            throw ModelError(.badMask, file: file, "weights: expected zeros wherever the masks prune, found nonzero values (the masks do not belong to these weights)")
        }
    }

    static func expectFloat(_ t: Tensor, _ name: String, shape: [Int]?, file: String) throws {
        guard let storage = t.floats else {
            throw ModelError(.shapeMismatch, file: file, field: name, "tensor \(name): expected f32 values, found \(t.storedAs.rawValue)")
        }
        if let shape, t.shape != shape { throw shapeError(name, shape, t.shape, file) }
        if let i = storage.buffer.firstIndex(where: { !$0.isFinite }) {
            throw ModelError(.nonFinite, file: file, field: name, "tensor \(name): expected finite values, found \(storage.buffer[i]) at flat index \(i)")
        }
    }

    static func shapeError(_ name: String, _ expected: [Int], _ found: [Int], _ file: String) -> ModelError {
        ModelError(.shapeMismatch, file: file, field: name, "tensor \(name): expected shape \(expected), found \(found)")
    }
}
