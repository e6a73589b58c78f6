import HDTensor

/// Splits work over `threads` workers of `WorkerPool.shared`; one worker (or too little work to pay
/// for another) runs on the caller's thread.
///
/// The bodies capture raw pointers into the arena; they are safe to run concurrently because every
/// worker writes a disjoint range of rows or columns (or its own scratch buffer).
public struct Parallel: Sendable {
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    /// Calls `body` on contiguous ranges covering 0..<count rows of `width` elements, each range
    /// at least `ParallelFor.minimumElementsPerWorker` elements (so small passes stay on one thread):
    /// the training kernels' splitter, with this session's thread count instead of OpenBLAS's.
    public func rows(_ count: Int, width: Int, _ body: (Range<Int>) -> Void) {
        ParallelFor.ranges(count, cost: width, threads: threads) { _, range in body(range) }
    }

    /// Calls `body(worker, item)` for every item in 0..<count, items dealt round-robin to workers so
    /// each worker can own a scratch buffer.
    public func items(_ count: Int, _ body: (_ worker: Int, _ item: Int) -> Void) {
        let tasks = min(threads, count)
        WorkerPool.shared.run(max(tasks, 0)) { t in
            for i in stride(from: t, to: count, by: tasks) { body(t, i) }
        }
    }

    /// Cuts 0..<n columns into one contiguous block per worker, whole multiples of `tile` columns
    /// but the last, and calls `body(columns)` for each block on its worker: a dense layer's
    /// single-threaded GEMM over those columns, then its epilogue while they are still in cache.
    public func columns(_ n: Int, tile: Int, _ body: (Range<Int>) -> Void) {
        let tiles = (n + tile - 1) / tile
        let blocks = max(1, min(threads, tiles))
        WorkerPool.shared.run(blocks) { i in
            let lo = min(n, i * tiles / blocks * tile), hi = min(n, (i + 1) * tiles / blocks * tile)
            if hi > lo { body(lo..<hi) }
        }
    }
}
