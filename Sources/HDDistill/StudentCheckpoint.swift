import Foundation
import HDFormats
import HDModel

/// `student.ckpt` (DESIGN.md §5, docs/FORMATS.md): one safetensors file holding a training run.
/// - weights under their canonical HF names (f32, full width even when masked);
/// - `hd.proj.<name>`: learnable d×d projections of the distillation losses;
/// - `hd.adam.m.<T>`, `hd.adam.v.<T>` for every trainable tensor T (float weights and projections);
/// - `hd.mask.<unit>` (1-D, stored as I32 0/1: the tensor formats here have no U8 yet) and
///   `hd.importance.<name>` (f32) for pruning;
/// - metadata: `hd.format`, `hd.kind` = "student", `hd.config`, `hd.vocab` (optional) and the
///   `TrainingState` keys.
/// Written atomically (temp + fsync + validate + rename), so a killed run leaves the previous file.
public struct StudentCheckpoint: Sendable {
    public var config: BertConfig
    public var vocab: [String]?
    public var weights: [String: Tensor]
    /// Keyed by the part after `hd.proj.`.
    public var projections: [String: Tensor]
    /// Keyed by the trainable tensor's full name (a weight name or `hd.proj.…`).
    public var adamM: [String: Tensor]
    public var adamV: [String: Tensor]
    /// Keyed by the part after `hd.mask.` / `hd.importance.`.
    public var masks: [String: Tensor]
    public var importance: [String: Tensor]
    public var state: TrainingState

    public static let kind = "student"
    public enum Prefix {
        public static let projection = "hd.proj."
        public static let adamM = "hd.adam.m."
        public static let adamV = "hd.adam.v."
        public static let mask = "hd.mask."
        public static let importance = "hd.importance."
    }
    public static let kindKey = "hd.kind"

    public init(config: BertConfig, vocab: [String]?, weights: [String: Tensor], projections: [String: Tensor] = [:],
                adamM: [String: Tensor], adamV: [String: Tensor], masks: [String: Tensor] = [:],
                importance: [String: Tensor] = [:], state: TrainingState) {
        self.config = config
        self.vocab = vocab
        self.weights = weights
        self.projections = projections
        self.adamM = adamM
        self.adamV = adamV
        self.masks = masks
        self.importance = importance
        self.state = state
    }

    /// Weights no loss of ours reaches (MLM and distillation never use the pooler): kept, not trained,
    /// so they have no Adam moments.
    public static let frozenNames: Set<String> = [BertNames.poolerWeight, BertNames.poolerBias]

    /// Names of the tensors AdamW updates: float weights (not frozen) and the projections.
    public var trainableNames: [String] {
        weights.filter { $0.value.floats != nil && !Self.frozenNames.contains($0.key) }.map(\.key)
            + projections.keys.map { Prefix.projection + $0 }
    }

    public var tensorSet: TensorSet {
        var set = TensorSet()
        for (k, v) in weights { set[k] = v }
        for (k, v) in projections { set[Prefix.projection + k] = v }
        for (k, v) in adamM { set[Prefix.adamM + k] = v }
        for (k, v) in adamV { set[Prefix.adamV + k] = v }
        for (k, v) in masks { set[Prefix.mask + k] = v }
        for (k, v) in importance { set[Prefix.importance + k] = v }
        var m = state.metadata
        m[Checkpoint.MetadataKey.format] = Checkpoint.formatVersion
        m[Self.kindKey] = Self.kind
        m[Checkpoint.MetadataKey.config] = config.jsonString()
        if let vocab { m[Checkpoint.MetadataKey.vocab] = vocab.joined(separator: "\n") }
        set.metadata = m
        return set
    }

    /// Validates the whole checkpoint as the reader would, then writes it atomically.
    public func write(to path: String) throws {
        let set = tensorSet
        _ = try Self.decode(set, file: path)
        try SafeTensors.write(set, to: path)
    }

    public static func read(path: String, limits: ReadLimits = .default) throws -> StudentCheckpoint {
        try decode(SafeTensors.read(path: path, limits: limits), file: path)
    }

    /// Splits a tensor set into a checkpoint, refusing anything missing, extra, misshapen or non-finite.
    public static func decode(_ set: TensorSet, file: String) throws -> StudentCheckpoint {
        let m = set.metadata
        guard m[Checkpoint.MetadataKey.format] == Checkpoint.formatVersion, m[kindKey] == kind else {
            throw DistillError(.badMetadata, file: file,
                "metadata: expected hd.format \"\(Checkpoint.formatVersion)\" and hd.kind \"\(kind)\", found "
                + "\(m[Checkpoint.MetadataKey.format].map { "\"\($0)\"" } ?? "none") and \(m[kindKey].map { "\"\($0.prefix(40))\"" } ?? "none")")
        }
        guard let configText = m[Checkpoint.MetadataKey.config] else {
            throw DistillError(.badMetadata, file: file, "metadata hd.config: expected the model config as JSON, found nothing")
        }
        let config = try BertConfig.decode(json: Data(configText.utf8), source: file + " (hd.config)")
        let vocab = m[Checkpoint.MetadataKey.vocab].map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        if let vocab, vocab.count != config.vocabSize {
            throw DistillError(.badMetadata, file: file, "metadata hd.vocab: expected \(config.vocabSize) tokens (vocab_size), found \(vocab.count)")
        }
        let state = try TrainingState(metadata: m, file: file)

        var families: [String: [String: Tensor]] = [:]
        var weights: [String: Tensor] = [:]
        let prefixes = [Prefix.projection, Prefix.adamM, Prefix.adamV, Prefix.mask, Prefix.importance]
        for (name, tensor) in set.tensors {
            if let prefix = prefixes.first(where: { name.hasPrefix($0) }) {
                families[prefix, default: [:]][String(name.dropFirst(prefix.count))] = tensor
            } else if name.hasPrefix("hd.") {
                throw DistillError(.unexpectedTensor, file: file,
                    "tensor \(name): unknown hd.* family; expected one of \(prefixes.map { $0 + "*" }.joined(separator: ", "))")
            } else {
                weights[name] = tensor
            }
        }
        try checkWeights(weights, config: config, file: file)
        let projections = families[Prefix.projection] ?? [:]
        let d = config.hiddenSize
        for (name, t) in projections { try expectFloat(t, Prefix.projection + name, shape: [d, d], file: file) }

        let checkpoint = StudentCheckpoint(config: config, vocab: vocab, weights: weights, projections: projections,
                                           adamM: families[Prefix.adamM] ?? [:], adamV: families[Prefix.adamV] ?? [:],
                                           masks: families[Prefix.mask] ?? [:], importance: families[Prefix.importance] ?? [:],
                                           state: state)
        try checkpoint.checkMoments(file: file)
        try checkpoint.checkPruningState(file: file)
        return checkpoint
    }

    private static func checkWeights(_ weights: [String: Tensor], config: BertConfig, file: String) throws {
        var expected: [String: [Int]] = [:]
        let required = BertNames.requiredShapes(config)
        for (name, shape) in required { expected[name] = shape }
        let missing = required.map(\.0).filter { weights[$0] == nil }
        guard missing.isEmpty else {
            throw DistillError(.missingTensor, file: file,
                "weights: expected every BERT tensor of the config, missing \(missing.count): \(missing.prefix(8).joined(separator: ", "))")
        }
        for group in BertNames.optionalGroups(config) {
            let present = group.tensors.filter { weights[$0.0] != nil }.map(\.0)
            if !present.isEmpty && present.count != group.tensors.count {
                throw DistillError(.missingTensor, file: file,
                    "weights: the \(group.group) group is partial; expected \(group.tensors.map(\.0).joined(separator: ", ")), found \(present.joined(separator: ", "))")
            }
            for (name, shape) in group.tensors { expected[name] = shape }
        }
        for name in weights.keys.sorted() {
            guard let shape = expected[name], let tensor = weights[name] else {
                throw DistillError(.unexpectedTensor, file: file, "tensor \(name): not a BERT tensor of this config nor an hd.* family")
            }
            if name == BertNames.positionIds {
                guard tensor.shape == shape else { throw shapeError(name, shape, tensor.shape, file) }
            } else {
                try expectFloat(tensor, name, shape: shape, file: file)
            }
        }
    }

    /// Every trainable tensor has both moments, shaped like it; no moment belongs to nothing.
    private func checkMoments(file: String) throws {
        var shapes: [String: [Int]] = [:]
        for name in trainableNames {
            shapes[name] = weights[name]?.shape ?? projections[String(name.dropFirst(Prefix.projection.count))]?.shape
        }
        for (prefix, moments) in [(Prefix.adamM, adamM), (Prefix.adamV, adamV)] {
            for name in shapes.keys.sorted() where moments[name] == nil {
                throw DistillError(.missingTensor, file: file, "tensor \(prefix)\(name): expected an Adam moment for the trainable tensor \(name), found none")
            }
            for (name, t) in moments {
                guard let shape = shapes[name] else {
                    throw DistillError(.unexpectedTensor, file: file, "tensor \(prefix)\(name): a moment for \(name), which is not a trainable tensor here")
                }
                try Self.expectFloat(t, prefix + name, shape: shape, file: file)
            }
        }
    }

    /// Masks are 1-D, integral 0/1 with at least one kept unit; importance buffers are finite floats.
    /// Which units exist and how long each mask is belongs to the pruner, which checks it on resume.
    private func checkPruningState(file: String) throws {
        for (name, t) in masks {
            guard case .int64(let values) = t.values, t.shape.count == 1 else {
                throw DistillError(.badMask, file: file, "tensor \(Prefix.mask)\(name): expected a 1-D integer tensor, found \(t.storedAs.rawValue) of shape \(t.shape)")
            }
            if let i = values.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                throw DistillError(.badMask, file: file, "tensor \(Prefix.mask)\(name): expected 0 or 1, found \(values[i]) at index \(i)")
            }
            guard values.contains(1) else {
                throw DistillError(.badMask, file: file, "tensor \(Prefix.mask)\(name): expected at least one kept unit, found all \(values.count) pruned")
            }
        }
        for (name, t) in importance { try Self.expectFloat(t, Prefix.importance + name, shape: nil, file: file) }
    }

    /// Fills `masks` from `hd.mask.*` (`saved`, keyed without the prefix): one tensor per group of
    /// `masks` and nothing else, each of its group's length, 0/1 with equal per-head counts. The
    /// weights in `parameters` (laid out by `layout`) must be zero wherever the masks prune, or the
    /// masked model would not be the smaller dense one the masks describe.
    public static func restoreMasks(_ saved: [String: Tensor], into masks: PruneMasks, parameters: UnsafeBufferPointer<Float>,
                                    layout: BertParameterLayout, file: String) throws {
        try expectFamily(Set(saved.keys), Set(masks.groups.map { "\($0)" }), prefix: Prefix.mask, file: file)
        for g in masks.groups {
            let name = Prefix.mask + "\(g)"
            guard let t = saved["\(g)"], t.shape == [masks.size(g)], case .int64(let values) = t.values else {
                throw DistillError(.badMask, file: file, "\(name): expected \(masks.size(g)) integer flags, found shape \(saved["\(g)"]?.shape ?? [])")
            }
            do {
                try masks.set(g, from: values.map(Float.init), source: file)
            } catch let error as ModelError {
                throw DistillError(.badMask, file: file, error.message)
            }
        }
        guard masks.prunedAreZero(parameters, layout: layout) else {
            throw DistillError(.badMask, file: file, "weights: expected zeros wherever the masks prune, found nonzero values (the masks do not belong to these weights)")
        }
    }

    /// The tensors of one `hd.*` family (names without `prefix`) are exactly `expected`.
    static func expectFamily(_ found: Set<String>, _ expected: Set<String>, prefix: String, file: String) throws {
        guard found != expected else { return }
        let missing = expected.subtracting(found).sorted(), extra = found.subtracting(expected).sorted()
        throw DistillError(.badMask, file: file,
            "\(prefix)*: expected the tensors of this recipe's pruning; missing \(missing.prefix(3).map { prefix + $0 }), unexpected \(extra.prefix(3).map { prefix + $0 })")
    }

    private static func expectFloat(_ t: Tensor, _ name: String, shape: [Int]?, file: String) throws {
        guard let storage = t.floats else {
            throw DistillError(.shapeMismatch, file: file, "tensor \(name): expected f32 values, found \(t.storedAs.rawValue)")
        }
        if let shape, t.shape != shape { throw shapeError(name, shape, t.shape, file) }
        if let i = storage.buffer.firstIndex(where: { !$0.isFinite }) {
            throw DistillError(.nonFinite, file: file, "tensor \(name): expected finite values, found \(storage.buffer[i]) at flat index \(i)")
        }
    }

    private static func shapeError(_ name: String, _ expected: [Int], _ found: [Int], _ file: String) -> DistillError {
        DistillError(.shapeMismatch, file: file, "tensor \(name): expected shape \(expected), found \(found)")
    }
}
