/// Splits the element-wise and row-wise passes of the training path (embeddings, LayerNorm, the
/// attention softmax, GELU, bias and residual adds, each with its backward; the losses' rows,
/// gradient clipping, AdamW, the per-step zeroing) over as many workers as OpenBLAS is set to use
/// (`BLAS.threads`, which the command-line tools set from `--threads`), so they scale with the
/// GEMMs instead of running on one core while the other idles. HDRuntime's `Parallel` splits its
/// row-wise passes with `ranges(_:cost:threads:_:)` too, with the session's explicit thread count.
///
/// Determinism: the ranges depend only on the item count, the cost and the thread count, never on
/// scheduling, so a kernel whose workers write disjoint outputs, and combine any partial results
/// in worker order, gives the same bits for the same thread count.
public enum ParallelFor {
    /// Passes with fewer elements than this per worker stay on the caller's thread, where waking a
    /// second worker would cost about what it saves (measured for the runtime's bias + LayerNorm
    /// over 32 rows of 768).
    public static let minimumElementsPerWorker = 32768

    /// How many workers `ranges` uses for `count` items of `cost` elements each.
    public static func workers(_ count: Int, cost: Int, threads: Int = BLAS.threads) -> Int {
        let total = count.multipliedReportingOverflow(by: max(cost, 1))
        let byWork = total.overflow ? count : total.partialValue / minimumElementsPerWorker
        return max(1, min(threads, count, byWork))
    }

    /// Calls `body(worker, range)` on `workers(count, cost:)` contiguous ranges that partition
    /// 0..<count (worker w gets w·count/n ..< (w+1)·count/n) on `WorkerPool.shared`; one worker runs
    /// on the caller's thread.
    /// The bodies capture raw pointers and are not `Sendable`: running them concurrently is safe only
    /// because each worker writes its own range, which the type system cannot see.
    public static func ranges(_ count: Int, cost: Int, threads: Int = BLAS.threads,
                              _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
        let n = workers(count, cost: cost, threads: threads)
        if n == 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        WorkerPool.shared.run(n) { w in body(w, (w * count / n)..<((w + 1) * count / n)) }
    }

    /// `ranges` over `count` elements of a flat buffer: `body(start, length)`.
    public static func elements(_ count: Int, _ body: (_ start: Int, _ length: Int) -> Void) {
        ranges(count, cost: 1) { _, range in body(range.lowerBound, range.count) }
    }

    /// Sets every element of `buffer` to 0, split as `elements` (the per-step zeroing of the
    /// gradients is megabytes, which one core writes more slowly than two).
    public static func zero(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard let base = buffer.baseAddress else { return }
        elements(buffer.count) { start, length in (base + start).update(repeating: 0, count: length) }
    }
}
