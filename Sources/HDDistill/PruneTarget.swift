import HDModel

/// The widths a pruned student ends at. Per layer every head keeps `headSize` dimensions of Q/K and
/// of V, and the FFN keeps `ffn` neurons; the residual stream keeps `hidden`.
public struct PruneTarget: Sendable, Equatable, CustomStringConvertible {
    public var hidden: Int
    public var ffn: Int
    public var headSize: Int

    public init(hidden: Int, ffn: Int, headSize: Int) {
        self.hidden = hidden
        self.ffn = ffn
        self.headSize = headSize
    }

    public var description: String { "hidden \(hidden), FFN \(ffn), head size \(headSize)" }

    /// The paper's HomoBERT widths (hidden/FFN, 12 layers), for a BERT-base teacher. Head sizes are
    /// the teacher's 64 scaled with the hidden width (rounded), so attention shrinks with the rest.
    public static let presets: [String: PruneTarget] = [
        "homobert-base": PruneTarget(hidden: 576, ffn: 2304, headSize: 48),
        "homobert-small": PruneTarget(hidden: 256, ffn: 1024, headSize: 21),
        "homobert-xsmall": PruneTarget(hidden: 240, ffn: 960, headSize: 20),
        "homobert-tiny": PruneTarget(hidden: 224, ffn: 896, headSize: 19),
    ]

    /// A preset rescaled to `config` (for teachers other than BERT-base): the same fractions of its
    /// widths, so `homobert-base` on splade-tiny keeps 3/4 of every group.
    public static func preset(_ name: String, for config: BertConfig) throws -> PruneTarget {
        guard let p = presets[name] else {
            throw DistillError(.invalidArgument, file: "<argument>",
                "--target: expected one of \(presets.keys.sorted().joined(separator: ", ")), found \(name)")
        }
        let base = config.layer(0)
        func scaled(_ value: Int, _ reference: Int, _ actual: Int) -> Int {
            max(1, Int((Double(value) * Double(actual) / Double(reference)).rounded()))
        }
        return PruneTarget(hidden: scaled(p.hidden, 768, config.hiddenSize), ffn: scaled(p.ffn, 3072, base.intermediateSize),
                           headSize: scaled(p.headSize, 64, base.headSize))
    }

    /// The target with hidden and FFN widths rounded up to `multiple` (BLAS-friendly shapes), and
    /// checked against `config`: every width positive and no wider than the teacher's.
    public func rounded(to multiple: Int, for config: BertConfig) throws -> PruneTarget {
        guard multiple >= 1 else {
            throw DistillError(.invalidArgument, file: "<argument>", "--width-multiple: expected ≥ 1, found \(multiple)")
        }
        func up(_ v: Int) -> Int { (v + multiple - 1) / multiple * multiple }
        let out = PruneTarget(hidden: up(hidden), ffn: up(ffn), headSize: headSize)
        let f = (0..<config.numHiddenLayers).map { config.layer($0).intermediateSize }.min() ?? 0
        let h = (0..<config.numHiddenLayers).map { config.layer($0).headSize }.min() ?? 0
        for (flag, value, limit) in [("--hidden", out.hidden, config.hiddenSize), ("--ffn", out.ffn, f), ("--head-size", out.headSize, h)]
            where value < 1 || value > limit {
            throw DistillError(.invalidArgument, file: "<argument>",
                "\(flag): expected 1…\(limit) (the teacher's width) after rounding to a multiple of \(multiple), found \(value)")
        }
        return out
    }

    /// The target moved to the nearest widths that Hugging Face's BertConfig holds exactly once
    /// hd-export zero-pads the heads (HuggingFaceLayout): hidden rounded up to a multiple of both the
    /// head count and `multiple` (capped at the teacher's hidden width), and head size at most
    /// hidden / heads. FFN widths always have an exact layout.
    public func huggingFaceCompatible(multiple: Int, for config: BertConfig) throws -> PruneTarget {
        let heads = config.layer(0).attentionHeads
        guard multiple >= 1, heads >= 1, config.hiddenSize % heads == 0 else {
            throw DistillError(.invalidArgument, file: "<argument>",
                "--hf-compatible: the teacher's hidden size \(config.hiddenSize) is not a multiple of its \(heads) heads, so no student of it has a Hugging Face layout")
        }
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let step = heads / gcd(heads, multiple) * multiple
        let h = min((hidden + step - 1) / step * step, config.hiddenSize)
        return PruneTarget(hidden: h, ffn: ffn, headSize: min(headSize, h / heads))
    }

    /// The target count of one block of `group` (a head for attention groups).
    func units(_ group: PruneGroup) -> Int {
        switch group {
        case .hidden: hidden
        case .queryKey, .value: headSize
        case .ffn: ffn
        }
    }
}
