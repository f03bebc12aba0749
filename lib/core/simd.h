/* simd.h - which vector instructions the CPU kernels use, chosen once at
 * run time: the CPU's best (AVX-512 with VNNI, AVX-512, AVX2 + FMA + F16C)
 * unless a lower level is forced (ATTNKIT_SIMD, through ak_simd_force).  Kernels are
 * compiled for each level with __attribute__((target)) and called through
 * a function pointer picked from this level, so one binary runs the best
 * code on every x86-64 CPU; other architectures build the scalar level
 * only. */
#ifndef AK_SIMD_H
#define AK_SIMD_H

/* AVX512VNNI adds the integer dot instructions (vpdpbusd, vpdpwssd) that
 * only the 8-bit-activation (--fast) kernels use; the f32 kernels take
 * the AVX-512 ones there. */
enum {
    AK_SIMD_SCALAR = 0, AK_SIMD_AVX2 = 1, AK_SIMD_AVX512 = 2, AK_SIMD_AVX512VNNI = 3,
    AK_SIMD_N = 4
};

/* -DAK_NO_X86_SIMD builds the scalar level alone on x86-64 too (what any
 * other architecture builds: a check that such a build compiles). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(AK_NO_X86_SIMD)
#define AK_SIMD_X86 1
/* AVX2 level: AVX2, FMA, F16C (every CPU with AVX2 and FMA has F16C);
 * AVX-512 level: F, BW, VL (Skylake-X, Zen 4 and later). */
#define AK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define AK_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
/* AVX-512 VNNI level: the above and VNNI (Ice Lake, Zen 4 and later). */
#define AK_TARGET_VNNI \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#endif

/* The highest level the CPU has (AK_SIMD_SCALAR off x86-64). */
int ak_simd_cpu(void);
/* The level in use: ak_simd_cpu(), or lower if forced. */
int ak_simd_level(void);
/* "scalar", "avx2", "avx512", "avx512vnni"; NULL for another number. */
const char *ak_simd_name(int level);
/* Uses at most the level named ("scalar", "avx2", "avx512", "avx512vnni";
 * "auto": the
 * CPU's best); a level above the CPU's is lowered to it.  -1 for another
 * name.  Call before the first model product (the kernels are chosen once
 * per type on first use; later calls do not change those already picked). */
int ak_simd_force(const char *name);

#endif
