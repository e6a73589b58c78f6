#include "CRuntimeKernels.h"

#include <string.h>

/// Rows per register tile: 12 × 2 accumulators of 16 floats, two weight vectors, and the
/// broadcasts folded into the FMAs' memory operands fit the 32 ZMM registers.
#define TILE_ROWS HD_TILE_ROWS

/// Inputs per pass over a panel: 256 × 32 weights (32 KiB) stay in L1 while every row block of the
/// pass reads them. 128 and 256 timed alike at 128 rows; without the split (the whole k per pass)
/// a 3072-input panel spills to L2 and ran up to 14 % slower.
#define DEPTH 256

size_t hd_packed_weights_count(size_t n, size_t k) {
    return (n + HD_PACKED_PANEL - 1) / HD_PACKED_PANEL * k * HD_PACKED_PANEL;
}

void hd_pack_weights(const float *const *rows, size_t n, size_t k, float *packed) {
    size_t panels = (n + HD_PACKED_PANEL - 1) / HD_PACKED_PANEL;
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * k * HD_PACKED_PANEL;
        for (size_t j = 0; j < HD_PACKED_PANEL; j++) {
            size_t column = p * HD_PACKED_PANEL + j;
            for (size_t i = 0; i < k; i++) panel[i * HD_PACKED_PANEL + j] = column < n ? rows[column][i] : 0.0f;
        }
    }
}

void hd_pack_weights_strided(const float *w, size_t n, size_t k, size_t column_stride, size_t input_stride,
                             float *packed) {
    size_t panels = (n + HD_PACKED_PANEL - 1) / HD_PACKED_PANEL;
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * k * HD_PACKED_PANEL;
        size_t first = p * HD_PACKED_PANEL, width = n - first < HD_PACKED_PANEL ? n - first : HD_PACKED_PANEL;
        // Written in order, one panel row (32 columns of one input) at a time.
        for (size_t i = 0; i < k; i++) {
            const float *source = w + first * column_stride + i * input_stride;
            float *out = panel + i * HD_PACKED_PANEL;
            size_t j = 0;
            if (column_stride == 1) {
                memcpy(out, source, width * sizeof(float));
                j = width;
            }
            for (; j < width; j++) out[j] = source[j * column_stride];
            for (; j < HD_PACKED_PANEL; j++) out[j] = 0.0f;
        }
    }
}

#if defined(__x86_64__)
#include "Epilogue.h"

/// The loops over a tile's rows must be unrolled for its accumulators to live in registers; clang
/// does so by itself at -O3 but not at -O2, which SwiftPM's release builds use.
#define UNROLL _Pragma("clang loop unroll(full)")

/// C[ROWS × 32] (+)= A[ROWS × depth] · panel: the tile stays in registers over the depth and is
/// stored once, `mask0`/`mask1` selecting the columns that exist; `accumulate` adds to C instead of
/// overwriting it. A is read in place, A[r][i] at `a[r·rs + i·ds]`: each step broadcasts one input of
/// each of the ROWS rows. Row-major A (rs = lda, ds = 1): the ROWS cache lines a step touches serve
/// the next 15 steps too. (Packing A into 12-row blocks first, so that a step reads one line, timed
/// the same on AMD Zen 5 — 225–275 GFLOP/s either way, one core — and cost a copy of every input.)
/// Transposed A (rs = 1, ds = lda, the training backward's dW = dYᵀ·X): a step's ROWS inputs are
/// adjacent. `prefetch` is the next slice of weights: this tile fetches its rows `phase, phase +
/// stride, …` into L2 meanwhile (none when phase ≥ depth), so that the row blocks of a pass share
/// the fetching. The body is inlined into one function per row count and layout, with the strides
/// the layout fixes as constants, so each keeps its accumulators in registers.
#define DEFINE_TILE(ROWS)                                                                               \
    __attribute__((target("avx512f"), always_inline)) static inline void tile_body##ROWS(               \
        size_t depth, const float *a, size_t rs, size_t ds, const float *panel, float *c, size_t ldc,   \
        __mmask16 mask0, __mmask16 mask1, int accumulate, const float *prefetch, size_t phase,          \
        size_t stride) {                                                                                \
        __m512 acc0[ROWS], acc1[ROWS];                                                                  \
        UNROLL for (int r = 0; r < ROWS; r++) {                                                         \
            acc0[r] = accumulate ? _mm512_maskz_loadu_ps(mask0, c + r * ldc) : _mm512_setzero_ps();     \
            acc1[r] = accumulate ? _mm512_maskz_loadu_ps(mask1, c + r * ldc + 16) : _mm512_setzero_ps(); \
        }                                                                                               \
        for (size_t i = 0; i < depth; i++) {                                                            \
            __m512 w0 = _mm512_loadu_ps(panel + i * HD_PACKED_PANEL);                                   \
            __m512 w1 = _mm512_loadu_ps(panel + i * HD_PACKED_PANEL + 16);                              \
            if (phase == 0) {                                                                           \
                _mm_prefetch((const char *)(prefetch + i * HD_PACKED_PANEL), _MM_HINT_T1);              \
                _mm_prefetch((const char *)(prefetch + i * HD_PACKED_PANEL + 16), _MM_HINT_T1);         \
                phase = stride;                                                                         \
            }                                                                                           \
            phase--;                                                                                    \
            UNROLL for (int r = 0; r < ROWS; r++) {                                                     \
                __m512 x = _mm512_set1_ps(a[r * rs + i * ds]);                                          \
                acc0[r] = _mm512_fmadd_ps(x, w0, acc0[r]);                                              \
                acc1[r] = _mm512_fmadd_ps(x, w1, acc1[r]);                                              \
            }                                                                                           \
        }                                                                                               \
        UNROLL for (int r = 0; r < ROWS; r++) {                                                         \
            _mm512_mask_storeu_ps(c + r * ldc, mask0, acc0[r]);                                         \
            _mm512_mask_storeu_ps(c + r * ldc + 16, mask1, acc1[r]);                                    \
        }                                                                                               \
    }                                                                                                   \
    __attribute__((target("avx512f"))) static void tile##ROWS(                                          \
        size_t depth, const float *a, size_t lda, const float *panel, float *c, size_t ldc,             \
        __mmask16 mask0, __mmask16 mask1, int accumulate, const float *prefetch, size_t phase,          \
        size_t stride) {                                                                                \
        tile_body##ROWS(depth, a, lda, 1, panel, c, ldc, mask0, mask1, accumulate, prefetch, phase, stride); \
    }                                                                                                   \
    __attribute__((target("avx512f"))) static void tile_transposed##ROWS(                               \
        size_t depth, const float *a, size_t lda, const float *panel, float *c, size_t ldc,             \
        __mmask16 mask0, __mmask16 mask1, int accumulate, const float *prefetch, size_t phase,          \
        size_t stride) {                                                                                \
        tile_body##ROWS(depth, a, 1, lda, panel, c, ldc, mask0, mask1, accumulate, prefetch, phase, stride); \
    }

DEFINE_TILE(1) DEFINE_TILE(2) DEFINE_TILE(3) DEFINE_TILE(4) DEFINE_TILE(5) DEFINE_TILE(6)
DEFINE_TILE(7) DEFINE_TILE(8) DEFINE_TILE(9) DEFINE_TILE(10) DEFINE_TILE(11) DEFINE_TILE(12)

typedef void (*tile_function)(size_t, const float *, size_t, const float *, float *, size_t, __mmask16, __mmask16,
                              int, const float *, size_t, size_t);
static const tile_function tiles[TILE_ROWS + 1] = {
    0, tile1, tile2, tile3, tile4, tile5, tile6, tile7, tile8, tile9, tile10, tile11, tile12,
};
static const tile_function transposed_tiles[TILE_ROWS + 1] = {
    0,
    tile_transposed1,
    tile_transposed2,
    tile_transposed3,
    tile_transposed4,
    tile_transposed5,
    tile_transposed6,
    tile_transposed7,
    tile_transposed8,
    tile_transposed9,
    tile_transposed10,
    tile_transposed11,
    tile_transposed12,
};

void hd_packed_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, int a_transposed,
                    const float *packed_weights, size_t first_panel, size_t end_panel, float *c, size_t ldc,
                    int accumulate, hd_epilogue epilogue, const float *bias) {
    const tile_function *tile = a_transposed ? transposed_tiles : tiles;
    // Panel outer, then depth, then rows: a DEPTH × 32 slice of the panel stays in L1 while every
    // row block passes over it; the rows of A are read again per panel, from L2 or L3.
    for (size_t p = first_panel; p < end_panel && p * HD_PACKED_PANEL < n; p++) {
        size_t column = p * HD_PACKED_PANEL;
        size_t width = n - column < HD_PACKED_PANEL ? n - column : HD_PACKED_PANEL;
        __mmask16 mask0 = (__mmask16)(width >= 16 ? 0xFFFF : (1u << width) - 1);
        __mmask16 mask1 = (__mmask16)(width >= 32 ? 0xFFFF : width > 16 ? (1u << (width - 16)) - 1 : 0);
        // At least one pass, so that k = 0 stores zeros.
        size_t i = 0;
        do {
            size_t depth = k - i < DEPTH ? k - i : DEPTH;
            const float *slice = packed_weights + (p * k + i) * HD_PACKED_PANEL;
            // The weights are read in storage order, so the next slice follows this one; it comes
            // from memory (a model's weights do not fit in cache), so it is fetched while this one
            // is worked on from L1. Row block b fetches rows b, b + blocks, … of it: spread over the
            // pass, the fetches stay within the core's outstanding misses, where the first block
            // fetching them all stalled on them (BERT-base's 768 × 3072 product from memory: about
            // 10 % faster spread). Prefetching past the end is harmless.
            const float *next = slice + depth * HD_PACKED_PANEL;
            size_t blocks = (m + TILE_ROWS - 1) / TILE_ROWS;
            for (size_t r = 0; r < m; r += TILE_ROWS) {
                size_t rows = m - r < TILE_ROWS ? m - r : TILE_ROWS;
                const float *block = a_transposed ? a + i * lda + r : a + r * lda + i;
                tile[rows](depth, block, lda, slice, c + r * ldc + column, ldc, mask0, mask1, accumulate || i > 0,
                           next, r / TILE_ROWS, blocks);
                if (epilogue != HD_EPILOGUE_NONE && i + DEPTH >= k)
                    apply_epilogue(c + r * ldc + column, ldc, rows, mask0, mask1, epilogue, bias + column);
            }
            i += DEPTH;
        } while (i < k);
    }
}

#else

// Unreachable: callers check hd_avx512f_supported() first and use OpenBLAS here.
void hd_packed_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, int a_transposed,
                    const float *packed_weights, size_t first_panel, size_t end_panel, float *c, size_t ldc,
                    int accumulate, hd_epilogue epilogue, const float *bias) {
    __builtin_trap();
}

#endif
