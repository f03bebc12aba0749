/* tok_internal.h - the pieces of the tokenizer shared by lib/tok*.c. */
#ifndef AK_TOK_INTERNAL_H
#define AK_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "attnkit/tokenizer.h"

#include <pcre2.h>
#include <stdint.h>

/* Growable byte buffer with, per byte, the original text's byte span it
 * came from (al[2i], al[2i+1]).  Normalizers map one of these to another. */
typedef struct tk_norm {
    uint8_t *b;
    int64_t *al;   /* NULL: b is the original text itself, starting at off0 */
    size_t n, cap;
    int64_t off0;
} tk_norm;

/* The original span of normalized byte i: its character's. */
static inline int64_t tk_al_start(const tk_norm *t, size_t i)
{
    if (t->al)
        return t->al[2 * i];
    while (i > 0 && (t->b[i] & 0xC0) == 0x80)
        i--;
    return t->off0 + (int64_t)i;
}
static inline int64_t tk_al_end(const tk_norm *t, size_t i)
{
    if (t->al)
        return t->al[2 * i + 1];
    for (i++; i < t->n && (t->b[i] & 0xC0) == 0x80; i++)
        ;
    return t->off0 + (int64_t)i;
}

int tk_norm_reserve(tk_norm *t, size_t more);
int tk_norm_push(tk_norm *t, const uint8_t *s, size_t n, int64_t start, int64_t end);
void tk_norm_free(tk_norm *t);

/* A piece of the normalized text: bytes [s, e). */
typedef struct tk_span { size_t s, e; } tk_span;
typedef struct tk_spans { tk_span *v; size_t n, cap; } tk_spans;
int tk_spans_push(tk_spans *p, size_t s, size_t e);

/* Vocabulary: id -> bytes, and bytes -> id through an open-addressing index. */
typedef struct tk_vocab {
    uint8_t **tok;
    uint32_t *len;
    size_t n;            /* ids 0..n-1; missing ids have tok == NULL */
    uint8_t *second;     /* 1: indexed only where no other id has the string */
    int last_wins;       /* a string held by several ids finds the highest
                            (GGUF vocabularies, read into a dict by HF) */
    uint64_t *slot;      /* hash tag | id; all ones = empty (tok_model.c) */
    size_t mask;
} tk_vocab;

int tk_vocab_init(tk_vocab *v, size_t n);
/* Sets id's string (copied); duplicates of an existing string are errors
 * in the caller's hands: returns 1 if the string was already present. */
int tk_vocab_set(tk_vocab *v, int32_t id, const uint8_t *s, size_t n);
int tk_vocab_index(tk_vocab *v);
int32_t tk_vocab_find(const tk_vocab *v, const uint8_t *s, size_t n);
void tk_vocab_free(tk_vocab *v);
uint64_t tk_hash(const uint8_t *s, size_t n);

/* normalizers */
enum { TN_NFC, TN_NFD, TN_NFKC, TN_NFKD, TN_LOWER, TN_PREPEND, TN_REPLACE, TN_BERT,
       TN_STRIP_ACCENTS };
typedef struct tk_normalizer {
    int type;
    char *a, *b;          /* PREPEND: a; REPLACE: a -> b */
    size_t alen, blen;
    int clean_text, chinese, strip_accents, lowercase; /* BERT */
} tk_normalizer;

/* pre-tokenizers */
enum { TP_SPLIT, TP_BERT, TP_WHITESPACE_SPLIT };
enum { TB_REMOVED, TB_ISOLATED, TB_MERGED_PREV, TB_MERGED_NEXT, TB_CONTIGUOUS };
typedef struct tk_pretok {
    int type;
    pcre2_code *re;
    int jit;
    int behavior, invert;
} tk_pretok;

typedef struct tk_added {
    uint8_t *s;           /* content */
    size_t n;
    uint8_t *m;           /* what is matched: the content, normalized when the
                             token is (HF normalizes it too); may alias s */
    size_t mn;
    int32_t id;
    int special, lstrip, rstrip, normalized, single_word;
} tk_added;

/* merges: (left id, right id) -> rank, new id */
typedef struct tk_merges {
    uint64_t *key;
    int32_t *rank, *id;
    size_t mask, n;
} tk_merges;

/* Cache of BPE results for pre-tokens seen before. */
typedef struct tk_cache {
    uint64_t *hash;       /* 0 = empty */
    uint32_t *koff, *klen, *voff, *vlen;
    uint8_t *keys;        /* pooled key bytes */
    int32_t *vals;        /* pooled results: id, start, end triples */
    size_t mask, used, keys_n, keys_cap, vals_n, vals_cap;
} tk_cache;

enum { TK_BPE, TK_WORDPIECE };
enum { TD_BYTELEVEL, TD_SP, TD_WORDPIECE, TD_PLAIN };

struct ak_tokenizer {
    char name[256];
    int64_t vocab_size;
    uint32_t crc;
    int model;            /* TK_BPE / TK_WORDPIECE */
    int byte_level;       /* vocabulary strings are byte-level encoded */
    tk_vocab vocab;       /* model vocabulary in raw bytes (byte-level decoded) */
    /* BPE */
    tk_merges merges;
    int byte_fallback, fuse_unk, ignore_merges;
    int sp_split;         /* words may be cut before each U+2581 that follows another character */
    int32_t unk_id;       /* -1: none */
    int32_t byte_tok[256];  /* <0xXX> ids (byte fallback) or single-byte ids */
    tk_cache cache;
    /* WordPiece */
    char wp_prefix[16];
    size_t wp_prefix_len;
    int wp_max_chars;
    /* pipeline */
    tk_normalizer *norm;
    size_t nnorm;
    tk_pretok *pre;
    size_t npre;
    tk_added *added;
    size_t nadded;
    int32_t *added_of_id;  /* id -> index in added, or -1; size id_cap */
    size_t id_cap;
    int has_norm_added;    /* some added tokens match normalized text */
    uint32_t added_first[257]; /* added_order[added_first[b]..added_first[b+1]): */
    uint32_t *added_order;     /* tokens starting with byte b, longest first */
    /* post-processor: single template */
    int32_t *post_ids;
    int32_t *post_types;
    size_t npost, npost_prefix;
    int32_t seq_type;
    int has_types;
    /* decoder */
    int decoder;
    int sp_strip_start;    /* leading spaces the SP decoder strips */
    int sp_bytes;          /* the SP decoder turns <0xXX> into bytes */
    int lossy_norm;        /* the pipeline changes text (lowercase, accents...) */
    int bytes_optional;    /* byte-level vocabulary may lack bytes (dropped, as HF does) */
    /* chat: the template text (tokenizer.chat_template), the BOS string */
    char *chat_template;
    size_t chat_template_len;
    int32_t bos_id;        /* -1: none */
    /* scratch */
    pcre2_match_data *md;
    tk_norm nbuf, nbuf2, nbuf3;
    /* Metaspace pre-tokenizer (first in the chain): spaces to the
     * replacement, which is prepended always / to the text's first piece */
    int metaspace, ms_prepend; /* ms_prepend: 0 never, 1 first, 2 always */
    char ms_rep[8];
    size_t ms_replen;
    tk_spans in_spans;
    tk_spans *lvl;         /* per pre-tokenizer: its output pieces, in batches */
    void *scratch;
    size_t scratch_cap;
};

int tk_normalize(ak_tokenizer *tk, const tk_normalizer *nz, const tk_norm *in, tk_norm *out,
                 ak_err *err);
/* Consumes a batch of pieces (and sets pieces->n = 0). */
typedef int (*tk_sink)(void *ctx, tk_spans *pieces, ak_err *err);
/* Splits the pieces of in; the output goes to sink in batches of a few
 * thousand pieces through out, so memory stays bounded on long text. */
int tk_pretokenize(ak_tokenizer *tk, const tk_pretok *p, const tk_norm *t, const tk_spans *in,
                   tk_spans *out, tk_sink sink, void *ctx, ak_err *err);
/* Runs the model on piece [s, e) of t, appending tokens to enc. */
int tk_bpe_word(ak_tokenizer *tk, const tk_norm *t, size_t s, size_t e, ak_encoding *enc,
                int64_t base, ak_err *err);
int tk_wordpiece_word(ak_tokenizer *tk, const tk_norm *t, size_t s, size_t e, ak_encoding *enc,
                      int64_t base, ak_err *err);
void tk_cache_free(tk_cache *c);
void tk_merges_free(tk_merges *m);
int tk_merges_add(tk_merges *m, int32_t a, int32_t b, int32_t rank, int32_t id);
int tk_merges_init(tk_merges *m, size_t n);

/* Shared by the loaders (tokenizer.c, tok_gguf.c). */
extern const char tk_gpt2_regex[];
int tk_compile_re(tk_pretok *p, const char *pat, size_t len, int literal, ak_err *err);
int tk_add_pretok(ak_tokenizer *tk, tk_pretok p);
int tk_add_normalizer(ak_tokenizer *tk, tk_normalizer nz);
int tk_post_push(ak_tokenizer *tk, int32_t id, int32_t type);
int tk_ensure_ids(ak_tokenizer *tk, size_t n);
int tk_index_added(ak_tokenizer *tk, ak_err *err);
void tk_set_sp_split(ak_tokenizer *tk);
/* Byte tables, the pre-tokenizer's scratch: the last step of every loader. */
int tk_finish_model(ak_tokenizer *tk, ak_err *err);
/* Builds tk from a GGUF file's tokenizer.* metadata (tok_gguf.c). */
int tk_load_gguf(ak_tokenizer *tk, const char *path, ak_err *err);

/* Python's str.isspace() for one code point. */
int tk_py_space(uint32_t cp);

/* GPT-2's byte <-> printable code point mapping. */
void tk_bytes_to_unicode(uint32_t cp_of_byte[256]);

#endif
