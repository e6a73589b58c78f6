#include "CRuntimeKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/// 12 independent chains of AVX-512 FMAs: enough in flight to cover the FMA latency on two pipes,
/// with no loads or stores, so the loop runs at the core's FMA issue rate (the roofline's ceiling).
__attribute__((target("avx512f"))) float hd_fma_peak(size_t iterations) {
    __m512 acc[12];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    _Pragma("clang loop unroll(full)") for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    for (size_t n = 0; n < iterations; n++) {
        _Pragma("clang loop unroll(full)") for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < 12; i++) sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}

#else

// Unreachable: callers check hd_avx512f_supported() first.
float hd_fma_peak(size_t iterations) { __builtin_trap(); }

#endif
