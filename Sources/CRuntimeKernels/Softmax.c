#include "CRuntimeKernels.h"

#if defined(__x86_64__)
#include "VectorMath.h"

__attribute__((target("avx512f"))) void hd_softmax_rows(float *x, size_t rows, size_t width, float scale,
                                                       const float *mask, size_t rows_per_mask) {
    const __m512 factor = _mm512_set1_ps(scale), floor = _mm512_set1_ps(-87.3f);
    size_t body = width - width % 16;
    // The lanes of the last, partial vector of a row.
    __mmask16 tail = (__mmask16)((1u << (width % 16)) - 1);
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * width;
        const float *m = mask ? mask + r / rows_per_mask * width : 0;
        // scale · x + mask, stored back, and its maximum.
        __m512 top = _mm512_set1_ps(-__builtin_inff());
        for (size_t j = 0; j <= body; j += 16) {
            __mmask16 lanes = j < body ? (__mmask16)0xFFFF : tail;
            if (!lanes) break;
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, row + j), factor);
            if (m) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, m + j));
            _mm512_mask_storeu_ps(row + j, lanes, v);
            top = _mm512_mask_max_ps(top, lanes, top, v);
        }
        __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(top));

        // e^(v − max), exactly 0 below −87.3 (a masked key gets no weight and no gradient, as libm's
        // e^x underflows to 0; the polynomial would give a tiny positive number).
        __m512 sum = _mm512_setzero_ps();
        for (size_t j = 0; j <= body; j += 16) {
            __mmask16 lanes = j < body ? (__mmask16)0xFFFF : tail;
            if (!lanes) break;
            __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, row + j), max);
            __m512 e = _mm512_maskz_mov_ps(_mm512_mask_cmp_ps_mask(lanes, d, floor, _CMP_GE_OQ), exp16(d));
            _mm512_mask_storeu_ps(row + j, lanes, e);
            sum = _mm512_add_ps(sum, e);
        }

        __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (size_t j = 0; j <= body; j += 16) {
            __mmask16 lanes = j < body ? (__mmask16)0xFFFF : tail;
            if (!lanes) break;
            _mm512_mask_storeu_ps(row + j, lanes, _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, row + j), inverse));
        }
    }
}

__attribute__((target("avx512f"))) float hd_cross_entropy_row(const float *x, size_t width, size_t label, float scale,
                                                              float *gradient, int overwrite, float *row_max) {
    size_t body = width - width % 16;
    __mmask16 tail = (__mmask16)((1u << (width % 16)) - 1);
    __m512 top = _mm512_set1_ps(-__builtin_inff());
    for (size_t j = 0; j <= body; j += 16) {
        __mmask16 lanes = j < body ? (__mmask16)0xFFFF : tail;
        if (!lanes) break;
        top = _mm512_mask_max_ps(top, lanes, top, _mm512_maskz_loadu_ps(lanes, x + j));
    }
    float top_value = _mm512_reduce_max_ps(top);
    *row_max = top_value;
    const __m512 max = _mm512_set1_ps(top_value);
    // Σ e^(x − max); `overwrite` keeps the exponentials in the gradient row for the scaling pass.
    __m512 sum = _mm512_setzero_ps();
    for (size_t j = 0; j <= body; j += 16) {
        __mmask16 lanes = j < body ? (__mmask16)0xFFFF : tail;
        if (!lanes) break;
        __m512 e = _mm512_maskz_mov_ps(lanes, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, x + j), max)));
        if (gradient && overwrite) _mm512_mask_storeu_ps(gradient + j, lanes, e);
        sum = _mm512_add_ps(sum, e);
    }
    float total = _mm512_reduce_add_ps(sum);
    if (!gradient) return total;
    const __m512 factor = _mm512_set1_ps(scale / total);
    for (size_t j = 0; j <= body; j += 16) {
        __mmask16 lanes = j < body ? (__mmask16)0xFFFF : tail;
        if (!lanes) break;
        __m512 g = _mm512_maskz_loadu_ps(lanes, gradient + j);
        if (overwrite) {
            g = _mm512_mul_ps(g, factor);
        } else {
            __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, x + j), max));
            g = _mm512_add_ps(g, _mm512_mul_ps(factor, e));
        }
        _mm512_mask_storeu_ps(gradient + j, lanes, g);
    }
    gradient[label] -= scale;
    return total;
}

#else

// Unreachable: callers check hd_avx512f_supported() first and use the Swift softmax here.
void hd_softmax_rows(float *x, size_t rows, size_t width, float scale, const float *mask, size_t rows_per_mask) {
    __builtin_trap();
}
float hd_cross_entropy_row(const float *x, size_t width, size_t label, float scale, float *gradient, int overwrite,
                           float *row_max) {
    __builtin_trap();
}

#endif
