/* forward.cu - the whole forward pass on the device: the CUDA twin of
 * lib/model/forward.c's forward_pass (no cache, no probabilities), opt-in through
 * ATTNKIT_CUDA_FORWARD and unverified until a `make gpu-check` run passes.
 *
 * The weights are uploaded once per model in f32 (ak_cuda_model_put); the
 * activations stay on the device across layers in one workspace grown to
 * the longest input and kept; projections, MLPs and the LM head are cuBLAS
 * GEMMs (TF32 tensor cores when dims.tf32, else plain f32); norms, RoPE,
 * activations, QK-norm, bias and residual adds are the small kernels below,
 * each the twin of a loop in lib/model/forward.c or lib/model/model.c; the attention is
 * attention.cu / attention_tc.cu on device pointers.  Only the stream's
 * tensors (final hidden states, entropy, mass, logits) come back.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>

#include "ak_cuda.h"

/* ak_act of model.h, which nvcc does not read */
enum { ACT_GELU_ERF, ACT_GELU_TANH, ACT_SILU, ACT_RELU };

struct ak_cuda_layer {
    ak_dbuf w[AK_CW_N];
    int window;
    float scale;
};

struct ak_cuda_model {
    ak_cuda_dims d;
    cublasHandle_t blas;
    ak_cuda_layer *layers;   /* L + 1: the last holds the model's own weights */
    size_t cap_T;
    ak_dbuf x, xn, q, k, v, att, up, gate, tmp, ent, mass, logits;
    ak_cuda_ws *attn;
};

#define NTH 256

/* ---- kernels ---------------------------------------------------------- */

__device__ __forceinline__ double block_sum(double v, double *sh)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();   /* sh may still be read from the previous call */
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    double t = 0;
    for (int i = 0; i < (int)blockDim.x / 32; i++)
        t += sh[i];
    return t;
}

/* One block per row.  RMSNorm: y = w * (x / sqrt(mean(x^2) + eps)) (lib/
 * forward.c rmsnorm); LayerNorm: y = (x - mean) / sqrt(var + eps) * w + b
 * (lib/model/model.c ak_layernorm); sums in double as the CPU twins keep them.
 * y may be x. */
__global__ void norm_rows(float *y, const float *x, int D, const float *w, const float *b,
                          float eps, int rms)
{
    __shared__ double sh[NTH / 32];
    const float *xr = x + (size_t)blockIdx.x * D;
    float *yr = y + (size_t)blockIdx.x * D;
    if (rms) {
        double ss = 0;
        for (int i = threadIdx.x; i < D; i += blockDim.x)
            ss += (double)xr[i] * xr[i];
        ss = block_sum(ss, sh);
        float inv = (float)(1.0 / sqrt(ss / D + eps));
        __syncthreads();
        for (int i = threadIdx.x; i < D; i += blockDim.x)
            yr[i] = w[i] * (xr[i] * inv);
        return;
    }
    double mean = 0, var = 0;
    for (int i = threadIdx.x; i < D; i += blockDim.x)
        mean += xr[i];
    mean = block_sum(mean, sh) / D;
    for (int i = threadIdx.x; i < D; i += blockDim.x)
        var += (xr[i] - mean) * (xr[i] - mean);
    var = block_sum(var, sh) / D;
    double inv = 1.0 / sqrt(var + eps);
    __syncthreads();
    for (int i = threadIdx.x; i < D; i += blockDim.x)
        yr[i] = (float)((xr[i] - mean) * inv) * w[i] + (b ? b[i] : 0.0f);
}

/* y[t, i] += b[i] */
__global__ void add_bias(float *y, const float *b, size_t rows, int n)
{
    for (size_t x = blockIdx.x * (size_t)blockDim.x + threadIdx.x; x < rows * n;
         x += (size_t)gridDim.x * blockDim.x)
        y[x] += b[x % n];
}

/* x += y */
__global__ void add_into(float *x, const float *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

/* lib/model/forward.c activate: SiLU and GELU-tanh as v * sigmoid(a). */
__device__ __forceinline__ float act_of(int act, float v)
{
    switch (act) {
    case ACT_SILU:
        return v / (1.0f + expf(-v));
    case ACT_GELU_TANH:
        return v / (1.0f + expf(-1.5957691216057308f * (v + 0.044715f * v * v * v)));
    case ACT_GELU_ERF:
        return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    default:
        return v > 0 ? v : 0;
    }
}

/* x = act(x), or with gate: x *= act(gate) (SwiGLU / GeGLU). */
__global__ void activate(float *x, const float *gate, size_t n, int act)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = gate ? x[i] * act_of(act, gate[i]) : act_of(act, x[i]);
}

/* lib/model/forward.c rope at positions 0..T-1: pairs (i, i + half) of every
 * head rotated by t * inv_freq[i] (the angle in f32, as transformers has
 * it, its cosine and sine in double rounded to f32, as the CPU's tables). */
__global__ void rope(float *x, int T, int heads, int dh, const float *inv_freq)
{
    int half = dh / 2;
    size_t n = (size_t)T * heads * half;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(e % half);
        size_t r = e / half;   /* row t * heads + h */
        int t = (int)(r / heads);
        float angle = (float)t * inv_freq[i];
        float c = (float)cos((double)angle), s = (float)sin((double)angle);
        float *v = x + r * dh;
        float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

__global__ void softcap(float *x, size_t n, float cap)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = cap * tanhf(x[i] / cap);
}

static unsigned grid_of(size_t n)
{
    size_t g = (n + NTH - 1) / NTH;
    return (unsigned)(g > 4096 ? 4096 : g ? g : 1);
}

/* ---- the model ---------------------------------------------------------- */

static int blas_fail(ak_err *err, cublasStatus_t st, const char *what)
{
    return ak_fail(err, st == CUBLAS_STATUS_ALLOC_FAILED ? AK_ENOMEM : AK_EINTERNAL,
                   "cublas: %s: status %d", what, (int)st);
}

extern "C" int ak_cuda_model_new(ak_cuda_model **out, const ak_cuda_dims *d, ak_err *err)
{
    *out = NULL;
    ak_cuda_model *cm = (ak_cuda_model *)calloc(1, sizeof *cm);
    if (!cm || !(cm->layers = (ak_cuda_layer *)calloc((size_t)d->L + 1, sizeof *cm->layers))) {
        free(cm);
        return ak_fail(err, AK_ENOMEM, "cuda forward: out of memory");
    }
    cm->d = *d;
    cublasStatus_t st = cublasCreate(&cm->blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        free(cm->layers);
        free(cm);
        return blas_fail(err, st, "create");
    }
    cublasSetMathMode(cm->blas, d->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    *out = cm;
    return 0;
}

extern "C" void ak_cuda_model_free(ak_cuda_model *cm)
{
    if (!cm)
        return;
    for (int l = 0; l <= cm->d.L; l++)
        for (int s = 0; s < AK_CW_N; s++)
            cudaFree(cm->layers[l].w[s].p);
    ak_dbuf *all[] = {&cm->x, &cm->xn, &cm->q, &cm->k, &cm->v, &cm->att, &cm->up,
                      &cm->gate, &cm->tmp, &cm->ent, &cm->mass, &cm->logits};
    for (ak_dbuf *b : all)
        cudaFree(b->p);
    ak_cuda_ws_free(cm->attn);
    cublasDestroy(cm->blas);
    free(cm->layers);
    free(cm);
}

extern "C" int ak_cuda_model_put(ak_cuda_model *cm, int layer, int slot, size_t off,
                                 const float *src, size_t n, size_t total, ak_err *err)
{
    if (layer < 0 || layer > cm->d.L || slot < 0 || slot >= AK_CW_N || off + n > total)
        return ak_fail(err, AK_EINTERNAL, "cuda forward: weight %d of layer %d out of range",
                       slot, layer);
    ak_dbuf *b = &cm->layers[layer].w[slot];
    cudaError_t e;
    if (off == 0 && (e = ak_dbuf_grow(b, total * sizeof(float))) != cudaSuccess)
        return ak_cuda_fail(err, e, "upload weights");
    if (b->cap < total * sizeof(float))
        return ak_fail(err, AK_EINTERNAL, "cuda forward: weight %d put before allocation", slot);
    if ((e = cudaMemcpy((float *)b->p + off, src, n * sizeof(float), cudaMemcpyHostToDevice)) !=
        cudaSuccess)
        return ak_cuda_fail(err, e, "upload weights");
    return 0;
}

extern "C" void ak_cuda_model_layer(ak_cuda_model *cm, int layer, int window, float scale)
{
    if (layer >= 0 && layer < cm->d.L) {
        cm->layers[layer].window = window;
        cm->layers[layer].scale = scale;
    }
}

static const float *W(const ak_cuda_model *cm, int l, int slot)
{
    return (const float *)cm->layers[l].w[slot].p;
}

/* y[T, out] = x[T, in] W^T (+ y when accumulate) (+ b): W is [out, in]
 * row-major, which column-major cuBLAS sees as [in, out], so
 * y^T (out x T) = W^T-of-that x^T.  The bias after the product. */
static int gemm(ak_cuda_model *cm, const float *w, const float *b, const float *x, int T, int in,
                int out, float *y, int accumulate, ak_err *err)
{
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    cublasStatus_t st = cublasGemmEx(cm->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, &one, w,
                                     CUDA_R_32F, in, x, CUDA_R_32F, in, &beta, y, CUDA_R_32F, out,
                                     cm->d.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
        return blas_fail(err, st, "gemm");
    if (b) {
        size_t n = (size_t)T * out;
        add_bias<<<grid_of(n), NTH>>>(y, b, (size_t)T, out);
    }
    return 0;
}

static int grow_all(ak_cuda_model *cm, int T, ak_err *err)
{
    if ((size_t)T <= cm->cap_T)
        return 0;
    const ak_cuda_dims *d = &cm->d;
    size_t Tz = (size_t)T, f = sizeof(float);
    size_t qd = (size_t)d->H * d->Dh, kvd = (size_t)d->Hkv * d->Dh;
    size_t LHT = (size_t)d->L * d->H * Tz;
    cm->cap_T = 0;
    struct { ak_dbuf *b; size_t n; } want[] = {
        {&cm->x, Tz * d->D},   {&cm->xn, Tz * d->D},  {&cm->q, Tz * qd},
        {&cm->k, Tz * kvd},    {&cm->v, Tz * kvd},    {&cm->att, Tz * qd},
        {&cm->up, Tz * d->F},  {&cm->gate, Tz * d->F}, {&cm->tmp, Tz * d->D},
        {&cm->ent, LHT},       {&cm->mass, LHT},
    };
    for (auto &w : want) {
        cudaError_t e = ak_dbuf_grow(w.b, w.n * f);
        if (e != cudaSuccess)
            return ak_cuda_fail(err, e, "forward workspace");
    }
    cm->cap_T = Tz;
    return 0;
}

extern "C" int ak_cuda_model_forward(ak_cuda_model *cm, float *hx, int T, int attn_dtype,
                                     float *entropy, float *mass, float *logits, int logits_all,
                                     ak_err *err)
{
    if (T <= 0)
        return 0;
    const ak_cuda_dims *d = &cm->d;
    int rc = grow_all(cm, T, err);
    if (rc)
        return rc;
    int D = d->D, H = d->H, Hkv = d->Hkv, Dh = d->Dh, F = d->F, L = d->L;
    size_t Tz = (size_t)T, qd = (size_t)H * Dh, kvd = (size_t)Hkv * Dh;
    float *x = (float *)cm->x.p, *xn = (float *)cm->xn.p, *q = (float *)cm->q.p;
    float *k = (float *)cm->k.p, *v = (float *)cm->v.p, *att = (float *)cm->att.p;
    float *up = (float *)cm->up.p, *gate = (float *)cm->gate.p, *tmp = (float *)cm->tmp.p;
    float *ent = (float *)cm->ent.p, *ms = (float *)cm->mass.p;
    cudaError_t e;
#define TRY(call) do { if ((rc = (call))) return rc; } while (0)
#define CU(call, what) do { if ((e = (call)) != cudaSuccess) return ak_cuda_fail(err, e, what); } while (0)
    CU(cudaMemcpy(x, hx, Tz * D * sizeof(float), cudaMemcpyHostToDevice), "copy hidden");
    for (int l = 0; l < L; l++) {
        const ak_cuda_layer *ly = &cm->layers[l];
        const float *ain = x;
        if (!d->post_ln) {
            norm_rows<<<T, NTH>>>(xn, x, D, W(cm, l, AK_CW_NORM1_W), W(cm, l, AK_CW_NORM1_B),
                                  d->eps, d->rms);
            ain = xn;
        }
        TRY(gemm(cm, W(cm, l, AK_CW_Q), W(cm, l, AK_CW_QB), ain, T, D, (int)qd, q, 0, err));
        TRY(gemm(cm, W(cm, l, AK_CW_K), W(cm, l, AK_CW_KB), ain, T, D, (int)kvd, k, 0, err));
        TRY(gemm(cm, W(cm, l, AK_CW_V), W(cm, l, AK_CW_VB), ain, T, D, (int)kvd, v, 0, err));
        if (W(cm, l, AK_CW_QNORM)) {   /* gemma3: RMSNorm of each head's query and key */
            norm_rows<<<T * H, NTH>>>(q, q, Dh, W(cm, l, AK_CW_QNORM), NULL, d->eps, 1);
            norm_rows<<<T * Hkv, NTH>>>(k, k, Dh, W(cm, l, AK_CW_KNORM), NULL, d->eps, 1);
        }
        if (W(cm, l, AK_CW_INV_FREQ)) {
            rope<<<grid_of(Tz * H * (Dh / 2)), NTH>>>(q, T, H, Dh, W(cm, l, AK_CW_INV_FREQ));
            rope<<<grid_of(Tz * Hkv * (Dh / 2)), NTH>>>(k, T, Hkv, Dh, W(cm, l, AK_CW_INV_FREQ));
        }
        CU(cudaGetLastError(), "norm and rope kernels");
        ak_attn_shape s = {T, T, 0, H, Hkv, Dh, d->causal, ly->window, ly->scale, NULL};
        TRY(ak_cuda_attention_dev(&cm->attn, attn_dtype, &s, q, k, v, att,
                                  entropy ? ent + (size_t)l * H * Tz : NULL,
                                  mass ? ms + (size_t)l * H * Tz : NULL, err));
        if (d->post_ln) {
            /* BERT: x = LN(x + O(att)); x = LN(x + MLP(x)) */
            TRY(gemm(cm, W(cm, l, AK_CW_O), W(cm, l, AK_CW_OB), att, T, (int)qd, D, x, 1, err));
            norm_rows<<<T, NTH>>>(x, x, D, W(cm, l, AK_CW_NORM1_W), W(cm, l, AK_CW_NORM1_B),
                                  d->eps, 0);
            TRY(gemm(cm, W(cm, l, AK_CW_UP), W(cm, l, AK_CW_UPB), x, T, D, F, up, 0, err));
            activate<<<grid_of(Tz * F), NTH>>>(up, NULL, Tz * F, d->act);
            TRY(gemm(cm, W(cm, l, AK_CW_DOWN), W(cm, l, AK_CW_DOWNB), up, T, F, D, x, 1, err));
            norm_rows<<<T, NTH>>>(x, x, D, W(cm, l, AK_CW_NORM2_W), W(cm, l, AK_CW_NORM2_B),
                                  d->eps, 0);
            CU(cudaGetLastError(), "layer kernels");
            continue;
        }
        /* pre-LN: x += O(att); x += MLP(norm(x)); Gemma normalizes both
         * branches' outputs before adding them. */
        if (d->gemma) {
            TRY(gemm(cm, W(cm, l, AK_CW_O), W(cm, l, AK_CW_OB), att, T, (int)qd, D, tmp, 0, err));
            norm_rows<<<T, NTH>>>(tmp, tmp, D, W(cm, l, AK_CW_POST_ATTN), NULL, d->eps, 1);
            add_into<<<grid_of(Tz * D), NTH>>>(x, tmp, Tz * D);
        } else {
            TRY(gemm(cm, W(cm, l, AK_CW_O), W(cm, l, AK_CW_OB), att, T, (int)qd, D, x, 1, err));
        }
        norm_rows<<<T, NTH>>>(xn, x, D, W(cm, l, AK_CW_NORM2_W), W(cm, l, AK_CW_NORM2_B), d->eps,
                              d->rms);
        TRY(gemm(cm, W(cm, l, AK_CW_UP), W(cm, l, AK_CW_UPB), xn, T, D, F, up, 0, err));
        if (W(cm, l, AK_CW_GATE)) {
            TRY(gemm(cm, W(cm, l, AK_CW_GATE), W(cm, l, AK_CW_GATEB), xn, T, D, F, gate, 0, err));
            activate<<<grid_of(Tz * F), NTH>>>(up, gate, Tz * F, d->act);
        } else {
            activate<<<grid_of(Tz * F), NTH>>>(up, NULL, Tz * F, d->act);
        }
        if (d->gemma) {
            TRY(gemm(cm, W(cm, l, AK_CW_DOWN), W(cm, l, AK_CW_DOWNB), up, T, F, D, tmp, 0, err));
            norm_rows<<<T, NTH>>>(tmp, tmp, D, W(cm, l, AK_CW_POST_MLP), NULL, d->eps, 1);
            add_into<<<grid_of(Tz * D), NTH>>>(x, tmp, Tz * D);
        } else {
            TRY(gemm(cm, W(cm, l, AK_CW_DOWN), W(cm, l, AK_CW_DOWNB), up, T, F, D, x, 1, err));
        }
        CU(cudaGetLastError(), "layer kernels");
    }
    if (W(cm, L, AK_CW_FINAL_W))
        norm_rows<<<T, NTH>>>(x, x, D, W(cm, L, AK_CW_FINAL_W), W(cm, L, AK_CW_FINAL_B), d->eps,
                              d->rms);
    CU(cudaGetLastError(), "final norm");
    if (logits) {
        if (!W(cm, L, AK_CW_LM_HEAD))
            return ak_fail(err, AK_ECONFIG, "cuda forward: the model has no language-model head");
        size_t rows = logits_all ? Tz : 1;
        /* grown to the rows asked for only: all of Gemma 3's 262K-entry
         * rows over a long prompt would not fit */
        CU(ak_dbuf_grow(&cm->logits, rows * d->V * sizeof(float)), "alloc logits");
        float *dl = (float *)cm->logits.p;
        TRY(gemm(cm, W(cm, L, AK_CW_LM_HEAD), NULL, logits_all ? x : x + (Tz - 1) * D, (int)rows,
                 D, d->V, dl, 0, err));
        if (d->softcap > 0)
            softcap<<<grid_of(rows * d->V), NTH>>>(dl, rows * d->V, d->softcap);
        CU(cudaGetLastError(), "logits");
        CU(cudaMemcpy(logits, dl, rows * d->V * sizeof(float), cudaMemcpyDeviceToHost),
           "copy logits");
    }
    size_t LHT = (size_t)L * H * Tz;
    CU(cudaMemcpy(hx, x, Tz * D * sizeof(float), cudaMemcpyDeviceToHost), "copy hidden");
    if (entropy)
        CU(cudaMemcpy(entropy, ent, LHT * sizeof(float), cudaMemcpyDeviceToHost), "copy entropy");
    if (mass)
        CU(cudaMemcpy(mass, ms, LHT * sizeof(float), cudaMemcpyDeviceToHost), "copy mass");
#undef TRY
#undef CU
    return 0;
}
