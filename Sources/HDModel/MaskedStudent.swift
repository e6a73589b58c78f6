import Foundation
import HDFormats

/// A `student.ckpt` as the model it trains: full-width weights with its masks (none when the run
/// does not prune), so LayerNorms normalise over the kept hidden dimensions only (DESIGN.md §4).
public struct MaskedStudent {
    public let checkpoint: StudentCheckpoint
    /// Nil for a run without pruning: its weights are the model as they are.
    public let masks: PruneMasks?
    public let model: BertModel

    /// Reads and validates the checkpoint (`StudentCheckpoint.decode`: metadata, every weight, 0/1
    /// masks), then the masks against the model: one per group, each of its group's length, equal
    /// counts per head, every pruned weight zero.
    public init(path: String) throws {
        // Sniffed first, so a file of another kind is named as such rather than as a bad safetensors header.
        let mapped = try MappedFile(path: path)
        try withExtendedLifetime(mapped) { _ = try FileKind.require(.safetensors, mapped.bytes, file: path) }
        let set = try SafeTensors.read(path: path)
        let kindKey = Checkpoint.MetadataKey.kind
        guard let kind = set.metadata[kindKey], kind == StudentCheckpoint.kind else {
            throw ModelError(.badMetadata, file: path, field: kindKey,
                "metadata \(kindKey): expected \"\(StudentCheckpoint.kind)\" (a student.ckpt written by hd-distill), found \(set.metadata[kindKey].map { "\"\($0.prefix(40))\"" } ?? "none"); a plain model has nothing to shrink, and hd-infer runs it as it is")
        }
        try self.init(StudentCheckpoint.decode(set, file: path), file: path)
    }

    /// The model of a decoded checkpoint, its masks checked against its weights.
    public init(_ checkpoint: StudentCheckpoint, file: String) throws {
        self.checkpoint = checkpoint
        let config = checkpoint.config
        let weights = try BertWeights(tensors: TensorSet(tensors: checkpoint.weights), config: config, source: file)
        guard !checkpoint.masks.isEmpty else {
            masks = nil
            model = try BertModel(config: config, weights: weights)
            return
        }
        let masks = try PruneMasks(config: config)
        try StudentCheckpoint.restoreMasks(checkpoint.masks, into: masks, model: try BertModel(config: config, weights: weights), file: file)
        self.masks = masks
        model = try BertModel(config: config, weights: weights, masks: masks)
    }

    /// Whether every mask still keeps every unit (a run stopped before its first pruning step).
    public var isUnpruned: Bool { masks.map { m in m.groups.allSatisfy { m.kept($0) == m.size($0) } } ?? true }

    /// The dense model the student computes: the masked model with its pruned rows and columns
    /// removed (`Shrink.dense`), or the weights as they are without masks.
    public func denseModel() throws -> BertModel {
        guard let masks else { return model }
        return try Shrink.dense(model, masks: masks)
    }

    /// `dense` (from `denseModel`) as a checkpoint that carries the student's vocabulary, and with
    /// masks the teacher hidden dimensions it kept (`hd.kept.hidden`): what hd-export writes and
    /// every tool runs when given a student.ckpt.
    public func checkpoint(of dense: BertModel, source: String) throws -> Checkpoint {
        var notes = ["a student.ckpt: run as the dense model it equals (masks applied, pruned rows and columns removed)"]
        if let step = checkpoint.trainerMetadata["hd.step"] { notes[0] += ", saved at step \(step)" }
        let lowercase = checkpoint.lowercase ?? Checkpoint.casing(ofVocabulary: checkpoint.vocab, notes: &notes)
        var metadata: [String: String] = [:]
        if let pairs = checkpoint.taskPairs { metadata[Checkpoint.MetadataKey.taskPairs] = String(pairs) }
        if let masks { metadata[Checkpoint.MetadataKey.keptHidden] = KeptHidden.record(masks) }
        // The dense model's own storage, not a copy: it is already the export's (Shrink gathered it).
        return Checkpoint(config: dense.config, tensors: try BertParameters.tensorSet(sharing: dense), vocab: checkpoint.vocab,
                          lowercase: lowercase, source: source, kind: .safetensors, scheme: NameMapping.Scheme(), configSource: "embedded (student.ckpt)",
                          notes: notes, sourceMetadata: metadata)
    }
}
