/// How many units each mask group keeps at each step (DESIGN.md §4): the cubic schedule
/// r(t) = r_T + (1 − r_T)(1 − (t − t_i)/(T − t_i − t_f))³ for t_i < t ≤ T − t_f, 1 before, r_T after,
/// applied as kept counts rounded up to a multiple; masks change every ΔT steps and at T − t_f.
/// `oneShot` is the paper's ablation: the target at the first step, then distillation at that width.
public struct PruneSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case cubic, oneShot = "one-shot" }

    public var kind: Kind
    /// t_i: steps before the first pruning.
    public var start: Int
    /// T − t_f: the step at which every group reaches its target.
    public var end: Int
    /// ΔT: steps between mask updates.
    public var every: Int

    public init(kind: Kind = .cubic, start: Int, end: Int, every: Int) throws {
        guard every >= 1 else { throw Self.bad("--prune-every ≥ 1", every) }
        if kind == .cubic {
            guard start >= 0, end > start else {
                throw Self.bad("0 ≤ --prune-start < --prune-end", "\(start) and \(end)")
            }
        }
        self.kind = kind
        self.start = start
        self.end = end
        self.every = every
    }

    private static func bad(_ what: String, _ found: Any) -> DistillError {
        DistillError(.invalidArgument, file: "<argument>", "pruning schedule: expected \(what), found \(found)")
    }

    /// Whether the masks are recomputed at step `t` (1-based: the t-th optimiser update).
    public func updatesMasks(atStep t: Int) -> Bool {
        switch kind {
        case .oneShot: t == 1
        case .cubic: t > start && t <= end && ((t - start) % every == 0 || t == end)
        }
    }

    /// Whether importance scores are still needed at step `t` (no mask changes after the last update).
    public func needsImportance(atStep t: Int) -> Bool {
        switch kind {
        case .oneShot: t == 1
        case .cubic: t <= end
        }
    }

    /// Units kept per block at step `t`, for a block of `size` units with target `target`: on the way,
    /// rounded up to a multiple of `multiple` (never above `size`, never below `target`); the target
    /// itself once reached.
    public func kept(atStep t: Int, size: Int, target: Int, multiple: Int) -> Int {
        let exact: Double
        switch kind {
        case .oneShot:
            return t >= 1 ? target : size
        case .cubic:
            if t <= start {
                return size
            } else if t >= end {
                return target
            } else {
                let remaining = 1 - Double(t - start) / Double(end - start)
                exact = Double(target) + Double(size - target) * remaining * remaining * remaining
            }
        }
        let m = max(multiple, 1)
        let rounded = Int((exact / Double(m)).rounded(.up)) * m
        return min(size, max(target, rounded))
    }
}
