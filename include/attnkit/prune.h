/* prune.h - choosing which tokens of a prompt to keep under a budget, and
 * rewriting a document to the kept tokens (formats/tensor-stream.md §5).
 *
 * Three steps, usable separately:
 *   1. a score per token from a policy (policy.h: ak_prune_scores,
 *      ak_query_mass);
 *   2. which tokens are protected (protect.h: ak_protect_*), which are
 *      forced (special tokens, segments == -1), and the selection under the
 *      budget (select.h: ak_prune_select);
 *   3. the document rewritten to the kept tokens (ak_prune_apply).
 * This header holds the units, the rewrite and ak_prune_doc, which runs the
 * three on one document as the prune program does.
 */
#ifndef AK_PRUNE_H
#define AK_PRUNE_H

#include "device.h"
#include "metrics.h"
#include "policy.h"
#include "protect.h"
#include "select.h"
#include "stream.h"

struct ak_model;

/* Sentence ids per token from the text, by the rule of tokenize --segments
 * sentence (ak_text_blocks, segment.h): a token is in the sentence of its
 * first non-space byte.  Tokens that cover no text (start == end) get -1.
 * offsets[T,2] are byte spans of text. */
AK_API int ak_sentence_ids(const uint8_t *text, size_t len, const int64_t *offsets,
                           int64_t T, int32_t *ids, ak_err *err);

/* Word ids per token: a word is a maximal run of tokens whose byte spans
 * touch or overlap with no white space between them (token i joins the
 * word of token i-1 when start_i <= end_{i-1}, the byte at start_i is not
 * white space and the byte before end_{i-1} is not), so "Eiffel", "2024."
 * and "1,230" are single units whatever the tokenizer made of them.
 * Scripts written without spaces (Han, Hiragana, Katakana) break between
 * any two of their characters: a token boundary there starts a word, and
 * the byte-fallback pieces of one character stay together.
 * Tokens that cover no text get -1.  White space is ASCII (segment.h). */
AK_API int ak_word_ids(const uint8_t *text, size_t len, const int64_t *offsets, int64_t T,
                       int32_t *ids, ak_err *err);

/* Joins word units (ids[T] from ak_word_ids, renumbered in place from 0)
 * so that numbers with what they count, dates and names stay whole: word w
 * joins the unit of word w-1, unless w-1 ends a clause (its last byte is
 * one of . ; : ! ? ) ]), when
 *   - w-1 holds a digit ("30 days", "2, June", "1,230 kilometres"),
 *   - w holds a digit and w-1 starts with a capital ("Version 2", "June
 *     1991") or holds a digit too, or
 *   - both start with a capital letter (names: "Mark Adler", "Free
 *     Software Foundation").
 * Digits and capitals are ASCII's (A-Z); a word's text is text[start of its
 * first token, end of its last).  Tokens with id -1 stay -1. */
AK_API int ak_number_words(const uint8_t *text, size_t len, const int64_t *offsets, int64_t T,
                           int32_t *ids, ak_err *err);

/* The kept text, clean: text with each dropped span [a, b) (sorted, not
 * overlapping) cut out, a cut leaving a space (a paragraph break when the
 * cut spans one), then white space normalised: a run holding two or more
 * newlines becomes one blank line, one newline stays a newline, any other
 * run one space; a run at a cut before , . ; : ! ? is removed; leading and
 * trailing white space go, and a non-empty result ends with a newline.
 * *out is malloc'd. */
AK_API int ak_kept_text(const uint8_t *text, size_t len, const int64_t *dropped, int64_t n,
                        char **out, size_t *outlen, ak_err *err);

/* Rewrites d to the kept tokens: tokens, offsets, segments, special,
 * token_types and score.token are reduced; keep[T0] (composed with an
 * existing keep when the document was pruned before), dropped[n,2] and
 * dropped.score[n] written; attn.*, kv.*, hidden, hidden.final, logits
 * and token.surprisal are removed (they describe the unpruned prompt).
 * text is unchanged. */
AK_API int ak_prune_apply(ak_doc *d, const uint8_t *keep, const float *token_score,
                          ak_err *err);

/* What the prune program asks of each document. */
typedef struct ak_prune_doc_opts {
    ak_prune_opts o;
    int policy_set;              /* 0: o.policy is score when the document has
                                    score.token, else mass */
    int protect_first, protect_last;
    const char *const *markers;  /* [nmarkers] ak_protect_marker */
    int nmarkers;
    const char *const *regexes;  /* [nregexes] ak_protect_regex */
    int nregexes;
    const char *query_marker, *query_regex; /* the query policy's span (default:
                                               the last block) */
    long l0, l1;                 /* layers for the attention policies; -1: all */
    ak_agg agg;
    int layers_set, agg_set;     /* given: an error with a policy not using them */
    int no_query;                /* 1: the query span is not protected */
    ak_query_rows query_rows;    /* the query policy's rows */
    struct ak_encoder *encoder;  /* the similarity policy's (prune_embed.h) */
    struct ak_tokenizer *count_with; /* NULL: the budget counts the stream's
                                        tokens; else this tokenizer's tokens of
                                        each unit's text */
    int64_t budget;              /* with budget_set: this budget (prune
                                    --global), in the units of count_with */
    int budget_set;
    /* qppl: the causal LM that scores the blocks (the stream's tokens are
     * its tokens), its device, the BOS its tokenizer puts first (-1: none) */
    const struct ak_model *lm;
    ak_device lm_dev;
    int32_t lm_bos;
    int fine;                    /* qppl: then drop low-surprisal units inside the kept blocks */
    double coarse;               /* fine: blocks kept up to coarse x the budget (0: 2) */
    /* qppl and similarity run a model per block.  With a cache, the first
     * call on a document (ak_prune_doc_rank, or ak_prune_doc) fills it and
     * later calls on the same document read it: prune --global ranks and
     * then prunes each document without running the model twice.  NULL:
     * no cache.  Free with ak_block_cache_free. */
    struct ak_block_cache *cache;
    /* A unit's score from its tokens' scores (policies score, mass, query,
     * entropy, heavy, surprisal; units of several tokens): the mean
     * (AK_UAGG_MEAN, the default), the max, or the mean of the unit_topk
     * highest. */
    int unit_agg;                /* ak_unit_agg */
    int unit_topk;               /* AK_UAGG_TOP: k >= 1 */
    /* Attention sinks: the scores of the first `sinks` tokens are left out
     * of their units' scores (a unit of sinks only scores 0, the lowest an
     * attention score can be): the mass the first positions draw whatever
     * they say does not rank their block. */
    int64_t sinks;
    /* The query policy's heads (retrieval heads, prune --heads): nheads
     * (layer, head) pairs, heads[2k] the layer and heads[2k+1] the head;
     * the mean is taken over those pairs only.  NULL: every head. */
    const int32_t *heads;
    int64_t nheads;
    int keep_numbers;            /* -u word: ak_number_words joins the words of
                                    numbers, dates and names into one unit */
    /* Positional calibration of the query policy ("Found in the Middle",
     * prune --position-baseline): npos points (pos_base[2k] a relative
     * position in [0, 1], ascending; pos_base[2k+1] the attention an
     * irrelevant token there gets from the question, times T); token i's
     * score loses the baseline at i / T (linear between points, the nearest
     * point outside them) divided by T.  NULL: none. */
    const double *pos_base;
    int64_t npos;
} ak_prune_doc_opts;

typedef enum { AK_UAGG_MEAN, AK_UAGG_MAX, AK_UAGG_TOP } ak_unit_agg;

/* One document's per-block scores, for ak_prune_doc_opts.cache; zeroed
 * before its first use. */
typedef struct ak_block_cache {
    int filled;
    int64_t n;          /* blocks */
    float *score;       /* [n]: qppl nats, or similarity cosines */
    uint8_t *scored;    /* [n]: qppl, 1 = the block was scored */
    int truncated;      /* similarity: blocks the encoder truncated */
} ak_block_cache;

AK_API void ak_block_cache_free(ak_block_cache *c);

/* Prunes d in place (policies surprisal and qppl: prune_lm.h; qppl adds
 * qppl.block [nblocks], --fine selects with ak_prune_select_fine): the
 * units of o.unit, the protected tokens (the query
 * span too: the --query-marker / --query-regex matches, else the last
 * block, else the last paragraph of the text), the scores of the policy,
 * ak_prune_select under the budget and ak_prune_apply.  Meta records it:
 * prune_policy, prune_unit, prune_budget, prune_kept, prune_total (in
 * tokens of the stream, or of count_with: then prune_kept counts the tokens
 * of the clean kept text, ak_kept_text, and prune_count_with names the
 * tokenizer), prune_ratio = prune_kept / prune_total, and prune_exact.
 * res (may be NULL) gets the same numbers.  The full document's tokens
 * are kept as full.tokens (and full.token_types, full.offsets) for score. */
AK_API int ak_prune_doc(ak_doc *d, const ak_prune_doc_opts *o, ak_prune_result *res,
                        ak_err *err);

/* A document's rank score for --global: the mean over its selectable
 * tokens (not special, not protected) of the policy's token score times
 * the mean number of keys a query sees (attn.visible; T without it), so
 * that 1 means the attention a uniform query gives; computed by
 * ak_prune_doc when res is given (res_score). */
AK_API int ak_prune_doc_rank(ak_doc *d, const ak_prune_doc_opts *o, double *score,
                             int64_t *size, int64_t *floor_, ak_err *err);

/* The inputs prune reads are sane, before anything is chosen: offsets[T, 2]
 * are spans of text in text order (ak_check_offsets); score.token,
 * score.block, attn.entropy and attn.mass are finite and >= 0; every
 * attn.probs.<l> is finite and in [0, 1 + 1e-5].  Fails naming the document,
 * the tensor and the first bad position. */
AK_API int ak_prune_check_doc(ak_doc *d, ak_err *err);

#endif
