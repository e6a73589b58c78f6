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
    /// Lays out `rowMajor` (`[outFeatures, inFeatures]`) for `kernel` in `precision` (other than
    /// fp32 only on the packed kernel); packing hands a borrowed source's pages back to the kernel
    /// (`RuntimeModel.releasePages`), so resident memory holds the matrix once.
    public init(rowMajor: FloatStorage, bias: FloatStorage, outFeatures: Int, inFeatures: Int, kernel: GEMMKernel,
                precision: Precision = .fp32) {
        precondition(rowMajor.count == outFeatures * inFeatures, "dense weights: \(rowMajor.count) values for \(outFeatures) × \(inFeatures)")
        precondition(kernel == .packed || precision == .fp32, "dense weights: \(precision) needs the packed kernel")
        guard kernel == .packed else {
            self.init(weight: rowMajor, bias: bias, outFeatures: outFeatures, inFeatures: inFeatures, kernel: .openBLAS)
            return
        }
        let base = rowMajor.buffer.baseAddress!
        self = .packed(rows: (0..<outFeatures).map { base + $0 * inFeatures }, bias: bias, inFeatures: inFeatures,
                       precision: precision)
        RuntimeModel.releasePages(rowMajor)
    }

    /// Packs the matrix whose output rows are `rows` (each `inFeatures` weights; they need not be
    /// adjacent: Q's, K's and V's rows pack as one stacked matrix without a stacked copy), in
    /// `precision`: int8 and bf16 panels are bytes, held in a `FloatStorage` of a quarter as many
    /// elements (their sizes are multiples of 4 bytes).
    static func packed(rows: [UnsafePointer<Float>], bias: FloatStorage, inFeatures: Int,
                       precision: Precision = .fp32) -> DenseWeights {
        precondition(precision.unsupportedReason(kernel: .packed) == nil && GEMMKernel.isPackedSupported,
                     "the packed \(precision) GEMM needs instructions this CPU lacks")
        precondition(bias.count == rows.count, "dense weights: \(bias.count) biases for \(rows.count) outputs")
        let n = rows.count, k = inFeatures
        let count = switch precision {
        case .fp32: hd_packed_weights_count(n, k)
        case .bf16: hd_bf16_packed_bytes(n, k) / 4
        case .int8: hd_int8_packed_bytes(n, k) / 4
        }
        let packed = FloatStorage(count: count) { out in
            rows.map(Optional.init).withUnsafeBufferPointer {
                switch precision {
                case .fp32: hd_pack_weights($0.baseAddress!, n, k, out.baseAddress!)
                case .bf16: hd_bf16_pack_weights($0.baseAddress!, n, k, UnsafeMutableRawPointer(out.baseAddress!).assumingMemoryBound(to: UInt16.self))
                case .int8: hd_int8_pack_weights($0.baseAddress!, n, k, out.baseAddress!)
                }
            }
        }
        return DenseWeights(weight: packed, bias: bias, outFeatures: n, inFeatures: k, kernel: .packed, precision: precision)
    }
}
