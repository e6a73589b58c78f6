import CRuntimeKernels
import HDModel
import HDTensor

/// The arithmetic of a session's dense layers (Q/K/V, attention output, FFN in and out), chosen by
/// the caller when the model is laid out; the attention's two products, embeddings, LayerNorm,
/// softmax and the MLM head stay fp32 whatever the choice (docs/PERFORMANCE.md, "int8 and bf16").
public enum Precision: String, Sendable, CaseIterable {
    /// f32 weights and activations, the packed AVX-512F GEMM or OpenBLAS.
    case fp32
    /// Weights rounded once to bf16 (nearest even), activations rounded as each dense layer reads
    /// them, products summed in f32 by `vdpbf16ps` (AVX-512 BF16) or `tdpbf16ps` (AMX-BF16).
    case bf16
    /// Weights quantised once to s8 per output column (symmetric), activations to u8 per row
    /// (asymmetric, over the row's range) as each dense layer reads them, exact int32 sums by
    /// `vpdpbusd` (AVX-512 VNNI) or `tdpbusd` (AMX-INT8), dequantised in the store.
    case int8

    /// The instruction sets the runtime's kernels depend on, as this CPU and OS report them; a
    /// value of its own so that the refusals can be tested for any CPU.
    public struct Capabilities: Sendable, Equatable {
        public var avx512f: Bool
        public var avx512VNNI: Bool
        public var avx512BF16: Bool
        /// AMX-TILE with AMX-INT8 (resp. AMX-BF16), the OS's tile state and Linux's grant of it
        /// to this process (`hd_amx_int8_supported`).
        public var amxInt8: Bool
        public var amxBF16: Bool

        public init(avx512f: Bool, avx512VNNI: Bool, avx512BF16: Bool, amxInt8: Bool = false, amxBF16: Bool = false) {
            self.avx512f = avx512f
            self.avx512VNNI = avx512VNNI
            self.avx512BF16 = avx512BF16
            self.amxInt8 = amxInt8
            self.amxBF16 = amxBF16
        }

        public static let current = Capabilities(avx512f: hd_avx512f_supported() != 0,
                                                 avx512VNNI: hd_avx512_vnni_supported() != 0,
                                                 avx512BF16: hd_avx512_bf16_supported() != 0,
                                                 amxInt8: hd_amx_int8_supported() != 0,
                                                 amxBF16: hd_amx_bf16_supported() != 0)
    }

    /// The instructions this precision's dense layers run on by default: AMX tiles where
    /// `capabilities` have them (a BERT-base forward at 1 × 128 on this project's CPU: int8 1.6×,
    /// bf16 6.3× as fast as on the vector instructions, docs/PERFORMANCE.md), else AVX-512.
    /// Reading `Capabilities.current` asks Linux for the tile state once for the whole process
    /// (`hd_amx_int8_supported`).
    public func defaultInstructions(on capabilities: Capabilities = .current) -> MatrixInstructions {
        switch self {
        case .fp32: .avx512
        case .int8: capabilities.amxInt8 ? .amx : .avx512
        case .bf16: capabilities.amxBF16 ? .amx : .avx512
        }
    }

    /// Why `capabilities` cannot run this precision on `kernel` with `instructions`, or nil when
    /// they can. There is no fallback: a caller who asked for int8 on AMX gets that or this reason.
    public func unsupportedReason(on capabilities: Capabilities = .current, kernel: GEMMKernel,
                                  instructions: MatrixInstructions = .avx512) -> String? {
        guard self != .fp32 else {
            return instructions == .amx ? "AMX multiplies int8 and bf16 only; precision fp32 runs on AVX-512F or OpenBLAS" : nil
        }
        guard kernel == .packed else { return "precision \(rawValue) runs on the packed kernel only, found --kernel \(kernel.rawValue)" }
        let needs = self == .int8 ? "AVX-512 VNNI (vpdpbusd)" : "AVX-512 BF16 (vdpbf16ps)"
        let has = self == .int8 ? capabilities.avx512VNNI : capabilities.avx512BF16
        if !capabilities.avx512f { return "precision \(rawValue) needs AVX-512F and \(needs); this CPU has neither" }
        guard has else { return "precision \(rawValue) needs \(needs), which this CPU lacks (it has AVX-512F: use fp32)" }
        guard instructions == .amx else { return nil }
        let tiles = self == .int8 ? capabilities.amxInt8 : capabilities.amxBF16
        return tiles ? nil : "precision \(rawValue) on AMX needs AMX-TILE and AMX-\(self == .int8 ? "INT8" : "BF16") granted by the OS, which this CPU or OS lacks (use --instructions avx512)"
    }

    /// Throws `ModelError(.unsupported)` with `unsupportedReason`.
    public func check(on capabilities: Capabilities = .current, kernel: GEMMKernel,
                      instructions: MatrixInstructions = .avx512) throws {
        if let reason = unsupportedReason(on: capabilities, kernel: kernel, instructions: instructions) {
            throw ModelError(.unsupported, file: "<cpu>", reason)
        }
    }
}

/// The instructions an int8 or bf16 session's dense layers multiply with. Both read the same packed
/// weights and converted rows; int8 gives the same floats bit for bit on either (exact int32 sums,
/// the same dequantisation), bf16 sums its f32 products in another order.
public enum MatrixInstructions: String, Sendable, CaseIterable {
    /// `vpdpbusd` (AVX-512 VNNI) / `vdpbf16ps` (AVX-512 BF16) on 16-lane vector registers,
    /// register tiles of 12 rows × 32 columns (QuantizedGEMM.c).
    case avx512
    /// AMX's `tdpbusd` / `tdpbf16ps` on tile registers: 16 × 16 outputs over 64 int8 or 32 bf16
    /// inputs per instruction, blocks of 32 rows × 32 columns (TileGEMM.c).
    case amx
}
