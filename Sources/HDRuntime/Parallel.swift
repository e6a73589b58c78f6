import Dispatch

/// Splits row-wise work over `threads` workers with `DispatchQueue.concurrentPerform`; one worker
/// (or too little work to pay for a hand-off) runs on the caller's thread.
///
/// The bodies capture raw pointers into the arena and are not `Sendable`; they are safe to run
/// concurrently because every worker writes a disjoint range of rows (or its own scratch buffer),
/// which the type system cannot see, hence the unchecked box.
struct Parallel: Sendable {
    let threads: Int

    private struct Unchecked<F>: @unchecked Sendable { let body: F }

    /// Calls `body` on contiguous ranges covering 0..<count, at least `grain` rows each.
    func rows(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let tasks = min(threads, max(1, count / max(grain, 1)))
        if tasks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = Unchecked(body: body)
            DispatchQueue.concurrentPerform(iterations: tasks) { t in
                box.body((t * count / tasks)..<((t + 1) * count / tasks))
            }
        }
    }

    /// Calls `body(worker, item)` for every item in 0..<count, items dealt round-robin to workers so
    /// each worker can own a scratch buffer.
    func items(_ count: Int, _ body: (_ worker: Int, _ item: Int) -> Void) {
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
}
