#include "CRuntimeKernels.h"

#if defined(__x86_64__)
#include "VectorMath.h"

/// 0.5 · v · (1 + erf(v / √2)).
__attribute__((target("avx512f"))) static inline __m512 gelu16(__m512 v) {
    __m512 cdf = _mm512_fmadd_ps(erf16(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752440f))), _mm512_set1_ps(0.5f),
                                 _mm512_set1_ps(0.5f));
    return _mm512_mul_ps(v, cdf);
}

__attribute__((target("avx512f"))) void hd_gelu(const float *x, size_t count, float *out) {
    size_t i = 0;
    for (; i + 16 <= count; i += 16) _mm512_storeu_ps(out + i, gelu16(_mm512_loadu_ps(x + i)));
    __mmask16 tail = (__mmask16)((1u << (count - i)) - 1);
    _mm512_mask_storeu_ps(out + i, tail, gelu16(_mm512_maskz_loadu_ps(tail, x + i)));
}

/// GELU'(v) = Φ(v) + v · φ(v), Φ(v) = ½(1 + erf(v/√2)), φ(v) = e^{−v²/2} / √(2π).
__attribute__((target("avx512f"))) static inline __m512 gelu_derivative16(__m512 v) {
    __m512 cdf = _mm512_fmadd_ps(erf16(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752440f))), _mm512_set1_ps(0.5f),
                                 _mm512_set1_ps(0.5f));
    __m512 pdf = _mm512_mul_ps(_mm512_set1_ps(0.39894228040143267794f),
                               exp16(_mm512_mul_ps(_mm512_mul_ps(v, v), _mm512_set1_ps(-0.5f))));
    return _mm512_fmadd_ps(v, pdf, cdf);
}

__attribute__((target("avx512f"))) void hd_gelu_backward(float *gradient, const float *x, size_t count) {
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 g = _mm512_loadu_ps(gradient + i);
        _mm512_storeu_ps(gradient + i, _mm512_mul_ps(g, gelu_derivative16(_mm512_loadu_ps(x + i))));
    }
    __mmask16 tail = (__mmask16)((1u << (count - i)) - 1);
    __m512 g = _mm512_maskz_loadu_ps(tail, gradient + i);
    _mm512_mask_storeu_ps(gradient + i, tail, _mm512_mul_ps(g, gelu_derivative16(_mm512_maskz_loadu_ps(tail, x + i))));
}

#else

// Unreachable: callers check hd_avx512f_supported() first and use the Swift kernels here.
void hd_gelu(const float *x, size_t count, float *out) { __builtin_trap(); }
void hd_gelu_backward(float *gradient, const float *x, size_t count) { __builtin_trap(); }

#endif
