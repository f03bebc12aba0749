/* Attention with entropy and mass: the CPU path against a naive reference
 * that materialises the softmax in double, on masks, windows, GQA, query
 * offsets, one-hot and uniform rows; and the CUDA path against the CPU path
 * on fresh random inputs of awkward sizes when a device is present.
 *   attention            run the checks
 *   attention --bench    time the CPU (and CUDA) path on a few shapes */
#include "attention.h"
#include "test.h"

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

static int run(ak_device dev, const ak_attn_shape *s, const float *q, const float *k,
               const float *v, result_t *r, int want_probs)
{
    size_t H = (size_t)s->n_heads;
    r->out = calloc((size_t)s->n_q * H * s->head_dim + 1, 4);
    r->ent = calloc(H * s->n_q + 1, 4);
    r->mass = calloc(H * s->n_k + 1, 4);
    r->probs = want_probs ? calloc(H * s->n_q * s->n_k + 1, 4) : NULL;
    ak_attn_out o = {r->out, r->ent, r->mass, r->probs};
    ak_err err;
    int rc = ak_attention(dev, s, q, k, v, &o, &err);
    if (rc)
        printf("# %s\n", err.msg);
    return rc;
}

static void free_result(result_t *r)
{
    free(r->out);
    free(r->ent);
    free(r->mass);
    free(r->probs);
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
        CHECK(max_rel(r.out, out, nq, 5e-2) < 1e-5, "%s: output (max rel %.2g)", name,
              max_rel(r.out, out, nq, 5e-2));
        CHECK(max_rel(r.ent, ent, H * s.n_q, 1e-3) < 1e-5, "%s: entropy (max rel %.2g)", name,
              max_rel(r.ent, ent, H * s.n_q, 1e-3));
        CHECK(max_rel(r.mass, mass, H * s.n_k, 1e-3) < 1e-5, "%s: received mass (max rel %.2g)",
              name, max_rel(r.mass, mass, H * s.n_k, 1e-3));
        CHECK(max_rel(r.probs, probs, H * s.n_q * s.n_k, 1e-6) < 1e-5, "%s: probabilities", name);
    }
    free_result(&r);
    if (ak_cuda_available()) {
        result_t c, g;
        run(AK_DEV_CPU, &s, q, k, v, &c, 1);
        CHECK(run(AK_DEV_CUDA, &s, q, k, v, &g, 1) == 0, "%s: cuda runs", name);
        CHECK(norm_rel(g.out, c.out, nq) < 1e-5, "%s: cuda output matches cpu (%.2g)", name,
              norm_rel(g.out, c.out, nq));
        CHECK(norm_rel(g.ent, c.ent, H * s.n_q) < 1e-5, "%s: cuda entropy matches cpu (%.2g)",
              name, norm_rel(g.ent, c.ent, H * s.n_q));
        CHECK(norm_rel(g.mass, c.mass, H * s.n_k) < 1e-5, "%s: cuda mass matches cpu (%.2g)",
              name, norm_rel(g.mass, c.mass, H * s.n_k));
        CHECK(norm_rel(g.probs, c.probs, H * s.n_q * s.n_k) < 1e-5,
              "%s: cuda probabilities match cpu (%.2g)", name,
              norm_rel(g.probs, c.probs, H * s.n_q * s.n_k));
        free_result(&c);
        free_result(&g);
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
    ak_attn_out o = {out, ent, mass, NULL};
    ak_err err;
    CHECK(ak_attention(AK_DEV_CPU, &s, q, k, v, &o, &err) == 0, "uniform row runs");
    CHECK_NEAR(ent[0], log(2.0), 1e-6, "uniform row: entropy = log 2");
    CHECK_NEAR(mass[0], 0.5, 1e-6, "uniform row: mass 1/2");
    CHECK_NEAR(out[1], 1.5, 1e-6, "uniform row: output is the mean");
    /* One-hot: a huge score on key 1 makes entropy 0 and mass (0, 1). */
    float q2[2] = {100, 0}, k2[4] = {0, 0, 1, 0};
    o = (ak_attn_out){out, ent, mass, NULL};
    CHECK(ak_attention(AK_DEV_CPU, &s, q2, k2, v, &o, &err) == 0, "one-hot row runs");
    CHECK(fabs(ent[0]) < 1e-30 + 1e-6 && mass[1] > 1 - 1e-6 && mass[0] < 1e-6,
          "one-hot row: entropy 0, all mass on key 1 (%g, %g)", ent[0], mass[1]);
    /* Causal, three positions, zero scores: query i sees i+1 keys uniformly,
     * so key 0 receives 1 + 1/2 + 1/3. */
    ak_attn_shape c = {.n_q = 3, .n_k = 3, .n_heads = 1, .n_kv_heads = 1, .head_dim = 1,
                       .causal = 1, .scale = 1.0f};
    float z3[3] = {0, 0, 0}, v3[3] = {1, 2, 3}, o3[3], e3[3], m3[3];
    o = (ak_attn_out){o3, e3, m3, NULL};
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

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench();
    check_hand_values();
    struct { const char *name; ak_attn_shape s; float amp; } cases[] = {
        {"bidirectional 37x37 h3", {37, 37, 0, 3, 3, 16, 0, 0, 0.25f}, 1},
        {"causal 1x1", {1, 1, 0, 2, 2, 8, 1, 0, 0.35f}, 1},
        {"causal 129 GQA 8/2 d80", {129, 129, 0, 8, 2, 80, 1, 0, 0.11f}, 1.5f},
        {"causal window 17, 100 tokens", {100, 100, 0, 4, 4, 32, 1, 17, 0.18f}, 1},
        {"causal continuation: 20 queries after 50 cached", {20, 70, 50, 4, 1, 64, 1, 0, 0.125f}, 1},
        {"window + GQA + offset", {33, 90, 57, 6, 3, 24, 1, 10, 0.2f}, 2},
        {"sharp scores (large amplitude)", {45, 45, 0, 2, 2, 16, 1, 0, 1.0f}, 4},
        {"d128, 300 tokens", {300, 300, 0, 2, 1, 128, 1, 0, 0.088f}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_case(cases[i].name, cases[i].s, cases[i].amp);
    if (!ak_cuda_available())
        printf("ok - # skip cuda comparisons: no CUDA device here\n");
    TEST_DONE();
}
