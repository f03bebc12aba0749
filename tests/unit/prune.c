/* Unit tests of lib/analysis/prune.c: budgets, every policy's selection, protected
 * spans surviving each policy, units, sentence splitting, marker and regex
 * protection, and the rewritten document (keep mask, dropped spans,
 * composition of two prunes). */
#include "attnkit/prune.h"
#include "test.h"

#include <string.h>

#define T10 10
/* [CLS] t1..t8 [SEP]: scores chosen so the top three are t2, t5, t7 */
static const float SC10[T10] = {9, 0.1f, 0.9f, 0.2f, 0.3f, 0.8f, 0.25f, 0.7f, 0.15f, 9};
static const uint8_t SP10[T10] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static void units_token(int32_t *u, int64_t T)
{
    for (int64_t i = 0; i < T; i++)
        u[i] = (int32_t)i;
}

static int kept_count(const uint8_t *k, int64_t T)
{
    int n = 0;
    for (int64_t i = 0; i < T; i++)
        n += k[i] != 0;
    return n;
}

static void test_budget_and_mass(void)
{
    ak_err err;
    int32_t u[T10];
    uint8_t keep[T10];
    float ks[T10];
    ak_prune_result budget;
    units_token(u, T10);
    ak_prune_input in = {.T = T10, .unit = u, .special = SP10, .score = SC10, .nunits = T10};
    ak_prune_opts o = {.policy = AK_POLICY_MASS, .keep_ratio = 0.5, .max_tokens = -1,
                       .recent = -1};
    CHECK(ak_prune_select(&in, &o, keep, ks, &budget, &err) == 0 && budget.budget == 5,
          "keep 0.5 of 10 tokens: budget 5");
    uint8_t want[T10] = {1, 0, 1, 0, 0, 1, 0, 1, 0, 1};
    CHECK(memcmp(keep, want, sizeof want) == 0, "specials plus the three best tokens kept");
    CHECK(ks[2] == SC10[2] && ks[1] == SC10[1], "kept_score is each token's score");
    o.max_tokens = 3;
    ak_prune_select(&in, &o, keep, ks, &budget, &err);
    CHECK(budget.budget == 3 && kept_count(keep, T10) == 3 && keep[2], "--max-tokens 3 tightens it");
    o.max_tokens = 0;
    ak_prune_select(&in, &o, keep, ks, &budget, &err);
    CHECK(kept_count(keep, T10) == 2 && keep[0] && keep[9],
          "budget 0: special tokens still kept");
    o.keep_ratio = 1;
    o.max_tokens = -1;
    ak_prune_select(&in, &o, keep, ks, &budget, &err);
    CHECK(kept_count(keep, T10) == T10, "keep 1: everything kept");
}

static void test_baselines(void)
{
    ak_err err;
    int32_t u[T10];
    uint8_t keep[T10], k2[T10];
    ak_prune_result budget;
    units_token(u, T10);
    ak_prune_input in = {.T = T10, .unit = u, .special = SP10, .nunits = T10};
    ak_prune_opts o = {.policy = AK_POLICY_FIRST, .keep_ratio = 0.5, .max_tokens = -1,
                       .recent = -1, .seed = 1};
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    uint8_t first[T10] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 1};
    CHECK(memcmp(keep, first, T10) == 0, "first: t1 t2 t3 kept");
    o.policy = AK_POLICY_LAST;
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    uint8_t last[T10] = {1, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    CHECK(memcmp(keep, last, T10) == 0, "last: t6 t7 t8 kept");
    o.policy = AK_POLICY_RANDOM;
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    ak_prune_select(&in, &o, k2, NULL, &budget, &err);
    CHECK(kept_count(keep, T10) == 5 && memcmp(keep, k2, T10) == 0,
          "random: exactly the budget, the same for the same seed");
    int differ = 0;
    for (uint64_t seed = 2; seed < 12; seed++) {
        o.seed = seed;
        ak_prune_select(&in, &o, k2, NULL, &budget, &err);
        differ |= memcmp(keep, k2, T10) != 0;
    }
    CHECK(differ, "random: other seeds choose differently");
    /* heavy: recent 2 keeps t7 t8 whatever their scores, then t2 (0.9) */
    o.policy = AK_POLICY_HEAVY;
    o.recent = 2;
    in.score = SC10;
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    uint8_t heavy[T10] = {1, 0, 1, 0, 0, 0, 0, 1, 1, 1};
    CHECK(memcmp(keep, heavy, T10) == 0, "heavy: recent t7 t8 plus heavy hitter t2");
}

/* Protected t4 (score 0.3, never chosen at keep 0.5 by mass, outside first
 * and last 3, and given a low random rank or not) survives every policy. */
static void test_protect_every_policy(void)
{
    ak_err err;
    int32_t u[T10];
    uint8_t keep[T10], prot[T10] = {0};
    ak_prune_result budget;
    units_token(u, T10);
    prot[4] = 1;
    ak_prune_input in = {.T = T10, .unit = u, .special = SP10, .protect = prot, .score = SC10,
                         .nunits = T10};
    for (int p = AK_POLICY_SCORE; p <= AK_POLICY_LAST; p++) {
        ak_prune_opts o = {.policy = (ak_policy)p, .keep_ratio = 0.5, .max_tokens = -1,
                           .recent = -1, .seed = 7};
        int rc = ak_prune_select(&in, &o, keep, NULL, &budget, &err);
        CHECK(rc == 0 && keep[4] && keep[0] && keep[9] && kept_count(keep, T10) <= 5,
              "policy %s: protected token and specials kept, budget held",
              ak_policy_name((ak_policy)p));
    }
    /* protected past the budget: all kept anyway */
    memset(prot, 1, sizeof prot);
    ak_prune_opts o = {.policy = AK_POLICY_MASS, .keep_ratio = 0.1, .max_tokens = -1,
                       .recent = -1};
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    CHECK(kept_count(keep, T10) == T10, "protection beats the budget");
}

static void test_blocks(void)
{
    ak_err err;
    /* [CLS] b0 b0 b1 b1 b1 b1 b2 b2 [SEP]; block means: b0 .5, b1 .1, b2 .9 */
    int32_t seg[T10] = {-1, 0, 0, 1, 1, 1, 1, 2, 2, -1};
    float sc[T10] = {0, .5f, .5f, .1f, .1f, .1f, .1f, .9f, .9f, 0};
    uint8_t keep[T10], prot[T10] = {0};
    ak_prune_result budget;
    ak_prune_input in = {.T = T10, .unit = seg, .score = sc, .nunits = 3};
    ak_prune_opts o = {.policy = AK_POLICY_MASS, .unit = AK_UNIT_BLOCK, .keep_ratio = 0.6,
                       .max_tokens = -1, .recent = -1};
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    uint8_t want[T10] = {1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    CHECK(budget.budget == 6 && memcmp(keep, want, T10) == 0, "block units: b2 then b0 fit in 6");
    /* block b1 does not fit in 5: first stops there, mass skips it */
    o.policy = AK_POLICY_FIRST;
    o.keep_ratio = 0.7; /* budget 7: specials 2 + b0 2 = 4, b1 (4) does not fit */
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    uint8_t wfirst[T10] = {1, 1, 1, 0, 0, 0, 0, 0, 0, 1};
    CHECK(memcmp(keep, wfirst, T10) == 0, "first stops at the block that does not fit");
    o.policy = AK_POLICY_MASS;
    prot[4] = 1; /* one token protects its whole block */
    in.protect = prot;
    o.keep_ratio = 0.8; /* specials 2 + protected b1 4 + b2 2 */
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    CHECK(keep[3] && keep[4] && keep[5] && keep[6] && keep[7] && keep[8] && !keep[1],
          "a protected token keeps its block; b2 fills the rest");
    float us[3] = {1, 0, 0.5f};
    in.unit_score = us;
    in.protect = NULL;
    o.keep_ratio = 0.4;
    ak_prune_select(&in, &o, keep, NULL, &budget, &err);
    CHECK(keep[1] && keep[2] && !keep[7], "score.block overrides token means");
}

static void test_sentences(void)
{
    ak_err err;
    const char *text = "Hello there. How are you? Fine.\n\nNext para e.g. this";
    /* words as tokens, plus a zero-width special at 0 */
    int64_t off[][2] = {{0, 0}, {0, 5}, {6, 11}, {11, 12}, {13, 16}, {17, 20}, {21, 24},
                        {24, 25}, {26, 30}, {30, 31}, {33, 37}, {38, 42}, {43, 47}, {48, 52}};
    int32_t ids[14];
    CHECK(ak_sentence_ids((const uint8_t *)text, strlen(text), &off[0][0], 14, ids, &err) == 0,
          "sentence split");
    int32_t want[14] = {-1, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4};
    int ok = memcmp(ids, want, sizeof want) == 0;
    CHECK(ok, "sentences end at '. ', '? ' and blank lines (and after 'e.g. ')");
    if (!ok)
        for (int i = 0; i < 14; i++)
            printf("# token %d sentence %d\n", i, ids[i]);
    int64_t bad[][2] = {{0, 99}};
    CHECK(ak_sentence_ids((const uint8_t *)text, strlen(text), &bad[0][0], 1, ids, &err) ==
              AK_EDATA, "offsets past the text rejected: %s", err.msg);
}

static void test_protect_text(void)
{
    ak_err err;
    const char *text = "Context one. Context two. Question: why?";
    int64_t off[][2] = {{0, 0}, {0, 7}, {8, 12}, {13, 20}, {21, 25}, {26, 35}, {36, 39},
                        {39, 40}, {40, 40}};
    int32_t seg[9] = {-1, 0, 0, 1, 1, 2, 2, 2, -1};
    uint8_t p[9] = {0};
    size_t n = strlen(text);
    CHECK(ak_protect_regex((const uint8_t *)text, n, &off[0][0], 9, "Question:.*", p, &err) == 0,
          "regex protection");
    uint8_t want[9] = {0, 0, 0, 0, 0, 1, 1, 1, 0};
    CHECK(memcmp(p, want, 9) == 0, "regex: tokens overlapping the match");
    memset(p, 0, 9);
    ak_protect_regex((const uint8_t *)text, n, &off[0][0], 9, "ext t", p, &err);
    CHECK(p[3] && p[4] && !p[2] && !p[5], "regex: a match across two tokens marks both");
    memset(p, 0, 9);
    ak_protect_regex((const uint8_t *)text, n, &off[0][0], 9, "(?=Question)|z*", p, &err);
    CHECK(kept_count(p, 9) == 0, "regex: empty matches protect nothing (and terminate)");
    memset(p, 0, 9);
    ak_protect_marker((const uint8_t *)text, n, &off[0][0], seg, 9, "two", p, &err);
    uint8_t wm[9] = {0, 0, 0, 1, 1, 0, 0, 0, 0};
    CHECK(memcmp(p, wm, 9) == 0, "marker: the whole block holding it");
    memset(p, 0, 9);
    ak_protect_block_end(seg, 9, 0, p);
    ak_protect_block_end(seg, 9, 1, p);
    uint8_t wfl[9] = {0, 1, 1, 0, 0, 1, 1, 1, 0};
    CHECK(memcmp(p, wfl, 9) == 0, "first and last blocks");
    CHECK(ak_protect_regex((const uint8_t *)text, n, &off[0][0], 9, "(", p, &err) == AK_EUSAGE,
          "bad regex: %s", err.msg);
    const char *bad = "ok \xff here";
    int64_t boff[][2] = {{0, 2}};
    CHECK(ak_protect_regex((const uint8_t *)bad, strlen(bad), &boff[0][0], 1, "here", p, &err) ==
              AK_EDATA && strstr(err.msg, "byte 3"),
          "invalid UTF-8 named by byte offset: %s", err.msg);
}

static ak_tensor *mk(const char *name, ak_dtype t, int ndim, int64_t a, int64_t b)
{
    ak_err err;
    int64_t shape[2] = {a, b};
    return ak_tensor_new(name, t, ndim, shape, &err);
}

/* The document of test_apply: "aa bb cc dd ee" as [CLS] aa bb cc dd ee
 * [SEP], two blocks. */
static ak_doc *sample_doc(void)
{
    ak_err err;
    ak_doc *d = ak_doc_new("x.txt");
    ak_tensor *t = mk("text", AK_U8, 1, 14, 0);
    memcpy(t->data, "aa bb cc dd ee", 14);
    ak_doc_put(d, t, &err);
    t = mk("tokens", AK_I32, 1, 7, 0);
    for (int i = 0; i < 7; i++)
        ak_tensor_i32(t)[i] = 100 + i;
    ak_doc_put(d, t, &err);
    t = mk("offsets", AK_I64, 2, 7, 2);
    int64_t off[14] = {0, 0, 0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 14, 14};
    memcpy(t->data, off, sizeof off);
    ak_doc_put(d, t, &err);
    t = mk("segments", AK_I32, 1, 7, 0);
    int32_t seg[7] = {-1, 0, 0, 0, 1, 1, -1};
    memcpy(t->data, seg, sizeof seg);
    ak_doc_put(d, t, &err);
    return d;
}

static void test_apply(void)
{
    ak_err err;
    ak_doc *d = sample_doc();
    ak_doc_put(d, mk("attn.mass", AK_F32, 2, 1, 7), &err);
    ak_doc_put(d, mk("hidden.final", AK_F32, 2, 7, 4), &err);
    ak_doc_put(d, mk("other", AK_F32, 1, 3, 0), &err);

    uint8_t keep[7] = {1, 1, 0, 0, 1, 0, 1};
    float sc[7] = {0, 0, 0.25f, 0.75f, 0, 2, 0};
    CHECK(ak_prune_apply(d, keep, sc, &err) == 0, "apply");
    ak_tensor *tok = ak_doc_get(d, "tokens"), *o = ak_doc_get(d, "offsets");
    CHECK(tok->shape[0] == 4 && ak_tensor_i32(tok)[1] == 101 && ak_tensor_i32(tok)[2] == 104,
          "tokens reduced to [CLS] aa dd [SEP]");
    CHECK(o->shape[0] == 4 && ak_tensor_i64(o)[4] == 9, "offsets reduced with them");
    CHECK(ak_tensor_i32(ak_doc_get(d, "segments"))[2] == 1, "segments reduced");
    ak_tensor *dr = ak_doc_get(d, "dropped"), *ds = ak_doc_get(d, "dropped.score");
    CHECK(dr && dr->shape[0] == 2 && ak_tensor_i64(dr)[0] == 3 && ak_tensor_i64(dr)[1] == 8 &&
              ak_tensor_i64(dr)[2] == 12 && ak_tensor_i64(dr)[3] == 14,
          "dropped spans [3,8) (bb cc merged) and [12,14)");
    CHECK(ds && ak_tensor_f32(ds)[0] == 0.5f && ak_tensor_f32(ds)[1] == 2.0f,
          "dropped.score: mean of the run (0.5), 2");
    CHECK(!ak_doc_get(d, "attn.mass") && !ak_doc_get(d, "hidden.final") &&
              ak_doc_get(d, "other") && ak_doc_get(d, "text")->nbytes == 14,
          "attention and hidden tensors removed; others and text kept");

    /* prune again: drop 'aa' (index 1 of 4) */
    uint8_t keep2[4] = {1, 0, 1, 1};
    float sc2[4] = {0, 3, 0, 0};
    CHECK(ak_prune_apply(d, keep2, sc2, &err) == 0, "second prune");
    ak_tensor *k = ak_doc_get(d, "keep");
    uint8_t wk[7] = {1, 0, 0, 0, 1, 0, 1};
    CHECK(k->shape[0] == 7 && memcmp(k->data, wk, 7) == 0, "keep composed over the original");
    dr = ak_doc_get(d, "dropped");
    ds = ak_doc_get(d, "dropped.score");
    CHECK(dr->shape[0] == 3 && ak_tensor_i64(dr)[0] == 0 && ak_tensor_i64(dr)[1] == 2 &&
              ak_tensor_i64(dr)[2] == 3 && ak_tensor_f32(ds)[0] == 3.0f &&
              ak_tensor_f32(ds)[1] == 0.5f,
          "dropped spans of both prunes, sorted: [0,2) 3, [3,8) 0.5, [12,14) 2");
    uint8_t bad[2] = {1, 1};
    ak_tensor_free(ak_doc_take(d, "keep"));
    ak_doc_put(d, mk("keep", AK_U8, 1, 2, 0), &err);
    memcpy(ak_doc_get(d, "keep")->data, bad, 2);
    CHECK(ak_prune_apply(d, keep2, sc2, &err) == AK_EDATA, "keep inconsistent with tokens: %s",
          err.msg);
    ak_doc_free(d);
}

/* ak_prune_doc, the prune program's handler, as a library call. */
static void test_prune_doc(void)
{
    ak_err err = {0};
    ak_doc *d = sample_doc();
    ak_prune_doc_opts o = {.o = {.policy = AK_POLICY_LAST, .unit = AK_UNIT_BLOCK,
                                 .keep_ratio = -1, .max_tokens = 4, .recent = -1, .seed = 1},
                           .policy_set = 1, .l0 = -1, .l1 = -1};
    /* blocks: {aa bb cc} (3 tokens) and {dd ee} (2); [CLS] and [SEP] are
     * forced, so 2 of the 4 remain: the last block fits, the first not */
    int rc = ak_prune_doc(d, &o, NULL, &err);
    ak_tensor *tok = ak_doc_get(d, "tokens");
    const char *pol = ak_meta_str(&d->meta, "prune_policy");
    int64_t budget = -1;
    CHECK(rc == 0 && tok->shape[0] == 4 && ak_tensor_i32(tok)[1] == 104 &&
              ak_tensor_i32(tok)[2] == 105 && pol && strcmp(pol, "last") == 0 &&
              ak_meta_int(&d->meta, "prune_budget", &budget) == 0 && budget == 4,
          "ak_prune_doc: last block kept under 4 tokens, meta recorded (%s)", err.msg);
    ak_doc_free(d);
    d = sample_doc();
    o.o.policy = AK_POLICY_SCORE;
    CHECK(ak_prune_doc(d, &o, NULL, &err) == AK_EDATA && strstr(err.msg, "score.token"),
          "ak_prune_doc: policy score without score.token: %s", err.msg);
    ak_doc_free(d);
}

/* ak.h allows err to be NULL: the entry points that read documents return
 * their code without writing through it. */
static void test_null_err(void)
{
    ak_doc *d = ak_doc_new("empty");
    ak_attn_stats s;
    ak_probs_stats ps;
    uint8_t keep[1] = {1};
    ak_prune_doc_opts o = {.o = {.policy = AK_POLICY_FIRST, .keep_ratio = 0.5, .max_tokens = -1,
                                 .recent = -1},
                           .policy_set = 1, .l0 = -1, .l1 = -1};
    CHECK(ak_doc_attn_stats(d, &s, NULL) == AK_EDATA, "attn stats, no tokens, NULL err");
    CHECK(ak_prune_apply(d, keep, NULL, NULL) == AK_EDATA, "apply, no tokens, NULL err");
    CHECK(ak_prune_doc(d, &o, NULL, NULL) == AK_EDATA, "prune doc, no tokens, NULL err");
    CHECK(ak_doc_probs_stats(d, -1, -1, &ps, NULL) == AK_EDATA, "probs stats, NULL err");
    ak_probs_stats_free(&ps);
    ak_doc_free(d);
    d = sample_doc();
    ak_meta_set_str(&d->meta, "window", "wide");
    CHECK(ak_doc_attn_stats(d, &s, NULL) == AK_EDATA, "attn stats, no attn.*, NULL err");
    ak_mask m = {0, 0};
    ak_err err = {0};
    CHECK(ak_doc_mask(d, &m, &err) == AK_EDATA && strstr(err.msg, "window"),
          "meta window of another kind is refused: %s", err.msg);
    ak_doc_free(d);
}

/* The knapsack keeps the largest fill any subset reaches (checked against
 * every subset of random instances) and, at that fill, the most score. */
static void test_knapsack_exact(void)
{
    ak_err err;
    uint64_t x = 12345;
    int bad_fill = 0, bad_score = 0, over = 0;
    for (int rep = 0; rep < 200; rep++) {
        enum { NU = 9, TT = 40 };
        int32_t unit[TT];
        float sc[TT];
        int64_t T = 0;
        int size[NU];
        for (int k = 0; k < NU; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size[k] = 1 + (int)((x >> 33) % 4);
            float s = (float)((x >> 20) % 1000) / 1000.0f - 0.5f; /* negative too (cosines) */
            for (int j = 0; j < size[k]; j++) {
                unit[T] = k;
                sc[T++] = s;
            }
        }
        uint8_t keep[TT];
        ak_prune_result r;
        ak_prune_input in = {.T = T, .unit = unit, .score = sc, .nunits = NU};
        ak_prune_opts o = {.policy = AK_POLICY_MASS, .unit = AK_UNIT_WORD,
                           .keep_ratio = 0.37, .max_tokens = -1, .recent = -1};
        ak_prune_select(&in, &o, keep, NULL, &r, &err);
        int best_fill = 0;
        double best_score = -1e30, got_score = 0;
        for (int m = 0; m < (1 << NU); m++) {
            int fill = 0;
            double v = 0;
            for (int k = 0; k < NU; k++)
                if (m >> k & 1) {
                    fill += size[k];
                    for (int64_t i = 0; i < T; i++)
                        v += unit[i] == k ? sc[i] : 0;
                }
            if (fill > r.budget)
                continue;
            if (fill > best_fill || (fill == best_fill && v > best_score)) {
                best_fill = fill;
                best_score = v;
            }
        }
        for (int64_t i = 0; i < T; i++)
            got_score += keep[i] ? sc[i] : 0;
        bad_fill += kept_count(keep, T) != best_fill || r.kept != best_fill;
        bad_score += got_score < best_score - 1e-4;
        over += kept_count(keep, T) > r.budget;
    }
    CHECK(bad_fill == 0 && over == 0, "knapsack: the largest reachable fill "
          "in 200 random problems (%d wrong, %d over)", bad_fill, over);
    CHECK(bad_score == 0, "knapsack: the most score at that fill, negative scores too "
          "(%d worse)", bad_score);

    /* sentences and blocks go whole in ranking order: of sizes 3, 2, 2
     * scored 0.9, 0.5, 0.4 under a budget of 4 the best one is kept alone,
     * where a fill-first knapsack would take the two small ones */
    int32_t unit[7] = {0, 0, 0, 1, 1, 2, 2};
    float sc[7] = {0.9f, 0.9f, 0.9f, 0.5f, 0.5f, 0.4f, 0.4f};
    uint8_t keep[7];
    ak_prune_result r;
    ak_prune_input in = {.T = 7, .unit = unit, .score = sc, .nunits = 3};
    for (int u = 0; u < 2; u++) {
        ak_prune_opts o = {.policy = AK_POLICY_MASS, .unit = u ? AK_UNIT_BLOCK : AK_UNIT_SENTENCE,
                           .keep_ratio = -1, .max_tokens = 4, .recent = -1};
        CHECK(ak_prune_select(&in, &o, keep, NULL, &r, &err) == 0 && r.kept == 3 && keep[0] &&
                  !keep[3] && !keep[5] && !r.exact,
              "%s: taken whole in ranking order, not by fill (kept %lld)",
              u ? "blocks" : "sentences", (long long)r.kept);
    }
}

static void test_words_and_text(void)
{
    ak_err err;
    /* "The Eiffel Tower, 2024." as WordPiece-ish pieces */
    const char *t = "The Eiffel Tower, 2024.";
    int64_t off[][2] = {{0, 0}, {0, 3}, {4, 5}, {5, 8}, {8, 10}, {11, 16}, {16, 17},
                        {18, 21}, {21, 22}, {22, 23}, {23, 23}};
    int32_t ids[11];
    CHECK(ak_word_ids((const uint8_t *)t, strlen(t), &off[0][0], 11, ids, &err) == 0 &&
              ids[0] == -1 && ids[1] == 0 && ids[2] == 1 && ids[3] == 1 && ids[4] == 1 &&
              ids[5] == 2 && ids[6] == 2 && ids[7] == 3 && ids[9] == 3 && ids[10] == -1,
          "words: E+iff+el one word, Tower+, one, 202+4+. one; specials -1");
    /* byte-level BPE glues the space to the word: " Tower" starts a word */
    const char *t2 = "a bc";
    int64_t off2[][2] = {{0, 1}, {1, 3}, {3, 4}};
    CHECK(ak_word_ids((const uint8_t *)t2, 4, &off2[0][0], 3, ids, &err) == 0 && ids[0] == 0 &&
              ids[1] == 1 && ids[2] == 1, "words: a leading space starts a word");
    /* 東京タワー: 東 | 京 (two byte-fallback pieces) | タワー; then "x" after a space */
    const char *t4 = "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xbf\xe3\x83\xaf\xe3\x83\xbc x";
    int64_t off4[][2] = {{0, 3}, {3, 5}, {4, 6}, {6, 15}, {16, 17}};
    CHECK(ak_word_ids((const uint8_t *)t4, strlen(t4), &off4[0][0], 5, ids, &err) == 0 &&
              ids[0] == 0 && ids[1] == 1 && ids[2] == 1 && ids[3] == 2 && ids[4] == 3,
          "words: CJK characters are units, pieces of one character stay together");
    const char *t3 = "One two  three.\n\nFour five.\n\nSix, seven.";
    int64_t dr[][2] = {{4, 7}, {17, 27}};
    char *out;
    size_t n;
    CHECK(ak_kept_text((const uint8_t *)t3, strlen(t3), &dr[0][0], 2, &out, &n, &err) == 0 &&
              strcmp(out, "One three.\n\nSix, seven.\n") == 0,
          "kept text: spaces collapsed, one blank line for a dropped paragraph (%s)", out);
    free(out);
    int64_t dr2[][2] = {{34, 39}};
    CHECK(ak_kept_text((const uint8_t *)t3, strlen(t3), &dr2[0][0], 1, &out, &n, &err) == 0 &&
              strcmp(out, "One two three.\n\nFour five.\n\nSix,.\n") == 0,
          "kept text: no space left before punctuation at a cut (%s)", out);
    free(out);
    int64_t dr3[][2] = {{5, 3}};
    CHECK(ak_kept_text((const uint8_t *)t3, strlen(t3), &dr3[0][0], 1, &out, &n, &err) == AK_EDATA,
          "kept text: a reversed span is refused: %s", err.msg);
}

static void test_global_budgets(void)
{
    double score[3] = {0.5, 2.0, 1.0};
    int64_t size[3] = {100, 100, 100}, floor_[3] = {10, 10, 10}, out[3];
    ak_global_budgets(score, size, floor_, 3, 150, out);
    CHECK(out[0] + out[1] + out[2] == 150 && out[1] > out[2] && out[2] > out[0],
          "global: one budget, the better-ranked document keeps more (%lld %lld %lld)",
          (long long)out[0], (long long)out[1], (long long)out[2]);
    CHECK(out[1] == 75 && out[2] == 50 && out[0] == 25, "global: weights 1.5, 1, 0.5");
    int64_t small[3] = {10, 100, 100};
    ak_global_budgets(score, small, floor_, 3, 200, out);
    CHECK(out[0] + out[1] + out[2] == 200 && out[0] <= 10 && out[1] <= 100,
          "global: shares capped at the size, the rest handed on");
}

/* The block cache of prune --global: a filled cache is read instead of
 * running a model (here there is none, so without it both policies fail),
 * and the selection follows its scores. */
static void test_block_cache(void)
{
    static const int32_t seg3[7] = {-1, 0, 1, 2, 2, 2, -1}; /* aa | bb | cc dd ee (query) */
    const ak_policy pols[2] = {AK_POLICY_QPPL, AK_POLICY_SIMILARITY};
    for (int k = 0; k < 2; k++) {
        ak_err err = {0};
        ak_prune_doc_opts o = {.o = {.policy = pols[k], .unit = AK_UNIT_BLOCK, .keep_ratio = -1,
                                     .max_tokens = 6, .recent = -1, .seed = 1},
                               .policy_set = 1, .l0 = -1, .l1 = -1};
        const char *name = ak_policy_name(pols[k]);
        ak_doc *d = sample_doc();
        memcpy(ak_doc_get(d, "segments")->data, seg3, sizeof seg3);
        CHECK(ak_prune_doc(d, &o, NULL, &err) == AK_EINTERNAL,
              "%s without a model and no cache: an error (%s)", name, err.msg);
        ak_doc_free(d);
        for (int want = 0; want < 2; want++) {
            ak_block_cache cache = {0};
            float sc[3] = {want == 0 ? 2.0f : -1.0f, want == 1 ? 2.0f : -1.0f, 0};
            uint8_t scored[3] = {1, 1, 0};
            cache.filled = 1;
            cache.n = 3;
            cache.score = malloc(sizeof sc);
            cache.scored = pols[k] == AK_POLICY_QPPL ? malloc(sizeof scored) : NULL;
            memcpy(cache.score, sc, sizeof sc);
            if (cache.scored)
                memcpy(cache.scored, scored, sizeof scored);
            o.cache = &cache;
            err = (ak_err){0};
            d = sample_doc();
            memcpy(ak_doc_get(d, "segments")->data, seg3, sizeof seg3);
            int rc = ak_prune_doc(d, &o, NULL, &err);
            ak_tensor *tok = ak_doc_get(d, "tokens");
            /* [CLS], the question's 3 and [SEP] are kept: room for one of aa, bb */
            CHECK(rc == 0 && tok->shape[0] == 6 && ak_tensor_i32(tok)[1] == 101 + want,
                  "%s from the cache: block %d, the cache's best, is kept (%s)", name, want,
                  err.msg);
            ak_doc_free(d);
            ak_block_cache_free(&cache);
            CHECK(!cache.filled && !cache.score, "ak_block_cache_free empties the cache");
        }
    }
}

int main(void)
{
    test_budget_and_mass();
    test_baselines();
    test_protect_every_policy();
    test_blocks();
    test_sentences();
    test_protect_text();
    test_apply();
    test_prune_doc();
    test_null_err();
    test_knapsack_exact();
    test_words_and_text();
    test_global_budgets();
    test_block_cache();
    TEST_DONE();
}
