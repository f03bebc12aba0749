/* policy.h - the pruning policies: what each is called, what it reads and
 * which of prune's options it takes (one table, lib/analysis/policy.c), and the
 * attention scores they are built on.  prune.h selects and rewrites by
 * them. */
#ifndef AK_POLICY_H
#define AK_POLICY_H

#include "ak.h"
#include "metrics.h"

typedef enum {
    AK_POLICY_SCORE,   /* score.token / score.block written by entropy */
    AK_POLICY_MASS,    /* corrected received mass */
    AK_POLICY_QUERY,   /* mass from the query span's rows of attn.probs.* */
    AK_POLICY_ENTROPY, /* corrected mass, heads weighted by 1 - normalised entropy */
    AK_POLICY_HEAVY,   /* corrected mass plus a window of recent tokens */
    AK_POLICY_RANDOM,  /* seeded uniform scores */
    AK_POLICY_FIRST,   /* keep the beginning */
    AK_POLICY_LAST,    /* keep the end */
    AK_POLICY_SIMILARITY /* blocks by an encoder's cosine to the query span (prune_embed.h) */,
    AK_POLICY_SURPRISAL, /* token.surprisal: Selective Context's self-information */
    AK_POLICY_QPPL     /* blocks by log p(question | block) - log p(question) (LongLLMLingua) */
} ak_policy;

typedef enum { AK_UNIT_TOKEN, AK_UNIT_SENTENCE, AK_UNIT_BLOCK, AK_UNIT_WORD } ak_unit;

AK_API int ak_policy_from_name(const char *s, ak_policy *out);
/* NULL for a value outside the enum */
AK_API const char *ak_policy_name(ak_policy p);
/* Which policies read --layers (a layer range of the attention statistics)
 * and --agg (an aggregation over heads and layers): the one rule that
 * prune's usage check and ak_prune_doc both ask. */
AK_API int ak_policy_uses_layers(ak_policy p);
AK_API int ak_policy_uses_agg(ak_policy p);
/* Whether the policy scores tokens (score, mass, query, entropy, heavy,
 * surprisal: --unit-score and --sinks apply), and whether option (prune's
 * long option, "--recent") is one that only this policy takes. */
AK_API int ak_policy_scores_tokens(ak_policy p);
AK_API int ak_policy_takes(ak_policy p, const char *option);
AK_API int ak_unit_from_name(const char *s, ak_unit *out);

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

/* The query policy's rows: the question's (attn.probs.<l> over the query
 * span, else attn.mass_last's last W queries), the answer's (attn.mass_gen,
 * the first generated tokens' queries), or both (the mean of the two
 * normalised scores).  AUTO: both when the document has attn.mass_gen,
 * else the question's. */
typedef enum {
    AK_QROWS_AUTO, AK_QROWS_QUESTION, AK_QROWS_ANSWER, AK_QROWS_BOTH
} ak_query_rows;

AK_API int ak_query_rows_from_name(const char *s, ak_query_rows *out);

/* Mass per key from m[L, H, T], the mass each key receives summed over
 * `rows` query rows (attn.mass_last, attn.mass_gen): adds to score[j] the
 * mean over layers l0..l1, heads and rows, so each row weighs 1 as in
 * ak_query_mass.  AK_EDATA when rows <= 0 or l0..l1 is empty. */
AK_API int ak_rows_mass(const float *m, int64_t L, int64_t H, int64_t T, int64_t l0, int64_t l1,
                        double rows, float *score, ak_err *err);

#endif
