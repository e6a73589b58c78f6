import Foundation
import HDDistill
import HDFormats
import HDModel

/// A `student.ckpt` as the model it trains: full-width weights with its masks (none when the run
/// does not prune), so LayerNorms normalise over the kept hidden dimensions only (DESIGN.md §4).
public struct MaskedStudent {
    public let checkpoint: StudentCheckpoint
    /// Nil for a run without pruning: its weights are the model as they are.
    public let masks: PruneMasks?
    public let model: BertModel

    /// Reads and validates the checkpoint (a safetensors file of kind "student"; StudentCheckpoint
    /// checks metadata, every weight, moments, 0/1 masks), then the masks against the model: one
    /// per group, each of its group's length, equal counts per head, every pruned weight zero.
    public init(path: String) throws {
        // Sniffed first, so a file of another kind is named as such rather than as a bad safetensors header.
        let mapped = try MappedFile(path: path)
        try withExtendedLifetime(mapped) { _ = try FileKind.require(.safetensors, mapped.bytes, file: path) }
        let set = try SafeTensors.read(path: path)
        let kind = set.metadata[StudentCheckpoint.kindKey]
        guard kind == StudentCheckpoint.kind else {
            throw DistillError(.badMetadata, file: path,
                "metadata \(StudentCheckpoint.kindKey): expected \"\(StudentCheckpoint.kind)\" (a student.ckpt written by hd-distill), found \(kind.map { "\"\($0.prefix(40))\"" } ?? "none"); a plain model has nothing to shrink, and hd-infer runs it as it is")
        }
        checkpoint = try StudentCheckpoint.decode(set, file: path)
        let config = checkpoint.config
        let weights = try BertWeights(tensors: TensorSet(tensors: checkpoint.weights), config: config, source: path)
        guard !checkpoint.masks.isEmpty else {
            masks = nil
            model = try BertModel(config: config, weights: weights)
            return
        }
        // A flat copy only to walk the masks' couplings over every weight once.
        let parameters = try BertParameters(copying: try BertModel(config: config, weights: weights))
        let masks = try PruneMasks(config: config)
        try StudentCheckpoint.restoreMasks(checkpoint.masks, into: masks, parameters: UnsafeBufferPointer(parameters.flat),
                                           layout: parameters.layout, file: path)
        self.masks = masks
        model = try BertModel(config: config, weights: weights, masks: masks)
    }

    /// Whether `path` is a safetensors file whose metadata says it is a student checkpoint. A file
    /// of another kind (npz, a directory, a plain model) is not; an unreadable one throws.
    public static func isStudent(path: String) throws -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { return false }
        let mapped = try MappedFile(path: path)
        let isSafeTensors = withExtendedLifetime(mapped) { FileKind.detect(mapped.bytes) == .safetensors }
        guard isSafeTensors else { return false }
        return try SafeTensors.read(path: path).metadata[StudentCheckpoint.kindKey] == StudentCheckpoint.kind
    }

    /// Whether every mask still keeps every unit (a run stopped before its first pruning step).
    public var isUnpruned: Bool { masks.map { m in m.groups.allSatisfy { m.kept($0) == m.size($0) } } ?? true }

    /// The dense model the student computes: the masked model with its pruned rows and columns
    /// removed (`Shrink.dense`), or the weights as they are without masks.
    public func denseModel() throws -> BertModel {
        guard let masks else { return model }
        return try Shrink.dense(model, masks: masks)
    }

    /// `dense` (from `denseModel`) as a checkpoint that carries the student's vocabulary: what
    /// hd-export writes and hd-infer runs.
    public func checkpoint(of dense: BertModel, source: String) throws -> Checkpoint {
        Checkpoint(config: dense.config, tensors: try BertParameters(copying: dense).tensorSet(), vocab: checkpoint.vocab,
                   source: source, kind: .safetensors, scheme: NameMapping.Scheme(), configSource: "embedded")
    }

    /// The equivalence check's input: `sequences` rows of ids drawn from the whole vocabulary by a
    /// seeded generator (token type 0, then 1 from halfway), and one more row whose second half is
    /// padding, so the attention mask's path is compared too. 128 tokens, or the position table.
    public static func checkBatch(_ config: BertConfig, sequences: Int, seed: UInt64 = 0) throws -> TokenBatch {
        var rng = Xoshiro256(seed: seed)
        let length = min(128, config.maxPositionEmbeddings), half = max(1, length / 2)
        var ids: [[Int]] = [], types: [[Int]] = [], mask: [[Int]] = []
        for row in 0...sequences {
            let real = row < sequences ? length : half
            ids.append((0..<length).map { $0 < real ? Int.random(in: 0..<config.vocabSize, using: &rng) : config.padTokenId })
            types.append((0..<length).map { config.typeVocabSize > 1 && $0 >= half && $0 < real ? 1 : 0 })
            mask.append((0..<length).map { $0 < real ? 1 : 0 })
        }
        return try TokenBatch(ids: ids, tokenTypes: types, attentionMask: mask)
    }
}
