/* select.c - which units a budget keeps: the budget, the ranking, the
 * knapsack, and the shares of one budget over many documents (see
 * select.h). */
#include "attnkit/select.h"
#include "attnkit/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t ak_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

typedef struct unit_info {
    int64_t id, size, first, last; /* size: cost in the budget's units */
    int64_t units;                 /* tokens */
    double score;
    int forced;   /* protected */
    int recent;   /* heavy: inside the recent window */
} unit_info;

static int unit_cmp(const void *pa, const void *pb)
{
    const unit_info *a = pa, *b = pb;
    if (a->recent != b->recent)
        return b->recent - a->recent;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* 0/1 knapsack over the candidate units c[0..n) (in ranking order) with
 * fills 0..R: reach[f] is the best score of a subset costing exactly f
 * (-1: none), choice bits say which unit reached each fill first.  Marks
 * the chosen units' take[] and returns the fill, or -1 when the problem
 * is too large (the caller goes greedy). */
static int64_t knapsack(const unit_info *c, int64_t n, int64_t R, uint8_t *take, ak_err *err)
{
    if (R <= 0 || n == 0)
        return 0;
    if ((double)n * (double)(R + 1) > (double)(1 << 28))
        return -1;
    size_t row = (size_t)(R + 1 + 7) / 8;
    double *best = malloc(sizeof *best * (size_t)(R + 1));
    uint8_t *bits = calloc((size_t)n, row);
    if (!best || !bits) {
        free(best);
        free(bits);
        ak_fail(err, AK_ENOMEM, "out of memory for the knapsack (%lld units, budget %lld)",
                (long long)n, (long long)R);
        return -2;
    }
    best[0] = 0;
    for (int64_t f = 1; f <= R; f++)
        best[f] = -1;
    /* Scores may be negative (a cosine): shifted per token to >= 0, which
     * adds shift x tokens to every set, the same for every set of one fill
     * when the budget counts the stream's tokens, and keeps -1 the mark of
     * an unreached fill. */
    double shift = 0;
    for (int64_t k = 0; k < n; k++)
        if (-c[k].score > shift)
            shift = -c[k].score;
    for (int64_t k = 0; k < n; k++) {
        int64_t w = c[k].size;
        double v = (c[k].score + shift) * (double)c[k].units + 1e-300; /* > 0: any unit beats none */
        uint8_t *bk = bits + (size_t)k * row;
        for (int64_t f = R; f >= w; f--)
            if (best[f - w] >= 0 && best[f - w] + v > best[f]) {
                best[f] = best[f - w] + v;
                bk[f >> 3] |= (uint8_t)(1u << (f & 7));
            }
    }
    int64_t fill = R;
    while (fill > 0 && best[fill] < 0)
        fill--;
    for (int64_t k = n - 1, f = fill; k >= 0 && f > 0; k--)
        if (bits[(size_t)k * row + (size_t)(f >> 3)] & (1u << (f & 7))) {
            take[c[k].id] = 1;
            f -= c[k].size;
        }
    free(best);
    free(bits);
    return fill;
}

int64_t ak_prune_budget(const ak_prune_input *in, const ak_prune_opts *o, int64_t *total_out)
{
    int64_t total = in->total;
    if (total <= 0) {
        total = 0;
        for (int64_t i = 0; i < in->T; i++)
            total += in->cost ? in->cost[i] : 1;
    }
    int64_t budget = total;
    if (in->budget_set) {
        budget = in->budget;
    } else {
        if (o->keep_ratio >= 0)
            budget = (int64_t)floor(o->keep_ratio * (double)total + 0.5);
        if (o->max_tokens >= 0 && o->max_tokens < budget)
            budget = o->max_tokens;
    }
    *total_out = total;
    return budget;
}

int ak_prune_select(const ak_prune_input *in, const ak_prune_opts *o, uint8_t *keep,
                    float *unit_score_out, ak_prune_result *res, ak_err *err)
{
    int64_t T = in->T, nu = in->nunits;
    int need_score = o->policy != AK_POLICY_RANDOM && o->policy != AK_POLICY_FIRST &&
                     o->policy != AK_POLICY_LAST;
    if (need_score && !in->score && !in->unit_score)
        return ak_fail(err, AK_EINTERNAL, "policy %s without scores", ak_policy_name(o->policy));
    int64_t total;
    int64_t budget = ak_prune_budget(in, o, &total);
    memset(res, 0, sizeof *res);
    res->budget = budget;
    res->total = total;

    unit_info *u = calloc((size_t)nu + 1, sizeof *u);
    if (!u)
        return ak_fail(err, AK_ENOMEM, "out of memory for %lld units", (long long)nu);
    for (int64_t k = 0; k < nu; k++) {
        u[k].id = k;
        u[k].first = -1;
    }
    int64_t used = 0;
    for (int64_t i = 0; i < T; i++) {
        keep[i] = 0;
        int32_t k = in->unit[i];
        int64_t cost = in->cost ? in->cost[i] : 1;
        if (k < -1 || k >= nu) {
            free(u);
            return ak_fail(err, AK_EDATA, "unit id %d of token %lld outside 0-%lld", k,
                           (long long)i, (long long)(nu - 1));
        }
        if (k < 0 || (in->special && in->special[i])) {
            keep[i] = 1;
            used += cost;
            continue;
        }
        unit_info *x = &u[k];
        if (x->first < 0)
            x->first = i;
        x->last = i;
        x->size += cost;
        x->units++;
        if (in->score)
            x->score += in->score[i];
        if (in->protect && in->protect[i])
            x->forced = 1;
    }
    uint64_t rng = o->seed ^ in->doc_hash;
    for (int64_t k = 0; k < nu; k++) {
        unit_info *x = &u[k];
        switch (o->policy) {
        case AK_POLICY_RANDOM: x->score = (double)(ak_rng_next(&rng) >> 11) * 0x1p-53; break;
        case AK_POLICY_FIRST: x->score = -(double)x->first; break;
        case AK_POLICY_LAST: x->score = (double)x->last; break;
        default:
            if (in->unit_score)
                x->score = in->unit_score[k];
            else
                x->score = x->units ? x->score / (double)x->units : 0;
        }
        if (x->forced && x->units) {
            used += x->size;
            x->size = 0; /* taken; marked below */
            x->units = 0;
        }
    }
    if (o->policy == AK_POLICY_HEAVY) {
        /* the recent window: the last `recent` selectable tokens */
        int64_t recent = o->recent >= 0 ? o->recent : budget / 4, seen = 0;
        for (int64_t i = T - 1; i >= 0 && seen < recent; i--) {
            int32_t k = in->unit[i];
            if (k < 0 || (in->special && in->special[i]) || u[k].forced)
                continue;
            u[k].recent = 1;
            seen++;
        }
    }
    /* forced units: mark before sorting (sorting reorders u) */
    for (int64_t i = 0; i < T; i++) {
        int32_t k = in->unit[i];
        if (k >= 0 && u[k].forced)
            keep[i] = 1;
    }
    float *uscore = malloc(sizeof *uscore * ((size_t)nu + 1));
    uint8_t *take = calloc((size_t)nu + 1, 1);
    if (!uscore || !take) {
        free(u);
        free(uscore);
        free(take);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    for (int64_t k = 0; k < nu; k++)
        uscore[k] = (float)u[k].score;
    qsort(u, (size_t)nu, sizeof *u, unit_cmp);
    /* the candidates (not forced, not empty) first, in ranking order */
    int64_t nc = 0, big = 0;
    for (int64_t r = 0; r < nu; r++)
        if (!u[r].forced && u[r].units > 0) {
            big |= u[r].size != 1;
            u[nc++] = u[r];
        }
    int positional = o->policy == AK_POLICY_FIRST || o->policy == AK_POLICY_LAST ||
                     o->policy == AK_POLICY_HEAVY;
    /* Words and tokens: the knapsack fills the budget exactly.  Sentences
     * and blocks are taken whole in ranking order, skipping one that does
     * not fit: a fill-first knapsack over a few large units would choose
     * them by size, not by score. */
    int coarse = o->unit == AK_UNIT_SENTENCE || o->unit == AK_UNIT_BLOCK;
    int64_t fill = -1, room = budget - used;
    if (big && !positional && !coarse) {
        fill = knapsack(u, nc, room, take, err);
        if (fill == -2) {
            free(u);
            free(uscore);
            free(take);
            return err->code;
        }
    }
    if (fill >= 0) {
        used += fill;
        res->exact = 1;
    } else {
        for (int64_t r = 0; r < nc; r++) {
            if (used + u[r].size <= budget) {
                used += u[r].size;
                take[u[r].id] = 1;
            } else if (positional && o->policy != AK_POLICY_HEAVY) {
                break;
            }
        }
        res->exact = !big;
    }
    for (int64_t i = 0; i < T; i++) {
        int32_t k = in->unit[i];
        if (k >= 0 && take[k])
            keep[i] = 1;
        if (unit_score_out)
            unit_score_out[i] = k >= 0 ? uscore[k] : 0.0f;
    }
    res->kept = used;
    free(u);
    free(uscore);
    free(take);
    return 0;
}

void ak_global_budgets(const double *score, const int64_t *size, const int64_t *floor_, size_t n,
                       int64_t budget, int64_t *out)
{
    size_t *order = malloc(sizeof *order * (n + 1));
    double *want = malloc(sizeof *want * (n + 1));
    if (!order || !want) { /* no memory: the same ratio for all */
        int64_t tot = 0;
        for (size_t i = 0; i < n; i++)
            tot += size[i];
        for (size_t i = 0; i < n; i++)
            out[i] = tot ? (int64_t)((double)budget * (double)size[i] / (double)tot) : 0;
        free(order);
        free(want);
        return;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = 1; i < n; i++) /* insertion sort by score, stable */
        for (size_t j = i; j > 0 && score[order[j]] > score[order[j - 1]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    double wsum = 0;
    for (size_t r = 0; r < n; r++) {
        double wt = n > 1 ? 1 + 0.5 * (1 - 2.0 * (double)r / (double)(n - 1)) : 1;
        want[order[r]] = wt * (double)size[order[r]];
        wsum += want[order[r]];
    }
    int64_t left = budget;
    for (size_t i = 0; i < n; i++) { /* what each keeps anyway comes first */
        out[i] = floor_[i] < size[i] ? floor_[i] : size[i];
        left -= out[i];
    }
    double carry = 0;
    for (size_t r = 0; r < n && left > 0; r++) {
        size_t i = order[r];
        double share = wsum > 0 ? want[i] / wsum * (double)(budget > 0 ? budget : 0) : 0;
        int64_t extra = (int64_t)floor(share + carry - (double)out[i] + 0.5);
        if (extra < 0)
            extra = 0;
        if (extra > size[i] - out[i])
            extra = size[i] - out[i];
        if (extra > left)
            extra = left;
        carry += share - (double)(out[i] + extra);
        if (carry < 0)
            carry = 0;
        out[i] += extra;
        left -= extra;
    }
    for (size_t r = 0; r < n && left > 0; r++) { /* what is left, down the ranking */
        size_t i = order[r];
        int64_t extra = size[i] - out[i] < left ? size[i] - out[i] : left;
        out[i] += extra;
        left -= extra;
    }
    free(order);
    free(want);
}
