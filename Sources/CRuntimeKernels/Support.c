#include "CRuntimeKernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

int hd_avx512f_supported(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return 0;
    // The OS must save SSE, AVX, the opmasks and both halves of the ZMM registers (XCR0 bits 1, 2, 5–7).
    unsigned int xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0xE6) != 0xE6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx & bit_AVX512F) != 0;
}

/// AVX-512 BW and VL on top of F: the kernels' byte and 256-bit masked stores use them.
static int avx512_bw_vl(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!hd_avx512f_supported() || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx & bit_AVX512BW) && (ebx & bit_AVX512VL);
}

int hd_avx512_vnni_supported(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!avx512_bw_vl() || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx & bit_AVX512VNNI) != 0;
}

int hd_avx512_bf16_supported(void) {
    unsigned int eax, ebx, ecx, edx;
    // Leaf 7 sub-leaf 1 exists when sub-leaf 0's EAX (the highest sub-leaf) is at least 1.
    if (!avx512_bw_vl() || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || eax < 1) return 0;
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return 0;
    return (eax & bit_AVX512BF16) != 0;
}

#if defined(__linux__)

/// AMX-TILE and `feature` (CPUID leaf 7's EDX), the OS's tile state (XCR0 bits 17–18), and Linux's
/// grant of the tile data to this process.
static int amx_usable(unsigned int feature) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned int amx_tile = 1u << 24;
    if ((edx & amx_tile) == 0 || (edx & feature) == 0) return 0;
    unsigned int xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0x60000) != 0x60000) return 0;
    // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA (arch/x86/include/uapi/asm/prctl.h); asking again
    // once granted succeeds again.
    const long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
}

int hd_amx_int8_supported(void) { return hd_avx512_vnni_supported() && amx_usable(1u << 25); }
int hd_amx_bf16_supported(void) { return hd_avx512_bf16_supported() && amx_usable(1u << 22); }

#else

int hd_amx_int8_supported(void) { return 0; }
int hd_amx_bf16_supported(void) { return 0; }

#endif

#else

int hd_avx512f_supported(void) { return 0; }
int hd_amx_int8_supported(void) { return 0; }
int hd_amx_bf16_supported(void) { return 0; }
int hd_avx512_vnni_supported(void) { return 0; }
int hd_avx512_bf16_supported(void) { return 0; }

#endif
