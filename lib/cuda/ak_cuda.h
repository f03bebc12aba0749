/* ak_cuda.h - the CUDA side's entry points, shared by the C code that calls
 * them (lib/attention.c, lib/device.c, bench/) and the .cu files that define
 * them.  Internal: not installed, not exported from libattnkit.so.
 *
 * The device buffers of attention live in an ak_cuda_ws, grown on demand and
 * kept until ak_cuda_ws_free, so repeated calls allocate nothing once the
 * largest shape has been seen.
 */
#ifndef AK_CUDA_AK_CUDA_H
#define AK_CUDA_AK_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

#include "attention.h"

typedef struct ak_cuda_ws ak_cuda_ws;

/* Number of CUDA devices (0 without a driver). */
int ak_cuda_device_count(void);

/* f32 attention (attention.cu).  *ws is created on first use. */
int ak_cuda_attention(ak_cuda_ws **ws, const ak_attn_shape *s, const float *q, const float *k,
                      const float *v, ak_attn_out *o, ak_err *err);
/* The tensor-core attention in dt (AK_ATTN_BF16 or AK_ATTN_F16) on inputs
 * already rounded to dt (attention_tc.cu); head sizes it does not take go
 * to ak_cuda_attention. */
int ak_cuda_attention_tc(ak_cuda_ws **ws, int dt, const ak_attn_shape *s, const float *q,
                         const float *k, const float *v, ak_attn_out *o, ak_err *err);
/* 1 when the tensor-core kernels take this head size. */
int ak_cuda_tc_supported(int head_dim);
/* Frees the device buffers (NULL is fine). */
void ak_cuda_ws_free(ak_cuda_ws *ws);
/* 1: the tensor-core path uses the WMMA kernels for every head size (the
 * register-fragment ones for 64 and 128 otherwise); for tests. */
void ak_cuda_set_wmma(int on);

/* For bench/: both passes timed on device-resident random inputs (median
 * of iters after a warm-up), ms_forward for pass 1 alone. */
int ak_cuda_attention_time(const ak_attn_shape *s, int iters, double *ms_forward,
                           double *ms_both, ak_err *err);
int ak_cuda_attention_tc_time(int dt, int precise, const ak_attn_shape *s, int iters,
                              double *ms_forward, double *ms_both, ak_err *err);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include <cuda_runtime.h>

/* The shape as the kernels take it (by value). */
struct ak_kshape {
    int n_q, n_k, q_off, H, Hkv, Dh, causal, window;
    float scale;
};

static inline ak_kshape ak_kshape_of(const ak_attn_shape *s)
{
    return ak_kshape{s->n_q,     s->n_k,        s->q_offset, s->n_heads, s->n_kv_heads,
                     s->head_dim, s->causal, s->window,   s->scale};
}

/* Keys [lo, hi] the query at position pos sees (mask.h). */
__device__ __forceinline__ void ak_kvisible(const ak_kshape &s, int pos, int &lo, int &hi)
{
    ak_mask_keys_int(s.causal, s.window, pos, s.n_k, &lo, &hi);
}

/* A device buffer and its capacity in bytes. */
struct ak_dbuf {
    void *p;
    size_t cap;
};

/* The buffers one attention call uses: inputs (q, k, v in f32 or in dt), the
 * f32 staging copy the tensor-core path converts from, and the outputs. */
struct ak_cuda_ws {
    ak_dbuf q, k, v, stage, out, m, z, ent, mass, probs;
};

/* Makes b hold at least bytes (contents not kept). */
cudaError_t ak_dbuf_grow(ak_dbuf *b, size_t bytes);
/* Creates *ws when NULL and grows the output buffers (out, row max and sum,
 * entropy, mass, probabilities zeroed) for s and o. */
int ak_cuda_ws_outputs(ak_cuda_ws **ws, const ak_attn_shape *s, const ak_attn_out *o,
                       ak_err *err);
/* Copies out, entropy, mass and probabilities back to o. */
int ak_cuda_copy_back(const ak_cuda_ws *ws, const ak_attn_shape *s, ak_attn_out *o,
                      ak_err *err);
/* ak_fail for a CUDA error: AK_ENOMEM for an allocation, else AK_EINTERNAL. */
int ak_cuda_fail(ak_err *err, cudaError_t e, const char *what);
#endif

#endif
