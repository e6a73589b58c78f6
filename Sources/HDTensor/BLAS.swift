import CBLAS

/// Row-major single-precision GEMM over OpenBLAS, plus its thread control.
///
/// Weights stay in Hugging Face's `[out, in]` layout: `x · Wᵀ` is `gemm(transB: true)` with
/// `ldb = in`, never a transposed copy. Sub-matrices (one attention head inside a `[tokens, heads·size]`
/// buffer) are addressed with a base pointer plus a leading dimension, again without copies.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for every following call (process-wide).
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(clamping: max(1, count)))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with OpenBLAS at `count` threads, then puts the previous count back. OpenBLAS's
    /// count is process-wide, so a library call that needs its own (the runtime's single-threaded
    /// GEMMs inside its workers) scopes the change instead of leaving it behind for its caller.
    public static func withThreads<R>(_ count: Int, _ body: () throws -> R) rethrows -> R {
        let previous = threads
        setThreads(count)
        defer { setThreads(previous) }
        return try body()
    }

    /// The kernel family OpenBLAS chose for this CPU (or was told to use by `OPENBLAS_CORETYPE`).
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major.
    /// op(A) is m×k (A is k×m when `transA`), op(B) is k×n (B is n×k when `transB`).
    /// Leading dimensions are row strides in floats. The dimensions come from validated model
    /// shapes, never straight from a file, so a mismatch here is a bug in the caller: it traps
    /// rather than letting OpenBLAS read or write out of bounds.
    @inlinable
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        checkShapes(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        precondition(max(m, n, k, lda, ldb, ldc) <= Int(Int32.max), "gemm: dimension beyond 32-bit BLAS")
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Traps on dimensions that do not fit the leading dimensions (shared with `GEMM`).
    @usableFromInline
    static func checkShapes(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative dimension \(m)×\(n)×\(k)")
        precondition(lda >= max(1, transA ? m : k) && ldb >= max(1, transB ? k : n) && ldc >= max(1, n),
                     "gemm: leading dimensions \(lda), \(ldb), \(ldc) too small for \(m)×\(n)×\(k)")
    }

    /// `count` independent GEMMs whose operands sit at fixed strides from the base pointers, e.g.
    /// one per attention head: head h of Q lives at `q + h·headSize` with `lda = heads·headSize`.
    @inlinable
    public static func gemmStridedBatched(count: Int, transA: Bool = false, transB: Bool = false,
                                          m: Int, n: Int, k: Int, alpha: Float = 1,
                                          a: UnsafePointer<Float>, lda: Int, strideA: Int,
                                          b: UnsafePointer<Float>, ldb: Int, strideB: Int,
                                          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
        for i in 0..<count {
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                 a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
                 beta: beta, c: c + i * strideC, ldc: ldc)
        }
    }
}
