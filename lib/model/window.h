/* window.h - documents longer than the model's context, run in windows
 * with overlap and merged into one set of statistics for the whole
 * document.
 *
 * Windows of W tokens start every W - K tokens (K the overlap), the last
 * one moved back to end at the last token, so every window is full (W
 * tokens, positions 0..W-1) when T >= W.  Each token takes its
 * statistics from the window where it is most central (the largest
 * distance to the window's ends; the earlier window on a tie), so every
 * token sees at least K/2 tokens of context on each side that a window
 * boundary allows.
 *
 * Merged per layer l and head h, with the layer's mask (causal, sliding
 * window) over the window (W) and over the whole document (T):
 *   attn.entropy[i]  the owner window's entropy of query i;
 *   attn.visible[i]  the keys query i sees under the mask over T (what
 *                    ak_stats_check expects of a document of T tokens);
 *   attn.mass[j]     the owner window's corrected mass of key j (its mass
 *                    there / the queries of that window that see it) times
 *                    the queries of the document that see it, scaled so
 *                    that the row sums to T as one pass's does: corrected
 *                    mass, what prune and entropy use, is then the owner
 *                    window's up to one factor per layer and head;
 *   hidden.final[i], logits[i]  the owner window's row (logits `last`: the
 *                    last window's last row).
 * Full probabilities and keys/values do not merge (pairs of tokens in no
 * common window have none): not computed. */
#ifndef AK_WINDOW_H
#define AK_WINDOW_H

#include "attnkit/model.h"

/* The starts of the windows of W tokens, K overlapping (0 <= K < W), over
 * T tokens: *n windows (1 when T <= W); *starts malloc'd. */
int ak_window_starts(int64_t T, int64_t W, int64_t K, int64_t **starts, int64_t *n,
                     ak_err *err);

/* owner[i] = the window (index into starts) where token i is most central. */
void ak_window_owner(const int64_t *starts, int64_t n, int64_t W, int64_t T, int32_t *owner);

/* Embeds and runs ids[T] (types may be NULL) window by window through m
 * and merges into o (entropy, mass [L, H, T], visible [L, T], logits; each
 * may be NULL; probs and kv_* must be NULL) and final [T, D] (or NULL).
 * W >= T runs one pass. */
int ak_window_forward(const ak_model *m, ak_device dev, const int32_t *ids, const int32_t *types,
                      int64_t T, int64_t W, int64_t K, ak_forward_out *o, float *final,
                      ak_err *err);

#endif
