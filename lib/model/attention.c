/* attention.c - attention with per-query entropy and per-key received mass
 * on the CPU (see attention.h for the definitions).
 *
 * Work is split into tasks of (head, block of queries).  A task computes the
 * scores of its queries against the keys they can see into a buffer of
 * QBLOCK x n_k floats, so memory stays linear in the prompt; each row's
 * softmax gives the output, the entropy
 *     H = log Z - sum_j p_j (s_j - m),   p_j = exp(s_j - m) / Z
 * and the row's contribution to each key's received mass.  Mass is summed
 * in per-thread buffers and reduced at the end, so no two threads write the
 * same memory.  Sums over keys are in double.  The buffers and the worker
 * threads live in an ak_attn_ws, grown to the largest shape seen and kept
 * between calls.
 */
#include "attnkit/attention.h"
#include "core/pool.h"
#include "fastexp.h"
#include "core/simd.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifndef AK_NO_BLAS
#include <cblas.h>
#endif
#ifdef AK_HAVE_CUDA
#include "cuda/ak_cuda.h"
#endif

#ifndef AK_NO_BLAS
enum { QBLOCK = 128 };
#else
enum { QBLOCK = 16 };
#endif

typedef struct {
    const ak_attn_shape *s;
    const float *q, *k, *v;
    const float *kt;          /* loop path: keys transposed [n_kv_heads][head_dim][n_k] */
    ak_attn_out *o;
    int ntasks;
    int next;                 /* next task to take, under lock */
    pthread_mutex_t lock;
    float *rows;              /* [nthreads][QBLOCK * n_k] scores */
    double *mass_parts;       /* [nthreads][n_heads][n_k], then as many for mass_last */
    size_t parts;             /* one thread's share of mass_parts */
} job_t;

enum { MAX_THREADS = AK_POOL_MAX };

/* Host scratch, grown on demand (sizes in bytes). */
struct ak_attn_ws {
    float *rows;
    size_t rows_cap;
    double *mass;
    size_t mass_cap;
    float *kt;
    size_t kt_cap;
    float *rounded;           /* q, k, v rounded to a dtype */
    size_t rounded_cap;
    ak_pool pool;             /* worker threads, kept until ak_attn_ws_free */
    int threads;              /* ak_attn_ws_set_threads; 0: one per online CPU */
#ifdef AK_HAVE_CUDA
    ak_cuda_ws *cuda;
#endif
};

/* Keys [lo, hi] that query position pos can see; empty when lo > hi. */
static void visible(const ak_attn_shape *s, int pos, int *lo, int *hi)
{
    if (s->k_pos) {
        int64_t a, b;
        ak_mask_keys_at(s->causal, s->window, pos, s->k_pos, s->n_k, &a, &b);
        *lo = (int)a;
        *hi = (int)b;
        return;
    }
    ak_mask_keys_int(s->causal, s->window, pos, s->n_k, lo, hi);
}

/* Task t is head *h (kv head *g) and queries [*i0, *i_end). */
static void task_rows(const ak_attn_shape *s, int t, int *h, int *g, int *i0, int *i_end)
{
    int nqb = (s->n_q + QBLOCK - 1) / QBLOCK;
    *h = t / nqb;
    *g = *h / (s->n_heads / s->n_kv_heads);
    *i0 = t % nqb * QBLOCK;
    *i_end = *i0 + QBLOCK < s->n_q ? *i0 + QBLOCK : s->n_q;
}

/* Softmax in place over row[a..b] (a <= b); returns the row's entropy.
 * In 8-float vectors (fastexp.h; a libm expf per score was a third of the
 * time at 4K tokens): the max and the exp, and the sums over chunks of
 * CHUNK scores, whose float partial sums are added up in double.  The pass
 * that normalises the row also adds each probability to the keys' mass
 * (m1[j] += p[j], and m2 for the last-W rows; NULL: none), so the
 * probabilities are not read again for it. */
enum { CHUNK = 256 };

AK_VINLINE float softmax_row_impl(float *row, int a, int b, double *m1, double *m2)
{
    float *r = row + a;
    int n = b - a + 1, j = 0;
    float m = -INFINITY;
    if (n >= AK_VL) {
        ak_vf mv = ak_loadv(r);
        for (j = AK_VL; j + AK_VL <= n; j += AK_VL)
            mv = ak_maxv(mv, ak_loadv(r + j));
        for (int k = 0; k < AK_VL; k++)
            m = mv[k] > m ? mv[k] : m;
    }
    for (; j < n; j++)
        m = r[j] > m ? r[j] : m;
    double z = 0, zs = 0;
    for (int c = 0; c < n; c += CHUNK) {
        int w = n - c < CHUNK ? n - c : CHUNK, k = 0;
        float *rc = r + c;
        ak_vf zv = {0}, sv = {0};
        for (k = 0; k + AK_VL <= w; k += AK_VL) {
            ak_vf d = ak_loadv(rc + k) - m, e = ak_expv(d);
            ak_storev(rc + k, e);
            zv += e;
            sv += e * d;
        }
        for (int l = 0; l < AK_VL; l++) {
            z += zv[l];
            zs += sv[l];
        }
        for (; k < w; k++) {
            float d = rc[k] - m, e = ak_expf(d);
            rc[k] = e;
            z += e;
            zs += (double)e * d;
        }
    }
    double inv = 1.0 / z;
    float finv = (float)inv;
    if (m2) {
        double *ma = m1 + a, *mb = m2 + a;
        for (j = 0; j < n; j++) {
            float p = r[j] * finv;
            r[j] = p;
            ma[j] += p;
            mb[j] += p;
        }
    } else if (m1) {
        double *ma = m1 + a;
        for (j = 0; j < n; j++) {
            float p = r[j] * finv;
            r[j] = p;
            ma[j] += p;
        }
    } else {
        for (j = 0; j < n; j++)
            r[j] *= finv;
    }
    return (float)(log(z) - zs * inv);
}

/* softmax_row_impl compiled for the baseline and for AVX2 + FMA, the one
 * run chosen by the SIMD level in use (simd.h: the CPU's, or ATTNKIT_SIMD) */
static float softmax_row_base(float *row, int a, int b, double *m1, double *m2)
{
    return softmax_row_impl(row, a, b, m1, m2);
}
#ifdef AK_SIMD_X86
AK_TARGET_AVX2 static float softmax_row_avx2(float *row, int a, int b, double *m1, double *m2)
{
    return softmax_row_impl(row, a, b, m1, m2);
}
#endif

/* Query i's softmax over row[a..b] (row[0] is key base), with its share of
 * each key's mass added to mass (NULL: none) and, for the last-W rows, to
 * the mass_last part after it; returns the entropy. */
static float softmax_row(const job_t *job, int h, int i, float *row, int base, int a, int b,
                         double *mass)
{
    const ak_attn_shape *s = job->s;
    const ak_attn_out *o = job->o;
    double *m1 = NULL, *m2 = NULL;
    if (mass) {
        m1 = mass + (size_t)h * s->n_k + base;
        if (o->mass_last && i >= s->n_q - o->last_w && i < s->n_q - o->last_skip)
            m2 = m1 + (size_t)s->n_heads * s->n_k;
    }
#ifdef AK_SIMD_X86
    if (ak_simd_level() >= AK_SIMD_AVX2)
        return softmax_row_avx2(row, a, b, m1, m2);
#endif
    return softmax_row_base(row, a, b, m1, m2);
}

/* Query i's entropy and its row of probabilities (row[0] is key base). */
static void row_outputs(const job_t *job, int h, int i, const float *row, int base, int a, int b,
                        float entropy)
{
    const ak_attn_shape *s = job->s;
    ak_attn_out *o = job->o;
    if (o->entropy)
        o->entropy[(size_t)h * s->n_q + i] = entropy;
    if (o->probs) {
        float *pr = o->probs + ((size_t)h * s->n_q + i) * s->n_k;
        memset(pr, 0, sizeof(float) * (size_t)s->n_k);
        if (a <= b)
            memcpy(pr + base + a, row + a, sizeof(float) * (size_t)(b - a + 1));
    }
}

#ifdef AK_NO_BLAS
static void run_task(job_t *job, int task, float *rows, double *mass)
{
    const ak_attn_shape *s = job->s;
    int H = s->n_heads, Hkv = s->n_kv_heads, Dh = s->head_dim, n_k = s->n_k;
    int h, g, i0, i_end;
    task_rows(s, task, &h, &g, &i0, &i_end);
    int lo[QBLOCK], hi[QBLOCK];
    ak_attn_out *o = job->o;

    /* Scores of the block's queries, as axpys over the transposed keys so
     * the inner loop runs along contiguous keys. */
    for (int i = i0; i < i_end; i++) {
        visible(s, s->q_offset + i, &lo[i - i0], &hi[i - i0]);
        float *row = rows + (size_t)(i - i0) * n_k;
        for (int j = lo[i - i0]; j <= hi[i - i0]; j++)
            row[j] = 0.0f;
    }
    for (int c = 0; c < Dh; c++) {
        const float *kt = job->kt + ((size_t)g * Dh + c) * n_k;
        for (int i = i0; i < i_end; i++) {
            float qc = s->scale * job->q[((size_t)i * H + h) * Dh + c];
            float *row = rows + (size_t)(i - i0) * n_k;
            for (int j = lo[i - i0]; j <= hi[i - i0]; j++)
                row[j] += qc * kt[j];
        }
    }
    for (int i = i0; i < i_end; i++) {
        float *row = rows + (size_t)(i - i0) * n_k;
        int a = lo[i - i0], b = hi[i - i0];
        float ent = softmax_row(job, h, i, row, 0, a, b, mass);
        float *out = o->out + ((size_t)i * H + h) * Dh;
        memset(out, 0, sizeof(float) * (size_t)Dh);
        for (int j = a; j <= b; j++) {
            const float *vj = job->v + ((size_t)j * Hkv + g) * Dh;
            for (int c = 0; c < Dh; c++)
                out[c] += row[j] * vj[c];
        }
        row_outputs(job, h, i, row, 0, a, b, ent);
    }
}

#endif

#ifndef AK_NO_BLAS
/* The same task through OpenBLAS: the block's scores against the union of
 * the keys its queries see as one sgemm straight from the [n, heads, Dh]
 * layouts (leading dimensions skip the other heads), then p v as another. */
static void run_task_blas(job_t *job, int task, float *rows, double *mass)
{
    const ak_attn_shape *s = job->s;
    int H = s->n_heads, Hkv = s->n_kv_heads, Dh = s->head_dim, n_k = s->n_k;
    int h, g, i0, i_end;
    task_rows(s, task, &h, &g, &i0, &i_end);
    int nb = i_end - i0;
    int lo[QBLOCK], hi[QBLOCK], a = n_k, b = -1;
    ak_attn_out *o = job->o;
    for (int i = 0; i < nb; i++) {
        visible(s, s->q_offset + i0 + i, &lo[i], &hi[i]);
        a = lo[i] < a ? lo[i] : a;
        b = hi[i] > b ? hi[i] : b;
    }
    int w = b - a + 1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, w, Dh, s->scale,
                job->q + ((size_t)i0 * H + h) * Dh, H * Dh, job->k + ((size_t)a * Hkv + g) * Dh,
                Hkv * Dh, 0.0f, rows, w);
    for (int i = 0; i < nb; i++) {
        float *row = rows + (size_t)i * w;
        int ra = lo[i] - a, rb = hi[i] - a;
        /* the keys outside this query's range take no part in p v */
        for (int j = 0; j < ra; j++)
            row[j] = 0.0f;
        for (int j = rb + 1; j < w; j++)
            row[j] = 0.0f;
        float ent = softmax_row(job, h, i0 + i, row, a, ra, rb, mass);
        row_outputs(job, h, i0 + i, row, a, ra, rb, ent);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, Dh, w, 1.0f, rows, w,
                job->v + ((size_t)a * Hkv + g) * Dh, Hkv * Dh, 0.0f,
                o->out + ((size_t)i0 * H + h) * Dh, H * Dh);
}
#endif

/* Takes tasks of job until none is left, as worker id. */
static void work(job_t *job, int id)
{
    float *rows = job->rows + (size_t)id * QBLOCK * (size_t)job->s->n_k;
    double *mass = job->mass_parts ? job->mass_parts + (size_t)id * job->parts : NULL;
    for (;;) {
        pthread_mutex_lock(&job->lock);
        int t = job->next++;
        pthread_mutex_unlock(&job->lock);
        if (t >= job->ntasks)
            break;
#ifndef AK_NO_BLAS
        run_task_blas(job, t, rows, mass);
#else
        run_task(job, t, rows, mass);
#endif
    }
}

static void work_fn(void *job, int id) { work(job, id); }

int ak_attention_threads(int n)
{
    long c = n > 0 ? n : sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : c > MAX_THREADS ? MAX_THREADS : (int)c;
}

void ak_attn_ws_set_threads(ak_attn_ws *ws, int n) { ws->threads = n < 0 ? 0 : n; }

#ifndef AK_NO_BLAS
/* Our workers split the attention and each calls sgemm; OpenBLAS's own
 * threads would oversubscribe the CPUs, so it is told once to use one. */
static void blas_single_thread(void) { openblas_set_num_threads(1); }
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
#endif

static int check_shape(const ak_attn_shape *s, ak_err *err)
{
    if (s->n_q < 0 || s->n_k < 0 || s->q_offset < 0 || s->n_heads < 1 || s->n_kv_heads < 1 ||
        s->head_dim < 1 || s->window < 0 || s->n_heads % s->n_kv_heads != 0)
        return ak_fail(err, AK_EUSAGE, "attention: bad shape (%d queries, %d keys, %d heads, "
                       "%d kv heads, head size %d, window %d)", s->n_q, s->n_k, s->n_heads,
                       s->n_kv_heads, s->head_dim, s->window);
    if (s->k_pos) {
        for (int j = 1; j < s->n_k; j++)
            if (s->k_pos[j] <= s->k_pos[j - 1])
                return ak_fail(err, AK_EUSAGE, "attention: key positions not ascending at %d", j);
        for (int i = 0; i < s->n_q; i++) {
            int lo, hi;
            visible(s, s->q_offset + i, &lo, &hi);
            if (lo > hi)
                return ak_fail(err, AK_EUSAGE, "attention: query at position %d sees no key",
                               s->q_offset + i);
        }
        return 0;
    }
    if (s->n_q > 0 && s->causal && (int64_t)s->q_offset + s->n_q > s->n_k)
        return ak_fail(err, AK_EUSAGE, "attention: causal queries at positions %d..%d need "
                       "that many keys (%d given)", s->q_offset, s->q_offset + s->n_q - 1, s->n_k);
    if (s->n_q > 0 && s->n_k == 0)
        return ak_fail(err, AK_EUSAGE, "attention: %d queries and no keys", s->n_q);
    if (s->n_q > 0 && !s->causal && s->window > 0) {
        /* bidirectional with a window: the last query sees pos-window+1.. */
        int lo, hi;
        visible(s, s->q_offset + s->n_q - 1, &lo, &hi);
        if (lo > hi)
            return ak_fail(err, AK_EUSAGE, "attention: a query sees no key");
    }
    return 0;
}

/* Makes the buffer *p hold at least n bytes (contents not kept). */
static int grow(void *p, size_t *cap, size_t n)
{
    void **pp = p;
    if (n <= *cap)
        return 0;
    void *q = malloc(n);
    if (!q)
        return -1;
    free(*pp);
    *pp = q;
    *cap = n;
    return 0;
}

int ak_attn_ws_new(ak_attn_ws **wsp, ak_err *err)
{
    ak_attn_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return ak_fail(err, AK_ENOMEM, "attention: out of memory");
    *wsp = ws;
    return 0;
}

void ak_attn_ws_free(ak_attn_ws *ws)
{
    if (!ws)
        return;
#ifdef AK_HAVE_CUDA
    if (ws->cuda)
        ak_cuda()->ws_free(ws->cuda);
#endif
    free(ws->rows);
    free(ws->mass);
    free(ws->kt);
    free(ws->rounded);
    ak_pool_stop(&ws->pool);
    free(ws);
}

static int cpu_attention(ak_attn_ws *ws, const ak_attn_shape *s, const float *q, const float *k,
                         const float *v, ak_attn_out *o, ak_err *err)
{
    int nthreads = ak_attention_threads(ws->threads);
    int nqb = (s->n_q + QBLOCK - 1) / QBLOCK;
    job_t job = {.s = s, .q = q, .k = k, .v = v, .o = o, .ntasks = nqb * s->n_heads};
    if (job.ntasks < nthreads)
        nthreads = job.ntasks > 0 ? job.ntasks : 1;
    size_t per = (size_t)s->n_heads * (size_t)s->n_k;
    size_t nrows = (size_t)nthreads * QBLOCK * (size_t)s->n_k + 1;
    int masses = o->mass || o->mass_last;
    job.parts = per * (o->mass_last ? 2 : 1);
    if (grow(&ws->rows, &ws->rows_cap, nrows * sizeof(float)) ||
        (masses && grow(&ws->mass, &ws->mass_cap, ((size_t)nthreads * job.parts + 1) * sizeof(double))))
        return ak_fail(err, AK_ENOMEM, "attention: cannot allocate buffers for %d keys", s->n_k);
    job.rows = ws->rows;
    if (masses) {
        job.mass_parts = ws->mass;
        memset(job.mass_parts, 0, (size_t)nthreads * job.parts * sizeof(double));
    }
#ifdef AK_NO_BLAS
    size_t nkt = (size_t)s->n_kv_heads * s->head_dim * s->n_k + 1;
    if (grow(&ws->kt, &ws->kt_cap, nkt * sizeof(float)))
        return ak_fail(err, AK_ENOMEM, "attention: cannot allocate %d keys", s->n_k);
    for (int j = 0; j < s->n_k; j++)
        for (int g = 0; g < s->n_kv_heads; g++)
            for (int c = 0; c < s->head_dim; c++)
                ws->kt[((size_t)g * s->head_dim + c) * s->n_k + j] =
                    k[((size_t)j * s->n_kv_heads + g) * s->head_dim + c];
    job.kt = ws->kt;
#else
    if (nthreads > 1)
        pthread_once(&blas_once, blas_single_thread);
#endif
    pthread_mutex_init(&job.lock, NULL);
    int started = ak_pool_run(&ws->pool, nthreads, work_fn, &job);
    for (int which = 0; masses && which < 2; which++) {
        float *dst = which ? o->mass_last : o->mass;
        for (size_t x = 0; dst && x < per; x++) {
            double sum = 0;
            for (int t = 0; t < started; t++)
                sum += job.mass_parts[(size_t)t * job.parts + (size_t)which * per + x];
            dst[x] = (float)sum;
        }
    }
    pthread_mutex_destroy(&job.lock);
    return 0;
}

/* Keeps the top `keep` of float's 23 mantissa bits, to nearest, ties to
 * even (NaN and infinity as they are). */
static float round_mantissa(float x, int keep)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7f800000u) == 0x7f800000u)
        return x;
    int drop = 23 - keep;
    uint32_t half = (1u << (drop - 1)) - 1 + ((b >> drop) & 1);
    b = (b + half) & ~((1u << drop) - 1);
    memcpy(&x, &b, 4);
    return x;
}

void ak_round_dtype(float *x, size_t n, ak_attn_dtype dt)
{
    if (dt == AK_ATTN_BF16)
        for (size_t i = 0; i < n; i++)
            x[i] = round_mantissa(x[i], 7);
    else if (dt == AK_ATTN_F16)
        for (size_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            if (a != a || a == INFINITY)
                continue;
            if (a < 6.103515625e-05f) /* f16 subnormal: steps of 2^-24 */
                x[i] = rintf(x[i] * 16777216.0f) / 16777216.0f;
            else {
                x[i] = round_mantissa(x[i], 10);
                if (fabsf(x[i]) > 65504.0f)
                    x[i] = x[i] > 0 ? INFINITY : -INFINITY;
            }
        }
}

int ak_attention_ws(ak_attn_ws *ws, ak_device dev, ak_attn_dtype dt, const ak_attn_shape *s,
                    const float *q, const float *k, const float *v, ak_attn_out *o, ak_err *err)
{
    if (dt != AK_ATTN_F32 && dt != AK_ATTN_BF16 && dt != AK_ATTN_F16)
        return ak_fail(err, AK_EUSAGE, "attention: unknown precision %d", (int)dt);
    int rc = check_shape(s, err);
    if (rc)
        return rc;
#ifndef AK_HAVE_CUDA
    if (dev == AK_DEV_CUDA)
        return ak_fail(err, AK_ECONFIG, "attention: this build has no CUDA");
#endif
    ak_attn_ws *tmp = NULL;
    if (!ws) {
        if ((rc = ak_attn_ws_new(&tmp, err)))
            return rc;
        ws = tmp;
    }
    if (dt != AK_ATTN_F32) {
        size_t nq = (size_t)s->n_q * s->n_heads * s->head_dim;
        size_t nk = (size_t)s->n_k * s->n_kv_heads * s->head_dim;
        if (grow(&ws->rounded, &ws->rounded_cap, sizeof(float) * (nq + 2 * nk + 1))) {
            rc = ak_fail(err, AK_ENOMEM, "attention: cannot allocate rounded inputs");
            goto out;
        }
        float *rq = ws->rounded, *rk = rq + nq, *rv = rk + nk;
        memcpy(rq, q, nq * sizeof(float));
        memcpy(rk, k, nk * sizeof(float));
        memcpy(rv, v, nk * sizeof(float));
        ak_round_dtype(rq, nq + 2 * nk, dt);
        q = rq;
        k = rk;
        v = rv;
    }
#ifdef AK_HAVE_CUDA
    /* the CUDA kernels know neither kept key positions nor the last-W
     * mass: those run on the CPU path below */
    if (dev == AK_DEV_CUDA && !s->k_pos && !o->mass_last) {
        if (!ak_cuda()) {
            rc = ak_fail(err, AK_ECONFIG, "attention: %s", ak_cuda_load_error());
            goto out;
        }
        rc = dt == AK_ATTN_F32 ? ak_cuda()->attention(&ws->cuda, s, q, k, v, o, err)
                               : ak_cuda()->attention_tc(&ws->cuda, (int)dt, s, q, k, v, o, err);
        goto out;
    }
#endif
    rc = cpu_attention(ws, s, q, k, v, o, err);
out:
    ak_attn_ws_free(tmp);
    return rc;
}

int ak_attention(ak_device dev, const ak_attn_shape *s, const float *q, const float *k,
                 const float *v, ak_attn_out *o, ak_err *err)
{
    return ak_attention_ws(NULL, dev, AK_ATTN_F32, s, q, k, v, o, err);
}

int ak_attention_dtype(ak_device dev, ak_attn_dtype dt, const ak_attn_shape *s,
                       const float *q, const float *k, const float *v, ak_attn_out *o,
                       ak_err *err)
{
    return ak_attention_ws(NULL, dev, dt, s, q, k, v, o, err);
}
