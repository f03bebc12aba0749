/* attention.h - scaled dot-product attention that also reports, without
 * materialising the probability matrix, each query's entropy and each key's
 * received mass.
 *
 *   p[h,i,j] = softmax_j( scale * q[i,h,:] . k[j,g(h),:] )  over visible j
 *   out[i,h,:]      = sum_j p[h,i,j] v[j,g(h),:]
 *   entropy[h,i]    = -sum_j p[h,i,j] log p[h,i,j]          (nats)
 *   mass[h,j]       =  sum_i p[h,i,j]                         (received mass)
 *
 * g(h) = h / (n_heads / n_kv_heads) (grouped-query attention).  Query i sits
 * at absolute position q_offset + i; key j at position j, or k_pos[j] when
 * the keys are a cache's kept entries; which keys it sees is mask.h's rule
 * (ak_mask_sees).
 *   mass_last[h,j]  =  sum over the last W queries i of p[h,i,j]
 * is SnapKV's vote of the observation window, in the same O(n_k) memory.
 * Computed with an online softmax (one pass for out and entropy, a second
 * for mass), so memory is linear in the number of keys.
 */
#ifndef AK_ATTENTION_H
#define AK_ATTENTION_H

#include "device.h"
#include "mask.h"

typedef struct ak_attn_shape {
    int n_q;          /* queries */
    int n_k;          /* keys (>= q_offset + n_q when causal) */
    int q_offset;     /* absolute position of query 0 */
    int n_heads;
    int n_kv_heads;   /* divides n_heads */
    int head_dim;
    int causal;
    int window;       /* sliding window size in positions; 0 = none */
    float scale;      /* usually 1/sqrt(head_dim) */
    const int32_t *k_pos; /* [n_k] ascending key positions (a cache after
                             eviction), or NULL: key j at position j */
} ak_attn_shape;

typedef struct ak_attn_out {
    float *out;       /* [n_q, n_heads, head_dim], required */
    float *entropy;   /* [n_heads, n_q] nats, or NULL */
    float *mass;      /* [n_heads, n_k], or NULL */
    float *probs;     /* [n_heads, n_q, n_k] (0 where masked), or NULL */
    float *mass_last; /* [n_heads, n_k] mass from the last last_w queries, or NULL */
    int last_w;
    int last_skip;    /* mass_last leaves out the last last_skip queries: it sums
                         the rows n_q - last_w <= i < n_q - last_skip (a span
                         of rows, as attend --mass-rows asks); 0: none */
} ak_attn_out;

/* q: [n_q, n_heads, head_dim]; k, v: [n_k, n_kv_heads, head_dim]; all f32
 * row-major in host memory.  On AK_DEV_CUDA the library copies to and from
 * the device.  A query that sees no key is an error (cannot happen with
 * causal masks and q_offset + i < n_k).  k_pos and mass_last are computed
 * by the CPU path only: with either, AK_DEV_CUDA falls back to the CPU. */
AK_API int ak_attention(ak_device dev, const ak_attn_shape *s, const float *q,
                        const float *k, const float *v, ak_attn_out *o, ak_err *err);

/* The precision q, k and v are taken in. */
typedef enum { AK_ATTN_F32 = 0, AK_ATTN_BF16 = 1, AK_ATTN_F16 = 2 } ak_attn_dtype;

/* ak_attention with q, k and v first rounded to dt (to nearest, ties to
 * even); products and sums stay f32.  On the CPU the rounded inputs go
 * through the f32 path.  On CUDA, bf16 and f16 run on the tensor cores when
 * head_dim is a multiple of 16 up to 256 (else the f32 kernel on the
 * rounded inputs): scores, entropy, mass and probabilities come from f32
 * scores; out multiplies v by p split into two dt parts (about 16 bits of
 * p), so it matches the CPU to about 1e-5 relative, not bit for bit. */
AK_API int ak_attention_dtype(ak_device dev, ak_attn_dtype dt, const ak_attn_shape *s,
                              const float *q, const float *k, const float *v, ak_attn_out *o,
                              ak_err *err);
/* Rounds n floats in place to dt (what ak_attention_dtype does to its
 * inputs). */
AK_API void ak_round_dtype(float *x, size_t n, ak_attn_dtype dt);

/* Scratch for attention: host buffers, the CPU path's worker threads and,
 * on CUDA, device buffers, grown to the largest shape seen and kept until
 * ak_attn_ws_free, so that repeated calls (every layer of every document)
 * allocate nothing and start no thread.  One workspace serves one call at
 * a time; use one per thread that calls attention. */
typedef struct ak_attn_ws ak_attn_ws;

AK_API int ak_attn_ws_new(ak_attn_ws **ws, ak_err *err);
AK_API void ak_attn_ws_free(ak_attn_ws *ws); /* NULL is fine */

/* ak_attention_dtype in the workspace ws; NULL: a temporary one (what
 * ak_attention and ak_attention_dtype do). */
AK_API int ak_attention_ws(ak_attn_ws *ws, ak_device dev, ak_attn_dtype dt, const ak_attn_shape *s,
                    const float *q, const float *k, const float *v, ak_attn_out *o,
                    ak_err *err);

/* Worker threads of the CPU attention in ws; 0 (the default): one per
 * online CPU.  When more than one runs, OpenBLAS is set once to one thread
 * of its own (its thread count is process-wide).  A model's workspaces take
 * the model's count (ak_model_set_threads). */
AK_API void ak_attn_ws_set_threads(ak_attn_ws *ws, int n);
/* The worker count a setting n means: n when n > 0, else one per online
 * CPU; at most AK_POOL_MAX. */
AK_API int ak_attention_threads(int n);

#endif
