/* quant.c - see quant.h.  Block layouts as ggml's ggml-common.h defines
 * them (all multi-byte fields little-endian; d, dmin, m are IEEE halves):
 *
 *   Q4_0  {d; qs[16]}             x = d * (nibble - 8)
 *   Q4_1  {d; m; qs[16]}          x = d * nibble + m
 *   Q5_0  {d; qh[4]; qs[16]}      x = d * ((nibble | bit << 4) - 16)
 *   Q5_1  {d; m; qh[4]; qs[16]}   x = d * (nibble | bit << 4) + m
 *   Q8_0  {d; int8 qs[32]}        x = d * q
 * In the 32-element blocks, byte j holds element j (low nibble) and
 * element j + 16 (high nibble); bit j of qh is element j's fifth bit.
 *
 * The K-quants work on 256-element super-blocks:
 *   Q4_K  {d; dmin; scales[12]; qs[128]}          8 sub-blocks of 32,
 *   Q5_K  {d; dmin; scales[12]; qh[32]; qs[128]}  6-bit scale and min each
 *         x = d * sc * q - dmin * m
 *   Q6_K  {ql[128]; qh[64]; int8 scales[16]; d}   16 sub-blocks of 16,
 *         x = d * scale * (q - 32), q = 4 low bits from ql, 2 from qh
 * The products are taken in the order ggml takes them (d * sc first), in
 * float, so the results are bit-identical to ggml's and the gguf package's.
 *
 * One table (at the end) holds every type: its block geometry, its row
 * dequantizer and its fused dot product at each SIMD level (simd.h): the
 * scalar C below, AVX2 and AVX-512 (quant_kernels.h, written once for both)
 * on x86-64.  A type is supported when its row is filled.
 */
#include "quant.h"
#include "core/simd.h"
#include "attnkit/tensor.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AK_SIMD_X86
#include <immintrin.h>
#endif

static float half(const uint8_t *p) { return ak_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* ---- dequantization, one block (the reference: bit-identical to ggml) ---- */

static void q4_0(const uint8_t *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 0xf) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void q4_1(const uint8_t *b, float *y)
{
    float d = half(b), m = half(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(b[4 + j] & 0xf) + m;
        y[j + 16] = d * (float)(b[4 + j] >> 4) + m;
    }
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void q5_0(const uint8_t *b, float *y)
{
    float d = half(b);
    uint32_t qh = le32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int h0 = (qh >> j & 1) << 4, h1 = (qh >> (j + 16) & 1) << 4;
        y[j] = d * (float)(((qs[j] & 0xf) | h0) - 16);
        y[j + 16] = d * (float)(((qs[j] >> 4) | h1) - 16);
    }
}

static void q5_1(const uint8_t *b, float *y)
{
    float d = half(b), m = half(b + 2);
    uint32_t qh = le32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int h0 = (qh >> j & 1) << 4, h1 = (qh >> (j + 16) & 1) << 4;
        y[j] = d * (float)((qs[j] & 0xf) | h0) + m;
        y[j + 16] = d * (float)((qs[j] >> 4) | h1) + m;
    }
}

static void q8_0(const uint8_t *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block:
 * bytes 0-3 hold scales 0-3 (low 6 bits) and the top bits of scales 4-7,
 * bytes 4-7 the same for the mins, bytes 8-11 the low nibbles of scales
 * and mins 4-7. */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

static void q4_k(const uint8_t *b, float *y)
{
    float d = half(b), dmin = half(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    for (int j = 0; j < 8; j += 2) {
        int sc, m;
        scale_min_k4(j, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(j + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            y[l] = d1 * (float)(q[l] & 0xf) - m1;
        for (int l = 0; l < 32; l++)
            y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
        y += 64;
        q += 32;
    }
}

static void q5_k(const uint8_t *b, float *y)
{
    float d = half(b), dmin = half(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    for (int j = 0; j < 8; j += 2) {
        int sc, m;
        scale_min_k4(j, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(j + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        /* sub-block j takes bit j of each qh byte, j + 1 bit j + 1 */
        for (int l = 0; l < 32; l++)
            y[l] = d1 * (float)((ql[l] & 0xf) | (qh[l] >> j & 1) << 4) - m1;
        for (int l = 0; l < 32; l++)
            y[l + 32] = d2 * (float)((ql[l] >> 4) | (qh[l] >> (j + 1) & 1) << 4) - m2;
        y += 64;
        ql += 32;
    }
}

static void q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = half(b + 208);
    for (int n = 0; n < 2; n++) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xf) | (qh[l] & 3) << 4) - 32;
            int q2 = ((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4) - 32;
            int q3 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
            int q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

/* Rows: n elements of a type, n a multiple of the block. */
static void row_f32(const uint8_t *p, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = le32(p + 4 * i);
        memcpy(&y[i], &u, 4);
    }
}

static void row_f16(const uint8_t *p, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = half(p + 2 * i);
}

static void row_bf16(const uint8_t *p, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = ak_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
}

#define BLOCK_ROW(name, block, elems, bytes)                                  \
    static void name(const uint8_t *p, float *y, int64_t n)                   \
    {                                                                         \
        for (int64_t i = 0; i < n / (elems); i++)                             \
            block(p + (size_t)i * (bytes), y + (size_t)i * (elems));          \
    }
BLOCK_ROW(row_q4_0, q4_0, 32, 18)
BLOCK_ROW(row_q4_1, q4_1, 32, 20)
BLOCK_ROW(row_q5_0, q5_0, 32, 22)
BLOCK_ROW(row_q5_1, q5_1, 32, 24)
BLOCK_ROW(row_q8_0, q8_0, 32, 34)
BLOCK_ROW(row_q4_k, q4_k, 256, 144)
BLOCK_ROW(row_q5_k, q5_k, 256, 176)
BLOCK_ROW(row_q6_k, q6_k, 256, 210)

/* ---- fused dot products, scalar --------------------------------------------
 * Each is the row of n elements at p dotted with x[n], unpacking the blocks
 * as it goes (no row written out).  A block's scale multiplies the sum of
 * its quants times x, so the order of the sums differs from a dot product
 * of the dequantized row: results agree to float rounding (the unit test
 * holds them to 1e-5 of sum |w x|), not bit for bit.  Per-lane partial sums
 * (lane j gathers element j of every block), added once at the end: loops
 * the compiler vectorises without reassociating a reduction. */

/* An IEEE half as f32: the normal numbers by moving the bits, the rest
 * (zero, subnormal, infinity, NaN) through ak_f16_to_f32. */
static inline float half_fast(const uint8_t *p)
{
    uint16_t h = (uint16_t)(p[0] | p[1] << 8);
    uint32_t e = (h >> 10) & 0x1f;
    if (e == 0 || e == 0x1f)
        return ak_f16_to_f32(h);
    uint32_t u = (uint32_t)(h & 0x8000) << 16 | (e + 112) << 23 | (uint32_t)(h & 0x3ff) << 13;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float lanes_sum(const float *lane, int n)
{
    float t = 0;
    for (int j = 0; j < n; j++)
        t += lane[j];
    return t;
}

static float dot_f32_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float w;
            memcpy(&w, p + 4 * (i + j), 4);
            lane[j] += w * x[i + j];
        }
    for (; i < n; i++) {
        float w;
        memcpy(&w, p + 4 * i, 4);
        lane[0] += w * x[i];
    }
    return lanes_sum(lane, 16);
}

static float dot_f16_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[8] = {0};
    for (int64_t i = 0; i < n; i++)
        lane[i & 7] += half_fast(p + 2 * i) * x[i];
    return lanes_sum(lane, 8);
}

static float dot_bf16_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            uint32_t u = (uint32_t)(p[2 * (i + j)] | p[2 * (i + j) + 1] << 8) << 16;
            float w;
            memcpy(&w, &u, 4);
            lane[j] += w * x[i + j];
        }
    for (; i < n; i++)
        lane[0] += ak_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)) * x[i];
    return lanes_sum(lane, 16);
}

static float dot_q4_0_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[16] = {0};
    for (int64_t b = 0; b < n / 32; b++, p += 18, x += 32) {
        float d = half_fast(p);
        const uint8_t *q = p + 2;
        for (int j = 0; j < 16; j++)
            lane[j] += d * ((float)((q[j] & 0xf) - 8) * x[j] + (float)((q[j] >> 4) - 8) * x[j + 16]);
    }
    return lanes_sum(lane, 16);
}

static float dot_q4_1_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[16] = {0};
    for (int64_t b = 0; b < n / 32; b++, p += 20, x += 32) {
        float d = half_fast(p), m = half_fast(p + 2);
        const uint8_t *q = p + 4;
        for (int j = 0; j < 16; j++)
            lane[j] += d * ((float)(q[j] & 0xf) * x[j] + (float)(q[j] >> 4) * x[j + 16]) +
                       m * (x[j] + x[j + 16]);
    }
    return lanes_sum(lane, 16);
}

static float dot_q5_0_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[16] = {0};
    for (int64_t b = 0; b < n / 32; b++, p += 22, x += 32) {
        float d = half_fast(p);
        uint32_t qh = le32(p + 2);
        const uint8_t *q = p + 6;
        for (int j = 0; j < 16; j++) {
            int q0 = ((q[j] & 0xf) | (int)(qh >> j & 1) << 4) - 16;
            int q1 = ((q[j] >> 4) | (int)(qh >> (j + 16) & 1) << 4) - 16;
            lane[j] += d * ((float)q0 * x[j] + (float)q1 * x[j + 16]);
        }
    }
    return lanes_sum(lane, 16);
}

static float dot_q5_1_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[16] = {0};
    for (int64_t b = 0; b < n / 32; b++, p += 24, x += 32) {
        float d = half_fast(p), m = half_fast(p + 2);
        uint32_t qh = le32(p + 4);
        const uint8_t *q = p + 8;
        for (int j = 0; j < 16; j++) {
            int q0 = (q[j] & 0xf) | (int)(qh >> j & 1) << 4;
            int q1 = (q[j] >> 4) | (int)(qh >> (j + 16) & 1) << 4;
            lane[j] += d * ((float)q0 * x[j] + (float)q1 * x[j + 16]) + m * (x[j] + x[j + 16]);
        }
    }
    return lanes_sum(lane, 16);
}

static float dot_q8_0_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[32] = {0};
    for (int64_t b = 0; b < n / 32; b++, p += 34, x += 32) {
        float d = half_fast(p);
        const int8_t *q = (const int8_t *)(p + 2);
        for (int j = 0; j < 32; j++)
            lane[j] += d * ((float)q[j] * x[j]);
    }
    return lanes_sum(lane, 32);
}

static float dot_q4_k_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[32] = {0};
    for (int64_t b = 0; b < n / 256; b++, p += 144) {
        float d = half_fast(p), dmin = half_fast(p + 2);
        const uint8_t *scales = p + 4, *q = p + 16;
        for (int j = 0; j < 8; j += 2, q += 32, x += 64) {
            int sc, m;
            scale_min_k4(j, scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(j + 1, scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                lane[l] += d1 * (float)(q[l] & 0xf) * x[l] + d2 * (float)(q[l] >> 4) * x[l + 32] -
                           (m1 * x[l] + m2 * x[l + 32]);
        }
    }
    return lanes_sum(lane, 32);
}

static float dot_q5_k_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[32] = {0};
    for (int64_t b = 0; b < n / 256; b++, p += 176) {
        float d = half_fast(p), dmin = half_fast(p + 2);
        const uint8_t *scales = p + 4, *qh = p + 16, *q = p + 48;
        for (int j = 0; j < 8; j += 2, q += 32, x += 64) {
            int sc, m;
            scale_min_k4(j, scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(j + 1, scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                int q0 = (q[l] & 0xf) | (qh[l] >> j & 1) << 4;
                int q1 = (q[l] >> 4) | (qh[l] >> (j + 1) & 1) << 4;
                lane[l] += d1 * (float)q0 * x[l] + d2 * (float)q1 * x[l + 32] -
                           (m1 * x[l] + m2 * x[l + 32]);
            }
        }
    }
    return lanes_sum(lane, 32);
}

static float dot_q6_k_c(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float lane[16] = {0};
    for (int64_t b = 0; b < n / 256; b++, p += 210) {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        float d = half_fast(p + 208);
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, x += 128)
            for (int is = 0; is < 2; is++) {
                float s1 = d * (float)sc[is], s2 = d * (float)sc[is + 2];
                float s3 = d * (float)sc[is + 4], s4 = d * (float)sc[is + 6];
                for (int j = 0; j < 16; j++) {
                    int l = 16 * is + j;
                    int q1 = ((ql[l] & 0xf) | (qh[l] & 3) << 4) - 32;
                    int q2 = ((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4) - 32;
                    int q3 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32;
                    lane[j] += s1 * (float)q1 * x[l] + s2 * (float)q2 * x[l + 32] +
                               s3 * (float)q3 * x[l + 64] + s4 * (float)q4 * x[l + 96];
                }
            }
    }
    return lanes_sum(lane, 16);
}

/* ---- 8-bit activations (--fast), scalar: the reference ---------------------
 * Activation blocks (quant.h): A32 {f32 d; int32 sum; int8 q[32]} for the
 * 32-element types, A256 {f32 d; int16 sum[16]; int8 q[256]} for the
 * K-quants.  The integer sums are exact; each block's is converted and
 * scaled once, so every SIMD level agrees with these to float rounding. */
enum { A32_BYTES = 40, A256_BYTES = 292, A32_Q = 8, A256_Q = 36 };

static float f32at(const uint8_t *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* The block's scale d = max |x| / 127 (NaN when x holds a NaN, so the
 * product is NaN as the exact one would be) and the reciprocal x is
 * multiplied by: the same operations as the SIMD quantizers, so the same
 * bits. */
static void q8_scale(float amax, int nan, float *d, float *id)
{
    *d = nan ? NAN : amax / 127.0f;
    *id = amax > 0 ? 127.0f / amax : 0.0f;
}

/* x * id rounded to nearest even, clamped as the SIMD packs saturate */
static int8_t q8_round(float v)
{
    float r = nearbyintf(v);
    return r >= 127.0f ? 127 : r > -128.0f ? (int8_t)r : -128;
}

static void q8_block_c(const float *x, int n, uint8_t *dst_d, int8_t *q)
{
    float amax = 0, d, id;
    int nan = 0;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        nan |= x[i] != x[i];
        amax = a > amax ? a : amax;
    }
    q8_scale(amax, nan, &d, &id);
    memcpy(dst_d, &d, 4);
    for (int i = 0; i < n; i++)
        q[i] = q8_round(x[i] * id);
}

static void quantize_a32_c(const float *x, uint8_t *a, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++, x += 32, a += A32_BYTES) {
        int8_t *q = (int8_t *)(a + A32_Q);
        q8_block_c(x, 32, a, q);
        int32_t s = 0;
        for (int i = 0; i < 32; i++)
            s += q[i];
        memcpy(a + 4, &s, 4);
    }
}

static void quantize_a256_c(const float *x, uint8_t *a, int64_t n)
{
    for (int64_t b = 0; b < n / 256; b++, x += 256, a += A256_BYTES) {
        int8_t *q = (int8_t *)(a + A256_Q);
        q8_block_c(x, 256, a, q);
        for (int k = 0; k < 16; k++) {
            int16_t s = 0;
            for (int i = 0; i < 16; i++)
                s = (int16_t)(s + q[16 * k + i]);
            memcpy(a + 4 + 2 * k, &s, 2);
        }
    }
}

static int32_t i32at(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int16_t i16at(const uint8_t *p)
{
    int16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* 32-element types: the block's integer sum of u * q, where the weight is
 * d * (u - off) (Q4_0: off 8, Q5_0: 16, Q8_0: u signed, off 0) or d * u + m
 * (Q4_1, Q5_1: the min times d_x * sum q added in float). */
static float dotq_q4_0_c(const void *row, const void *xq, int64_t n)
{
    const uint8_t *p = row, *a = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / 32; b++, p += 18, a += A32_BYTES) {
        const int8_t *q = (const int8_t *)(a + A32_Q);
        int32_t s = 0;
        for (int j = 0; j < 16; j++)
            s += (p[2 + j] & 0xf) * q[j] + (p[2 + j] >> 4) * q[j + 16];
        acc += half_fast(p) * f32at(a) * (float)(s - 8 * i32at(a + 4));
    }
    return acc;
}

static float dotq_q4_1_c(const void *row, const void *xq, int64_t n)
{
    const uint8_t *p = row, *a = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / 32; b++, p += 20, a += A32_BYTES) {
        const int8_t *q = (const int8_t *)(a + A32_Q);
        int32_t s = 0;
        for (int j = 0; j < 16; j++)
            s += (p[4 + j] & 0xf) * q[j] + (p[4 + j] >> 4) * q[j + 16];
        float dx = f32at(a);
        acc += half_fast(p) * dx * (float)s + half_fast(p + 2) * dx * (float)i32at(a + 4);
    }
    return acc;
}

static float dotq_q5_0_c(const void *row, const void *xq, int64_t n)
{
    const uint8_t *p = row, *a = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / 32; b++, p += 22, a += A32_BYTES) {
        const int8_t *q = (const int8_t *)(a + A32_Q);
        uint32_t qh = le32(p + 2);
        int32_t s = 0;
        for (int j = 0; j < 16; j++)
            s += ((p[6 + j] & 0xf) | (int)(qh >> j & 1) << 4) * q[j] +
                 ((p[6 + j] >> 4) | (int)(qh >> (j + 16) & 1) << 4) * q[j + 16];
        acc += half_fast(p) * f32at(a) * (float)(s - 16 * i32at(a + 4));
    }
    return acc;
}

static float dotq_q5_1_c(const void *row, const void *xq, int64_t n)
{
    const uint8_t *p = row, *a = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / 32; b++, p += 24, a += A32_BYTES) {
        const int8_t *q = (const int8_t *)(a + A32_Q);
        uint32_t qh = le32(p + 4);
        int32_t s = 0;
        for (int j = 0; j < 16; j++)
            s += ((p[8 + j] & 0xf) | (int)(qh >> j & 1) << 4) * q[j] +
                 ((p[8 + j] >> 4) | (int)(qh >> (j + 16) & 1) << 4) * q[j + 16];
        float dx = f32at(a);
        acc += half_fast(p) * dx * (float)s + half_fast(p + 2) * dx * (float)i32at(a + 4);
    }
    return acc;
}

static float dotq_q8_0_c(const void *row, const void *xq, int64_t n)
{
    const uint8_t *p = row, *a = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / 32; b++, p += 34, a += A32_BYTES) {
        const int8_t *w = (const int8_t *)(p + 2), *q = (const int8_t *)(a + A32_Q);
        int32_t s = 0;
        for (int j = 0; j < 32; j++)
            s += w[j] * q[j];
        acc += half_fast(p) * f32at(a) * (float)s;
    }
    return acc;
}

/* K-quants: per super-block, sum over sub-blocks of scale * (sum u q) in
 * integers, scaled once by d * d_x; Q4_K/Q5_K take off dmin * d_x * sum of
 * min * (sum q) over the sub-blocks, Q6_K's offset 32 is 32 * sum q. */
static float dotq_q4_k_c(const void *row, const void *xq, int64_t n)
{
    const uint8_t *p = row, *a = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / 256; b++, p += 144, a += A256_BYTES) {
        const int8_t *q = (const int8_t *)(a + A256_Q);
        const uint8_t *w = p + 16;
        int32_t si = 0, sm = 0;
        for (int j = 0; j < 8; j += 2, w += 32, q += 64) {
            int sc1, m1, sc2, m2;
            scale_min_k4(j, p + 4, &sc1, &m1);
            scale_min_k4(j + 1, p + 4, &sc2, &m2);
            int32_t s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += (w[l] & 0xf) * q[l];
                s2 += (w[l] >> 4) * q[l + 32];
            }
            si += sc1 * s1 + sc2 * s2;
            sm += m1 * (i16at(a + 4 + 4 * j) + i16at(a + 6 + 4 * j)) +
                  m2 * (i16at(a + 8 + 4 * j) + i16at(a + 10 + 4 * j));
        }
        float dx = f32at(a);
        acc += half_fast(p) * dx * (float)si - half_fast(p + 2) * dx * (float)sm;
    }
    return acc;
}

static float dotq_q5_k_c(const void *row, const void *xq, int64_t n)
{
    const uint8_t *p = row, *a = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / 256; b++, p += 176, a += A256_BYTES) {
        const int8_t *q = (const int8_t *)(a + A256_Q);
        const uint8_t *qh = p + 16, *w = p + 48;
        int32_t si = 0, sm = 0;
        for (int j = 0; j < 8; j += 2, w += 32, q += 64) {
            int sc1, m1, sc2, m2;
            scale_min_k4(j, p + 4, &sc1, &m1);
            scale_min_k4(j + 1, p + 4, &sc2, &m2);
            int32_t s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += ((w[l] & 0xf) | (qh[l] >> j & 1) << 4) * q[l];
                s2 += ((w[l] >> 4) | (qh[l] >> (j + 1) & 1) << 4) * q[l + 32];
            }
            si += sc1 * s1 + sc2 * s2;
            sm += m1 * (i16at(a + 4 + 4 * j) + i16at(a + 6 + 4 * j)) +
                  m2 * (i16at(a + 8 + 4 * j) + i16at(a + 10 + 4 * j));
        }
        float dx = f32at(a);
        acc += half_fast(p) * dx * (float)si - half_fast(p + 2) * dx * (float)sm;
    }
    return acc;
}

static float dotq_q6_k_c(const void *row, const void *xq, int64_t n)
{
    const uint8_t *p = row, *a = xq;
    float acc = 0;
    for (int64_t b = 0; b < n / 256; b++, p += 210, a += A256_BYTES) {
        const int8_t *q = (const int8_t *)(a + A256_Q), *sc = (const int8_t *)(p + 192);
        int32_t si = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
            for (int is = 0; is < 2; is++) {
                int32_t s[4] = {0, 0, 0, 0};
                for (int j = 0; j < 16; j++) {
                    int l = 16 * is + j;
                    const int8_t *x = q + 128 * h + l;
                    s[0] += ((ql[l] & 0xf) | (qh[l] & 3) << 4) * x[0];
                    s[1] += ((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4) * x[32];
                    s[2] += ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) * x[64];
                    s[3] += ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) * x[96];
                }
                for (int g = 0; g < 4; g++) {
                    int k = 8 * h + is + 2 * g;   /* the 16 elements' sub-block */
                    si += sc[k] * (s[g] - 32 * i16at(a + 4 + 2 * k));
                }
            }
        }
        acc += half_fast(p + 208) * f32at(a) * (float)si;
    }
    return acc;
}

/* ---- fused dot products, AVX2 + FMA + F16C ---------------------------------
 * The quants of 16 elements are unpacked in a 16-byte register (nibbles
 * masked and shifted, fifth or sixth bits merged, offsets subtracted as
 * bytes), widened to 8 int32 lanes, converted to float and multiplied
 * with x by FMA; a block's (or sub-block's) sum is scaled once. */
#ifdef AK_SIMD_X86
#define AVX2_INL static inline __attribute__((always_inline)) AK_TARGET_AVX2

AVX2_INL float hsum_avx2(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INL float half_x86(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* sum over 16 elements of q[i] * x[i]: q as signed (s) or unsigned (u) bytes */
AVX2_INL __m256 dot16s(__m128i q, const float *x, __m256 acc)
{
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_loadu_ps(x), acc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(q, q))),
                           _mm256_loadu_ps(x + 8), acc);
}

AVX2_INL __m256 dot16u(__m128i q, const float *x, __m256 acc)
{
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)), _mm256_loadu_ps(x), acc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(q, q))),
                           _mm256_loadu_ps(x + 8), acc);
}

AVX2_INL __m256 sum32(const float *x)
{
    return _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(x + 8)),
                         _mm256_add_ps(_mm256_loadu_ps(x + 16), _mm256_loadu_ps(x + 24)));
}

/* 16 bytes, byte j 0xff where bit j of bits is set, 0 where not */
AVX2_INL __m128i bitbytes(uint32_t bits)
{
    __m128i v = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)bits),
                                 _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    const __m128i sel = _mm_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm_cmpeq_epi8(_mm_and_si128(v, sel), sel);
}

AVX2_INL __m128i lo4(__m128i q) { return _mm_and_si128(q, _mm_set1_epi8(0x0f)); }
AVX2_INL __m128i hi4(__m128i q) { return _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0f)); }
AVX2_INL __m128i load16(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }

/* A Q4_K/Q5_K block's (at p) 8 scales times d into scs; its 8 mins times
 * dmin returned: scale_min_k4 for j = 0..7 at once, by integer ops on the
 * 12 scale bytes (four sub-blocks a 32-bit word), each eight converted as
 * one vector.  The kernels broadcast them from memory, a load, where a
 * scalar convert, multiply and register broadcast per sub-block took the
 * float pipes. */
AVX2_INL __m256 scales_mins_k4(const uint8_t *p, float *scs)
{
    uint32_t a = le32(p + 4), b = le32(p + 8), c = le32(p + 12);
    uint32_t sc47 = (c & 0x0f0f0f0f) | ((a >> 6) & 0x03030303) << 4;
    uint32_t m47 = ((c >> 4) & 0x0f0f0f0f) | ((b >> 6) & 0x03030303) << 4;
    __m128i sc = _mm_setr_epi32((int)(a & 0x3f3f3f3f), (int)sc47, 0, 0);
    __m128i m = _mm_setr_epi32((int)(b & 0x3f3f3f3f), (int)m47, 0, 0);
    __m256 fsc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc)), fm = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m));
    _mm256_storeu_ps(scs, _mm256_mul_ps(_mm256_set1_ps(half_x86(p)), fsc));
    return _mm256_mul_ps(_mm256_set1_ps(half_x86(p + 2)), fm);
}

/* A Q6_K block's (at p) 16 scales times d into scs, the same way */
AVX2_INL void scales_q6_k(const uint8_t *p, float *scs)
{
    __m256 d = _mm256_set1_ps(half_x86(p + 208));
    __m128i s = load16(p + 192);
    __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(s));
    __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(s, s)));
    _mm256_storeu_ps(scs, _mm256_mul_ps(d, lo));
    _mm256_storeu_ps(scs + 8, _mm256_mul_ps(d, hi));
}

AK_TARGET_AVX2 static float dot_f32_avx2(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    const float *w = (const float *)(const void *)p;   /* loadu: any alignment */
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float t = hsum_avx2(_mm256_add_ps(a0, a1));
    for (; i < n; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        t += v * x[i];
    }
    return t;
}

AK_TARGET_AVX2 static float dot_f16_avx2(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(load16(p + 2 * i)), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(load16(p + 2 * i + 16)), _mm256_loadu_ps(x + i + 8), a1);
    }
    float t = hsum_avx2(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        t += half_x86(p + 2 * i) * x[i];
    return t;
}

AK_TARGET_AVX2 static float dot_bf16_avx2(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i v = load16(p + 2 * i), u = load16(p + 2 * i + 16);
        __m256 w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
        __m256 w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(u), 16));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
    }
    float t = hsum_avx2(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        t += ak_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)) * x[i];
    return t;
}

#define KFN(name) name##_avx2
#define KTARGET AK_TARGET_AVX2
#define vf __m256
#define VZERO _mm256_setzero_ps()
#define VFMA _mm256_fmadd_ps
#define VSET1 _mm256_set1_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VHSUM hsum_avx2
#define DOT16S dot16s
#define DOT16U dot16u
#define SUM32 sum32
#define BITBYTES bitbytes
#include "quant_kernels.h"

/* ---- AVX-512 (F, BW, VL): 16-float vectors ---- */
#define AVX512_INL static inline __attribute__((always_inline)) AK_TARGET_AVX512

AVX512_INL __m512 dot16s_512(__m128i q, const float *x, __m512 acc)
{
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_loadu_ps(x), acc);
}

AVX512_INL __m512 dot16u_512(__m128i q, const float *x, __m512 acc)
{
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q)), _mm512_loadu_ps(x), acc);
}

AVX512_INL __m512 sum32_512(const float *x)
{
    return _mm512_add_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(x + 16));
}

AVX512_INL __m128i bitbytes_512(uint32_t bits) { return _mm_movm_epi8((__mmask16)bits); }

AK_TARGET_AVX512 static float dot_f32_avx512(const void *row, const float *x, int64_t n)
{
    const float *w = row;   /* loadu: any alignment */
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    }
    float t = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    const uint8_t *p = row;
    for (; i < n; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        t += v * x[i];
    }
    return t;
}

AK_TARGET_AVX512 static float dot_f16_avx512(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    __m512 a0 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p + 2 * i))),
                             _mm512_loadu_ps(x + i), a0);
    float t = _mm512_reduce_add_ps(a0);
    for (; i < n; i++)
        t += half_x86(p + 2 * i) * x[i];
    return t;
}

AK_TARGET_AVX512 static float dot_bf16_avx512(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    __m512 a0 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 2 * i));
        __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
        a0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + i), a0);
    }
    float t = _mm512_reduce_add_ps(a0);
    for (; i < n; i++)
        t += ak_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)) * x[i];
    return t;
}

#define KFN(name) name##_avx512
#define KTARGET AK_TARGET_AVX512
#define vf __m512
#define VZERO _mm512_setzero_ps()
#define VFMA _mm512_fmadd_ps
#define VSET1 _mm512_set1_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VHSUM _mm512_reduce_add_ps
#define DOT16S dot16s_512
#define DOT16U dot16u_512
#define SUM32 sum32_512
#define BITBYTES bitbytes_512
#include "quant_kernels.h"

/* ---- 8-bit activations (--fast): the AVX2 quantizer (every x86 level
 * above takes it too: the same bits as the scalar one), the integer dots
 * at AVX2 and at AVX-512 VNNI ---- */
/* x[0..n) (n a multiple of 32) quantized into q, the scale at dst_d; sums
 * (one per 16 elements) into s16 */
AK_TARGET_AVX2 static void q8_block_avx2(const float *x, int n, uint8_t *dst_d, int8_t *q,
                                         int32_t *s16)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 mx = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float d, id;
    q8_scale(_mm_cvtss_f32(m), _mm256_movemask_ps(nan) != 0, &d, &id);
    memcpy(dst_d, &d, 4);
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int i = 0; i < n; i += 32) {
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vid));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 16), vid));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 24), vid));
        /* the packs saturate (as q8_round clamps) and interleave 4-byte
         * groups across the two halves: the permutation puts them back */
        __m256i v = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        v = _mm256_permutevar8x32_epi32(v, order);
        _mm256_storeu_si256((__m256i *)(void *)(q + i), v);
        __m256i t = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), v), _mm256_set1_epi16(1));
        t = _mm256_hadd_epi32(t, t);
        t = _mm256_hadd_epi32(t, t);
        s16[i / 16] = _mm256_extract_epi32(t, 0);
        s16[i / 16 + 1] = _mm256_extract_epi32(t, 4);
    }
}

AK_TARGET_AVX2 static void quantize_a32_avx2(const float *x, uint8_t *a, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++, x += 32, a += A32_BYTES) {
        int32_t s[2];
        q8_block_avx2(x, 32, a, (int8_t *)(a + A32_Q), s);
        s[0] += s[1];
        memcpy(a + 4, &s[0], 4);
    }
}

AK_TARGET_AVX2 static void quantize_a256_avx2(const float *x, uint8_t *a, int64_t n)
{
    for (int64_t b = 0; b < n / 256; b++, x += 256, a += A256_BYTES) {
        int32_t s[16];
        q8_block_avx2(x, 256, a, (int8_t *)(a + A256_Q), s);
        for (int k = 0; k < 16; k++) {
            int16_t v = (int16_t)s[k];
            memcpy(a + 4 + 2 * k, &v, 2);
        }
    }
}

/* 32 bytes, byte j 0xff where bit j of bits is set */
AVX2_INL __m256i bits32_avx2(uint32_t bits)
{
    const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                          2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), pick);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
}

AVX2_INL __m256i dpbusd_avx2(__m256i acc, __m256i u, __m256i s)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

AVX2_INL __m256i dpwssd_avx2(__m256i acc, __m256i a, __m256i b)
{
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}

#define KFN(name) name##_avx2
#define KTARGET AK_TARGET_AVX2
#define DPBUSD dpbusd_avx2
#define DPWSSD dpwssd_avx2
#define BITS32 bits32_avx2
#include "quant_q8_kernels.h"

#define VNNI_INL static inline __attribute__((always_inline)) AK_TARGET_VNNI
VNNI_INL __m256i bits32_vnni(uint32_t bits) { return _mm256_movm_epi8((__mmask32)bits); }

#define KFN(name) name##_vnni
#define KTARGET AK_TARGET_VNNI
#define DPBUSD _mm256_dpbusd_epi32
#define DPWSSD _mm256_dpwssd_epi32
#define BITS32 bits32_vnni
#include "quant_q8_kernels.h"
#endif

/* ---- the table ---------------------------------------------------------------
 * Every type ggml defines, with its block geometry (so that a file holding
 * a type we cannot compute with can still be laid out and validated); the
 * types we compute with have their row dequantizer and their fused dot
 * product at each SIMD level (NULL: the level below serves).  A type is
 * supported when its row is filled: there is no other list. */
typedef void (*row_fn)(const uint8_t *p, float *y, int64_t n);
typedef ak_dot_fn dot_fn;

#ifdef AK_SIMD_X86
#define AVX2(f) f
#define AVX512(f) f
#define VNNI(f) f
#else
#define AVX2(f) NULL
#define AVX512(f) NULL
#define VNNI(f) NULL
#endif
/* the fast dots of a type: scalar, AVX2 (AVX-512 without VNNI takes it),
 * AVX-512 VNNI */
#define DOTQ(name, a) a, {name##_c, AVX2(name##_avx2), NULL, VNNI(name##_vnni)}
/* the four-token fast dots: AVX2 and AVX-512 VNNI (none: scalar); the
 * K-quants only (see quant_q8_kernels.h), and Q5_K's at VNNI only, where it
 * ties dequantize + sgemm (its AVX2 one, 0.030-0.034 ns a weight and token
 * against 0.022-0.031, loses: bench/quant_dot.c) */
#define DOTQ4(name) {NULL, AVX2(name##_avx2), NULL, VNNI(name##_vnni)}
#define DOTQ4_VNNI(name) {NULL, NULL, NULL, VNNI(name##_vnni)}
/* the exact dots with sums of x: AVX2, AVX-512 */
#define DOTX(name) {NULL, AVX2(name##_avx2), AVX512(name##_avx512)}

static const struct qtype {
    const char *name;
    unsigned elems, bytes;
    row_fn dequant;
    dot_fn dot[AK_SIMD_N];
    unsigned q8;                 /* the fast dot's activation blocks: 32, 256, or 0: none */
    ak_dot_q8_fn dotq[AK_SIMD_N];
    ak_dot_xs_fn dotx[AK_SIMD_N];   /* exact dots with the sums of x per 32 (none: scalar) */
    ak_dot_q8x4_fn dotq4[AK_SIMD_N];   /* fast dots of four tokens at once (none: scalar) */
} ggml_types[] = {
    [AK_GGML_F32] = {"F32", 1, 4, row_f32, {dot_f32_c, AVX2(dot_f32_avx2), AVX512(dot_f32_avx512)}},
    [AK_GGML_F16] = {"F16", 1, 2, row_f16, {dot_f16_c, AVX2(dot_f16_avx2), AVX512(dot_f16_avx512)}},
    [AK_GGML_Q4_0] = {"Q4_0", 32, 18, row_q4_0, {dot_q4_0_c, AVX2(dot_q4_0_avx2), AVX512(dot_q4_0_avx512)},
                      DOTQ(dotq_q4_0, 32)},
    [AK_GGML_Q4_1] = {"Q4_1", 32, 20, row_q4_1, {dot_q4_1_c, AVX2(dot_q4_1_avx2), AVX512(dot_q4_1_avx512)},
                      DOTQ(dotq_q4_1, 32), DOTX(dot_q4_1_xs)},
    [AK_GGML_Q5_0] = {"Q5_0", 32, 22, row_q5_0, {dot_q5_0_c, AVX2(dot_q5_0_avx2), AVX512(dot_q5_0_avx512)},
                      DOTQ(dotq_q5_0, 32)},
    [AK_GGML_Q5_1] = {"Q5_1", 32, 24, row_q5_1, {dot_q5_1_c, AVX2(dot_q5_1_avx2), AVX512(dot_q5_1_avx512)},
                      DOTQ(dotq_q5_1, 32), DOTX(dot_q5_1_xs)},
    [AK_GGML_Q8_0] = {"Q8_0", 32, 34, row_q8_0, {dot_q8_0_c, AVX2(dot_q8_0_avx2), AVX512(dot_q8_0_avx512)},
                      DOTQ(dotq_q8_0, 32)},
    [AK_GGML_Q8_1] = {.name = "Q8_1", .elems = 32, .bytes = 36},
    [AK_GGML_Q2_K] = {.name = "Q2_K", .elems = 256, .bytes = 84},
    [AK_GGML_Q3_K] = {.name = "Q3_K", .elems = 256, .bytes = 110},
    [AK_GGML_Q4_K] = {"Q4_K", 256, 144, row_q4_k, {dot_q4_k_c, AVX2(dot_q4_k_avx2), AVX512(dot_q4_k_avx512)},
                      DOTQ(dotq_q4_k, 256), DOTX(dot_q4_k_xs), DOTQ4(dotq4_q4_k)},
    [AK_GGML_Q5_K] = {"Q5_K", 256, 176, row_q5_k, {dot_q5_k_c, AVX2(dot_q5_k_avx2), AVX512(dot_q5_k_avx512)},
                      DOTQ(dotq_q5_k, 256), DOTX(dot_q5_k_xs), DOTQ4_VNNI(dotq4_q5_k)},
    [AK_GGML_Q6_K] = {"Q6_K", 256, 210, row_q6_k, {dot_q6_k_c, AVX2(dot_q6_k_avx2), AVX512(dot_q6_k_avx512)},
                      DOTQ(dotq_q6_k, 256), .dotq4 = DOTQ4(dotq4_q6_k)},
    [AK_GGML_Q8_K] = {.name = "Q8_K", .elems = 256, .bytes = 292},
    [16] = {.name = "IQ2_XXS", .elems = 256, .bytes = 66},
    [17] = {.name = "IQ2_XS", .elems = 256, .bytes = 74},
    [18] = {.name = "IQ3_XXS", .elems = 256, .bytes = 98},
    [19] = {.name = "IQ1_S", .elems = 256, .bytes = 50},
    [20] = {.name = "IQ4_NL", .elems = 32, .bytes = 18},
    [21] = {.name = "IQ3_S", .elems = 256, .bytes = 110},
    [22] = {.name = "IQ2_S", .elems = 256, .bytes = 82},
    [23] = {.name = "IQ4_XS", .elems = 256, .bytes = 136},
    [24] = {.name = "I8", .elems = 1, .bytes = 1},
    [25] = {.name = "I16", .elems = 1, .bytes = 2},
    [26] = {.name = "I32", .elems = 1, .bytes = 4},
    [27] = {.name = "I64", .elems = 1, .bytes = 8},
    [28] = {.name = "F64", .elems = 1, .bytes = 8},
    [29] = {.name = "IQ1_M", .elems = 256, .bytes = 56},
    [AK_GGML_BF16] = {"BF16", 1, 2, row_bf16, {dot_bf16_c, AVX2(dot_bf16_avx2), AVX512(dot_bf16_avx512)}},
    /* 31-33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36-38 (IQ4_NL_4_4, ...)
     * were repacked layouts that ggml has since removed from files. */
    [34] = {.name = "TQ1_0", .elems = 256, .bytes = 54},
    [35] = {.name = "TQ2_0", .elems = 256, .bytes = 66},
    [39] = {.name = "MXFP4", .elems = 32, .bytes = 17},
    [40] = {.name = "NVFP4", .elems = 64, .bytes = 36},
    [41] = {.name = "Q1_0", .elems = 128, .bytes = 18},
};
#define NTYPES ((int)(sizeof ggml_types / sizeof ggml_types[0]))

static const struct qtype *qtype(int type)
{
    return type >= 0 && type < NTYPES && ggml_types[type].name ? &ggml_types[type] : NULL;
}

const char *ak_ggml_type_name(int type)
{
    const struct qtype *t = qtype(type);
    return t ? t->name : NULL;
}

int ak_ggml_block(int type, size_t *block_elems, size_t *block_bytes)
{
    const struct qtype *t = qtype(type);
    if (!t)
        return -1;
    *block_elems = t->elems;
    *block_bytes = t->bytes;
    return 0;
}

int ak_ggml_supported(int type)
{
    const struct qtype *t = qtype(type);
    return t && t->dequant;
}

static char supported_names[256];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void list_names(void)
{
    size_t len = 0;
    for (int t = 0; t < NTYPES; t++)
        if (ak_ggml_supported(t) && len < sizeof supported_names) {
            int n = snprintf(supported_names + len, sizeof supported_names - len, "%s%s",
                             len ? ", " : "", ggml_types[t].name);
            len += n > 0 ? (size_t)n : 0;
        }
}

const char *ak_ggml_supported_names(void)
{
    pthread_once(&names_once, list_names);
    return supported_names;
}

size_t ak_ggml_row_bytes(int type, int64_t n)
{
    const struct qtype *t = qtype(type);
    if (!t || n < 0)
        return 0;
    return (size_t)n / t->elems * t->bytes;
}

void ak_dequant_row(int type, const void *src, float *dst, int64_t n)
{
    const struct qtype *t = qtype(type);
    if (t && t->dequant)   /* unsupported: the caller checks ak_ggml_supported */
        t->dequant(src, dst, n);
}

ak_dot_fn ak_ggml_dot_at(int type, int level)
{
    const struct qtype *t = qtype(type);
    if (!t || !t->dequant || level < 0 || level >= AK_SIMD_N || level > ak_simd_cpu())
        return NULL;
    while (level > 0 && !t->dot[level])
        level--;
    return t->dot[level];
}

ak_dot_xs_fn ak_ggml_dot_xs_at(int type, int level)
{
    const struct qtype *t = qtype(type);
    if (!t || !t->dequant || level < 0 || level >= AK_SIMD_N || level > ak_simd_cpu())
        return NULL;
    while (level > 0 && !t->dotx[level])
        level--;
    return t->dotx[level];
}

void ak_xsum32(const float *x, float *xsum, int64_t n)
{
    for (int64_t g = 0; g < n / 32; g++, x += 32) {
        float s = 0;
        for (int i = 0; i < 32; i++)
            s += x[i];
        xsum[g] = s;
    }
}

/* Each type's kernel at the level in use, chosen on first use. */
static ak_dot_fn chosen[NTYPES];
static ak_dot_q8_fn chosen_fast[NTYPES];
static ak_dot_xs_fn chosen_xs[NTYPES];
static ak_dot_q8x4_fn chosen_fast4[NTYPES];
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    int level = ak_simd_level();
    for (int t = 0; t < NTYPES; t++) {
        chosen[t] = ak_ggml_dot_at(t, level);
        chosen_fast[t] = ak_ggml_dot_q8_at(t, level);
        chosen_xs[t] = ak_ggml_dot_xs_at(t, level);
        chosen_fast4[t] = ak_ggml_dot_q8x4_at(t, level);
    }
}

ak_dot_fn ak_ggml_dot(int type)
{
    pthread_once(&chosen_once, choose);
    return type >= 0 && type < NTYPES ? chosen[type] : NULL;
}

ak_dot_xs_fn ak_ggml_dot_xs(int type)
{
    pthread_once(&chosen_once, choose);
    return type >= 0 && type < NTYPES ? chosen_xs[type] : NULL;
}

int ak_dot_row(int type, const void *src, const float *x, int64_t n, float *y)
{
    ak_dot_fn f = ak_ggml_dot(type);
    if (!f)
        return -1;
    *y = f(src, x, n);
    return 0;
}

size_t ak_q8_bytes(int type, int64_t n)
{
    const struct qtype *t = qtype(type);
    if (!t || !t->q8 || n < 0)
        return 0;
    return (size_t)n / t->q8 * (t->q8 == 32 ? A32_BYTES : A256_BYTES);
}

void ak_q8_quantize(int type, const float *x, void *xq, int64_t n)
{
    const struct qtype *t = qtype(type);
    if (!t || !t->q8)
        return;
#ifdef AK_SIMD_X86
    if (ak_simd_level() >= AK_SIMD_AVX2) {
        (t->q8 == 32 ? quantize_a32_avx2 : quantize_a256_avx2)(x, xq, n);
        return;
    }
#endif
    (t->q8 == 32 ? quantize_a32_c : quantize_a256_c)(x, xq, n);
}

ak_dot_q8_fn ak_ggml_dot_q8_at(int type, int level)
{
    const struct qtype *t = qtype(type);
    if (!t || !t->q8 || level < 0 || level >= AK_SIMD_N || level > ak_simd_cpu())
        return NULL;
    while (level > 0 && !t->dotq[level])
        level--;
    return t->dotq[level];
}

ak_dot_q8_fn ak_ggml_dot_q8(int type)
{
    pthread_once(&chosen_once, choose);
    return type >= 0 && type < NTYPES ? chosen_fast[type] : NULL;
}

ak_dot_q8x4_fn ak_ggml_dot_q8x4_at(int type, int level)
{
    const struct qtype *t = qtype(type);
    if (!t || level < 0 || level >= AK_SIMD_N || level > ak_simd_cpu())
        return NULL;
    while (level > 0 && !t->dotq4[level])
        level--;
    return t->dotq4[level];
}

ak_dot_q8x4_fn ak_ggml_dot_q8x4(int type)
{
    pthread_once(&chosen_once, choose);
    return type >= 0 && type < NTYPES ? chosen_fast4[type] : NULL;
}
