import CRuntimeKernels
import HDFormats

/// Which GEMM a dense layer runs, which decides how its weights are laid out in memory.
public enum GEMMKernel: String, Sendable, CaseIterable {
    /// Weights packed once, at load, into panels of 32 output columns for CRuntimeKernels' AVX-512
    /// GEMM, which fuses the bias and GELU into its stores and reads the activations in place.
    /// OpenBLAS 0.3.21 has no pre-packed interface and repacks every weight matrix on every call:
    /// a fifth of a BERT-base forward at 1 × 128. A session on such a model also runs its
    /// attention softmax with CRuntimeKernels.
    case packed
    /// Row-major `[out, in]` weights through OpenBLAS's sgemm, the bias, GELU and softmax by the
    /// Swift kernels (`FusedKernels`).
    case openBLAS = "openblas"

    /// `.packed` where the CPU and OS run AVX-512F, else `.openBLAS`.
    public static let best: GEMMKernel = isPackedSupported ? .packed : .openBLAS

    public static let isPackedSupported = hd_avx512f_supported() != 0

    /// Output columns per packed panel: the unit the packed GEMM's columns are split in.
    static let panelWidth = Int(HD_PACKED_PANEL)

    /// Rows of the packed GEMM's register tile: the unit its row groups are cut in.
    static let tileRows = Int(HD_TILE_ROWS)
}

extension DenseWeights {
    /// Lays out `rowMajor` (`[outFeatures, inFeatures]`) for `kernel`; packing hands a borrowed
    /// source's pages back to the kernel (`RuntimeModel.releasePages`), so resident memory holds
    /// the matrix once.
    public init(rowMajor: FloatStorage, bias: FloatStorage, outFeatures: Int, inFeatures: Int, kernel: GEMMKernel) {
        precondition(rowMajor.count == outFeatures * inFeatures, "dense weights: \(rowMajor.count) values for \(outFeatures) × \(inFeatures)")
        guard kernel == .packed else {
            self.init(weight: rowMajor, bias: bias, outFeatures: outFeatures, inFeatures: inFeatures, kernel: .openBLAS)
            return
        }
        let base = rowMajor.buffer.baseAddress!
        self = .packed(rows: (0..<outFeatures).map { base + $0 * inFeatures }, bias: bias, inFeatures: inFeatures)
        RuntimeModel.releasePages(rowMajor)
    }

    /// Packs the matrix whose output rows are `rows` (each `inFeatures` weights; they need not be
    /// adjacent: Q's, K's and V's rows pack as one stacked matrix without a stacked copy).
    static func packed(rows: [UnsafePointer<Float>], bias: FloatStorage, inFeatures: Int) -> DenseWeights {
        precondition(GEMMKernel.isPackedSupported, "the packed GEMM needs AVX-512F, which this CPU lacks")
        precondition(bias.count == rows.count, "dense weights: \(bias.count) biases for \(rows.count) outputs")
        let packed = FloatStorage(count: hd_packed_weights_count(rows.count, inFeatures)) { out in
            rows.map(Optional.init).withUnsafeBufferPointer {
                hd_pack_weights($0.baseAddress!, rows.count, inFeatures, out.baseAddress!)
            }
        }
        return DenseWeights(weight: packed, bias: bias, outFeatures: rows.count, inFeatures: inFeatures, kernel: .packed)
    }
}
