/* attention.cu - the CUDA twin of lib/model/attention.c: attention with per-query
 * entropy and per-key received mass, f32, without the probability matrix.
 *
 * Pass 1 (attn_forward): a block owns BQ queries of one head and streams
 * the keys they can see in tiles of BK through shared memory, keeping for
 * each query the running max m, Z = sum e^(s-m) and A = sum e^(s-m)(s-m);
 * when the max moves from m to m', Z' = e^(m-m') Z and
 * A' = e^(m-m') (A + (m-m') Z).  Output = O/Z, entropy = log Z - A/Z.
 * Pass 2 (attn_mass): a block owns BK keys of one head and walks the
 * queries that can see them, recomputing p = e^(s-m)/Z from pass 1's m and
 * Z, summing columns: no atomics, memory linear in the prompt.  It also
 * writes the probabilities when they are asked for.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>

#include "ak_cuda.h"

#define BQ 32
#define BK 32
#define NT 256

__device__ __forceinline__ float warp_max(float x)
{
    for (int o = 16; o > 0; o >>= 1)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

__device__ __forceinline__ float warp_sum(float x)
{
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

/* Loads rows [r0, r0+n) of a [rows, heads, Dh] tensor's head hd into a
 * shared tile with row stride DP (padded against bank conflicts). */
__device__ __forceinline__ void load_tile(float *dst, const float *src, int r0, int n, int heads,
                                          int hd, int Dh, int DP, int rows_tile)
{
    for (int x = threadIdx.x; x < rows_tile * Dh; x += NT) {
        int r = x / Dh, c = x % Dh;
        dst[r * DP + c] = r < n ? src[((size_t)(r0 + r) * heads + hd) * Dh + c] : 0.f;
    }
}

__global__ void attn_forward(ak_kshape s, const float *q, const float *k, const float *v,
                             float *out, float *ent, float *mrow, float *zrow)
{
    extern __shared__ float sm[];
    const int Dh = s.Dh, DP = Dh + 1;
    float *Qs = sm, *KV = Qs + BQ * DP, *Os = KV + BK * DP, *S = Os + BQ * Dh;
    float *M = S + BQ * (BK + 1), *L = M + BQ, *A = L + BQ, *Sc = A + BQ;
    const int h = blockIdx.y, g = h / (s.H / s.Hkv), q0 = blockIdx.x * BQ;
    const int nq = min(BQ, s.n_q - q0), tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

    load_tile(Qs, q, q0, nq, s.H, h, Dh, DP, BQ);
    for (int x = tid; x < BQ * Dh; x += NT)
        Os[x] = 0.f;
    if (tid < BQ) {
        M[tid] = -INFINITY;
        L[tid] = 0.f;
        A[tid] = 0.f;
    }
    int klo, khi, lo2, hi2;
    ak_kvisible(s, s.q_off + q0, klo, hi2);
    ak_kvisible(s, s.q_off + q0 + nq - 1, lo2, khi);
    __syncthreads();

    for (int k0 = (klo / BK) * BK; k0 <= khi; k0 += BK) {
        const int nk = min(BK, s.n_k - k0);
        load_tile(KV, k, k0, nk, s.Hkv, g, Dh, DP, BK);
        __syncthreads();
        for (int x = tid; x < BQ * BK; x += NT) {
            int r = x / BK, c = x % BK, j = k0 + c, lo, hi;
            float acc = 0.f;
            for (int d = 0; d < Dh; d++)
                acc += Qs[r * DP + d] * KV[c * DP + d];
            ak_kvisible(s, s.q_off + q0 + r, lo, hi);
            S[r * (BK + 1) + c] = (r < nq && c < nk && j >= lo && j <= hi) ? acc * s.scale : -INFINITY;
        }
        __syncthreads();
        for (int r = warp; r < BQ; r += NT / 32) {
            float sv = S[r * (BK + 1) + lane];
            float m_old = M[r], m_new = fmaxf(m_old, warp_max(sv));
            float e = sv == -INFINITY ? 0.f : expf(sv - m_new);
            float ed = e > 0.f ? e * (sv - m_new) : 0.f;
            float se = warp_sum(e), sed = warp_sum(ed);
            S[r * (BK + 1) + lane] = e;
            if (lane == 0) {
                if (m_old == -INFINITY) {
                    Sc[r] = 0.f;
                    L[r] = se;
                    A[r] = sed;
                } else {
                    float f = expf(m_old - m_new);
                    Sc[r] = f;
                    A[r] = f * (A[r] + (m_old - m_new) * L[r]) + sed;
                    L[r] = f * L[r] + se;
                }
                M[r] = m_new;
            }
        }
        __syncthreads();
        load_tile(KV, v, k0, nk, s.Hkv, g, Dh, DP, BK);
        __syncthreads();
        for (int x = tid; x < BQ * Dh; x += NT) {
            int r = x / Dh, c = x % Dh;
            float acc = Os[x] * Sc[r];
            for (int j = 0; j < nk; j++)
                acc += S[r * (BK + 1) + j] * KV[j * DP + c];
            Os[x] = acc;
        }
        __syncthreads();
    }
    for (int x = tid; x < nq * Dh; x += NT) {
        int r = x / Dh, c = x % Dh;
        out[((size_t)(q0 + r) * s.H + h) * Dh + c] = Os[x] / L[r];
    }
    if (tid < nq) {
        size_t i = (size_t)h * s.n_q + q0 + tid;
        mrow[i] = M[tid];
        zrow[i] = L[tid];
        if (ent)
            ent[i] = logf(L[tid]) - A[tid] / L[tid];
    }
}

__global__ void attn_mass(ak_kshape s, const float *q, const float *k, const float *mrow,
                          const float *zrow, float *mass, float *probs)
{
    extern __shared__ float sm[];
    const int Dh = s.Dh, DP = Dh + 1;
    float *Ks = sm, *Qs = Ks + BK * DP, *P = Qs + BQ * DP;
    const int h = blockIdx.y, g = h / (s.H / s.Hkv), k0 = blockIdx.x * BK;
    const int nk = min(BK, s.n_k - k0), tid = threadIdx.x;
    load_tile(Ks, k, k0, nk, s.Hkv, g, Dh, DP, BK);
    /* Queries that may see keys k0..k0+nk-1. */
    int i_lo, i_hi;
    ak_mask_seer_range(s.causal, s.window, s.q_off, s.n_q, k0, k0 + nk - 1, &i_lo, &i_hi);
    double col = 0.0;
    __syncthreads();
    for (int q0 = (i_lo / BQ) * BQ; q0 <= i_hi; q0 += BQ) {
        const int nq = min(BQ, s.n_q - q0);
        load_tile(Qs, q, q0, nq, s.H, h, Dh, DP, BQ);
        __syncthreads();
        for (int x = tid; x < BQ * BK; x += NT) {
            int r = x / BK, c = x % BK, j = k0 + c, lo, hi;
            float p = 0.f;
            if (r < nq && c < nk) {
                ak_kvisible(s, s.q_off + q0 + r, lo, hi);
                if (j >= lo && j <= hi) {
                    float acc = 0.f;
                    for (int d = 0; d < Dh; d++)
                        acc += Qs[r * DP + d] * Ks[c * DP + d];
                    size_t i = (size_t)h * s.n_q + q0 + r;
                    p = expf(acc * s.scale - mrow[i]) / zrow[i];
                }
                if (probs)
                    probs[((size_t)h * s.n_q + q0 + r) * s.n_k + j] = p;
            }
            P[r * (BK + 1) + c] = p;
        }
        __syncthreads();
        if (tid < BK)
            for (int r = 0; r < nq; r++)
                col += P[r * (BK + 1) + tid];
        __syncthreads();
    }
    if (tid < nk)
        mass[(size_t)h * s.n_k + k0 + tid] = (float)col;
}

/* Probabilities for queries whose rows pass 2 never visits (keys no query
 * block sees) stay as cudaMemset left them: zero. */

int ak_cuda_fail(ak_err *err, cudaError_t e, const char *what)
{
    return ak_fail(err, e == cudaErrorMemoryAllocation ? AK_ENOMEM : AK_EINTERNAL,
                   "cuda: %s: %s", what, cudaGetErrorString(e));
}

cudaError_t ak_dbuf_grow(ak_dbuf *b, size_t bytes)
{
    if (bytes <= b->cap)
        return cudaSuccess;
    cudaFree(b->p);
    b->p = 0;
    b->cap = 0;
    cudaError_t e = cudaMalloc(&b->p, bytes ? bytes : 1);
    if (e == cudaSuccess)
        b->cap = bytes;
    return e;
}

extern "C" void ak_cuda_ws_free(ak_cuda_ws *ws)
{
    if (!ws)
        return;
    ak_dbuf *all[] = {&ws->q, &ws->k, &ws->v, &ws->stage, &ws->out, &ws->m, &ws->z,
                      &ws->ent, &ws->mass, &ws->probs};
    for (ak_dbuf *b : all)
        cudaFree(b->p);
    free(ws);
}

int ak_cuda_ws_outputs(ak_cuda_ws **wsp, const ak_attn_shape *s, const ak_attn_out *o,
                       ak_err *err)
{
    if (!*wsp && !(*wsp = (ak_cuda_ws *)calloc(1, sizeof **wsp)))
        return ak_fail(err, AK_ENOMEM, "cuda attention: out of memory");
    ak_cuda_ws *ws = *wsp;
    size_t nq = (size_t)s->n_q * s->n_heads * s->head_dim, nrow = (size_t)s->n_heads * s->n_q;
    size_t nmass = (size_t)s->n_heads * s->n_k;
    size_t nprob = o->probs ? (size_t)s->n_heads * s->n_q * s->n_k : 0;
    cudaError_t e;
#define TRY(call, what) do { if ((e = (call)) != cudaSuccess) return ak_cuda_fail(err, e, what); } while (0)
    TRY(ak_dbuf_grow(&ws->out, nq * 4), "alloc out");
    TRY(ak_dbuf_grow(&ws->m, nrow * 4), "alloc row max");
    TRY(ak_dbuf_grow(&ws->z, nrow * 4), "alloc row sum");
    if (o->entropy)
        TRY(ak_dbuf_grow(&ws->ent, nrow * 4), "alloc entropy");
    if (o->mass || o->probs)
        TRY(ak_dbuf_grow(&ws->mass, nmass * 4), "alloc mass");
    if (nprob) {
        TRY(ak_dbuf_grow(&ws->probs, nprob * 4), "alloc probs");
        TRY(cudaMemset(ws->probs.p, 0, nprob * 4), "clear probs");
    }
#undef TRY
    return 0;
}

int ak_cuda_copy_back(const ak_cuda_ws *ws, const ak_attn_shape *s, ak_attn_out *o, ak_err *err)
{
    size_t nq = (size_t)s->n_q * s->n_heads * s->head_dim, nrow = (size_t)s->n_heads * s->n_q;
    size_t nmass = (size_t)s->n_heads * s->n_k;
    size_t nprob = o->probs ? (size_t)s->n_heads * s->n_q * s->n_k : 0;
    cudaError_t e;
#define TRY(call, what) do { if ((e = (call)) != cudaSuccess) return ak_cuda_fail(err, e, what); } while (0)
    TRY(cudaMemcpy(o->out, ws->out.p, nq * 4, cudaMemcpyDeviceToHost), "copy out");
    if (o->entropy)
        TRY(cudaMemcpy(o->entropy, ws->ent.p, nrow * 4, cudaMemcpyDeviceToHost), "copy entropy");
    if (o->mass)
        TRY(cudaMemcpy(o->mass, ws->mass.p, nmass * 4, cudaMemcpyDeviceToHost), "copy mass");
    if (nprob)
        TRY(cudaMemcpy(o->probs, ws->probs.p, nprob * 4, cudaMemcpyDeviceToHost), "copy probs");
#undef TRY
    return 0;
}

/* Both passes on device buffers: the forward (out, entropy, the rows'
 * max and sum) and, when dmass, the mass (and probabilities into dp). */
static int two_passes(ak_cuda_ws *ws, const ak_kshape &s, const float *dq, const float *dk,
                      const float *dv, float *dout, float *dent, float *dmass, float *dp,
                      ak_err *err)
{
    size_t nrow = (size_t)s.H * s.n_q;
    cudaError_t e;
#define TRY(call, what) do { if ((e = (call)) != cudaSuccess) return ak_cuda_fail(err, e, what); } while (0)
    TRY(ak_dbuf_grow(&ws->m, nrow * 4), "alloc row max");
    TRY(ak_dbuf_grow(&ws->z, nrow * 4), "alloc row sum");
    int DP = s.Dh + 1;
    size_t sh1 = sizeof(float) * ((size_t)BQ * DP + BK * DP + BQ * s.Dh + BQ * (BK + 1) + 4 * BQ);
    size_t sh2 = sizeof(float) * ((size_t)BK * DP + BQ * DP + BQ * (BK + 1));
    TRY(cudaFuncSetAttribute(attn_forward, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh1),
        "shared memory (forward)");
    TRY(cudaFuncSetAttribute(attn_mass, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh2),
        "shared memory (mass)");
    dim3 g1((s.n_q + BQ - 1) / BQ, s.H), g2((s.n_k + BK - 1) / BK, s.H);
    float *dm = (float *)ws->m.p, *dz = (float *)ws->z.p;
    attn_forward<<<g1, NT, sh1>>>(s, dq, dk, dv, dout, dent, dm, dz);
    TRY(cudaGetLastError(), "launch forward");
    if (dmass) {
        attn_mass<<<g2, NT, sh2>>>(s, dq, dk, dm, dz, dmass, dp);
        TRY(cudaGetLastError(), "launch mass");
    }
#undef TRY
    return 0;
}

extern "C" int ak_cuda_attention(ak_cuda_ws **wsp, const ak_attn_shape *as, const float *q,
                                 const float *k, const float *v, ak_attn_out *o, ak_err *err)
{
    ak_kshape s = ak_kshape_of(as);
    if (s.n_q == 0)
        return 0;
    if (s.Dh > 256)
        return ak_fail(err, AK_ECONFIG, "cuda attention: head size %d (at most 256)", s.Dh);
    int rc = ak_cuda_ws_outputs(wsp, as, o, err);
    if (rc)
        return rc;
    ak_cuda_ws *ws = *wsp;
    size_t nq = (size_t)s.n_q * s.H * s.Dh, nk = (size_t)s.n_k * s.Hkv * s.Dh;
    cudaError_t e;
#define TRY(call, what) do { if ((e = (call)) != cudaSuccess) return ak_cuda_fail(err, e, what); } while (0)
    TRY(ak_dbuf_grow(&ws->q, nq * 4), "alloc q");
    TRY(ak_dbuf_grow(&ws->k, nk * 4), "alloc k");
    TRY(ak_dbuf_grow(&ws->v, nk * 4), "alloc v");
    float *dq = (float *)ws->q.p, *dk = (float *)ws->k.p, *dv = (float *)ws->v.p;
    float *dent = o->entropy ? (float *)ws->ent.p : 0;
    float *dmass = o->mass || o->probs ? (float *)ws->mass.p : 0;
    float *dp = o->probs ? (float *)ws->probs.p : 0;
    TRY(cudaMemcpy(dq, q, nq * 4, cudaMemcpyHostToDevice), "copy q");
    TRY(cudaMemcpy(dk, k, nk * 4, cudaMemcpyHostToDevice), "copy k");
    TRY(cudaMemcpy(dv, v, nk * 4, cudaMemcpyHostToDevice), "copy v");
#undef TRY
    if ((rc = two_passes(ws, s, dq, dk, dv, (float *)ws->out.p, dent, dmass, dp, err)))
        return rc;
    return ak_cuda_copy_back(ws, as, o, err);
}

/* The same two passes on q, k, v already on the device, into out, ent and
 * mass on the device (the device-resident forward pass). */
extern "C" int ak_cuda_attention_f32_dev(ak_cuda_ws **wsp, const ak_attn_shape *as,
                                         const float *dq, const float *dk, const float *dv,
                                         float *dout, float *dent, float *dmass, ak_err *err)
{
    ak_kshape s = ak_kshape_of(as);
    if (s.n_q == 0)
        return 0;
    if (s.Dh > 256)
        return ak_fail(err, AK_ECONFIG, "cuda attention: head size %d (at most 256)", s.Dh);
    if (!*wsp && !(*wsp = (ak_cuda_ws *)calloc(1, sizeof **wsp)))
        return ak_fail(err, AK_ENOMEM, "cuda attention: out of memory");
    ak_cuda_ws *ws = *wsp;
    return two_passes(ws, s, dq, dk, dv, dout, dent, dmass, 0, err);
}

/* For bench/: times both passes on device-resident random inputs with CUDA
 * events (median of iters runs after a warm-up), no host transfers. */
int ak_cuda_attention_time(const ak_attn_shape *as, int iters, double *ms_forward,
                                      double *ms_both, ak_err *err)
{
    ak_kshape s = ak_kshape_of(as);
    size_t nq = (size_t)s.n_q * s.H * s.Dh, nk = (size_t)s.n_k * s.Hkv * s.Dh;
    size_t nrow = (size_t)s.H * s.n_q, nmass = (size_t)s.H * s.n_k;
    float *buf = 0, *h = (float *)malloc(sizeof(float) * (nq > nk ? nq : nk));
    if (!h)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    uint32_t x = 12345;
    for (size_t i = 0; i < (nq > nk ? nq : nk); i++) {
        x = x * 1664525u + 1013904223u;
        h[i] = (float)(x >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    cudaError_t e = cudaMalloc(&buf, sizeof(float) * (2 * nq + 2 * nk + 3 * nrow + nmass));
    if (e != cudaSuccess) {
        free(h);
        return ak_cuda_fail(err, e, "alloc");
    }
    float *dq = buf, *dk = dq + nq, *dv = dk + nk, *dout = dv + nk, *dent = dout + nq;
    float *dm = dent + nrow, *dz = dm + nrow, *dmass = dz + nrow;
    cudaMemcpy(dq, h, nq * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dk, h, nk * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dv, h + 1, (nk - 1) * 4, cudaMemcpyHostToDevice);
    free(h);
    int DP = s.Dh + 1;
    size_t sh1 = sizeof(float) * ((size_t)BQ * DP + BK * DP + BQ * s.Dh + BQ * (BK + 1) + 4 * BQ);
    size_t sh2 = sizeof(float) * ((size_t)BK * DP + BQ * DP + BQ * (BK + 1));
    cudaFuncSetAttribute(attn_forward, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh1);
    cudaFuncSetAttribute(attn_mass, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh2);
    dim3 g1((s.n_q + BQ - 1) / BQ, s.H), g2((s.n_k + BK - 1) / BK, s.H);
    cudaEvent_t a, b, c;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    cudaEventCreate(&c);
    float *f = (float *)malloc(sizeof(float) * iters), *t = (float *)malloc(sizeof(float) * iters);
    for (int it = -1; it < iters; it++) {
        cudaEventRecord(a);
        attn_forward<<<g1, NT, sh1>>>(s, dq, dk, dv, dout, dent, dm, dz);
        cudaEventRecord(b);
        attn_mass<<<g2, NT, sh2>>>(s, dq, dk, dm, dz, dmass, 0);
        cudaEventRecord(c);
        cudaEventSynchronize(c);
        if (it >= 0) {
            cudaEventElapsedTime(&f[it], a, b);
            cudaEventElapsedTime(&t[it], a, c);
        }
    }
    e = cudaGetLastError();
    /* medians */
    for (int i = 0; i < iters; i++)
        for (int j = i + 1; j < iters; j++) {
            if (f[j] < f[i]) { float z = f[i]; f[i] = f[j]; f[j] = z; }
            if (t[j] < t[i]) { float z = t[i]; t[i] = t[j]; t[j] = z; }
        }
    *ms_forward = f[iters / 2];
    *ms_both = t[iters / 2];
    free(f);
    free(t);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaEventDestroy(c);
    cudaFree(buf);
    return e == cudaSuccess ? 0 : ak_cuda_fail(err, e, "kernels");
}
