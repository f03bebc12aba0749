/* ak_cuda.h - the CUDA side's entry points, shared by the C code that calls
 * them (lib/model/attention.c, lib/model/forward.c, lib/model/device.c,
 * bench/, tests/unit/) and the .cu files that define them.  Internal: not
 * installed, not exported from libattnkit.so.
 *
 * The CUDA side is a plugin, libattnkit-cuda.so, which alone links cuBLAS
 * and the CUDA runtime: a program loads it on the first call of ak_cuda()
 * (lib/model/device.c), and only where the machine has the NVIDIA driver,
 * so that a CUDA build costs the programs that never reach a GPU nothing
 * (mapping and relocating those libraries cost every process some 155 MB
 * of resident memory when they were linked in).  The C code calls the
 * functions below through the table ak_cuda() returns, never by name.
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

#include "attnkit/attention.h"

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

/* Attention on device pointers (q, k, v, out in the layouts of
 * attention.h, f32; ent [H, n_q] and mass [H, n_k] or NULL): what the
 * device-resident forward pass calls.  dt AK_ATTN_BF16/F16 rounds q, k, v
 * on the device and runs the tensor-core kernels (head sizes they take),
 * else the f32 kernels.  No copies to or from the host. */
int ak_cuda_attention_dev(ak_cuda_ws **ws, int dt, const ak_attn_shape *s, const float *q,
                          const float *k, const float *v, float *out, float *ent, float *mass,
                          ak_err *err);
/* For tests: ak_cuda_attention_dev on host arrays, through fresh device
 * copies. */
int ak_cuda_attention_dev_host(int dt, const ak_attn_shape *s, const float *q, const float *k,
                               const float *v, float *out, float *ent, float *mass, ak_err *err);
int ak_cuda_attention_f32_dev(ak_cuda_ws **ws, const ak_attn_shape *s, const float *q,
                              const float *k, const float *v, float *out, float *ent,
                              float *mass, ak_err *err);

/* ---- the whole forward pass on the device (forward.cu) -------------------
 * Opt-in (ATTNKIT_CUDA_FORWARD, see lib/model/forward.c) and unverified until a
 * `make gpu-check` run has passed.  lib/model/forward.c describes the model in
 * these terms and uploads every weight once, in f32: matrices as
 * [out, in] row-major (GGUF blocks dequantized on the host, GPT-2's Conv1D
 * transposed, GGUF llama q/k rows put back in Hugging Face's order). */
typedef struct ak_cuda_model ak_cuda_model;

typedef struct ak_cuda_dims {
    int D, H, Hkv, Dh, F, L, V;
    int post_ln;     /* BERT: LN(x + attn), LN(x + MLP) */
    int rms;         /* RMSNorm (llama, gemma3), else LayerNorm */
    int gemma;       /* norms after attention and MLP, before the residual add */
    int act;         /* ak_act (model.h) */
    int causal;
    float eps;
    float softcap;   /* logits = cap * tanh(logits / cap); 0 = none */
    int tf32;        /* 1: GEMMs on the tensor cores in TF32, 0: plain f32 */
} ak_cuda_dims;

/* The weights of a layer (layer 0 .. L-1), and of the model (layer L:
 * AK_CW_FINAL_W, AK_CW_FINAL_B, AK_CW_LM_HEAD).  A bias or norm slot
 * never put is absent. */
enum {
    AK_CW_Q, AK_CW_K, AK_CW_V, AK_CW_O, AK_CW_UP, AK_CW_GATE, AK_CW_DOWN,
    AK_CW_QB, AK_CW_KB, AK_CW_VB, AK_CW_OB, AK_CW_UPB, AK_CW_GATEB, AK_CW_DOWNB,
    AK_CW_NORM1_W, AK_CW_NORM1_B, AK_CW_NORM2_W, AK_CW_NORM2_B,
    AK_CW_POST_ATTN, AK_CW_POST_MLP, AK_CW_QNORM, AK_CW_KNORM, AK_CW_INV_FREQ,
    AK_CW_FINAL_W, AK_CW_FINAL_B, AK_CW_LM_HEAD,
    AK_CW_N
};

int ak_cuda_model_new(ak_cuda_model **out, const ak_cuda_dims *d, ak_err *err);
/* Copies n floats to slot's device copy at float offset off; the first put
 * of a slot allocates total floats for it. */
int ak_cuda_model_put(ak_cuda_model *cm, int layer, int slot, size_t off, const float *src,
                      size_t n, size_t total, ak_err *err);
/* Layer l's sliding window (0 = none) and attention scale. */
void ak_cuda_model_layer(ak_cuda_model *cm, int layer, int window, float scale);
/* Every block over x[T, D] (host; the final hidden states on return, after
 * the final norm), attention in attn_dtype; entropy and mass [L, H, T],
 * logits [T or 1, V] (host, each NULL when not wanted).  The activations
 * stay on the device; the workspace grows to the longest T and is kept. */
int ak_cuda_model_forward(ak_cuda_model *cm, float *x, int T, int attn_dtype, float *entropy,
                          float *mass, float *logits, int logits_all, ak_err *err);
void ak_cuda_model_free(ak_cuda_model *cm);

/* The plugin's entry points, one field per function above. */
typedef struct ak_cuda_api {
    int (*device_count)(void);
    int (*attention)(ak_cuda_ws **ws, const ak_attn_shape *s, const float *q, const float *k,
                     const float *v, ak_attn_out *o, ak_err *err);
    int (*attention_tc)(ak_cuda_ws **ws, int dt, const ak_attn_shape *s, const float *q,
                        const float *k, const float *v, ak_attn_out *o, ak_err *err);
    void (*ws_free)(ak_cuda_ws *ws);
    void (*set_wmma)(int on);
    int (*attention_time)(const ak_attn_shape *s, int iters, double *ms_forward,
                          double *ms_both, ak_err *err);
    int (*attention_tc_time)(int dt, int precise, const ak_attn_shape *s, int iters,
                             double *ms_forward, double *ms_both, ak_err *err);
    int (*attention_dev_host)(int dt, const ak_attn_shape *s, const float *q, const float *k,
                              const float *v, float *out, float *ent, float *mass, ak_err *err);
    int (*model_new)(ak_cuda_model **out, const ak_cuda_dims *d, ak_err *err);
    int (*model_put)(ak_cuda_model *cm, int layer, int slot, size_t off, const float *src,
                     size_t n, size_t total, ak_err *err);
    void (*model_layer)(ak_cuda_model *cm, int layer, int window, float scale);
    int (*model_forward)(ak_cuda_model *cm, float *x, int T, int attn_dtype, float *entropy,
                         float *mass, float *logits, int logits_all, ak_err *err);
    void (*model_free)(ak_cuda_model *cm);
} ak_cuda_api;

/* The version of the table: the plugin and the library that loads it
 * must agree (a plugin from another build is refused). */
#define AK_CUDA_API_VERSION 1

/* The plugin's one exported symbol: its table, when version is
 * AK_CUDA_API_VERSION; NULL otherwise. */
typedef const ak_cuda_api *(*ak_cuda_plugin_fn)(int version);
#define AK_CUDA_PLUGIN_SYMBOL "ak_cuda_plugin_api"

/* The C side (lib/model/device.c): the plugin's table, loaded on the first
 * call; NULL when the machine has no NVIDIA driver or the plugin cannot be
 * loaded (ak_cuda_load_error says which, for --device cuda's message). */
const ak_cuda_api *ak_cuda(void);
const char *ak_cuda_load_error(void);

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
