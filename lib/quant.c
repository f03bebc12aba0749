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
 */
#include "quant.h"
#include "tensor.h"

#include <string.h>

static const struct { const char *name; unsigned elems, bytes; } ggml_types[] = {
    [AK_GGML_F32] = {"F32", 1, 4},
    [AK_GGML_F16] = {"F16", 1, 2},
    [AK_GGML_Q4_0] = {"Q4_0", 32, 18},
    [AK_GGML_Q4_1] = {"Q4_1", 32, 20},
    [AK_GGML_Q5_0] = {"Q5_0", 32, 22},
    [AK_GGML_Q5_1] = {"Q5_1", 32, 24},
    [AK_GGML_Q8_0] = {"Q8_0", 32, 34},
    [AK_GGML_Q8_1] = {"Q8_1", 32, 36},
    [AK_GGML_Q2_K] = {"Q2_K", 256, 84},
    [AK_GGML_Q3_K] = {"Q3_K", 256, 110},
    [AK_GGML_Q4_K] = {"Q4_K", 256, 144},
    [AK_GGML_Q5_K] = {"Q5_K", 256, 176},
    [AK_GGML_Q6_K] = {"Q6_K", 256, 210},
    [AK_GGML_Q8_K] = {"Q8_K", 256, 292},
    [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98},
    [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},
    [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136},
    [24] = {"I8", 1, 1},
    [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},
    [27] = {"I64", 1, 8},
    [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},
    [AK_GGML_BF16] = {"BF16", 1, 2},
    /* 31-33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) and 36-38 (IQ4_NL_4_4, ...)
     * were repacked layouts that ggml has since removed from files. */
    [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},
    [39] = {"MXFP4", 32, 17},
    [40] = {"NVFP4", 64, 36},
    [41] = {"Q1_0", 128, 18},
};
#define NTYPES ((int)(sizeof ggml_types / sizeof ggml_types[0]))

const char *ak_ggml_type_name(int type)
{
    return type >= 0 && type < NTYPES ? ggml_types[type].name : NULL;
}

int ak_ggml_block(int type, size_t *block_elems, size_t *block_bytes)
{
    if (type < 0 || type >= NTYPES || !ggml_types[type].name)
        return -1;
    *block_elems = ggml_types[type].elems;
    *block_bytes = ggml_types[type].bytes;
    return 0;
}

int ak_ggml_supported(int type)
{
    switch (type) {
    case AK_GGML_F32: case AK_GGML_F16: case AK_GGML_BF16: case AK_GGML_Q8_0:
    case AK_GGML_Q4_0: case AK_GGML_Q4_1: case AK_GGML_Q5_0: case AK_GGML_Q5_1:
    case AK_GGML_Q4_K: case AK_GGML_Q5_K: case AK_GGML_Q6_K:
        return 1;
    default:
        return 0;
    }
}

size_t ak_ggml_row_bytes(int type, int64_t n)
{
    size_t be = 1, bb = 0;
    if (ak_ggml_block(type, &be, &bb) < 0 || n < 0)
        return 0;
    return (size_t)n / be * bb;
}

static float half(const uint8_t *p) { return ak_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

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

static void q5_0(const uint8_t *b, float *y)
{
    float d = half(b);
    uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
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
    uint32_t qh = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
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
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m)
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

void ak_dequant_row(int type, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    switch (type) {
    case AK_GGML_F32:
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&dst[i], &u, 4);
        }
        return;
    case AK_GGML_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = half(p + 2 * i);
        return;
    case AK_GGML_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = ak_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return;
    default:
        break;
    }
    void (*block)(const uint8_t *, float *);
    size_t be = 1, bb = 0;
    switch (type) {
    case AK_GGML_Q4_0: block = q4_0; break;
    case AK_GGML_Q4_1: block = q4_1; break;
    case AK_GGML_Q5_0: block = q5_0; break;
    case AK_GGML_Q5_1: block = q5_1; break;
    case AK_GGML_Q8_0: block = q8_0; break;
    case AK_GGML_Q4_K: block = q4_k; break;
    case AK_GGML_Q5_K: block = q5_k; break;
    case AK_GGML_Q6_K: block = q6_k; break;
    default: return;   /* unsupported: the caller checks ak_ggml_supported */
    }
    ak_ggml_block(type, &be, &bb);
    for (int64_t i = 0; i < n / (int64_t)be; i++)
        block(p + (size_t)i * bb, dst + (size_t)i * be);
}

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

/* Per-lane sums over the blocks (lane j gathers elements j and j + 16 of
 * every block), added up once at the end: loops the compiler vectorises
 * without reassociating a reduction.  Built for AVX2 + FMA as well as the
 * baseline, chosen at run time (GCC's target_clones). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define AK_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define AK_CLONES
#endif
AK_CLONES static float dot_q4_1(const uint8_t *p, const float *x, int64_t nb)
{
    float lane[16] = {0};
    for (int64_t b = 0; b < nb; b++, p += 20, x += 32) {
        float d = half_fast(p), m = half_fast(p + 2);
        const uint8_t *q = p + 4;
        for (int j = 0; j < 16; j++)
            lane[j] += d * ((float)(q[j] & 0xf) * x[j] + (float)(q[j] >> 4) * x[j + 16]) +
                       m * (x[j] + x[j + 16]);
    }
    float t = 0;
    for (int j = 0; j < 16; j++)
        t += lane[j];
    return t;
}

AK_CLONES static float dot_q8_0(const uint8_t *p, const float *x, int64_t nb)
{
    float lane[32] = {0};
    for (int64_t b = 0; b < nb; b++, p += 34, x += 32) {
        float d = half_fast(p);
        const int8_t *q = (const int8_t *)(p + 2);
        for (int j = 0; j < 32; j++)
            lane[j] += d * ((float)q[j] * x[j]);
    }
    float t = 0;
    for (int j = 0; j < 32; j++)
        t += lane[j];
    return t;
}

int ak_dot_row(int type, const void *src, const float *x, int64_t n, float *y)
{
    switch (type) {
    case AK_GGML_Q4_1: *y = dot_q4_1(src, x, n / 32); return 0;
    case AK_GGML_Q8_0: *y = dot_q8_0(src, x, n / 32); return 0;
    default: return -1;
    }
}
