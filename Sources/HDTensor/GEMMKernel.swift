import CRuntimeKernels

/// Which GEMM runs: in the runtime, which decides how a dense layer's weights are laid out in
/// memory; in training (`GEMM`), which kernel every product of the forward and backward runs on.
public enum GEMMKernel: String, Sendable, CaseIterable {
    /// CRuntimeKernels' AVX-512 GEMM against a right-hand operand packed into panels of 32 output
    /// columns, which fuses the bias and GELU into its stores and reads the left-hand operand in
    /// place. The runtime packs its weights once, at load (OpenBLAS 0.3.21 has no pre-packed
    /// interface and repacks every weight matrix on every call: a fifth of a BERT-base forward at
    /// 1 × 128), and a session on such a model also runs its attention softmax with
    /// CRuntimeKernels; training packs per call.
    case packed
    /// OpenBLAS's sgemm on row-major operands (in the runtime, `[out, in]` weights, with the bias,
    /// GELU and softmax by the Swift kernels, `FusedKernels`).
    case openBLAS = "openblas"

    /// `.packed` where the CPU and OS run AVX-512F, else `.openBLAS`.
    public static let best: GEMMKernel = isPackedSupported ? .packed : .openBLAS

    public static let isPackedSupported = hd_avx512f_supported() != 0

    /// Output columns per packed panel: the unit the packed GEMM's columns are split in.
    public static let panelWidth = Int(HD_PACKED_PANEL)

    /// Rows of the packed GEMM's register tile: the unit its row groups are cut in.
    public static let tileRows = Int(HD_TILE_ROWS)
}
