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
    /// them, products summed in f32 by `vdpbf16ps` (AVX-512 BF16).
    case bf16
    /// Weights quantised once to s8 per output column (symmetric), activations to u8 per row
    /// (asymmetric, over the row's range) as each dense layer reads them, exact int32 sums by
    /// `vpdpbusd` (AVX-512 VNNI), dequantised in the store.
    case int8

    /// The instruction sets the runtime's kernels depend on, as this CPU and OS report them; a
    /// value of its own so that the refusals can be tested for any CPU.
    public struct Capabilities: Sendable, Equatable {
        public var avx512f: Bool
        public var avx512VNNI: Bool
        public var avx512BF16: Bool

        public init(avx512f: Bool, avx512VNNI: Bool, avx512BF16: Bool) {
            self.avx512f = avx512f
            self.avx512VNNI = avx512VNNI
            self.avx512BF16 = avx512BF16
        }

        public static let current = Capabilities(avx512f: hd_avx512f_supported() != 0,
                                                 avx512VNNI: hd_avx512_vnni_supported() != 0,
                                                 avx512BF16: hd_avx512_bf16_supported() != 0)
    }

    /// Why `capabilities` cannot run this precision on `kernel`, or nil when they can. There is no
    /// fallback: a caller who asked for int8 gets int8 or this reason.
    public func unsupportedReason(on capabilities: Capabilities = .current, kernel: GEMMKernel) -> String? {
        guard self != .fp32 else { return nil }
        guard kernel == .packed else { return "precision \(rawValue) runs on the packed kernel only, found --kernel \(kernel.rawValue)" }
        let needs = self == .int8 ? "AVX-512 VNNI (vpdpbusd)" : "AVX-512 BF16 (vdpbf16ps)"
        let has = self == .int8 ? capabilities.avx512VNNI : capabilities.avx512BF16
        if !capabilities.avx512f { return "precision \(rawValue) needs AVX-512F and \(needs); this CPU has neither" }
        return has ? nil : "precision \(rawValue) needs \(needs), which this CPU lacks (it has AVX-512F: use fp32)"
    }

    /// Throws `ModelError(.unsupported)` with `unsupportedReason`.
    public func check(on capabilities: Capabilities = .current, kernel: GEMMKernel) throws {
        if let reason = unsupportedReason(on: capabilities, kernel: kernel) {
            throw ModelError(.unsupported, file: "<cpu>", reason)
        }
    }
}
