/* fastexp.h - exp in float on 4-lane vectors (GCC and Clang vector
 * extensions: SSE/NEON where there is one, scalar code elsewhere), for the
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

typedef float ak_v4f __attribute__((vector_size(16)));
typedef int32_t ak_v4i __attribute__((vector_size(16)));

static inline ak_v4f ak_load4(const float *p)
{
    ak_v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void ak_store4(float *p, ak_v4f v) { memcpy(p, &v, sizeof v); }

/* a where mask, else b */
static inline ak_v4f ak_select4(ak_v4i mask, ak_v4f a, ak_v4f b)
{
    return (ak_v4f)((mask & (ak_v4i)a) | (~mask & (ak_v4i)b));
}

static inline ak_v4f ak_max4(ak_v4f a, ak_v4f b) { return ak_select4(a > b, a, b); }

static inline ak_v4f ak_exp4(ak_v4f x)
{
    const ak_v4f lo = {-87.0f, -87.0f, -87.0f, -87.0f}, hi = {88.0f, 88.0f, 88.0f, 88.0f};
    x = ak_select4(x < lo, lo, x);
    x = ak_select4(x > hi, hi, x);
    /* n = round(x / ln2): adding 1.5 * 2^23 leaves the rounded integer in
     * the low mantissa bits */
    const float shift = 12582912.0f;
    ak_v4f t = x * 1.44269504088896341f + shift;
    ak_v4f n = t - shift;
    ak_v4f r = x - n * 0.693359375f;     /* ln2's high part: 8 bits, n * it is exact */
    r = r + n * 2.12194440e-4f;          /* 0.693359375 - ln2 */
    ak_v4f p = r * (1.0f / 5040) + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^n: n + 127 in the exponent field (n in [-126, 127] after the clamp) */
    ak_v4i e = ((ak_v4i)t - 0x4B400000 + 127) << 23;
    return p * (ak_v4f)e;
}

static inline float ak_expf(float x)
{
    ak_v4f v = {x, x, x, x};
    return ak_exp4(v)[0];
}

#endif
