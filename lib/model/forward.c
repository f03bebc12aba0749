/* forward.c - the blocks of a transformer on the CPU: projections and MLP
 * through BLAS, norms, activations and RoPE here, attention (with entropy
 * and received mass) in attention.c. */
#include "attnkit/attention.h"
#include "attnkit/kvcache.h"
#include "core/pool.h"
#include "fastexp.h"
#include "attnkit/model.h"
#include "format/quant.h"
#include "core/simd.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef AK_HAVE_CUDA
#include "cuda/ak_cuda.h"
#endif

/* The forward pass's buffers, allocated once per model and grown to the
 * longest input seen (llama2.c's RunState). */
struct ak_workspace {
    size_t cap_T;                /* tokens the activations are sized for */
    size_t cap_pos;              /* positions the RoPE tables cover */
    float *xn, *q, *k, *v, *att, *up, *gate, *tmp;
    float *cos_g, *sin_g, *cos_l, *sin_l;   /* RoPE tables: global and local frequencies */
    /* a cache's forward pass: one KV head's group of queries at a time */
    float *gq, *gout, *gent, *gmass;
    int nthreads;                /* matrix-product workers */
    int fast;                    /* the model's fast setting, for this pass */
    uint8_t *xq;                 /* fast mode: a product's activations quantized
                                    (FUSED_MAX_T tokens of the widest input, or
                                    cap_T of them once a fast pass is longer) */
    size_t xq_bytes;
    size_t max_in;               /* the widest input of any product */
    float *xs;                   /* exact mode: a product's sums of x per 32 (ak_xsum32),
                                    FUSED_MAX_T tokens of the widest input */
    size_t xs_floats;
    float *tiles;                /* [nthreads][tile_floats] dequantized weight rows */
    size_t tile_floats;          /* per thread: TILE_FLOATS, or TILE_ROWS rows if longer */
    ak_attn_ws *attn;            /* the attention's scratch, for every layer */
    /* the quantized products' worker threads, started on first need and
     * kept until ak_workspace_free (a token of generation runs some 200
     * products: starting threads for each would cost more than a product) */
    ak_pool pool;
#ifdef AK_HAVE_CUDA
    ak_cuda_model *cuda;         /* the device copy for the opt-in device forward pass */
#endif
};

/* A change of how m runs takes effect from a new workspace. */
static void drop_workspace(ak_model *m)
{
    ak_workspace_free(m->ws);
    m->ws = NULL;
}

void ak_model_set_cuda_forward(ak_model *m, int mode)
{
    m->cuda_forward = mode < 0 || mode > 2 ? 0 : mode;
    drop_workspace(m);
}

void ak_model_set_threads(ak_model *m, int n)
{
    m->threads = n < 0 ? 0 : n;
    drop_workspace(m);
}

void ak_model_set_progress(ak_model *m, void (*fn)(void *ctx, int T, int layer, int layers), void *ctx)
{
    m->progress = fn;
    m->progress_ctx = ctx;
}

void ak_model_set_fast(ak_model *m, int on) { m->fast = on != 0; }   /* read at each pass */

/* A quantized product's weight rows are dequantized a tile at a time.
 * sgemm repacks the activations for every tile, which costs as much as
 * 1/(2 x rows) of the tile's multiply-adds: a tile holds as many rows as
 * TILE_FLOATS allow (a whole layer's matrix for models of this size), and
 * never fewer than TILE_ROWS. */
enum { TILE_ROWS = 64, TILE_FLOATS = 1 << 19 };

/* Up to this many tokens a quantized product takes the fused dot products
 * (see qjob).  Measured with bench/quant_dot.c on a [2048, 1024] matrix,
 * one thread (2-core AMD EPYC, AVX-512): T fused products cost T times one
 * (0.05-0.1 ns a weight), dequantizing the rows (0.8 ns a weight) then
 * sgemm costs about the same for T = 1 to 8 and grows slowly after; they
 * cross at T = 16 for Q4_K and Q5_K, 32 to 64 for the 32-element types.  8
 * keeps the fused path where it wins for every type. */
enum { FUSED_MAX_T = 8 };

/* The fast mode's activation blocks take at most 40 bytes per 32 (the
 * 32-element types' {d, sum, q[32]}; the K-quants' take 36.5). */
static size_t xq_bytes_for(size_t T, size_t in) { return T * ((in + 31) / 32 * 40); }

/* The fast mode's prefill (quantized products of more than FUSED_MAX_T
 * tokens with a four-token dot, quant.h) runs a tile of rows against four
 * tokens at a time, the tokens outer: the tile, at most this many bytes,
 * stays in the core's L2 cache while every group of four tokens passes. */
enum { FAST_TILE_BYTES = 256 << 10 };

static int thread_count(const ak_model *m)
{
    int n = ak_attention_threads(m->threads);
    return n > 64 ? 64 : n;
}

void ak_workspace_free(struct ak_workspace *ws)
{
    if (!ws)
        return;
    ak_pool_stop(&ws->pool);
#ifdef AK_HAVE_CUDA
    if (ws->cuda)
        ak_cuda()->model_free(ws->cuda);
#endif
    free(ws->xn);
    free(ws->q);
    free(ws->k);
    free(ws->v);
    free(ws->att);
    free(ws->up);
    free(ws->gate);
    free(ws->tmp);
    free(ws->cos_g);
    free(ws->sin_g);
    free(ws->cos_l);
    free(ws->sin_l);
    free(ws->gq);
    free(ws->gout);
    free(ws->gent);
    free(ws->gmass);
    free(ws->tiles);
    free(ws->xq);
    free(ws->xs);
    ak_attn_ws_free(ws->attn);
    free(ws);
}

static int grow(float **p, size_t n)
{
    float *q = realloc(*p, (n ? n : 1) * sizeof(float));
    if (!q)
        return -1;
    *p = q;
    return 0;
}

/* *p replaced by n floats (contents not kept) at a 64-byte boundary: the
 * activation buffers the fused dots read, whose full-vector loads of x
 * then never cross a cache line (bench/RESULTS.md, "Exact mode": the
 * K-quant kernels lost their gain on x 16 bytes off a line). */
static int grow_aligned(float **p, size_t n)
{
    void *q;
    if (posix_memalign(&q, 64, (n ? n : 1) * sizeof(float)))
        return -1;
    free(*p);
    *p = q;
    return 0;
}

/* The model's workspace with no activation buffers yet (created on first
 * use, kept until ak_model_free). */
static int workspace_base(const ak_model *m, struct ak_workspace **out, ak_err *err)
{
    ak_model *mm = (ak_model *)m;   /* the workspace is scratch, not the model's state */
    *out = mm->ws;
    if (!mm->ws) {
        struct ak_workspace *ws = calloc(1, sizeof *ws);
        if (!ws)
            return ak_fail(err, AK_ENOMEM, "out of memory");
        ws->nthreads = thread_count(m);
        size_t max_in = (size_t)m->hidden_size;
        if ((size_t)m->intermediate_size > max_in)
            max_in = (size_t)m->intermediate_size;
        if ((size_t)m->n_heads * m->head_dim > max_in)
            max_in = (size_t)m->n_heads * m->head_dim;
        ws->tile_floats = TILE_ROWS * max_in > TILE_FLOATS ? TILE_ROWS * max_in : TILE_FLOATS;
        ws->tiles = malloc((size_t)ws->nthreads * ws->tile_floats * sizeof(float));
        ws->max_in = max_in;
        ws->xq_bytes = xq_bytes_for(FUSED_MAX_T, max_in);
        ws->xq = malloc(ws->xq_bytes);
        ws->xs_floats = FUSED_MAX_T * ((max_in + 31) / 32);
        ws->xs = malloc(ws->xs_floats * sizeof(float));
        mm->ws = ws;
        if (!ws->tiles || !ws->xq || !ws->xs)
            return ak_fail(err, AK_ENOMEM, "out of memory");
        int rc = ak_attn_ws_new(&ws->attn, err);
        if (rc)
            return rc;
        ak_attn_ws_set_threads(ws->attn, m->threads);
        *out = ws;
    }
    return 0;
}

/* The model's workspace for T tokens; RoPE tables for positions
 * 0..npos-1. */
static int workspace(const ak_model *m, int T, size_t npos, struct ak_workspace **out,
                     ak_err *err)
{
    struct ak_workspace *ws;
    int rc = workspace_base(m, &ws, err);
    if (rc)
        return rc;
    ws->fast = m->fast;
    size_t Tz = (size_t)T;
    size_t half = (size_t)m->head_dim / 2;
    if (Tz > ws->cap_T) {
        size_t D = (size_t)m->hidden_size, F = (size_t)m->intermediate_size;
        size_t qd = (size_t)m->n_heads * m->head_dim, kvd = (size_t)m->n_kv_heads * m->head_dim;
        int gated = m->family == AK_FAMILY_LLAMA || m->family == AK_FAMILY_GEMMA3;
        ws->cap_T = 0;
        if (grow_aligned(&ws->xn, Tz * D) || grow_aligned(&ws->q, Tz * qd) ||
            grow_aligned(&ws->k, Tz * kvd) || grow_aligned(&ws->v, Tz * kvd) ||
            grow_aligned(&ws->att, Tz * qd) || grow_aligned(&ws->up, Tz * F) ||
            (gated && grow_aligned(&ws->gate, Tz * F)) || grow_aligned(&ws->tmp, Tz * D))
            return ak_fail(err, AK_ENOMEM, "out of memory for %d tokens", T);
        ws->cap_T = Tz;
    }
    /* the fast mode's prefill quantizes every token's activations */
    if (ws->fast && xq_bytes_for(Tz, ws->max_in) > ws->xq_bytes) {
        size_t nb = xq_bytes_for(Tz > ws->cap_T ? Tz : ws->cap_T, ws->max_in);
        uint8_t *q = malloc(nb);
        if (!q)
            return ak_fail(err, AK_ENOMEM, "out of memory for %d tokens", T);
        free(ws->xq);
        ws->xq = q;
        ws->xq_bytes = nb;
    }
    if (npos > ws->cap_pos) {
        /* grown to twice what is asked, so generating token by token
         * recomputes the tables a logarithmic number of times */
        size_t np = npos > 1024 ? npos * 2 : 1024;
        ws->cap_pos = 0;
        if ((m->inv_freq && (grow(&ws->cos_g, np * half) || grow(&ws->sin_g, np * half))) ||
            (m->inv_freq_local && (grow(&ws->cos_l, np * half) || grow(&ws->sin_l, np * half))))
            return ak_fail(err, AK_ENOMEM, "out of memory for %zu positions", np);
        for (int g = 0; g < 2; g++) {
            const float *f = g ? m->inv_freq_local : m->inv_freq;
            float *c = g ? ws->cos_l : ws->cos_g, *s = g ? ws->sin_l : ws->sin_g;
            for (size_t t = 0; f && t < np; t++)
                for (size_t i = 0; i < half; i++) {
                    float angle = (float)t * f[i];   /* f32, as transformers does */
                    c[t * half + i] = (float)cos(angle);
                    s[t * half + i] = (float)sin(angle);
                }
        }
        ws->cap_pos = np;
    }
    *out = ws;
    return 0;
}

/* A quantized product.  For a few tokens (generation: one) the workers
 * take tiles of rows and dot each row straight from its blocks with each
 * token (quant.h's fused dot: no f32 copy of any weight); for more, they
 * dequantize a tile of rows into their own buffer and multiply it with
 * sgemm, which then costs less per token than unpacking every row for
 * every token.  FUSED_MAX_T is where the two cross, measured per type and
 * shape with bench/quant_dot.c (bench/RESULTS.md, "Quantized products"). */
typedef struct qjob {
    const ak_linear *l;
    const float *x;
    float *y;
    int T;
    float beta;
    ak_dot_fn dot;               /* fused dot products, or NULL: dequantize + sgemm */
    ak_dot_q8_fn dotq;           /* fast mode: integer dots with xq (instead of dot), or NULL */
    ak_dot_q8x4_fn dotq4;        /* and four tokens at a time (prefill), or NULL */
    const uint8_t *xq;           /* the T tokens' activations quantized, xq_stride apart */
    size_t xq_stride;
    ak_dot_xs_fn dotx;           /* exact dots with xs (instead of dot), or NULL */
    const float *xs;             /* the T tokens' sums of x per 32, in / 32 apart */
    int rows;                    /* per tile */
    int ntiles;
    atomic_int next;
    struct ak_workspace *ws;
} qjob;

/* The fast mode's prefill: tile rows r0.. (nr of them) against every
 * token, four at a time while four are left. */
static void qwork_fast4(const qjob *j, int r0, int nr)
{
    const ak_linear *l = j->l;
    int k = 0;
    for (; k + 4 <= j->T; k += 4) {
        const uint8_t *xq = j->xq + (size_t)k * j->xq_stride;
        for (int r = r0; r < r0 + nr; r++) {
            float d[4];
            j->dotq4((const char *)l->wq + (size_t)r * l->row_bytes, xq, j->xq_stride, l->in, d);
            for (int i = 0; i < 4; i++) {
                float *y = j->y + (size_t)(k + i) * l->out + r;
                *y = j->beta != 0 ? *y + d[i] : d[i];
            }
        }
    }
    for (; k < j->T; k++)
        for (int r = r0; r < r0 + nr; r++) {
            float d = j->dotq((const char *)l->wq + (size_t)r * l->row_bytes,
                              j->xq + (size_t)k * j->xq_stride, l->in);
            float *y = j->y + (size_t)k * l->out + r;
            *y = j->beta != 0 ? *y + d : d;
        }
}

static void qwork(qjob *j, int id)
{
    const ak_linear *l = j->l;
    float *buf = j->ws->tiles + (size_t)id * j->ws->tile_floats;
    for (;;) {
        int t = atomic_fetch_add(&j->next, 1);
        if (t >= j->ntiles)
            break;
        int r0 = t * j->rows, nr = l->out - r0 < j->rows ? l->out - r0 : j->rows;
        if (j->dotq4) {
            qwork_fast4(j, r0, nr);
            continue;
        }
        if (j->dot) {   /* fused: one dot per row and token, the kind qlinear chose */
            size_t xs_stride = (size_t)l->in / 32;
            for (int r = r0; r < r0 + nr; r++) {
                const void *row = (const char *)l->wq + (size_t)r * l->row_bytes;
                for (int k = 0; k < j->T; k++) {
                    const float *xk = j->x + (size_t)k * l->in;
                    float dot = j->dotq ? j->dotq(row, j->xq + (size_t)k * j->xq_stride, l->in)
                              : j->dotx ? j->dotx(row, xk, j->xs + (size_t)k * xs_stride, l->in)
                                        : j->dot(row, xk, l->in);
                    float *y = j->y + (size_t)k * l->out + r;
                    *y = j->beta != 0 ? *y + dot : dot;
                }
            }
            continue;
        }
        for (int r = 0; r < nr; r++)
            ak_dequant_row(l->type, (const char *)l->wq + (size_t)(r0 + r) * l->row_bytes,
                           buf + (size_t)r * l->in, l->in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->T, nr, l->in, 1.0f, j->x, l->in,
                    buf, l->in, j->beta, j->y + r0, l->out);
    }
}

static void qwork_fn(void *job, int id) { qwork(job, id); }

static void qlinear(struct ak_workspace *ws, const ak_linear *l, const float *x, int T, float *y,
                    float beta)
{
    /* fast mode: the activations quantized once here, for every row; a
     * type without a fast dot (F16, BF16, F32) keeps the exact one.  Past
     * FUSED_MAX_T tokens the four-token dots, where the type has them at
     * this SIMD level (the K-quants), cost less than dequantizing + sgemm
     * (bench/quant_dot.c, 512 tokens, Zen 4 VNNI: Q4_K and Q6_K 0.015-0.019
     * ns a weight and token against 0.024-0.028) */
    ak_dot_q8x4_fn dotq4 = ws->fast && T > 4 ? ak_ggml_dot_q8x4(l->type) : NULL;
    ak_dot_fn dot = T <= FUSED_MAX_T || dotq4 ? ak_ggml_dot(l->type) : NULL;
    ak_dot_q8_fn dotq = dot && ws->fast ? ak_ggml_dot_q8(l->type) : NULL;
    size_t xq_stride = dotq ? ak_q8_bytes(l->type, l->in) : 0;
    if (dotq && xq_stride * (size_t)T <= ws->xq_bytes)
        for (int k = 0; k < T; k++)
            ak_q8_quantize(l->type, x + (size_t)k * l->in, ws->xq + (size_t)k * xq_stride, l->in);
    else
        dotq = NULL;   /* wider than the workspace's buffer (none is): exact */
    if (!dotq && T > FUSED_MAX_T)
        dot = NULL;    /* dequantized tiles + sgemm */
    if (!dotq)
        dotq4 = NULL;
    /* exact mode, the types with mins (Q4_1, Q5_1, Q4_K, Q5_K): the sums of x
     * per 32 (the min terms) taken
     * once here, for every row */
    ak_dot_xs_fn dotx = dot && !dotq ? ak_ggml_dot_xs(l->type) : NULL;
    if (dotx && (size_t)l->in / 32 * (size_t)T <= ws->xs_floats)
        for (int k = 0; k < T; k++)
            ak_xsum32(x + (size_t)k * l->in, ws->xs + (size_t)k * (l->in / 32), l->in);
    else
        dotx = NULL;
    /* Tiles: the fewest that fit the buffer and give every thread an equal
     * share; rows a multiple of 16 (sgemm's register blocks).  The fused
     * dots use no buffer: eight tiles a thread (at least 16 rows each) keep
     * the threads even on the small matrices too (k and v: 128-256 rows). */
    int cap = (int)(ws->tile_floats / (size_t)l->in) / 16 * 16;
    int per = dot ? (l->out + 8 * ws->nthreads - 1) / (8 * ws->nthreads)
                  : (l->out + ws->nthreads - 1) / ws->nthreads;
    int rows = (per + 15) / 16 * 16;
    if (rows > cap)
        rows = cap > TILE_ROWS ? cap : TILE_ROWS;
    if (dotq4 && (size_t)rows * l->row_bytes > FAST_TILE_BYTES) {
        rows = (int)(FAST_TILE_BYTES / l->row_bytes) / 4 * 4;
        rows = rows < 4 ? 4 : rows;
    }
    qjob job = {l, x, y, T, beta, dot, dotq, dotq4, ws->xq, xq_stride, dotx, ws->xs, rows,
                (l->out + rows - 1) / rows, 0, ws};
    int n = ws->nthreads < job.ntiles ? ws->nthreads : job.ntiles;
#ifndef AK_NO_BLAS
    /* our threads split the rows, ATTNKIT_THREADS of them; OpenBLAS's own
     * would oversubscribe the CPUs (or exceed the count asked for) */
    int blas_threads = dot ? 1 : openblas_get_num_threads();
    if (blas_threads != 1)
        openblas_set_num_threads(1);
#endif
    ak_pool_run(&ws->pool, n, qwork_fn, &job);   /* the calling thread works too */
#ifndef AK_NO_BLAS
    if (blas_threads != 1)
        openblas_set_num_threads(blas_threads);
#endif
}

/* y = x W^T + b (beta = 0), or y += x W^T + b (accumulate). */
static void linear(struct ak_workspace *ws, const ak_linear *l, const float *x, int T, float *y,
                   int accumulate)
{
    float beta = accumulate ? 1.0f : 0.0f;
    if (l->b) {
        for (int t = 0; t < T; t++) {
            float *yr = y + (size_t)t * l->out;
            for (int i = 0; i < l->out; i++)
                yr[i] = (accumulate ? yr[i] : 0.0f) + l->b[i];
        }
        beta = 1.0f;
    }
    if (l->wq) {
        qlinear(ws, l, x, T, y, beta);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, l->in_out ? CblasNoTrans : CblasTrans, T, l->out,
                l->in, 1.0f, x, l->in, l->w, l->ldw, beta, y, l->out);
}

/* RMSNorm as Llama defines it: x / sqrt(mean(x^2) + eps) * w. */
static void rmsnorm(float *y, const float *x, int T, int D, const float *w, float eps)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * D;
        float *yr = y + (size_t)t * D;
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / D + eps));
        for (int i = 0; i < D; i++)
            yr[i] = w[i] * (xr[i] * inv);
    }
}

static void norm(const ak_model *m, float *y, const float *x, int T, const float *w, const float *b)
{
    if (m->family == AK_FAMILY_LLAMA || m->family == AK_FAMILY_GEMMA3)
        rmsnorm(y, x, T, m->hidden_size, w, m->norm_eps);
    else
        ak_layernorm(y, x, T, m->hidden_size, w, b, m->norm_eps);
}

/* SiLU and GELU-tanh are both v * sigmoid(a): a = v for SiLU, and
 * 0.5 v (1 + tanh(u)) = v / (1 + exp(-2u)) for GELU-tanh (gelu_new,
 * Hendrycks & Gimpel's tanh approximation); the exp in 8-float vectors
 * (fastexp.h), where libm's tanhf per element was a seventh of Gemma 3's
 * time at 512 tokens. */
AK_VINLINE ak_vf sigmoid_argv(ak_act act, ak_vf v)
{
    return act == AK_ACT_SILU ? -v : -1.5957691216057308f * (v + 0.044715f * v * v * v);
}

AK_VINLINE void activate_impl(ak_act act, float *x, size_t n)
{
    size_t i = 0;
    if (act == AK_ACT_SILU || act == AK_ACT_GELU_TANH) {
        for (; i + AK_VL <= n; i += AK_VL) {
            ak_vf v = ak_loadv(x + i);
            ak_storev(x + i, v / (1.0f + ak_expv(sigmoid_argv(act, v))));
        }
        for (; i < n; i++) {
            ak_vf v = {x[i]};
            x[i] = (v / (1.0f + ak_expv(sigmoid_argv(act, v))))[0];
        }
        return;
    }
    for (; i < n; i++) {
        float v = x[i];
        x[i] = act == AK_ACT_GELU_ERF ? 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2))
                                      : v > 0 ? v : 0;   /* AK_ACT_RELU */
    }
}

/* activate_impl compiled for the baseline and for AVX2 + FMA, the one run
 * chosen by the SIMD level in use (simd.h: the CPU's, or ATTNKIT_SIMD) */
static void activate_base(ak_act act, float *x, size_t n) { activate_impl(act, x, n); }
#ifdef AK_SIMD_X86
AK_TARGET_AVX2 static void activate_avx2(ak_act act, float *x, size_t n) { activate_impl(act, x, n); }
#endif

static void activate(ak_act act, float *x, size_t n)
{
#ifdef AK_SIMD_X86
    if (ak_simd_level() >= AK_SIMD_AVX2) {
        activate_avx2(act, x, n);
        return;
    }
#endif
    activate_base(act, x, n);
}

/* Rotates pairs (i, i + half) of every head by angle pos * inv_freq[i]
 * (transformers' rotate_half convention). */
static void rope(float *x, int T, int heads, int dh, const float *cosv, const float *sinv)
{
    int half = dh / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < heads; h++) {
            float *v = x + ((size_t)t * heads + h) * dh;
            const float *c = cosv + (size_t)t * half, *s = sinv + (size_t)t * half;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
}

/* GGUF llama q/k rows are ordered (2i, 2i+1) per head (llama.cpp's RoPE
 * pairs); Hugging Face's are (i, i + half).  Puts each head back in
 * Hugging Face's order, so rotate_half RoPE applies and K matches. */
static void deinterleave(float *x, int T, int heads, int dh, float *tmp)
{
    int half = dh / 2;
    for (size_t r = 0; r < (size_t)T * heads; r++) {
        float *v = x + r * dh;
        for (int i = 0; i < half; i++) {
            tmp[i] = v[2 * i];
            tmp[i + half] = v[2 * i + 1];
        }
        memcpy(v, tmp, (size_t)dh * sizeof(float));
    }
}

/* Probabilities of the chosen heads only, one head at a time, so that
 * memory is h x T x T rather than H x T x T. */
static int head_probs(ak_attn_ws *ws, ak_device dev, ak_attn_dtype dt, const ak_attn_shape *s,
                      const float *q, const float *k, const float *v, const unsigned char *heads,
                      float *probs, ak_err *err)
{
    size_t T = (size_t)s->n_q, Dh = (size_t)s->head_dim;
    int group = s->n_heads / s->n_kv_heads, rc = 0;
    float *buf = malloc(4 * T * Dh * sizeof(float));
    if (!buf)
        return ak_fail(err, AK_ENOMEM, "out of memory for %zu tokens", T);
    float *qh = buf, *kh = buf + T * Dh, *vh = buf + 2 * T * Dh, *oh = buf + 3 * T * Dh;
    ak_attn_shape one = *s;
    one.n_heads = one.n_kv_heads = 1;
    for (int h = 0, n = 0; h < s->n_heads && !rc; h++) {
        if (!heads[h])
            continue;
        int g = h / group;
        for (size_t t = 0; t < T; t++) {
            memcpy(qh + t * Dh, q + (t * s->n_heads + h) * Dh, Dh * sizeof(float));
            memcpy(kh + t * Dh, k + (t * s->n_kv_heads + g) * Dh, Dh * sizeof(float));
            memcpy(vh + t * Dh, v + (t * s->n_kv_heads + g) * Dh, Dh * sizeof(float));
        }
        ak_attn_out ao = {oh, NULL, NULL, probs + (size_t)n++ * T * T, NULL, 0, 0};
        rc = ak_attention_ws(ws, dev, dt, &one, qh, kh, vh, &ao, err);
    }
    free(buf);
    return rc;
}

/* Layer l's attention of the T new queries (positions pos0..) against
 * cache c, whose heads already hold the new keys: one call per KV head,
 * its group of query heads against that head's kept positions. */
static int cached_attention(const ak_model *m, struct ak_workspace *ws, ak_device dev,
                            ak_kvcache *c, int l, int T, const ak_attn_shape *base,
                            const float *q, float *att, ak_forward_out *o, ak_err *err)
{
    int H = m->n_heads, Hkv = m->n_kv_heads, Dh = m->head_dim, group = H / Hkv;
    int pos0 = c->n_tokens;
    size_t Tz = (size_t)T, row = (size_t)group * Dh;
    if (grow(&ws->gq, Tz * row) || grow(&ws->gout, Tz * row) || grow(&ws->gent, (size_t)group * Tz))
        return ak_fail(err, AK_ENOMEM, "out of memory for %d tokens", T);
    for (int g = 0; g < Hkv; g++) {
        ak_kvhead *hd = ak_kvcache_head(c, l, g);
        size_t n = (size_t)hd->n;
        if (grow(&ws->gmass, 2 * (size_t)group * n))
            return ak_fail(err, AK_ENOMEM, "out of memory for %zu keys", n);
        for (size_t t = 0; t < Tz; t++)
            memcpy(ws->gq + t * row, q + (t * H + (size_t)g * group) * Dh, row * sizeof(float));
        ak_attn_shape s = *base;
        s.n_q = T;
        s.n_k = hd->n;
        s.q_offset = pos0;
        s.n_heads = group;
        s.n_kv_heads = 1;
        s.k_pos = hd->pos;
        float *gm = ws->gmass, *gml = ws->gmass + (size_t)group * n;
        ak_attn_out ao = {ws->gout, ws->gent, gm, NULL, o->last_w > 0 ? gml : NULL, o->last_w, 0};
        int rc = ak_attention_ws(ws->attn, dev, (ak_attn_dtype)o->attn_dtype, &s, ws->gq, hd->k,
                                 hd->v, &ao, err);
        if (rc)
            return rc;
        for (size_t t = 0; t < Tz; t++)
            memcpy(att + (t * H + (size_t)g * group) * Dh, ws->gout + t * row, row * sizeof(float));
        size_t first_new = n - Tz;   /* the new keys are the last T entries */
        for (int hh = 0; hh < group; hh++) {
            size_t h = (size_t)g * group + hh, lh = (size_t)l * H + h;
            const float *mh = gm + (size_t)hh * n;
            if (o->entropy)
                memcpy(o->entropy + lh * Tz, ws->gent + (size_t)hh * Tz, Tz * sizeof(float));
            if (o->mass)
                memcpy(o->mass + lh * Tz, mh + first_new, Tz * sizeof(float));
            if (o->mass_cached)
                for (size_t j = 0; j < first_new; j++)
                    o->mass_cached[lh * (size_t)pos0 + hd->pos[j]] = mh[j];
            if (o->mass_last)
                memcpy(o->mass_last + lh * Tz, gml + (size_t)hh * n + first_new, Tz * sizeof(float));
        }
        for (size_t j = 0; j < n; j++) {
            double sum = 0, sum_last = 0;
            for (int hh = 0; hh < group; hh++) {
                sum += gm[(size_t)hh * n + j];
                if (o->last_w > 0)
                    sum_last += gml[(size_t)hh * n + j];
            }
            hd->mass[j] += (float)sum;
            if (o->last_w > 0)
                hd->mass_last[j] = (float)sum_last;
        }
        if (o->visible && g == 0)
            for (int i = 0; i < T; i++) {
                int64_t lo, hi;
                ak_mask_keys_at(s.causal, s.window, pos0 + i, hd->pos, hd->n, &lo, &hi);
                o->visible[(size_t)l * Tz + i] = (int32_t)(hi >= lo ? hi - lo + 1 : 0);
            }
    }
    return 0;
}

/* Appends layer l's new keys and values k, v [T, Hkv, Dh] (positions
 * c->n_tokens ..) to the cache's heads; room was reserved. */
static void cache_append(const ak_model *m, ak_kvcache *c, int l, int T, const float *k,
                         const float *v)
{
    int Hkv = m->n_kv_heads, Dh = m->head_dim;
    for (int g = 0; g < Hkv; g++) {
        ak_kvhead *hd = ak_kvcache_head(c, l, g);
        for (int t = 0; t < T; t++) {
            size_t dst = (size_t)hd->n * Dh, src = ((size_t)t * Hkv + g) * Dh;
            memcpy(hd->k + dst, k + src, (size_t)Dh * sizeof(float));
            memcpy(hd->v + dst, v + src, (size_t)Dh * sizeof(float));
            hd->pos[hd->n] = c->n_tokens + t;
            hd->mass[hd->n] = 0;
            hd->mass_last[hd->n] = 0;
            hd->n++;
        }
    }
}

/* ---- a weight as dense f32 rows (what the device forward pass uploads) ---- */

int ak_linear_source_row(int r, int rope_dh)
{
    if (rope_dh <= 0)
        return r;
    int h = r / rope_dh, i = r % rope_dh, half = rope_dh / 2;
    return h * rope_dh + (i < half ? 2 * i : 2 * (i - half) + 1);
}

void ak_linear_rows_f32(const ak_linear *l, int r0, int n, int rope_dh, float *dst)
{
    for (int r = 0; r < n; r++) {
        size_t src = (size_t)ak_linear_source_row(r0 + r, rope_dh);
        float *d = dst + (size_t)r * l->in;
        if (l->wq)
            ak_dequant_row(l->type, (const char *)l->wq + src * l->row_bytes, d, l->in);
        else if (l->in_out)
            for (int i = 0; i < l->in; i++)
                d[i] = l->w[(size_t)i * l->ldw + src];
        else
            memcpy(d, l->w + src * (size_t)l->ldw, (size_t)l->in * sizeof(float));
    }
}

#ifdef AK_HAVE_CUDA
/* ---- the opt-in forward pass on the device (lib/cuda/forward.cu) ---------
 * Unverified until a `make gpu-check` run has passed (README, GPU). */

/* Uploads l (and its bias) to slots w and b, a chunk of rows at a time
 * through buf[nbuf]. */
static int put_linear(ak_cuda_model *cm, int layer, int w, int b, const ak_linear *l, int in,
                      int out, int dh, float *buf, size_t nbuf, ak_err *err)
{
    if (l->in != in || l->out != out)
        return ak_fail(err, AK_ECONFIG, "cuda forward: layer %d weight %d is [%d, %d], not [%d, %d]",
                       layer, w, l->out, l->in, out, in);
    int rows = (int)(nbuf / (size_t)in), rc = 0;
    size_t total = (size_t)out * in;
    for (int r0 = 0; r0 < out && !rc; r0 += rows) {
        int n = out - r0 < rows ? out - r0 : rows;
        ak_linear_rows_f32(l, r0, n, dh, buf);
        rc = ak_cuda()->model_put(cm, layer, w, (size_t)r0 * in, buf, (size_t)n * in, total, err);
    }
    if (!rc && l->b) {
        for (int r = 0; r < out; r++)
            buf[r] = l->b[ak_linear_source_row(r, dh)];
        rc = ak_cuda()->model_put(cm, layer, b, 0, buf, (size_t)out, (size_t)out, err);
    }
    return rc;
}

static int put_vec(ak_cuda_model *cm, int layer, int slot, const float *v, int n, ak_err *err)
{
    return v ? ak_cuda()->model_put(cm, layer, slot, 0, v, (size_t)n, (size_t)n, err) : 0;
}

/* The device copy of m: every weight once, in f32. */
static int cuda_upload(const ak_model *m, ak_cuda_model **out, ak_err *err)
{
    int D = m->hidden_size, H = m->n_heads, Hkv = m->n_kv_heads, Dh = m->head_dim;
    int F = m->intermediate_size, L = m->n_layers;
    ak_cuda_dims d = {D, H, Hkv, Dh, F, L, m->vocab_size,
                      m->family == AK_FAMILY_BERT,
                      m->family == AK_FAMILY_LLAMA || m->family == AK_FAMILY_GEMMA3,
                      m->family == AK_FAMILY_GEMMA3, (int)m->act, m->causal, m->norm_eps,
                      m->logit_softcap, m->cuda_forward == 1};
    /* 16 MiB of rows at a time, at least two of the widest and a bias */
    size_t widest = (size_t)(D > F ? D : F);
    if (widest < (size_t)H * Dh)
        widest = (size_t)H * Dh;
    size_t nbuf = (size_t)1 << 22;
    if (nbuf < widest * 2)
        nbuf = widest * 2;
    if (nbuf < (size_t)m->vocab_size)
        nbuf = (size_t)m->vocab_size;
    float *buf = malloc(nbuf * sizeof(float));
    if (!buf)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    ak_cuda_model *cm = NULL;
    int rc = ak_cuda()->model_new(&cm, &d, err);
    int qdh = m->qk_interleaved ? Dh : 0;
    for (int l = 0; l < L && !rc; l++) {
        const ak_layer *ly = &m->layers[l];
        int gated = ly->gate.in != 0;
        rc = put_linear(cm, l, AK_CW_Q, AK_CW_QB, &ly->q, D, H * Dh, qdh, buf, nbuf, err);
        if (!rc)
            rc = put_linear(cm, l, AK_CW_K, AK_CW_KB, &ly->k, D, Hkv * Dh, qdh, buf, nbuf, err);
        if (!rc)
            rc = put_linear(cm, l, AK_CW_V, AK_CW_VB, &ly->v, D, Hkv * Dh, 0, buf, nbuf, err);
        if (!rc)
            rc = put_linear(cm, l, AK_CW_O, AK_CW_OB, &ly->o, H * Dh, D, 0, buf, nbuf, err);
        if (!rc)
            rc = put_linear(cm, l, AK_CW_UP, AK_CW_UPB, &ly->up, D, F, 0, buf, nbuf, err);
        if (!rc && gated)
            rc = put_linear(cm, l, AK_CW_GATE, AK_CW_GATEB, &ly->gate, D, F, 0, buf, nbuf, err);
        if (!rc)
            rc = put_linear(cm, l, AK_CW_DOWN, AK_CW_DOWNB, &ly->down, F, D, 0, buf, nbuf, err);
        const struct { int slot; const float *v; int n; } vecs[] = {
            {AK_CW_NORM1_W, ly->norm1_w, D},    {AK_CW_NORM1_B, ly->norm1_b, D},
            {AK_CW_NORM2_W, ly->norm2_w, D},    {AK_CW_NORM2_B, ly->norm2_b, D},
            {AK_CW_POST_ATTN, ly->post_attn_norm_w, D}, {AK_CW_POST_MLP, ly->post_mlp_norm_w, D},
            {AK_CW_QNORM, ly->q_norm_w, Dh},    {AK_CW_KNORM, ly->k_norm_w, Dh},
            {AK_CW_INV_FREQ, ly->inv_freq, Dh / 2},
        };
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0] && !rc; i++)
            rc = put_vec(cm, l, vecs[i].slot, vecs[i].v, vecs[i].n, err);
        ak_cuda()->model_layer(cm, l, ly->window,
                            m->attn_scale / (m->attn_scale_by_layer ? (float)(l + 1) : 1.0f));
    }
    if (!rc)
        rc = put_vec(cm, L, AK_CW_FINAL_W, m->final_norm_w, D, err);
    if (!rc)
        rc = put_vec(cm, L, AK_CW_FINAL_B, m->final_norm_b, D, err);
    if (!rc && (m->lm_head.w || m->lm_head.wq))
        rc = put_linear(cm, L, AK_CW_LM_HEAD, AK_CW_LM_HEAD, &m->lm_head, D, m->vocab_size, 0, buf,
                        nbuf, err);
    free(buf);
    if (rc) {
        ak_cuda()->model_free(cm);
        return rc;
    }
    *out = cm;
    return 0;
}

static int cuda_forward(const ak_model *m, float *x, int T, ak_forward_out *o, ak_err *err)
{
    struct ak_workspace *ws;
    int rc = workspace_base(m, &ws, err);
    if (rc)
        return rc;
    if (o->logits && !m->lm_head.w && !m->lm_head.wq)
        return ak_fail(err, AK_ECONFIG, "model %s has no language-model head", m->name);
    if (!ak_cuda())
        return ak_fail(err, AK_ECONFIG, "cuda forward: %s", ak_cuda_load_error());
    if (!ws->cuda && (rc = cuda_upload(m, &ws->cuda, err)))
        return ak_wrap(err, "cuda forward");
    if ((rc = ak_cuda()->model_forward(ws->cuda, x, T, o->attn_dtype, o->entropy, o->mass, o->logits,
                                    o->logits_all, err)))
        return rc;
    if (o->visible)
        for (int l = 0; l < m->n_layers; l++)
            for (int i = 0; i < T; i++)
                o->visible[(size_t)l * T + i] =
                    (int32_t)ak_mask_visible((ak_mask){m->causal, m->layers[l].window}, T, i);
    return 0;
}
#endif

/* The blocks over x[T, D] at positions pos0 = (c ? c->n_tokens : 0) on. */
static int forward_pass(const ak_model *m, ak_device dev, float *x, int T, ak_kvcache *c,
                        ak_forward_out *o, ak_err *err)
{
    if (T <= 0)
        return 0;
    int D = m->hidden_size, H = m->n_heads, Hkv = m->n_kv_heads, Dh = m->head_dim;
    int F = m->intermediate_size, L = m->n_layers;
    int pos0 = c ? c->n_tokens : 0;
    size_t Tz = (size_t)T, half = (size_t)Dh / 2;
#ifdef AK_HAVE_CUDA
    /* opt-in; what the device pass does not give (a cache, probabilities,
     * keys and values, last-W mass) stays on the path below */
    if (m->cuda_forward && dev == AK_DEV_CUDA && !c && !o->probs && !o->kv_k && !o->kv_v &&
        !o->mass_last) {
        int crc = cuda_forward(m, x, T, o, err);
        if (!crc && m->progress)
            m->progress(m->progress_ctx, T, L, L);
        return crc;
    }
#endif
    struct ak_workspace *ws = NULL;
    int rc = workspace(m, T, (size_t)pos0 + Tz, &ws, err);
    if (rc)
        return rc;
    float *xn = ws->xn, *q = ws->q, *k = ws->k, *v = ws->v, *att = ws->att, *up = ws->up;
    float *gate = ws->gate, *tmp = ws->tmp;
    int post_ln = m->family == AK_FAMILY_BERT, gemma = m->family == AK_FAMILY_GEMMA3;
    for (int l = 0; l < L; l++) {
        const ak_layer *ly = &m->layers[l];
        const float *ain = x;
        if (!post_ln) {
            norm(m, xn, x, T, ly->norm1_w, ly->norm1_b);
            ain = xn;
        }
        linear(ws, &ly->q, ain, T, q, 0);
        linear(ws, &ly->k, ain, T, k, 0);
        linear(ws, &ly->v, ain, T, v, 0);
        if (m->qk_interleaved) {
            deinterleave(q, T, H, Dh, tmp);
            deinterleave(k, T, Hkv, Dh, tmp);
        }
        if (ly->q_norm_w) {   /* gemma3: RMSNorm of each head's query and key */
            rmsnorm(q, q, T * H, Dh, ly->q_norm_w, m->norm_eps);
            rmsnorm(k, k, T * Hkv, Dh, ly->k_norm_w, m->norm_eps);
        }
        if (ly->inv_freq) {   /* at absolute positions pos0 .. */
            int local = ly->inv_freq == m->inv_freq_local;
            const float *cs = local ? ws->cos_l : ws->cos_g, *sn = local ? ws->sin_l : ws->sin_g;
            rope(q, T, H, Dh, cs + (size_t)pos0 * half, sn + (size_t)pos0 * half);
            rope(k, T, Hkv, Dh, cs + (size_t)pos0 * half, sn + (size_t)pos0 * half);
        }
        ak_attn_shape s = {T, T, 0, H, Hkv, Dh, m->causal, ly->window,
                           m->attn_scale / (m->attn_scale_by_layer ? (float)(l + 1) : 1.0f), NULL};
        ak_attn_dtype dt = (ak_attn_dtype)o->attn_dtype;
        if (c) {
            cache_append(m, c, l, T, k, v);
            if ((rc = cached_attention(m, ws, dev, c, l, T, &s, q, att, o, err)))
                return ak_wrap(err, "layer %d attention", l);
        } else {
            float *probs = o->probs ? o->probs[l] : NULL;
            ak_attn_out ao = {att, o->entropy ? o->entropy + (size_t)l * H * Tz : NULL,
                              o->mass ? o->mass + (size_t)l * H * Tz : NULL,
                              o->probs_heads ? NULL : probs,
                              o->mass_last ? o->mass_last + (size_t)l * H * Tz : NULL, o->last_w,
                              o->last_skip};
            if ((rc = ak_attention_ws(ws->attn, dev, dt, &s, q, k, v, &ao, err)) ||
                (probs && o->probs_heads &&
                 (rc = head_probs(ws->attn, dev, dt, &s, q, k, v, o->probs_heads, probs, err))))
                return ak_wrap(err, "layer %d attention", l);
            if (o->visible)
                for (int i = 0; i < T; i++)
                    o->visible[(size_t)l * Tz + i] =
                        (int32_t)ak_mask_visible((ak_mask){m->causal, ly->window}, T, i);
        }
        if (o->kv_k)
            for (int h = 0; h < Hkv; h++)
                for (int t = 0; t < T; t++) {
                    size_t dst = (((size_t)l * Hkv + h) * Tz + t) * Dh;
                    memcpy(o->kv_k + dst, k + ((size_t)t * Hkv + h) * Dh, (size_t)Dh * sizeof(float));
                    memcpy(o->kv_v + dst, v + ((size_t)t * Hkv + h) * Dh, (size_t)Dh * sizeof(float));
                }
        if (post_ln) {
            /* BERT: x = LN(x + O(att)); x = LN(x + MLP(x)) */
            linear(ws, &ly->o, att, T, x, 1);
            ak_layernorm(x, x, T, D, ly->norm1_w, ly->norm1_b, m->norm_eps);
            linear(ws, &ly->up, x, T, up, 0);
            activate(m->act, up, Tz * F);
            linear(ws, &ly->down, up, T, x, 1);
            ak_layernorm(x, x, T, D, ly->norm2_w, ly->norm2_b, m->norm_eps);
            continue;
        }
        /* pre-LN: x += O(att); x += MLP(norm(x)); Gemma normalizes both
         * branches' outputs too before adding them. */
        if (gemma) {
            linear(ws, &ly->o, att, T, tmp, 0);
            rmsnorm(tmp, tmp, T, D, ly->post_attn_norm_w, m->norm_eps);
            for (size_t i = 0; i < Tz * D; i++)
                x[i] += tmp[i];
        } else {
            linear(ws, &ly->o, att, T, x, 1);
        }
        norm(m, xn, x, T, ly->norm2_w, ly->norm2_b);
        linear(ws, &ly->up, xn, T, up, 0);
        if (ly->gate.in) {
            linear(ws, &ly->gate, xn, T, gate, 0);
            activate(m->act, gate, Tz * F);
            for (size_t i = 0; i < Tz * F; i++)
                up[i] *= gate[i];
        } else {
            activate(m->act, up, Tz * F);
        }
        if (gemma) {
            linear(ws, &ly->down, up, T, tmp, 0);
            rmsnorm(tmp, tmp, T, D, ly->post_mlp_norm_w, m->norm_eps);
            for (size_t i = 0; i < Tz * D; i++)
                x[i] += tmp[i];
        } else {
            linear(ws, &ly->down, up, T, x, 1);
        }
        if (m->progress)
            m->progress(m->progress_ctx, T, l + 1, L);
    }
    if (m->final_norm_w)
        norm(m, x, x, T, m->final_norm_w, m->final_norm_b);
    if (o->logits) {
        if (!m->lm_head.w && !m->lm_head.wq)
            return ak_fail(err, AK_ECONFIG, "model %s has no language-model head", m->name);
        size_t rows = o->logits_all ? Tz : 1;
        linear(ws, &m->lm_head, o->logits_all ? x : x + (Tz - 1) * D, (int)rows, o->logits, 0);
        if (m->logit_softcap > 0) {
            float cap = m->logit_softcap;
            for (size_t i = 0; i < rows * m->vocab_size; i++)
                o->logits[i] = cap * tanhf(o->logits[i] / cap);
        }
    }
    return 0;
}

int ak_model_logits(const ak_model *m, const float *hidden, int rows, int v0, int nv,
                    float *logits, ak_err *err)
{
    const ak_linear *h = &m->lm_head;
    if (!h->w && !h->wq)
        return ak_fail(err, AK_ECONFIG, "model %s has no language-model head", m->name);
    if (rows < 0 || v0 < 0 || nv < 0 || v0 > h->out - nv)
        return ak_fail(err, AK_EINTERNAL, "logits of vocabulary %d-%d: the head has %d", v0,
                       v0 + nv - 1, h->out);
    if (rows == 0 || nv == 0)
        return 0;
    struct ak_workspace *ws;
    int rc = workspace(m, 1, 0, &ws, err);
    if (rc)
        return rc;
    /* the rows v0.. of [V, D] (columns of a Conv1D [D, V]) are a linear of their own */
    ak_linear part = *h;
    part.out = nv;
    if (part.b)
        part.b += v0;
    if (part.wq)
        part.wq = (const char *)part.wq + (size_t)v0 * part.row_bytes;
    else
        part.w += part.in_out ? (size_t)v0 : (size_t)v0 * (size_t)part.ldw;
    linear(ws, &part, hidden, rows, logits, 0);
    if (m->logit_softcap > 0) {
        float cap = m->logit_softcap;
        for (size_t i = 0; i < (size_t)rows * (size_t)nv; i++)
            logits[i] = cap * tanhf(logits[i] / cap);
    }
    return 0;
}

int ak_model_forward(const ak_model *m, ak_device dev, float *x, int T, ak_forward_out *o,
                     ak_err *err)
{
    return forward_pass(m, dev, x, T, NULL, o, err);
}

int ak_kvcache_forward(const ak_model *m, ak_device dev, ak_kvcache *c, const int32_t *ids,
                       int T, float *hidden, ak_forward_out *o, ak_err *err)
{
    int rc = ak_kvcache_check_model(c, m, err);
    if (rc)
        return rc;
    if (o->probs || o->kv_k || o->kv_v)
        return ak_fail(err, AK_EUSAGE, "a forward pass through a cache gives no probabilities "
                       "or keys and values of its own");
    if (T <= 0)
        return 0;
    if ((int64_t)c->n_tokens + T > INT32_MAX / 2)
        return ak_fail(err, AK_EDATA, "%d tokens after %d cached: too many", T, c->n_tokens);
    if ((rc = ak_model_embed_at(m, ids, NULL, T, c->n_tokens, hidden, err)))
        return rc;
    for (int l = 0; l < m->n_layers; l++)
        for (int g = 0; g < m->n_kv_heads; g++)
            if ((rc = ak_kvcache_reserve(c, l, g, T, err)))
                return rc;
    int pos0 = c->n_tokens;
    if ((rc = forward_pass(m, dev, hidden, T, c, o, err))) {
        ak_kvcache_truncate(c, pos0);
        return rc;
    }
    memcpy(c->ids + pos0, ids, (size_t)T * sizeof(int32_t));
    c->n_tokens = pos0 + T;
    if (o->last_w > 0)
        c->last_w = o->last_w;
    return 0;
}
