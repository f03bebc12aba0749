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
#include <stdlib.h>
#include <string.h>

#include "ak_cuda.h"

using namespace nvcuda;

#define TQ 64
#define TK 64
#define TNT 128

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
__global__ void __launch_bounds__(TNT) tc_forward(ak_kshape s, const T *q, const T *k, const T *v,
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
    ak_kvisible(s, s.q_off + q0, klo, hi2);
    ak_kvisible(s, s.q_off + q0 + nq - 1, lo2, khi);
    /* this lane's row */
    const int i = q0 + wr + r;
    int lo = 1, hi = 0;
    if (i < s.n_q)
        ak_kvisible(s, s.q_off + i, lo, hi);
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
__global__ void __launch_bounds__(TNT) tc_mass(ak_kshape s, const T *q, const T *k, const float *mrow,
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
    int i_lo, i_hi;
    ak_mask_seer_range(s.causal, s.window, s.q_off, s.n_q, k0, k0 + nk - 1, &i_lo, &i_hi);
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
            ak_kvisible(s, s.q_off + i, lo, hi);
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

/* src rounded to bf16 (bf16 != 0) or f16 and back to f32; f16's overflow
 * to infinity as ak_round_dtype has it. */
__global__ void round_f32(const float *src, float *dst, size_t n, int bf16)
{
    for (size_t x = blockIdx.x * (size_t)blockDim.x + threadIdx.x; x < n; x += (size_t)gridDim.x * blockDim.x)
        dst[x] = bf16 ? from_t<__nv_bfloat16>(to_t<__nv_bfloat16>(src[x]))
                      : from_t<__half>(to_t<__half>(src[x]));
}

/* ---- register-resident variant for head sizes 64 and 128 -----------------
 * The same two passes with mma.sync.m16n8k16 directly, so scores and the
 * output stay in registers (the documented fragment layouts: lane = 4g + t;
 * an accumulator holds rows g and g+8, columns 2t and 2t+1 of an 8-wide
 * tile).  The scores' tile becomes the A operand of p*v without leaving
 * registers.  Pass 2 computes K Q^T (keys as rows) so that a key's mass is
 * a row sum, reduced over the quad at the end. */

template <typename T> struct mma_op;
template <> struct mma_op<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float *d, const uint32_t *a, const uint32_t *b)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};
template <> struct mma_op<__half> {
    static __device__ __forceinline__ void run(float *d, const uint32_t *a, const uint32_t *b)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

template <typename T> __device__ __forceinline__ uint32_t pack2(float x, float y)
{
    T a = to_t<T>(x), b = to_t<T>(y);
    uint16_t ua, ub;
    memcpy(&ua, &a, 2);
    memcpy(&ub, &b, 2);
    return (uint32_t)ua | ((uint32_t)ub << 16);
}
/* x - (float)(T)x for the low part */
template <typename T> __device__ __forceinline__ float rest(float x) { return x - from_t<T>(to_t<T>(x)); }

/* tc_load through cp.async (16 bytes, zero-filled past n rows); the
 * caller commits and waits. */
template <typename T>
__device__ __forceinline__ void tc_load_async(T *dst, const T *src, int r0, int n, int heads, int hd,
                                              int Dh, int ld)
{
    const int per = Dh / 8;
    for (int x = threadIdx.x; x < TQ * per; x += TNT) {
        int r = x / per, c = (x % per) * 8;
        const T *g = r < n ? src + ((size_t)(r0 + r) * heads + hd) * Dh + c : src;
        uint32_t d = (uint32_t)__cvta_generic_to_shared(dst + r * ld + c);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(g),
                     "r"(r < n ? 16 : 0));
    }
}
__device__ __forceinline__ void async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ uint32_t lds32(const void *p) { return *(const uint32_t *)p; }

__device__ __forceinline__ void ldsm_x2_trans(uint32_t *r, const void *p)
{
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1]) : "r"(a));
}

/* A fragments (16 rows from `base`, row stride ld in T) for all DH/16 chunks */
template <typename T, int DH>
__device__ __forceinline__ void load_a(uint32_t (*a)[4], const T *base, int ld, int g, int t)
{
#pragma unroll
    for (int kc = 0; kc < DH / 16; kc++) {
        const T *p = base + g * ld + kc * 16 + 2 * t;
        a[kc][0] = lds32(p);
        a[kc][1] = lds32(p + 8 * ld);
        a[kc][2] = lds32(p + 8);
        a[kc][3] = lds32(p + 8 * ld + 8);
    }
}

/* acc[nt] (16 x 8 for nt < 8) = A (registers) * B^T where B rows come from
 * `bt` (64 rows, stride ld): the scores of 16 rows against 64 columns. */
__device__ __forceinline__ void ldsm_x4(uint32_t *r, const void *p)
{
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t *r, const void *p)
{
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

/* acc[nt] (16 x 8 for nt < 8) = A (registers) * B^T where B rows come from
 * `bt` (64 rows, stride ld): the scores of 16 rows against 64 columns.  The
 * B fragments of two column tiles come in one ldmatrix.x4: lanes 0-7 and
 * 8-15 address the first tile's rows at d and d+8, lanes 16-31 the next. */
template <typename T, int DH>
__device__ __forceinline__ void scores64(float (*acc)[4], const uint32_t (*a)[4], const T *bt, int ld,
                                         int g, int t)
{
    const int lane = threadIdx.x % 32;
    const T *base = bt + ((lane >> 4) * 8 + (lane & 7)) * ld + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
        acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
#pragma unroll
    for (int nt = 0; nt < 8; nt += 2)
#pragma unroll
        for (int kc = 0; kc < DH / 16; kc++) {
            uint32_t b[4];
            ldsm_x4(b, base + nt * 8 * ld + kc * 16);
            mma_op<T>::run(acc[nt], a[kc], b);
            mma_op<T>::run(acc[nt + 1], a[kc], b + 2);
        }
}

/* One key tile's step of the online softmax for a warp's two rows per
 * lane: mx (the tile's row maxima of sc) becomes the running maximum, sc
 * the tile's exp(score - max) (0 where masked), z and A the running sums
 * of p and p * (score - max) rescaled to it, m the running maximum, f the
 * factor the output accumulated so far is rescaled by. */
__device__ __forceinline__ void online_update(float (&sc)[8][4], float (&mx)[2], float (&m)[2],
                                              float (&z)[2], float (&A)[2], float (&f)[2])
{
#pragma unroll
    for (int x = 0; x < 2; x++) {
        mx[x] = fmaxf(mx[x], __shfl_xor_sync(0xffffffffu, mx[x], 1));
        mx[x] = fmaxf(mx[x], __shfl_xor_sync(0xffffffffu, mx[x], 2));
        mx[x] = fmaxf(m[x], mx[x]);
    }
    float se[2] = {0.f, 0.f}, sed[2] = {0.f, 0.f};
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int x = e >> 1;
            float sv = sc[nt][e], p = 0.f;
            if (sv != -INFINITY) {
                p = __expf(sv - mx[x]);
                se[x] += p;
                sed[x] += p * (sv - mx[x]);
            }
            sc[nt][e] = p;
        }
#pragma unroll
    for (int x = 0; x < 2; x++) {
        se[x] += __shfl_xor_sync(0xffffffffu, se[x], 1);
        se[x] += __shfl_xor_sync(0xffffffffu, se[x], 2);
        sed[x] += __shfl_xor_sync(0xffffffffu, sed[x], 1);
        sed[x] += __shfl_xor_sync(0xffffffffu, sed[x], 2);
        f[x] = 1.f;
        if (mx[x] != -INFINITY) {
            if (m[x] == -INFINITY) {
                z[x] = se[x];
                A[x] = sed[x];
                f[x] = 0.f;
            } else {
                f[x] = __expf(m[x] - mx[x]);
                A[x] = f[x] * (A[x] + (m[x] - mx[x]) * z[x]) + sed[x];
                z[x] = f[x] * z[x] + se[x];
            }
            m[x] = mx[x];
        }
    }
}

template <typename T, int DH>
__global__ void __launch_bounds__(TNT) rf_forward(ak_kshape s, const T *q, const T *k, const T *v,
                                                  float *out, float *ent, float *mrow, float *zrow,
                                                  int precise)
{
    extern __shared__ __align__(16) unsigned char smraw[];
    const int ld = DH + 8;
    T *Qs = (T *)smraw, *Ks = Qs + TQ * ld; /* then two K,V buffer pairs */
    const int h = blockIdx.y, grp = h / (s.H / s.Hkv);
    const int q0 = (gridDim.x - 1 - blockIdx.x) * TQ;
    const int nq = min(TQ, s.n_q - q0), warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane >> 2, t = lane & 3, wr = warp * 16;
    tc_load(Qs, q, q0, nq, s.H, h, DH, ld);
    int klo, khi, lo2, hi2;
    ak_kvisible(s, s.q_off + q0, klo, hi2);
    ak_kvisible(s, s.q_off + q0 + nq - 1, lo2, khi);
    int lo[2] = {1, 1}, hi[2] = {0, 0};
    for (int x = 0; x < 2; x++)
        if (q0 + wr + g + 8 * x < s.n_q)
            ak_kvisible(s, s.q_off + q0 + wr + g + 8 * x, lo[x], hi[x]);
    __syncthreads();
    uint32_t qa[DH / 16][4];
    load_a<T, DH>(qa, Qs + wr * ld, ld, g, t);
    float o[DH / 8][4];
#pragma unroll
    for (int n = 0; n < DH / 8; n++)
        o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, z[2] = {0.f, 0.f}, A[2] = {0.f, 0.f};

    /* keys every row of the block sees: tiles inside need no mask */
    int all_lo, all_hi, d1, d2;
    ak_kvisible(s, s.q_off + q0 + nq - 1, all_lo, d1);
    ak_kvisible(s, s.q_off + q0, d2, all_hi);
    const int kstart = (klo / TK) * TK;
    tc_load_async(Ks, k, kstart, min(TK, s.n_k - kstart), s.Hkv, grp, DH, ld);
    tc_load_async(Ks + TK * ld, v, kstart, min(TK, s.n_k - kstart), s.Hkv, grp, DH, ld);
    async_commit();
    for (int k0 = kstart, it = 0; k0 <= khi; k0 += TK, it++) {
        const int nk = min(TK, s.n_k - k0);
        T *Kc = Ks + (it & 1) * 2 * TK * ld, *Vc = Kc + TK * ld;
        if (k0 + TK <= khi) {
            T *Kn = Ks + ((it + 1) & 1) * 2 * TK * ld, *Vn = Kn + TK * ld;
            tc_load_async(Kn, k, k0 + TK, min(TK, s.n_k - k0 - TK), s.Hkv, grp, DH, ld);
            tc_load_async(Vn, v, k0 + TK, min(TK, s.n_k - k0 - TK), s.Hkv, grp, DH, ld);
            async_commit();
            async_wait<1>();
        } else
            async_wait<0>();
        __syncthreads();
        float sc[8][4];
        scores64<T, DH>(sc, qa, Kc, ld, g, t);
        float mx[2] = {-INFINITY, -INFINITY};
        if (nk == TK && k0 >= all_lo && k0 + TK - 1 <= all_hi && q0 + wr + 16 <= s.n_q) {
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    sc[nt][e] *= s.scale;
                    mx[e >> 1] = fmaxf(mx[e >> 1], sc[nt][e]);
                }
        } else {
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int x = e >> 1, j = k0 + nt * 8 + 2 * t + (e & 1);
                    float sv = sc[nt][e] * s.scale;
                    sv = (j >= lo[x] && j <= hi[x]) ? sv : -INFINITY;
                    sc[nt][e] = sv;
                    mx[x] = fmaxf(mx[x], sv);
                }
        }
        float f[2];
        online_update(sc, mx, m, z, A, f);
#pragma unroll
        for (int n = 0; n < DH / 8; n++) {
            o[n][0] *= f[0];
            o[n][1] *= f[0];
            o[n][2] *= f[1];
            o[n][3] *= f[1];
        }
        const int kcs = (nk + 15) / 16;
#pragma unroll
        for (int kc = 0; kc < 4; kc++) {
            if (kc >= kcs)
                break;
            uint32_t ph[4] = {pack2<T>(sc[2 * kc][0], sc[2 * kc][1]), pack2<T>(sc[2 * kc][2], sc[2 * kc][3]),
                              pack2<T>(sc[2 * kc + 1][0], sc[2 * kc + 1][1]),
                              pack2<T>(sc[2 * kc + 1][2], sc[2 * kc + 1][3])};
            uint32_t pl[4];
            if (precise) {
                pl[0] = pack2<T>(rest<T>(sc[2 * kc][0]), rest<T>(sc[2 * kc][1]));
                pl[1] = pack2<T>(rest<T>(sc[2 * kc][2]), rest<T>(sc[2 * kc][3]));
                pl[2] = pack2<T>(rest<T>(sc[2 * kc + 1][0]), rest<T>(sc[2 * kc + 1][1]));
                pl[3] = pack2<T>(rest<T>(sc[2 * kc + 1][2]), rest<T>(sc[2 * kc + 1][3]));
            }
            /* lanes 0-15 address keys kc*16+0..15 at column n*8, lanes
             * 16-31 the same keys at column (n+1)*8 */
            const T *vb = Vc + (kc * 16 + (lane & 15)) * ld + (lane >> 4) * 8;
#pragma unroll
            for (int n = 0; n < DH / 8; n += 2) {
                uint32_t b[4];
                ldsm_x4_trans(b, vb + n * 8);
                mma_op<T>::run(o[n], ph, b);
                mma_op<T>::run(o[n + 1], ph, b + 2);
                if (precise) {
                    mma_op<T>::run(o[n], pl, b);
                    mma_op<T>::run(o[n + 1], pl, b + 2);
                }
            }
        }
        __syncthreads(); /* before the next tile's loads overwrite this buffer */
    }
#pragma unroll
    for (int x = 0; x < 2; x++) {
        const int i = q0 + wr + g + 8 * x;
        if (i >= s.n_q)
            continue;
        const float inv = 1.f / z[x];
        float *orow = out + ((size_t)i * s.H + h) * DH;
#pragma unroll
        for (int n = 0; n < DH / 8; n++)
            *(float2 *)(orow + n * 8 + 2 * t) = make_float2(o[n][2 * x] * inv, o[n][2 * x + 1] * inv);
        if (t == 0) {
            size_t r = (size_t)h * s.n_q + i;
            mrow[r] = m[x];
            zrow[r] = z[x];
            if (ent)
                ent[r] = logf(z[x]) - A[x] / z[x];
        }
    }
}

template <typename T, int DH>
__global__ void __launch_bounds__(TNT) rf_mass(ak_kshape s, const T *q, const T *k, const float *mrow,
                                               const float *zrow, float *mass, float *probs)
{
    extern __shared__ __align__(16) unsigned char smraw[];
    const int ld = DH + 8;
    T *Ks = (T *)smraw, *Qs = Ks + TK * ld;
    float *Ms = (float *)(Qs + TQ * ld), *Zs = Ms + TQ;
    const int h = blockIdx.y, grp = h / (s.H / s.Hkv), k0 = blockIdx.x * TK;
    const int nk = min(TK, s.n_k - k0), warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane >> 2, t = lane & 3, wr = warp * 16;
    tc_load(Ks, k, k0, nk, s.Hkv, grp, DH, ld);
    __syncthreads();
    uint32_t ka[DH / 16][4];
    load_a<T, DH>(ka, Ks + wr * ld, ld, g, t);
    int i_lo, i_hi;
    ak_mask_seer_range(s.causal, s.window, s.q_off, s.n_q, k0, k0 + nk - 1, &i_lo, &i_hi);
    const int j[2] = {k0 + wr + g, k0 + wr + g + 8};
    float col[2] = {0.f, 0.f};
    for (int q0 = (i_lo / TQ) * TQ; q0 <= i_hi; q0 += TQ) {
        const int nq = min(TQ, s.n_q - q0);
        __syncthreads();
        tc_load(Qs, q, q0, nq, s.H, h, DH, ld);
        if (threadIdx.x < TQ) {
            size_t r = (size_t)h * s.n_q + q0 + threadIdx.x;
            Ms[threadIdx.x] = threadIdx.x < nq ? mrow[r] : 0.f;
            Zs[threadIdx.x] = threadIdx.x < nq ? 1.f / zrow[r] : 0.f;
        }
        __syncthreads();
        float sc[8][4];
        scores64<T, DH>(sc, ka, Qs, ld, g, t);
        /* every query of the tile sees [a_lo, a_hi]: the last query's lo,
         * the first query's hi */
        int a_lo, a_hi, e1, e2;
        ak_kvisible(s, s.q_off + q0, e1, a_hi);
        ak_kvisible(s, s.q_off + q0 + nq - 1, a_lo, e2);
        if (!probs && nq == TQ && k0 + wr + 15 < s.n_k && k0 + wr >= a_lo && k0 + wr + 15 <= a_hi) {
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int c = nt * 8 + 2 * t + (e & 1);
                    col[e >> 1] += __expf(sc[nt][e] * s.scale - Ms[c]) * Zs[c];
                }
            continue;
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int x = e >> 1, c = nt * 8 + 2 * t + (e & 1), i = q0 + c;
                float p = 0.f;
                if (c < nq && j[x] < s.n_k) {
                    int lo, hi;
                    ak_kvisible(s, s.q_off + i, lo, hi);
                    if (j[x] >= lo && j[x] <= hi)
                        p = __expf(sc[nt][e] * s.scale - Ms[c]) * Zs[c];
                    if (probs)
                        probs[((size_t)h * s.n_q + i) * s.n_k + j[x]] = p;
                }
                col[x] += p;
            }
    }
#pragma unroll
    for (int x = 0; x < 2; x++) {
        col[x] += __shfl_xor_sync(0xffffffffu, col[x], 1);
        col[x] += __shfl_xor_sync(0xffffffffu, col[x], 2);
        if (t == 0 && j[x] < s.n_k)
            mass[(size_t)h * s.n_k + j[x]] = col[x];
    }
}

static size_t rf_fwd_smem(int Dh) { return 2 * (size_t)(TQ + 4 * TK) * (Dh + 8); }
static size_t rf_mass_smem(int Dh) { return 2 * (size_t)(TQ + TK) * (Dh + 8) + 8 * TQ; }

template <typename T, int DH>
static cudaError_t rf_launch_dh(const ak_kshape &s, const T *q, const T *k, const T *v, float *out,
                                float *ent, float *m, float *z, float *mass, float *probs,
                                int precise, cudaStream_t st, int which)
{
    size_t sh1 = rf_fwd_smem(DH), sh2 = rf_mass_smem(DH);
    cudaError_t e = cudaFuncSetAttribute(rf_forward<T, DH>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh1);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(rf_mass<T, DH>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh2);
    if (e != cudaSuccess)
        return e;
    dim3 g1((s.n_q + TQ - 1) / TQ, s.H), g2((s.n_k + TK - 1) / TK, s.H);
    if (which & 1)
        rf_forward<T, DH><<<g1, TNT, sh1, st>>>(s, q, k, v, out, ent, m, z, precise);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    if (mass && (which & 2)) {
        rf_mass<T, DH><<<g2, TNT, sh2, st>>>(s, q, k, m, z, mass, probs);
        e = cudaGetLastError();
    }
    return e;
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

static int use_wmma; /* ak_cuda_set_wmma */

extern "C" void ak_cuda_set_wmma(int on) { use_wmma = on != 0; }

/* Both passes on device buffers already in T.  Returns a cudaError_t. */
template <typename T>
static cudaError_t tc_launch(const ak_kshape &s, const T *q, const T *k, const T *v, float *out,
                             float *ent, float *m, float *z, float *mass, float *probs,
                             int precise, cudaStream_t st, int which = 3)
{
    if (s.Dh == 64 && !use_wmma)
        return rf_launch_dh<T, 64>(s, q, k, v, out, ent, m, z, mass, probs, precise, st, which);
    if (s.Dh == 128 && !use_wmma)
        return rf_launch_dh<T, 128>(s, q, k, v, out, ent, m, z, mass, probs, precise, st, which);
    size_t sh1 = fwd_smem(s.Dh), sh2 = mass_smem(s.Dh);
    cudaError_t e = cudaFuncSetAttribute(tc_forward<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh1);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(tc_mass<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sh2);
    if (e != cudaSuccess)
        return e;
    dim3 g1((s.n_q + TQ - 1) / TQ, s.H), g2((s.n_k + TK - 1) / TK, s.H);
    if (which & 1)
        tc_forward<T><<<g1, TNT, sh1, st>>>(s, q, k, v, out, ent, m, z, precise);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    if (mass && (which & 2)) {
        tc_mass<T><<<g2, TNT, sh2, st>>>(s, q, k, m, z, mass, probs);
        e = cudaGetLastError();
    }
    return e;
}

/* 1 when the tensor-core kernels take this head size. */
extern "C" int ak_cuda_tc_supported(int head_dim)
{
    return head_dim > 0 && head_dim % 16 == 0 && head_dim <= 256;
}

/* q, k, v hold values already representable in dt (lib/model/attention.c rounds
 * them); converted on the device, exactly. */
extern "C" int ak_cuda_attention_tc(ak_cuda_ws **wsp, int dt, const ak_attn_shape *as,
                                    const float *q, const float *k, const float *v,
                                    ak_attn_out *o, ak_err *err)
{
    ak_kshape s = ak_kshape_of(as);
    if (s.n_q == 0)
        return 0;
    if (!ak_cuda_tc_supported(s.Dh))
        return ak_cuda_attention(wsp, as, q, k, v, o, err);
    int rc = ak_cuda_ws_outputs(wsp, as, o, err);
    if (rc)
        return rc;
    ak_cuda_ws *ws = *wsp;
    size_t nq = (size_t)s.n_q * s.H * s.Dh, nk = (size_t)s.n_k * s.Hkv * s.Dh;
    size_t nmax = nq > nk ? nq : nk;
    cudaError_t e;
#define TRY(call, what) do { if ((e = (call)) != cudaSuccess) return ak_cuda_fail(err, e, what); } while (0)
    TRY(ak_dbuf_grow(&ws->stage, nmax * 4), "alloc staging");
    TRY(ak_dbuf_grow(&ws->q, nq * 2), "alloc q");
    TRY(ak_dbuf_grow(&ws->k, nk * 2), "alloc k");
    TRY(ak_dbuf_grow(&ws->v, nk * 2), "alloc v");
    float *df = (float *)ws->stage.p, *dout = (float *)ws->out.p;
    float *dm = (float *)ws->m.p, *dz = (float *)ws->z.p;
    float *dent = o->entropy ? (float *)ws->ent.p : 0;
    float *dmass = o->mass || o->probs ? (float *)ws->mass.p : 0;
    float *dp = o->probs ? (float *)ws->probs.p : 0;
    void *dq = ws->q.p, *dk = ws->k.p, *dv = ws->v.p;
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
    if (dt == AK_ATTN_BF16)
        e = tc_launch<__nv_bfloat16>(s, (const __nv_bfloat16 *)dq, (const __nv_bfloat16 *)dk,
                                     (const __nv_bfloat16 *)dv, dout, dent, dm, dz, dmass, dp, 1, 0);
    else
        e = tc_launch<__half>(s, (const __half *)dq, (const __half *)dk, (const __half *)dv, dout,
                              dent, dm, dz, dmass, dp, 1, 0);
    TRY(e, "attention kernels");
#undef TRY
    return ak_cuda_copy_back(ws, as, o, err);
}

/* Device-resident q, k, v in f32: rounded to dt on the device (to nearest,
 * as ak_round_dtype does on the host) into the workspace, then both
 * passes; the f32 kernels for AK_ATTN_F32 and head sizes the tensor-core
 * kernels do not take (on the rounded inputs, as the host path does). */
extern "C" int ak_cuda_attention_dev(ak_cuda_ws **wsp, int dt, const ak_attn_shape *as,
                                     const float *q, const float *k, const float *v,
                                     float *dout, float *dent, float *dmass, ak_err *err)
{
    if (dt == AK_ATTN_F32)
        return ak_cuda_attention_f32_dev(wsp, as, q, k, v, dout, dent, dmass, err);
    ak_kshape s = ak_kshape_of(as);
    if (s.n_q == 0)
        return 0;
    if (!*wsp && !(*wsp = (ak_cuda_ws *)calloc(1, sizeof **wsp)))
        return ak_fail(err, AK_ENOMEM, "cuda attention: out of memory");
    ak_cuda_ws *ws = *wsp;
    size_t nq = (size_t)s.n_q * s.H * s.Dh, nk = (size_t)s.n_k * s.Hkv * s.Dh;
    size_t nrow = (size_t)s.H * s.n_q;
    int tc = ak_cuda_tc_supported(s.Dh);
    size_t el = tc ? 2 : 4;
    cudaError_t e;
#define TRY(call, what) do { if ((e = (call)) != cudaSuccess) return ak_cuda_fail(err, e, what); } while (0)
    TRY(ak_dbuf_grow(&ws->q, nq * el), "alloc q");
    TRY(ak_dbuf_grow(&ws->k, nk * el), "alloc k");
    TRY(ak_dbuf_grow(&ws->v, nk * el), "alloc v");
    TRY(ak_dbuf_grow(&ws->m, nrow * 4), "alloc row max");
    TRY(ak_dbuf_grow(&ws->z, nrow * 4), "alloc row sum");
    const float *src[3] = {q, k, v};
    void *dst[3] = {ws->q.p, ws->k.p, ws->v.p};
    size_t n[3] = {nq, nk, nk};
    for (int t = 0; t < 3; t++) {
        if (!tc)   /* rounded to dt but kept in f32 for the f32 kernels */
            round_f32<<<1024, 256>>>(src[t], (float *)dst[t], n[t], dt == AK_ATTN_BF16);
        else if (dt == AK_ATTN_BF16)
            tc_convert<__nv_bfloat16><<<1024, 256>>>(src[t], (__nv_bfloat16 *)dst[t], n[t]);
        else
            tc_convert<__half><<<1024, 256>>>(src[t], (__half *)dst[t], n[t]);
        TRY(cudaGetLastError(), "convert input");
    }
    if (!tc) {
        int rc = ak_cuda_attention_f32_dev(wsp, as, (const float *)ws->q.p, (const float *)ws->k.p,
                                           (const float *)ws->v.p, dout, dent, dmass, err);
        return rc;
    }
    float *dm = (float *)ws->m.p, *dz = (float *)ws->z.p;
    if (dt == AK_ATTN_BF16)
        e = tc_launch<__nv_bfloat16>(s, (const __nv_bfloat16 *)ws->q.p,
                                     (const __nv_bfloat16 *)ws->k.p, (const __nv_bfloat16 *)ws->v.p,
                                     dout, dent, dm, dz, dmass, 0, 1, 0);
    else
        e = tc_launch<__half>(s, (const __half *)ws->q.p, (const __half *)ws->k.p,
                              (const __half *)ws->v.p, dout, dent, dm, dz, dmass, 0, 1, 0);
    TRY(e, "attention kernels");
#undef TRY
    return 0;
}

/* For tests: ak_cuda_attention_dev on host arrays (copied to fresh device
 * buffers and back; ent and mass may be NULL). */
extern "C" int ak_cuda_attention_dev_host(int dt, const ak_attn_shape *as, const float *q,
                                          const float *k, const float *v, float *out, float *ent,
                                          float *mass, ak_err *err)
{
    size_t nq = (size_t)as->n_q * as->n_heads * as->head_dim;
    size_t nk = (size_t)as->n_k * as->n_kv_heads * as->head_dim;
    size_t nrow = (size_t)as->n_heads * as->n_q, nmass = (size_t)as->n_heads * as->n_k;
    size_t total = 2 * nq + 2 * nk + nrow + nmass;
    float *buf = 0;
    ak_cuda_ws *ws = 0;
    cudaError_t e = cudaMalloc(&buf, total * sizeof(float));
    if (e != cudaSuccess)
        return ak_cuda_fail(err, e, "alloc");
    float *dq = buf, *dk = dq + nq, *dv = dk + nk, *dout = dv + nk, *dent = dout + nq;
    float *dmass = dent + nrow;
    int rc = 0;
    if ((e = cudaMemcpy(dq, q, nq * 4, cudaMemcpyHostToDevice)) != cudaSuccess ||
        (e = cudaMemcpy(dk, k, nk * 4, cudaMemcpyHostToDevice)) != cudaSuccess ||
        (e = cudaMemcpy(dv, v, nk * 4, cudaMemcpyHostToDevice)) != cudaSuccess)
        rc = ak_cuda_fail(err, e, "copy inputs");
    if (!rc)
        rc = ak_cuda_attention_dev(&ws, dt, as, dq, dk, dv, dout, ent ? dent : 0, mass ? dmass : 0,
                                   err);
    if (!rc && ((e = cudaMemcpy(out, dout, nq * 4, cudaMemcpyDeviceToHost)) != cudaSuccess ||
                (ent && (e = cudaMemcpy(ent, dent, nrow * 4, cudaMemcpyDeviceToHost)) != cudaSuccess) ||
                (mass && (e = cudaMemcpy(mass, dmass, nmass * 4, cudaMemcpyDeviceToHost)) != cudaSuccess)))
        rc = ak_cuda_fail(err, e, "copy outputs");
    ak_cuda_ws_free(ws);
    cudaFree(buf);
    return rc;
}

/* For bench/: device-resident random inputs, CUDA events, median of iters
 * after a warm-up; ms_forward is pass 1 (out + entropy), ms_both adds the
 * mass pass.  precise 0 uses one product for p * v (p rounded to T). */
int ak_cuda_attention_tc_time(int dt, int precise, const ak_attn_shape *as, int iters,
                                         double *ms_forward, double *ms_both, ak_err *err)
{
    ak_kshape s = ak_kshape_of(as);
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
        rc = ak_cuda_fail(err, e, "alloc");
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
                if (dt == AK_ATTN_BF16)
                    e = tc_launch<__nv_bfloat16>(s, (const __nv_bfloat16 *)dq, (const __nv_bfloat16 *)dk,
                                                 (const __nv_bfloat16 *)dv, dout, dent, dm, dz, dmass, 0,
                                                 precise, 0, 2);
                else
                    e = tc_launch<__half>(s, (const __half *)dq, (const __half *)dk, (const __half *)dv,
                                          dout, dent, dm, dz, dmass, 0, precise, 0, 2);
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
            rc = ak_cuda_fail(err, e, "kernels");
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
