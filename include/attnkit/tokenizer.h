/* tokenizer.h - Hugging Face tokenizers in C: tokenizer.json (byte-level BPE,
 * SentencePiece-style BPE with byte fallback, WordPiece) or a GPT-2 style
 * vocab.json + merges.txt, giving the same ids as the `tokenizers` library
 * and byte offsets into the original text.
 *
 *   ak_tokenizer *tk;
 *   ak_tokenizer_load(&tk, "/path/to/model", &err);
 *   ak_encoding enc = {0};
 *   ak_tokenizer_encode(tk, text, len, 0, &enc, &err);   // model tokens only
 *   ak_tokenizer_post(tk, &enc, len, &err);              // BOS/CLS/SEP...
 *   ... enc.ids[i], enc.offsets[2*i], enc.offsets[2*i+1] ...
 *   ak_encoding_free(&enc); ak_tokenizer_free(tk);
 *
 * Offsets are byte [start, end) in the text passed to encode (plus `base`).
 * A token that covers part of a multi-byte character (byte-level BPE, byte
 * fallback) gets the whole character's span, as Hugging Face does.  Text
 * must be valid UTF-8 (check with ak_utf8_check first).
 *
 * A tokenizer is not thread-safe (it keeps a cache and regex scratch).
 */
#ifndef AK_TOKENIZER_H
#define AK_TOKENIZER_H

#include "ak.h"
#include "segment.h"   /* ak_text_blocks: the blocks of tokenize --segments */

typedef struct ak_tokenizer ak_tokenizer;

typedef struct ak_encoding {
    int32_t *ids;
    int64_t *offsets;     /* 2 per token: byte start, end */
    uint8_t *special;     /* 1: an added token marked special */
    int32_t *type_ids;    /* token type (BERT segment) ids */
    size_t n, cap;
} ak_encoding;

/* dir: a model or tokenizer directory holding tokenizer.json, or
 * vocab.json + merges.txt (GPT-2 byte-level BPE, <|endoftext|> special),
 * or a GGUF model (a .gguf file, or a directory holding one and no
 * config.json): its tokenizer.* metadata, built as transformers builds a
 * tokenizer from the file (lib/text/tok_gguf.c). */
/* 1 if dir holds a tokenizer ak_tokenizer_load would read (tokenizer.json,
 * or vocab.json and merges.txt), else 0. */
AK_API int ak_tokenizer_exists(const char *dir);
AK_API int ak_tokenizer_load(ak_tokenizer **tk, const char *dir, ak_err *err);
AK_API void ak_tokenizer_free(ak_tokenizer *tk);

/* Identity for stream headers: the directory's base name, the vocabulary
 * size (config.json's vocab_size when the directory has one, else the
 * largest id + 1), CRC-32 of the tokenizer file(s), whether the model uses
 * token types (BERT).  A GGUF model: the file's base name without .gguf,
 * token_embd.weight's rows (else the token count) and the GGUF metadata
 * checksum, as the model side reports them. */
AK_API const char *ak_tokenizer_name(const ak_tokenizer *tk);
AK_API int64_t ak_tokenizer_vocab_size(const ak_tokenizer *tk);
AK_API uint32_t ak_tokenizer_crc32(const ak_tokenizer *tk);
AK_API int ak_tokenizer_has_token_types(const ak_tokenizer *tk);
/* "bpe-byte-level", "bpe" or "wordpiece" */
AK_API const char *ak_tokenizer_kind(const ak_tokenizer *tk);
/* 1 when tokenize | decode gives the text back byte for byte (no lowercasing
 * or dropped characters in the pipeline). */
AK_API int ak_tokenizer_round_trips(const ak_tokenizer *tk);

/* Appends the tokens of text[0..len) to enc, offsets shifted by base.
 * Added tokens in the text are matched first; no BOS/EOS/CLS/SEP. */
AK_API int ak_tokenizer_encode(ak_tokenizer *tk, const char *text, size_t len, int64_t base,
                               ak_encoding *enc, ak_err *err);
/* Wraps enc with the post-processor's special tokens (the "single"
 * template); leading ones get offsets [0,0), trailing ones [text_len,text_len). */
AK_API int ak_tokenizer_post(ak_tokenizer *tk, ak_encoding *enc, int64_t text_len, ak_err *err);
/* Number of tokens the post-processor adds before the sequence. */
AK_API size_t ak_tokenizer_post_prefix(const ak_tokenizer *tk);

/* Token text for id, per token: out receives the bytes of each token and
 * piece_end[i] the end of token i's bytes in out (may be NULL).  skip[i]
 * nonzero leaves token i out (piece empty).  The concatenation is what the
 * tokenizer's decoder gives (byte-level, byte fallback, metaspace,
 * WordPiece joining without the English clean-up).  Unknown ids: error. */
AK_API int ak_tokenizer_decode(ak_tokenizer *tk, const int32_t *ids, size_t n, const uint8_t *skip,
                               char **out, size_t *outlen, int64_t *piece_end, ak_err *err);
/* The id's token string as stored in the vocabulary (NULL if none). */
AK_API const char *ak_tokenizer_id_to_token(const ak_tokenizer *tk, int32_t id, size_t *len);
AK_API int32_t ak_tokenizer_token_to_id(const ak_tokenizer *tk, const char *s, size_t len);
AK_API int ak_tokenizer_is_special(const ak_tokenizer *tk, int32_t id);

/* tokenize --chat: text as the one user message of the model's chat
 * template with the generation prompt, tokenized as Hugging Face's
 * apply_chat_template(..., add_generation_prompt=True) renders and
 * tokenizes it (no post-processor tokens).  format: NULL for the family
 * recognised in the template (tokenizer.chat_template of a GGUF file,
 * tokenizer_config.json's chat_template), else "chatml" or "gemma".
 * system (NUL-terminated, may be NULL): a system turn replacing the
 * template's default one.  The template's own tokens are marked special
 * with empty offsets at 0 (before the text) or len (after it); the
 * others' offsets point into text.  AK_ECONFIG: no template, one of
 * another family, or a system turn the family lacks. */
AK_API int ak_tokenizer_chat(ak_tokenizer *tk, const char *format, const char *system, const char *text,
                             size_t len, ak_encoding *enc, ak_err *err);


/* Appends one token: its id, its byte span [start, end) of the text, 1 when
 * it is a special token, its type id.  0, or AK_ENOMEM (enc unchanged). */
AK_API int ak_encoding_push(ak_encoding *enc, int32_t id, int64_t start, int64_t end, int special,
                            int32_t type);
AK_API void ak_encoding_clear(ak_encoding *enc);
AK_API void ak_encoding_free(ak_encoding *enc);

/* Checks UTF-8; returns 0 or AK_EDATA naming the first bad byte offset. */
AK_API int ak_utf8_check(const char *s, size_t len, ak_err *err);
/* Copies s with each invalid sequence replaced by U+FFFD; *nbad counts them. */
AK_API int ak_utf8_repair(const char *s, size_t len, char **out, size_t *outlen, size_t *nbad,
                          ak_err *err);

#endif
