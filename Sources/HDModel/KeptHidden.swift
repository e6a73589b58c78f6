import Foundation
import HDFormats

/// The record of which teacher hidden dimensions a shrunk student kept (`hd.kept.hidden`,
/// docs/FORMATS.md): a student.ckpt holds full-width weights whose hidden dimension i is its
/// teacher's dimension i, so the indices where `hd.mask.hidden` is 1 say, after the shrink, which
/// teacher dimension each of the student's dimensions is. Without them a student narrower than its
/// teacher has embeddings that cannot be set beside the teacher's.
public enum KeptHidden {
    /// The indices `masks` keep in the hidden group, as the JSON array the metadata holds ("[0,2,3]").
    public static func record(_ masks: PruneMasks) -> String {
        let flags = masks.flags(.hidden)
        return "[" + flags.indices.filter { flags[$0] != 0 }.map(String.init).joined(separator: ",") + "]"
    }

    /// The indices `checkpoint` records, or nil when it has no record; each a teacher dimension
    /// (below `teacherHiddenSize`), ascending, one per dimension of the checkpoint's own hidden size.
    public static func indices(in checkpoint: Checkpoint, teacherHiddenSize: Int) throws -> [Int]? {
        let key = Checkpoint.MetadataKey.keptHidden
        guard let text = checkpoint.sourceMetadata[key] else { return nil }
        let file = checkpoint.source, width = checkpoint.config.hiddenSize
        func bad(_ found: String) -> ModelError {
            ModelError(.badMetadata, file: file, field: key,
                       "metadata \(key): expected a JSON array of \(width) ascending teacher hidden indices (hidden_size \(width)), each below the teacher's \(teacherHiddenSize), found \(found)")
        }
        let value = try Array(text.utf8).withUnsafeBytes { try StrictJSON.parse($0, file: file, what: "metadata \(key)") }
        guard case .array(let items) = value else { throw bad(value.summary) }
        var indices: [Int] = []
        indices.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let index = item.nonNegativeInteger else { throw bad("\(item.summary) at position \(i)") }
            guard index < teacherHiddenSize else { throw bad("\(index) at position \(i)") }
            if let last = indices.last, index <= last { throw bad("\(index) after \(last) at position \(i)") }
            indices.append(index)
        }
        guard indices.count == width else { throw bad("\(indices.count) indices") }
        return indices
    }
}
