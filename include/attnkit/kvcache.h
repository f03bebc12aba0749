/* kvcache.h - a causal model's key/value cache: what a forward pass keeps
 * so that later tokens need not recompute earlier ones.
 *
 * A cache covers the token ids at positions 0 .. n_tokens-1.  For every
 * layer and KV head it holds the kept entries: their original positions
 * (ascending), keys (after RoPE: a kept key keeps its rotation) and values,
 * and two scores per entry for eviction policies:
 *   mass       received attention mass accumulated over every query that
 *              ran through the cache, summed over the query heads of the
 *              KV head's group (H2O's accumulated attention);
 *   mass_last  the mass received from the last last_w queries of the most
 *              recent forward pass, summed the same way (SnapKV's votes).
 * Without eviction every head keeps all n_tokens entries; after eviction
 * each (layer, head) keeps its own subset.  New tokens go at positions
 * n_tokens, n_tokens+1, ... and attend to the kept entries and to each
 * other under the layer's mask evaluated on original positions.
 *
 * The file format is formats/kvcache.md.
 */
#ifndef AK_KVCACHE_H
#define AK_KVCACHE_H

#include "model.h"

typedef struct ak_kvhead {
    int n, cap;           /* entries kept, allocated */
    int32_t *pos;         /* [n] original positions, ascending */
    float *k, *v;         /* [n, head_dim] */
    float *mass;          /* [n] */
    float *mass_last;     /* [n] */
} ak_kvhead;

typedef struct ak_kvcache {
    /* the model it was made with (a stream header's identity keys) */
    char arch[64];
    char name[256];
    int vocab_size;
    uint32_t config_crc32;
    int n_layers, n_kv_heads, head_dim;
    int n_tokens, cap_tokens;
    int32_t *ids;         /* [n_tokens] the token ids covered */
    int last_w;           /* the window mass_last was computed over; 0: none */
    ak_kvhead *heads;     /* [n_layers * n_kv_heads], layer-major */
    /* The text tokens 0 .. n_text-1 came from, when known (the file's TEXT
     * section): what --protect-regex and --protect need after --load.
     * text[text_len] is UTF-8; offsets[n_text, 2] byte spans of each token
     * in it; segments[n_text] their blocks, or NULL. */
    char *text;
    size_t text_len;
    int64_t *offsets;
    int32_t *segments;
    int n_text;
} ak_kvcache;

/* An empty cache for model m: AK_ECONFIG when m is not causal (a
 * bidirectional model's earlier tokens would see the later ones). */
AK_API int ak_kvcache_new(ak_kvcache **c, const ak_model *m, ak_err *err);
AK_API void ak_kvcache_free(ak_kvcache *c);   /* NULL is fine */

/* The head of (layer, kv head). */
AK_API ak_kvhead *ak_kvcache_head(ak_kvcache *c, int layer, int head);

/* AK_EDATA naming the difference when c was made with another model
 * (arch, vocab_size, config_crc32) or its shapes disagree with m's. */
AK_API int ak_kvcache_check_model(const ak_kvcache *c, const ak_model *m, ak_err *err);

/* Runs ids[T] at positions c->n_tokens .. + T-1 on top of the cache and
 * appends them to it.  hidden[T, hidden_size] (caller's) receives the final
 * hidden states; o as ak_model_forward's, for the T new queries: entropy
 * over every key they see, mass [L, H, T] received by the new keys, and
 *   o->mass_cached [L, H, n_tokens before the call] (or NULL): the mass the
 *   new queries put on the cached keys, by original position (0 for an
 *   evicted one).
 * o->last_w > 0 sets every entry's mass_last (and c->last_w).  probs and
 * kv_k/kv_v are not available here (AK_EUSAGE).  On failure the cache
 * keeps the entries and ids it had (the mass of earlier entries may have
 * grown by the layers that ran). */
AK_API int ak_kvcache_forward(const ak_model *m, ak_device dev, ak_kvcache *c, const int32_t *ids,
                              int T, float *hidden, ak_forward_out *o, ak_err *err);

/* Keeps the entries of (layer, head) whose keep[i] is nonzero (keep has
 * the head's n entries), in order. */
AK_API void ak_kvcache_keep(ak_kvcache *c, int layer, int head, const unsigned char *keep);

/* Drops every entry at position >= pos and the ids from pos on. */
AK_API void ak_kvcache_truncate(ak_kvcache *c, int pos);

/* Room for `extra` more entries in (layer, head), and `extra` more ids. */
AK_API int ak_kvcache_reserve(ak_kvcache *c, int layer, int head, int extra, ak_err *err);

/* Copies the text of the cache's n_tokens tokens into c (replacing any):
 * text[len] UTF-8, offsets[n_tokens, 2] spans within it, segments
 * [n_tokens] or NULL.  AK_EDATA when the text is not UTF-8 or a span lies
 * outside it. */
AK_API int ak_kvcache_set_text(ak_kvcache *c, const char *text, size_t len,
                               const int64_t *offsets, const int32_t *segments, ak_err *err);
/* Forgets the text (after tokens were added that it does not cover). */
AK_API void ak_kvcache_clear_text(ak_kvcache *c);

/* Entries kept in all heads together; bytes of K and V they hold. */
AK_API size_t ak_kvcache_entries(const ak_kvcache *c);

/* Writes c to path (atomically, through ak_output; "-" = stdout).
 * compress: zlib the sections. */
AK_API int ak_kvcache_save(const ak_kvcache *c, const char *path, int compress, ak_err *err);
/* The two halves of ak_kvcache_save, for a program that writes the file
 * only once its whole run has succeeded: the file's bytes (*data malloc'd),
 * then the atomic write of them to path (which refuses to replace any file
 * the process has read: io.h's ak_input_note). */
AK_API int ak_kvcache_encode(const ak_kvcache *c, int compress, void **data, size_t *len,
                             ak_err *err);
AK_API int ak_kvcache_write(const void *data, size_t len, const char *path, ak_err *err);
/* Reads a cache file: every section's CRC-32 and every length checked; a
 * flipped byte or a truncation is AK_EDATA naming the section, and nothing
 * of a bad file is returned. */
AK_API int ak_kvcache_load(ak_kvcache **c, const char *path, ak_err *err);
/* The same from len bytes in memory. */
AK_API int ak_kvcache_parse(ak_kvcache **c, const void *data, size_t len, ak_err *err);

#endif
