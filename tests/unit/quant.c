/* quant.c - every supported type's fused dot product (quant.h), at every
 * SIMD level this CPU has, against the dequantized row dotted with x in
 * double precision (ak_dequant_row itself is checked against the gguf
 * package in gguf_test.py), and each SIMD level against the scalar one:
 * |dot - reference| <= 1e-5 * sum |w_i x_i|.  Random rows (random quants,
 * scales and mins, subnormal halves included, rows at odd addresses), then
 * rows of every tensor of the installed GGUF models ($AK_MODELS/smollm2,
 * gemma3, qwen*: skipped when absent).
 * The fast mode's integer dots (8-bit activations) on the same rows: the
 * activations quantize to the same bytes at every level; every level's
 * dot equals the f64 dot of the dequantized row with the dequantized
 * activations within 1e-5 (the same arithmetic, float rounding apart);
 * and it is within the activations' rounding of the exact f64 dot:
 * |fast - exact| <= sum_i |w_i| d_x(i) / 2 (+ 1e-5 of sum |w x|), d_x(i)
 * the scale of x_i's block (max |x| / 127 of 32 or 256 elements). */
#include "format/gguf.h"
#include "format/quant.h"
#include "core/simd.h"
#include "attnkit/tensor.h"
#include "test.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t next32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static double unif(void) { return next32() / 4294967296.0; }   /* [0, 1) */

/* A finite half: mostly |v| in [1e-4, 1) with either sign, sometimes a
 * subnormal or zero. */
static uint16_t rand_half(void)
{
    uint32_t r = next32() % 16;
    if (r == 0)
        return (uint16_t)(next32() & 0x83ff);   /* subnormal or zero */
    double v = (unif() < 0.5 ? -1 : 1) * pow(10, -4 * unif());
    return ak_f32_to_f16((float)v);
}

static void put_half(uint8_t *p, uint16_t h)
{
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* The offsets of a block's half-precision fields (d, m / dmin). */
static void half_fields(int type, int off[2], int *n)
{
    *n = 1;
    off[0] = 0;
    switch (type) {
    case AK_GGML_Q4_1: case AK_GGML_Q5_1: case AK_GGML_Q4_K: case AK_GGML_Q5_K:
        *n = 2;
        off[1] = 2;
        break;
    case AK_GGML_Q6_K:
        off[0] = 208;
        break;
    default:
        break;
    }
}

/* A random row of n elements of type at p. */
static void rand_row(int type, uint8_t *p, int64_t n)
{
    size_t be, bb;
    ak_ggml_block(type, &be, &bb);
    if (type == AK_GGML_F32) {
        for (int64_t i = 0; i < n; i++) {
            float v = (float)((unif() * 2 - 1) * pow(10, 2 - 4 * unif()));
            memcpy(p + 4 * i, &v, 4);
        }
        return;
    }
    if (type == AK_GGML_F16 || type == AK_GGML_BF16) {
        for (int64_t i = 0; i < n; i++) {
            float v = (float)((unif() * 2 - 1) * pow(10, 2 - 4 * unif()));
            put_half(p + 2 * i, type == AK_GGML_F16 ? ak_f32_to_f16(v) : ak_f32_to_bf16(v));
        }
        return;
    }
    size_t nbytes = (size_t)n / be * bb;
    for (size_t i = 0; i < nbytes; i++)
        p[i] = (uint8_t)next32();
    int off[2], nf;
    half_fields(type, off, &nf);
    for (size_t b = 0; b < (size_t)n / be; b++)
        for (int f = 0; f < nf; f++)
            put_half(p + b * bb + off[f], rand_half());
}

static double fast_worst;   /* the largest |fast - exact| / sum |w x| seen */

/* The fast (8-bit activation) dots of row with x, at every level, against
 * the references in the header comment; w is the dequantized row.
 * Returns the number of failures. */
static int check_row_q8(int type, const uint8_t *row, const float *w, const float *x, int64_t n,
                        const char *what, int quiet)
{
    size_t qb = ak_q8_bytes(type, n), be = n % 256 == 0 && qb == (size_t)n / 256 * 292 ? 256 : 32;
    uint8_t *xa = malloc(qb), *xs = malloc(qb);
    ak_simd_force("scalar");
    ak_q8_quantize(type, x, xs, n);
    ak_simd_force("auto");
    ak_q8_quantize(type, x, xa, n);
    int bad = 0;
    if (memcmp(xa, xs, qb)) {
        CHECK(0, "%s n=%lld %s: the activations quantize to the same bytes at %s and scalar",
              ak_ggml_type_name(type), (long long)n, what, ak_simd_name(ak_simd_level()));
        bad++;
    }
    /* the activations as the blocks hold them: d at the block's start, q
     * after the sums (4 bytes for 32-blocks, 32 for 256-blocks) */
    size_t bbytes = be == 32 ? 40 : 292, qoff = be == 32 ? 8 : 36;
    double ref_q = 0, scale_q = 0, exact = 0, scale = 0, bound = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *blk = xa + (size_t)(i / (int64_t)be) * bbytes;
        float d;
        memcpy(&d, blk, 4);
        double xd = (double)d * (int8_t)blk[qoff + (size_t)(i % (int64_t)be)];
        ref_q += (double)w[i] * xd;
        scale_q += fabs((double)w[i] * xd);
        exact += (double)w[i] * x[i];
        scale += fabs((double)w[i] * x[i]);
        bound += fabs((double)w[i]) * d / 2;
    }
    float scalar = ak_ggml_dot_q8_at(type, AK_SIMD_SCALAR)(row, xa, n);
    for (int l = 0; l <= ak_simd_cpu(); l++) {
        float got = ak_ggml_dot_q8_at(type, l)(row, xa, n);
        double tol = 1e-5 * scale_q, err = fabs(got - exact);
        int ok = fabs(got - ref_q) <= tol && fabs((double)got - scalar) <= tol &&
                 err <= bound * (1 + 1e-6) + 1e-5 * scale;
        if (scale > 0 && err / scale > fast_worst)
            fast_worst = err / scale;
        if (!ok || !quiet)
            CHECK(ok, "%s %s n=%lld %s fast: %.9g, same arithmetic in f64 %.9g, scalar %.9g "
                  "(tolerance %.3g); exact %.9g, bound %.3g", ak_ggml_type_name(type),
                  ak_simd_name(l), (long long)n, what, got, ref_q, scalar, tol, exact, bound);
        bad += !ok;
    }
    /* the four-token dots (prefill): four other activations, each against
     * the one-token scalar dot of the same quantized bytes, stride bytes
     * apart (odd, as no real stride is, to show any alignment serves) */
    size_t stride = qb + 3;
    uint8_t *x4 = malloc(4 * stride);
    float *xt = malloc((size_t)n * sizeof *xt), ref4[4], scale4[4];
    for (int t = 0; t < 4; t++) {
        scale4[t] = 0;
        for (int64_t i = 0; i < n; i++) {
            /* x, -x / 2, x rotated by one, x times a ramp */
            xt[i] = t == 0 ? x[i] : t == 1 ? -x[i] / 2 : t == 2 ? x[(i + 1) % n]
                                                               : x[i] * (float)(i % 7) / 3;
            scale4[t] += fabsf(w[i] * xt[i]);
        }
        ak_q8_quantize(type, xt, x4 + t * stride, n);
        ref4[t] = ak_ggml_dot_q8_at(type, AK_SIMD_SCALAR)(row, x4 + t * stride, n);
    }
    for (int l = 0; l <= ak_simd_cpu(); l++) {
        ak_dot_q8x4_fn f4 = ak_ggml_dot_q8x4_at(type, l);
        if (!f4 || (l > 0 && f4 == ak_ggml_dot_q8x4_at(type, l - 1)))
            continue;
        float got[4];
        f4(row, x4, stride, n, got);
        for (int t = 0; t < 4; t++) {
            int ok = fabsf(got[t] - ref4[t]) <= 1e-5f * scale4[t] + 1e-30f;
            if (!ok || !quiet)
                CHECK(ok, "%s %s n=%lld %s fast x4, token %d: %.9g, one-token scalar %.9g",
                      ak_ggml_type_name(type), ak_simd_name(l), (long long)n, what, t, got[t],
                      ref4[t]);
            bad += !ok;
        }
    }
    free(x4);
    free(xt);
    free(xa);
    free(xs);
    return bad;
}

/* Checks every level's dot of row (n elements) with x against the double
 * reference; what names the case.  Returns the number of failures. */
static int check_row(int type, const uint8_t *row, const float *x, int64_t n, const char *what,
                     int quiet)
{
    float *w = malloc((size_t)n * sizeof *w);
    ak_dequant_row(type, row, w, n);
    double ref = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        ref += (double)w[i] * x[i];
        scale += fabs((double)w[i] * x[i]);
    }
    double tol = 1e-5 * scale;
    int bad = 0;
    float scalar = ak_ggml_dot_at(type, AK_SIMD_SCALAR)(row, x, n);
    for (int l = 0; l <= ak_simd_cpu(); l++) {
        ak_dot_fn f = ak_ggml_dot_at(type, l);
        float got = f(row, x, n);
        int ok = fabs(got - ref) <= tol && fabs((double)got - scalar) <= tol;
        if (!ok || !quiet)
            CHECK(ok, "%s %s n=%lld %s: %.9g, reference %.9g, scalar %.9g (tolerance %.3g)",
                  ak_ggml_type_name(type), ak_simd_name(l), (long long)n, what, got, ref, scalar, tol);
        bad += !ok;
    }
    /* the dots with the sums of x per 32 (Q4_K, Q5_K; AVX2 and up) */
    float *xs = malloc((size_t)(n / 32 + 1) * sizeof *xs);
    ak_xsum32(x, xs, n);
    for (int l = 0; l <= ak_simd_cpu(); l++) {
        ak_dot_xs_fn f = ak_ggml_dot_xs_at(type, l);
        if (!f)
            continue;
        float got = f(row, x, xs, n);
        int ok = fabs(got - ref) <= tol && fabs((double)got - scalar) <= tol;
        if (!ok || !quiet)
            CHECK(ok, "%s %s with sums of x n=%lld %s: %.9g, reference %.9g, scalar %.9g (tolerance %.3g)",
                  ak_ggml_type_name(type), ak_simd_name(l), (long long)n, what, got, ref, scalar, tol);
        bad += !ok;
    }
    free(xs);
    if (ak_ggml_dot_q8(type))
        bad += check_row_q8(type, row, w, x, n, what, quiet);
    free(w);
    return bad;
}

static void random_rows(void)
{
    static const int types[] = {AK_GGML_F32, AK_GGML_F16, AK_GGML_BF16, AK_GGML_Q4_0, AK_GGML_Q4_1,
                                AK_GGML_Q5_0, AK_GGML_Q5_1, AK_GGML_Q8_0, AK_GGML_Q4_K,
                                AK_GGML_Q5_K, AK_GGML_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int type = types[k];
        CHECK(ak_ggml_supported(type) && ak_ggml_dot(type) && ak_ggml_dot_at(type, AK_SIMD_SCALAR),
              "%s has a table row (dequant and fused dot)", ak_ggml_type_name(type));
        size_t be, bb;
        ak_ggml_block(type, &be, &bb);
        /* lengths: one block, several, a model row; odd ones for the
         * element types (the vector loops' tails) */
        int64_t lens[] = {(int64_t)be, 3 * (int64_t)be, be == 1 ? 37 : 5 * (int64_t)be,
                          be == 1 ? 1003 : 2048};
        for (size_t li = 0; li < 4; li++) {
            int64_t n = lens[li];
            size_t rb = ak_ggml_row_bytes(type, n);
            uint8_t *buf = malloc(rb + 1);
            float *xb = malloc((size_t)(n + 1) * sizeof *xb);
            int bad = 0, rounds = 40;
            for (int r = 0; r < rounds; r++) {
                /* odd addresses for the row and x (GGUF rows need not be aligned) */
                uint8_t *row = buf + (r & 1);
                float *x = xb + (r & 2 ? 1 : 0);
                rand_row(type, row, n);
                double xs = pow(10, 1 - 2 * unif());
                for (int64_t i = 0; i < n; i++)
                    x[i] = (float)((unif() * 2 - 1) * xs);
                bad += check_row(type, row, x, n, "random", 1);
            }
            CHECK(bad == 0, "%s n=%lld: %d random rows, every SIMD level (%s and below) within 1e-5 of "
                  "the f64 reference and of scalar (%d failed)", ak_ggml_type_name(type), (long long)n,
                  rounds, ak_simd_name(ak_simd_cpu()), bad);
            free(buf);
            free(xb);
        }
    }
    /* a type without a table row has no dot */
    float y;
    CHECK(!ak_ggml_dot(AK_GGML_Q2_K) && !ak_ggml_dot_at(AK_GGML_Q3_K, AK_SIMD_SCALAR) &&
              ak_dot_row(AK_GGML_Q2_K, NULL, NULL, 0, &y) == -1 && !ak_ggml_dot(1000) &&
              !ak_ggml_dot(-1),
          "unsupported types have no fused dot");
    CHECK(ak_ggml_dot_q8(AK_GGML_Q4_K) && ak_ggml_dot_q8(AK_GGML_Q6_K) && ak_ggml_dot_q8(AK_GGML_Q5_0) &&
              ak_ggml_dot_q8(AK_GGML_Q8_0) && ak_ggml_dot_q8(AK_GGML_Q4_1) &&
              !ak_ggml_dot_q8(AK_GGML_F32) && !ak_ggml_dot_q8(AK_GGML_F16) &&
              ak_q8_bytes(AK_GGML_BF16, 64) == 0 && !ak_ggml_dot_q8(AK_GGML_Q2_K) &&
              ak_q8_bytes(AK_GGML_Q8_0, 64) == 80 && ak_q8_bytes(AK_GGML_Q6_K, 512) == 584,
          "fast dots: the block types have one, F32/F16/BF16 (exact dot) and unsupported types none");
    int avx2 = ak_simd_cpu() >= AK_SIMD_AVX2;
    CHECK(!ak_ggml_dot_xs_at(AK_GGML_Q4_K, AK_SIMD_SCALAR) && !ak_ggml_dot_xs(AK_GGML_Q6_K) &&
              !ak_ggml_dot_xs(AK_GGML_Q4_0) && !ak_ggml_dot_xs(AK_GGML_F32) && !ak_ggml_dot_xs(AK_GGML_Q2_K) &&
              !ak_ggml_dot_xs(1000) && !!ak_ggml_dot_xs_at(AK_GGML_Q4_K, AK_SIMD_AVX2) == avx2 &&
              !!ak_ggml_dot_xs_at(AK_GGML_Q5_K, AK_SIMD_AVX2) == avx2 &&
              !!ak_ggml_dot_xs_at(AK_GGML_Q4_1, AK_SIMD_AVX2) == avx2 &&
              !!ak_ggml_dot_xs_at(AK_GGML_Q5_1, AK_SIMD_AVX2) == avx2,
          "dots with sums of x: Q4_1, Q5_1, Q4_K and Q5_K at AVX2 and up, no other type, none in scalar");
    printf("# fast (8-bit activation) dots, random rows: largest |fast - exact| / sum |w x| %.3g\n",
           fast_worst);
}

/* Every supported tensor of a GGUF file: its first, middle and last rows. */
static void model_file(const char *path)
{
    ak_gguf g;
    ak_err err = {0};
    if (ak_gguf_open(&g, path, &err)) {
        CHECK(0, "%s opens: %s", path, err.msg);
        return;
    }
    int seen[64] = {0}, bad = 0, rows = 0;
    for (size_t k = 0; k < g.ntensors; k++) {
        const ak_gguf_tensor *t = &g.tensors[k];
        if (!ak_ggml_supported(t->type) || t->type >= 64)
            continue;
        int64_t nr = ak_gguf_tensor_rows(t), n = t->ne[0];
        size_t rb = ak_ggml_row_bytes(t->type, n);
        float *x = malloc((size_t)n * sizeof *x);
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)(unif() * 2 - 1);
        int64_t pick[3] = {0, nr / 2, nr - 1};
        for (int i = 0; i < 3; i++) {
            bad += check_row(t->type, (const uint8_t *)t->data + (size_t)pick[i] * rb, x, n, t->name, 1);
            rows++;
        }
        seen[t->type]++;
        free(x);
    }
    char types[256] = "";
    for (int ty = 0; ty < 64; ty++)
        if (seen[ty])
            snprintf(types + strlen(types), sizeof types - strlen(types), " %s(%d)",
                     ak_ggml_type_name(ty), seen[ty]);
    CHECK(bad == 0 && rows > 0, "%s: %d rows of tensors of types%s, every SIMD level within 1e-5 "
          "(%d failed)", path, rows, types, bad);
    ak_gguf_close(&g);
}

static void models(void)
{
    fast_worst = 0;
    const char *dir = getenv("AK_MODELS");
    if (!dir) {
        printf("# AK_MODELS unset: installed models skipped\n");
        return;
    }
    static const char *const sub[] = {"smollm2", "gemma3", "qwen0.5b", "qwen1.5b"};
    for (size_t s = 0; s < sizeof sub / sizeof sub[0]; s++) {
        char d[4096];
        snprintf(d, sizeof d, "%s/%s", dir, sub[s]);
        DIR *dd = opendir(d);
        if (!dd) {
            printf("# %s: not installed, skipped\n", d);
            continue;
        }
        struct dirent *e;
        while ((e = readdir(dd))) {
            size_t len = strlen(e->d_name);
            if (len > 5 && !strcmp(e->d_name + len - 5, ".gguf")) {
                char p[8192];
                snprintf(p, sizeof p, "%s/%s", d, e->d_name);
                model_file(p);
            }
        }
        closedir(dd);
    }
    printf("# fast (8-bit activation) dots, model rows: largest |fast - exact| / sum |w x| %.3g\n",
           fast_worst);
}

int main(void)
{
    printf("# CPU SIMD level: %s\n", ak_simd_name(ak_simd_cpu()));
    CHECK(ak_simd_force("avx2") == 0 && ak_simd_force("avx512vnni") == 0 &&
              ak_simd_force("nonsense") == -1 && ak_simd_force("auto") == 0 &&
              ak_simd_level() == ak_simd_cpu(),
          "ATTNKIT_SIMD names: scalar, avx2, avx512, avx512vnni, auto; others refused");
    random_rows();
    models();
    TEST_DONE();
}
