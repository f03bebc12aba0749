/* metrics.h - what attention statistics say about a prompt: entropy,
 * normalised entropy, received mass with the causal-visibility correction,
 * head summaries, and their aggregation over heads, layers and blocks.
 *
 * Notation (formats/tensor-stream.md §5): L layers, H heads, T tokens;
 * p[h,i,j] the probability query i gives key j in head h.
 *
 *   entropy[l,h,i]      = -sum_j p log p                          (nats)
 *   norm_entropy[l,h,i] = entropy / log(visible[l,i]); 0 when visible <= 1
 *   mass[l,h,j]         = sum_i p[h,i,j]                          (raw)
 *   seers(j)            = number of queries i that can see key j under the
 *                         mask (causal, sliding window): T bidirectional,
 *                         T - j causal, min(T, j + w) - j causal with window w
 *   corrected[l,h,j]    = mass[l,h,j] / seers(j)
 *
 * The corrected mass is the mean probability key j receives from the queries
 * that could attend to it: 1/T-scale for every key under uniform
 * bidirectional attention, and not inflated for early keys of a causal
 * prompt merely because more queries see them.
 */
#ifndef AK_METRICS_H
#define AK_METRICS_H

#include "ak.h"
#include "mask.h"
#include "stream.h"

/* Entropy in nats of one probability row of n values; zero entries count 0.
 * Rejects (AK_EDATA) negative or non-finite values and rows whose sum is
 * not within 1e-3 of 1. */
AK_API int ak_row_entropy(const float *p, int64_t n, double *out, ak_err *err);

/* entropy / log(visible); 0 when visible <= 1. */
AK_API double ak_norm_entropy(double entropy_nats, int64_t visible);

/* From full probabilities p[h, T, T] (0 where masked): entropy[h, T] and
 * mass[h, T] (either may be NULL). */
AK_API int ak_from_probs(const float *p, int64_t nh, int64_t T, float *entropy,
                         float *mass, ak_err *err);

/* corrected[j] = mass[j] / seers(j) for one head's row of T keys. */
AK_API void ak_corrected_mass(ak_mask m, const float *mass, int64_t T, float *corrected);

/* The statistics of one document, as attend writes them. Borrowed pointers. */
typedef struct ak_attn_stats {
    int64_t L, H, T;
    const float *entropy;   /* [L,H,T] nats */
    const float *mass;      /* [L,H,T] */
    const int32_t *visible; /* [L,T], or NULL: computed from mask */
    ak_mask mask;
} ak_attn_stats;

/* The mask a document's meta records (attend writes causal and window):
 * absent keys leave m as it is; a value of another kind, or a window
 * outside [0, 2^31), is AK_EDATA. */
AK_API int ak_doc_mask(const ak_doc *d, ak_mask *m, ak_err *err);

/* The segments tensor of d, i32 [T]: 0 with *seg set, or NULL when d has
 * none; AK_EDATA when it has another type or length. */
AK_API int ak_doc_segments(const ak_doc *d, int64_t T, const int32_t **seg, ak_err *err);

/* Borrows attend's statistics from d (attn.entropy, attn.mass f32 [L,H,T],
 * attn.visible i32 [L,T] when present, meta causal / window) and checks
 * them (ak_stats_check).  T must equal the tokens tensor's length. */
AK_API int ak_doc_attn_stats(const ak_doc *d, ak_attn_stats *s, ak_err *err);

/* The layer l of a tensor named attn.probs.<l>, or -1 for other names. */
AK_API long ak_probs_layer(const char *name);

/* Statistics from the full probabilities attend --probs wrote, for documents
 * without attn.entropy / attn.mass. */
typedef struct ak_probs_stats {
    ak_attn_stats s;        /* entropy and mass point into the arrays below */
    float *entropy, *mass;  /* [L, H, T], owned */
    int32_t *layer_id;      /* [L] the model layer of each row */
    int32_t *head_id;       /* [H] the model head of each column (from
                               attn.probs.<l>.heads), or NULL: the index */
} ak_probs_stats;

/* Entropy and mass (ak_from_probs) of every attn.probs.<l> of d with l in
 * l0..l1 (l0 < 0: all), in increasing l, with the mask from d's meta,
 * checked (ak_stats_check).  Every such layer must carry the same heads.
 * Free with ak_probs_stats_free, also after an error. */
AK_API int ak_doc_probs_stats(const ak_doc *d, int64_t l0, int64_t l1, ak_probs_stats *ps,
                              ak_err *err);
AK_API void ak_probs_stats_free(ak_probs_stats *ps);

/* Checks the tensors against each other and the mask: values finite and
 * non-negative, entropy <= log(visible) + 1e-3, visible equal to what the
 * mask implies, each head's mass summing to T within 1e-2 relative. */
AK_API int ak_stats_check(const ak_attn_stats *s, ak_err *err);

/* Per-head summary. */
typedef enum { AK_HEAD_SHARP, AK_HEAD_MIXED, AK_HEAD_DIFFUSE } ak_head_class;

#define AK_SHARP_BELOW 0.35   /* mean normalised entropy below: sharp head */
#define AK_DIFFUSE_ABOVE 0.75 /* mean normalised entropy above: diffuse head */
#define AK_SINK_ABOVE 0.5     /* first-token share above: collapsed head */

typedef struct ak_head_summary {
    double entropy;       /* mean over queries, nats */
    double norm_entropy;  /* mean over queries of normalised entropy */
    double sink_share;    /* mass[0] / sum_j mass[j]: share to the first token */
    ak_head_class cls;
    int sink;             /* sink_share > AK_SINK_ABOVE */
} ak_head_summary;

/* out[L*H]. */
AK_API int ak_head_summaries(const ak_attn_stats *s, ak_head_summary *out, ak_err *err);
AK_API const char *ak_head_class_name(ak_head_class c);

/* Aggregation over heads and layers l0..l1 (inclusive). */
typedef enum { AK_AGG_MEAN, AK_AGG_MAX } ak_agg;

typedef struct ak_token_metrics {
    float *entropy;       /* [T] query entropy, nats */
    float *norm_entropy;  /* [T] */
    float *mass;          /* [T] raw received mass */
    float *corrected;     /* [T] corrected received mass */
} ak_token_metrics;

/* Each output (may be NULL) aggregated over layers l0..l1 and all heads.
 * weights[L*H] (or NULL: all 1) weights heads in a mean (ignored by max). */
AK_API int ak_token_metrics_agg(const ak_attn_stats *s, int64_t l0, int64_t l1,
                                ak_agg agg, const double *weights,
                                ak_token_metrics *out, ak_err *err);

/* Block aggregates over segment ids seg[T] (-1: outside any block):
 * nblocks = max id + 1.  For block b:
 *   count[b] tokens, mean[b] = mean of x over its tokens, sum[b], max[b].
 * Outputs may be NULL; arrays of nblocks.  Empty blocks get 0. */
AK_API int ak_block_count(const int32_t *seg, int64_t T, int64_t *nblocks, ak_err *err);
AK_API int ak_block_agg(const int32_t *seg, int64_t T, const float *x, int64_t nblocks,
                        int64_t *count, float *mean, float *sum, float *max, ak_err *err);

#endif
