/* quant_kernels.h - the fused dot products of the block types, written
 * once for the x86 SIMD levels: quant.c includes it for AVX2 (8-float
 * vectors) and for AVX-512 (16-float vectors) with these macros defined:
 *   KFN(name)      the kernel's name at this level
 *   KTARGET        its target attribute
 *   vf, VZERO, VFMA(a, b, c) = a * b + c, VSET1, VADD, VSUB, VHSUM
 *   DOT16S(q, x, acc), DOT16U(q, x, acc)  acc + the 16 (signed, unsigned)
 *                  bytes of q times x[0..16), as float
 *   SUM32(x)       x[0..32) added up into a vector
 *   BITBYTES(b)    16 bytes, byte j 0xff where bit j of b is set
 * and undefines them at its end.
 * The quants of 16 elements are unpacked in a 16-byte register (nibbles
 * masked and shifted, fifth or sixth bits merged, offsets subtracted as
 * bytes), widened to int32 lanes, converted to float and multiplied with x
 * by FMA; a block's (or sub-block's) sum is scaled once. */

KTARGET static float KFN(dot_q4_0)(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    vf acc = VZERO;
    const __m128i eight = _mm_set1_epi8(8);
    for (int64_t b = 0; b < n / 32; b++, p += 18, x += 32) {
        __m128i q = load16(p + 2);
        vf s = DOT16S(_mm_sub_epi8(lo4(q), eight), x, VZERO);
        s = DOT16S(_mm_sub_epi8(hi4(q), eight), x + 16, s);
        acc = VFMA(VSET1(half_x86(p)), s, acc);
    }
    return VHSUM(acc);
}

/* Q4_1 (five = 0) and Q5_1 (five = 1: a fifth bit per quant from qh):
 * w = d * q + m; the min's term m * sum(x) of each block takes the sum
 * from xs (ak_xsum32, once per product) or, xs NULL, adds the 32 x up;
 * five is a constant where this is inlined */
KTARGET static inline __attribute__((always_inline)) float KFN(q4_1_q5_1)(const void *row,
                                                                          const float *x,
                                                                          const float *xs,
                                                                          int64_t n, int five)
{
    const uint8_t *p = row;
    vf acc = VZERO;
    float macc = 0;
    const __m128i sixteen = _mm_set1_epi8(16);
    for (int64_t b = 0; b < n / 32; b++, p += five ? 24 : 20, x += 32) {
        __m128i q = load16(p + (five ? 8 : 4));
        __m128i q0 = lo4(q), q1 = hi4(q);
        if (five) {
            uint32_t qh = le32(p + 4);
            q0 = _mm_or_si128(q0, _mm_and_si128(BITBYTES(qh), sixteen));
            q1 = _mm_or_si128(q1, _mm_and_si128(BITBYTES(qh >> 16), sixteen));
        }
        vf s = DOT16U(q0, x, VZERO);
        s = DOT16U(q1, x + 16, s);
        acc = VFMA(VSET1(half_x86(p)), s, acc);
        if (xs)
            macc += half_x86(p + 2) * xs[b];
        else
            acc = VFMA(VSET1(half_x86(p + 2)), SUM32(x), acc);
    }
    return VHSUM(acc) + macc;
}

KTARGET static float KFN(dot_q4_1)(const void *row, const float *x, int64_t n)
{
    return KFN(q4_1_q5_1)(row, x, NULL, n, 0);
}

KTARGET static float KFN(dot_q4_1_xs)(const void *row, const float *x, const float *xs, int64_t n)
{
    return KFN(q4_1_q5_1)(row, x, xs, n, 0);
}

KTARGET static float KFN(dot_q5_0)(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    vf acc = VZERO;
    const __m128i sixteen = _mm_set1_epi8(16);
    for (int64_t b = 0; b < n / 32; b++, p += 22, x += 32) {
        uint32_t qh = le32(p + 2);
        __m128i q = load16(p + 6);
        /* (nibble | bit << 4) - 16 = nibble - (bit ? 0 : 16) */
        __m128i q0 = _mm_sub_epi8(lo4(q), _mm_andnot_si128(BITBYTES(qh), sixteen));
        __m128i q1 = _mm_sub_epi8(hi4(q), _mm_andnot_si128(BITBYTES(qh >> 16), sixteen));
        vf s = DOT16S(q0, x, VZERO);
        s = DOT16S(q1, x + 16, s);
        acc = VFMA(VSET1(half_x86(p)), s, acc);
    }
    return VHSUM(acc);
}

KTARGET static float KFN(dot_q5_1)(const void *row, const float *x, int64_t n)
{
    return KFN(q4_1_q5_1)(row, x, NULL, n, 1);
}

KTARGET static float KFN(dot_q5_1_xs)(const void *row, const float *x, const float *xs, int64_t n)
{
    return KFN(q4_1_q5_1)(row, x, xs, n, 1);
}

KTARGET static float KFN(dot_q8_0)(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    vf acc = VZERO;
    for (int64_t b = 0; b < n / 32; b++, p += 34, x += 32) {
        vf s = DOT16S(load16(p + 2), x, VZERO);
        s = DOT16S(load16(p + 18), x + 16, s);
        acc = VFMA(VSET1(half_x86(p)), s, acc);
    }
    return VHSUM(acc);
}

/* The K-quant kernels' loops over a block's sub-blocks stay loops: fully
 * unrolled (GCC does it at quant.o's -O3), the block's decoded scales are
 * kept in a register and each is taken out by a shuffle and a broadcast on
 * the float pipes, the cost the decoding once was to take away (Q4_K 0.076
 * ns/weight against 0.069); as loops each is the FMA's broadcast memory
 * operand, a load. */
#ifndef KEEP_LOOP
#if defined(__clang__)
#define KEEP_LOOP _Pragma("clang loop unroll(disable)")
#elif defined(__GNUC__)
#define KEEP_LOOP _Pragma("GCC unroll 1")
#else
#define KEEP_LOOP
#endif
#endif

/* Q4_K and Q5_K: sub-block j's 32 quants, nibbles of q[0..32) (low for
 * even j, high for odd j), scaled by d * sc; the min times sum(x) is taken
 * off, the sums of x per 32 from xs (ak_xsum32) or, xs NULL, added up
 * here.  The block's d * sc and dmin * m come decoded once
 * (scales_mins_k4), d * sc broadcast from memory; even and odd sub-blocks
 * and the mins have their own accumulators. */
static inline __attribute__((always_inline)) KTARGET float KFN(q4_k)(const void *row, const float *x,
                                                                     const float *xs, int64_t n)
{
    const uint8_t *p = row;
    vf acc0 = VZERO, acc1 = VZERO, macc = VZERO;
    __m256 macc8 = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 256; b++, p += 144) {
        float scs[8], ms[8];
        __m256 mv = scales_mins_k4(p, scs);
        if (xs)
            macc8 = _mm256_fmadd_ps(mv, _mm256_loadu_ps(xs + 8 * b), macc8);
        else
            _mm256_storeu_ps(ms, mv);
        const uint8_t *q = p + 16;
        KEEP_LOOP
        for (int j = 0; j < 8; j += 2, q += 32, x += 64) {
            __m128i a = load16(q), c = load16(q + 16);
            vf s1 = DOT16U(lo4(c), x + 16, DOT16U(lo4(a), x, VZERO));
            vf s2 = DOT16U(hi4(c), x + 48, DOT16U(hi4(a), x + 32, VZERO));
            acc0 = VFMA(VSET1(scs[j]), s1, acc0);
            acc1 = VFMA(VSET1(scs[j + 1]), s2, acc1);
            if (!xs) {
                macc = VFMA(VSET1(ms[j]), SUM32(x), macc);
                macc = VFMA(VSET1(ms[j + 1]), SUM32(x + 32), macc);
            }
        }
    }
    return VHSUM(VSUB(VADD(acc0, acc1), macc)) - hsum_avx2(macc8);
}

KTARGET static float KFN(dot_q4_k)(const void *row, const float *x, int64_t n)
{
    return KFN(q4_k)(row, x, NULL, n);
}

KTARGET static float KFN(dot_q4_k_xs)(const void *row, const float *x, const float *xs, int64_t n)
{
    return KFN(q4_k)(row, x, xs, n);
}

static inline __attribute__((always_inline)) KTARGET float KFN(q5_k)(const void *row, const float *x,
                                                                     const float *xs, int64_t n)
{
    const uint8_t *p = row;
    vf acc0 = VZERO, acc1 = VZERO, macc = VZERO;
    __m256 macc8 = _mm256_setzero_ps();
    const __m128i sixteen = _mm_set1_epi8(16);
    for (int64_t b = 0; b < n / 256; b++, p += 176) {
        float scs[8], ms[8];
        __m256 mv = scales_mins_k4(p, scs);
        if (xs)
            macc8 = _mm256_fmadd_ps(mv, _mm256_loadu_ps(xs + 8 * b), macc8);
        else
            _mm256_storeu_ps(ms, mv);
        const uint8_t *q = p + 48;
        __m128i ha = load16(p + 16), hc = load16(p + 32);   /* qh[0..16), qh[16..32) */
        KEEP_LOOP
        for (int j = 0; j < 8; j += 2, q += 32, x += 64) {
            __m128i a = load16(q), c = load16(q + 16);
            __m128i b1 = _mm_set1_epi8((char)(1 << j)), b2 = _mm_set1_epi8((char)(2 << j));
            /* bit j of qh[l] (sub-block j) or j + 1 (sub-block j + 1) as 16 */
            __m128i h1a = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(ha, b1), b1), sixteen);
            __m128i h1c = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(hc, b1), b1), sixteen);
            __m128i h2a = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(ha, b2), b2), sixteen);
            __m128i h2c = _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(hc, b2), b2), sixteen);
            vf s1 = DOT16U(_mm_or_si128(lo4(c), h1c), x + 16,
                               DOT16U(_mm_or_si128(lo4(a), h1a), x, VZERO));
            vf s2 = DOT16U(_mm_or_si128(hi4(c), h2c), x + 48,
                               DOT16U(_mm_or_si128(hi4(a), h2a), x + 32, VZERO));
            acc0 = VFMA(VSET1(scs[j]), s1, acc0);
            acc1 = VFMA(VSET1(scs[j + 1]), s2, acc1);
            if (!xs) {
                macc = VFMA(VSET1(ms[j]), SUM32(x), macc);
                macc = VFMA(VSET1(ms[j + 1]), SUM32(x + 32), macc);
            }
        }
    }
    return VHSUM(VSUB(VADD(acc0, acc1), macc)) - hsum_avx2(macc8);
}

KTARGET static float KFN(dot_q5_k)(const void *row, const float *x, int64_t n)
{
    return KFN(q5_k)(row, x, NULL, n);
}

KTARGET static float KFN(dot_q5_k_xs)(const void *row, const float *x, const float *xs, int64_t n)
{
    return KFN(q5_k)(row, x, xs, n);
}

/* Q6_K: per half (128 elements) and per 16 of them (one scale each of the
 * four quarters): 4 low bits from ql, 2 from qh, minus 32.  The block's 16
 * d * sc come decoded once (scales_q6_k), broadcast from memory. */
KTARGET static float KFN(dot_q6_k)(const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    vf acc0 = VZERO, acc1 = VZERO;
    const __m128i m3 = _mm_set1_epi8(3), m12 = _mm_set1_epi8(12), m48 = _mm_set1_epi8(48),
                  m192 = _mm_set1_epi8((char)192), off = _mm_set1_epi8(32);
    for (int64_t b = 0; b < n / 256; b++, p += 210) {
        const uint8_t *ql = p, *qh = p + 128;
        float scs[16];
        scales_q6_k(p, scs);
        KEEP_LOOP
        for (int k = 0; k < 4; k++) {
            /* half h = k / 2 (128 elements), its 16 at l = 16 * (k % 2) */
            int h = k >> 1, l = 16 * (k & 1);
            const float *sc = scs + 8 * h + (k & 1), *xh = x + 128 * h;
            const uint8_t *qlh = ql + 64 * h, *qhh = qh + 32 * h;
            __m128i a = load16(qlh + l), c = load16(qlh + l + 32), hb = load16(qhh + l);
            __m128i q1 = _mm_or_si128(lo4(a), _mm_slli_epi16(_mm_and_si128(hb, m3), 4));
            __m128i q2 = _mm_or_si128(lo4(c), _mm_slli_epi16(_mm_and_si128(hb, m12), 2));
            __m128i q3 = _mm_or_si128(hi4(a), _mm_and_si128(hb, m48));
            __m128i q4 = _mm_or_si128(hi4(c), _mm_srli_epi16(_mm_and_si128(hb, m192), 2));
            vf s1 = DOT16S(_mm_sub_epi8(q1, off), xh + l, VZERO);
            vf s2 = DOT16S(_mm_sub_epi8(q2, off), xh + l + 32, VZERO);
            vf s3 = DOT16S(_mm_sub_epi8(q3, off), xh + l + 64, VZERO);
            vf s4 = DOT16S(_mm_sub_epi8(q4, off), xh + l + 96, VZERO);
            acc0 = VFMA(VSET1(sc[0]), s1, acc0);
            acc1 = VFMA(VSET1(sc[2]), s2, acc1);
            acc0 = VFMA(VSET1(sc[4]), s3, acc0);
            acc1 = VFMA(VSET1(sc[6]), s4, acc1);
        }
        x += 256;
    }
    return VHSUM(VADD(acc0, acc1));
}

/* the level's parameters end here, for the next inclusion */
#undef KFN
#undef KTARGET
#undef vf
#undef VZERO
#undef VFMA
#undef VSET1
#undef VADD
#undef VSUB
#undef VHSUM
#undef DOT16S
#undef DOT16U
#undef SUM32
#undef BITBYTES
