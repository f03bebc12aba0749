/* select.h - which of a prompt's units a budget keeps: the budget, the
 * ranking of the units by a policy's scores, the exact knapsack, and, for
 * prune --global, one budget shared out over the documents of a stream. */
#ifndef AK_SELECT_H
#define AK_SELECT_H

#include "ak.h"
#include "policy.h"

typedef struct ak_prune_opts {
    ak_policy policy;
    ak_unit unit;
    double keep_ratio;    /* budget = round(keep_ratio * T); < 0: unset */
    int64_t max_tokens;   /* budget at most this; < 0: unset */
    int64_t recent;       /* heavy: recent tokens kept; < 0: a quarter of the budget */
    uint64_t seed;        /* random */
} ak_prune_opts;

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
    const int64_t *cost;      /* [T] or NULL (all 1): what each token costs in
                                 the budget's units; a unit costs the sum of
                                 its tokens' */
    int64_t total;            /* the document's size in those units (the
                                 budget is keep_ratio * total); 0: the sum of
                                 cost, or T */
    int64_t budget;           /* > 0 or 0 with budget_set: use this budget
                                 instead of keep_ratio / max_tokens */
    int budget_set;
} ak_prune_input;

/* What a selection achieved, in the budget's units. */
typedef struct ak_prune_result {
    int64_t budget, kept, total;
    int exact;                /* 1: the knapsack ran (kept is the largest
                                 reachable fill <= budget); 0: greedy */
} ak_prune_result;

/* The budget of in under o: keep_ratio of the total (rounded), at most
 * max_tokens, or in->budget when budget_set; *total is the document's size
 * in the budget's units (in->total, else the sum of the costs, or T). */
AK_API int64_t ak_prune_budget(const ak_prune_input *in, const ak_prune_opts *o, int64_t *total);

/* Fills keep[T] (1 = kept) and kept_score[T] (the score of each token's
 * unit under the policy).  Forced and protected tokens are kept even past
 * the budget; the rest R of the budget goes to the other units:
 *   - units of cost above 1 (words, sentences, blocks) under the score,
 *     mass, query, entropy and random policies: a 0/1 knapsack by dynamic
 *     programming over the units and the fills 0..R, which keeps the
 *     largest fill <= R that any subset of the units reaches and, among
 *     the subsets reaching it, the one with the most score (unit score x
 *     unit size); exact, O(units x R) time and units x R bits, used up to
 *     2^28 cells;
 *   - otherwise (every unit of cost 1, heavy, first, last, or a problem
 *     too large): units in order of score (random: seeded order;
 *     first/last: position), skipping a unit that does not fit (first and
 *     last stop there instead), which is exact when every cost is 1.
 * Fills *res. */
AK_API int ak_prune_select(const ak_prune_input *in, const ak_prune_opts *o, uint8_t *keep,
                           float *unit_score_out, ak_prune_result *res, ak_err *err);

/* prune --global: what each document of a stream gets out of one budget.
 * score[n] ranks the documents (higher first), size[n] is each one's size
 * and floor_[n] what it keeps anyway (forced tokens).  As LongLLMLingua
 * does, the rank sets the document's share: rank r of n gets a weight
 * 1 + 0.5 (1 - 2r / (n - 1)) (1.5 for the best, 0.5 for the worst), shares
 * are size x weight scaled to the budget, capped at size and at least
 * floor_, the excess handed down the ranking.  Fills out[n]. */
AK_API void ak_global_budgets(const double *score, const int64_t *size, const int64_t *floor_,
                              size_t n, int64_t budget, int64_t *out);

/* FNV-1a of a string, for ak_prune_input.doc_hash. */
AK_API uint64_t ak_hash_str(const char *s);

#endif
