/* lm.h - what a causal language model says of a token sequence: each
 * token's surprisal, -log p(token_i | tokens_<i) in nats, and the
 * log-probabilities of chosen next tokens.  The log-softmax runs over the vocabulary a
 * tile of the language-model head at a time with a running log-sum-exp
 * (ak_model_logits), keeping only the actual next token's log-probability:
 * [T, V] logits are never held (Gemma 3's V is 262144).  Internal to the
 * library and its programs (not installed). */
#ifndef AK_LM_H
#define AK_LM_H

#include "attnkit/model.h"

/* surprisal[T] from final[T, D], the final hidden states (what
 * ak_model_forward leaves, windows merged or not): surprisal[i] is
 * -log softmax(logits of row i-1)[ids[i]], logits after the model's
 * softcap; surprisal[0] = 0 (nothing predicts it).  AK_ECONFIG without a
 * language-model head, AK_EDATA for an id outside the vocabulary. */
int ak_lm_surprisal(const ak_model *m, const float *final, const int32_t *ids, int64_t T,
                    float *surprisal, ak_err *err);

/* The same from logits[T, V] of every position. */
int ak_lm_surprisal_logits(const float *logits, int64_t V, const int32_t *ids, int64_t T,
                           float *surprisal, ak_err *err);

/* lp[r] = log softmax(logits of h[r])[next[r]] in nats for the final
 * hidden states h[rows, D]: one pass of the head over all rows (what costs
 * is the head's weights, read once per call). */
int ak_lm_next_logprobs(const ak_model *m, const float *h, int64_t rows,
                        const int32_t *next, double *lp, ak_err *err);

/* final[n, D] = the final hidden states of ids[n] at positions 0..n-1
 * under the causal model m (embedded and run, no statistics). */
int ak_lm_final(const ak_model *m, ak_device dev, const int32_t *ids, int n, float *final,
                ak_err *err);

#endif
