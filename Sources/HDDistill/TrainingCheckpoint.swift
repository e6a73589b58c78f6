import HDTraining
import Foundation
import HDFormats
import HDModel

/// A training run as `student.ckpt` holds it (docs/FORMATS.md): the model layer's
/// `StudentCheckpoint` (config, vocabulary, full-width weights, masks) and what only the trainer
/// reads — Adam moments, importance buffers, the distillation projections and the `TrainingState`
/// metadata (step, generator, data order, recipe, teacher). Written atomically (temp + fsync +
/// validate + rename), so a killed run leaves the previous file.
public struct TrainingCheckpoint: Sendable {
    public var config: BertConfig
    public var vocab: [String]?
    /// The tokenizer's casing, when known (`StudentCheckpoint.lowercase`).
    public var lowercase: Bool?
    /// A classifier student's `hd.task.pairs` (`StudentCheckpoint.taskPairs`).
    public var taskPairs: Bool?
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

    private typealias Prefix = StudentCheckpoint.Prefix

    public init(config: BertConfig, vocab: [String]?, lowercase: Bool? = nil, taskPairs: Bool? = nil, weights: [String: Tensor],
                projections: [String: Tensor] = [:],
                adamM: [String: Tensor], adamV: [String: Tensor], masks: [String: Tensor] = [:],
                importance: [String: Tensor] = [:], state: TrainingState) {
        self.config = config
        self.vocab = vocab
        self.lowercase = lowercase
        self.taskPairs = taskPairs
        self.weights = weights
        self.projections = projections
        self.adamM = adamM
        self.adamV = adamV
        self.masks = masks
        self.importance = importance
        self.state = state
    }

    /// Names of the tensors AdamW updates: float weights (not frozen) and the projections.
    public var trainableNames: [String] {
        let frozen = StudentCheckpoint.frozenNames(in: weights)
        return weights.filter { $0.value.floats != nil && !frozen.contains($0.key) }.map(\.key)
            + projections.keys.map { Prefix.projection + $0 }
    }

    /// The file's model part and the trainer's part, as one `StudentCheckpoint`.
    public var student: StudentCheckpoint {
        var trainer: [String: Tensor] = [:]
        for (k, v) in projections { trainer[Prefix.projection + k] = v }
        for (k, v) in adamM { trainer[Prefix.adamM + k] = v }
        for (k, v) in adamV { trainer[Prefix.adamV + k] = v }
        for (k, v) in importance { trainer[Prefix.importance + k] = v }
        return StudentCheckpoint(config: config, vocab: vocab, lowercase: lowercase, taskPairs: taskPairs, weights: weights, masks: masks,
                                 trainerTensors: trainer, trainerMetadata: state.metadata)
    }

    public var tensorSet: TensorSet { student.tensorSet }

    /// Validates the whole checkpoint as the reader would, then writes it atomically.
    public func write(to path: String) throws {
        let set = tensorSet
        _ = try Self.decode(set, file: path)
        try SafeTensors.write(set, to: path)
    }

    public static func read(path: String, limits: ReadLimits = .default) throws -> TrainingCheckpoint {
        try decode(SafeTensors.read(path: path, limits: limits), file: path)
    }

    /// The model layer's checks (`StudentCheckpoint.decode`: kind, config, weights, masks), then the
    /// trainer's: its metadata, projections of d × d, both moments of every trainable tensor and no
    /// other, finite importance buffers.
    public static func decode(_ set: TensorSet, file: String) throws -> TrainingCheckpoint {
        try TrainingCheckpoint(StudentCheckpoint.decode(set, file: file), file: file)
    }

    /// The trainer's part of `student`, checked.
    public init(_ student: StudentCheckpoint, file: String) throws {
        var families: [String: [String: Tensor]] = [:]
        for (name, tensor) in student.trainerTensors {
            guard let prefix = Prefix.trainer.first(where: { name.hasPrefix($0) }) else {
                throw DistillError(.unexpectedTensor, file: file, field: name, "tensor \(name): not a tensor family of the trainer")
            }
            families[prefix, default: [:]][String(name.dropFirst(prefix.count))] = tensor
        }
        self.init(config: student.config, vocab: student.vocab, lowercase: student.lowercase, taskPairs: student.taskPairs, weights: student.weights,
                  projections: families[Prefix.projection] ?? [:], adamM: families[Prefix.adamM] ?? [:],
                  adamV: families[Prefix.adamV] ?? [:], masks: student.masks, importance: families[Prefix.importance] ?? [:],
                  state: try TrainingState(metadata: student.trainerMetadata, file: file))
        if let layers = state.teacherLayers, layers.count != config.numHiddenLayers {
            throw DistillError(.badMetadata, file: file, field: TrainingState.Key.teacherLayers,
                "metadata \(TrainingState.Key.teacherLayers): expected one teacher layer per student layer (\(config.numHiddenLayers), num_hidden_layers), found \(layers.count) (\"\(LayerDropping.text(layers))\")")
        }
        let d = config.hiddenSize
        for (name, t) in projections { try Self.expectFloat(t, Prefix.projection + name, shape: [d, d], file: file) }
        try checkMoments(file: file)
        for (name, t) in importance { try Self.expectFloat(t, Prefix.importance + name, shape: nil, file: file) }
    }

    /// Every trainable tensor has both moments, shaped like it; no moment belongs to nothing.
    private func checkMoments(file: String) throws {
        var shapes: [String: [Int]] = [:]
        for name in trainableNames {
            shapes[name] = weights[name]?.shape ?? projections[String(name.dropFirst(Prefix.projection.count))]?.shape
        }
        for (prefix, moments) in [(Prefix.adamM, adamM), (Prefix.adamV, adamV)] {
            for name in shapes.keys.sorted() where moments[name] == nil {
                throw DistillError(.missingTensor, file: file, field: prefix + name,
                    "tensor \(prefix)\(name): expected an Adam moment for the trainable tensor \(name), found none")
            }
            for (name, t) in moments {
                guard let shape = shapes[name] else {
                    throw DistillError(.unexpectedTensor, file: file, field: prefix + name,
                        "tensor \(prefix)\(name): a moment for \(name), which is not a trainable tensor here")
                }
                try Self.expectFloat(t, prefix + name, shape: shape, file: file)
            }
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
            throw DistillError(.shapeMismatch, file: file, field: name, "tensor \(name): expected f32 values, found \(t.storedAs.rawValue)")
        }
        if let shape, t.shape != shape {
            throw DistillError(.shapeMismatch, file: file, field: name, "tensor \(name): expected shape \(shape), found \(t.shape)")
        }
        if let i = storage.buffer.firstIndex(where: { !$0.isFinite }) {
            throw DistillError(.nonFinite, file: file, field: name, "tensor \(name): expected finite values, found \(storage.buffer[i]) at flat index \(i)")
        }
    }
}
