#ifndef HOMODISTIL_CPACKEDGEMM_H
#define HOMODISTIL_CPACKEDGEMM_H

#include <stddef.h>

/// A single-precision GEMM for inference against weights packed once, at load: C = A · Wᵀ with
/// W `[n × k]` row-major (Hugging Face's `[out, in]` layout). OpenBLAS 0.3.21 packs W again on
/// every call and has no pre-pack API; for a BERT forward at batch 1 that repacking is a fifth of
/// the time (see docs/PERFORMANCE.md). The kernel is AVX-512F, selected at run time; callers use
/// OpenBLAS when `hd_packed_gemm_supported()` is 0.

/// Output columns per packed panel.
#define HD_PACKED_PANEL 32

/// Input rows per packed block (the kernel's register tile is 12 rows × 32 columns).
#define HD_PACKED_ROW_BLOCK 12

/// 1 when this CPU and OS run AVX-512F code (CPUID and XGETBV), else 0.
int hd_packed_gemm_supported(void);

/// Floats `hd_pack_weights` writes for W `[n × k]`: ⌈n / 32⌉ panels of k × 32.
size_t hd_packed_weights_count(size_t n, size_t k);

/// Packs W `[n × k]`, given as its n rows (`rows[j]` holds the k weights of output column j; the
/// rows need not be adjacent, so Q, K and V pack as one matrix without being stacked first) into
/// panels of 32 output columns: panel p holds, for each of the k inputs in order,
/// W[32p ..< 32p + 32][input], zero past column n.
void hd_pack_weights(const float *const *rows, size_t n, size_t k, float *packed);

/// Floats `hd_pack_rows` writes for A `[m × k]`: ⌈m / 12⌉ blocks of k × 12 (`HD_PACKED_ROW_BLOCK`).
size_t hd_packed_rows_count(size_t m, size_t k);

/// Packs A `[m × k]` (row stride `lda`) into blocks of 12 rows: block b holds, for each of the k
/// inputs in order, A[12b ..< 12b + 12][input], zero past row m. Cheap next to the product
/// (m·k copies against m·n·k multiply-adds) and lets each step of the kernel read its 12 inputs
/// from one cache line.
void hd_pack_rows(const float *a, size_t m, size_t k, size_t lda, float *packed);

/// C[m × columns] = A[m × k] · Wᵀ for the output columns of panels `first_panel ..< end_panel`
/// (columns 32·first_panel ..< min(32·end_panel, n)), from A packed by `hd_pack_rows` and W by
/// `hd_pack_weights`; C has row stride `ldc`. Overwrites those columns of C, so workers given
/// disjoint panel ranges may run at once. Call only when `hd_packed_gemm_supported()`.
void hd_packed_gemm(size_t m, size_t n, size_t k, const float *packed_rows, const float *packed_weights,
                    size_t first_panel, size_t end_panel, float *c, size_t ldc);

#endif
