import Dispatch
import Foundation
import Synchronization

/// Persistent worker threads that run one split pass at a time: `run(count) { index in … }` calls the
/// body for 0..<count, index 0 on the caller's thread, the others on workers.
///
/// Why not `DispatchQueue.concurrentPerform`: its workers go to sleep between passes, and a forward
/// is hundreds of short passes (per layer: four GEMMs, the packing of their inputs, attention, two
/// LayerNorms), each paying a futex wake-up on its critical path. Here workers spin for a moment
/// after each pass (`spinLimit` polls, tens of microseconds) before they sleep, so back-to-back
/// passes start at once; onnxruntime's thread pool spins the same way.
///
/// One pass runs at a time. A caller that finds the pool busy (a second thread, such as a parallel
/// test, or a pass nested inside a pass) falls back to `concurrentPerform`: the same indices, so
/// the same results, just without the spinning workers.
public final class WorkerPool: @unchecked Sendable {
    public static let shared = WorkerPool()

    /// Polls of the job word before a worker sleeps.
    static let spinLimit = 50_000

    /// Set while a caller owns the pool; `workers`, `body` are only touched by that caller (and, for
    /// `body`, by the workers it woke, until they report done).
    private let busy = Atomic<Bool>(false)
    /// generation << 16 | count of the current pass, published in one word so that a worker reads a
    /// generation and its count together.
    private let job = Atomic<Int>(0)
    /// Workers of the current pass that have not finished.
    private let pending = Atomic<Int>(0)
    private var body: ((Int) -> Void)?
    private var workers: [Worker] = []

    private final class Worker: @unchecked Sendable {
        let index: Int
        /// The last generation published before this worker existed: passes after it are its own.
        let firstSeen: Int
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
        init(index: Int, firstSeen: Int) { self.index = index; self.firstSeen = firstSeen }
    }

    private struct Unchecked<F>: @unchecked Sendable { let body: F }

    /// Calls `body(i)` for every i in 0..<count, at most `1 << 16 - 1` at once, and returns when all
    /// are done. Bodies must write disjoint memory.
    public func run(_ count: Int, _ body: (Int) -> Void) {
        precondition(count < 1 << 16, "WorkerPool: \(count) tasks in one pass")
        if count <= 1 {
            if count == 1 { body(0) }
            return
        }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            withoutActuallyEscaping(body) { body in
                let box = Unchecked(body: body)
                DispatchQueue.concurrentPerform(iterations: count) { box.body($0) }
            }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        while workers.count < count - 1 {
            start(Worker(index: workers.count + 1, firstSeen: job.load(ordering: .relaxed) >> 16))
        }
        withoutActuallyEscaping(body) { body in
            self.body = body
            pending.store(count - 1, ordering: .relaxed)
            let generation = (job.load(ordering: .relaxed) >> 16) + 1
            job.store(generation << 16 | count, ordering: .sequentiallyConsistent)
            for worker in workers[0..<(count - 1)] where worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                worker.wake.signal()
            }
            body(0)
            while pending.load(ordering: .acquiring) > 0 {}
            self.body = nil
        }
    }

    private func start(_ worker: Worker) {
        workers.append(worker)
        let thread = Thread { [unowned self] in self.loop(worker) }
        thread.name = "hd-worker-\(worker.index)"
        thread.start()
    }

    /// A worker: waits for a generation it has not seen, runs its index of that pass if the pass
    /// has one, reports done, and waits again.
    private func loop(_ worker: Worker) {
        var seen = worker.firstSeen
        while true {
            var word = job.load(ordering: .acquiring), spins = 0
            while word >> 16 == seen {
                spins += 1
                if spins < Self.spinLimit {
                    word = job.load(ordering: .acquiring)
                    continue
                }
                // Announce the sleep, then look once more: a pass published in between either sees
                // the flag (and signals) or is seen here (and the flag is taken back, or the signal
                // it already sent is consumed).
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                word = job.load(ordering: .sequentiallyConsistent)
                if word >> 16 == seen || !worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                    worker.wake.wait()
                }
                word = job.load(ordering: .acquiring)
                spins = 0
            }
            seen = word >> 16
            if worker.index < word & 0xFFFF {
                body!(worker.index)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }
}

/// Chunks 0..<count of one pass shared out among its workers: each takes the next `batch` of them
/// from a counter, so that a busy core takes fewer and the others finish its share. A take is a
/// locked add on a line both cores write, and it waits until every store before it (the chunk's
/// results) has drained. Taken one chunk at a time (the MLM decoder's logits alone are 1,908 chunks
/// a step), the splade-tiny MLM step ran 9.5 % slower at 2 threads (13.5 % in bf16). So one worker
/// takes them all at once, and several about 16 batches each, consecutive chunks (the same row
/// group's next panels) together. Which worker computes a chunk never changes its result.
struct ChunkCounter: ~Copyable {
    private let next = Atomic<Int>(0)
    let count: Int, batch: Int

    init(count: Int, workers: Int) {
        self.count = count
        batch = workers <= 1 ? max(count, 1) : max(1, count / (16 * workers))
    }

    /// Calls `body` for each chunk this worker takes, until none are left.
    func forEach(_ body: (Int) -> Void) {
        while case let first = next.wrappingAdd(batch, ordering: .relaxed).oldValue, first < count {
            for chunk in first..<min(first + batch, count) { body(chunk) }
        }
    }
}
