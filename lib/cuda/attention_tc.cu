/* attention_tc.cu - attention with entropy and received mass on the tensor
 * cores: q, k, v in bf16 or f16 (T), products accumulated in f32 (WMMA
 * 16x16x16).  Same two passes as attention.cu (see there for the online
 * softmax with the entropy term A):
 *   tc_forward: a block of 4 warps owns 64 queries of one head; each warp
 *     owns 16 of them and keeps their running max, sum and A in a pair of
 *     lanes, their output rows in shared memory (f32).  K and V stream
 *     through shared memory in tiles of 64 keys.  The probabilities that
 *     multiply V are split into a T part and a T remainder (p = hi + lo),
 *     two products, so out keeps about 16 bits of p instead of 8
 *     ("precise"; off in the benchmark's fast variant).
 *   tc_mass: a block owns 64 keys of one head and walks the query tiles
 *     that see them, recomputing the scores with the same fragments and
 *     order as tc_forward (so the same bits) and summing p = e^(s-m)/Z per
 *     key in registers: no atomics.
 * Entropy, mass and probabilities are computed from f32 scores; only out
 * passes through T on the way (p * v).
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "attention.h"
}

using namespace nvcuda;

#define TQ 64
#define TK 64
#define TNT 128

struct tshape {
    int n_q, n_k, q_off, H, Hkv, Dh, causal, window;
    float scale;
};

__device__ __forceinline__ void tvisible(const tshape &s, int pos, int &lo, int &hi)
{
    hi = s.causal ? min(pos, s.n_k - 1) : s.n_k - 1;
    lo = (s.window > 0 && pos - s.window + 1 > 0) ? pos - s.window + 1 : 0;
}

template <typename T> __device__ __forceinline__ T to_t(float x);
template <> __device__ __forceinline__ __nv_bfloat16 to_t<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half to_t<__half>(float x) { return __float2half_rn(x); }
template <typename T> __device__ __forceinline__ float from_t(T x);
template <> __device__ __forceinline__ float from_t<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float from_t<__half>(__half x) { return __half2float(x); }

/* rows [r0, r0+TQ) of head hd of a [rows, heads, Dh] T tensor into a tile
 * of row stride ld (in T), zeros past n rows; 16-byte copies. */
template <typename T>
__device__ __forceinline__ void tc_load(T *dst, const T *src, int r0, int n, int heads, int hd,
                                        int Dh, int ld)
{
    const int per = Dh / 8; /* uint4 per row */
    for (int x = threadIdx.x; x < TQ * per; x += TNT) {
        int r = x / per, c = (x % per) * 8;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (r < n)
            val = *(const uint4 *)(src + ((size_t)(r0 + r) * heads + hd) * Dh + c);
        *(uint4 *)(dst + r * ld + c) = val;
    }
}

/* S[16 x 64] = Q[16 rows of this warp] K^T for the tile, into Ss (f32). */
template <typename T>
__device__ __forceinline__ void tc_scores(const T *Qs, const T *Ks, float *Ss, int Dh, int ld, int sld)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[TK / 16];
#pragma unroll
    for (int n = 0; n < TK / 16; n++)
        wmma::fill_fragment(acc[n], 0.0f);
    for (int kk = 0; kk < Dh; kk += 16) {
        wmma::load_matrix_sync(a, Qs + kk, ld);
#pragma unroll
        for (int n = 0; n < TK / 16; n++) {
            wmma::load_matrix_sync(b, Ks + n * 16 * ld + kk, ld);
            wmma::mma_sync(acc[n], a, b, acc[n]);
        }
    }
#pragma unroll
    for (int n = 0; n < TK / 16; n++)
        wmma::store_matrix_sync(Ss + n * 16, acc[n], sld, wmma::mem_row_major);
}

template <typename T>
__global__ void __launch_bounds__(TNT) tc_forward(tshape s, const T *q, const T *k, const T *v,
                                                  float *out, float *ent, float *mrow, float *zrow,
                                                  int precise)
{
    extern __shared__ __align__(16) unsigned char smraw[];
    const int Dh = s.Dh, ld = Dh + 8, sld = TK + 4, pld = TK + 8, old = Dh + 4;
    T *Qs = (T *)smraw, *Ks = Qs + TQ * ld, *Vs = Ks + TK * ld;
    T *Ph = Vs + TK * ld, *Pl = Ph + TQ * pld;
    float *Ss = (float *)(Pl + TQ * pld), *Os = Ss + TQ * sld, *Zs = Os + TQ * old;
    const int h = blockIdx.y, g = h / (s.H / s.Hkv);
    /* heavy (late, causal) query blocks first */
    const int q0 = (gridDim.x - 1 - blockIdx.x) * TQ;
    const int nq = min(TQ, s.n_q - q0), warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int r = lane >> 1, half = lane & 1, wr = warp * 16;

    tc_load(Qs, q, q0, nq, s.H, h, Dh, ld);
    for (int x = threadIdx.x; x < TQ * old; x += TNT)
        Os[x] = 0.f;
    int klo, khi, lo2, hi2;
    tvisible(s, s.q_off + q0, klo, hi2);
    tvisible(s, s.q_off + q0 + nq - 1, lo2, khi);
    /* this lane's row */
    const int i = q0 + wr + r;
    int lo = 1, hi = 0;
    if (i < s.n_q)
        tvisible(s, s.q_off + i, lo, hi);
    float m = -INFINITY, z = 0.f, A = 0.f;

    for (int k0 = (klo / TK) * TK; k0 <= khi; k0 += TK) {
        const int nk = min(TK, s.n_k - k0);
        __syncthreads();
        tc_load(Ks, k, k0, nk, s.Hkv, g, Dh, ld);
        tc_load(Vs, v, k0, nk, s.Hkv, g, Dh, ld);
        __syncthreads();
        tc_scores(Qs + wr * ld, Ks, Ss + wr * sld, Dh, ld, sld);
        __syncwarp();
        float *srow = Ss + (wr + r) * sld + half * 32;
        float mx = -INFINITY;
        for (int c = 0; c < 32; c++) {
            int j = k0 + half * 32 + c;
            float sv = srow[c] * s.scale;
            sv = (j >= lo && j <= hi) ? sv : -INFINITY;
            srow[c] = sv;
            mx = fmaxf(mx, sv);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        const float mn = fmaxf(m, mx);
        float se = 0.f, sed = 0.f, f = 1.f;
        T *ph = Ph + (wr + r) * pld + half * 32, *pl = Pl + (wr + r) * pld + half * 32;
        for (int c = 0; c < 32; c++) {
            float sv = srow[c], e = 0.f;
            if (sv != -INFINITY) {
                e = __expf(sv - mn);
                se += e;
                sed += e * (sv - mn);
            }
            T eh = to_t<T>(e);
            ph[c] = eh;
            pl[c] = to_t<T>(e - from_t<T>(eh));
        }
        se += __shfl_xor_sync(0xffffffffu, se, 1);
        sed += __shfl_xor_sync(0xffffffffu, sed, 1);
        if (mn != -INFINITY) {
            if (m == -INFINITY) {
                z = se;
                A = sed;
                f = 0.f;
            } else {
                f = __expf(m - mn);
                A = f * (A + (m - mn) * z) + sed;
                z = f * z + se;
            }
            m = mn;
        }
        if (f != 1.f) {
            float *orow = Os + (wr + r) * old + half * (Dh / 2);
            for (int c = 0; c < Dh / 2; c++)
                orow[c] *= f;
        }
        __syncwarp();
        {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            const int kmax = (nk + 15) / 16 * 16;
            for (int c0 = 0; c0 < Dh; c0 += 16) {
                float *o = Os + wr * old + c0;
                wmma::load_matrix_sync(acc, o, old, wmma::mem_row_major);
                for (int kk = 0; kk < kmax; kk += 16) {
                    wmma::load_matrix_sync(b, Vs + kk * ld + c0, ld);
                    wmma::load_matrix_sync(a, Ph + wr * pld + kk, pld);
                    wmma::mma_sync(acc, a, b, acc);
                    if (precise) {
                        wmma::load_matrix_sync(a, Pl + wr * pld + kk, pld);
                        wmma::mma_sync(acc, a, b, acc);
                    }
                }
                wmma::store_matrix_sync(o, acc, old, wmma::mem_row_major);
            }
        }
        __syncwarp();
    }
    if (half == 0)
        Zs[wr + r] = z;
    __syncwarp();
    for (int x = lane; x < 16 * Dh; x += 32) {
        int rr = x / Dh, c = x % Dh, ii = q0 + wr + rr;
        if (ii < s.n_q)
            out[((size_t)ii * s.H + h) * Dh + c] = Os[(wr + rr) * old + c] / Zs[wr + rr];
    }
    if (half == 0 && i < s.n_q) {
        size_t x = (size_t)h * s.n_q + i;
        mrow[x] = m;
        zrow[x] = z;
        if (ent)
            ent[x] = logf(z) - A / z;
    }
}

template <typename T>
__global__ void __launch_bounds__(TNT) tc_mass(tshape s, const T *q, const T *k, const float *mrow,
                                               const float *zrow, float *mass, float *probs)
{
    extern __shared__ __align__(16) unsigned char smraw[];
    const int Dh = s.Dh, ld = Dh + 8, sld = TK + 4;
    T *Ks = (T *)smraw, *Qs = Ks + TK * ld;
    float *Ss = (float *)(Qs + TQ * ld), *Cs = Ss + TQ * sld;
    const int h = blockIdx.y, g = h / (s.H / s.Hkv), k0 = blockIdx.x * TK;
    const int nk = min(TK, s.n_k - k0), warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wr = warp * 16;
    tc_load(Ks, k, k0, nk, s.Hkv, g, Dh, ld);
    int i_lo = s.causal ? max(0, k0 - s.q_off) : 0, i_hi = s.n_q - 1;
    if (s.window > 0)
        i_hi = min(i_hi, k0 + nk - 1 + s.window - 1 - s.q_off);
    float c0 = 0.f, c1 = 0.f;
    const int j0 = k0 + lane, j1 = k0 + lane + 32;
    for (int q0 = (i_lo / TQ) * TQ; q0 <= i_hi; q0 += TQ) {
        const int nq = min(TQ, s.n_q - q0);
        __syncthreads();
        tc_load(Qs, q, q0, nq, s.H, h, Dh, ld);
        __syncthreads();
        if (wr >= nq)
            continue;
        tc_scores(Qs + wr * ld, Ks, Ss + wr * sld, Dh, ld, sld);
        __syncwarp();
        for (int rr = 0; rr < 16 && wr + rr < nq; rr++) {
            const int i = q0 + wr + rr;
            int lo, hi;
            tvisible(s, s.q_off + i, lo, hi);
            const size_t x = (size_t)h * s.n_q + i;
            const float mi = mrow[x], zi = zrow[x];
            const float *srow = Ss + (wr + rr) * sld;
            float p0 = 0.f, p1 = 0.f;
            if (j0 >= lo && j0 <= hi && lane < nk)
                p0 = __expf(srow[lane] * s.scale - mi) / zi;
            if (j1 >= lo && j1 <= hi && lane + 32 < nk)
                p1 = __expf(srow[lane + 32] * s.scale - mi) / zi;
            c0 += p0;
            c1 += p1;
            if (probs) {
                float *pr = probs + x * s.n_k;
                if (lane < nk)
                    pr[j0] = p0;
                if (lane + 32 < nk)
                    pr[j1] = p1;
            }
        }
        __syncwarp();
    }
    __syncthreads();
    Cs[warp * TK + lane] = c0;
    Cs[warp * TK + lane + 32] = c1;
    __syncthreads();
    if (threadIdx.x < nk) {
        float t = 0.f;
        for (int w = 0; w < TNT / 32; w++)
            t += Cs[w * TK + threadIdx.x];
        mass[(size_t)h * s.n_k + k0 + threadIdx.x] = t;
    }
}

template <typename T> __global__ void tc_convert(const float *src, T *dst, size_t n)
{
    for (size_t x = blockIdx.x * (size_t)blockDim.x + threadIdx.x; x < n; x += (size_t)gridDim.x * blockDim.x)
        dst[x] = to_t<T>(src[x]);
}

static size_t fwd_smem(int Dh)
{
    int ld = Dh + 8;
    return 2 * ((size_t)TQ * ld + 2 * TK * ld + 2 * TQ * (TK + 8)) +
           4 * ((size_t)TQ * (TK + 4) + TQ * (Dh + 4) + TQ);
}

static size_t mass_smem(int Dh)
{
    int ld = Dh + 8;
    return 2 * ((size_t)TK * ld + TQ * ld) + 4 * ((size_t)TQ * (TK + 4) + 4 * TK);
}

/* Both passes on device buffers already in T.  Returns a cudaError_t. */
template <typename T>
static cudaError_t tc_launch(const tshape &s, const T *q, const T *k, const T *v, float *out,
                             float *ent, float *m, float *z, float *mass, float *probs,
                             int precise, cudaStream_t st)
{
    size_t sh1 = fwd_smem(s.Dh), sh2 = mass_smem(s.Dh);
    cudaError_t e = cudaFuncSetAttribute(tc_forward<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh1);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(tc_mass<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh2);
    if (e != cudaSuccess)
        return e;
    dim3 g1((s.n_q + TQ - 1) / TQ, s.H), g2((s.n_k + TK - 1) / TK, s.H);
    tc_forward<T><<<g1, TNT, sh1, st>>>(s, q, k, v, out, ent, m, z, precise);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    if (mass) {
        tc_mass<T><<<g2, TNT, sh2, st>>>(s, q, k, m, z, mass, probs);
        e = cudaGetLastError();
    }
    return e;
}

static int tc_fail(ak_err *err, cudaError_t e, const char *what)
{
    return ak_fail(err, e == cudaErrorMemoryAllocation ? AK_ENOMEM : AK_EINTERNAL,
                   "cuda: %s: %s", what, cudaGetErrorString(e));
}

extern "C" int ak_cuda_attention(const ak_attn_shape *as, const float *q, const float *k,
                                 const float *v, ak_attn_out *o, ak_err *err);

/* 1 when the tensor-core kernels take this head size. */
extern "C" int ak_cuda_tc_supported(int head_dim)
{
    return head_dim > 0 && head_dim % 16 == 0 && head_dim <= 256;
}

/* q, k, v hold values already representable in dt (lib/attention.c rounds
 * them); converted on the device, exactly. */
extern "C" int ak_cuda_attention_tc(int dt, const ak_attn_shape *as, const float *q,
                                    const float *k, const float *v, ak_attn_out *o, ak_err *err)
{
    tshape s = {as->n_q, as->n_k, as->q_offset, as->n_heads, as->n_kv_heads, as->head_dim,
                as->causal, as->window, as->scale};
    if (s.n_q == 0)
        return 0;
    if (!ak_cuda_tc_supported(s.Dh))
        return ak_cuda_attention(as, q, k, v, o, err);
    size_t nq = (size_t)s.n_q * s.H * s.Dh, nk = (size_t)s.n_k * s.Hkv * s.Dh;
    size_t nrow = (size_t)s.H * s.n_q, nmass = (size_t)s.H * s.n_k;
    size_t nprob = o->probs ? (size_t)s.H * s.n_q * s.n_k : 0;
    size_t nmax = nq > nk ? nq : nk;
    float *df = 0, *dout = 0, *dent = 0, *dm = 0, *dz = 0, *dmass = 0, *dp = 0;
    void *dq = 0, *dk = 0, *dv = 0;
    cudaError_t e;
    int rc = 0;
#define TRY(call, what) do { if ((e = (call)) != cudaSuccess) { rc = tc_fail(err, e, what); goto done; } } while (0)
    TRY(cudaMalloc(&df, nmax * 4), "alloc staging");
    TRY(cudaMalloc(&dq, nq * 2), "alloc q");
    TRY(cudaMalloc(&dk, nk * 2), "alloc k");
    TRY(cudaMalloc(&dv, nk * 2), "alloc v");
    TRY(cudaMalloc(&dout, nq * 4), "alloc out");
    TRY(cudaMalloc(&dm, nrow * 4), "alloc row max");
    TRY(cudaMalloc(&dz, nrow * 4), "alloc row sum");
    if (o->entropy)
        TRY(cudaMalloc(&dent, nrow * 4), "alloc entropy");
    if (o->mass || o->probs)
        TRY(cudaMalloc(&dmass, nmass * 4), "alloc mass");
    if (nprob) {
        TRY(cudaMalloc(&dp, nprob * 4), "alloc probs");
        TRY(cudaMemset(dp, 0, nprob * 4), "clear probs");
    }
    {
        const float *src[3] = {q, k, v};
        void *dst[3] = {dq, dk, dv};
        size_t n[3] = {nq, nk, nk};
        for (int t = 0; t < 3; t++) {
            TRY(cudaMemcpy(df, src[t], n[t] * 4, cudaMemcpyHostToDevice), "copy input");
            if (dt == AK_ATTN_BF16)
                tc_convert<__nv_bfloat16><<<1024, 256>>>(df, (__nv_bfloat16 *)dst[t], n[t]);
            else
                tc_convert<__half><<<1024, 256>>>(df, (__half *)dst[t], n[t]);
            TRY(cudaGetLastError(), "convert input");
        }
    }
    if (dt == AK_ATTN_BF16)
        e = tc_launch<__nv_bfloat16>(s, (const __nv_bfloat16 *)dq, (const __nv_bfloat16 *)dk,
                                     (const __nv_bfloat16 *)dv, dout, dent, dm, dz, dmass, dp, 1, 0);
    else
        e = tc_launch<__half>(s, (const __half *)dq, (const __half *)dk, (const __half *)dv, dout,
                              dent, dm, dz, dmass, dp, 1, 0);
    TRY(e, "attention kernels");
    TRY(cudaMemcpy(o->out, dout, nq * 4, cudaMemcpyDeviceToHost), "copy out");
    if (o->entropy)
        TRY(cudaMemcpy(o->entropy, dent, nrow * 4, cudaMemcpyDeviceToHost), "copy entropy");
    if (o->mass)
        TRY(cudaMemcpy(o->mass, dmass, nmass * 4, cudaMemcpyDeviceToHost), "copy mass");
    if (nprob)
        TRY(cudaMemcpy(o->probs, dp, nprob * 4, cudaMemcpyDeviceToHost), "copy probs");
#undef TRY
done:
    cudaFree(df); cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(dout); cudaFree(dent);
    cudaFree(dm); cudaFree(dz); cudaFree(dmass); cudaFree(dp);
    return rc;
}

/* For bench/: device-resident random inputs, CUDA events, median of iters
 * after a warm-up; ms_forward is pass 1 (out + entropy), ms_both adds the
 * mass pass.  precise 0 uses one product for p * v (p rounded to T). */
extern "C" int ak_cuda_attention_tc_time(int dt, int precise, const ak_attn_shape *as, int iters,
                                         double *ms_forward, double *ms_both, ak_err *err)
{
    tshape s = {as->n_q, as->n_k, as->q_offset, as->n_heads, as->n_kv_heads, as->head_dim,
                as->causal, as->window, as->scale};
    if (!ak_cuda_tc_supported(s.Dh) || iters < 1)
        return ak_fail(err, AK_EUSAGE, "tc bench: head size %d", s.Dh);
    size_t nq = (size_t)s.n_q * s.H * s.Dh, nk = (size_t)s.n_k * s.Hkv * s.Dh;
    size_t nrow = (size_t)s.H * s.n_q, nmass = (size_t)s.H * s.n_k, nmax = nq > nk ? nq : nk;
    float *h = (float *)malloc(sizeof(float) * nmax), *f = (float *)malloc(4 * iters),
          *t = (float *)malloc(4 * iters);
    if (!h || !f || !t) {
        free(h); free(f); free(t);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    uint32_t x = 12345;
    for (size_t i = 0; i < nmax; i++) {
        x = x * 1664525u + 1013904223u;
        h[i] = ((float)(x >> 8) / 16777216.0f * 2.0f - 1.0f) * 1.7f;
    }
    float *buf = 0, *df = 0;
    void *dq = 0, *dk = 0, *dv = 0;
    cudaError_t e = cudaMalloc(&buf, sizeof(float) * (nq + 3 * nrow + nmass));
    if (e == cudaSuccess) e = cudaMalloc(&df, nmax * 4);
    if (e == cudaSuccess) e = cudaMalloc(&dq, nq * 2);
    if (e == cudaSuccess) e = cudaMalloc(&dk, nk * 2);
    if (e == cudaSuccess) e = cudaMalloc(&dv, nk * 2);
    int rc = 0;
    if (e != cudaSuccess) {
        rc = tc_fail(err, e, "alloc");
        goto done;
    }
    {
        float *dout = buf, *dent = dout + nq, *dm = dent + nrow, *dz = dm + nrow, *dmass = dz + nrow;
        void *dst[3] = {dq, dk, dv};
        size_t n[3] = {nq, nk, nk};
        for (int i = 0; i < 3; i++) {
            cudaMemcpy(df, h + (i == 2), (n[i] - (i == 2)) * 4, cudaMemcpyHostToDevice);
            if (dt == AK_ATTN_BF16)
                tc_convert<__nv_bfloat16><<<1024, 256>>>(df, (__nv_bfloat16 *)dst[i], n[i]);
            else
                tc_convert<__half><<<1024, 256>>>(df, (__half *)dst[i], n[i]);
        }
        cudaEvent_t a, b, c;
        cudaEventCreate(&a);
        cudaEventCreate(&b);
        cudaEventCreate(&c);
        for (int it = -1; it < iters; it++) {
            cudaEventRecord(a);
            if (dt == AK_ATTN_BF16)
                e = tc_launch<__nv_bfloat16>(s, (const __nv_bfloat16 *)dq, (const __nv_bfloat16 *)dk,
                                             (const __nv_bfloat16 *)dv, dout, dent, dm, dz, 0, 0,
                                             precise, 0);
            else
                e = tc_launch<__half>(s, (const __half *)dq, (const __half *)dk, (const __half *)dv,
                                      dout, dent, dm, dz, 0, 0, precise, 0);
            cudaEventRecord(b);
            if (e == cudaSuccess) {
                size_t sh2 = mass_smem(s.Dh);
                dim3 g2((s.n_k + TK - 1) / TK, s.H);
                if (dt == AK_ATTN_BF16)
                    tc_mass<__nv_bfloat16><<<g2, TNT, sh2>>>(s, (const __nv_bfloat16 *)dq,
                                                            (const __nv_bfloat16 *)dk, dm, dz, dmass, 0);
                else
                    tc_mass<__half><<<g2, TNT, sh2>>>(s, (const __half *)dq, (const __half *)dk, dm,
                                                     dz, dmass, 0);
            }
            cudaEventRecord(c);
            cudaEventSynchronize(c);
            if (e == cudaSuccess)
                e = cudaGetLastError();
            if (e != cudaSuccess)
                break;
            if (it >= 0) {
                cudaEventElapsedTime(&f[it], a, b);
                cudaEventElapsedTime(&t[it], a, c);
            }
        }
        cudaEventDestroy(a);
        cudaEventDestroy(b);
        cudaEventDestroy(c);
        if (e != cudaSuccess) {
            rc = tc_fail(err, e, "kernels");
            goto done;
        }
        for (int i = 0; i < iters; i++)
            for (int j = i + 1; j < iters; j++) {
                if (f[j] < f[i]) { float w = f[i]; f[i] = f[j]; f[j] = w; }
                if (t[j] < t[i]) { float w = t[i]; t[i] = t[j]; t[j] = w; }
            }
        *ms_forward = f[iters / 2];
        *ms_both = t[iters / 2];
    }
done:
    free(h); free(f); free(t);
    cudaFree(buf); cudaFree(df); cudaFree(dq); cudaFree(dk); cudaFree(dv);
    return rc;
}
