import HDDistill
import HDFormats
import HDModel

/// A pruning run's `student.ckpt` as the model it trains: full-width weights with its masks, so
/// LayerNorms normalise over the kept hidden dimensions only (DESIGN.md §4).
struct MaskedStudent {
    let checkpoint: StudentCheckpoint
    let masks: PruneMasks
    let model: BertModel

    /// Reads and validates the checkpoint (a safetensors file of kind "student"; StudentCheckpoint
    /// checks metadata, every weight, moments, 0/1 masks), then the masks against the model: one per group, each of its group's length, equal
    /// counts per head, every pruned weight zero.
    init(path: String) throws {
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
        guard !checkpoint.masks.isEmpty else {
            throw DistillError(.badMask, file: path,
                "tensors \(StudentCheckpoint.Prefix.mask)*: expected the masks of a pruning run, found none (the student was trained without --target or widths), so there is nothing to shrink; `hd-convert \(path) --allow-extra -o OUT.safetensors` writes its weights as they are")
        }
        let config = checkpoint.config
        let weights = try BertWeights(tensors: TensorSet(tensors: checkpoint.weights), config: config, source: path)
        // A flat copy only to walk the masks' couplings over every weight once.
        let parameters = try BertParameters(copying: try BertModel(config: config, weights: weights))
        masks = try PruneMasks(config: config)
        try StudentCheckpoint.restoreMasks(checkpoint.masks, into: masks, parameters: UnsafeBufferPointer(parameters.flat),
                                           layout: parameters.layout, file: path)
        model = try BertModel(config: config, weights: weights, masks: masks)
    }

    /// Whether every mask still keeps every unit (a run stopped before its first pruning step).
    var isUnpruned: Bool { masks.groups.allSatisfy { masks.kept($0) == masks.size($0) } }

    /// The equivalence check's input: `sequences` rows of ids drawn from the whole vocabulary by a
    /// seeded generator (token type 0, then 1 from halfway), and one more row whose second half is
    /// padding, so the attention mask's path is compared too. 128 tokens, or the position table.
    static func checkBatch(_ config: BertConfig, sequences: Int, seed: UInt64 = 0) throws -> TokenBatch {
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
