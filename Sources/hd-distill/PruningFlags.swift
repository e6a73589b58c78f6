import ArgumentParser
import HDDistill
import HDModel

/// The pruning half of hd-distill's flags: what the student ends as (`--target` or explicit widths),
/// on what schedule, by what importance, and which recipe (HomoDistil or self-distilled pruning).
struct PruningFlags: ParsableArguments {
    enum Recipe: String, ExpressibleByArgument, CaseIterable {
        case homodistil
        case selfDistilled = "self-distilled"
    }

    @Option(name: .long, help: ArgumentHelp(
        "homodistil: distil from TEACHER (KL + layer terms). self-distilled: the unpruned TEACHER is the reference of a cross-correlation loss on the final hidden states, with magnitude pruning (needs a target).",
        valueName: "recipe"))
    var recipe: Recipe = .homodistil

    @Option(name: .long, help: ArgumentHelp(
        "Prune to a preset: \(PruneTarget.presets.keys.sorted().joined(separator: ", ")) (HomoBERT widths for a BERT-base teacher, scaled to other teachers' widths).",
        valueName: "preset"))
    var target: String?

    @Option(name: .long, help: "Prune the hidden (residual) width to this.") var hidden: Int?
    @Option(name: .long, help: "Prune every layer's FFN to this many neurons.") var ffn: Int?
    @Option(name: .customLong("head-size"), help: "Prune every attention head to this many dimensions (Q/K and V alike).") var headSize: Int?
    @Option(name: .customLong("width-multiple"), help: "Round hidden and FFN widths up to a multiple of this at every mask update.")
    var widthMultiple = 8
    @Flag(name: .customLong("hf-compatible"), help: "Round the target to widths transformers' BertConfig holds exactly (hidden a multiple of the heads, head size ≤ hidden / heads), so hd-export --hf-dir always works.")
    var hfCompatible = false

    @Option(name: .long, help: ArgumentHelp("cubic (prune gradually) or one-shot (prune to the target at the first step, then distil).", valueName: "kind"))
    var schedule: PruneSchedule.Kind = .cubic
    @Option(name: .customLong("prune-start"), help: "t_i: steps before the first pruning (default: 10 % of --steps).") var pruneStart: Int?
    @Option(name: .customLong("prune-end"), help: "T − t_f: the step the target is reached at (default: 70 % of --steps).") var pruneEnd: Int?
    @Option(name: .customLong("prune-every"), help: "ΔT: steps between mask updates.") var pruneEvery = 10
    @Option(name: .long, help: ArgumentHelp("Unit importance: platon (default), sensitivity or magnitude (self-distilled always uses magnitude).", valueName: "kind"))
    var importance: Importance.Kind?

    @Option(name: .customLong("alpha-cc"), help: "Weight of the self-distilled recipe's cross-correlation loss.") var alphaCC: Float = 1
    @Option(name: .customLong("cc-lambda"), help: "λ: weight of the off-diagonal terms inside the cross-correlation loss.") var ccLambda: Float = 5e-3

    var prunes: Bool { target != nil || hidden != nil || ffn != nil || headSize != nil }

    func validate() throws {
        if let target, PruneTarget.presets[target] == nil {
            throw ValidationError("--target: expected one of \(PruneTarget.presets.keys.sorted().joined(separator: ", ")), found \(target)")
        }
        if target != nil && (hidden != nil || ffn != nil || headSize != nil) {
            throw ValidationError("--target replaces --hidden/--ffn/--head-size; give one or the other")
        }
        if recipe == .selfDistilled && !prunes {
            throw ValidationError("--recipe self-distilled prunes: give --target or --hidden/--ffn/--head-size")
        }
        if recipe == .selfDistilled, let importance, importance != .magnitude {
            throw ValidationError("--recipe self-distilled prunes by magnitude; --importance \(importance.rawValue) does not apply")
        }
        if !prunes && (pruneStart != nil || pruneEnd != nil || importance != nil) {
            throw ValidationError("--prune-start/--prune-end/--importance need a target (--target or --hidden/--ffn/--head-size)")
        }
        if hfCompatible && !prunes { throw ValidationError("--hf-compatible rounds a pruning target: give --target or --hidden/--ffn/--head-size") }
        if widthMultiple < 1 { throw ValidationError("--width-multiple must be ≥ 1, found \(widthMultiple)") }
        if pruneEvery < 1 { throw ValidationError("--prune-every must be ≥ 1, found \(pruneEvery)") }
        for (name, value) in [("--alpha-cc", alphaCC), ("--cc-lambda", ccLambda)] where !(value >= 0 && value.isFinite) {
            throw ValidationError("\(name) must be a finite number ≥ 0, found \(value)")
        }
    }

    /// The pruning options for a run of `steps` steps on a teacher of `config`; nil without a target.
    func options(config: BertConfig, steps: Int) throws -> PruneOptions? {
        guard prunes else { return nil }
        let base = config.layer(0)
        let wanted = try target.map { try PruneTarget.preset($0, for: config) }
            ?? PruneTarget(hidden: hidden ?? config.hiddenSize, ffn: ffn ?? base.intermediateSize, headSize: headSize ?? base.headSize)
        let target = hfCompatible ? try wanted.huggingFaceCompatible(multiple: widthMultiple, for: config) : wanted
        let start = pruneStart ?? steps / 10, end = pruneEnd ?? max(start + 1, steps * 7 / 10)
        return PruneOptions(target: try target.rounded(to: widthMultiple, for: config),
                            schedule: try PruneSchedule(kind: schedule, start: start, end: end, every: pruneEvery),
                            importance: recipe == .selfDistilled ? .magnitude : importance ?? .platon, widthMultiple: widthMultiple)
    }
}

extension PruneSchedule.Kind: ExpressibleByArgument {}
extension Importance.Kind: ExpressibleByArgument {}
