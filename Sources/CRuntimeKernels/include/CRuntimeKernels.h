#ifndef HOMODISTIL_CRUNTIMEKERNELS_H
#define HOMODISTIL_CRUNTIMEKERNELS_H

#include <stddef.h>

/// The inference runtime's AVX-512F kernels, chosen at run time: callers use OpenBLAS and the
/// Swift kernels when `hd_avx512f_supported()` is 0. Each function is compiled for AVX-512F with
/// a per-function `target` attribute, so the package keeps baseline x86-64 flags; the Swift code
/// cannot be built for AVX-512 that way, and runs 4-wide SSE without FMA.
///
/// - A single-precision GEMM against weights packed once, at load: C = A · Wᵀ with W `[n × k]`
///   row-major (Hugging Face's `[out, in]` layout), with the bias and GELU fused into the stores;
///   the input A is read where it lies. OpenBLAS 0.3.21 packs W again on every call and has no
///   pre-pack API; for a BERT forward at batch 1 that repacking is a fifth of the time (see
///   docs/PERFORMANCE.md). The attention's two products run on it too, their right-hand
///   operands packed per (sequence, head).
/// - The attention softmax.
/// - The FMA peak the roofline compares against.

/// 1 when this CPU and OS run AVX-512F code (CPUID and XGETBV), else 0.
int hd_avx512f_supported(void);

// MARK: packed GEMM

/// Output columns per packed panel.
#define HD_PACKED_PANEL 32

/// Rows of the packed GEMM's register tile (12 rows × 32 columns).
#define HD_TILE_ROWS 12

/// Floats `hd_pack_weights` writes for W `[n × k]`: ⌈n / 32⌉ panels of k × 32.
size_t hd_packed_weights_count(size_t n, size_t k);

/// Packs W `[n × k]`, given as its n rows (`rows[j]` holds the k weights of output column j; the
/// rows need not be adjacent, so Q, K and V pack as one matrix without being stacked first) into
/// panels of 32 output columns: panel p holds, for each of the k inputs in order,
/// W[32p ..< 32p + 32][input], zero past column n.
void hd_pack_weights(const float *const *rows, size_t n, size_t k, float *packed);

/// Packs W `[n × k]` into the same panels, reading W[j][i] at `w[j·column_stride + i·input_stride]`:
/// the attention's operands, read in place from the Q/K/V rows. K_h (tokens × head size, rows 3a
/// apart) is W for S = Q_h·K_hᵀ with column_stride 3a, input_stride 1; V_h is Wᵀ for P·V_h, so it
/// packs with column_stride 1, input_stride 3a (each panel row then is a contiguous run of V).
/// `hd_pack_weights` stays for the load-time packing of Q, K and V as one stacked matrix whose
/// parts are separate allocations.
void hd_pack_weights_strided(const float *w, size_t n, size_t k, size_t column_stride, size_t input_stride, float *packed);

/// What the packed GEMM does to each output after the product, while it is still in cache.
typedef enum {
    HD_EPILOGUE_NONE = 0,
    /// + bias[column]
    HD_EPILOGUE_BIAS,
    /// GELU(· + bias[column]), the exact (erf) form
    HD_EPILOGUE_BIAS_GELU,
    /// GELU(· + bias[column]), the tanh form ("gelu_new")
    HD_EPILOGUE_BIAS_GELU_TANH,
} hd_epilogue;

/// C[m × columns] = epilogue(A[m × k] · Wᵀ) for the output columns of panels
/// `first_panel ..< end_panel` (columns 32·first_panel ..< min(32·end_panel, n)), from A row-major
/// with row stride `lda` (read in place: no packing of the input) and W packed by
/// `hd_pack_weights` or `hd_pack_weights_strided`; C has row stride `ldc`; `bias` (n floats) may
/// be null with `HD_EPILOGUE_NONE`. Overwrites those columns of C, so workers given disjoint panel
/// ranges may run at once. Call only when `hd_avx512f_supported()`.
void hd_packed_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed_weights,
                    size_t first_panel, size_t end_panel, float *c, size_t ldc, hd_epilogue epilogue,
                    const float *bias);

// MARK: softmax

/// In place, each of `rows` rows (stride `width`) becomes the softmax of `scale` times it, as
/// `FusedKernels.softmaxRows` of the scaled row (e^x by the same polynomial); `scale` > 0. The
/// attention's 1/√(head size) is applied here because the packed GEMM that computes Q·Kᵀ has no
/// α. Call only when `hd_avx512f_supported()`.
void hd_softmax_rows(float *x, size_t rows, size_t width, float scale);

// MARK: FMA peak

/// FLOPs `hd_fma_peak` does per iteration: 12 FMAs of 16 lanes, 2 FLOPs each.
#define HD_FMA_PEAK_FLOPS_PER_ITERATION 384

/// Runs `iterations` × 12 independent AVX-512 FMAs with nothing else, for timing the core's peak
/// single-precision rate; returns a value derived from the results, so that the work is not
/// optimised away. Call only when `hd_avx512f_supported()`.
float hd_fma_peak(size_t iterations);

#endif
