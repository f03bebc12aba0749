/* Attention with entropy and mass: the CPU path against a naive reference
 * that materialises the softmax in double, on masks, windows, GQA, query
 * offsets, one-hot and uniform rows; and the CUDA path against the CPU path
 * on fresh random inputs of awkward sizes when a device is present.
 *   attention            run the checks
 *   attention --bench    time the CPU (and CUDA) path on a few shapes */
#include "attnkit/attention.h"
#include "test.h"
#ifdef AK_HAVE_CUDA
#include "cuda/ak_cuda.h"
#endif

#include <string.h>
#include <time.h>

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) /* xorshift, uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float *rand_buf(size_t n, float amp)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * amp;
    return p;
}

/* Naive reference in double: p materialised row by row. */
static void reference(const ak_attn_shape *s, const float *q, const float *k, const float *v,
                      double *out, double *ent, double *mass, double *probs)
{
    int H = s->n_heads, G = H / s->n_kv_heads, Dh = s->head_dim;
    double *p = malloc(sizeof(double) * (size_t)s->n_k);
    memset(mass, 0, sizeof(double) * (size_t)H * s->n_k);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < s->n_q; i++) {
            int pos = s->q_offset + i;
            double mx = -INFINITY, z = 0;
            for (int j = 0; j < s->n_k; j++) {
                int vis = (!s->causal || j <= pos) && (s->window == 0 || pos - j < s->window);
                double d = 0;
                for (int c = 0; c < Dh; c++)
                    d += (double)q[((size_t)i * H + h) * Dh + c] *
                         k[((size_t)j * s->n_kv_heads + h / G) * Dh + c];
                p[j] = vis ? d * s->scale : -INFINITY;
                if (p[j] > mx)
                    mx = p[j];
            }
            for (int j = 0; j < s->n_k; j++)
                z += p[j] = p[j] == -INFINITY ? 0 : exp(p[j] - mx);
            double e = 0;
            for (int c = 0; c < Dh; c++)
                out[((size_t)i * H + h) * Dh + c] = 0;
            for (int j = 0; j < s->n_k; j++) {
                p[j] /= z;
                if (p[j] > 0)
                    e -= p[j] * log(p[j]);
                mass[(size_t)h * s->n_k + j] += p[j];
                if (probs)
                    probs[((size_t)h * s->n_q + i) * s->n_k + j] = p[j];
                for (int c = 0; c < Dh; c++)
                    out[((size_t)i * H + h) * Dh + c] +=
                        p[j] * v[((size_t)j * s->n_kv_heads + h / G) * Dh + c];
            }
            ent[(size_t)h * s->n_q + i] = e;
        }
    free(p);
}

/* Largest |a-b| / (|b| + floor): relative where values are large, absolute
 * near zero. */
static double max_rel(const float *a, const double *b, size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / (fabs(b[i]) + floor);
        if (d > worst || d != d)
            worst = d != d ? INFINITY : d;
    }
    return worst;
}

/* ||a - b|| / ||b||: the two f32 paths round differently element by
 * element (an exp of a score near 50 amplifies its last bit), so they are
 * compared as vectors; NaN never passes. */
static double norm_rel(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    double r = sqrt(num / (den > 0 ? den : 1));
    return r == r ? r : INFINITY;
}

typedef struct {
    float *out, *ent, *mass, *probs;
} result_t;

static void free_result(result_t *r)
{
    free(r->out);
    free(r->ent);
    free(r->mass);
    free(r->probs);
}

static int run_dt(ak_device dev, ak_attn_dtype dt, const ak_attn_shape *s, const float *q,
                  const float *k, const float *v, result_t *r, int want_probs)
{
    size_t H = (size_t)s->n_heads;
    r->out = calloc((size_t)s->n_q * H * s->head_dim + 1, 4);
    r->ent = calloc(H * s->n_q + 1, 4);
    r->mass = calloc(H * s->n_k + 1, 4);
    r->probs = want_probs ? calloc(H * s->n_q * s->n_k + 1, 4) : NULL;
    ak_attn_out o = {r->out, r->ent, r->mass, r->probs, NULL, 0, 0};
    ak_err err;
    int rc = ak_attention_dtype(dev, dt, s, q, k, v, &o, &err);
    if (rc)
        printf("# %s\n", err.msg);
    return rc;
}

static int run(ak_device dev, const ak_attn_shape *s, const float *q, const float *k,
               const float *v, result_t *r, int want_probs)
{
    return run_dt(dev, AK_ATTN_F32, s, q, k, v, r, want_probs);
}

static double worst_out, worst_stat; /* over the bf16/f16 CUDA comparisons */

/* CUDA against its CPU twin in f32, bf16 and f16 on the same inputs:
 * out within tol_out (f32 1e-5; bf16/f16 1e-3, the bound MISSION sets),
 * entropy, mass and probabilities within 1e-5 in every precision. */
static void compare_cuda(const char *name, const ak_attn_shape *s, const float *q,
                         const float *k, const float *v, int want_probs)
{
    static const char *dn[] = {"f32", "bf16", "f16"};
    size_t H = (size_t)s->n_heads, nq = (size_t)s->n_q * H * s->head_dim;
    for (int dt = 0; dt < 3; dt++) {
        result_t c, g;
        int rc1 = run_dt(AK_DEV_CPU, (ak_attn_dtype)dt, s, q, k, v, &c, want_probs);
        int rc2 = run_dt(AK_DEV_CUDA, (ak_attn_dtype)dt, s, q, k, v, &g, want_probs);
        CHECK(rc1 == 0 && rc2 == 0, "%s %s: cuda and cpu run", name, dn[dt]);
        if (rc1 == 0 && rc2 == 0) {
            double eo = norm_rel(g.out, c.out, nq), ee = norm_rel(g.ent, c.ent, H * s->n_q);
            double em = norm_rel(g.mass, c.mass, H * s->n_k);
            double ep = want_probs ? norm_rel(g.probs, c.probs, H * s->n_q * s->n_k) : 0;
            double stat = ee > em ? ee : em;
            stat = ep > stat ? ep : stat;
            if (dt > 0) {
                worst_out = eo > worst_out ? eo : worst_out;
                worst_stat = stat > worst_stat ? stat : worst_stat;
            }
            CHECK(eo < (dt ? 1e-3 : 1e-5), "%s %s: cuda output matches cpu (%.2g)", name, dn[dt], eo);
            CHECK(stat < 1e-5, "%s %s: cuda entropy %.2g, mass %.2g, probs %.2g match cpu", name,
                  dn[dt], ee, em, ep);
#ifdef AK_HAVE_CUDA
            /* the device-pointer entry the device forward pass calls: the
             * same kernels on inputs rounded on the device, so the same
             * numbers bit for bit */
            size_t nr = H * s->n_q, nm = H * s->n_k;
            float *d = malloc((nq + nr + nm) * sizeof(float));
            ak_err err;
            int rc3 = ak_cuda()->attention_dev_host(dt, s, q, k, v, d, d + nq, d + nq + nr, &err);
            CHECK(rc3 == 0 && memcmp(d, g.out, nq * 4) == 0 && memcmp(d + nq, g.ent, nr * 4) == 0 &&
                      memcmp(d + nq + nr, g.mass, nm * 4) == 0,
                  "%s %s: device-pointer attention = host entry, bit for bit (out %.2g, entropy "
                  "%.2g, mass %.2g; %s)", name, dn[dt], rc3 ? -1 : norm_rel(d, g.out, nq),
                  rc3 ? -1 : norm_rel(d + nq, g.ent, nr), rc3 ? -1 : norm_rel(d + nq + nr, g.mass, nm),
                  rc3 ? err.msg : "ran");
            free(d);
#endif
        }
        free_result(&c);
        free_result(&g);
    }
}


static void check_case(const char *name, ak_attn_shape s, float amp)
{
    size_t nq = (size_t)s.n_q * s.n_heads * s.head_dim, nk = (size_t)s.n_k * s.n_kv_heads * s.head_dim;
    float *q = rand_buf(nq, amp), *k = rand_buf(nk, amp), *v = rand_buf(nk, 1);
    size_t H = (size_t)s.n_heads;
    double *out = malloc(nq * 8 + 8), *ent = malloc(H * s.n_q * 8 + 8), *mass = malloc(H * s.n_k * 8 + 8);
    double *probs = malloc(H * s.n_q * s.n_k * 8 + 8);
    reference(&s, q, k, v, out, ent, mass, probs);
    result_t r;
    int rc = run(AK_DEV_CPU, &s, q, k, v, &r, 1);
    CHECK(rc == 0, "%s: runs", name);
    if (rc == 0) {
        /* scores near 100 (the sharp case) carry f32 rounding of about
         * 100 * 6e-8 into every p; which way it falls depends on the BLAS
         * kernel's summation order */
        double tol = amp >= 4 ? 1e-4 : 1e-5;
        double eo = max_rel(r.out, out, nq, 5e-2), ee = max_rel(r.ent, ent, H * s.n_q, 1e-3);
        double em = max_rel(r.mass, mass, H * s.n_k, 1e-3);
        double pe = max_rel(r.probs, probs, H * s.n_q * s.n_k, 1e-6);
        CHECK(eo < tol, "%s: output (max rel %.2g)", name, eo);
        CHECK(ee < tol, "%s: entropy (max rel %.2g)", name, ee);
        CHECK(em < tol, "%s: received mass (max rel %.2g)", name, em);
        CHECK(pe < tol, "%s: probabilities (max rel %.2g)", name, pe);
    }
    free_result(&r);
    if (ak_cuda_available())
        compare_cuda(name, &s, q, k, v, 1);
    /* the bf16 CPU path is the f32 path on rounded inputs */
    {
        size_t nall = nq + 2 * nk;
        float *buf = malloc(nall * sizeof(float));
        memcpy(buf, q, nq * 4);
        memcpy(buf + nq, k, nk * 4);
        memcpy(buf + nq + nk, v, nk * 4);
        ak_round_dtype(buf, nall, AK_ATTN_BF16);
        result_t a, b;
        run(AK_DEV_CPU, &s, buf, buf + nq, buf + nq + nk, &a, 0);
        run_dt(AK_DEV_CPU, AK_ATTN_BF16, &s, q, k, v, &b, 0);
        CHECK(memcmp(a.out, b.out, nq * 4) == 0 && norm_rel(a.mass, b.mass, H * s.n_k) < 1e-7,
              "%s: cpu bf16 = cpu f32 on rounded inputs", name);
        free_result(&a);
        free_result(&b);
        free(buf);
    }
    free(q); free(k); free(v); free(out); free(ent); free(mass); free(probs);
}

static void check_hand_values(void)
{
    /* Two keys, one query, q.k = 0 for both: uniform, entropy log 2,
     * each key receives 1/2, output the mean of the values. */
    ak_attn_shape s = {.n_q = 1, .n_k = 2, .n_heads = 1, .n_kv_heads = 1, .head_dim = 2,
                       .scale = 1.0f};
    float q[2] = {0, 0}, k[4] = {1, 2, 3, 4}, v[4] = {1, 0, 0, 3};
    float out[2], ent[1], mass[2];
    ak_attn_out o = {out, ent, mass, NULL, NULL, 0, 0};
    ak_err err;
    CHECK(ak_attention(AK_DEV_CPU, &s, q, k, v, &o, &err) == 0, "uniform row runs");
    CHECK_NEAR(ent[0], log(2.0), 1e-6, "uniform row: entropy = log 2");
    CHECK_NEAR(mass[0], 0.5, 1e-6, "uniform row: mass 1/2");
    CHECK_NEAR(out[1], 1.5, 1e-6, "uniform row: output is the mean");
    /* One-hot: a huge score on key 1 makes entropy 0 and mass (0, 1). */
    float q2[2] = {100, 0}, k2[4] = {0, 0, 1, 0};
    o = (ak_attn_out){out, ent, mass, NULL, NULL, 0, 0};
    CHECK(ak_attention(AK_DEV_CPU, &s, q2, k2, v, &o, &err) == 0, "one-hot row runs");
    CHECK(fabs(ent[0]) < 1e-30 + 1e-6 && mass[1] > 1 - 1e-6 && mass[0] < 1e-6,
          "one-hot row: entropy 0, all mass on key 1 (%g, %g)", ent[0], mass[1]);
    /* Causal, three positions, zero scores: query i sees i+1 keys uniformly,
     * so key 0 receives 1 + 1/2 + 1/3. */
    ak_attn_shape c = {.n_q = 3, .n_k = 3, .n_heads = 1, .n_kv_heads = 1, .head_dim = 1,
                       .causal = 1, .scale = 1.0f};
    float z3[3] = {0, 0, 0}, v3[3] = {1, 2, 3}, o3[3], e3[3], m3[3];
    o = (ak_attn_out){o3, e3, m3, NULL, NULL, 0, 0};
    CHECK(ak_attention(AK_DEV_CPU, &c, z3, z3, v3, &o, &err) == 0, "causal uniform runs");
    CHECK_NEAR(m3[0], 1 + 0.5 + 1.0 / 3, 1e-6, "causal: key 0 mass 1 + 1/2 + 1/3");
    CHECK_NEAR(m3[2], 1.0 / 3, 1e-6, "causal: key 2 mass 1/3");
    CHECK_NEAR(e3[2], log(3.0), 1e-6, "causal: last query entropy log 3");
    CHECK_NEAR(o3[1], 1.5, 1e-6, "causal: second output is mean of v0, v1");
    /* Bad shapes are errors, not crashes. */
    ak_attn_shape bad = c;
    bad.n_kv_heads = 2;
    CHECK(ak_attention(AK_DEV_CPU, &bad, z3, z3, v3, &o, &err) == AK_EUSAGE,
          "heads not divisible by kv heads: error (%s)", err.msg);
    bad = c;
    bad.q_offset = 1;
    CHECK(ak_attention(AK_DEV_CPU, &bad, z3, z3, v3, &o, &err) == AK_EUSAGE,
          "causal queries past the keys: error");
}

/* One workspace carried over calls of growing and shrinking shapes, with
 * and without mass and probabilities, in f32 and bf16, gives bit for bit
 * what a call with a fresh (temporary) workspace gives. */
static void check_workspace(ak_device dev)
{
    ak_attn_shape shapes[] = {{40, 40, 0, 4, 2, 32, 1, 0, 0.18f, NULL},
                              {130, 130, 0, 4, 4, 64, 1, 0, 0.125f, NULL},
                              {7, 30, 23, 4, 1, 32, 1, 5, 0.18f, NULL},
                              {130, 130, 0, 2, 2, 64, 0, 0, 0.125f, NULL}};
    ak_attn_ws *ws = NULL;
    ak_err err;
    int ok = ak_attn_ws_new(&ws, &err) == 0;
    static const int threads[] = {3, 1, 2}; /* the pool grows, idles, shrinks */
    for (int round = 0; round < 3 && ok; round++)
        for (size_t c = 0; c < sizeof shapes / sizeof *shapes && ok; c++) {
            ak_attn_ws_set_threads(ws, threads[round]);
            const ak_attn_shape *sh = &shapes[c];
            size_t nq = (size_t)sh->n_q * sh->n_heads * sh->head_dim;
            size_t nk = (size_t)sh->n_k * sh->n_kv_heads * sh->head_dim;
            size_t H = (size_t)sh->n_heads, no = nq, ne = H * sh->n_q, nm = H * sh->n_k;
            size_t np = ne * sh->n_k;
            float *q = rand_buf(nq, 1), *k = rand_buf(nk, 1), *v = rand_buf(nk, 1);
            ak_attn_dtype dt = (c + round) % 2 ? AK_ATTN_BF16 : AK_ATTN_F32;
            int with_stats = (c + round) % 3 != 0;
            result_t want;
            ok &= run_dt(dev, dt, sh, q, k, v, &want, with_stats) == 0;
            float *got = calloc(no + ne + nm + np + 1, 4);
            ak_attn_out o = {got, with_stats ? got + no : NULL, with_stats ? got + no + ne : NULL,
                             with_stats ? got + no + ne + nm : NULL, NULL, 0, 0};
            ok &= ak_attention_ws(ws, dev, dt, sh, q, k, v, &o, &err) == 0;
            ok &= memcmp(got, want.out, no * 4) == 0;
            if (with_stats)
                ok &= memcmp(o.entropy, want.ent, ne * 4) == 0 &&
                      memcmp(o.mass, want.mass, nm * 4) == 0 &&
                      memcmp(o.probs, want.probs, np * 4) == 0;
            free(got);
            free_result(&want);
            free(q); free(k); free(v);
        }
    ak_attn_ws_free(ws);
    CHECK(ok, "%s: a workspace kept over 12 calls of changing shapes and thread counts gives "
          "what a fresh one gives", ak_device_name(dev));
}

static void check_rounding(void)
{
    float x[] = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -2.0f - 1.0f / 128, 3.0e38f};
    ak_round_dtype(x, 4, AK_ATTN_BF16);
    CHECK(x[0] == 1.0f && x[1] == 1.0f + 1.0f / 64 && x[2] == -2.0f && x[3] > 2.9e38f,
          "bf16 rounding: to nearest, ties to even (%.9g %.9g %.9g)", x[0], x[1], x[2]);
    float y[] = {65519.0f, 65520.0f, 0x1p-25f, 0x3p-25f, 1.0f + 0x1p-11f, 1.0f + 0x3p-11f};
    ak_round_dtype(y, 6, AK_ATTN_F16);
    CHECK(y[0] == 65504.0f && y[1] == INFINITY && y[2] == 0.0f && y[3] == 0x1p-23f &&
          y[4] == 1.0f && y[5] == 1.0f + 0x1p-9f,
          "f16 rounding: overflow, subnormals, ties to even (%g %g %g %g)", y[0], y[1], y[2], y[3]);
}

/* Sizes too large for the double reference under ASan: CUDA against the
 * CPU only, where a device is. */
static void check_cuda_large(void)
{
    struct { const char *name; ak_attn_shape s; } cases[] = {
        {"cuda 1000 tokens GQA 8/2 d128 causal", {1000, 1000, 0, 8, 2, 128, 1, 0, 0.088f, NULL}},
        {"cuda 1000 tokens d64 window 17", {1000, 1000, 0, 4, 4, 64, 1, 17, 0.125f, NULL}},
        {"cuda 1000 bidirectional d80", {1000, 1000, 0, 4, 4, 80, 0, 0, 0.11f, NULL}},
        {"cuda 129 after 871 cached, GQA 8/2 d128", {129, 1000, 871, 8, 2, 128, 1, 0, 0.088f, NULL}},
        {"cuda 1 query after 999 cached d64", {1, 1000, 999, 4, 2, 64, 1, 0, 0.125f, NULL}},
        {"cuda 37 tokens d256", {37, 37, 0, 2, 2, 256, 1, 0, 0.0625f, NULL}},
        {"cuda 2048 tokens d128 window 500", {2048, 2048, 0, 4, 4, 128, 1, 500, 0.088f, NULL}},
        {"cuda 2048 tokens GQA 8/2 d64 causal", {2048, 2048, 0, 8, 2, 64, 1, 0, 0.125f, NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ak_attn_shape s = cases[i].s;
        size_t nq = (size_t)s.n_q * s.n_heads * s.head_dim, nk = (size_t)s.n_k * s.n_kv_heads * s.head_dim;
        float *q = rand_buf(nq, 1.5f), *k = rand_buf(nk, 1.5f), *v = rand_buf(nk, 1);
        /* even cases without probabilities: the mass pass takes its
         * unmasked fast path only then */
        compare_cuda(cases[i].name, &s, q, k, v, i % 2 == 1);
        free(q); free(k); free(v);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench(void)
{
    int lens[] = {512, 2048, 4096};
    for (int li = 0; li < 3; li++) {
        ak_attn_shape s = {.n_q = lens[li], .n_k = lens[li], .n_heads = 12, .n_kv_heads = 12,
                           .head_dim = 64, .causal = 1, .scale = 0.125f};
        size_t n = (size_t)s.n_q * 12 * 64;
        float *q = rand_buf(n, 1), *k = rand_buf(n, 1), *v = rand_buf(n, 1);
        for (int d = 0; d < 1 + ak_cuda_available(); d++) {
            result_t r;
            run(d ? AK_DEV_CUDA : AK_DEV_CPU, &s, q, k, v, &r, 0); /* warm up */
            free_result(&r);
            double t0 = now();
            run(d ? AK_DEV_CUDA : AK_DEV_CPU, &s, q, k, v, &r, 0);
            double t = now() - t0;
            free_result(&r);
            /* causal: about half of 4*T*T*Dh*H flops, plus the mass pass */
            printf("%s T=%d H=12 Dh=64 causal: %.4f s, %.2f GFLOP/s (fwd flops only)\n",
                   d ? "cuda" : "cpu", lens[li], t, 2.0 * s.n_q * s.n_k * 64 * 12 / t * 1e-9);
        }
        free(q); free(k); free(v);
    }
    return 0;
}

/* --run IN OUT: the driver for tests/model/attention_ref_test.py and
 * bench/attention_cpu.py.  IN: 9 int32 (n_q n_k q_offset heads kv_heads
 * head_dim causal window dtype), f32 scale, int32 want_probs, then q, k, v
 * (f32).  OUT: out, entropy, mass, probs if asked (f32), then the seconds
 * ak_attention took (f64).  Device from $ATTNKIT_DEVICE (auto when unset). */
static int run_file(const char *in, const char *outp)
{
    FILE *f = fopen(in, "rb");
    int32_t hd[9], wp;
    float scale;
    if (!f || fread(hd, 4, 9, f) != 9 || fread(&scale, 4, 1, f) != 1 || fread(&wp, 4, 1, f) != 1) {
        fprintf(stderr, "attention --run: cannot read %s\n", in);
        return 2;
    }
    ak_attn_shape s = {hd[0], hd[1], hd[2], hd[3], hd[4], hd[5], hd[6], hd[7], scale, NULL};
    if (s.n_q < 0 || s.n_k < 0 || s.n_heads < 1 || s.n_kv_heads < 1 || s.head_dim < 1 ||
        (int64_t)s.n_q * s.n_heads * s.head_dim > 1 << 28 || (int64_t)s.n_k * s.n_kv_heads * s.head_dim > 1 << 28) {
        fprintf(stderr, "attention --run: bad shape\n");
        return 2;
    }
    size_t nq = (size_t)s.n_q * s.n_heads * s.head_dim, nk = (size_t)s.n_k * s.n_kv_heads * s.head_dim;
    float *q = malloc(nq * 4 + 4), *k = malloc(nk * 4 + 4), *v = malloc(nk * 4 + 4);
    if (fread(q, 4, nq, f) != nq || fread(k, 4, nk, f) != nk || fread(v, 4, nk, f) != nk) {
        fprintf(stderr, "attention --run: short input\n");
        return 2;
    }
    fclose(f);
    ak_device dev;
    ak_err err;
    if (ak_device_parse(getenv("ATTNKIT_DEVICE"), &dev, &err)) {
        fprintf(stderr, "attention --run: %s\n", err.msg);
        return 2;
    }
    result_t r;
    double t0 = now();
    int rc = run_dt(dev, (ak_attn_dtype)hd[8], &s, q, k, v, &r, wp);
    double t = now() - t0;
    if (rc == 0) {
        size_t H = (size_t)s.n_heads;
        FILE *o = fopen(outp, "wb");
        fwrite(r.out, 4, nq, o);
        fwrite(r.ent, 4, H * s.n_q, o);
        fwrite(r.mass, 4, H * s.n_k, o);
        if (wp)
            fwrite(r.probs, 4, H * s.n_q * s.n_k, o);
        fwrite(&t, 8, 1, o);
        fclose(o);
    }
    free_result(&r);
    free(q); free(k); free(v);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench();
    if (argc == 4 && strcmp(argv[1], "--run") == 0)
        return run_file(argv[2], argv[3]);
#ifdef AK_HAVE_CUDA
    if (getenv("ATTNKIT_CUDA_WMMA")) /* bench/gpu_check.sh: the WMMA kernels for every size */
        if (ak_cuda())
            ak_cuda()->set_wmma(1);
#endif
    check_hand_values();
    check_rounding();
    check_workspace(AK_DEV_CPU);
    if (ak_cuda_available())
        check_workspace(AK_DEV_CUDA);
    struct { const char *name; ak_attn_shape s; float amp; } cases[] = {
        {"bidirectional 37x37 h3", {37, 37, 0, 3, 3, 16, 0, 0, 0.25f, NULL}, 1},
        {"causal 1x1", {1, 1, 0, 2, 2, 8, 1, 0, 0.35f, NULL}, 1},
        {"causal 129 GQA 8/2 d80", {129, 129, 0, 8, 2, 80, 1, 0, 0.11f, NULL}, 1.5f},
        {"causal window 17, 100 tokens", {100, 100, 0, 4, 4, 32, 1, 17, 0.18f, NULL}, 1},
        {"causal continuation: 20 queries after 50 cached", {20, 70, 50, 4, 1, 64, 1, 0, 0.125f, NULL}, 1},
        {"window + GQA + offset", {33, 90, 57, 6, 3, 24, 1, 10, 0.2f, NULL}, 2},
        {"sharp scores (large amplitude)", {45, 45, 0, 2, 2, 16, 1, 0, 1.0f, NULL}, 4},
        {"d128, 300 tokens", {300, 300, 0, 2, 1, 128, 1, 0, 0.088f, NULL}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_case(cases[i].name, cases[i].s, cases[i].amp);
    if (!ak_cuda_available())
        printf("ok - # skip no CUDA device (cuda comparisons)\n");
    else {
        if (!getenv("ATTNKIT_TEST_SMALL")) /* set under compute-sanitizer */
            check_cuda_large();
        printf("# worst bf16/f16 cuda-vs-cpu: output %.3g, entropy/mass/probs %.3g (norm-relative)\n",
               worst_out, worst_stat);
    }
    TEST_DONE();
}
