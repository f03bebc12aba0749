/* prune_doc.h - one document's pruning, inside the library (not
 * installed): prune.c prepares a struct prune_prep (units, protection,
 * the query span), the policy's scorer (policy.c, the table of policies)
 * fills its scores, and prune.c selects and rewrites the document. */
#ifndef AK_PRUNE_DOC_H
#define AK_PRUNE_DOC_H

#include "attnkit/prune.h"

/* Work arrays for one document, freed together. */
struct prune_work {
    int32_t *unit;
    uint8_t *protect, *keep, *query;
    float *score, *kept_score;
    int64_t *cost;
    float *surprisal;          /* qppl --fine: token.surprisal or from logits */
    float *block_score;        /* qppl: [nblocks] nats */
    uint8_t *scored;           /* qppl: [nblocks] 1 = scored */
    float *unit_score;         /* --unit-score max/top, --sinks: [nunits] */
};

/* What one document's pruning needs, before the selection. */
struct prune_prep {
    ak_tensor *tok, *off, *text;
    int64_t T, nunits, nblocks, total;
    const int32_t *seg;
    const uint8_t *special, *txt;
    size_t tlen;
    const int64_t *o;
    const float *score, *unit_score;
    const float *surprisal;  /* qppl --fine */
    ak_prune_opts opts;
    double keys_per_query;  /* mean keys a query sees (for --global ranks) */
    ak_query_rows query_rows; /* the query policy's rows, as run */
    struct prune_work w;
};

/* One policy: a row of the table in policy.c, which ak_policy_name,
 * ak_policy_uses_layers, ak_policy_uses_agg, ak_policy_scores_tokens and
 * ak_policy_takes read. */
typedef struct ak_policy_def {
    const char *name;
    const char *reads;     /* what the policy reads from a document (or besides it) */
    int layers, agg;       /* takes --layers / --agg */
    int token_scores;      /* scores tokens (--unit-score and --sinks apply) */
    int by_query;          /* ranks by the query span: found even with
                              --no-protect-query, and it must exist */
    const char *options;   /* prune's options that only this policy takes, each
                              followed by a space */
    /* Fills p->score (and p->unit_score, or qppl's block scores) from d;
     * NULL: the selection ranks by position or by chance. */
    int (*score)(const ak_prune_doc_opts *c, ak_doc *d, struct prune_prep *p, ak_err *err);
} ak_policy_def;

/* The row of p (p is a valid ak_policy). */
const ak_policy_def *ak_policy_def_of(ak_policy p);

#endif
