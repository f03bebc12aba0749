/* quant_q8_kernels.h - the fast mode's integer dot products (quant.h:
 * 8-bit activations), written once for the x86 levels: quant.c includes
 * it for AVX2 and for AVX-512 VNNI with these macros defined:
 *   KFN(name)        the kernel's name at this level
 *   KTARGET          its target attribute
 *   DPBUSD(acc, u, s)  acc + per int32 lane the sum of four u8 * s8
 *                    products (AVX2: vpmaddubsw + vpmaddwd, exact for the
 *                    ranges used here: |u * s| pairs stay below 2^15)
 *   DPWSSD(acc, a, b)  acc + per int32 lane the sum of two int16 products
 *   BITS32(bits)     32 bytes, byte j 0xff where bit j of bits is set
 * and undefines them at its end.  256-bit integer vectors throughout (Zen 4
 * runs 512-bit ones as two halves; one sub-block of 32 fills a vector).
 * Each block's or super-block's integer sum is exact; it is converted and
 * scaled once, in 8 float lanes added at the end. */

/* 16 bytes of nibbles as 32: the low nibbles (elements 0..15), then the
 * high ones (16..31) */
KTARGET static inline __m256i KFN(nib32)(const uint8_t *p)
{
    __m128i q = _mm_loadu_si128((const __m128i *)(const void *)p);
    const __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

KTARGET static inline __m256i KFN(ld32)(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

KTARGET static inline float KFN(hsum8)(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* the integer s of 8 lanes, lane 0 less off, scaled by d into acc */
KTARGET static inline __m256 KFN(scale_add)(__m256i s, int32_t off, float d, __m256 acc)
{
    s = _mm256_sub_epi32(s, _mm256_setr_epi32(off, 0, 0, 0, 0, 0, 0, 0));
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), acc);
}

/* One 32-element block each: acc + its integer sum scaled by d_w * d_x
 * (the offset taken off in integers), the min's term added to *mins. */
KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_q4_0)(const uint8_t *p, const uint8_t *a, __m256 acc, float *mins)
{
    __m256i s = DPBUSD(_mm256_setzero_si256(), KFN(nib32)(p + 2), KFN(ld32)(a + A32_Q));
    return KFN(scale_add)(s, 8 * i32at(a + 4), half_x86(p) * f32at(a), acc);
}

KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_q4_1)(const uint8_t *p, const uint8_t *a, __m256 acc, float *mins)
{
    __m256i s = DPBUSD(_mm256_setzero_si256(), KFN(nib32)(p + 4), KFN(ld32)(a + A32_Q));
    float dx = f32at(a);
    *mins += half_x86(p + 2) * dx * (float)i32at(a + 4);
    return KFN(scale_add)(s, 0, half_x86(p) * dx, acc);
}

KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_q5_0)(const uint8_t *p, const uint8_t *a, __m256 acc, float *mins)
{
    __m256i u = _mm256_or_si256(KFN(nib32)(p + 6), _mm256_and_si256(BITS32(le32(p + 2)), _mm256_set1_epi8(16)));
    __m256i s = DPBUSD(_mm256_setzero_si256(), u, KFN(ld32)(a + A32_Q));
    return KFN(scale_add)(s, 16 * i32at(a + 4), half_x86(p) * f32at(a), acc);
}

KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_q5_1)(const uint8_t *p, const uint8_t *a, __m256 acc, float *mins)
{
    __m256i u = _mm256_or_si256(KFN(nib32)(p + 8), _mm256_and_si256(BITS32(le32(p + 4)), _mm256_set1_epi8(16)));
    __m256i s = DPBUSD(_mm256_setzero_si256(), u, KFN(ld32)(a + A32_Q));
    float dx = f32at(a);
    *mins += half_x86(p + 2) * dx * (float)i32at(a + 4);
    return KFN(scale_add)(s, 0, half_x86(p) * dx, acc);
}

/* signed weights: |w| times x with w's sign (vpsignb) */
KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_q8_0)(const uint8_t *p, const uint8_t *a, __m256 acc, float *mins)
{
    __m256i w = KFN(ld32)(p + 2), x = KFN(ld32)(a + A32_Q);
    __m256i s = DPBUSD(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return KFN(scale_add)(s, 0, half_x86(p) * f32at(a), acc);
}

/* A row of 32-element blocks, two at a time into two accumulators: one
 * chain of FMAs would wait on the FMA's latency at every block. */
#define A32_DOT(type, wbytes)                                                          \
    KTARGET static float KFN(dotq_##type)(const void *row, const void *xq, int64_t n)  \
    {                                                                                  \
        const uint8_t *p = row, *a = xq;                                               \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                 \
        float m0 = 0, m1 = 0;                                                          \
        int64_t nb = n / 32, b = 0;                                                    \
        for (; b + 1 < nb; b += 2, p += 2 * (wbytes), a += 2 * A32_BYTES) {            \
            acc0 = KFN(blk_##type)(p, a, acc0, &m0);                                   \
            acc1 = KFN(blk_##type)(p + (wbytes), a + A32_BYTES, acc1, &m1);            \
        }                                                                              \
        if (b < nb)                                                                    \
            acc0 = KFN(blk_##type)(p, a, acc0, &m0);                                   \
        return KFN(hsum8)(_mm256_add_ps(acc0, acc1)) + (m0 + m1);                      \
    }
A32_DOT(q4_0, 18)
A32_DOT(q4_1, 20)
A32_DOT(q5_0, 22)
A32_DOT(q5_1, 24)
A32_DOT(q8_0, 34)
#undef A32_DOT

/* Q4_K, Q5_K: the 6-bit scales and mins of the 8 sub-blocks
 * (scale_min_k4 for all eight at once, on 32-bit words), kept in
 * registers (bytes stored and read back as wider words would stall the
 * store forwarding): *sc the scales as 16-bit words 0..7 in both halves,
 * the return value the mins' term of the super-block, lane j = min_j *
 * (sum of q over sub-block j), from the activations' sums per 16 at a + 4 */
KTARGET static inline __attribute__((always_inline)) __m256i
KFN(scales_mins_k4)(const uint8_t *q, const uint8_t *a, __m256i *sc)
{
    uint32_t w0 = le32(q), w1 = le32(q + 4), w2 = le32(q + 8);
    uint32_t s0 = w0 & 0x3f3f3f3f, s1 = (w2 & 0x0f0f0f0f) | (w0 >> 2 & 0x30303030);
    uint32_t m0 = w1 & 0x3f3f3f3f, m1 = (w2 >> 4 & 0x0f0f0f0f) | (w1 >> 2 & 0x30303030);
    *sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_setr_epi32((int)s0, (int)s1, 0, 0)));
    __m128i m = _mm_setr_epi32((int)m0, (int)m1, 0, 0);
    __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));   /* m0 m0 m1 m1 ... */
    return _mm256_madd_epi16(KFN(ld32)(a + 4), m16);
}

/* word j of each half of v, in every word */
#define WORD_J(v, j) _mm256_shuffle_epi8((v), _mm256_set1_epi16((short)(0x0100 + 0x0202 * (j))))

/* Q4_K (five = 0) and Q5_K (five = 1: a fifth bit per quant from qh),
 * one super-block; five is a constant where this is inlined */
KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_k4)(const uint8_t *p, const uint8_t *a, __m256 acc, int five)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), sixteen = _mm256_set1_epi8(16);
    __m256i sc, mn = KFN(scales_mins_k4)(p + 4, a, &sc);
    const uint8_t *w = p + (five ? 48 : 16), *x = a + A256_Q;
    __m256i qh = five ? KFN(ld32)(p + 16) : _mm256_setzero_si256();
    __m256i si = _mm256_setzero_si256(), si2 = _mm256_setzero_si256();   /* two chains */
    for (int j = 0; j < 8; j += 2, w += 32, x += 64) {
        __m256i v = KFN(ld32)(w);
        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if (five) {
            __m256i b1 = _mm256_set1_epi8((char)(1 << j)), b2 = _mm256_set1_epi8((char)(2 << j));
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1), sixteen));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, b2), b2), sixteen));
        }
        si = DPWSSD(si, _mm256_maddubs_epi16(lo, KFN(ld32)(x)), WORD_J(sc, j));
        si2 = DPWSSD(si2, _mm256_maddubs_epi16(hi, KFN(ld32)(x + 32)), WORD_J(sc, j + 1));
    }
    si = _mm256_add_epi32(si, si2);
    float dx = f32at(a);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_x86(p) * dx), _mm256_cvtepi32_ps(si), acc);
    return _mm256_fnmadd_ps(_mm256_set1_ps(half_x86(p + 2) * dx), _mm256_cvtepi32_ps(mn), acc);
}

KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_q4_k)(const uint8_t *p, const uint8_t *a, __m256 acc)
{
    return KFN(blk_k4)(p, a, acc, 0);
}

KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_q5_k)(const uint8_t *p, const uint8_t *a, __m256 acc)
{
    return KFN(blk_k4)(p, a, acc, 1);
}

/* Q6_K: u = 4 low bits from ql, 2 from qh (0..63); the offset 32 is taken
 * off as 32 * sum over the 16 sub-blocks of scale * (sum of q).  Each
 * vector of 32 quants spans two sub-blocks: its scales as 8 + 8 int16. */
KTARGET static inline __m256i KFN(scale_pair)(__m128i sc, int k)
{
    const __m128i base = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, _mm_add_epi8(base, _mm_set1_epi8((char)k))));
}

KTARGET static inline __attribute__((always_inline)) __m256
KFN(blk_q6_k)(const uint8_t *p, const uint8_t *a, __m256 acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), m48 = _mm256_set1_epi8(0x30);
    __m128i sc = _mm_loadu_si128((const __m128i *)(const void *)(p + 192));
    __m256i off = _mm256_madd_epi16(KFN(ld32)(a + 4), _mm256_cvtepi8_epi16(sc));
    __m256i si = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
    __m256i si2 = _mm256_setzero_si256();   /* two chains */
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = p + 64 * h, *x = a + A256_Q + 128 * h;
        __m256i v = KFN(ld32)(ql), c = KFN(ld32)(ql + 32), hb = KFN(ld32)(p + 128 + 32 * h);
        __m256i q1 = _mm256_or_si256(_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m48));
        __m256i q2 = _mm256_or_si256(_mm256_and_si256(c, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m48));
        __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), _mm256_and_si256(hb, m48));
        __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), m4),
                                     _mm256_and_si256(_mm256_srli_epi16(hb, 2), m48));
        si = DPWSSD(si, _mm256_maddubs_epi16(q1, KFN(ld32)(x)), KFN(scale_pair)(sc, 8 * h));
        si2 = DPWSSD(si2, _mm256_maddubs_epi16(q2, KFN(ld32)(x + 32)), KFN(scale_pair)(sc, 8 * h + 2));
        si = DPWSSD(si, _mm256_maddubs_epi16(q3, KFN(ld32)(x + 64)), KFN(scale_pair)(sc, 8 * h + 4));
        si2 = DPWSSD(si2, _mm256_maddubs_epi16(q4, KFN(ld32)(x + 96)), KFN(scale_pair)(sc, 8 * h + 6));
    }
    si = _mm256_add_epi32(si, si2);
    return _mm256_fmadd_ps(_mm256_set1_ps(half_x86(p + 208) * f32at(a)), _mm256_cvtepi32_ps(si), acc);
}

/* A row of K-quant super-blocks, one accumulator (each block has two
 * integer chains of its own). */
#define A256_DOT(type, wbytes)                                                         \
    KTARGET static float KFN(dotq_##type)(const void *row, const void *xq, int64_t n)  \
    {                                                                                  \
        const uint8_t *p = row, *a = xq;                                               \
        __m256 acc = _mm256_setzero_ps();                                              \
        for (int64_t b = 0; b < n / 256; b++, p += (wbytes), a += A256_BYTES)          \
            acc = KFN(blk_##type)(p, a, acc);                                          \
        return KFN(hsum8)(acc);                                                        \
    }
A256_DOT(q4_k, 144)
A256_DOT(q5_k, 176)
A256_DOT(q6_k, 210)
#undef A256_DOT

/* Four tokens against one row (prefill in the fast mode): each super-block
 * of the row is unpacked once (its quants and its scales) and multiplied
 * with the four tokens' blocks, stride bytes apart (the block functions
 * are inlined four times on the same p; the compiler shares what depends
 * on p alone).  The K-quants only: the 32-element types' per-block scaling
 * (a conversion and an FMA per token and block) made theirs slower than
 * dequantizing + sgemm (bench/quant_dot.c, bench/RESULTS.md). */
#define DOT4(type, wbytes)                                                             \
    /* unused: Q5_K's AVX2 one, which the table leaves out (quant.c) */              \
    KTARGET __attribute__((unused)) static void                                       \
    KFN(dotq4_##type)(const void *row, const void *xq, size_t stride, int64_t n, float *out) \
    {                                                                                  \
        const uint8_t *p = row, *a = xq;                                               \
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;                    \
        for (int64_t b = 0; b < n / 256; b++, p += (wbytes), a += A256_BYTES) {        \
            c0 = KFN(blk_##type)(p, a, c0);                                            \
            c1 = KFN(blk_##type)(p, a + stride, c1);                                   \
            c2 = KFN(blk_##type)(p, a + 2 * stride, c2);                               \
            c3 = KFN(blk_##type)(p, a + 3 * stride, c3);                               \
        }                                                                              \
        out[0] = KFN(hsum8)(c0);                                                       \
        out[1] = KFN(hsum8)(c1);                                                       \
        out[2] = KFN(hsum8)(c2);                                                       \
        out[3] = KFN(hsum8)(c3);                                                       \
    }
DOT4(q4_k, 144)
DOT4(q5_k, 176)
DOT4(q6_k, 210)
#undef DOT4

#undef WORD_J
#undef KFN
#undef KTARGET
#undef DPBUSD
#undef DPWSSD
#undef BITS32
