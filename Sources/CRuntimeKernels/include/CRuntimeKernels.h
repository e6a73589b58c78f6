#ifndef HOMODISTIL_CRUNTIMEKERNELS_H
#define HOMODISTIL_CRUNTIMEKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// The AVX-512 kernels of the inference runtime and of the training GEMMs (`HDTensor.GEMM`), chosen
/// at run time: callers use OpenBLAS and the Swift kernels when `hd_avx512f_supported()` is 0.
/// Each function is compiled for AVX-512F with a per-function `target` attribute, so the package
/// keeps baseline x86-64 flags; the Swift code cannot be built for AVX-512 that way, and runs
/// 4-wide SSE without FMA.
///
/// - A single-precision GEMM against weights packed once, at load: C = A · Wᵀ with W `[n × k]`
///   row-major (Hugging Face's `[out, in]` layout), with the bias and GELU fused into the stores;
///   the input A is read where it lies. OpenBLAS 0.3.21 packs W again on every call and has no
///   pre-pack API; for a BERT forward at batch 1 that repacking is a fifth of the time (see
///   docs/PERFORMANCE.md). The attention's two products run on it too, their right-hand
///   operands packed per (sequence, head). Training runs every GEMM of its forward and backward
///   on it, packing the right-hand operand per call (a pass over it, small next to the product at
///   a training batch's rows) and copying a transposed left-hand operand (`hd_transpose`).
/// - The same GEMM in int8 (AVX-512 VNNI) and bf16 (AVX-512 BF16), for the dense layers of a
///   session that asks for that precision; each needs its own CPUID check.
/// - The same int8 and bf16 GEMMs on AMX tiles (`tdpbusd`, `tdpbf16ps`), from the same panels and
///   converted rows, where the CPU has AMX and Linux grants the process its tile state; and for
///   training's bf16 products (`hd-distill --matmul bf16`), the bf16 tile GEMM from rows in the
///   tiles' own layout, with the conversions and packing that prepare both operands per call.
/// - The attention softmax, and GELU with its derivative (the training FFN's).
/// - The FMA, VNNI and BF16 peaks the roofline compares against, and the tiles' int8 and bf16 peaks.

/// 1 when this CPU and OS run AVX-512F code (CPUID and XGETBV), else 0.
int hd_avx512f_supported(void);

/// 1 when `hd_avx512f_supported()` and the CPU has AVX-512 BW, VL and VNNI (`vpdpbusd`), which
/// the int8 GEMM uses, else 0.
int hd_avx512_vnni_supported(void);

/// 1 when `hd_avx512f_supported()` and the CPU has AVX-512 BW, VL and BF16 (`vdpbf16ps`), which
/// the bf16 GEMM uses, else 0.
int hd_avx512_bf16_supported(void);

/// 1 when `hd_avx512_vnni_supported()`, the CPU has AMX-TILE and AMX-INT8, the OS saves the tile
/// state (XCR0 bits 17–18) and Linux grants this process the tile data (`arch_prctl(
/// ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, asked here: without it the first tile instruction
/// faults). The grant is for the whole process and only enlarges its threads' saved state and
/// signal frames (by 8 KiB); Linux refuses it, and this returns 0, when an installed alternate
/// signal stack is too small for the larger frame.
int hd_amx_int8_supported(void);

/// As `hd_amx_int8_supported`, for `hd_avx512_bf16_supported()` and AMX-TILE with AMX-BF16.
int hd_amx_bf16_supported(void);

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
/// parts are separate allocations. Call only when `hd_avx512f_supported()`.
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

/// Values of A (m × k) past which `hd_packed_gemm` runs depth outer, panels inside: 1 Mi floats, 4 MiB,
/// twice a core's L2 here, where A's rows no longer stay cached between panels.
#define HD_DEPTH_OUTER_VALUES ((size_t)1 << 20)

/// C[m × columns] = epilogue(A[m × k] · Wᵀ) for the output columns of panels
/// `first_panel ..< end_panel` (columns 32·first_panel ..< min(32·end_panel, n)), from A row-major
/// with row stride `lda` (read in place: no packing of the input) and W packed by
/// `hd_pack_weights` or `hd_pack_weights_strided`; C has row stride `ldc`. Overwrites those
/// columns of C, or adds the product to them when `accumulate` (the epilogue then applies to the
/// sum); `bias` (n floats) may be null with `HD_EPILOGUE_NONE`. Each output is summed in the same
/// order whatever the panel range and whichever rows share its tile, so workers given disjoint
/// panel or row ranges may run at once and the result does not depend on the split. Call only
/// when `hd_avx512f_supported()`.
void hd_packed_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed_weights,
                    size_t first_panel, size_t end_panel, float *c, size_t ldc, int accumulate, hd_epilogue epilogue,
                    const float *bias);

/// Rows `first_column ..< end_column` of Aᵀ, for A `[rows × columns]` with row stride `lda`, into
/// `out` from its start: out[(c − first_column)·rows + r] = A[r][c]. The training GEMM's
/// transposed left-hand operand (dW = dYᵀ·X) is copied this way before the packed GEMM reads it:
/// read in place, a step's inputs sat in one cache line per step and the product ran at about
/// half the rate (MiniLM's dW shapes, one core). 16 × 16 blocks in registers. With `sums`
/// (`columns` floats; or null), adds each column's values to sums[c], row after row: a linear
/// layer's bias gradient (db = Σ dY) from the same read. Call only when `hd_avx512f_supported()`.
void hd_transpose(const float *a, size_t rows, size_t columns, size_t lda, size_t first_column, size_t end_column,
                  float *out, float *sums);

// MARK: int8 and bf16 packed GEMMs

/// Inputs per tile step of the AMX kernels: 64 int8 or 32 bf16 (one 64-byte tile row). The packed
/// panels hold k padded with zero inputs to a multiple of these, and the converted rows must too.
#define HD_INT8_DEPTH_STEP 64
#define HD_BF16_DEPTH_STEP 32

/// The int8 GEMM (AVX-512 VNNI): C = epilogue(dequantise(Q(A) · Q(W)ᵀ)). W is quantised once, at
/// load, symmetric per output column: W[j][i] ≈ s_j · q, q an s8 in −127…127, s_j = max|W[j]| / 127.
/// A is quantised per row as it is about to be multiplied, asymmetric over the row's range (with
/// 0): A[r][i] ≈ t_r · (u − z_r), u the u8 that `vpdpbusd` takes. Sums are exact in int32; the
/// output is (Σ_i u[r][i] · q_w[j][i] − z_r · Σ_i q_w[j][i]) · (s_j · t_r) in f32, then the epilogue.
///
/// Panels of 32 output columns: a 256-byte header (32 float scales s_j, then 32 int32 column sums
/// Σ_i q_w[j][i]; zero past column n), then ⌈k / 64⌉ · 16 groups of 128 bytes, each the 4 inputs
/// 4g … 4g + 3 of columns 0–15 (4 bytes per column, the lane `vpdpbusd` sums), then of columns
/// 16–31; zero past input k (up to a multiple of `HD_INT8_DEPTH_STEP`) and past column n.
size_t hd_int8_packed_bytes(size_t n, size_t k);

/// Quantises and packs W `[n × k]`, given as its n rows as for `hd_pack_weights`, into
/// `hd_int8_packed_bytes(n, k)` bytes. Rounds to nearest even.
void hd_int8_pack_weights(const float *const *rows, size_t n, size_t k, void *packed);

/// Quantises the m rows of A (row stride `lda` floats) into `q` (row stride `ldq` ≥ k rounded up
/// to a multiple of `HD_INT8_DEPTH_STEP` bytes; the bytes past k up to it are z_r, i.e. 0),
/// `scales` (t_r) and `zero_points` (z_r): with lo = min(0, min A[r]), range = max(0, max A[r]) − lo, v = 255 / range (0 when the
/// range is 0), t_r = range / 255, z_r = round(−lo · v), u = clamp(round(A[r][i] · v) + z_r, 0, 255),
/// rounding to nearest even. Call only when `hd_avx512_vnni_supported()`.
void hd_int8_quantize_rows(size_t m, size_t k, const float *a, size_t lda, unsigned char *q, size_t ldq,
                           float *scales, int32_t *zero_points);

/// C[m × columns] = epilogue(…) for the panels `first_panel ..< end_panel`, as `hd_packed_gemm`,
/// from rows quantised by `hd_int8_quantize_rows` (`a`, row stride `lda` bytes, `row_scales`,
/// `row_zero_points`) and
/// weights packed by `hd_int8_pack_weights`. Between passes over the depth (1,024 inputs each) the
/// int32 sums wait in C's own memory. Call only when `hd_avx512_vnni_supported()`.
void hd_int8_gemm(size_t m, size_t n, size_t k, const unsigned char *a, size_t lda, const float *row_scales,
                  const int32_t *row_zero_points, const void *packed_weights, size_t first_panel, size_t end_panel,
                  float *c, size_t ldc, hd_epilogue epilogue, const float *bias);

/// The bf16 GEMM (AVX-512 BF16): C = epilogue(bf16(A) · bf16(W)ᵀ) with f32 accumulation
/// (`vdpbf16ps`). Panels of 32 output columns, each ⌈k / 32⌉ · 16 groups of 128 bytes: the inputs
/// 2g, 2g + 1 of columns 0–15 (one 32-bit lane per column), then of columns 16–31; zero past input
/// k (up to a multiple of `HD_BF16_DEPTH_STEP`) and past column n.
size_t hd_bf16_packed_bytes(size_t n, size_t k);

/// Converts W `[n × k]` (its n rows) to bf16, rounding to nearest even, and packs it into
/// `hd_bf16_packed_bytes(n, k)` bytes.
void hd_bf16_pack_weights(const float *const *rows, size_t n, size_t k, unsigned short *packed);

/// Converts W `[n × k]` to bf16 as `hd_bf16_convert_rows` does (`vcvtne2ps2bf16`) and packs it into
/// `hd_bf16_packed_bytes(n, k)` bytes, reading W[j][i] at `w[j·column_stride + i·input_stride]`,
/// one of the two strides 1 (as `hd_pack_weights_strided`): the training GEMM's right-hand operand
/// in bf16 (`GEMM` with `GEMMPrecision.bf16`), packed per call. Call only when
/// `hd_avx512_bf16_supported()`.
void hd_bf16_pack_weights_strided(const float *w, size_t n, size_t k, size_t column_stride, size_t input_stride,
                                  unsigned short *packed);

/// Converts the m rows of A (row stride `lda` floats) to bf16, rounding to nearest even
/// (`vcvtne2ps2bf16`, which reads subnormal inputs as zero), into `out` (row stride `ldo` ≥ k
/// rounded up to a multiple of `HD_BF16_DEPTH_STEP`; the values past k up to it are 0). Call only
/// when `hd_avx512_bf16_supported()`.
void hd_bf16_convert_rows(size_t m, size_t k, const float *a, size_t lda, unsigned short *out, size_t ldo);

/// A's m rows converted as `hd_bf16_convert_rows` converts them, into the layout the AMX tiles
/// load in one piece (`hd_bf16_gemm_tiled`): per block of 32 rows, per depth step of 32 values,
/// 1 KiB of rows 0–15 (64 bytes each) then 1 KiB of rows 16–31, so value i of row r is at
/// (r / 32) · steps · 1024 + (i / 32) · 1024 + (r mod 32) · 32 + i mod 32, with steps = ⌈k / 32⌉;
/// zeros past k up to a whole step (rows past m in the last block are not written).
/// `hd_bf16_tiled_values(m, k)` values. Call only when `hd_avx512_bf16_supported()`.
void hd_bf16_convert_tiles(size_t m, size_t k, const float *a, size_t lda, unsigned short *out);

/// Values of `hd_bf16_convert_tiles`' layout for m rows of k: whole 32-row blocks of whole steps.
size_t hd_bf16_tiled_values(size_t m, size_t k);

/// `hd_transpose` into `hd_bf16_convert_tiles`' layout: row (c − first_column) of the result holds
/// A[0 ..< rows][c] in bf16 (so k is `rows`), `out` pointing at the block that holds row 0 of the
/// result, first_column a multiple of 32 (a block's first row). The bf16 training GEMM's transposed
/// left-hand operand (dW = dYᵀ·X) in one pass instead of a transpose and a conversion. Call only
/// when `hd_avx512_bf16_supported()`.
void hd_bf16_transpose_tiles(const float *a, size_t rows, size_t columns, size_t lda, size_t first_column,
                             size_t end_column, unsigned short *out);

/// C[m × columns] = epilogue(A · Wᵀ) for the panels `first_panel ..< end_panel`, as
/// `hd_packed_gemm`, from rows converted by `hd_bf16_convert_rows` (row stride `lda` values) and
/// weights packed by `hd_bf16_pack_weights`. Call only when `hd_avx512_bf16_supported()`.
void hd_bf16_gemm(size_t m, size_t n, size_t k, const unsigned short *a, size_t lda, const unsigned short *packed_weights,
                  size_t first_panel, size_t end_panel, float *c, size_t ldc, hd_epilogue epilogue, const float *bias);

/// `hd_int8_gemm` on AMX tiles: the same arguments, the same floats out (the int32 sums are exact
/// either way, and dequantised and stored by the same arithmetic). Blocks of 32 rows × one panel,
/// the whole depth summed in the tiles. Call only when `hd_amx_int8_supported()`.
void hd_int8_gemm_tiles(size_t m, size_t n, size_t k, const unsigned char *a, size_t lda, const float *row_scales,
                        const int32_t *row_zero_points, const void *packed_weights, size_t first_panel, size_t end_panel,
                        float *c, size_t ldc, hd_epilogue epilogue, const float *bias);

/// `hd_bf16_gemm` on AMX tiles: the same arguments; the products of bf16 pairs are summed in f32,
/// in another order than `vdpbf16ps` sums them (so within the same bound of an exact product,
/// not bit for bit equal to it). With `accumulate`, the sums are added to what C holds (in f32,
/// once, as they are stored; the epilogue then applies to that), as `hd_packed_gemm`'s. Each output
/// is summed in the same order whatever rows and panels a call is given. Call only when
/// `hd_amx_bf16_supported()`.
void hd_bf16_gemm_tiles(size_t m, size_t n, size_t k, const unsigned short *a, size_t lda,
                        const unsigned short *packed_weights, size_t first_panel, size_t end_panel, float *c, size_t ldc,
                        int accumulate, hd_epilogue epilogue, const float *bias);

// MARK: softmax

/// In place, each of `rows` rows (stride `width`) becomes softmax(scale · row + mask row), as
/// `Kernels.softmaxRows` (e^x by the same polynomial, exactly 0 below −87.3 from the row's
/// maximum): `mask` (null for none) holds one row of additive values per `rows_per_mask`
/// consecutive rows — a sequence's key mask shared by its heads and queries. The attention's
/// 1/√(head size) is applied here because the packed GEMM that computes Q·Kᵀ has no α. Call only
/// when `hd_avx512f_supported()`.
void hd_softmax_rows(float *x, size_t rows, size_t width, float scale, const float *mask, size_t rows_per_mask);

/// One row of the softmax cross-entropy over `width` logits x (the masked-LM head's 30,522): returns
/// Σ_j e^(x_j − max) and writes max_j x_j to `row_max` (the caller forms log Z = max + log Σ). With a
/// `gradient` row (null for none), adds scale · softmax(x) to it — or, with `overwrite`, replaces it
/// with that, whatever it held — then subtracts `scale` at `label`. e^x by `FusedKernels.exp`'s
/// polynomial (tiny and positive below −87.3, as there), the sum in 16 lanes. The training loss's
/// vectorised path (`Losses.crossEntropy`); call only when `hd_avx512f_supported()`.
float hd_cross_entropy_row(const float *x, size_t width, size_t label, float scale, float *gradient, int overwrite,
                           float *row_max);

// MARK: GELU

/// out = GELU(x) = ½x(1 + erf(x/√2)) (the exact form, BERT's "gelu") over `count` floats, erf by
/// the same rational approximation as `FusedKernels.erf`. `out` may be `x`. Call only when
/// `hd_avx512f_supported()`.
void hd_gelu(const float *x, size_t count, float *out);

/// In place, gradient ← gradient ⊙ GELU'(x), GELU'(x) = Φ(x) + x·φ(x), over `count` floats (the
/// training backward of `hd_gelu`). Call only when `hd_avx512f_supported()`.
void hd_gelu_backward(float *gradient, const float *x, size_t count);

// MARK: FMA peak

/// FLOPs `hd_fma_peak` does per iteration: 12 FMAs of 16 lanes, 2 FLOPs each.
#define HD_FMA_PEAK_FLOPS_PER_ITERATION 384

/// Runs `iterations` × 12 independent AVX-512 FMAs with nothing else, for timing the core's peak
/// single-precision rate; returns a value derived from the results, so that the work is not
/// optimised away. Call only when `hd_avx512f_supported()`.
float hd_fma_peak(size_t iterations);

/// Integer operations `hd_vnni_peak` does per iteration: 12 `vpdpbusd` of 16 lanes × 4
/// multiply-adds, 2 operations each.
#define HD_VNNI_PEAK_OPS_PER_ITERATION 1536

/// As `hd_fma_peak`, with 12 independent chains of `vpdpbusd`: the int8 GEMM's ceiling. Call only
/// when `hd_avx512_vnni_supported()`.
int hd_vnni_peak(size_t iterations);

/// FLOPs `hd_bf16_peak` does per iteration: 12 `vdpbf16ps` of 16 lanes × 2 multiply-adds.
#define HD_BF16_PEAK_FLOPS_PER_ITERATION 768

/// As `hd_fma_peak`, with 12 independent chains of `vdpbf16ps`: the bf16 GEMM's ceiling. Call only
/// when `hd_avx512_bf16_supported()`.
float hd_bf16_peak(size_t iterations);

/// `hd_bf16_gemm_tiles` from rows in `hd_bf16_convert_tiles`' layout (`a_tiles` at the block of
/// row 0): the same sums in the same order, so the same floats; each tile load reads 1 KiB in one
/// piece instead of 16 rows a row stride apart (the training GEMM's, 13–35 % faster at its shapes
/// on one core). Call only when `hd_amx_bf16_supported()`.
void hd_bf16_gemm_tiled(size_t m, size_t n, size_t k, const unsigned short *a_tiles, const unsigned short *packed_weights,
                        size_t first_panel, size_t end_panel, float *c, size_t ldc, int accumulate, hd_epilogue epilogue,
                        const float *bias);

/// Operations `hd_int8_tiles_peak` / `hd_bf16_tiles_peak` do per iteration: 4 tile products of
/// 16 × 16 outputs over 64 int8 (32 bf16) inputs, 2 operations per multiply-add.
#define HD_INT8_TILES_PEAK_OPS_PER_ITERATION 131072
#define HD_BF16_TILES_PEAK_FLOPS_PER_ITERATION 65536

/// As `hd_vnni_peak` / `hd_bf16_peak`, on 4 independent tile accumulators (`tdpbusd` /
/// `tdpbf16ps`) with the operands already in tiles: the AMX GEMMs' ceiling. Call only when
/// `hd_amx_int8_supported()` (resp. `hd_amx_bf16_supported()`).
int hd_int8_tiles_peak(size_t iterations);
int hd_bf16_tiles_peak(size_t iterations);

#endif
