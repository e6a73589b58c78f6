import CRuntimeKernels
import HDFormats
import HDTensor

extension DenseWeights {
    /// Lays out `rowMajor` (`[outFeatures, inFeatures]`) for `kernel` in `precision` on
    /// `instructions` (other than fp32 only on the packed kernel); packing hands a borrowed source's pages back to the kernel
    /// (`RuntimeModel.releasePages`), so resident memory holds the matrix once.
    public init(rowMajor: FloatStorage, bias: FloatStorage, outFeatures: Int, inFeatures: Int, kernel: GEMMKernel,
                precision: Precision = .fp32, instructions: MatrixInstructions = .avx512) {
        precondition(rowMajor.count == outFeatures * inFeatures, "dense weights: \(rowMajor.count) values for \(outFeatures) × \(inFeatures)")
        precondition(kernel == .packed || precision == .fp32, "dense weights: \(precision) needs the packed kernel")
        guard kernel == .packed else {
            self.init(weight: rowMajor, bias: bias, outFeatures: outFeatures, inFeatures: inFeatures, kernel: .openBLAS)
            return
        }
        let base = rowMajor.buffer.baseAddress!
        self = .packed(rows: (0..<outFeatures).map { base + $0 * inFeatures }, bias: bias, inFeatures: inFeatures,
                       precision: precision, instructions: instructions)
        RuntimeModel.releasePages(rowMajor)
    }

    /// Packs the matrix whose output rows are `rows` (each `inFeatures` weights; they need not be
    /// adjacent: Q's, K's and V's rows pack as one stacked matrix without a stacked copy), in
    /// `precision`, for `instructions` (the int8 and bf16 panels are the same for both): int8 and
    /// bf16 panels are bytes, held in a `FloatStorage` of a quarter as many elements (their sizes
    /// are multiples of 4 bytes).
    static func packed(rows: [UnsafePointer<Float>], bias: FloatStorage, inFeatures: Int,
                       precision: Precision = .fp32, instructions: MatrixInstructions = .avx512) -> DenseWeights {
        precondition(precision.unsupportedReason(kernel: .packed, instructions: instructions) == nil && GEMMKernel.isPackedSupported,
                     "the packed \(precision) GEMM on \(instructions) needs instructions this CPU lacks")
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
        return DenseWeights(weight: packed, bias: bias, outFeatures: n, inFeatures: k, kernel: .packed, precision: precision,
                            instructions: instructions)
    }
}
