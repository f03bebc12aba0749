/* prune.h - choosing which tokens of a prompt to keep under a budget, and
 * rewriting a document to the kept tokens (formats/tensor-stream.md §5).
 *
 * Three steps, usable separately:
 *   1. a score per token from a policy (ak_prune_scores, ak_query_mass);
 *   2. which tokens are protected (ak_protect_*), which are forced (special
 *      tokens, segments == -1), and the selection under the budget
 *      (ak_prune_select);
 *   3. the document rewritten to the kept tokens (ak_prune_apply).
 */
#ifndef AK_PRUNE_H
#define AK_PRUNE_H

#include "metrics.h"
#include "stream.h"

typedef enum {
    AK_POLICY_SCORE,   /* score.token / score.block written by entropy */
    AK_POLICY_MASS,    /* corrected received mass */
    AK_POLICY_QUERY,   /* mass from the query span's rows of attn.probs.* */
    AK_POLICY_ENTROPY, /* corrected mass, heads weighted by 1 - normalised entropy */
    AK_POLICY_HEAVY,   /* corrected mass plus a window of recent tokens */
    AK_POLICY_RANDOM,  /* seeded uniform scores */
    AK_POLICY_FIRST,   /* keep the beginning */
    AK_POLICY_LAST     /* keep the end */
} ak_policy;

typedef enum { AK_UNIT_TOKEN, AK_UNIT_SENTENCE, AK_UNIT_BLOCK } ak_unit;

AK_API int ak_policy_from_name(const char *s, ak_policy *out);
AK_API const char *ak_policy_name(ak_policy p);
AK_API int ak_unit_from_name(const char *s, ak_unit *out);

typedef struct ak_prune_opts {
    ak_policy policy;
    ak_unit unit;
    double keep_ratio;    /* budget = round(keep_ratio * T); < 0: unset */
    int64_t max_tokens;   /* budget at most this; < 0: unset */
    int64_t recent;       /* heavy: recent tokens kept; < 0: a quarter of the budget */
    uint64_t seed;        /* random */
} ak_prune_opts;

/* Token scores for the attention policies (mass, entropy, heavy) from
 * attend's statistics, over layers l0..l1 aggregated by agg:
 * score[T] = corrected mass (entropy: heads weighted by
 * max(0, 1 - mean normalised entropy of the head)). */
AK_API int ak_prune_scores(const ak_attn_stats *s, ak_policy p, int64_t l0, int64_t l1,
                           ak_agg agg, float *score, ak_err *err);

/* Query-span mass from one layer's probabilities p[nh, T, T]: adds to
 * acc[j] the mean over heads and over query rows i (is_query[i] == 1) of
 * p[h, i, j].  The caller averages over layers.  Returns AK_EDATA when no
 * row is a query. */
AK_API int ak_query_mass(const float *p, int64_t nh, int64_t T, const uint8_t *is_query,
                         float *acc, ak_err *err);

/* Sentence ids per token from the text, by the rule of tokenize --segments
 * sentence (ak_text_blocks, segment.h): a token is in the sentence of its
 * first non-space byte.  Tokens that cover no text (start == end) get -1.
 * offsets[T,2] are byte spans of text. */
AK_API int ak_sentence_ids(const uint8_t *text, size_t len, const int64_t *offsets,
                           int64_t T, int32_t *ids, ak_err *err);

/* Protection marks (protect[T], set to 1, never cleared). */
/* Tokens overlapping a match of the PCRE2 pattern re in text (UTF-8). */
AK_API int ak_protect_regex(const uint8_t *text, size_t len, const int64_t *offsets,
                            int64_t T, const char *re, uint8_t *protect, ak_err *err);
/* Every block (segment) holding a token that overlaps an occurrence of
 * marker in text; a token outside blocks is protected alone. */
AK_API int ak_protect_marker(const uint8_t *text, size_t len, const int64_t *offsets,
                             const int32_t *segments, int64_t T, const char *marker,
                             uint8_t *protect, ak_err *err);
/* The first (which = 0) or last (which = 1) block of segments. */
AK_API void ak_protect_block_end(const int32_t *segments, int64_t T, int which,
                                 uint8_t *protect);

typedef struct ak_prune_input {
    int64_t T;
    const int32_t *unit;      /* [T] unit id per token (token index, sentence or
                                 block id); -1: kept always */
    const uint8_t *special;   /* [T] or NULL: 1 = kept always */
    const uint8_t *protect;   /* [T] or NULL: kept, with its whole unit */
    const float *score;       /* [T] token scores (unit score = mean over the
                                 unit); NULL for random, first, last */
    const float *unit_score;  /* [nunits] or NULL: overrides the mean */
    int64_t nunits;           /* unit ids are < nunits */
    uint64_t doc_hash;        /* mixed into the random seed */
} ak_prune_input;

/* Fills keep[T] (1 = kept) and kept_score[T] (the score of each token's
 * unit under the policy).  Forced and protected tokens are kept even past
 * the budget; the rest of the budget goes to units in order of score
 * (random: seeded order; first/last: position), skipping a unit that does
 * not fit (first/last stop there instead).  Sets *budget. */
AK_API int ak_prune_select(const ak_prune_input *in, const ak_prune_opts *o, uint8_t *keep,
                           float *unit_score_out, int64_t *budget, ak_err *err);

/* Rewrites d to the kept tokens: tokens, offsets, segments, special,
 * token_types and score.token are reduced; keep[T0] (composed with an
 * existing keep when the document was pruned before), dropped[n,2] and
 * dropped.score[n] written; attn.*, kv.*, hidden, hidden.final and logits
 * are removed (they describe the unpruned prompt).  text is unchanged. */
AK_API int ak_prune_apply(ak_doc *d, const uint8_t *keep, const float *token_score,
                          ak_err *err);

/* Borrows attend's statistics from d (attn.entropy, attn.mass f32 [L,H,T],
 * attn.visible i32 [L,T] when present, meta causal / window) and checks
 * them (ak_stats_check).  T must equal the tokens tensor's length. */
AK_API int ak_doc_attn_stats(const ak_doc *d, ak_attn_stats *s, ak_err *err);

/* What the prune program asks of each document. */
typedef struct ak_prune_doc_opts {
    ak_prune_opts o;
    int policy_set;              /* 0: o.policy is score when the document has
                                    score.token, else mass */
    int protect_first, protect_last;
    const char *const *markers;  /* [nmarkers] ak_protect_marker */
    int nmarkers;
    const char *const *regexes;  /* [nregexes] ak_protect_regex */
    int nregexes;
    const char *query_marker, *query_regex; /* the query policy's span (default:
                                               the last block) */
    long l0, l1;                 /* layers for the attention policies; -1: all */
    ak_agg agg;
} ak_prune_doc_opts;

/* Prunes d in place: the units of o.unit, the protected tokens, the scores
 * of the policy, ak_prune_select under the budget and ak_prune_apply; meta
 * prune_policy and prune_budget record what was done. */
AK_API int ak_prune_doc(ak_doc *d, const ak_prune_doc_opts *o, ak_err *err);

/* FNV-1a of a string, for ak_prune_input.doc_hash. */
AK_API uint64_t ak_hash_str(const char *s);

/* The inputs prune reads are sane, before anything is chosen: offsets[T, 2]
 * are spans of text in text order (ak_check_offsets); score.token,
 * score.block, attn.entropy and attn.mass are finite and >= 0; every
 * attn.probs.<l> is finite and in [0, 1 + 1e-5].  Fails naming the document,
 * the tensor and the first bad position. */
AK_API int ak_prune_check_doc(ak_doc *d, ak_err *err);

#endif
