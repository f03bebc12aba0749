/* Unit tests of lib/analysis/metrics.c against values computed by hand (the
 * arithmetic is in the comments): masks, entropy of one-hot, uniform and
 * mixed rows, normalisation, corrected mass under causal and windowed
 * masks, head summaries, aggregation and block aggregates. */
#include "attnkit/metrics.h"
#include "test.h"

#include <string.h>

static void test_masks(void)
{
    ak_mask bi = {0, 0}, ca = {1, 0}, caw = {1, 2}, biw = {0, 2};
    int64_t T = 5;
    /* bidirectional: every query sees 5 keys, every key is seen by 5 */
    CHECK(ak_mask_visible(bi, T, 3) == 5 && ak_mask_seers(bi, T, 0) == 5, "bidirectional mask");
    /* causal: query i sees i + 1 keys; key j is seen by T - j queries */
    int ok = 1;
    for (int64_t i = 0; i < T; i++)
        ok &= ak_mask_visible(ca, T, i) == i + 1 && ak_mask_seers(ca, T, i) == T - i;
    CHECK(ok, "causal mask: visible i+1, seers T-j");
    /* causal, window 2: visible 1,2,2,2,2; seers 2,2,2,2,1 (both sum to 9) */
    int64_t cv[] = {1, 2, 2, 2, 2}, cs[] = {2, 2, 2, 2, 1};
    ok = 1;
    for (int64_t i = 0; i < T; i++)
        ok &= ak_mask_visible(caw, T, i) == cv[i] && ak_mask_seers(caw, T, i) == cs[i];
    CHECK(ok, "causal window 2: visible 1,2,2,2,2 and seers 2,2,2,2,1");
    /* bidirectional, window 2 (only i - j < 2 limits): visible T - max(0, i-1)
     * = 5,5,4,3,2; seers min(T, j+2) = 2,3,4,5,5 (both sum to 19) */
    int64_t bv[] = {5, 5, 4, 3, 2}, bs[] = {2, 3, 4, 5, 5};
    ok = 1;
    for (int64_t i = 0; i < T; i++)
        ok &= ak_mask_visible(biw, T, i) == bv[i] && ak_mask_seers(biw, T, i) == bs[i];
    CHECK(ok, "bidirectional window 2: visible 5,5,4,3,2 and seers 2,3,4,5,5");
}

/* mask.h's counts and ranges agree with its one rule, ak_mask_sees, on
 * every (query, key) of small grids, with and without a query offset. */
static void test_mask_rule(void)
{
    int ok = 1;
    for (int causal = 0; causal < 2; causal++)
        for (int w = 0; w < 5; w++)
            for (int T = 1; T < 8; T++) {
                ak_mask m = {causal, w};
                for (int i = 0; i < T; i++) {
                    int64_t n = 0, lo, hi;
                    for (int j = 0; j < T; j++)
                        n += ak_mask_sees(causal, w, i, j);
                    ak_mask_keys(causal, w, i, T, &lo, &hi);
                    ok &= ak_mask_visible(m, T, i) == n && (n == 0 ? lo > hi : hi - lo + 1 == n);
                    for (int j = 0; j < T; j++)
                        ok &= ak_mask_sees(causal, w, i, j) == (j >= lo && j <= hi);
                    int64_t seers = 0;
                    for (int q = 0; q < T; q++)
                        seers += ak_mask_sees(causal, w, q, i);
                    ok &= ak_mask_seers(m, T, i) == seers;
                }
                /* queries q_off .. q_off + n_q - 1 that see keys k0..k1 */
                for (int qoff = 0; qoff < 3; qoff++)
                    for (int k0 = 0; k0 < T; k0++)
                        for (int k1 = k0; k1 < T; k1++) {
                            int a, b, nq = T;
                            ak_mask_seer_range(causal, w, qoff, nq, k0, k1, &a, &b);
                            for (int i = 0; i < nq; i++) {
                                int any = 0;
                                for (int j = k0; j <= k1; j++)
                                    any |= ak_mask_sees(causal, w, qoff + i, j);
                                ok &= !any || (i >= a && i <= b);
                                /* and tight: the range's ends see a key */
                                if (a <= b && (i == a || i == b))
                                    ok &= any;
                            }
                        }
            }
    CHECK(ok, "mask.h: visible, seers, key range and seer range follow ak_mask_sees");
}

static void test_entropy(void)
{
    ak_err err;
    double h = -1;
    float onehot[] = {0, 1, 0, 0}, uni[] = {.25f, .25f, .25f, .25f}, mix[] = {.5f, .25f, .25f};
    CHECK(ak_row_entropy(onehot, 4, &h, &err) == 0 && h == 0.0, "one-hot row: entropy 0");
    ak_row_entropy(uni, 4, &h, &err);
    CHECK_NEAR(h, log(4.0), 1e-6, "uniform over 4: log 4 nats");
    CHECK_NEAR(h / log(2.0), 2.0, 1e-6, "uniform over 4: 2 bits");
    /* 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2 */
    ak_row_entropy(mix, 3, &h, &err);
    CHECK_NEAR(h, 1.5 * log(2.0), 1e-6, "[.5 .25 .25]: 1.5 ln 2 nats");
    CHECK_NEAR(ak_norm_entropy(h, 3), 1.5 * log(2.0) / log(3.0), 1e-6,
               "normalised by log 3: 0.946395");
    CHECK_NEAR(ak_norm_entropy(log(4.0), 4), 1.0, 1e-12, "uniform row normalises to 1");
    CHECK(ak_norm_entropy(0.0, 1) == 0.0, "a single visible key normalises to 0");
    float bad1[] = {.5f, .4f}, bad2[] = {1.5f, -.5f}, bad3[] = {NAN, 1};
    CHECK(ak_row_entropy(bad1, 2, &h, &err) == AK_EDATA, "row summing to 0.9 rejected: %s",
          err.msg);
    CHECK(ak_row_entropy(bad2, 2, &h, &err) == AK_EDATA, "negative probability rejected: %s",
          err.msg);
    CHECK(ak_row_entropy(bad3, 2, &h, &err) == AK_EDATA, "NaN rejected: %s", err.msg);
}

/* One causal head over 3 tokens:
 *   [1   0   0 ]   entropy 0
 *   [.5  .5  0 ]   entropy ln 2
 *   [.2  .3  .5]   entropy 1.0296530 (-.2ln.2 - .3ln.3 - .5ln.5)
 * mass [1.7 .8 .5]; causal seers [3 2 1] -> corrected [.566667 .4 .5] */
static const float P_CAUSAL[9] = {1, 0, 0, .5f, .5f, 0, .2f, .3f, .5f};

static void test_probs_and_mass(void)
{
    ak_err err;
    float e[3], m[3], c[3];
    CHECK(ak_from_probs(P_CAUSAL, 1, 3, e, m, &err) == 0, "entropy and mass from probabilities");
    CHECK_NEAR(e[0], 0.0, 1e-6, "causal row 0 (one key): entropy 0");
    CHECK_NEAR(e[1], log(2.0), 1e-6, "causal row 1: ln 2");
    CHECK_NEAR(e[2], 1.0296530140645737, 1e-6, "causal row 2: 1.029653");
    CHECK_NEAR(m[0], 1.7, 1e-6, "mass of key 0: 1.7");
    CHECK_NEAR(m[1], 0.8, 1e-6, "mass of key 1: 0.8");
    CHECK_NEAR(m[2], 0.5, 1e-6, "mass of key 2: 0.5");
    ak_corrected_mass((ak_mask){1, 0}, m, 3, c);
    CHECK_NEAR(c[0], 1.7 / 3, 1e-6, "causal corrected key 0: 1.7/3");
    CHECK_NEAR(c[1], 0.4, 1e-6, "causal corrected key 1: 0.8/2");
    CHECK_NEAR(c[2], 0.5, 1e-6, "causal corrected key 2: 0.5/1");
    ak_corrected_mass((ak_mask){0, 0}, m, 3, c);
    CHECK_NEAR(c[2], 0.5 / 3, 1e-6, "bidirectional corrected key 2: 0.5/3");

    /* causal window 2: rows [1 0 0] [.5 .5 0] [0 .25 .75]:
     * mass [1.5 .75 .75], seers [2 2 1] -> corrected [.75 .375 .75] */
    float pw[9] = {1, 0, 0, .5f, .5f, 0, 0, .25f, .75f};
    ak_from_probs(pw, 1, 3, e, m, &err);
    ak_corrected_mass((ak_mask){1, 2}, m, 3, c);
    CHECK_NEAR(c[0], 0.75, 1e-6, "windowed corrected key 0: 1.5/2");
    CHECK_NEAR(c[1], 0.375, 1e-6, "windowed corrected key 1: 0.75/2");
    CHECK_NEAR(c[2], 0.75, 1e-6, "windowed corrected key 2: 0.75/1");
    CHECK_NEAR(e[2], -(0.25 * log(0.25) + 0.75 * log(0.75)), 1e-6,
               "windowed row 2 entropy 0.562335");

    float bad[9];
    memcpy(bad, P_CAUSAL, sizeof bad);
    bad[4] = 0.7f;
    CHECK(ak_from_probs(bad, 1, 3, e, m, &err) == AK_EDATA, "bad row rejected: %s", err.msg);
}

/* Two heads on the causal example: head 0 as P_CAUSAL, head 1 every query
 * one-hot on key 0 (a first-token sink). */
static void stats_2heads(float *ent, float *mass, int32_t *vis, ak_attn_stats *s)
{
    ak_err err;
    float p1[9] = {1, 0, 0, 1, 0, 0, 1, 0, 0};
    ak_from_probs(P_CAUSAL, 1, 3, ent, mass, &err);
    ak_from_probs(p1, 1, 3, ent + 3, mass + 3, &err);
    for (int i = 0; i < 3; i++)
        vis[i] = i + 1;
    *s = (ak_attn_stats){.L = 1, .H = 2, .T = 3, .entropy = ent, .mass = mass,
                         .visible = vis, .mask = {1, 0}};
}

static void test_summaries(void)
{
    ak_err err;
    float ent[6], mass[6];
    int32_t vis[3];
    ak_attn_stats s;
    stats_2heads(ent, mass, vis, &s);
    CHECK(ak_stats_check(&s, &err) == 0, "consistent statistics accepted");
    ak_head_summary hs[2];
    CHECK(ak_head_summaries(&s, hs, &err) == 0, "head summaries");
    /* head 0: normalised entropies 0 (one key), ln2/ln2 = 1, 1.029653/ln3 = .937231 */
    CHECK_NEAR(hs[0].norm_entropy, (0 + 1 + 1.0296530140645737 / log(3.0)) / 3, 1e-6,
               "head 0 mean normalised entropy 0.645744");
    CHECK_NEAR(hs[0].entropy, (log(2.0) + 1.0296530140645737) / 3, 1e-6,
               "head 0 mean entropy 0.574267 nats");
    CHECK(hs[0].cls == AK_HEAD_MIXED, "head 0 is mixed");
    CHECK_NEAR(hs[0].sink_share, 1.7 / 3, 1e-6, "head 0 first-token share 1.7/3");
    CHECK(hs[1].cls == AK_HEAD_SHARP && hs[1].sink == 1 && hs[1].sink_share == 1.0,
          "head 1 is sharp and collapsed onto the first token");

    ak_token_metrics tm;
    float te[3], tn[3], tmass[3], tc[3];
    tm = (ak_token_metrics){te, tn, tmass, tc};
    CHECK(ak_token_metrics_agg(&s, 0, 0, AK_AGG_MEAN, NULL, &tm, &err) == 0, "mean over heads");
    /* corrected: head 0 [.566667 .4 .5], head 1 [1 0 0] -> mean [.783333 .2 .25] */
    CHECK_NEAR(tc[0], (1.7 / 3 + 1) / 2, 1e-6, "mean corrected key 0: 0.783333");
    CHECK_NEAR(tc[1], 0.2, 1e-6, "mean corrected key 1: 0.2");
    CHECK_NEAR(tc[2], 0.25, 1e-6, "mean corrected key 2: 0.25");
    CHECK_NEAR(tmass[0], (1.7 + 3) / 2, 1e-6, "mean raw mass key 0: 2.35");
    CHECK_NEAR(te[2], 1.0296530140645737 / 2, 1e-6, "mean entropy query 2: 0.514827");
    CHECK_NEAR(tn[1], 0.5, 1e-6, "mean normalised entropy query 1: (1 + 0)/2");
    ak_token_metrics_agg(&s, 0, 0, AK_AGG_MAX, NULL, &tm, &err);
    CHECK_NEAR(tc[0], 1.0, 1e-6, "max corrected key 0: 1");
    CHECK_NEAR(tc[1], 0.4, 1e-6, "max corrected key 1: 0.4");
    /* weights 1 - norm entropy: head 0 .354256, head 1 1 ->
     * (w0 * [.566667 .4 .5] + [1 0 0]) / (w0 + 1) = [.886645 .104635 .130794] */
    double w[2] = {1 - hs[0].norm_entropy, 1 - hs[1].norm_entropy};
    ak_token_metrics_agg(&s, 0, 0, AK_AGG_MEAN, w, &tm, &err);
    CHECK_NEAR(tc[0], 0.88664544, 1e-5, "entropy-weighted corrected key 0");
    CHECK_NEAR(tc[2], 0.13079372, 1e-5, "entropy-weighted corrected key 2");
    CHECK(ak_token_metrics_agg(&s, 0, 1, AK_AGG_MEAN, NULL, &tm, &err) == AK_EUSAGE,
          "layer range past the last layer rejected: %s", err.msg);

    /* inconsistent statistics */
    int32_t badvis[3] = {3, 3, 3};
    ak_attn_stats b = s;
    b.visible = badvis;
    CHECK(ak_stats_check(&b, &err) == AK_EDATA, "visible disagreeing with the mask: %s", err.msg);
    float e2[6];
    memcpy(e2, ent, sizeof e2);
    e2[0] = 0.5f; /* query 0 sees one key: entropy must be 0 */
    b = s;
    b.entropy = e2;
    CHECK(ak_stats_check(&b, &err) == AK_EDATA, "entropy above log(visible): %s", err.msg);
    float m2[6];
    memcpy(m2, mass, sizeof m2);
    m2[1] += 1.0f;
    b = s;
    b.mass = m2;
    CHECK(ak_stats_check(&b, &err) == AK_EDATA, "mass not summing to T: %s", err.msg);
}

static void test_layers(void)
{
    ak_err err;
    /* two layers, one head, bidirectional T = 2: layer 0 uniform, layer 1
     * both queries on key 1 */
    float ent[4] = {(float)log(2.0), (float)log(2.0), 0, 0};
    float mass[4] = {1, 1, 0, 2};
    ak_attn_stats s = {.L = 2, .H = 1, .T = 2, .entropy = ent, .mass = mass};
    CHECK(ak_stats_check(&s, &err) == 0, "two-layer statistics accepted");
    float c[2], n[2];
    ak_token_metrics tm = {.corrected = c, .norm_entropy = n};
    ak_token_metrics_agg(&s, 1, 1, AK_AGG_MEAN, NULL, &tm, &err);
    CHECK(c[0] == 0.0f && c[1] == 1.0f, "layer 1 alone: corrected [0 1]");
    ak_token_metrics_agg(&s, 0, 1, AK_AGG_MEAN, NULL, &tm, &err);
    CHECK_NEAR(c[1], 0.75, 1e-6, "layers 0-1: corrected key 1 (0.5 + 1)/2");
    CHECK_NEAR(n[0], 0.5, 1e-6, "layers 0-1: normalised entropy (1 + 0)/2");
}

static void test_interleaved_windows(void)
{
    ak_err err;
    /* causal T = 3, meta window 2 (the largest layer's): layer 0 slides
     * (query 2 sees keys 1, 2), layer 1 is global (Gemma 3's pattern) */
    float p0[9] = {1, 0, 0, .5f, .5f, 0, 0, .5f, .5f};
    float p1[9] = {1, 0, 0, .5f, .5f, 0, 1 / 3.f, 1 / 3.f, 1 / 3.f};
    float ent[6], mass[6];
    ak_from_probs(p0, 1, 3, ent, mass, &err);
    ak_from_probs(p1, 1, 3, ent + 3, mass + 3, &err);
    int32_t vis[6] = {1, 2, 2, 1, 2, 3};
    ak_attn_stats s = {.L = 2, .H = 1, .T = 3, .entropy = ent, .mass = mass, .visible = vis,
                       .mask = {1, 2}};
    CHECK(ak_stats_check(&s, &err) == 0, "sliding and global layers under one meta window");
    float c[3];
    ak_token_metrics tm = {.corrected = c};
    ak_token_metrics_agg(&s, 1, 1, AK_AGG_MEAN, NULL, &tm, &err);
    CHECK_NEAR(c[0], (1 + .5 + 1 / 3.) / 3, 1e-6, "global layer: key 0 seen by all 3 queries");
    ak_token_metrics_agg(&s, 0, 0, AK_AGG_MEAN, NULL, &tm, &err);
    CHECK_NEAR(c[0], 1.5 / 2, 1e-6, "sliding layer: key 0 seen by 2 queries");
    int32_t bad[6] = {1, 2, 2, 1, 2, 2};
    int32_t bad2[6] = {1, 2, 2, 1, 1, 3};
    s.visible = bad2;
    CHECK(ak_stats_check(&s, &err) == AK_EDATA, "a layer neither sliding nor global: %s",
          err.msg);
    s.visible = bad;
    CHECK(ak_stats_check(&s, &err) == AK_EDATA, "visible of a sliding layer on global "
          "probabilities: entropy above log(visible) (%s)", err.msg);
}

static void test_blocks(void)
{
    ak_err err;
    int32_t seg[] = {-1, 0, 0, 1, 1, 1, -1};
    float x[] = {9, 1, 3, 2, 4, 6, 9};
    int64_t nb, cnt[2];
    float mean[2], sum[2], max[2];
    CHECK(ak_block_count(seg, 7, &nb, &err) == 0 && nb == 2, "two blocks");
    CHECK(ak_block_agg(seg, 7, x, nb, cnt, mean, sum, max, &err) == 0, "block aggregates");
    CHECK(cnt[0] == 2 && cnt[1] == 3, "block sizes 2, 3 (specials outside)");
    CHECK(mean[0] == 2 && mean[1] == 4, "block means 2, 4");
    CHECK(sum[0] == 4 && sum[1] == 12, "block sums 4, 12");
    CHECK(max[0] == 3 && max[1] == 6, "block maxima 3, 6");
    int32_t bad[] = {0, -2};
    CHECK(ak_block_count(bad, 2, &nb, &err) == AK_EDATA, "segment id -2 rejected: %s", err.msg);
}

int main(void)
{
    test_masks();
    test_mask_rule();
    test_entropy();
    test_probs_and_mass();
    test_summaries();
    test_layers();
    test_interleaved_windows();
    test_blocks();
    TEST_DONE();
}
