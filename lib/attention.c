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
 * same memory.  Sums over keys are in double.
 */
#include "attention.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifndef AK_NO_BLAS
#include <cblas.h>
#endif

#ifdef AK_HAVE_CUDA
int ak_cuda_attention(const ak_attn_shape *s, const float *q, const float *k, const float *v,
                      ak_attn_out *o, ak_err *err);
int ak_cuda_attention_tc(int dt, const ak_attn_shape *s, const float *q, const float *k,
                         const float *v, ak_attn_out *o, ak_err *err);
#endif

#ifndef AK_NO_BLAS
enum { QBLOCK = 64 };
#else
enum { QBLOCK = 16 };
#endif

typedef struct {
    const ak_attn_shape *s;
    const float *q, *k, *v;
    float *kt;                /* keys transposed: [n_kv_heads][head_dim][n_k] */
    ak_attn_out *o;
    int ntasks;
    int next;                 /* next task to take, under lock */
    pthread_mutex_t lock;
    double *mass_parts;       /* [nthreads][n_heads][n_k] */
    int failed;
} job_t;

typedef struct {
    job_t *job;
    int id;
} worker_t;

/* Keys [lo, hi] that query position pos can see; empty when lo > hi. */
static void visible(const ak_attn_shape *s, int pos, int *lo, int *hi)
{
    *hi = s->causal ? (pos < s->n_k - 1 ? pos : s->n_k - 1) : s->n_k - 1;
    *lo = s->window > 0 && pos - s->window + 1 > 0 ? pos - s->window + 1 : 0;
}

#ifdef AK_NO_BLAS
static void run_task(job_t *job, int task, float *rows, double *mass)
{
    const ak_attn_shape *s = job->s;
    int H = s->n_heads, Hkv = s->n_kv_heads, Dh = s->head_dim, n_k = s->n_k;
    int nqb = (s->n_q + QBLOCK - 1) / QBLOCK;
    int h = task / nqb, qb = task % nqb, g = h / (H / Hkv);
    int i0 = qb * QBLOCK, i_end = i0 + QBLOCK < s->n_q ? i0 + QBLOCK : s->n_q;
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
        float m = -INFINITY;
        for (int j = a; j <= b; j++)
            m = row[j] > m ? row[j] : m;
        double z = 0, zs = 0;
        for (int j = a; j <= b; j++) {
            float d = row[j] - m;
            float e = expf(d);
            row[j] = e;
            z += e;
            zs += (double)e * d;
        }
        float *out = o->out + ((size_t)i * H + h) * Dh;
        memset(out, 0, sizeof(float) * (size_t)Dh);
        double inv = 1.0 / z;
        float finv = (float)inv;
        for (int j = a; j <= b; j++) {
            float p = row[j] * finv;
            const float *vj = job->v + ((size_t)j * Hkv + g) * Dh;
            for (int c = 0; c < Dh; c++)
                out[c] += p * vj[c];
            row[j] = p;
        }
        if (mass) {
            double *mh = mass + (size_t)h * n_k;
            for (int j = a; j <= b; j++)
                mh[j] += row[j];
        }
        if (o->entropy)
            o->entropy[(size_t)h * s->n_q + i] = (float)(log(z) - zs * inv);
        if (o->probs) {
            float *pr = o->probs + ((size_t)h * s->n_q + i) * n_k;
            memset(pr, 0, sizeof(float) * (size_t)n_k);
            if (a <= b)
                memcpy(pr + a, row + a, sizeof(float) * (size_t)(b - a + 1));
        }
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
    int nqb = (s->n_q + QBLOCK - 1) / QBLOCK;
    int h = task / nqb, qb = task % nqb, g = h / (H / Hkv);
    int i0 = qb * QBLOCK, i_end = i0 + QBLOCK < s->n_q ? i0 + QBLOCK : s->n_q, nb = i_end - i0;
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
        float m = -INFINITY;
        for (int j = ra; j <= rb; j++)
            m = row[j] > m ? row[j] : m;
        double z = 0, zs = 0;
        for (int j = 0; j < ra; j++)
            row[j] = 0.0f;
        for (int j = rb + 1; j < w; j++)
            row[j] = 0.0f;
        for (int j = ra; j <= rb; j++) {
            float d = row[j] - m;
            float e = expf(d);
            row[j] = e;
            z += e;
            zs += (double)e * d;
        }
        double inv = 1.0 / z;
        float finv = (float)inv;
        for (int j = ra; j <= rb; j++)
            row[j] *= finv;
        if (mass) {
            double *mh = mass + (size_t)h * n_k + a;
            for (int j = ra; j <= rb; j++)
                mh[j] += row[j];
        }
        if (o->entropy)
            o->entropy[(size_t)h * s->n_q + i0 + i] = (float)(log(z) - zs * inv);
        if (o->probs) {
            float *pr = o->probs + ((size_t)h * s->n_q + i0 + i) * n_k;
            memset(pr, 0, sizeof(float) * (size_t)n_k);
            memcpy(pr + a, row, sizeof(float) * (size_t)w);
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, Dh, w, 1.0f, rows, w,
                job->v + ((size_t)a * Hkv + g) * Dh, Hkv * Dh, 0.0f,
                o->out + ((size_t)i0 * H + h) * Dh, H * Dh);
}
#endif

static void *worker(void *arg)
{
    worker_t *w = arg;
    job_t *job = w->job;
    float *row = malloc(sizeof(float) * QBLOCK * (size_t)(job->s->n_k > 0 ? job->s->n_k : 1));
    double *mass = job->mass_parts
                       ? job->mass_parts + (size_t)w->id * job->s->n_heads * job->s->n_k
                       : NULL;
    if (!row) {
        pthread_mutex_lock(&job->lock);
        job->failed = 1;
        pthread_mutex_unlock(&job->lock);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&job->lock);
        int t = job->failed ? job->ntasks : job->next++;
        pthread_mutex_unlock(&job->lock);
        if (t >= job->ntasks)
            break;
#ifndef AK_NO_BLAS
        run_task_blas(job, t, row, mass);
#else
        run_task(job, t, row, mass);
#endif
    }
    free(row);
    return NULL;
}

static int thread_count(void)
{
    const char *env = getenv("ATTNKIT_THREADS");
    long n = env && *env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

static int check_shape(const ak_attn_shape *s, ak_err *err)
{
    if (s->n_q < 0 || s->n_k < 0 || s->q_offset < 0 || s->n_heads < 1 || s->n_kv_heads < 1 ||
        s->head_dim < 1 || s->window < 0 || s->n_heads % s->n_kv_heads != 0)
        return ak_fail(err, AK_EUSAGE, "attention: bad shape (%d queries, %d keys, %d heads, "
                       "%d kv heads, head size %d, window %d)", s->n_q, s->n_k, s->n_heads,
                       s->n_kv_heads, s->head_dim, s->window);
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

static int cpu_attention(const ak_attn_shape *s, const float *q, const float *k,
                         const float *v, ak_attn_out *o, ak_err *err)
{
    int nthreads = thread_count();
    int nqb = (s->n_q + QBLOCK - 1) / QBLOCK;
    job_t job = {.s = s, .q = q, .k = k, .v = v, .o = o, .ntasks = nqb * s->n_heads};
    if (job.ntasks < nthreads)
        nthreads = job.ntasks > 0 ? job.ntasks : 1;
    size_t per = (size_t)s->n_heads * (size_t)s->n_k;
    if (o->mass) {
        job.mass_parts = calloc((size_t)nthreads * per + 1, sizeof(double));
        if (!job.mass_parts)
            return ak_fail(err, AK_ENOMEM, "attention: cannot allocate mass buffers");
    }
    job.kt = malloc(sizeof(float) * ((size_t)s->n_kv_heads * s->head_dim * s->n_k + 1));
    if (!job.kt) {
        free(job.mass_parts);
        return ak_fail(err, AK_ENOMEM, "attention: cannot allocate %d keys", s->n_k);
    }
    for (int j = 0; j < s->n_k; j++)
        for (int g = 0; g < s->n_kv_heads; g++)
            for (int c = 0; c < s->head_dim; c++)
                job.kt[((size_t)g * s->head_dim + c) * s->n_k + j] =
                    k[((size_t)j * s->n_kv_heads + g) * s->head_dim + c];
    pthread_mutex_init(&job.lock, NULL);
#ifndef AK_NO_BLAS
    /* our threads split the work; OpenBLAS's own would oversubscribe */
    int blas_threads = openblas_get_num_threads();
    if (nthreads > 1)
        openblas_set_num_threads(1);
#endif
    worker_t *ws = calloc((size_t)nthreads, sizeof *ws);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    int started = 0;
    if (ws && th)
        for (int t = 0; t < nthreads; t++) {
            ws[t] = (worker_t){&job, t};
            if (t > 0 && pthread_create(&th[t], NULL, worker, &ws[t]) != 0)
                break;
            started = t + 1;
        }
    if (started > 0) {
        worker(&ws[0]); /* the calling thread works too */
        for (int t = 1; t < started; t++)
            pthread_join(th[t], NULL);
    }
#ifndef AK_NO_BLAS
    if (nthreads > 1)
        openblas_set_num_threads(blas_threads);
#endif
    int rc = 0;
    if (started == 0 || job.failed)
        rc = ak_fail(err, AK_ENOMEM, "attention: out of memory");
    else if (o->mass)
        for (size_t x = 0; x < per; x++) {
            double sum = 0;
            for (int t = 0; t < started; t++)
                sum += job.mass_parts[(size_t)t * per + x];
            o->mass[x] = (float)sum;
        }
    pthread_mutex_destroy(&job.lock);
    free(job.mass_parts);
    free(job.kt);
    free(ws);
    free(th);
    return rc;
}

int ak_attention(ak_device dev, const ak_attn_shape *s, const float *q, const float *k,
                 const float *v, ak_attn_out *o, ak_err *err)
{
    int rc = check_shape(s, err);
    if (rc)
        return rc;
    if (dev == AK_DEV_CUDA) {
#ifdef AK_HAVE_CUDA
        return ak_cuda_attention(s, q, k, v, o, err);
#else
        return ak_fail(err, AK_ECONFIG, "attention: this build has no CUDA");
#endif
    }
    return cpu_attention(s, q, k, v, o, err);
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

int ak_attention_dtype(ak_device dev, ak_attn_dtype dt, const ak_attn_shape *s,
                       const float *q, const float *k, const float *v, ak_attn_out *o,
                       ak_err *err)
{
    if (dt == AK_ATTN_F32)
        return ak_attention(dev, s, q, k, v, o, err);
    if (dt != AK_ATTN_BF16 && dt != AK_ATTN_F16)
        return ak_fail(err, AK_EUSAGE, "attention: unknown precision %d", (int)dt);
    int rc = check_shape(s, err);
    if (rc)
        return rc;
    size_t nq = (size_t)s->n_q * s->n_heads * s->head_dim;
    size_t nk = (size_t)s->n_k * s->n_kv_heads * s->head_dim;
    float *buf = malloc(sizeof(float) * (nq + 2 * nk + 1));
    if (!buf)
        return ak_fail(err, AK_ENOMEM, "attention: cannot allocate rounded inputs");
    float *rq = buf, *rk = rq + nq, *rv = rk + nk;
    memcpy(rq, q, nq * sizeof(float));
    memcpy(rk, k, nk * sizeof(float));
    memcpy(rv, v, nk * sizeof(float));
    ak_round_dtype(buf, nq + 2 * nk, dt);
    if (dev == AK_DEV_CUDA) {
#ifdef AK_HAVE_CUDA
        rc = ak_cuda_attention_tc((int)dt, s, rq, rk, rv, o, err);
#else
        rc = ak_fail(err, AK_ECONFIG, "attention: this build has no CUDA");
#endif
    } else
        rc = cpu_attention(s, rq, rk, rv, o, err);
    free(buf);
    return rc;
}
