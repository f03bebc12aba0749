/* prune_lm.h - the pruning policies that read a causal language model's
 * probabilities (prune.c calls these; see prune.h for the rest):
 *   surprisal  Selective Context's self-information (Li et al. 2023): a
 *              token's score is -log p(token | the tokens before), attend
 *              --surprisal's token.surprisal;
 *   qppl       LongLLMLingua's question-aware coarse step (Jiang et al.
 *              2024): a block's score is how much it raises the
 *              log-likelihood of the question after it, and --fine then
 *              drops the lowest-surprisal units inside the kept blocks. */
#ifndef AK_PRUNE_LM_H
#define AK_PRUNE_LM_H

#include "attnkit/prune.h"
#include "attnkit/select.h"

/* *score = d's token.surprisal f32 [T]; without it, computed into
 * scratch[T] from logits f32 [T, V] of every position; neither: AK_EDATA
 * naming attend --surprisal. */
int ak_prune_surprisal(const ak_doc *d, int64_t T, float *scratch, const float **score,
                       ak_err *err);

/* qppl: for every block b of seg (nblocks) holding no query token,
 *   block_score[b] = sum_i log p(q_i | BOS, block b, q_<i) - log p(q_i | BOS, q_<i)
 * in nats over the query tokens q (query[i] != 0, in order), run through
 * c->lm with the BOS c->lm_bos in front (its tokens are the stream's: the
 * stream's own BOS tokens are left out of blocks and question).  Without a
 * BOS the first question token has no prediction in the baseline, and the
 * sums start at q_1 on both sides.  scored[b] = 1 for the blocks scored
 * (block_score 0 for the others). */
int ak_prune_qppl(const ak_prune_doc_opts *c, const ak_doc *d, const int32_t *ids,
                  const int32_t *seg, int64_t T, int64_t nblocks, const uint8_t *query,
                  float *block_score, uint8_t *scored, ak_err *err);

/* qppl --fine: with the budget B and forced tokens of ak_prune_select
 * (in, o), the blocks of seg are kept whole in order of block_score (the
 * unscored ones first) while the prunable tokens they hold are fewer than
 * min(P, ceil(coarse x (B - forced))), P all prunable tokens; then
 * ak_prune_select under the surprisal policy (scores surprisal[T]) over
 * the forced tokens and those of the kept blocks only.  kept_score of a
 * token in a dropped block is its block's score.  *coarse_kept = the
 * prunable tokens the kept blocks held. */
int ak_prune_select_fine(const ak_prune_input *in, const ak_prune_opts *o, const int32_t *seg,
                         const float *block_score, const uint8_t *scored, int64_t nblocks,
                         double coarse, const float *surprisal, uint8_t *keep, float *kept_score,
                         ak_prune_result *res, int64_t *coarse_kept, ak_err *err);

#endif
