import Dispatch
import HDTensor

/// Splits work over `threads` workers with `DispatchQueue.concurrentPerform`; one worker (or too
/// little work to pay for waking another) runs on the caller's thread.
///
/// The bodies capture raw pointers into the arena and are not `Sendable`; they are safe to run
/// concurrently because every worker writes a disjoint range of rows or columns (or its own
/// scratch buffer), which the type system cannot see, hence the unchecked box.
public struct Parallel: Sendable {
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    private struct Unchecked<F>: @unchecked Sendable { let body: F }

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
        if tasks <= 1 {
            for i in 0..<count { body(0, i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = Unchecked(body: body)
            DispatchQueue.concurrentPerform(iterations: tasks) { t in
                for i in stride(from: t, to: count, by: tasks) { box.body(t, i) }
            }
        }
    }

    /// c[m × n] = a[m × k] · bᵀ with b `[n × k]` (the weights' layout). The n output columns are cut
    /// into one block per worker, each block a single-threaded OpenBLAS call (the caller has set
    /// OpenBLAS to one thread); `epilogue(columns)` then runs on the worker that computed `columns`,
    /// while they are still in its cache. Blocks are whole multiples of 16 columns but the last.
    public func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, epilogue: (Range<Int>) -> Void) {
        let tile = 16, tiles = (n + tile - 1) / tile
        let blocks = max(1, min(threads, tiles))
        withoutActuallyEscaping(epilogue) { epilogue in
            let run = Unchecked { (i: Int) in
                let lo = min(n, i * tiles / blocks * tile), hi = min(n, (i + 1) * tiles / blocks * tile)
                guard hi > lo else { return }
                BLAS.gemm(transB: true, m: m, n: hi - lo, k: k, a: a, lda: lda, b: b + lo * ldb, ldb: ldb,
                          c: c + lo, ldc: ldc)
                epilogue(lo..<hi)
            }
            if blocks == 1 {
                run.body(0)
            } else {
                DispatchQueue.concurrentPerform(iterations: blocks) { run.body($0) }
            }
        }
    }
}
