#include "CRuntimeKernels.h"

#include <string.h>

// The int8 and bf16 GEMMs on AMX tiles: the same packed panels, converted rows and results as the
// AVX-512 kernels in QuantizedGEMM.c, with the products done by `tdpbusd` / `tdpbf16ps`, each of
// which multiplies a 16-row tile of A by a 16-column tile of W over 64 (int8) or 32 (bf16) inputs:
// 16,384 (8,192) multiply-adds, against 64 (32) for a `vpdpbusd` (`vdpbf16ps`). Measured peaks per
// core here (docs/PERFORMANCE.md): 8.1 TOP/s int8 and 4.1 TFLOP/s bf16 on the tiles, 8× and 35×
// the vector instructions' 1.0 TOP/s and 0.12 TFLOP/s.
//
// Eight tile registers: four accumulators C[32 rows × 32 columns] (rows 0–15 / 16–31 × the panel's
// columns 0–15 / 16–31), two of A (rows 0–15 and 16–31, one depth step) and two of W (the panel's
// two halves, the same step). The panel layout of QuantizedGEMM.c is already a W tile per step:
// the groups of 4 (int8) or 2 (bf16) inputs of columns 0–15 are 64 bytes, one tile row, and the
// next group's are 128 bytes on; the panels are padded with zero groups to whole steps. The
// accumulators hold the whole depth, so each output is summed once and stored once, dequantised
// (int8), with the bias / GELU epilogue, from a 4 KiB block on the stack.

#if defined(__x86_64__)
#include "Epilogue.h"

#define TILE_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,amx-tile,amx-int8,amx-bf16")))

/// Bytes between a panel's consecutive groups (as in QuantizedGEMM.c): columns 0–15, then 16–31.
#define GROUP_BYTES 128
/// Bytes of an int8 panel's header: 32 column scales, 32 column sums (QuantizedGEMM.c).
#define INT8_HEADER (2 * HD_PACKED_PANEL * 4)
/// Rows of one accumulator tile; a block is two of them.
#define TILE_ROWS 16

/// LDTILECFG's 64-byte operand, palette 1.
typedef struct {
    unsigned char palette, start_row, reserved[14];
    unsigned short bytes_per_row[16];
    unsigned char rows[16];
} tile_config;

/// Tiles 0–1 (C, top rows) and 4 (A, top rows) get `top` rows, 2–3 and 5 `bottom` (0: not
/// configured, not used), 6–7 (W) a whole step; every tile row is 64 bytes.
TILE_TARGET static void configure_tiles(size_t top, size_t bottom) {
    tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    const int top_tiles[] = {0, 1, 4}, bottom_tiles[] = {2, 3, 5};
    for (int i = 0; i < 3; i++) {
        config.rows[top_tiles[i]] = (unsigned char)top;
        config.bytes_per_row[top_tiles[i]] = 64;
        config.rows[bottom_tiles[i]] = (unsigned char)bottom;
        config.bytes_per_row[bottom_tiles[i]] = bottom ? 64 : 0;
    }
    for (int t = 6; t < 8; t++) {
        config.rows[t] = TILE_ROWS;
        config.bytes_per_row[t] = 64;
    }
    _tile_loadconfig(&config);
}

/// Where the rows of A lie, in bytes: row r of a 32-row block starts at `row`·(r mod 16), plus
/// `half` for rows 16–31; each depth step is `step` further on, each 32-row block `block`. Rows
/// in place (row stride lda): row lda, step 64, half 16·lda, block 32·lda. Tiles
/// (`hd_bf16_convert_tiles`): row 64, step 2 KiB, half 1 KiB, block steps · 2 KiB, so that each
/// tile load reads 1 KiB in one piece.
typedef struct {
    size_t row, step, half, block;
    /// Whether each step fetches the next one's rows ahead (`prefetch_step`): for the tiles'
    /// layout, where it pays; rows in place (the runtime's) ran slower with it (bf16 BERT-base
    /// 1 × 128: 17.7 against 15.5 ms).
    int prefetch;
} a_layout;

/// Brings the 32 rows of A's next depth step into L1 while this step's products run: the tile
/// loads of A (new rows for every block; a panel's W stays in L1 across the blocks) otherwise wait
/// on L2. 6–13 % faster at the training GEMM's shapes in the tiles' layout (one core, C
/// micro-benchmark; a BERT-base bf16 training step 2–3 %); harmless past the last step (a prefetch
/// never faults).
TILE_TARGET static inline void prefetch_step(const unsigned char *a, const a_layout *layout) {
    for (int r = 0; r < TILE_ROWS; r++) {
        _mm_prefetch((const char *)(a + r * layout->row), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + layout->half + r * layout->row), _MM_HINT_T0);
    }
}

/// The 32 × 32 block of int32 sums (or f32 for bf16) at rows `a` (`two`: 32 rows, else 16) of
/// one panel, over `steps` depth steps of one 64-byte tile row each, into `out` (row stride 32); A
/// as `layout` says.
#define DEFINE_BLOCK(NAME, PRODUCT, ELEMENT)                                                       \
    TILE_TARGET static void NAME(size_t steps, const unsigned char *a, const a_layout *layout,                  \
                                 const unsigned char *body, int two, ELEMENT *out) {                            \
        _tile_zero(0);                                                                                          \
        _tile_zero(1);                                                                                          \
        if (two) {                                                                                              \
            _tile_zero(2);                                                                                      \
            _tile_zero(3);                                                                                      \
            for (size_t s = 0; s < steps; s++) {                                                                \
                const unsigned char *w = body + s * TILE_ROWS * GROUP_BYTES;                                    \
                if (layout->prefetch) prefetch_step(a + (s + 1) * layout->step, layout);                        \
                _tile_loadd(4, a + s * layout->step, layout->row);                                              \
                _tile_loadd(6, w, GROUP_BYTES);                                                                 \
                _tile_loadd(7, w + 64, GROUP_BYTES);                                                            \
                _tile_loadd(5, a + layout->half + s * layout->step, layout->row);                               \
                PRODUCT(0, 4, 6);                                                                               \
                PRODUCT(1, 4, 7);                                                                               \
                PRODUCT(2, 5, 6);                                                                               \
                PRODUCT(3, 5, 7);                                                                               \
            }                                                                                                   \
            _tile_stored(2, out + TILE_ROWS * 32, 128);                                                         \
            _tile_stored(3, out + TILE_ROWS * 32 + 16, 128);                                                    \
        } else {                                                                                                \
            for (size_t s = 0; s < steps; s++) {                                                                \
                const unsigned char *w = body + s * TILE_ROWS * GROUP_BYTES;                                    \
                _tile_loadd(4, a + s * layout->step, layout->row);                                              \
                _tile_loadd(6, w, GROUP_BYTES);                                                                 \
                _tile_loadd(7, w + 64, GROUP_BYTES);                                                            \
                PRODUCT(0, 4, 6);                                                                               \
                PRODUCT(1, 4, 7);                                                                               \
            }                                                                                                   \
        }                                                                                                       \
        _tile_stored(0, out, 128);                                                                              \
        _tile_stored(1, out + 16, 128);                                                                         \
    }

DEFINE_BLOCK(int8_block, _tile_dpbusd, int32_t)
DEFINE_BLOCK(bf16_block, _tile_dpbf16ps, float)

static __mmask16 low_mask(size_t lanes) { return (__mmask16)(lanes >= 16 ? 0xFFFF : (1u << lanes) - 1); }

/// Stores rows × the panel's columns of one block: (sum − z_r · Σ q_w) · (s_j · t_r) for int8, as
/// the AVX-512 kernel computes it, so that both give the same floats; then the epilogue.
TILE_TARGET static void store_int8(const int32_t *sums, size_t rows, const unsigned char *header,
                                   const float *row_scales, const int32_t *zero_points, float *c, size_t ldc,
                                   __mmask16 mask0, __mmask16 mask1, hd_epilogue epilogue, const float *bias) {
    const float *scales = (const float *)header;
    const int32_t *column_sums = (const int32_t *)(header + INT8_HEADER / 2);
    __m512 s0 = _mm512_loadu_ps(scales), s1 = _mm512_loadu_ps(scales + 16);
    __m512i k0 = _mm512_loadu_si512(column_sums), k1 = _mm512_loadu_si512(column_sums + 16);
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    if (epilogue != HD_EPILOGUE_NONE) {
        b0 = _mm512_maskz_loadu_ps(mask0, bias);
        b1 = _mm512_maskz_loadu_ps(mask1, bias + 16);
    }
    for (size_t r = 0; r < rows; r++) {
        __m512 row = _mm512_set1_ps(row_scales[r]);
        __m512i z = _mm512_set1_epi32(zero_points[r]);
        __m512i c0 = _mm512_sub_epi32(_mm512_loadu_si512(sums + r * 32), _mm512_mullo_epi32(k0, z));
        __m512i c1 = _mm512_sub_epi32(_mm512_loadu_si512(sums + r * 32 + 16), _mm512_mullo_epi32(k1, z));
        __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(c0), _mm512_mul_ps(s0, row));
        __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(c1), _mm512_mul_ps(s1, row));
        if (epilogue != HD_EPILOGUE_NONE) {
            v0 = epilogue16(v0, b0, epilogue);
            v1 = epilogue16(v1, b1, epilogue);
        }
        _mm512_mask_storeu_ps(c + r * ldc, mask0, v0);
        _mm512_mask_storeu_ps(c + r * ldc + 16, mask1, v1);
    }
}

TILE_TARGET static void store_bf16(const float *sums, size_t rows, float *c, size_t ldc, __mmask16 mask0,
                                   __mmask16 mask1, int accumulate, hd_epilogue epilogue, const float *bias) {
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    if (epilogue != HD_EPILOGUE_NONE) {
        b0 = _mm512_maskz_loadu_ps(mask0, bias);
        b1 = _mm512_maskz_loadu_ps(mask1, bias + 16);
    }
    for (size_t r = 0; r < rows; r++) {
        __m512 v0 = _mm512_loadu_ps(sums + r * 32), v1 = _mm512_loadu_ps(sums + r * 32 + 16);
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(mask0, c + r * ldc));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(mask1, c + r * ldc + 16));
        }
        if (epilogue != HD_EPILOGUE_NONE) {
            v0 = epilogue16(v0, b0, epilogue);
            v1 = epilogue16(v1, b1, epilogue);
        }
        _mm512_mask_storeu_ps(c + r * ldc, mask0, v0);
        _mm512_mask_storeu_ps(c + r * ldc + 16, mask1, v1);
    }
}

/// One call's operands; `int8` says which of the two kinds `a` and `packed_weights` are.
typedef struct {
    int int8, accumulate;
    size_t m, n, k;
    const unsigned char *a;
    a_layout layout;
    const float *row_scales;
    const int32_t *row_zero_points;
    const unsigned char *packed_weights;
    float *c;
    size_t ldc;
    hd_epilogue epilogue;
    const float *bias;
} tile_gemm;

/// Rows `r ..< r + rows` (at most 32) × panel p.
TILE_TARGET static void run_block(const tile_gemm *g, size_t p, size_t r, size_t rows) {
    size_t column = p * HD_PACKED_PANEL, width = g->n - column < HD_PACKED_PANEL ? g->n - column : HD_PACKED_PANEL;
    __mmask16 mask0 = low_mask(width), mask1 = width > 16 ? low_mask(width - 16) : 0;
    const float *bias = g->bias ? g->bias + column : 0;
    const unsigned char *a = g->a + r / (2 * TILE_ROWS) * g->layout.block;
    float *c = g->c + r * g->ldc + column;
    // 4 KiB: the block's 32 × 32 sums, int32 or f32.
    int32_t sums[2 * TILE_ROWS * 32] __attribute__((aligned(64)));
    if (g->int8) {
        size_t steps = (g->k + HD_INT8_DEPTH_STEP - 1) / HD_INT8_DEPTH_STEP;
        const unsigned char *panel = g->packed_weights + p * hd_int8_packed_bytes(HD_PACKED_PANEL, g->k);
        int8_block(steps, a, &g->layout, panel + INT8_HEADER, rows > TILE_ROWS, sums);
        store_int8(sums, rows, panel, g->row_scales + r, g->row_zero_points + r, c, g->ldc, mask0, mask1, g->epilogue, bias);
    } else {
        size_t steps = (g->k + HD_BF16_DEPTH_STEP - 1) / HD_BF16_DEPTH_STEP;
        const unsigned char *panel = g->packed_weights + p * hd_bf16_packed_bytes(HD_PACKED_PANEL, g->k);
        bf16_block(steps, a, &g->layout, panel, rows > TILE_ROWS, (float *)sums);
        store_bf16((const float *)sums, rows, c, g->ldc, mask0, mask1, g->accumulate, g->epilogue, bias);
    }
}

/// The panels `first_panel ..< end_panel` over all m rows, in blocks of 32 rows, the rows
/// innermost (a panel's slice of W stays in L1 or L2 while the row blocks read it): the whole
/// blocks under one tile configuration, then the partial last block under its own (a
/// configuration fixes each tile's rows, and loading one costs about as much as a few products).
TILE_TARGET static void run_tiles(const tile_gemm *g, size_t first_panel, size_t end_panel) {
    size_t whole = g->m / (2 * TILE_ROWS) * (2 * TILE_ROWS), tail = g->m - whole;
    size_t end = (g->n + HD_PACKED_PANEL - 1) / HD_PACKED_PANEL;
    if (end_panel < end) end = end_panel;
    if (whole > 0) {
        configure_tiles(TILE_ROWS, TILE_ROWS);
        for (size_t p = first_panel; p < end; p++)
            for (size_t r = 0; r < whole; r += 2 * TILE_ROWS) run_block(g, p, r, 2 * TILE_ROWS);
    }
    if (tail > 0) {
        configure_tiles(tail < TILE_ROWS ? tail : TILE_ROWS, tail > TILE_ROWS ? tail - TILE_ROWS : 0);
        for (size_t p = first_panel; p < end; p++) run_block(g, p, whole, tail);
    }
    _tile_release();
}

void hd_int8_gemm_tiles(size_t m, size_t n, size_t k, const unsigned char *a, size_t lda, const float *row_scales,
                        const int32_t *row_zero_points, const void *packed_weights, size_t first_panel, size_t end_panel,
                        float *c, size_t ldc, hd_epilogue epilogue, const float *bias) {
    tile_gemm g = {1, 0, m, n, k, a, {lda, 64, TILE_ROWS * lda, 2 * TILE_ROWS * lda, 0}, row_scales, row_zero_points,
                   packed_weights, c, ldc, epilogue, bias};
    run_tiles(&g, first_panel, end_panel);
}

void hd_bf16_gemm_tiles(size_t m, size_t n, size_t k, const unsigned short *a, size_t lda,
                        const unsigned short *packed_weights, size_t first_panel, size_t end_panel, float *c, size_t ldc,
                        int accumulate, hd_epilogue epilogue, const float *bias) {
    size_t row = 2 * lda;
    tile_gemm g = {0, accumulate != 0, m, n, k, (const unsigned char *)a, {row, 64, TILE_ROWS * row, 2 * TILE_ROWS * row, 0},
                   0, 0, (const unsigned char *)packed_weights, c, ldc, epilogue, bias};
    run_tiles(&g, first_panel, end_panel);
}

void hd_bf16_gemm_tiled(size_t m, size_t n, size_t k, const unsigned short *a_tiles, const unsigned short *packed_weights,
                        size_t first_panel, size_t end_panel, float *c, size_t ldc, int accumulate, hd_epilogue epilogue,
                        const float *bias) {
    size_t steps = (k + HD_BF16_DEPTH_STEP - 1) / HD_BF16_DEPTH_STEP;
    tile_gemm g = {0, accumulate != 0, m, n, k, (const unsigned char *)a_tiles, {64, 2048, 1024, steps * 2048, 1},
                   0, 0, (const unsigned char *)packed_weights, c, ldc, epilogue, bias};
    run_tiles(&g, first_panel, end_panel);
}

/// Four independent accumulators, each step's operands already in tiles: the tile unit's issue
/// rate with no loads (`hd_fma_peak`'s counterpart).
#define DEFINE_PEAK(NAME, PRODUCT)                                                                              \
    TILE_TARGET int NAME(size_t iterations) {                                                                   \
        static const unsigned char zeros[TILE_ROWS * 64] __attribute__((aligned(64)));                          \
        int32_t out[TILE_ROWS * 16] __attribute__((aligned(64)));                                               \
        configure_tiles(TILE_ROWS, TILE_ROWS);                                                                  \
        _tile_zero(0);                                                                                          \
        _tile_zero(1);                                                                                          \
        _tile_zero(2);                                                                                          \
        _tile_zero(3);                                                                                          \
        _tile_loadd(4, zeros, 64);                                                                              \
        _tile_loadd(5, zeros, 64);                                                                              \
        _tile_loadd(6, zeros, 64);                                                                              \
        _tile_loadd(7, zeros, 64);                                                                              \
        for (size_t i = 0; i < iterations; i++) {                                                               \
            PRODUCT(0, 4, 6);                                                                                   \
            PRODUCT(1, 4, 7);                                                                                   \
            PRODUCT(2, 5, 6);                                                                                   \
            PRODUCT(3, 5, 7);                                                                                   \
        }                                                                                                       \
        _tile_stored(0, out, 64);                                                                               \
        _tile_release();                                                                                        \
        return out[0];                                                                                          \
    }

DEFINE_PEAK(hd_int8_tiles_peak, _tile_dpbusd)
DEFINE_PEAK(hd_bf16_tiles_peak, _tile_dpbf16ps)

#else

// Unreachable: callers check hd_amx_int8_supported() / hd_amx_bf16_supported() first.
void hd_int8_gemm_tiles(size_t m, size_t n, size_t k, const unsigned char *a, size_t lda, const float *row_scales,
                        const int32_t *row_zero_points, const void *packed_weights, size_t first_panel, size_t end_panel,
                        float *c, size_t ldc, hd_epilogue epilogue, const float *bias) {
    __builtin_trap();
}
void hd_bf16_gemm_tiles(size_t m, size_t n, size_t k, const unsigned short *a, size_t lda,
                        const unsigned short *packed_weights, size_t first_panel, size_t end_panel, float *c, size_t ldc,
                        int accumulate, hd_epilogue epilogue, const float *bias) {
    __builtin_trap();
}
void hd_bf16_gemm_tiled(size_t m, size_t n, size_t k, const unsigned short *a_tiles, const unsigned short *packed_weights,
                        size_t first_panel, size_t end_panel, float *c, size_t ldc, int accumulate, hd_epilogue epilogue,
                        const float *bias) {
    __builtin_trap();
}
int hd_int8_tiles_peak(size_t iterations) { __builtin_trap(); }
int hd_bf16_tiles_peak(size_t iterations) { __builtin_trap(); }

#endif
