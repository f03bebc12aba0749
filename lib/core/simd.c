/* simd.c - see simd.h. */
#include "simd.h"

#include <pthread.h>
#include <string.h>

static int forced = -1;   /* ak_simd_force: the cap, or -1 for none */
static int cpu_level;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void detect(void)
{
#ifdef AK_SIMD_X86
    __builtin_cpu_init();
    /* F16C is not asked (Clang's builtin does not know the name): every
     * CPU with AVX2 and FMA has it */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        cpu_level = AK_SIMD_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl")) {
            cpu_level = AK_SIMD_AVX512;
            if (__builtin_cpu_supports("avx512vnni"))
                cpu_level = AK_SIMD_AVX512VNNI;
        }
    }
#endif
}

int ak_simd_cpu(void)
{
    pthread_once(&cpu_once, detect);
    return cpu_level;
}

int ak_simd_level(void)
{
    int cpu = ak_simd_cpu();
    return forced >= 0 && forced < cpu ? forced : cpu;
}

const char *ak_simd_name(int level)
{
    static const char *const names[AK_SIMD_N] = {"scalar", "avx2", "avx512", "avx512vnni"};
    return level >= 0 && level < AK_SIMD_N ? names[level] : NULL;
}

int ak_simd_force(const char *name)
{
    if (!strcmp(name, "auto")) {
        forced = -1;
        return 0;
    }
    for (int l = 0; l < AK_SIMD_N; l++)
        if (!strcmp(name, ak_simd_name(l))) {
            forced = l;
            return 0;
        }
    return -1;
}
