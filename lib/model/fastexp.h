/* fastexp.h - exp in float on 8-lane vectors (GCC and Clang vector
 * extensions: AVX, SSE or NEON where there is one, scalar code elsewhere;
 * the callers build their loops for AVX2 too and pick one at run time by
 * simd.h's level), for the
 * loops that take an exp per element: the CPU attention's softmax (a libm
 * expf per score was a third of its time at 4K tokens) and the MLP's
 * activations.  Written with explicit vectors because the compiler does not
 * if-convert the clamps of a scalar version under the default
 * -ftrapping-math, so it would not vectorize.
 *
 * Range reduction x = n ln2 + r, |r| <= ln2/2, with ln2 split in two so that
 * n ln2 is exact; exp(r) by its degree-7 Taylor polynomial (remainder below
 * 1e-8 on that interval, so the error is float rounding: a few ulp); 2^n
 * built in the exponent bits.  x is first clamped to [-87, 88]: results stay
 * normal floats (exp(-87) = 1.6e-38 stands in for anything smaller, which no
 * sum of probabilities or activation can tell from 0) and do not overflow.
 * NaN is not expected (callers pass finite values). */
#ifndef AK_FASTEXP_H
#define AK_FASTEXP_H

#include <stdint.h>
#include <string.h>

/* 32-byte vectors passed by value without AVX: GCC warns that the ABI
 * differs from AVX code's, which does not matter for these static inline
 * functions (no call crosses a file). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

enum { AK_VL = 8 };   /* lanes */
typedef float ak_vf __attribute__((vector_size(4 * AK_VL)));
typedef int32_t ak_vi __attribute__((vector_size(4 * AK_VL)));

/* Always inlined: no 32-byte vector is ever passed by value in a call
 * (without AVX, Clang's unoptimized code mispasses them). */
#define AK_VINLINE static inline __attribute__((always_inline))

AK_VINLINE ak_vf ak_loadv(const float *p)
{
    ak_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

AK_VINLINE void ak_storev(float *p, ak_vf v) { memcpy(p, &v, sizeof v); }

/* a where mask, else b */
AK_VINLINE ak_vf ak_selectv(ak_vi mask, ak_vf a, ak_vf b)
{
    return (ak_vf)((mask & (ak_vi)a) | (~mask & (ak_vi)b));
}

AK_VINLINE ak_vf ak_maxv(ak_vf a, ak_vf b) { return ak_selectv(a > b, a, b); }

AK_VINLINE ak_vf ak_expv(ak_vf x)
{
    const ak_vf lo = x * 0 - 87.0f, hi = x * 0 + 88.0f;
    x = ak_selectv(x < lo, lo, x);
    x = ak_selectv(x > hi, hi, x);
    /* n = round(x / ln2): adding 1.5 * 2^23 leaves the rounded integer in
     * the low mantissa bits */
    const float shift = 12582912.0f;
    ak_vf t = x * 1.44269504088896341f + shift;
    ak_vf n = t - shift;
    ak_vf r = x - n * 0.693359375f;     /* ln2's high part: 8 bits, n * it is exact */
    r = r + n * 2.12194440e-4f;          /* 0.693359375 - ln2 */
    ak_vf p = r * (1.0f / 5040) + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^n: n + 127 in the exponent field (n in [-126, 127] after the clamp) */
    ak_vi e = ((ak_vi)t - 0x4B400000 + 127) << 23;
    return p * (ak_vf)e;
}

AK_VINLINE float ak_expf(float x)
{
    ak_vf v = {x};
    return ak_expv(v)[0];
}

#endif
