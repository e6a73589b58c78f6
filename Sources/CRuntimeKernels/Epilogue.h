#ifndef HOMODISTIL_EPILOGUE_H
#define HOMODISTIL_EPILOGUE_H

// The element-wise work the packed GEMMs (fp32, bf16, int8) apply to their sums: the fp32 tiles to
// their accumulators before they store them, the others to a tile just stored, still in L1. One
// definition, so the three precisions' epilogues are the same function.

#include "CRuntimeKernels.h"
#include "VectorMath.h"

/// The epilogue of one output vector (`bias` already loaded).
__attribute__((target("avx512f"))) static inline __m512 epilogue16(__m512 v, __m512 bias, hd_epilogue epilogue) {
    v = _mm512_add_ps(v, bias);
    const __m512 half = _mm512_set1_ps(0.5f);
    switch (epilogue) {
    case HD_EPILOGUE_BIAS_GELU:
        // 0.5 · v · (1 + erf(v / √2))
        return _mm512_mul_ps(_mm512_mul_ps(half, v),
                             _mm512_add_ps(_mm512_set1_ps(1.0f), erf16(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752440f)))));
    case HD_EPILOGUE_BIAS_GELU_TANH: {
        // 0.5 · v · (1 + tanh(y)), y = √(2/π) · (v + 0.044715 v³), tanh(y) = 1 − 2 / (e^{2y} + 1)
        __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
        __m512 y = _mm512_mul_ps(_mm512_set1_ps(0.79788456080286535588f), _mm512_fmadd_ps(v3, _mm512_set1_ps(0.044715f), v));
        __m512 e = _mm512_add_ps(exp16(_mm512_add_ps(y, y)), _mm512_set1_ps(1.0f));
        __m512 tanh1 = _mm512_sub_ps(_mm512_set1_ps(2.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), e));
        return _mm512_mul_ps(_mm512_mul_ps(half, v), tanh1);
    }
    default: return v;
    }
}

/// Applies `epilogue` to C[rows × 32] (the columns in `mask0`/`mask1`), just stored by a tile and
/// still in L1; `bias` points at the tile's first column.
__attribute__((target("avx512f"))) static inline void apply_epilogue(float *c, size_t ldc, size_t rows, __mmask16 mask0,
                                                              __mmask16 mask1, hd_epilogue epilogue, const float *bias) {
    __m512 b0 = _mm512_maskz_loadu_ps(mask0, bias), b1 = _mm512_maskz_loadu_ps(mask1, bias + 16);
    for (size_t r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        _mm512_mask_storeu_ps(row, mask0, epilogue16(_mm512_maskz_loadu_ps(mask0, row), b0, epilogue));
        _mm512_mask_storeu_ps(row + 16, mask1, epilogue16(_mm512_maskz_loadu_ps(mask1, row + 16), b1, epilogue));
    }
}

#endif
