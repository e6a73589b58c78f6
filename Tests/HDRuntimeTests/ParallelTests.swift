import HDFormats
import HDModel
import HDRuntime
import HDTensor
import HDTestSupport
import Testing

/// The work splitting of the runtime: column blocks against one OpenBLAS call, row ranges, and
/// a session whose row-wise passes run threaded against the same session on one thread.
@Suite struct ParallelTests {
    static func values(_ count: Int, seed: UInt64) -> [Float] { FusedKernelTests.values(count, seed: seed, spread: 1) }

    /// m × n × k with n not a multiple of the 16-column blocks, narrower than one block, or fewer
    /// blocks than threads: blocks are whole tiles but the last, every column is in exactly one, and
    /// one OpenBLAS call per block equals one call over all columns.
    @Test(arguments: [(5, 37, 19, 2), (3, 15, 8, 2), (7, 100, 33, 3), (1, 17, 4, 4), (4, 70, 12, 1), (32, 2304, 64, 2)])
    func columnBlocksEqualOneGemm(m: Int, n: Int, k: Int, threads: Int) {
        BLAS.setThreads(1)
        let a = Self.values(m * k, seed: 1), b = Self.values(n * k, seed: 2)
        var plain = [Float](repeating: 0, count: m * n), split = [Float](repeating: .nan, count: m * n)
        BLAS.gemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &plain, ldc: n)
        let visits = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
        defer { visits.deallocate() }
        visits.initialize(repeating: 0)
        split.withUnsafeMutableBufferPointer { c in
            let c = c.baseAddress!
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    let a = a.baseAddress!, b = b.baseAddress!
                    Parallel(threads: threads).columns(n, tile: 16) { columns in
                        #expect(columns.lowerBound % 16 == 0 && (columns.count % 16 == 0 || columns.upperBound == n))
                        BLAS.gemm(transB: true, m: m, n: columns.count, k: k, a: a, lda: k, b: b + columns.lowerBound * k,
                                  ldb: k, c: c + columns.lowerBound, ldc: n)
                        for j in columns { visits[j] += 1 }
                    }
                }
            }
        }
        let scale = plain.map(abs).max()!
        #expect(zip(split, plain).allSatisfy { abs($0 - $1) <= 1e-6 * scale })
        #expect(visits.allSatisfy { $0 == 1 })
    }

    /// Ranges are disjoint, in order and cover every row; below the per-worker minimum there is one.
    @Test(arguments: [(0, 8), (1, 768), (32, 768), (200, 768), (5000, 7), (3, 100_000)])
    func rowsCoverEveryRowOnce(count: Int, width: Int) {
        for threads in [1, 2, 3] {
            // Per row: how often it was visited, and whether a range started there.
            let visits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
            let starts = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
            defer { visits.deallocate(); starts.deallocate() }
            visits.initialize(repeating: 0)
            starts.initialize(repeating: 0)
            Parallel(threads: threads).rows(count, width: width) { range in
                starts[range.lowerBound] += 1
                for r in range { visits[r] += 1 }
            }
            #expect(visits[0..<count].allSatisfy { $0 == 1 })
            let tasks = starts[0..<count].reduce(0, +)
            if count * width < 2 * ParallelFor.minimumElementsPerWorker {
                #expect(tasks == min(count, 1))
            } else {
                #expect(tasks == threads)
            }
        }
    }

    /// 40 × 64 tokens of a 32-wide model: enough rows for the row-wise passes to split over threads.
    /// The threaded runs equal the one-thread run and the reference forward.
    @Test func threadedSessionEqualsOneThread() throws {
        let model = try BertModel(checkpoint: Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors")))
        let batch = try TokenBatch(batchSize: 40, sequenceLength: 64, ids: (0..<(40 * 64)).map { ($0 * 37 + 5) % 100 })
        #expect(batch.batchSize * batch.sequenceLength * model.config.hiddenSize >= 2 * ParallelFor.minimumElementsPerWorker)
        func run(threads: Int) throws -> [Float] {
            let session = try InferenceSession(model: RuntimeModel(model: model), maxBatch: 40, maxLength: 64, threads: threads)
            try session.forward(batch)
            return session.lastHiddenState()
        }
        let one = try run(threads: 1), scale = one.map(abs).max()!
        for threads in [2, 3] {
            #expect(zip(try run(threads: threads), one).allSatisfy { abs($0 - $1) <= 1e-6 * scale })
        }
        try RuntimeEquivalenceTests.check(model, batch, threads: 2)
    }
}
