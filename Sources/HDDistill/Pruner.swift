import HDFormats
import HDModel

/// The pruning flags of one run; all of them go into `hd.recipe`, since they change the arithmetic.
public struct PruneOptions: Sendable, Equatable {
    public var target: PruneTarget
    public var schedule: PruneSchedule
    public var importance: Importance.Kind
    /// Hidden and FFN widths are multiples of this at every mask update (head sizes are uniform).
    public var widthMultiple: Int

    public init(target: PruneTarget, schedule: PruneSchedule, importance: Importance.Kind = .platon, widthMultiple: Int = 8) {
        self.target = target
        self.schedule = schedule
        self.importance = importance
        self.widthMultiple = widthMultiple
    }

    public var recipe: [String: String] {
        ["prune.target": "\(target.hidden)/\(target.ffn)/\(target.headSize)", "prune.schedule": schedule.kind.rawValue,
         "prune.start": String(schedule.start), "prune.end": String(schedule.end), "prune.every": String(schedule.every),
         "prune.importance": importance.rawValue, "prune.width_multiple": String(widthMultiple)]
    }
}

/// Structured pruning inside the training step (HomoDistil): importance after each backward, then on
/// the schedule's steps each mask group keeps the top-k of its still-kept units (local sparsity, so
/// masks only ever lose units), and every pruned weight, its gradient and its Adam moments are zeroed
/// so the masked student is exactly a smaller dense model.
public final class Pruner {
    public let options: PruneOptions
    public let masks: PruneMasks
    public let importance: Importance
    public let layout: BertParameterLayout

    public init(options: PruneOptions, layout: BertParameterLayout) throws {
        _ = try options.target.rounded(to: 1, for: layout.config)
        self.options = options
        self.layout = layout
        masks = try PruneMasks(config: layout.config)
        importance = Importance(kind: options.importance, layout: layout)
    }

    /// Units per block of `group` the schedule keeps at step `t`.
    public func scheduledKept(_ group: PruneGroup, atStep t: Int) -> Int {
        let perBlock = masks.size(group) / masks.blocks(group)
        let multiple: Int = switch group {
        case .hidden, .ffn: options.widthMultiple
        case .queryKey, .value: 1
        }
        return options.schedule.kept(atStep: t, size: perBlock, target: min(options.target.units(group), perBlock), multiple: multiple)
    }

    /// Step `t`'s pruning work, between the backward and the optimiser: fold the gradients into the
    /// importance, update the masks when the schedule says so (zeroing the newly pruned weights and
    /// moments in `zeroed`), and zero the pruned gradients. Returns whether the masks changed.
    @discardableResult
    public func afterBackward(step t: Int, parameters: UnsafeMutableBufferPointer<Float>,
                              gradients: UnsafeMutableBufferPointer<Float>, zeroed moments: [UnsafeMutableBufferPointer<Float>]) -> Bool {
        let schedule = options.schedule
        var changed = false
        if schedule.needsImportance(atStep: t) {
            importance.update(parameters: UnsafeBufferPointer(parameters), gradients: UnsafeBufferPointer(gradients))
        }
        if schedule.updatesMasks(atStep: t) {
            let scores = importance.unitScores(masks: masks, parameters: UnsafeBufferPointer(parameters))
            for group in masks.groups {
                changed = keepTop(scheduledKept(group, atStep: t), of: group, scores: scores[group]!) || changed
            }
            if changed {
                for buffer in [parameters] + moments { masks.zeroPruned(buffer, layout: layout) }
                importance.zeroPruned(masks)
            }
        }
        if prunesAny { masks.zeroPruned(gradients, layout: layout) }
        return changed
    }

    /// Whether any unit is pruned yet: from then on `afterBackward` zeroes the pruned gradients.
    public var prunesAny: Bool { masks.groups.contains(where: { masks.kept($0) < masks.size($0) }) }

    /// Keeps the `k` best-scoring kept units of each block (ties to the lower index). Never revives a unit.
    private func keepTop(_ k: Int, of group: PruneGroup, scores: [Double]) -> Bool {
        let flags = masks.flags(group), blocks = masks.blocks(group), per = flags.count / blocks
        var changed = false
        for b in 0..<blocks {
            let kept = (b * per..<(b + 1) * per).filter { flags[$0] != 0 }
            guard kept.count > k else { continue }
            let ranked = kept.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            for i in ranked.dropFirst(k) { flags[i] = 0 }
            changed = true
        }
        return changed
    }

    /// The masked student's size as the dense model it equals (`ModelSize`, the one count).
    public func size(hasPooler: Bool, mlmHead: MLMHeadKind, classifierLabels: Int = 0) throws -> ModelSize {
        ModelSize(config: try masks.denseConfig(), hasPooler: hasPooler, mlmHead: mlmHead, classifierLabels: classifierLabels)
    }

    /// Masks (`hd.mask.<group>`, 0/1 stored as I32) and importance buffers
    /// (`hd.importance.<buffer>.<tensor>`) for `student.ckpt`, keyed without their prefixes.
    public func tensors() -> (masks: [String: Tensor], importance: [String: Tensor]) {
        var masks: [String: Tensor] = [:], importance: [String: Tensor] = [:]
        for g in self.masks.groups {
            masks["\(g)"] = Tensor(shape: [self.masks.size(g)], values: .int64(self.masks.flags(g).map { Int64($0) }), storedAs: .int32)
        }
        for (name, buffer) in self.importance.persistent {
            for entry in layout.entries {
                importance["\(name).\(entry.name)"] = Tensor(shape: entry.shape, floats: Array(buffer[entry]))
            }
        }
        return (masks, importance)
    }

    /// Restores `tensors()` from a checkpoint: every mask and importance buffer must be present (and
    /// nothing else), with 0/1 masks of equal per-head counts, and the weights in `parameters` must
    /// be zero wherever the masks prune.
    public func restore(masks saved: [String: Tensor], importance savedImportance: [String: Tensor],
                        parameters: UnsafeBufferPointer<Float>, file: String) throws {
        let expectedImportance = Set(importance.persistent.flatMap { p in layout.entries.map { "\(p.name).\($0.name)" } })
        try TrainingCheckpoint.expectFamily(Set(savedImportance.keys), expectedImportance, prefix: StudentCheckpoint.Prefix.importance, file: file)
        try StudentCheckpoint.restoreMasks(saved, into: masks, parameters: parameters, layout: layout, file: file)
        for (name, buffer) in importance.persistent {
            for entry in layout.entries {
                let key = "\(name).\(entry.name)"
                guard let t = savedImportance[key]?.floats, t.count == entry.count else {
                    throw DistillError(.missingTensor, file: file, "\(StudentCheckpoint.Prefix.importance)\(key): expected \(entry.count) floats")
                }
                _ = buffer[entry].update(fromContentsOf: t.buffer)
            }
        }
    }
}
