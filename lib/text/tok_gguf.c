/* tok_gguf.c - a tokenizer from a GGUF file's tokenizer.* metadata, built
 * the way Hugging Face transformers builds one from the same file
 * (AutoTokenizer.from_pretrained(dir, gguf_file=...)), so the ids agree:
 *
 *   gpt2   byte-level BPE: the vocabulary in GPT-2's byte spelling (a token
 *          using other characters stands for its UTF-8 bytes), the file's
 *          merges, the split regex tokenizer.ggml.pre names; for the
 *          Qwen architectures an NFC normalizer first.
 *   llama  SentencePiece-style BPE with byte fallback (<0xXX>) and fused
 *          unknowns.  Without tokenizer.ggml.merges the merges are derived
 *          from the vocabulary: every split of a token into two tokens,
 *          best first by the token's score (Gemma: by its position in the
 *          file, since Gemma's scores do not follow its merge order).
 *          Gemma: spaces become U+2581 by a normalizer, no prefix space,
 *          and tokens of spaces are spelled with U+2581.  Others: a
 *          Metaspace pre-tokenizer prepending U+2581 to the text when
 *          tokenizer.ggml.add_space_prefix (default true) says so.
 *   bert   WordPiece ("##") with uncased BERT's normalizer and
 *          pre-tokenizer, [CLS] ... [SEP]; the vocabulary is in llama.cpp's
 *          spelling (U+2581 before a word's first piece, none before a
 *          continuation).  transformers cannot read these; the reference is
 *          the same vocabulary's tokenizer.json.
 *
 * Control tokens (token type 3) and the bos/eos/unknown/padding ids' tokens
 * are special added tokens, user-defined ones (type 4) plain added tokens,
 * all matched whole in the raw text.  A
 * string held by several ids finds the last (HF reads the list into a
 * dict).  add_bos_token (default true for llama) and add_eos_token make the
 * post-processor. */
#include "tok_internal.h"
#include "core/buf.h"
#include "format/gguf.h"
#include "model/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_ID (1 << 24)
#define TT_CONTROL 3
#define TT_USER 4

/* The split regexes transformers uses for the pre-tokenizer names it knows
 * (integrations/gguf: GGUF_PRE_TOKENIZER_SPLITS); the names it does not
 * know get GPT-2's ByteLevel regex.  Names neither side knows are refused. */
static const char LLAMA3_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT4O_SPLIT[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char TEKKEN_SPLIT[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const struct { const char *name, *re; } PRE_SPLITS[] = {
    {"default", NULL}, {"gpt2", NULL}, {"gpt-2", NULL}, {"smollm", NULL},
    {"llama3", LLAMA3_SPLIT}, {"llama-v3", LLAMA3_SPLIT}, {"llama-bpe", LLAMA3_SPLIT},
    {"falcon3", LLAMA3_SPLIT}, {"falcon-h1", LLAMA3_SPLIT}, {"pixtral", LLAMA3_SPLIT},
    {"dbrx", LLAMA3_SPLIT}, {"smaug-bpe", LLAMA3_SPLIT}, {"lfm2", LLAMA3_SPLIT},
    {"qwen2", QWEN2_SPLIT}, {"deepseek-r1-qwen", QWEN2_SPLIT}, {"megrez", QWEN2_SPLIT},
    {"gpt-4o", GPT4O_SPLIT}, {"llama4", GPT4O_SPLIT}, {"minimax-m2", GPT4O_SPLIT},
    {"tekken", TEKKEN_SPLIT},
};

/* Python's str.isspace(), which Jinja's trim and HF's respelling use. */
int tk_py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

typedef struct gload {
    ak_tokenizer *tk;
    const ak_gguf *g;
    const ak_gguf_kv *tokens, *types, *scores, *merges;
    size_t n;
    int byte_level, gemma, bert;
    int16_t byte_of_cp[512];
    uint8_t *buf;          /* scratch for one token's raw bytes */
    size_t bufcap;
    uint8_t *respelled;    /* 1: token i is stored respelled (gemma spaces) */
    int32_t named[6];      /* bos/cls, eos/sep, unk, pad, mask ids (-1: none): special tokens too */
} gload;

static int reserve(gload *L, size_t n)
{
    if (n <= L->bufcap)
        return 0;
    uint8_t *b = realloc(L->buf, n + 64);
    if (!b)
        return -1;
    L->buf = b, L->bufcap = n + 64;
    return 0;
}

/* Code points of s[0..n), or -1 when it is not UTF-8. */
static long cp_count(const uint8_t *s, size_t n)
{
    long k = 0;
    for (size_t i = 0; i < n; k++) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l <= 0)
            return -1;
        i += (size_t)l;
    }
    return k;
}

/* The raw bytes a vocabulary string stands for, into L->buf.  Byte-level:
 * a string of byte-alphabet characters is decoded, any other is its own
 * UTF-8 (HF respells it in the alphabet).  Gemma: a token of white space
 * holding a space is U+2581 per character.  *spelled_as_is: the string as
 * HF keys it is the file's string. */
static int raw_token(gload *L, const uint8_t *s, size_t n, size_t *on, int *as_is, ak_err *err)
{
    long ncp = cp_count(s, n);
    if (ncp < 0)
        return ak_fail(err, AK_EDATA, "a token is not UTF-8");
    if (reserve(L, n * 3 + 3))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    *as_is = 1;
    if (L->byte_level) {
        size_t k = 0;
        int alphabet = 1;
        for (size_t i = 0; i < n && alphabet;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (cp >= 512 || L->byte_of_cp[cp] < 0)
                alphabet = 0;
            else
                L->buf[k++] = (uint8_t)L->byte_of_cp[cp];
            i += (size_t)l;
        }
        if (alphabet) {
            *on = k;
            return 0;
        }
        *as_is = 0;
    } else if (L->bert) {
        /* llama.cpp's "phantom space" spelling: a word's first piece
         * carries U+2581, a continuation none; [NAMES] are kept */
        if (n >= 3 && !memcmp(s, "\xE2\x96\x81", 3)) {
            memcpy(L->buf, s + 3, n - 3);
            *on = n - 3;
        } else if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
            memcpy(L->buf, s, n);
            *on = n;
        } else {
            memcpy(L->buf, "##", 2);
            memcpy(L->buf + 2, s, n);
            *on = n + 2;
        }
        return 0;
    } else if (L->gemma) {
        int space = 0, blank = 1;
        for (size_t i = 0; i < n && blank;) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
            blank = tk_py_space((uint32_t)cp);
            space |= cp == ' ';
            i += (size_t)l;
        }
        if (space && blank) {
            for (long i = 0; i < ncp; i++)
                memcpy(L->buf + 3 * i, "\xE2\x96\x81", 3);
            *on = (size_t)ncp * 3;
            *as_is = 0;
            return 0;
        }
    }
    memcpy(L->buf, s, n);
    *on = n;
    return 0;
}

static int token_type(const gload *L, size_t i)
{
    return L->types ? (int)ak_gguf_arr_i64(L->types, i) : 1;
}

static int load_vocab(gload *L, ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    if (tk_vocab_init(&tk->vocab, L->n) || tk_ensure_ids(tk, L->n) || !(L->respelled = calloc(L->n, 1)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    tk->vocab.last_wins = 1;
    for (size_t i = 0; i < L->n; i++) {
        size_t len, rn;
        const uint8_t *s = (const uint8_t *)ak_gguf_arr_str(L->tokens, i, &len);
        int as_is, rc = raw_token(L, s, len, &rn, &as_is, err);
        if (rc)
            return ak_fail(err, rc, "tokenizer.ggml.tokens[%zu] is not UTF-8", i);
        L->respelled[i] = !as_is;
        if (tk_vocab_set(&tk->vocab, (int32_t)i, L->buf, rn))
            return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    if (tk_vocab_index(&tk->vocab))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    return 0;
}

/* tokenizer.ggml.merges: "left right" in the vocabulary's spelling. */
static int file_merges(gload *L, ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    const ak_gguf_kv *m = L->merges;
    if (tk_merges_init(&tk->merges, m->alen))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    uint8_t *cat = NULL;
    size_t catcap = 0;
    int rc = 0;
    for (uint64_t i = 0; i < m->alen && !rc; i++) {
        size_t len, an, bn;
        int as_is;
        const char *s = ak_gguf_arr_str(m, i, &len);
        const char *sp = memchr(s, ' ', len);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s))) {
            rc = ak_fail(err, AK_EDATA, "tokenizer.ggml.merges[%llu] is not two tokens", (unsigned long long)i);
            break;
        }
        if ((rc = raw_token(L, (const uint8_t *)s, (size_t)(sp - s), &an, &as_is, err)))
            break;
        if (an * 2 + len * 3 + 8 > catcap) {
            catcap = an * 2 + len * 3 + 64;
            uint8_t *c = realloc(cat, catcap);
            if (!c) {
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
                break;
            }
            cat = c;
        }
        memcpy(cat, L->buf, an);
        int32_t ia = tk_vocab_find(&tk->vocab, cat, an);
        if ((rc = raw_token(L, (const uint8_t *)sp + 1, len - (size_t)(sp + 1 - s), &bn, &as_is, err)))
            break;
        if (an + bn > catcap) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            break;
        }
        int32_t ib = tk_vocab_find(&tk->vocab, L->buf, bn);
        memcpy(cat + an, L->buf, bn);
        int32_t inew = tk_vocab_find(&tk->vocab, cat, an + bn);
        if (ia < 0 || ib < 0 || inew < 0)
            rc = ak_fail(err, AK_EDATA, "tokenizer.ggml.merges[%llu] (%.*s): token not in the vocabulary",
                         (unsigned long long)i, (int)(len > 60 ? 60 : len), s);
        else if (tk_merges_add(&tk->merges, ia, ib, (int32_t)i, inew))
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
    }
    free(cat);
    return rc;
}

/* A merge derived from the vocabulary (transformers' generate_merges). */
typedef struct dmerge {
    double score;
    int32_t lcp, rcp;      /* lengths of the two sides in characters */
    int32_t order;         /* where the merged token first appears */
    int32_t left, right, merged;
} dmerge;

/* arg: an int, nonzero for descending scores (qsort_r: no file-level
 * flag, so two threads may load tokenizers at once) */
static int dmerge_cmp(const void *x, const void *y, void *arg)
{
    const dmerge *a = x, *b = y;
    int s = *(const int *)arg ? -1 : 1;
    if (a->score != b->score)
        return a->score < b->score ? -s : s;
    if (a->lcp != b->lcp)
        return a->lcp < b->lcp ? -s : s;
    if (a->rcp != b->rcp)
        return a->rcp < b->rcp ? -s : s;
    /* Python's sort is stable: ties keep the order they were made in */
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    if (a->left != b->left)
        return a->left < b->left ? -1 : 1;
    return (a->right > b->right) - (a->right < b->right);
}

/* Every split of each distinct token (taken where it first appears, with
 * the score of its last appearance, as a dict built from the list holds)
 * into two tokens, sorted by score (descending when by scores or
 * positions, ascending when by ids), then by the sides' lengths. */
static int derive_merges(gload *L, ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    int by_scores = !L->gemma && !L->byte_level;
    if (by_scores && !L->scores)
        return ak_fail(err, AK_ECONFIG, "GGUF has neither tokenizer.ggml.merges nor tokenizer.ggml.scores");
    uint8_t *seen = calloc(L->n, 1);
    size_t cap = L->n * 2 + 16, nm = 0;
    dmerge *v = malloc(cap * sizeof *v);
    int rc = 0;
    if (!seen || !v) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t id = 0; id < L->n; id++) {
        const uint8_t *t = tk->vocab.tok[id];
        size_t len = tk->vocab.len[id];
        int32_t last = tk_vocab_find(&tk->vocab, t, len);
        if (last < 0 || seen[last])
            continue;
        seen[last] = 1;
        double score = L->gemma ? -(double)last : L->byte_level ? (double)last : ak_gguf_arr_f64(L->scores, (uint64_t)last);
        if (score != score)
            score = -1e300; /* a NaN score sorts last, keeping the comparison a total order */
        long total = L->byte_level ? (long)len : cp_count(t, len), lcp = 0;
        for (size_t k = 1; k < len; k++) {
            if (!L->byte_level && (t[k] & 0xC0) == 0x80)
                continue;
            lcp++;
            int32_t a = tk_vocab_find(&tk->vocab, t, k), b = a >= 0 ? tk_vocab_find(&tk->vocab, t + k, len - k) : -1;
            if (a < 0 || b < 0)
                continue;
            if (ak_grow((void **)&v, &cap, nm + 1, sizeof *v)) {
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
                goto out;
            }
            v[nm++] = (dmerge){score, (int32_t)lcp, (int32_t)(total - lcp), (int32_t)id, a, b, last};
        }
    }
    int desc = !L->byte_level;
    qsort_r(v, nm, sizeof *v, dmerge_cmp, &desc);
    if (tk_merges_init(&tk->merges, nm)) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nm; i++)
        if (tk_merges_add(&tk->merges, v[i].left, v[i].right, (int32_t)i, v[i].merged)) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            goto out;
        }
out:
    free(seen);
    free(v);
    return rc;
}

/* Control tokens as special added tokens, then user-defined ones as plain
 * ones, each matched whole in the raw text. */
static int load_added(gload *L, ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    size_t cnt = 0;
    for (size_t i = 0; i < L->n; i++) {
        int t = token_type(L, i);
        cnt += t == TT_CONTROL || t == TT_USER;
    }
    cnt += 6;
    if (!(tk->added = calloc(cnt ? cnt : 1, sizeof *tk->added)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < L->n; i++) {
            int t = token_type(L, i);
            for (int k = 0; k < 6 && !pass; k++)
                if (L->named[k] == (int32_t)i)
                    t = TT_CONTROL; /* transformers adds the named special tokens */
            if (t != (pass ? TT_USER : TT_CONTROL) || L->respelled[i])
                continue; /* HF keys the file's string: a respelled one is not found */
            size_t len;
            const char *s = ak_gguf_arr_str(L->tokens, i, &len);
            if (!len)
                continue;
            int32_t id = tk_vocab_find(&tk->vocab, tk->vocab.tok[i], tk->vocab.len[i]);
            if (id < 0 || tk->added_of_id[id] >= 0)
                continue;
            tk_added *a = &tk->added[tk->nadded];
            if (!(a->s = malloc(len + 1)))
                return ak_fail(err, AK_ENOMEM, "out of memory");
            memcpy(a->s, s, len);
            a->s[len] = 0;
            a->n = len;
            a->m = a->s, a->mn = len;
            a->id = id;
            a->special = !pass;
            tk->added_of_id[id] = (int32_t)tk->nadded++;
        }
    }
    return tk_index_added(tk, err);
}

static int get_id(const ak_gguf *g, const char *key, size_t n, int32_t *out, ak_err *err)
{
    uint64_t v;
    int rc = ak_gguf_get_u64(g, key, &v, err);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return 0;
    if (v >= n)
        return ak_fail(err, AK_EDATA, "%s %llu is not a token id (%zu tokens)", key, (unsigned long long)v, n);
    *out = (int32_t)v;
    return 0;
}

static const ak_gguf_kv *get_array(const ak_gguf *g, const char *key, int numeric, size_t n,
                                   int *rc, ak_err *err)
{
    const ak_gguf_kv *kv = ak_gguf_get(g, key);
    *rc = 0;
    if (!kv)
        return NULL;
    int ok = kv->type == AK_GGUF_ARRAY &&
             (numeric ? kv->atype != AK_GGUF_STRING && kv->atype != AK_GGUF_ARRAY && kv->atype != AK_GGUF_BOOL
                      : kv->atype == AK_GGUF_STRING);
    if (!ok)
        *rc = ak_fail(err, AK_EDATA, "%s is not an array of %s", key, numeric ? "numbers" : "strings");
    else if (n && kv->alen != n)
        *rc = ak_fail(err, AK_EDATA, "%s has %llu entries for %zu tokens", key, (unsigned long long)kv->alen, n);
    return *rc ? NULL : kv;
}

/* The normalizers, pre-tokenizers and decoder of the model's family:
 * WordPiece (bert), byte-level BPE split by pre_re (gpt2), SentencePiece
 * (llama; Gemma's own way). */
static int set_pipeline(gload *L, const ak_arch *a, const char *pre_re, int32_t unk, int add_space,
                        ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    int rc;
    if (L->bert) {
        /* uncased BERT's pipeline (llama.cpp lowercases every WordPiece
         * vocabulary): BertNormalizer, BertPreTokenizer, WordPiece "##" */
        strcpy(tk->wp_prefix, "##");
        tk->wp_prefix_len = 2;
        tk->wp_max_chars = 100;
        tk->has_types = 1;
        tk->unk_id = unk >= 0 ? unk : tk_vocab_find(&tk->vocab, (const uint8_t *)"[UNK]", 5);
        tk->decoder = TD_WORDPIECE;
        tk->lossy_norm = 1;
        tk_normalizer nz = {.type = TN_BERT, .clean_text = 1, .chinese = 1, .strip_accents = 1, .lowercase = 1};
        tk_pretok p = {.type = TP_BERT};
        if (tk_add_normalizer(tk, nz) || tk_add_pretok(tk, p))
            return ak_fail(err, AK_ENOMEM, "out of memory");
    } else if (L->byte_level) {
        tk->decoder = TD_BYTELEVEL;
        tk->bytes_optional = 1;
        /* transformers' converter for the Qwen architectures (Qwen2Converter)
         * puts an NFC normalizer before the split */
        if (a && a->tok_nfc) {
            tk_normalizer nz = {.type = TN_NFC};
            tk->lossy_norm = 1;
            if (tk_add_normalizer(tk, nz))
                return ak_fail(err, AK_ENOMEM, "out of memory");
        }
        tk_pretok p = {.type = TP_SPLIT, .behavior = TB_ISOLATED};
        if ((rc = tk_compile_re(&p, pre_re, strlen(pre_re), 0, err)))
            return rc;
        if (tk_add_pretok(tk, p)) {
            pcre2_code_free(p.re);
            return ak_fail(err, AK_ENOMEM, "out of memory");
        }
    } else {
        tk->byte_fallback = tk->fuse_unk = 1;
        tk->unk_id = tk_vocab_find(&tk->vocab, (const uint8_t *)"<unk>", 5);
        tk->decoder = TD_SP;
        tk->sp_bytes = 1;
        if (L->gemma) {
            tk_normalizer nz = {.type = TN_REPLACE, .a = strdup(" "), .alen = 1, .b = strdup("\xE2\x96\x81"), .blen = 3};
            if (!nz.a || !nz.b || tk_add_normalizer(tk, nz)) {
                free(nz.a), free(nz.b);
                return ak_fail(err, AK_ENOMEM, "out of memory");
            }
            tk_pretok p = {.type = TP_SPLIT, .behavior = TB_MERGED_PREV};
            if ((rc = tk_compile_re(&p, " ", 1, 1, err)))
                return rc;
            if (tk_add_pretok(tk, p)) {
                pcre2_code_free(p.re);
                return ak_fail(err, AK_ENOMEM, "out of memory");
            }
        } else {
            tk->metaspace = 1;
            memcpy(tk->ms_rep, "\xE2\x96\x81", 4);
            tk->ms_replen = 3;
            tk->ms_prepend = add_space ? 1 : 0;
            tk->sp_strip_start = add_space;
        }
        tk_set_sp_split(tk);
    }
    return 0;
}

static int build(gload *L, const char *model, size_t model_len, ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    const ak_gguf *g = L->g;
    int rc;
    char arch[64] = "";
    const char *s;
    size_t sl;
    if ((rc = ak_gguf_get_str(g, "general.architecture", &s, &sl, err)) < 0)
        return rc;
    if (rc == 0)
        snprintf(arch, sizeof arch, "%.*s", (int)(sl < 63 ? sl : 63), s);
    L->byte_level = model_len == 4 && !memcmp(model, "gpt2", 4);
    int llama = model_len == 5 && !memcmp(model, "llama", 5);
    L->bert = model_len == 4 && !memcmp(model, "bert", 4);
    if (!L->byte_level && !llama && !L->bert)
        return ak_fail(err, AK_ECONFIG, "tokenizer.ggml.model %.*s is not supported (gpt2, llama and bert are)",
                       (int)(model_len > 40 ? 40 : model_len), model);
    const ak_arch *a = ak_arch_find(arch, AK_ARCH_GGUF_TOKENIZER);
    L->gemma = llama && a && a->tok_gemma;

    /* the pre-tokenizer, checked before the vocabulary is read */
    const char *pre_re = NULL;
    if (L->byte_level) {
        const char *pre = "default";
        size_t pl = 7;
        if ((rc = ak_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pl, err)) < 0)
            return rc;
        size_t k, np = sizeof PRE_SPLITS / sizeof PRE_SPLITS[0];
        for (k = 0; k < np; k++)
            if (strlen(PRE_SPLITS[k].name) == pl && !memcmp(PRE_SPLITS[k].name, pre, pl))
                break;
        if (k == np)
            return ak_fail(err, AK_ECONFIG, "tokenizer.ggml.pre %.*s is not supported", (int)(pl > 40 ? 40 : pl), pre);
        pre_re = PRE_SPLITS[k].re ? PRE_SPLITS[k].re : tk_gpt2_regex;
    }

    L->tokens = get_array(g, "tokenizer.ggml.tokens", 0, 0, &rc, err);
    if (rc)
        return rc;
    if (!L->tokens || L->tokens->alen == 0)
        return ak_fail(err, AK_EDATA, "GGUF has no tokenizer.ggml.tokens");
    if (L->tokens->alen > MAX_ID)
        return ak_fail(err, AK_EDATA, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)L->tokens->alen);
    L->n = (size_t)L->tokens->alen;
    L->types = get_array(g, "tokenizer.ggml.token_type", 1, L->n, &rc, err);
    if (!rc)
        L->scores = get_array(g, "tokenizer.ggml.scores", 1, L->n, &rc, err);
    if (!rc)
        L->merges = get_array(g, "tokenizer.ggml.merges", 0, 0, &rc, err);
    if (rc)
        return rc;
    int32_t bos = -1, eos = -1, unk = -1, pad = -1, mask = -1;
    int add_bos = llama || L->bert, add_eos = L->bert, add_space = 1;
    if ((rc = get_id(g, "tokenizer.ggml.bos_token_id", L->n, &bos, err)) ||
        (rc = get_id(g, "tokenizer.ggml.eos_token_id", L->n, &eos, err)) ||
        (rc = get_id(g, "tokenizer.ggml.unknown_token_id", L->n, &unk, err)) ||
        (rc = get_id(g, "tokenizer.ggml.padding_token_id", L->n, &pad, err)) ||
        (rc = get_id(g, "tokenizer.ggml.mask_token_id", L->n, &mask, err)) ||
        (L->bert && (rc = get_id(g, "tokenizer.ggml.cls_token_id", L->n, &bos, err))) ||
        (L->bert && (rc = get_id(g, "tokenizer.ggml.seperator_token_id", L->n, &eos, err))) || /* sic */
        (L->bert && (rc = get_id(g, "tokenizer.ggml.separator_token_id", L->n, &eos, err))) ||
        ak_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos, err) < 0 ||
        ak_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos, err) < 0 ||
        ak_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &add_space, err) < 0)
        return rc ? rc : err->code;
    tk->bos_id = bos;
    L->named[0] = bos, L->named[1] = eos, L->named[2] = unk, L->named[3] = pad, L->named[4] = mask;
    L->named[5] = -1;

    tk->model = L->bert ? TK_WORDPIECE : TK_BPE;
    tk->byte_level = L->byte_level;
    if ((rc = load_vocab(L, err)) ||
        (!L->bert && (rc = (L->merges ? file_merges(L, err) : derive_merges(L, err)))) ||
        (rc = load_added(L, err)))
        return rc;
    if ((rc = set_pipeline(L, a, pre_re, unk, add_space, err)))
        return rc;
    if ((add_bos && bos < 0) || (add_eos && eos < 0))
        return ak_fail(err, AK_EDATA, "tokenizer.ggml.add_%s_token is set but there is no %s token id",
                       add_bos && bos < 0 ? "bos" : "eos", add_bos && bos < 0 ? "bos" : "eos");
    if ((add_bos && tk_post_push(tk, bos, 0)) || (add_eos && tk_post_push(tk, eos, 0)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    tk->npost_prefix = add_bos ? 1 : 0;

    if ((rc = ak_gguf_get_str(g, "tokenizer.chat_template", &s, &sl, err)) < 0)
        return rc;
    if (rc == 0) {
        if (!(tk->chat_template = malloc(sl + 1)))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        memcpy(tk->chat_template, s, sl);
        tk->chat_template[sl] = 0;
        tk->chat_template_len = sl;
    }
    /* identity: what the model side writes for the same file */
    const ak_gguf_tensor *te = ak_gguf_tensor_find(g, "token_embd.weight");
    tk->vocab_size = te && te->ndim == 2 ? te->ne[1] : (int64_t)L->n;
    tk->crc = g->meta_crc32;
    return tk_finish_model(tk, err);
}

int tk_load_gguf(ak_tokenizer *tk, const char *path, ak_err *err)
{
    ak_gguf g;
    int rc = ak_gguf_open(&g, path, err);
    if (rc)
        return rc;
    gload L = {.tk = tk, .g = &g};
    uint32_t cps[256];
    tk_bytes_to_unicode(cps);
    memset(L.byte_of_cp, 0xff, sizeof L.byte_of_cp);
    for (int b = 0; b < 256; b++)
        L.byte_of_cp[cps[b]] = (int16_t)b;
    const char *model;
    size_t ml;
    rc = ak_gguf_get_str(&g, "tokenizer.ggml.model", &model, &ml, err);
    if (rc == 1)
        rc = ak_fail(err, AK_ECONFIG, "GGUF has no tokenizer (tokenizer.ggml.model)");
    if (!rc)
        rc = build(&L, model, ml, err);
    const char *gn;
    size_t gl;
    ak_err e2;
    if (!rc && ak_gguf_get_str(&g, "general.name", &gn, &gl, &e2) == 0 && gl && !memchr(gn, 0, gl)) {
        /* the name: general.name, as the model's */
        snprintf(tk->name, sizeof tk->name, "%.*s", (int)(gl < 255 ? gl : 255), gn);
    } else if (!rc) {
        /* the name: the file's base name without .gguf, as the model's */
        char *real = realpath(path, NULL);
        const char *b = strrchr(real ? real : path, '/');
        b = b ? b + 1 : real ? real : path;
        size_t bl = strlen(b);
        if (bl > 5 && !strcmp(b + bl - 5, ".gguf"))
            bl -= 5;
        snprintf(tk->name, sizeof tk->name, "%.*s", (int)bl, b);
        free(real);
    }
    free(L.buf);
    free(L.respelled);
    ak_gguf_close(&g);
    if (rc)
        ak_wrap(err, "%s", path);
    return rc;
}
