/* Unit tests of lib/analysis/prune_lm.c and lib/model/lm.c without a model: surprisal
 * from logits against log-softmax written out by hand, and qppl --fine's
 * two steps (blocks by rank up to coarse x the room, then the surprisal
 * policy inside them) on a document whose answer is worked out below. */
#include "model/lm.h"
#include "analysis/prune_lm.h"
#include "test.h"

#include <string.h>

static void test_surprisal_logits(void)
{
    ak_err err;
    /* V = 3; rows 0 and 1 predict tokens 1 and 2 */
    const float logits[9] = {0, 1, 2, 3, 3, 3, 0, 0, 0};
    const int32_t ids[3] = {2, 1, 2};
    float s[3] = {-1, -1, -1};
    CHECK(ak_lm_surprisal_logits(logits, 3, ids, 3, s, &err) == 0, "surprisal from logits");
    double lse0 = log(exp(0.0) + exp(1.0) + exp(2.0));
    CHECK(s[0] == 0, "token 0 has surprisal 0");
    CHECK_NEAR(s[1], lse0 - 1.0, 1e-6, "token 1: logsumexp(row 0) - row 0[1]");
    CHECK_NEAR(s[2], log(3.0), 1e-6, "token 2: a uniform row gives log V");
    const int32_t bad[2] = {0, 3};
    CHECK(ak_lm_surprisal_logits(logits, 3, bad, 2, s, &err) == AK_EDATA,
          "an id outside the vocabulary is an error");
    const float big[4] = {1000, -1000, 0, 0};   /* no overflow: max subtracted first */
    const int32_t two[2] = {0, 1};
    CHECK(ak_lm_surprisal_logits(big, 2, two, 2, s, &err) == 0 && s[1] > 1999 && s[1] < 2001,
          "logits of 1000 and -1000: surprisal 2000 (%g)", s[1]);
}

/* 3 blocks of 4 tokens and a question of 2 (protected), token units;
 * block scores rank 1, 0, 2; block 2 is the most surprising, so only the
 * coarse step keeps it out. */
static void test_fine(void)
{
    ak_err err;
    enum { T = 14 };
    int32_t unit[T], seg[T] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3};
    uint8_t protect[T] = {[12] = 1, [13] = 1}, keep[T];
    float sur[T] = {5, 1, 4, 2, 0.5f, 6, 3, 7, 9, 9, 9, 9, 1, 1}, ks[T];
    const float bscore[4] = {1, 3, -2, 0};
    const uint8_t scored[4] = {1, 1, 1, 0};
    for (int i = 0; i < T; i++)
        unit[i] = i;
    ak_prune_input in = {.T = T, .unit = unit, .protect = protect, .nunits = T};
    ak_prune_opts o = {.policy = AK_POLICY_QPPL, .unit = AK_UNIT_TOKEN, .keep_ratio = 6.0 / 14,
                       .max_tokens = -1, .recent = -1};
    ak_prune_result r;
    int64_t coarse = 0;
    /* keep 6: room 4 after the question, coarse 2 x 4 = 8 tokens: blocks 1 and 0;
     * then their 4 most surprising tokens (7, 6, 5, 4) */
    CHECK(ak_prune_select_fine(&in, &o, seg, bscore, scored, 4, 2, sur, keep, ks, &r, &coarse,
                               &err) == 0, "fine selection runs");
    CHECK(r.budget == 6 && r.kept == 6, "budget 6, kept %lld", (long long)r.kept);
    CHECK(coarse == 8, "the coarse step keeps blocks 1 and 0 (8 prunable tokens, %lld)",
          (long long)coarse);
    const uint8_t want[T] = {1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1};
    CHECK(memcmp(keep, want, T) == 0, "the 4 most surprising tokens of blocks 0 and 1 and the "
          "question are kept; block 2 (surprisal 9 each, ranked last) is not");
    CHECK(ks[8] == -2, "a token of a dropped block scores its block's qppl score");
    /* coarse 1: the room, 4 tokens, is block 1 whole */
    CHECK(ak_prune_select_fine(&in, &o, seg, bscore, scored, 4, 1, sur, keep, ks, &r, &coarse,
                               &err) == 0 && coarse == 4 && keep[4] && keep[5] && keep[6] &&
          keep[7] && !keep[0] && !keep[8], "coarse 1: block 1 whole, nothing else");
    /* keep 8: room 6, coarse 1: blocks are added until they hold 6, so 1 and 0;
     * 0.5 and 1 are their least surprising */
    o.keep_ratio = 8.0 / 14;
    const uint8_t want8[T] = {1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1};
    CHECK(ak_prune_select_fine(&in, &o, seg, bscore, scored, 4, 1, sur, keep, ks, &r, &coarse,
                               &err) == 0 && coarse == 8 && memcmp(keep, want8, T) == 0,
          "keep 8, coarse 1: blocks 1 and 0, their two least surprising tokens dropped");
    /* coarse 2 at room 6 wants 12: every block, and the fine step alone decides */
    CHECK(ak_prune_select_fine(&in, &o, seg, bscore, scored, 4, 2, sur, keep, ks, &r, &coarse,
                               &err) == 0 && coarse == 12 && keep[8] && keep[9] && keep[10] &&
          keep[11], "coarse 2 at room 6: all blocks; block 2's surprisal 9 wins");
}

int main(void)
{
    test_surprisal_logits();
    test_fine();
    TEST_DONE();
}
