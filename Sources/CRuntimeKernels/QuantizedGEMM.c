#include "CRuntimeKernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// The int8 (AVX-512 VNNI) and bf16 (AVX-512 BF16) packed GEMMs. Both keep the fp32 kernel's
// shape: panels of 32 output columns packed once at load, register tiles of up to 12 rows × 32
// columns, a pass over the depth in slices that stay in L1, the next slice prefetched while the
// row blocks work, and the bias / GELU applied by the shared epilogue to each tile just stored.
// What differs is the step: `vpdpbusd` adds 4 u8 × s8 products per 32-bit lane, `vdpbf16ps` 2
// bf16 × bf16 products, where `vfmadd` adds one f32 product; the weights' 4 (resp. 2) consecutive
// inputs of a column sit in one 32-bit lane, and one row's matching 4 (2) inputs are broadcast.

/// Bytes of one int8 panel's header: 32 column scales (float) and 32 column sums Σ q (int32).
#define INT8_HEADER (2 * HD_PACKED_PANEL * 4)

/// Bytes of one group of 4 inputs (int8) or 2 inputs (bf16) across a panel's 32 columns: two
/// 64-byte vectors, columns 0–15 then 16–31.
#define GROUP_BYTES 128

static size_t panels_of(size_t n) { return (n + HD_PACKED_PANEL - 1) / HD_PACKED_PANEL; }

/// Groups of 4 (int8) or 2 (bf16) inputs in a panel: k padded with zeros to whole tile steps
/// (TileGEMM.c), which the AVX-512 kernels skip.
static size_t int8_panel_groups(size_t k) { return (k + HD_INT8_DEPTH_STEP - 1) / HD_INT8_DEPTH_STEP * (HD_INT8_DEPTH_STEP / 4); }
static size_t bf16_panel_groups(size_t k) { return (k + HD_BF16_DEPTH_STEP - 1) / HD_BF16_DEPTH_STEP * (HD_BF16_DEPTH_STEP / 2); }

size_t hd_int8_packed_bytes(size_t n, size_t k) { return panels_of(n) * (INT8_HEADER + int8_panel_groups(k) * GROUP_BYTES); }

size_t hd_bf16_packed_bytes(size_t n, size_t k) { return panels_of(n) * (bf16_panel_groups(k) * GROUP_BYTES); }

size_t hd_bf16_tiled_values(size_t m, size_t k) {
    return (m + 31) / 32 * ((k + HD_BF16_DEPTH_STEP - 1) / HD_BF16_DEPTH_STEP) * 1024;
}

void hd_int8_pack_weights(const float *const *rows, size_t n, size_t k, void *packed) {
    size_t groups = int8_panel_groups(k), panel_bytes = INT8_HEADER + groups * GROUP_BYTES;
    for (size_t p = 0; p < panels_of(n); p++) {
        unsigned char *panel = (unsigned char *)packed + p * panel_bytes;
        float *scales = (float *)panel;
        int32_t *sums = (int32_t *)(panel + INT8_HEADER / 2);
        signed char *body = (signed char *)panel + INT8_HEADER;
        memset(body, 0, groups * GROUP_BYTES);
        for (size_t j = 0; j < HD_PACKED_PANEL; j++) {
            size_t column = p * HD_PACKED_PANEL + j;
            scales[j] = 0.0f;
            sums[j] = 0;
            if (column >= n) continue;
            const float *w = rows[column];
            float amax = 0.0f;
            for (size_t i = 0; i < k; i++) amax = fmaxf(amax, fabsf(w[i]));
            // Symmetric: w ≈ scale · q, q in −127 … 127 (−128 left out so that −q fits too).
            float inverse = amax > 0.0f ? 127.0f / amax : 0.0f;
            scales[j] = amax / 127.0f;
            int32_t sum = 0;
            for (size_t i = 0; i < k; i++) {
                float q = fminf(fmaxf(nearbyintf(w[i] * inverse), -127.0f), 127.0f);
                body[i / 4 * GROUP_BYTES + j * 4 + i % 4] = (signed char)q;
                sum += (int32_t)q;
            }
            // The inputs arrive as u8 = q_a + z (z the row's zero point), so each output carries
            // z · Σ q_w too much; the store takes it off.
            sums[j] = sum;
        }
    }
}

/// f32 → bf16, rounding to nearest even (NaN stays a quiet NaN).
static unsigned short bf16_of(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (unsigned short)((bits >> 16) | 0x40);
    return (unsigned short)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

void hd_bf16_pack_weights(const float *const *rows, size_t n, size_t k, unsigned short *packed) {
    size_t panel_values = bf16_panel_groups(k) * GROUP_BYTES / 2;
    for (size_t p = 0; p < panels_of(n); p++) {
        unsigned short *panel = packed + p * panel_values;
        memset(panel, 0, panel_values * 2);
        for (size_t j = 0; j < HD_PACKED_PANEL && p * HD_PACKED_PANEL + j < n; j++) {
            const float *w = rows[p * HD_PACKED_PANEL + j];
            for (size_t i = 0; i < k; i++) panel[i / 2 * (GROUP_BYTES / 2) + j * 2 + i % 2] = bf16_of(w[i]);
        }
    }
}

#if defined(__x86_64__)
#include "Epilogue.h"

#define UNROLL _Pragma("clang loop unroll(full)")
#define TILE_ROWS HD_TILE_ROWS

/// Groups per pass over a panel: 256 × 128 bytes (32 KiB, 1,024 int8 or 512 bf16 inputs) stay in
/// L1 while every row block of the pass reads them, the fp32 kernel's slice size.
#define GROUPS_PER_PASS 256

#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

static __mmask16 low_mask(size_t lanes) { return (__mmask16)(lanes >= 16 ? 0xFFFF : (1u << lanes) - 1); }

VNNI_TARGET void hd_int8_quantize_rows(size_t m, size_t k, const float *a, size_t lda, unsigned char *q, size_t ldq,
                                       float *scales, int32_t *zero_points) {
    size_t padded = (k + HD_INT8_DEPTH_STEP - 1) / HD_INT8_DEPTH_STEP * HD_INT8_DEPTH_STEP;
    for (size_t r = 0; r < m; r++) {
        const float *row = a + r * lda;
        // The range includes 0, so that 0 is exact (the padding) and the zero point is a u8.
        __m512 low = _mm512_setzero_ps(), high = _mm512_setzero_ps();
        for (size_t i = 0; i < k; i += 16) {
            __m512 x = _mm512_maskz_loadu_ps(low_mask(k - i), row + i);
            low = _mm512_min_ps(low, x);
            high = _mm512_max_ps(high, x);
        }
        float lo = _mm512_reduce_min_ps(low), range = _mm512_reduce_max_ps(high) - lo;
        // Per row, asymmetric over the row's own range: x ≈ scale · (u − z), u in 0 … 255
        // (vpdpbusd's unsigned operand). A layer's inputs are often one-sided (after GELU,
        // ≥ −0.17): a symmetric scale would leave half the codes unused.
        float inverse = range > 0.0f ? 255.0f / range : 0.0f;
        int32_t z = (int32_t)nearbyintf(-lo * inverse);
        scales[r] = range / 255.0f;
        zero_points[r] = z;
        const __m512 inv = _mm512_set1_ps(inverse);
        const __m512i zero_point = _mm512_set1_epi32(z);
        unsigned char *out = q + r * ldq;
        for (size_t i = 0; i < k; i += 16) {
            __mmask16 lanes = low_mask(k - i);
            // cvtps rounds to nearest even (the default MXCSR mode), as `nearbyintf` does.
            __m512i u = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, row + i), inv)), zero_point);
            u = _mm512_min_epi32(_mm512_max_epi32(u, _mm512_setzero_si512()), _mm512_set1_epi32(255));
            _mm_mask_storeu_epi8(out + i, lanes, _mm512_cvtepi32_epi8(u));
        }
        // The inputs past k up to a whole tile step meet zero weights; z stands for 0 all the same.
        for (size_t i = k; i < padded; i++) out[i] = (unsigned char)z;
    }
}

/// One row of k floats to bf16 in chunks of 32 values (one tile step), chunk s at `out` + s ·
/// `chunk_stride`, zeros past k up to a whole step.
BF16_TARGET static void convert_row(const float *row, size_t k, unsigned short *out, size_t chunk_stride) {
    for (size_t i = 0; i < k; i += 32) {
        __m512 lo = _mm512_maskz_loadu_ps(low_mask(k - i), row + i);
        __m512 hi = _mm512_maskz_loadu_ps(i + 16 < k ? low_mask(k - i - 16) : 0, row + i + 16);
        // Round to nearest even, as the weights were; past k up to a whole tile step, zeros.
        _mm512_storeu_si512(out + i / 32 * chunk_stride, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

BF16_TARGET void hd_bf16_convert_rows(size_t m, size_t k, const float *a, size_t lda, unsigned short *out, size_t ldo) {
    for (size_t r = 0; r < m; r++) convert_row(a + r * lda, k, out + r * ldo, 32);
}

BF16_TARGET void hd_bf16_convert_tiles(size_t m, size_t k, const float *a, size_t lda, unsigned short *out) {
    size_t steps = (k + HD_BF16_DEPTH_STEP - 1) / HD_BF16_DEPTH_STEP;
    for (size_t r = 0; r < m; r++) convert_row(a + r * lda, k, out + r / 32 * steps * 1024 + r % 32 * 32, 1024);
}

BF16_TARGET void hd_bf16_pack_weights_strided(const float *w, size_t n, size_t k, size_t column_stride,
                                              size_t input_stride, unsigned short *packed) {
    size_t groups = bf16_panel_groups(k), panel_values = groups * (GROUP_BYTES / 2);
    // Lane t of a converted pair of vectors (`vcvtne2ps2bf16`: the low operand's 16 values, then
    // the high one's) to lane 2t / 2t + 1: column t's inputs i and i + 1 side by side.
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    // The 16 pairs of one column converted at once land 32 lanes (one 128-byte group) apart.
    const __m512i group_lanes = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                   _mm512_set1_epi32(GROUP_BYTES / 4));
    if (input_stride == 1) {
        // Each column's inputs are contiguous: 32 of them become 16 pairs, one per group, put in
        // place by a scatter. A panel 32 inputs at a time (2 KiB of it, which stays in L1 while
        // its 32 columns are written), where a column at a time went over the whole panel again
        // for each column.
        for (size_t p = 0; p < panels_of(n); p++) {
            unsigned short *panel = packed + p * panel_values;
            size_t width = n - p * HD_PACKED_PANEL < HD_PACKED_PANEL ? n - p * HD_PACKED_PANEL : HD_PACKED_PANEL;
            if (width < HD_PACKED_PANEL) memset(panel, 0, panel_values * 2);
            for (size_t i = 0; i < groups * 2; i += 32) {
                __mmask16 lanes0 = i < k ? low_mask(k - i) : 0, lanes1 = i + 16 < k ? low_mask(k - i - 16) : 0;
                for (size_t j = 0; j < width; j++) {
                    const float *column = w + (p * HD_PACKED_PANEL + j) * column_stride;
                    __m512 lo = _mm512_maskz_loadu_ps(lanes0, column + i), hi = _mm512_maskz_loadu_ps(lanes1, column + i + 16);
                    __m512i pairs = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
                    _mm512_i32scatter_epi32(panel + i / 2 * (GROUP_BYTES / 2) + 2 * j, group_lanes, pairs, 4);
                }
            }
        }
        return;
    }
    // Each input's columns are contiguous (column_stride 1): a group is two rows' 32 values. A pair
    // of rows at a time across every panel, so that B is read in order (panel by panel, each row
    // came from another place each time and the prefetchers fell behind).
    for (size_t g = 0; g < groups; g++) {
        const float *first = w + 2 * g * input_stride, *second = first + input_stride;
        int has_first = 2 * g < k, has_second = 2 * g + 1 < k;
        for (size_t p = 0; p < panels_of(n); p++) {
            size_t width = n - p * HD_PACKED_PANEL < HD_PACKED_PANEL ? n - p * HD_PACKED_PANEL : HD_PACKED_PANEL;
            __mmask16 masks[2] = {low_mask(width), width > 16 ? low_mask(width - 16) : 0};
            for (int half = 0; half < 2; half++) {
                size_t column = p * HD_PACKED_PANEL + 16 * half;
                __m512 x0 = _mm512_maskz_loadu_ps(has_first ? masks[half] : 0, first + column);
                __m512 x1 = _mm512_maskz_loadu_ps(has_second ? masks[half] : 0, second + column);
                __m512i pairs = _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
                _mm512_storeu_si512(packed + p * panel_values + g * (GROUP_BYTES / 2) + 32 * half, pairs);
            }
        }
    }
}

/// The int8 tile: C[ROWS × 32] from `groups` groups of 4 inputs. Between passes the int32 sums are
/// kept in C's own memory (same size as the floats it will hold), so no scratch is needed; on the
/// last pass (`header` set) they become floats: (sum − z_r · Σ q_w) · row scale · column scale.
#define DEFINE_INT8_TILE(ROWS)                                                                                   \
    VNNI_TARGET static void int8_tile##ROWS(size_t groups, const unsigned char *a, size_t lda,                  \
                                            const signed char *body, float *c, size_t ldc, __mmask16 mask0,     \
                                            __mmask16 mask1, int accumulate, const unsigned char *header,       \
                                            const float *row_scales, const int32_t *zero_points,                \
                                            const signed char *prefetch, size_t phase,                          \
                                            size_t stride) {                                                    \
        __m512i acc0[ROWS], acc1[ROWS];                                                                         \
        UNROLL for (int r = 0; r < ROWS; r++) {                                                                 \
            acc0[r] = accumulate ? _mm512_maskz_loadu_epi32(mask0, c + r * ldc) : _mm512_setzero_si512();       \
            acc1[r] = accumulate ? _mm512_maskz_loadu_epi32(mask1, c + r * ldc + 16) : _mm512_setzero_si512();  \
        }                                                                                                       \
        for (size_t g = 0; g < groups; g++) {                                                                   \
            __m512i w0 = _mm512_loadu_si512(body + g * GROUP_BYTES);                                            \
            __m512i w1 = _mm512_loadu_si512(body + g * GROUP_BYTES + 64);                                       \
            if (phase == 0) {                                                                                   \
                _mm_prefetch((const char *)(prefetch + g * GROUP_BYTES), _MM_HINT_T1);                          \
                _mm_prefetch((const char *)(prefetch + g * GROUP_BYTES + 64), _MM_HINT_T1);                     \
                phase = stride;                                                                                 \
            }                                                                                                   \
            phase--;                                                                                            \
            UNROLL for (int r = 0; r < ROWS; r++) {                                                             \
                int32_t four;                                                                                   \
                memcpy(&four, a + r * lda + 4 * g, 4);                                                          \
                __m512i x = _mm512_set1_epi32(four);                                                            \
                acc0[r] = _mm512_dpbusd_epi32(acc0[r], x, w0);                                                  \
                acc1[r] = _mm512_dpbusd_epi32(acc1[r], x, w1);                                                  \
            }                                                                                                   \
        }                                                                                                       \
        if (!header) {                                                                                          \
            UNROLL for (int r = 0; r < ROWS; r++) {                                                             \
                _mm512_mask_storeu_epi32(c + r * ldc, mask0, acc0[r]);                                          \
                _mm512_mask_storeu_epi32(c + r * ldc + 16, mask1, acc1[r]);                                     \
            }                                                                                                   \
            return;                                                                                             \
        }                                                                                                       \
        const float *scales = (const float *)header;                                                            \
        const int32_t *sums = (const int32_t *)(header + INT8_HEADER / 2);                                      \
        __m512 s0 = _mm512_loadu_ps(scales), s1 = _mm512_loadu_ps(scales + 16);                                 \
        __m512i k0 = _mm512_loadu_si512(sums), k1 = _mm512_loadu_si512(sums + 16);                              \
        UNROLL for (int r = 0; r < ROWS; r++) {                                                                 \
            __m512 row = _mm512_set1_ps(row_scales[r]);                                                         \
            __m512i z = _mm512_set1_epi32(zero_points[r]);                                                      \
            __m512i c0 = _mm512_sub_epi32(acc0[r], _mm512_mullo_epi32(k0, z));                                  \
            __m512i c1 = _mm512_sub_epi32(acc1[r], _mm512_mullo_epi32(k1, z));                                  \
            __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(c0), _mm512_mul_ps(s0, row));                          \
            __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(c1), _mm512_mul_ps(s1, row));                          \
            _mm512_mask_storeu_ps(c + r * ldc, mask0, v0);                                                      \
            _mm512_mask_storeu_ps(c + r * ldc + 16, mask1, v1);                                                 \
        }                                                                                                       \
    }

/// The bf16 tile: C[ROWS × 32] (+)= A · panel over `groups` pairs of inputs, f32 accumulation, kept
/// in C between passes as the fp32 kernel does.
#define DEFINE_BF16_TILE(ROWS)                                                                                   \
    BF16_TARGET static void bf16_tile##ROWS(size_t groups, const unsigned short *a, size_t lda,                 \
                                            const unsigned short *body, float *c, size_t ldc, __mmask16 mask0,  \
                                            __mmask16 mask1, int accumulate, const unsigned short *prefetch,    \
                                            size_t phase, size_t stride) {                                      \
        __m512 acc0[ROWS], acc1[ROWS];                                                                          \
        UNROLL for (int r = 0; r < ROWS; r++) {                                                                 \
            acc0[r] = accumulate ? _mm512_maskz_loadu_ps(mask0, c + r * ldc) : _mm512_setzero_ps();             \
            acc1[r] = accumulate ? _mm512_maskz_loadu_ps(mask1, c + r * ldc + 16) : _mm512_setzero_ps();        \
        }                                                                                                       \
        for (size_t g = 0; g < groups; g++) {                                                                   \
            __m512bh w0 = (__m512bh)_mm512_loadu_si512(body + g * (GROUP_BYTES / 2));                           \
            __m512bh w1 = (__m512bh)_mm512_loadu_si512(body + g * (GROUP_BYTES / 2) + 32);                      \
            if (phase == 0) {                                                                                   \
                _mm_prefetch((const char *)(prefetch + g * (GROUP_BYTES / 2)), _MM_HINT_T1);                    \
                _mm_prefetch((const char *)(prefetch + g * (GROUP_BYTES / 2) + 32), _MM_HINT_T1);               \
                phase = stride;                                                                                 \
            }                                                                                                   \
            phase--;                                                                                            \
            UNROLL for (int r = 0; r < ROWS; r++) {                                                             \
                int32_t two;                                                                                    \
                memcpy(&two, a + r * lda + 2 * g, 4);                                                           \
                __m512bh x = (__m512bh)_mm512_set1_epi32(two);                                                  \
                acc0[r] = _mm512_dpbf16_ps(acc0[r], x, w0);                                                     \
                acc1[r] = _mm512_dpbf16_ps(acc1[r], x, w1);                                                     \
            }                                                                                                   \
        }                                                                                                       \
        UNROLL for (int r = 0; r < ROWS; r++) {                                                                 \
            _mm512_mask_storeu_ps(c + r * ldc, mask0, acc0[r]);                                                 \
            _mm512_mask_storeu_ps(c + r * ldc + 16, mask1, acc1[r]);                                            \
        }                                                                                                       \
    }

DEFINE_INT8_TILE(1) DEFINE_INT8_TILE(2) DEFINE_INT8_TILE(3) DEFINE_INT8_TILE(4) DEFINE_INT8_TILE(5)
DEFINE_INT8_TILE(6) DEFINE_INT8_TILE(7) DEFINE_INT8_TILE(8) DEFINE_INT8_TILE(9) DEFINE_INT8_TILE(10)
DEFINE_INT8_TILE(11) DEFINE_INT8_TILE(12)
DEFINE_BF16_TILE(1) DEFINE_BF16_TILE(2) DEFINE_BF16_TILE(3) DEFINE_BF16_TILE(4) DEFINE_BF16_TILE(5)
DEFINE_BF16_TILE(6) DEFINE_BF16_TILE(7) DEFINE_BF16_TILE(8) DEFINE_BF16_TILE(9) DEFINE_BF16_TILE(10)
DEFINE_BF16_TILE(11) DEFINE_BF16_TILE(12)

typedef void (*int8_tile_function)(size_t, const unsigned char *, size_t, const signed char *, float *, size_t,
                                   __mmask16, __mmask16, int, const unsigned char *, const float *, const int32_t *,
                                   const signed char *, size_t, size_t);
static const int8_tile_function int8_tiles[TILE_ROWS + 1] = {
    0, int8_tile1, int8_tile2, int8_tile3, int8_tile4, int8_tile5, int8_tile6,
    int8_tile7, int8_tile8, int8_tile9, int8_tile10, int8_tile11, int8_tile12,
};
typedef void (*bf16_tile_function)(size_t, const unsigned short *, size_t, const unsigned short *, float *, size_t,
                                   __mmask16, __mmask16, int, const unsigned short *, size_t, size_t);
static const bf16_tile_function bf16_tiles[TILE_ROWS + 1] = {
    0, bf16_tile1, bf16_tile2, bf16_tile3, bf16_tile4, bf16_tile5, bf16_tile6,
    bf16_tile7, bf16_tile8, bf16_tile9, bf16_tile10, bf16_tile11, bf16_tile12,
};

/// The column masks of panel p, and its width.
static size_t panel_masks(size_t n, size_t p, __mmask16 *mask0, __mmask16 *mask1) {
    size_t column = p * HD_PACKED_PANEL, width = n - column < HD_PACKED_PANEL ? n - column : HD_PACKED_PANEL;
    *mask0 = low_mask(width);
    *mask1 = width > 16 ? low_mask(width - 16) : 0;
    return width;
}

void hd_int8_gemm(size_t m, size_t n, size_t k, const unsigned char *a, size_t lda, const float *row_scales,
                  const int32_t *row_zero_points, const void *packed_weights, size_t first_panel, size_t end_panel,
                  float *c, size_t ldc, hd_epilogue epilogue, const float *bias) {
    size_t groups = (k + 3) / 4, panel_bytes = INT8_HEADER + int8_panel_groups(k) * GROUP_BYTES;
    // Loop order and prefetching as in `hd_packed_gemm`: panel, then slice of the depth, then rows.
    for (size_t p = first_panel; p < end_panel && p * HD_PACKED_PANEL < n; p++) {
        size_t column = p * HD_PACKED_PANEL;
        __mmask16 mask0, mask1;
        panel_masks(n, p, &mask0, &mask1);
        const unsigned char *header = (const unsigned char *)packed_weights + p * panel_bytes;
        const signed char *body = (const signed char *)header + INT8_HEADER;
        size_t g = 0;
        do {
            size_t depth = groups - g < GROUPS_PER_PASS ? groups - g : GROUPS_PER_PASS;
            int last = g + GROUPS_PER_PASS >= groups;
            const signed char *slice = body + g * GROUP_BYTES, *next = slice + depth * GROUP_BYTES;
            size_t blocks = (m + TILE_ROWS - 1) / TILE_ROWS;
            for (size_t r = 0; r < m; r += TILE_ROWS) {
                size_t rows = m - r < TILE_ROWS ? m - r : TILE_ROWS;
                int8_tiles[rows](depth, a + r * lda + 4 * g, lda, slice, c + r * ldc + column, ldc, mask0, mask1, g > 0,
                                 last ? header : 0, row_scales + r, row_zero_points + r, next, r / TILE_ROWS, blocks);
                if (last && epilogue != HD_EPILOGUE_NONE)
                    apply_epilogue(c + r * ldc + column, ldc, rows, mask0, mask1, epilogue, bias + column);
            }
            g += GROUPS_PER_PASS;
        } while (g < groups);
    }
}

void hd_bf16_gemm(size_t m, size_t n, size_t k, const unsigned short *a, size_t lda, const unsigned short *packed_weights,
                  size_t first_panel, size_t end_panel, float *c, size_t ldc, hd_epilogue epilogue, const float *bias) {
    size_t groups = (k + 1) / 2, panel_values = bf16_panel_groups(k) * (GROUP_BYTES / 2);
    for (size_t p = first_panel; p < end_panel && p * HD_PACKED_PANEL < n; p++) {
        size_t column = p * HD_PACKED_PANEL;
        __mmask16 mask0, mask1;
        panel_masks(n, p, &mask0, &mask1);
        const unsigned short *body = packed_weights + p * panel_values;
        size_t g = 0;
        do {
            size_t depth = groups - g < GROUPS_PER_PASS ? groups - g : GROUPS_PER_PASS;
            const unsigned short *slice = body + g * (GROUP_BYTES / 2), *next = slice + depth * (GROUP_BYTES / 2);
            size_t blocks = (m + TILE_ROWS - 1) / TILE_ROWS;
            for (size_t r = 0; r < m; r += TILE_ROWS) {
                size_t rows = m - r < TILE_ROWS ? m - r : TILE_ROWS;
                bf16_tiles[rows](depth, a + r * lda + 2 * g, lda, slice, c + r * ldc + column, ldc, mask0, mask1, g > 0,
                                 next, r / TILE_ROWS, blocks);
                if (epilogue != HD_EPILOGUE_NONE && g + GROUPS_PER_PASS >= groups)
                    apply_epilogue(c + r * ldc + column, ldc, rows, mask0, mask1, epilogue, bias + column);
            }
            g += GROUPS_PER_PASS;
        } while (g < groups);
    }
}

#else

// Unreachable: callers check hd_avx512_vnni_supported() / hd_avx512_bf16_supported() first.
void hd_int8_quantize_rows(size_t m, size_t k, const float *a, size_t lda, unsigned char *q, size_t ldq, float *scales,
                           int32_t *zero_points) {
    __builtin_trap();
}
void hd_bf16_convert_rows(size_t m, size_t k, const float *a, size_t lda, unsigned short *out, size_t ldo) {
    __builtin_trap();
}
void hd_bf16_convert_tiles(size_t m, size_t k, const float *a, size_t lda, unsigned short *out) {
    __builtin_trap();
}
void hd_int8_gemm(size_t m, size_t n, size_t k, const unsigned char *a, size_t lda, const float *row_scales,
                  const int32_t *row_zero_points, const void *packed_weights, size_t first_panel, size_t end_panel,
                  float *c, size_t ldc, hd_epilogue epilogue, const float *bias) {
    __builtin_trap();
}
void hd_bf16_gemm(size_t m, size_t n, size_t k, const unsigned short *a, size_t lda, const unsigned short *packed_weights,
                  size_t first_panel, size_t end_panel, float *c, size_t ldc, hd_epilogue epilogue, const float *bias) {
    __builtin_trap();
}
void hd_bf16_pack_weights_strided(const float *w, size_t n, size_t k, size_t column_stride, size_t input_stride,
                                  unsigned short *packed) {
    __builtin_trap();
}

#endif
