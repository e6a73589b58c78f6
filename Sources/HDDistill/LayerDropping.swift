import HDFormats
import HDModel

/// The layer-dropping baseline (`hd-distill --keep-layers`): the student is the teacher with only
/// some of its encoder layers, at full width, and student layer j is distilled from teacher layer
/// `layers[j]` (`TrainerOptions.teacherLayers`). DistilBERT and the PKD baselines start this way.
public enum LayerDropping {
    /// Why `layers` cannot map a student onto a teacher of `teacherDepth` layers (at least one index,
    /// strictly increasing, each in 0..<teacherDepth), or nil when it can. With no depth (the teacher
    /// not loaded yet) only the count, signs and order are judged.
    public static func problem(_ layers: [Int], teacherDepth: Int?) -> String? {
        let range = teacherDepth.map { " in 0…\($0 - 1) (the teacher has \($0) layers)" } ?? " ≥ 0"
        let allowed = "0-based teacher layer indices\(range), strictly increasing, at least one"
        guard !layers.isEmpty else { return "expected \(allowed), found none" }
        if let bad = layers.first(where: { $0 < 0 || $0 >= (teacherDepth ?? Int.max) }) { return "expected \(allowed), found \(bad)" }
        if let i = layers.indices.dropFirst().first(where: { layers[$0] <= layers[$0 - 1] }) {
            return "expected \(allowed), found \(layers[i]) after \(layers[i - 1])"
        }
        return nil
    }

    /// The map as `--keep-layers` and `hd.teacher_layers` write it: "1,3,5".
    public static func text(_ layers: [Int]) -> String { layers.map(String.init).joined(separator: ",") }

    /// Parses "1,3,5" (decimal, no spaces, no empty items); nil when it is not such a list. Range and
    /// order are `problem`'s to judge, against a teacher.
    public static func parse(_ text: String) -> [Int]? {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        let layers = items.compactMap { item in item.utf8.allSatisfy { (0x30...0x39).contains($0) } ? Int(item) : nil }
        return layers.count == items.count ? layers : nil
    }

    /// `teacher`'s embeddings, then its layers `layers` in that order renumbered 0…k−1, then its pooler,
    /// MLM head and classifier as they are; the config says k layers (and keeps the chosen layers'
    /// own widths when the teacher's differ per layer). The weights are shared with the teacher, not
    /// copied: the trainer copies them into its own buffer.
    public static func student(of teacher: BertModel, keeping layers: [Int]) throws -> BertModel {
        if let problem = problem(layers, teacherDepth: teacher.config.numHiddenLayers) {
            throw DistillError(.invalidArgument, file: "<argument>", field: "--keep-layers", "--keep-layers \(text(layers)): \(problem)")
        }
        var config = teacher.config
        config.numHiddenLayers = layers.count
        config.layerShapes = teacher.config.layerShapes.map { shapes in layers.map { shapes[$0] } }
        let tensors = try BertParameters.tensorSet(sharing: teacher).tensors
        var set = TensorSet()
        for (name, tensor) in tensors where !(0..<teacher.config.numHiddenLayers).contains(where: { name.hasPrefix(BertNames.layer($0).prefix) }) {
            set[name] = tensor
        }
        for (j, i) in layers.enumerated() {
            let from = BertNames.layer(i).prefix, to = BertNames.layer(j).prefix
            for (name, tensor) in tensors where name.hasPrefix(from) { set[to + name.dropFirst(from.count)] = tensor }
        }
        return try BertModel(config: config, weights: BertWeights(tensors: set, config: config, source: "<--keep-layers \(text(layers))>"))
    }
}
