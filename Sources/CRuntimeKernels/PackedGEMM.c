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

#if defined(__x86_64__)
#include "Epilogue.h"

/// The loops over a tile's rows must be unrolled for its accumulators to live in registers; clang
/// does so by itself at -O3 but not at -O2, which SwiftPM's release builds use.
#define UNROLL _Pragma("clang loop unroll(full)")

/// C[ROWS × 32] (+)= A[ROWS × depth] · panel: the tile stays in registers over the depth and is
/// stored once, `mask0`/`mask1` selecting the columns that exist; `accumulate` adds to C instead of
/// overwriting it. A is read in place, row r at `a + r·lda`: each step broadcasts one input of
/// each of the ROWS rows, and the ROWS cache lines a step touches serve the next 15 steps too.
/// (Packing A into 12-row blocks first, so that a step reads one line, timed the same on AMD
/// Zen 5 — 225–275 GFLOP/s either way, one core — and cost a copy of every input.) `prefetch` is
/// the next slice of weights: this tile fetches its rows `phase, phase + stride, …` into L2
/// meanwhile (none when phase ≥ depth), so that the row blocks of a pass share the fetching.
/// `epilogue` (with `bias` at the tile's first column) is applied to the accumulators before they
/// are stored: applied after, to C reloaded, each load waited on the masked store before it (the
/// MLM decoder's bias over 304 × 30,522 logits: 2.5 % of the step). One function per row count, so
/// each keeps its accumulators in registers.
#define DEFINE_TILE(ROWS)                                                                               \
    __attribute__((target("avx512f"))) static void tile##ROWS(                                          \
        size_t depth, const float *a, size_t lda, const float *panel, float *c, size_t ldc,             \
        __mmask16 mask0, __mmask16 mask1, int accumulate, const float *prefetch, size_t phase,          \
        size_t stride, hd_epilogue epilogue, const float *bias) {                                       \
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
                __m512 x = _mm512_set1_ps(a[r * lda + i]);                                              \
                acc0[r] = _mm512_fmadd_ps(x, w0, acc0[r]);                                              \
                acc1[r] = _mm512_fmadd_ps(x, w1, acc1[r]);                                              \
            }                                                                                           \
        }                                                                                               \
        if (epilogue != HD_EPILOGUE_NONE) {                                                             \
            __m512 b0 = _mm512_maskz_loadu_ps(mask0, bias), b1 = _mm512_maskz_loadu_ps(mask1, bias + 16); \
            if (epilogue == HD_EPILOGUE_BIAS) {                                                         \
                UNROLL for (int r = 0; r < ROWS; r++) {                                                 \
                    acc0[r] = _mm512_add_ps(acc0[r], b0);                                               \
                    acc1[r] = _mm512_add_ps(acc1[r], b1);                                               \
                }                                                                                       \
            } else {                                                                                    \
                UNROLL for (int r = 0; r < ROWS; r++) {                                                 \
                    acc0[r] = epilogue16(acc0[r], b0, epilogue);                                        \
                    acc1[r] = epilogue16(acc1[r], b1, epilogue);                                        \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
        UNROLL for (int r = 0; r < ROWS; r++) {                                                         \
            _mm512_mask_storeu_ps(c + r * ldc, mask0, acc0[r]);                                         \
            _mm512_mask_storeu_ps(c + r * ldc + 16, mask1, acc1[r]);                                    \
        }                                                                                               \
    }

DEFINE_TILE(1) DEFINE_TILE(2) DEFINE_TILE(3) DEFINE_TILE(4) DEFINE_TILE(5) DEFINE_TILE(6)
DEFINE_TILE(7) DEFINE_TILE(8) DEFINE_TILE(9) DEFINE_TILE(10) DEFINE_TILE(11) DEFINE_TILE(12)

/// out[j][i] = a[i][j] for a 16 × 16 block: 16 loads, four rounds of shuffles, 16 stores.
__attribute__((target("avx512f"))) static inline void transpose16(const float *a, size_t lda, float *out, size_t ldo) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(a + i * lda);
    // Pairs of rows interleaved by 32-bit lanes, then by 64-bit lanes, then 128-bit quarters twice.
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
        __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
            t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
        }
    }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(out + i * ldo, r[i]);
}

__attribute__((target("avx512f"))) void hd_pack_weights_strided(const float *w, size_t n, size_t k, size_t column_stride,
                                                               size_t input_stride, float *packed) {
    size_t panels = (n + HD_PACKED_PANEL - 1) / HD_PACKED_PANEL;
    if (input_stride == 1 && column_stride != 1) {
        // W's rows hold each column's inputs contiguously (a weight matrix read as op(B)ᵀ, K_h):
        // 16 columns × 16 inputs at a time, transposed in registers into half a panel's rows.
        // Element by element, at a stride of a whole row, this was most of the packing's time.
        for (size_t p = 0; p < panels; p++) {
            float *panel = packed + p * k * HD_PACKED_PANEL;
            for (size_t half = 0; half < 2; half++) {
                size_t c0 = p * HD_PACKED_PANEL + 16 * half, columns = c0 >= n ? 0 : n - c0 < 16 ? n - c0 : 16;
                size_t i = 0;
                if (columns == 16)
                    for (; i + 16 <= k; i += 16)
                        transpose16(w + c0 * column_stride + i, column_stride, panel + i * HD_PACKED_PANEL + 16 * half,
                                    HD_PACKED_PANEL);
                for (; i < k; i++)
                    for (size_t j = 0; j < 16; j++)
                        panel[i * HD_PACKED_PANEL + 16 * half + j] = j < columns ? w[(c0 + j) * column_stride + i] : 0.0f;
            }
        }
        return;
    }
    // Otherwise one input at a time across every panel, so that an input's columns (contiguous when
    // column_stride is 1: B read row by row) are read in order; panel by panel instead, each
    // input's 32 columns came from another row each time, and rows a kilobyte or more apart
    // outran the prefetchers.
    for (size_t i = 0; i < k; i++) {
        const float *source = w + i * input_stride;
        for (size_t p = 0; p < panels; p++) {
            float *out = packed + (p * k + i) * HD_PACKED_PANEL;
            size_t first = p * HD_PACKED_PANEL, width = n - first < HD_PACKED_PANEL ? n - first : HD_PACKED_PANEL;
            if (column_stride == 1) {
                __mmask16 mask0 = (__mmask16)(width >= 16 ? 0xFFFF : (1u << width) - 1);
                __mmask16 mask1 = (__mmask16)(width >= 32 ? 0xFFFF : width > 16 ? (1u << (width - 16)) - 1 : 0);
                _mm512_storeu_ps(out, _mm512_maskz_loadu_ps(mask0, source + first));
                _mm512_storeu_ps(out + 16, _mm512_maskz_loadu_ps(mask1, source + first + 16));
            } else {
                for (size_t j = 0; j < HD_PACKED_PANEL; j++) out[j] = j < width ? source[(first + j) * column_stride] : 0.0f;
            }
        }
    }
}

__attribute__((target("avx512f"))) void hd_transpose(const float *a, size_t rows, size_t columns, size_t lda,
                                                    size_t first_column, size_t end_column, float *out, float *sums) {
    size_t full_rows = rows - rows % 16;
    for (size_t c0 = first_column; c0 < end_column; c0 += 16) {
        size_t c1 = c0 + 16 < end_column ? c0 + 16 : end_column;
        float *o = out + (c0 - first_column) * rows;
        if (c1 - c0 == 16) {
            __m512 sum = sums ? _mm512_loadu_ps(sums + c0) : _mm512_setzero_ps();
            for (size_t r0 = 0; r0 < full_rows; r0 += 16) {
                transpose16(a + r0 * lda + c0, lda, o + r0, rows);
                // The rows just read are in L1: each column's sum takes them in order.
                if (sums)
                    for (size_t r = r0; r < r0 + 16; r++) sum = _mm512_add_ps(sum, _mm512_loadu_ps(a + r * lda + c0));
            }
            if (sums) _mm512_storeu_ps(sums + c0, sum);
        } else {
            for (size_t c = c0; c < c1; c++)
                for (size_t r = 0; r < full_rows; r++) {
                    o[(c - c0) * rows + r] = a[r * lda + c];
                    if (sums) sums[c] += a[r * lda + c];
                }
        }
        for (size_t c = c0; c < c1; c++)
            for (size_t r = full_rows; r < rows; r++) {
                o[(c - c0) * rows + r] = a[r * lda + c];
                if (sums) sums[c] += a[r * lda + c];
            }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void hd_bf16_transpose_tiles(
    const float *a, size_t rows, size_t columns, size_t lda, size_t first_column, size_t end_column, unsigned short *out) {
    size_t whole = rows - rows % 32, steps = (rows + 31) / 32;
    float block[2][16 * 16] __attribute__((aligned(64)));
    for (size_t c0 = first_column; c0 < end_column; c0 += 16) {
        size_t width = end_column - c0 < 16 ? end_column - c0 : 16;
        // Output row ρ = c − first_column: in 32-row block ρ / 32, at row ρ mod 32 of each step's
        // 1 KiB (`hd_bf16_convert_tiles`'s layout).
        size_t first = c0 - first_column;
        unsigned short *o = out + first / 32 * steps * 1024 + first % 32 * 32;
        size_t done = 0;
        if (width == 16) {
            // 32 rows × 16 columns: two 16 × 16 transposes, then each column's 32 values converted
            // at once into its output row's step.
            for (; done < whole; done += 32) {
                transpose16(a + done * lda + c0, lda, block[0], 16);
                transpose16(a + (done + 16) * lda + c0, lda, block[1], 16);
                for (size_t c = 0; c < 16; c++)
                    _mm512_storeu_si512(o + done / 32 * 1024 + c * 32,
                                        (__m512i)_mm512_cvtne2ps_pbh(_mm512_load_ps(block[1] + 16 * c), _mm512_load_ps(block[0] + 16 * c)));
            }
        }
        // The rest (a partial block of columns, rows past the last 32, zeros up to a whole tile
        // step) 32 values at a time through the same conversion, so that it rounds the same way.
        for (size_t c = 0; c < width; c++) {
            for (size_t r0 = done; r0 < steps * 32; r0 += 32) {
                for (size_t r = 0; r < 32; r++) block[0][r] = r0 + r < rows ? a[(r0 + r) * lda + c0 + c] : 0.0f;
                _mm512_storeu_si512(o + r0 / 32 * 1024 + c * 32,
                                    (__m512i)_mm512_cvtne2ps_pbh(_mm512_load_ps(block[0] + 16), _mm512_load_ps(block[0])));
            }
        }
    }
}

typedef void (*tile_function)(size_t, const float *, size_t, const float *, float *, size_t, __mmask16, __mmask16,
                              int, const float *, size_t, size_t, hd_epilogue, const float *);
static const tile_function tiles[TILE_ROWS + 1] = {
    0, tile1, tile2, tile3, tile4, tile5, tile6, tile7, tile8, tile9, tile10, tile11, tile12,
};

/// One depth slice (inputs i ..< i + DEPTH) of panel p over all m rows: the tiles add it to C (or
/// start C with it when i = 0 and not `accumulate`); on the last slice they apply the epilogue
/// before they store.
static void packed_slice(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed_weights,
                         size_t p, size_t i, float *c, size_t ldc, int accumulate, hd_epilogue epilogue,
                         const float *bias) {
    size_t column = p * HD_PACKED_PANEL;
    size_t width = n - column < HD_PACKED_PANEL ? n - column : HD_PACKED_PANEL;
    __mmask16 mask0 = (__mmask16)(width >= 16 ? 0xFFFF : (1u << width) - 1);
    __mmask16 mask1 = (__mmask16)(width >= 32 ? 0xFFFF : width > 16 ? (1u << (width - 16)) - 1 : 0);
    size_t depth = k - i < DEPTH ? k - i : DEPTH;
    const float *slice = packed_weights + (p * k + i) * HD_PACKED_PANEL;
    // The weights are read in storage order, so the next slice follows this one; it comes from
    // memory (a model's weights do not fit in cache), so it is fetched while this one is worked on
    // from L1. Row block b fetches rows b, b + blocks, … of it: spread over the pass, the fetches
    // stay within the core's outstanding misses, where the first block fetching them all stalled on
    // them (BERT-base's 768 × 3072 product from memory: about 10 % faster spread). Depth outer, the
    // panel's next slice comes after the other panels' slices, still from L2. Prefetching past the
    // end is harmless.
    const float *next = slice + depth * HD_PACKED_PANEL;
    size_t blocks = (m + TILE_ROWS - 1) / TILE_ROWS;
    int last = i + DEPTH >= k;
    for (size_t r = 0; r < m; r += TILE_ROWS) {
        size_t rows = m - r < TILE_ROWS ? m - r : TILE_ROWS;
        tiles[rows](depth, a + r * lda + i, lda, slice, c + r * ldc + column, ldc, mask0, mask1, accumulate || i > 0,
                    next, r / TILE_ROWS, blocks, last ? epilogue : HD_EPILOGUE_NONE, last ? bias + column : 0);
    }
}

void hd_packed_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed_weights,
                    size_t first_panel, size_t end_panel, float *c, size_t ldc, int accumulate, hd_epilogue epilogue,
                    const float *bias) {
    size_t panels = (n + HD_PACKED_PANEL - 1) / HD_PACKED_PANEL;
    if (end_panel > panels) end_panel = panels;
    // Usually panel outer, then depth, then rows: a DEPTH × 32 slice of the panel stays in L1 while
    // every row block passes over it, and the rows of A are read again per panel, from L2. When
    // those rows are too many for L2 (the MLM decoder's input gradient: 304 masked rows × 30,522
    // inputs, 37 MB), they would come from L3 or memory once per panel; depth goes outer then, so
    // that each slice of A is read once, from L2, by every panel. Each output is still summed slice
    // after slice in the same order: the same bits either way.
    int depth_outer = m * k > HD_DEPTH_OUTER_VALUES && end_panel > first_panel + 1;
    // At least one slice, so that k = 0 stores zeros.
    if (depth_outer) {
        size_t i = 0;
        do {
            for (size_t p = first_panel; p < end_panel; p++)
                packed_slice(m, n, k, a, lda, packed_weights, p, i, c, ldc, accumulate, epilogue, bias);
            i += DEPTH;
        } while (i < k);
    } else {
        for (size_t p = first_panel; p < end_panel; p++) {
            size_t i = 0;
            do {
                packed_slice(m, n, k, a, lda, packed_weights, p, i, c, ldc, accumulate, epilogue, bias);
                i += DEPTH;
            } while (i < k);
        }
    }
}

#else

// Unreachable: callers check hd_avx512f_supported() first and use OpenBLAS here.
void hd_pack_weights_strided(const float *w, size_t n, size_t k, size_t column_stride, size_t input_stride,
                             float *packed) {
    __builtin_trap();
}

void hd_transpose(const float *a, size_t rows, size_t columns, size_t lda, size_t first_column, size_t end_column,
                  float *out, float *sums) {
    __builtin_trap();
}

void hd_packed_gemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed_weights,
                    size_t first_panel, size_t end_panel, float *c, size_t ldc, int accumulate, hd_epilogue epilogue,
                    const float *bias) {
    __builtin_trap();
}

void hd_bf16_transpose_tiles(const float *a, size_t rows, size_t columns, size_t lda, size_t first_column,
                             size_t end_column, unsigned short *out) {
    __builtin_trap();
}

#endif
