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

/// The same loop on `vpdpbusd` (u8 × s8, 4 products per 32-bit lane): the int8 GEMM's step.
__attribute__((target("avx512f,avx512vnni"))) int hd_vnni_peak(size_t iterations) {
    __m512i acc[12];
    const __m512i x = _mm512_set1_epi32(0x01010101), y = _mm512_set1_epi32(0x01FF01FF);
    _Pragma("clang loop unroll(full)") for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_epi32(i);
    for (size_t n = 0; n < iterations; n++) {
        _Pragma("clang loop unroll(full)") for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
    }
    __m512i sum = acc[0];
    for (int i = 1; i < 12; i++) sum = _mm512_add_epi32(sum, acc[i]);
    return _mm512_reduce_add_epi32(sum);
}

/// The same loop on `vdpbf16ps` (2 bf16 products per 32-bit lane): the bf16 GEMM's step.
__attribute__((target("avx512f,avx512bf16"))) float hd_bf16_peak(size_t iterations) {
    __m512 acc[12];
    // bf16 pairs (0.999, 0.999) and (1e-7, 1e-7): the chains stay finite however long they run.
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F7F3F7F), y = (__m512bh)_mm512_set1_epi32(0x33D733D7);
    _Pragma("clang loop unroll(full)") for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    for (size_t n = 0; n < iterations; n++) {
        _Pragma("clang loop unroll(full)") for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < 12; i++) sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}

#else

// Unreachable: callers check hd_avx512f_supported() (and the VNNI / BF16 checks) first.
float hd_fma_peak(size_t iterations) { __builtin_trap(); }
int hd_vnni_peak(size_t iterations) { __builtin_trap(); }
float hd_bf16_peak(size_t iterations) { __builtin_trap(); }

#endif
