/* prune_embed.h - prune's similarity policy: an encoder's sentence
 * embeddings of a prompt's blocks and of its query span, as
 * sentence-transformers computes them for all-MiniLM-L6-v2 (Transformer ->
 * mean Pooling -> Normalize):
 *   ids    = [CLS] + WordPiece(text)[: max_len - 2] + [SEP] (the encoder's own
 *            tokenizer and post-processor; max_len is sentence_bert_config.json's
 *            max_seq_length when the directory has one, else the model's
 *            max positions),
 *   e      = mean over all max_len-or-fewer positions of the final hidden
 *            states (token types 0, attention mask all ones),
 *   e / |e|.
 * Any model runs (a causal one too, its final hidden states pooled the
 * same way), but the numbers mean something for a sentence encoder. */
#ifndef AK_PRUNE_EMBED_H
#define AK_PRUNE_EMBED_H

#include "ak.h"
#include "device.h"
#include "model.h"
#include "stream.h"

typedef struct ak_encoder ak_encoder;

/* The model and tokenizer of dir (ak_model_load, ak_tokenizer_load). */
AK_API int ak_encoder_load(ak_encoder **e, const char *dir, ak_device dev, ak_err *err);
AK_API void ak_encoder_free(ak_encoder *e);   /* NULL is fine */
AK_API int ak_encoder_dim(const ak_encoder *e);
/* The encoder's model, to set how it runs (ak_model_set_threads ...). */
AK_API ak_model *ak_encoder_model(ak_encoder *e);
/* The tokens an input is truncated to, [CLS] and [SEP] included. */
AK_API int ak_encoder_max_tokens(const ak_encoder *e);
/* The unit-length embedding out[dim] of text[0..len) (UTF-8); an empty
 * text (no tokens but the added ones) still runs.  *truncated (may be
 * NULL) is set to 1 when tokens were cut. */
AK_API int ak_encoder_embed(ak_encoder *e, const char *text, size_t len, float *out,
                            int *truncated, ak_err *err);

/* cos[nblocks]: the cosine between the embedding of each block's text
 * (text from its first token's start to its last token's end, over its
 * tokens with seg == b that cover text) and that of the query span's
 * (is_query[T] tokens, first to last); 0 for a block with no text.
 * *ntrunc counts the texts that were truncated.  AK_EDATA when the query
 * span covers no text. */
AK_API int ak_block_similarity(ak_encoder *e, const uint8_t *text, size_t len,
                               const int64_t *offsets, const int32_t *seg, int64_t T,
                               int64_t nblocks, const uint8_t *is_query, float *cos,
                               int *ntrunc, ak_err *err);

#endif
