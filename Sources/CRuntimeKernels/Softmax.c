#include "CRuntimeKernels.h"

#if defined(__x86_64__)
#include "VectorMath.h"

__attribute__((target("avx512f"))) void hd_softmax_rows(float *x, size_t rows, size_t width, float scale) {
    const __m512 factor = _mm512_set1_ps(scale);
    size_t body = width - width % 16;
    // The lanes of the last, partial vector of a row.
    __mmask16 tail = (__mmask16)((1u << (width % 16)) - 1);
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * width;
        __m512 top = _mm512_set1_ps(-__builtin_inff());
        for (size_t j = 0; j < body; j += 16) top = _mm512_max_ps(top, _mm512_loadu_ps(row + j));
        top = _mm512_mask_max_ps(top, tail, top, _mm512_maskz_loadu_ps(tail, row + body));
        __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(top));

        __m512 sum = _mm512_setzero_ps();
        for (size_t j = 0; j < body; j += 16) {
            __m512 e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(row + j), max), factor));
            _mm512_storeu_ps(row + j, e);
            sum = _mm512_add_ps(sum, e);
        }
        __m512 e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + body), max), factor));
        _mm512_mask_storeu_ps(row + body, tail, e);
        sum = _mm512_mask_add_ps(sum, tail, sum, e);

        __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (size_t j = 0; j < body; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), inverse));
        _mm512_mask_storeu_ps(row + body, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, row + body), inverse));
    }
}

#else

// Unreachable: callers check hd_avx512f_supported() first and use FusedKernels.softmaxRows here.
void hd_softmax_rows(float *x, size_t rows, size_t width, float scale) { __builtin_trap(); }

#endif
