/* model.h - a transformer read from a Hugging Face directory (config.json
 * and safetensors weights) or from a GGUF file (llama.cpp's format, with
 * quantized weights), and run on the CPU: input embeddings, then every
 * block with attention statistics.
 *
 * Families (lib/model/arch.h maps each architecture name to its family and traits):
 *   bert   BertModel and relatives: word + position + token-type embeddings,
 *          LayerNorm, post-LN blocks, bidirectional attention.
 *   gpt2   learned positions, pre-LN blocks, fused QKV in Conv1D layout
 *          ([in, out], transposed relative to nn.Linear), tied LM head.
 *   llama  llama, mistral, qwen2: RMSNorm, RoPE (default, linear, llama3
 *          scaling), SwiGLU, grouped-query attention, optional QKV bias,
 *          sliding windows, tied or separate LM head.
 *   gemma3 Gemma 3 text models (Gemma3ForCausalLM, or the text model of
 *          Gemma3ForConditionalGeneration): embeddings scaled by sqrt(hidden), RMSNorm
 *          with (1 + w) before and after both attention and MLP, QK-norm,
 *          gated GELU-tanh MLP, query scale query_pre_attn_scalar^-1/2,
 *          sliding-window local layers with their own RoPE base.
 * Safetensors weights are memory-mapped; f32 weights are used in place,
 * f16/bf16 are converted to f32 once at load.  GGUF weights stay as the
 * file stores them (quantized, memory-mapped): the matrix products
 * dequantize tiles of rows as they go.  All arithmetic is f32 (but for
 * the opt-in `fast` setting below: 8-bit activations in generation's
 * products).
 */
#ifndef AK_MODEL_H
#define AK_MODEL_H

#include "device.h"
#include "safetensors.h"
#include "stream.h"

typedef enum { AK_FAMILY_BERT, AK_FAMILY_GPT2, AK_FAMILY_LLAMA, AK_FAMILY_GEMMA3 } ak_family;
typedef enum { AK_ACT_GELU_ERF, AK_ACT_GELU_TANH, AK_ACT_SILU, AK_ACT_RELU } ak_act;
typedef enum { AK_ROPE_NONE, AK_ROPE_DEFAULT, AK_ROPE_LINEAR, AK_ROPE_LLAMA3 } ak_rope_type;

/* y[T, out] = x[T, in] W^T + b, with W either [out, in] (nn.Linear) or
 * [in, out] (GPT-2 Conv1D, in_out = 1); ldw is W's row stride, so a slice
 * of a fused matrix is a linear of its own.  A GGUF weight that is not f32
 * stays in its ggml type: wq is row 0 of [out, in] (in_out = 0), row r
 * lies row_bytes further on per row, and w is NULL. */
typedef struct ak_linear {
    const float *w;
    const float *b;      /* [out] or NULL */
    int in, out, ldw, in_out;
    int type;            /* ggml type of wq (quant.h) */
    const void *wq;      /* quantized rows, or NULL when w is used */
    size_t row_bytes;
} ak_linear;

typedef struct ak_layer {
    ak_linear q, k, v, o;
    ak_linear up, gate, down;    /* gate only for SwiGLU */
    const float *norm1_w, *norm1_b, *norm2_w, *norm2_b; /* bert: after attn, after mlp */
    /* gemma3: norms after attention and after the MLP, and the per-head
     * QK-norm over head_dim; every Gemma norm weight is held as (1 + w). */
    const float *post_attn_norm_w, *post_mlp_norm_w, *q_norm_w, *k_norm_w;
    const float *inv_freq;       /* this layer's RoPE frequencies (the model's, or gemma3's local ones) */
    int window;                  /* sliding window in positions; 0 = none */
} ak_layer;

struct ak_workspace;

typedef struct ak_model {
    ak_family family;
    char arch[64];               /* config's model_type */
    char name[256];              /* the model directory's (or GGUF file's) base name */
    uint32_t config_crc32;       /* CRC-32 of config.json, or of a GGUF file's
                                    header, metadata and tensor infos: the model's identity */
    int vocab_size, hidden_size, n_layers, n_heads, n_kv_heads, head_dim;
    int intermediate_size, max_positions, type_vocab_size;
    int causal;
    ak_act act;
    float norm_eps;
    float attn_scale;            /* per layer for gpt2's inverse-layer option: see attn_scale_by_layer */
    int attn_scale_by_layer;
    ak_rope_type rope;
    float *inv_freq;             /* [head_dim / 2] RoPE frequencies after scaling */
    float *inv_freq_local;       /* gemma3's sliding layers' frequencies, or NULL */
    float emb_scale;             /* gemma3: embeddings times sqrt(hidden); 0 = none */
    float logit_softcap;         /* logits = cap * tanh(logits / cap); 0 = none */
    int qk_interleaved;          /* GGUF llama: q/k rows in RoPE pairs (2i, 2i+1) per
                                    head, put back in Hugging Face's order after projection */

    const float *tok_emb;        /* [V, D], or NULL when tok_q holds the table */
    ak_linear tok_q;             /* a GGUF embedding table in its ggml type: rows are tokens */
    const float *pos_emb;        /* [P, D] or NULL */
    const float *type_emb;       /* [types, D] or NULL */
    const float *emb_norm_w, *emb_norm_b;   /* bert */
    const float *final_norm_w, *final_norm_b;
    ak_linear lm_head;           /* w NULL when the model has none */
    ak_layer *layers;

    ak_safetensors st;
    struct ak_gguf *gguf;        /* a GGUF model's file, else NULL */
    float **owned;               /* converted weights */
    size_t nowned;
    struct ak_workspace *ws;     /* the forward pass's buffers, grown to the longest input */
    /* how the forward pass runs, 0 after ak_model_load (ak_model_set_*) */
    int threads;                 /* CPU workers; 0: one per online CPU */
    int cuda_forward;            /* 0 off, 1 TF32 GEMMs, 2 f32 GEMMs */
    void (*progress)(void *ctx, int T, int layer, int layers);
    void *progress_ctx;
    int fast;                    /* 1: the products of up to 8 tokens (generation) take
                                    8-bit activations and integer dots (quant.h's fast
                                    dots, --fast; ak_model_set_fast); logits then differ
                                    from the exact ones.  0: f32 activations, exact */
} ak_model;

/* Reads a model: a GGUF file (or a directory holding one, see
 * ak_gguf_locate), else dir/config.json and the safetensors weights;
 * checks every tensor's shape.  An architecture or tensor type it cannot
 * run is AK_ECONFIG naming it. */
AK_API int ak_model_load(ak_model **out, const char *dir, ak_err *err);
AK_API void ak_model_free(ak_model *m);

/* The stream header's model identity: name, arch, vocab_size. */
AK_API int ak_model_identity(const ak_model *m, ak_metamap *id, ak_err *err);
/* Refuses a stream made for another model: compares the identity keys
 * both sides have (name, arch, vocab_size). */
AK_API int ak_model_check_identity(const ak_model *m, const ak_metamap *id, ak_err *err);

/* hidden[T, D] = the input embeddings of ids (and token types, or NULL for
 * all zero) at positions 0..T-1.  Ids and types are range-checked. */
AK_API int ak_model_embed(const ak_model *m, const int32_t *ids, const int32_t *types, int T,
                          float *hidden, ak_err *err);
/* The same at positions pos0 .. pos0+T-1 (tokens after a cache's). */
AK_API int ak_model_embed_at(const ak_model *m, const int32_t *ids, const int32_t *types, int T,
                             int pos0, float *hidden, ak_err *err);

/* What a forward pass reports; NULL pointers are not computed. */
typedef struct ak_forward_out {
    float *entropy;          /* [L, H, T] */
    float *mass;             /* [L, H, T] */
    int32_t *visible;        /* [L, T] */
    float **probs;           /* [L] pointers, each NULL or [h, T, T] for the
                                heads in probs_heads (all H when it is NULL) */
    const unsigned char *probs_heads; /* [H] 1 = keep; NULL = all heads */
    float *kv_k, *kv_v;      /* [L, Hkv, T, Dh] */
    float *logits;           /* [T or 1, V] */
    int logits_all;          /* 1: all positions, 0: the last only */
    int attn_dtype;          /* ak_attn_dtype the attention takes q, k, v in
                                (0 = f32; bf16/f16 use the GPU's tensor cores) */
    float *mass_last;        /* [L, H, T] mass received from the last last_w
                                queries (SnapKV's observation window), or NULL */
    int last_w;
    int last_skip;           /* ak_forward without a cache: mass_last leaves out
                                the last last_skip of those queries (rows
                                T - last_w <= i < T - last_skip); 0: none */
    float *mass_cached;      /* ak_kvcache_forward only: see kvcache.h */
} ak_forward_out;

/* Runs every block over hidden[T, D] in place: on return it holds the final
 * hidden states (after the final norm where the model has one).  Uses the
 * model's workspace, so one model runs one forward pass at a time. */
AK_API int ak_model_forward(const ak_model *m, ak_device dev, float *hidden, int T,
                     ak_forward_out *o, ak_err *err);

/* logits[rows, nv] = the language-model head's logits for vocabulary
 * entries v0 .. v0+nv-1 of final hidden states hidden[rows, D] (what
 * ak_model_forward leaves), the model's softcap applied: the full [T, V]
 * need not be held at once.  AK_ECONFIG without a head. */
AK_API int ak_model_logits(const ak_model *m, const float *hidden, int rows, int v0, int nv,
                           float *logits, ak_err *err);

/* m's whole forward pass on the CUDA device for AK_DEV_CUDA (otherwise
 * only the attention runs there): 0 off (the default), 1 on with TF32
 * tensor-core GEMMs, 2 on with f32 GEMMs.  Opt-in and unverified until a
 * `make gpu-check` run has passed; a cache, probabilities, keys and values
 * and last-W mass still take the CPU path.  No effect without CUDA.  The
 * programs set it from $ATTNKIT_CUDA_FORWARD. */
AK_API void ak_model_set_cuda_forward(ak_model *m, int mode);

/* The CPU worker threads of m's forward pass (its matrix products and its
 * attention); 0 (the default): one per online CPU.  The programs set it
 * from $ATTNKIT_THREADS. */
AK_API void ak_model_set_threads(ak_model *m, int n);

/* Progress of m's forward passes: fn(ctx, T, l, L) after layer l (1..L) of
 * a pass over T tokens, from the thread that called the pass (a pass on
 * the device reports l = L once).  NULL (the default) reports nothing.
 * The programs set it for a progress line (ak_cli_progress). */
AK_API void ak_model_set_progress(ak_model *m, void (*fn)(void *ctx, int T, int layer, int layers),
                                  void *ctx);

/* 1: m's matrix products of up to 8 tokens (generation; a short prompt;
 * the head of the last position) take 8-bit activations and integer dots
 * on quantized GGUF weights (lib/format/quant.h's fast dots), as
 * llama.cpp does: faster, not exact (logits move by the activations'
 * rounding, bench/RESULTS.md).  0 (the default): f32 activations, exact.
 * The programs set it from --fast. */
AK_API void ak_model_set_fast(ak_model *m, int on);

/* Rows r0 .. r0+n-1 of l as dense f32 [n, l->in] (forward.c; what the
 * device forward pass uploads): GGUF blocks dequantized, a Conv1D ([in,
 * out]) weight transposed.  rope_dh > 0: row h*rope_dh + i is read from
 * where GGUF llama keeps it (RoPE pairs 2i, 2i+1 per head), i.e. the rows
 * in Hugging Face's rotate_half order, so no deinterleave is needed after
 * the product.  ak_linear_source_row gives that source row (a bias's too). */
void ak_linear_rows_f32(const ak_linear *l, int r0, int n, int rope_dh, float *dst);
int ak_linear_source_row(int r, int rope_dh);

/* y = LayerNorm(x) row by row (y may be x). */
AK_API void ak_layernorm(float *y, const float *x, int T, int D, const float *w, const float *b,
                         float eps);

/* Frees a forward workspace (forward.c; ak_model_free calls it). */
void ak_workspace_free(struct ak_workspace *ws);

/* Key j visible to query i under layer l's mask. */
AK_API int ak_model_visible(const ak_model *m, int layer, int i, int j);

#endif
