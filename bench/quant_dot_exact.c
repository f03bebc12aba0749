/* quant_dot_exact.c - issue 18's exact mode: can the Q4_K dot with f32
 * activations go faster, and does AVX-512 BF16 help?  One thread, a random
 * [OUT, IN] Q4_K matrix, ns per weight of a one-token product, variants
 * timed interleaved (best of 7, three rounds):
 *
 *   current   quant.c's AVX-512 kernel (ak_ggml_dot_at(Q4_K, AVX-512))
 *   fma-vs    the same FMA arithmetic (widen 16 quants to int32, convert,
 *             FMA with x), but each block's 8 scales and 8 mins decoded
 *             once by integer ops and converted as one vector, d * sc
 *             broadcast from memory (a load, not a shuffle on the float
 *             pipes), two accumulators, sums of x per sub-block added in
 *             the kernel: today's dot interface
 *   fma-vp    fma-vs with the sums of x per 32 taken once per product
 *             (shared by all rows, as --fast's activation blocks are)
 *   bf16x3    x split once per product into three bf16 pieces,
 *             x = hi + mid + lo exactly (round to bf16, take the f32
 *             residual, twice: 3 x 8 significant bits hold f32's 24); each
 *             quant a bf16 by a 32-entry word table (vpermw), products by
 *             vdpbf16ps (32 exact products a instruction, f32 sums), scales
 *             as fma-vp: exact, within f32 rounding of the f64 dot
 *   bf16x2, bf16x1   the first two / one pieces only: NOT exact (x kept to
 *             16 / 8 bits), timed to show what the products cost
 * and the split's cost per element (once per product).  Prints each
 * variant's largest |dot - f64 dot of the dequantized row| / sum |w x|.
 *
 *   make programs && cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Ilib bench/quant_dot_exact.c \
 *     build/rel/libattnkit.a -lm -pthread -o build/quant_dot_exact \
 *     && build/quant_dot_exact [OUT IN]
 *
 * Needs an x86-64 CPU with AVX-512 BF16 (Zen 4, Sapphire Rapids). */
#include "attnkit/sample.h"
#include "format/quant.h"
#include "core/simd.h"
#include "attnkit/tensor.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define TBF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

enum { PIECES_BYTES = 192 };   /* per 32 elements: lo, mid, hi, 32 bf16 each */

/* random rows from the library's generator (sample.h) */
static uint64_t rng = 88172645463325252ULL;
static uint32_t next32(void) { return (uint32_t)(ak_rng_next(&rng) >> 32); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((target("f16c"))) static inline float half(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* A Q4_K block's 8 six-bit scales and 8 mins (quant.c's scale_min_k4 for
 * j = 0..7) as bytes, four at a time: bytes 0-3 hold scales 0-3 and the
 * top two bits of scales 4-7, bytes 4-7 the same for the mins, bytes 8-11
 * the low nibbles of scales (low) and mins (high) 4-7. */
static inline void scales_mins(const uint8_t *q, uint64_t *sc, uint64_t *m)
{
    uint32_t a, b, c;
    memcpy(&a, q, 4);
    memcpy(&b, q + 4, 4);
    memcpy(&c, q + 8, 4);
    uint32_t sc47 = (c & 0x0f0f0f0f) | ((a >> 6) & 0x03030303) << 4;
    uint32_t m47 = ((c >> 4) & 0x0f0f0f0f) | ((b >> 6) & 0x03030303) << 4;
    *sc = (a & 0x3f3f3f3f) | (uint64_t)sc47 << 32;
    *m = (b & 0x3f3f3f3f) | (uint64_t)m47 << 32;
}

/* 8 bytes as 8 floats times s */
T512 static inline __m256 bytes_times(uint64_t v, float s)
{
    return _mm256_mul_ps(_mm256_set1_ps(s),
                         _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)v))));
}

T512 static inline float hsum16(__m512 v)
{
    return _mm512_reduce_add_ps(v);
}

/* sums[g] = x[32g] + ... + x[32g + 31] */
static void sums32(const float *x, float *sums, int64_t n)
{
    for (int64_t g = 0; g < n / 32; g++) {
        float s = 0;
        for (int i = 0; i < 32; i++)
            s += x[32 * g + i];
        sums[g] = s;
    }
}

/* f32 (16 lanes) of 16 bf16 */
TBF16 static inline __m512 widen_bf16(__m256bh h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
}

/* x[n] as three bf16 pieces per 32 elements (lo, mid, hi; round to
 * nearest even each), x = hi + mid + lo exactly for normal x */
TBF16 static void split_bf16(const float *x, uint8_t *xp, int64_t n)
{
    for (int64_t g = 0; g < n / 32; g++, x += 32, xp += PIECES_BYTES) {
        __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
        __m512 ra = _mm512_sub_ps(a, widen_bf16(_mm512_cvtneps_pbh(a)));
        __m512 rb = _mm512_sub_ps(b, widen_bf16(_mm512_cvtneps_pbh(b)));
        __m512 ra2 = _mm512_sub_ps(ra, widen_bf16(_mm512_cvtneps_pbh(ra)));
        __m512 rb2 = _mm512_sub_ps(rb, widen_bf16(_mm512_cvtneps_pbh(rb)));
        _mm512_storeu_si512(xp, (__m512i)_mm512_cvtne2ps_pbh(rb2, ra2));
        _mm512_storeu_si512(xp + 64, (__m512i)_mm512_cvtne2ps_pbh(rb, ra));
        _mm512_storeu_si512(xp + 128, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
}

/* Q4_K, f32 FMA, scales in vectors; sums of x per 32 from `sums`, or
 * added here when it is NULL */
T512 static inline __attribute__((always_inline)) float dot_fma(const void *row, const float *x, const float *sums, int64_t n)
{
    const uint8_t *p = row;
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), macc = _mm512_setzero_ps();
    __m256 macc8 = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; b++, p += 144) {
        uint64_t sc, m;
        scales_mins(p + 4, &sc, &m);
        float scs[8];
        _mm256_storeu_ps(scs, bytes_times(sc, half(p)));
        __m256 mv = bytes_times(m, half(p + 2));
        float ms[8];
        _mm256_storeu_ps(ms, mv);
        if (sums) {
            macc8 = _mm256_fmadd_ps(mv, _mm256_loadu_ps(sums), macc8);
            sums += 8;
        }
        const uint8_t *q = p + 16;
        for (int j = 0; j < 8; j += 2, q += 32, x += 64) {
#define F16(v) _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v))
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)q);
            __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(q + 16));
            __m512 s1 = _mm512_mul_ps(F16(_mm_and_si128(a, m4)), _mm512_loadu_ps(x));
            s1 = _mm512_fmadd_ps(F16(_mm_and_si128(c, m4)), _mm512_loadu_ps(x + 16), s1);
            __m512 s2 = _mm512_mul_ps(F16(_mm_and_si128(_mm_srli_epi16(a, 4), m4)), _mm512_loadu_ps(x + 32));
            s2 = _mm512_fmadd_ps(F16(_mm_and_si128(_mm_srli_epi16(c, 4), m4)), _mm512_loadu_ps(x + 48), s2);
#undef F16
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(scs[j]), s1, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(scs[j + 1]), s2, acc1);
            if (!sums) {
                __m512 x1 = _mm512_add_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(x + 16));
                __m512 x2 = _mm512_add_ps(_mm512_loadu_ps(x + 32), _mm512_loadu_ps(x + 48));
                macc = _mm512_fmadd_ps(_mm512_set1_ps(ms[j]), x1, macc);
                macc = _mm512_fmadd_ps(_mm512_set1_ps(ms[j + 1]), x2, macc);
            }
        }
    }
    float t[8], mins = hsum16(macc);
    _mm256_storeu_ps(t, macc8);
    for (int i = 0; i < 8; i++)
        mins += t[i];
    return hsum16(_mm512_add_ps(acc0, acc1)) - mins;
}

T512 static float dot_fma_vs(const void *row, const void *x, const void *unused, int64_t n)
{
    (void)unused;
    return dot_fma(row, x, NULL, n);
}

T512 static float dot_fma_vp(const void *row, const void *x, const void *sums, int64_t n)
{
    return dot_fma(row, x, sums, n);
}

/* bf16(v) for v = 0..31, two a 32-bit lane (vpermw's table) */
TBF16 static inline __m512i bf16_table(void)
{
    return _mm512_setr_epi32(0x3f800000, 0x40404000, 0x40a04080, 0x40e040c0, 0x41104100, 0x41304120,
                             0x41504140, 0x41704160, 0x41884180, 0x41984190, 0x41a841a0, 0x41b841b0,
                             0x41c841c0, 0x41d841d0, 0x41e841e0, 0x41f841f0);
}

/* the 32 weights w (bf16) times the first `pieces` pieces of x's 32,
 * smallest first */
TBF16 static inline __m512 dot_pieces(__m512i w, const uint8_t *xp, int pieces)
{
    __m512 s = _mm512_setzero_ps();
    for (int k = 3 - pieces; k < 3; k++)
        s = _mm512_dpbf16_ps(s, (__m512bh)w, (__m512bh)_mm512_loadu_si512(xp + 64 * k));
    return s;
}

TBF16 static inline __attribute__((always_inline)) float dot_bf16(const void *row, const uint8_t *xp, const float *sums, int64_t n,
                                   int pieces)
{
    const uint8_t *p = row;
    const __m512i table = bf16_table();
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m256 macc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; b++, p += 144, sums += 8) {
        uint64_t sc, m;
        scales_mins(p + 4, &sc, &m);
        float scs[8];
        _mm256_storeu_ps(scs, bytes_times(sc, half(p)));
        macc = _mm256_fmadd_ps(bytes_times(m, half(p + 2)), _mm256_loadu_ps(sums), macc);
        const uint8_t *q = p + 16;
        for (int j = 0; j < 8; j += 2, q += 32, xp += 2 * PIECES_BYTES) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)q);
            __m512i lo = _mm512_permutexvar_epi16(_mm512_cvtepu8_epi16(_mm256_and_si256(v, m4)), table);
            __m512i hi = _mm512_permutexvar_epi16(
                _mm512_cvtepu8_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4)), table);
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(scs[j]), dot_pieces(lo, xp, pieces), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(scs[j + 1]), dot_pieces(hi, xp + PIECES_BYTES, pieces), acc1);
        }
    }
    float t[8], mins = 0;
    _mm256_storeu_ps(t, macc);
    for (int i = 0; i < 8; i++)
        mins += t[i];
    return hsum16(_mm512_add_ps(acc0, acc1)) - mins;
}

TBF16 static float dot_bf16x3(const void *row, const void *xp, const void *sums, int64_t n)
{
    return dot_bf16(row, xp, sums, n, 3);
}
TBF16 static float dot_bf16x2(const void *row, const void *xp, const void *sums, int64_t n)
{
    return dot_bf16(row, xp, sums, n, 2);
}
TBF16 static float dot_bf16x1(const void *row, const void *xp, const void *sums, int64_t n)
{
    return dot_bf16(row, xp, sums, n, 1);
}

static ak_dot_fn current;
static float dot_current(const void *row, const void *x, const void *unused, int64_t n)
{
    (void)unused;
    return current(row, x, n);
}

typedef float (*variant_fn)(const void *row, const void *x, const void *sums, int64_t n);

int main(int argc, char **argv)
{
    int out = argc > 2 ? atoi(argv[1]) : 1024, in = argc > 2 ? atoi(argv[2]) : 1024;
    if (out <= 0 || in <= 0 || in % 256) {
        fprintf(stderr, "quant_dot_exact: IN must be a multiple of 256\n");
        return 1;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16") || !__builtin_cpu_supports("avx512bw")) {
        fprintf(stderr, "quant_dot_exact: this CPU has no AVX-512 BF16\n");
        return 1;
    }
    const int type = AK_GGML_Q4_K;
    current = ak_ggml_dot_at(type, AK_SIMD_AVX512);
    size_t rb = ak_ggml_row_bytes(type, in);
    float *x = malloc(sizeof *x * (size_t)in), *w_row = malloc(sizeof *w_row * (size_t)in);
    float *sums = malloc(sizeof *sums * (size_t)(in / 32)), *y = malloc(sizeof *y * (size_t)out);
    uint8_t *xp = malloc((size_t)in / 32 * PIECES_BYTES), *w = malloc(rb * (size_t)out);
    for (int i = 0; i < in; i++)
        x[i] = (float)(next32() / 4294967296.0 - 0.5);
    for (size_t i = 0; i < rb * (size_t)out; i++)
        w[i] = (uint8_t)next32();
    uint16_t h = ak_f32_to_f16(0.01f);   /* d and dmin of every block */
    for (size_t b = 0; b < rb * (size_t)out / 144; b++) {
        memcpy(w + b * 144, &h, 2);
        memcpy(w + b * 144 + 2, &h, 2);
    }
    sums32(x, sums, in);
    split_bf16(x, xp, in);

    static const char *const names[] = {"current", "fma-vs", "fma-vp", "bf16x3", "bf16x2", "bf16x1"};
    const variant_fn fns[] = {dot_current, dot_fma_vs, dot_fma_vp, dot_bf16x3, dot_bf16x2, dot_bf16x1};
    enum { NV = 6 };
    const void *xs[NV] = {x, x, x, xp, xp, xp};
    double worst[NV] = {0};
    for (int r = 0; r < out; r++) {
        const uint8_t *row = w + (size_t)r * rb;
        ak_dequant_row(type, row, w_row, in);
        double exact = 0, mag = 0;
        for (int i = 0; i < in; i++) {
            exact += (double)w_row[i] * x[i];
            mag += fabs((double)w_row[i] * x[i]);
        }
        for (int v = 0; v < NV; v++) {
            double e = fabs(fns[v](row, xs[v], sums, in) - exact) / mag;
            worst[v] = e > worst[v] ? e : worst[v];
        }
    }
    printf("# Q4_K [%d x %d], one thread; max |dot - f64| / sum |w x|:", out, in);
    for (int v = 0; v < NV; v++)
        printf(" %s %.1e", names[v], worst[v]);
    printf("\n");
    for (int round = 0; round < 3; round++) {
        double best[NV + 1];
        for (int v = 0; v <= NV; v++)
            best[v] = 1e30;
        for (int rep = 0; rep < 7; rep++) {
            for (int v = 0; v < NV; v++) {
                double t0 = now();
                for (int r = 0; r < out; r++)
                    y[r] = fns[v](w + (size_t)r * rb, xs[v], sums, in);
                double dt = now() - t0;
                best[v] = dt < best[v] ? dt : best[v];
            }
            double t0 = now();
            split_bf16(x, xp, in);
            sums32(x, sums, in);
            double dt = now() - t0;
            best[NV] = dt < best[NV] ? dt : best[NV];
        }
        printf("ns/weight:");
        for (int v = 0; v < NV; v++)
            printf(" %s %.4f", names[v], best[v] * 1e9 / ((double)out * in));
        printf(" | split + sums %.3f ns/element\n", best[NV] * 1e9 / in);
    }
    free(x);
    free(w_row);
    free(sums);
    free(y);
    free(xp);
    free(w);
    return 0;
}
