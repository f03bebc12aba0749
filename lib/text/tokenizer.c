/* tokenizer.c - loading tokenizer.json / vocab.json + merges.txt, the
 * encoding pipeline (added tokens, normalizers, pre-tokenizers, model,
 * post-processor) and decoding.  Follows the Hugging Face `tokenizers`
 * library's behaviour; tests/tokenize/ checks the ids against it. */
#include "tok_internal.h"
#include "core/buf.h"
#include "format/gguf.h"
#include "format/regfile.h"
#include "attnkit/io.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <zlib.h>

#define MAX_TOKENIZER_BYTES ((size_t)1 << 30)
#define MAX_ID (1 << 24)

/* GPT-2's pre-tokenizer regex (ByteLevel with use_regex). */
const char tk_gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void tk_bytes_to_unicode(uint32_t cp[256])
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
            cp[b] = (uint32_t)b;
        else
            cp[b] = (uint32_t)(256 + n++);
    }
}

/* Byte-level string (code points standing for bytes) to raw bytes; returns
 * 0, or -1 when a character is not one of the 256 (then the string is kept
 * as it is, like HF's decoder does). */
static int unbyte(const int16_t *byte_of_cp, const char *s, size_t n, uint8_t *o, size_t *on)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l <= 0 || cp >= 512 || byte_of_cp[cp] < 0)
            return -1;
        o[k++] = (uint8_t)byte_of_cp[cp];
        i += (size_t)l;
    }
    *on = k;
    return 0;
}

typedef struct loader {
    ak_tokenizer *tk;
    int16_t byte_of_cp[512];
    uint8_t *buf;
    size_t bufcap;
} loader;

/* The raw bytes of a vocabulary string (byte-level decoded when the model is). */
static int raw_of(loader *L, const char *s, size_t n, const uint8_t **o, size_t *on)
{
    if (n + 1 > L->bufcap) {
        size_t c = n + 64;
        uint8_t *b = realloc(L->buf, c);
        if (!b)
            return -1;
        L->buf = b, L->bufcap = c;
    }
    if (!L->tk->byte_level || unbyte(L->byte_of_cp, s, n, L->buf, on)) {
        memcpy(L->buf, s, n);
        *on = n;
    }
    *o = L->buf;
    return 0;
}

int tk_ensure_ids(ak_tokenizer *tk, size_t n)
{
    if (n <= tk->id_cap)
        return 0;
    int32_t *a = realloc(tk->added_of_id, n * sizeof *a);
    if (!a)
        return -1;
    for (size_t i = tk->id_cap; i < n; i++)
        a[i] = -1;
    tk->added_of_id = a;
    tk->id_cap = n;
    return 0;
}

/* \s and \S as the Unicode White_Space property: what Oniguruma and the
 * Rust regex crate (HF's engines) mean; PCRE2 10.42's \s also takes
 * U+180E.  Returns a malloc'd pattern. */
static char *white_space_classes(const char *pat, size_t len, size_t *outlen)
{
    static const char ws[] = "\\p{White_Space}", nws[] = "\\P{White_Space}";
    size_t cap = len * 8 + 1, n = 0;
    char *o = malloc(cap);
    if (!o)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (pat[i] == '\\' && i + 1 < len && (pat[i + 1] == 's' || pat[i + 1] == 'S')) {
            const char *r = pat[i + 1] == 's' ? ws : nws;
            memcpy(o + n, r, sizeof ws - 1);
            n += sizeof ws - 1;
            i++;
        } else if (pat[i] == '\\' && i + 1 < len) {
            o[n++] = pat[i++];
            o[n++] = pat[i];
        } else
            o[n++] = pat[i];
    }
    *outlen = n;
    return o;
}

int tk_compile_re(tk_pretok *p, const char *pat, size_t len, int literal, ak_err *err)
{
    int ec;
    PCRE2_SIZE eo;
    char *w = NULL;
    if (!literal) {
        if (!(w = white_space_classes(pat, len, &len)))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        pat = w;
    }
    p->re = pcre2_compile((PCRE2_SPTR)pat, len, literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP,
                          &ec, &eo, NULL);
    free(w);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return ak_fail(err, AK_ECONFIG, "pre-tokenizer regex at offset %zu: %s", (size_t)eo, (char *)msg);
    }
    p->jit = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

int tk_add_pretok(ak_tokenizer *tk, tk_pretok p)
{
    tk_pretok *v = realloc(tk->pre, (tk->npre + 1) * sizeof *v);
    if (!v)
        return -1;
    tk->pre = v;
    tk->pre[tk->npre++] = p;
    return 0;
}

int tk_add_normalizer(ak_tokenizer *tk, tk_normalizer nz)
{
    tk_normalizer *v = realloc(tk->norm, (tk->nnorm + 1) * sizeof *v);
    if (!v)
        return -1;
    tk->norm = v;
    tk->norm[tk->nnorm++] = nz;
    return 0;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}
static int jbool(json_t *o, const char *k, int dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}
static char *jdup(json_t *s, size_t *len)
{
    size_t n = json_string_length(s);
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, json_string_value(s), n);
        c[n] = 0;
    }
    *len = n;
    return c;
}

static int parse_normalizer(ak_tokenizer *tk, json_t *n, int depth, ak_err *err)
{
    if (json_is_null(n) || !n)
        return 0;
    const char *type = jstr(n, "type");
    if (!json_is_object(n) || !type || depth > 8)
        return ak_fail(err, AK_ECONFIG, "normalizer: not an object with a type");
    tk_normalizer nz = {0};
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers"), *x;
        size_t i;
        if (!json_is_array(list))
            return ak_fail(err, AK_ECONFIG, "normalizer Sequence: no list");
        json_array_foreach(list, i, x) {
            int rc = parse_normalizer(tk, x, depth + 1, err);
            if (rc)
                return rc;
        }
        return 0;
    } else if (!strcmp(type, "NFC")) {
        nz.type = TN_NFC;
    } else if (!strcmp(type, "NFD")) {
        nz.type = TN_NFD;
    } else if (!strcmp(type, "NFKC")) {
        nz.type = TN_NFKC;
    } else if (!strcmp(type, "NFKD")) {
        nz.type = TN_NFKD;
    } else if (!strcmp(type, "Lowercase")) {
        nz.type = TN_LOWER;
    } else if (!strcmp(type, "StripAccents")) {
        nz.type = TN_STRIP_ACCENTS;
    } else if (!strcmp(type, "Prepend")) {
        json_t *p = json_object_get(n, "prepend");
        if (!json_is_string(p))
            return ak_fail(err, AK_ECONFIG, "normalizer Prepend: no string");
        nz.type = TN_PREPEND;
        if (!(nz.a = jdup(p, &nz.alen)))
            return ak_fail(err, AK_ENOMEM, "out of memory");
    } else if (!strcmp(type, "Replace")) {
        json_t *pat = json_object_get(json_object_get(n, "pattern"), "String");
        json_t *c = json_object_get(n, "content");
        if (!json_is_string(pat) || !json_is_string(c))
            return ak_fail(err, AK_ECONFIG, "normalizer Replace: only String patterns are supported");
        nz.type = TN_REPLACE;
        nz.a = jdup(pat, &nz.alen);
        nz.b = jdup(c, &nz.blen);
        if (!nz.a || !nz.b) {
            free(nz.a), free(nz.b);
            return ak_fail(err, AK_ENOMEM, "out of memory");
        }
    } else if (!strcmp(type, "BertNormalizer")) {
        nz.type = TN_BERT;
        nz.clean_text = jbool(n, "clean_text", 1);
        nz.chinese = jbool(n, "handle_chinese_chars", 1);
        nz.lowercase = jbool(n, "lowercase", 1);
        nz.strip_accents = jbool(n, "strip_accents", nz.lowercase);
        tk->lossy_norm = 1;
    } else {
        return ak_fail(err, AK_ECONFIG, "normalizer %s is not supported", type);
    }
    if (nz.type == TN_NFD || nz.type == TN_NFKC || nz.type == TN_NFKD || nz.type == TN_LOWER ||
        nz.type == TN_STRIP_ACCENTS || nz.type == TN_NFC)
        tk->lossy_norm = 1;
    if (tk_add_normalizer(tk, nz)) {
        free(nz.a), free(nz.b);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    return 0;
}

static int parse_pretok(ak_tokenizer *tk, json_t *n, int depth, ak_err *err)
{
    if (!n || json_is_null(n))
        return 0;
    const char *type = jstr(n, "type");
    if (!json_is_object(n) || !type || depth > 8)
        return ak_fail(err, AK_ECONFIG, "pre_tokenizer: not an object with a type");
    tk_pretok p = {0};
    int rc;
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "pretokenizers"), *x;
        size_t i;
        if (!json_is_array(list))
            return ak_fail(err, AK_ECONFIG, "pre_tokenizer Sequence: no list");
        json_array_foreach(list, i, x) {
            if ((rc = parse_pretok(tk, x, depth + 1, err)))
                return rc;
        }
        return 0;
    } else if (!strcmp(type, "ByteLevel")) {
        tk->byte_level = 1;
        if (jbool(n, "add_prefix_space", 1))
            return ak_fail(err, AK_ECONFIG, "pre_tokenizer ByteLevel with add_prefix_space is not supported");
        if (!jbool(n, "use_regex", 1))
            return 0;
        p.type = TP_SPLIT;
        p.behavior = TB_ISOLATED;
        if ((rc = tk_compile_re(&p, tk_gpt2_regex, sizeof tk_gpt2_regex - 1, 0, err)))
            return rc;
    } else if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(n, "pattern");
        json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        const char *b = jstr(n, "behavior");
        p.type = TP_SPLIT;
        p.invert = jbool(n, "invert", 0);
        if (!b)
            return ak_fail(err, AK_ECONFIG, "pre_tokenizer Split: no behavior");
        if (!strcmp(b, "Removed")) p.behavior = TB_REMOVED;
        else if (!strcmp(b, "Isolated")) p.behavior = TB_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p.behavior = TB_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p.behavior = TB_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p.behavior = TB_CONTIGUOUS;
        else return ak_fail(err, AK_ECONFIG, "pre_tokenizer Split: behavior %s", b);
        if (json_is_string(re))
            rc = tk_compile_re(&p, json_string_value(re), json_string_length(re), 0, err);
        else if (json_is_string(str))
            rc = tk_compile_re(&p, json_string_value(str), json_string_length(str), 1, err);
        else
            return ak_fail(err, AK_ECONFIG, "pre_tokenizer Split: no pattern");
        if (rc)
            return rc;
    } else if (!strcmp(type, "Metaspace")) {
        const char *rep = jstr(n, "replacement"), *scheme = jstr(n, "prepend_scheme");
        if (tk->npre || tk->metaspace || !rep || !*rep || strlen(rep) >= sizeof tk->ms_rep)
            return ak_fail(err, AK_ECONFIG, "pre_tokenizer Metaspace is supported first in the chain, with a short replacement");
        tk->metaspace = 1;
        strcpy(tk->ms_rep, rep);
        tk->ms_replen = strlen(rep);
        if (scheme)
            tk->ms_prepend = !strcmp(scheme, "always") ? 2 : !strcmp(scheme, "first") ? 1 : 0;
        else
            tk->ms_prepend = jbool(n, "add_prefix_space", 1) ? 2 : 0;
        if (!jbool(n, "split", 1))
            return 0;
        p.type = TP_SPLIT, p.behavior = TB_MERGED_NEXT;
        if ((rc = tk_compile_re(&p, rep, strlen(rep), 1, err)))
            return rc;
    } else if (!strcmp(type, "BertPreTokenizer")) {
        p.type = TP_BERT;
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p.type = TP_WHITESPACE_SPLIT;
    } else if (!strcmp(type, "Whitespace")) {
        /* \w+|[^\w\s]+ with the Rust regex crate's \w (UTS #18: letters,
         * marks, digits, connectors, joiners), which PCRE2's \w is not */
        static const char ws[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+"
                                 "|[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\s]+";
        p.type = TP_SPLIT, p.behavior = TB_REMOVED, p.invert = 1;
        if ((rc = tk_compile_re(&p, ws, sizeof ws - 1, 0, err)))
            return rc;
    } else if (!strcmp(type, "Digits")) {
        p.type = TP_SPLIT, p.behavior = TB_ISOLATED;
        const char *d = jbool(n, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+";
        if ((rc = tk_compile_re(&p, d, strlen(d), 0, err)))
            return rc;
    } else {
        return ak_fail(err, AK_ECONFIG, "pre_tokenizer %s is not supported", type);
    }
    if (tk_add_pretok(tk, p)) {
        pcre2_code_free(p.re);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    return 0;
}

static int id_of(ak_tokenizer *tk, const char *s)
{
    for (size_t i = 0; i < tk->nadded; i++)
        if (tk->added[i].n == strlen(s) && !memcmp(tk->added[i].s, s, tk->added[i].n))
            return tk->added[i].id;
    return tk_vocab_find(&tk->vocab, (const uint8_t *)s, strlen(s));
}

int tk_post_push(ak_tokenizer *tk, int32_t id, int32_t type)
{
    int32_t *a = realloc(tk->post_ids, (tk->npost + 1) * sizeof *a);
    if (!a)
        return -1;
    tk->post_ids = a;
    int32_t *b = realloc(tk->post_types, (tk->npost + 1) * sizeof *b);
    if (!b)
        return -1;
    tk->post_types = b;
    tk->post_ids[tk->npost] = id;
    tk->post_types[tk->npost++] = type;
    return 0;
}

static int parse_post(ak_tokenizer *tk, json_t *n, int depth, int *seen_seq, ak_err *err)
{
    if (!n || json_is_null(n))
        return 0;
    const char *type = jstr(n, "type");
    if (!json_is_object(n) || !type || depth > 8)
        return ak_fail(err, AK_ECONFIG, "post_processor: not an object with a type");
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(n, "processors"), *x;
        size_t i;
        json_array_foreach(list, i, x) {
            int rc = parse_post(tk, x, depth + 1, seen_seq, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel"))
        return 0; /* offsets trimming only; ids unchanged */
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        json_t *cls = json_object_get(n, "cls"), *sep = json_object_get(n, "sep");
        if (!json_is_integer(json_array_get(cls, 1)) || !json_is_integer(json_array_get(sep, 1)))
            return ak_fail(err, AK_ECONFIG, "post_processor %s: bad cls/sep", type);
        if (tk_post_push(tk, (int32_t)json_integer_value(json_array_get(cls, 1)), 0) ||
            tk_post_push(tk, (int32_t)json_integer_value(json_array_get(sep, 1)), 0))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        tk->npost_prefix = tk->npost - 1;
        tk->has_types = !strcmp(type, "BertProcessing");
        *seen_seq = 1;
        return 0;
    }
    if (strcmp(type, "TemplateProcessing"))
        return ak_fail(err, AK_ECONFIG, "post_processor %s is not supported", type);
    json_t *single = json_object_get(n, "single"), *sp = json_object_get(n, "special_tokens"), *x;
    size_t i;
    if (!json_is_array(single))
        return ak_fail(err, AK_ECONFIG, "post_processor TemplateProcessing: no single template");
    json_array_foreach(single, i, x) {
        json_t *st = json_object_get(x, "SpecialToken"), *sq = json_object_get(x, "Sequence");
        if (sq) {
            if (*seen_seq)
                return ak_fail(err, AK_ECONFIG, "post_processor: two sequences in the single template");
            *seen_seq = 1;
            tk->npost_prefix = tk->npost;
            tk->seq_type = (int32_t)json_integer_value(json_object_get(sq, "type_id"));
            continue;
        }
        const char *name = jstr(st, "id");
        int32_t ty = (int32_t)json_integer_value(json_object_get(st, "type_id"));
        json_t *ids = json_object_get(json_object_get(sp, name ? name : ""), "ids"), *y;
        size_t j;
        if (!name || !json_is_array(ids))
            return ak_fail(err, AK_ECONFIG, "post_processor: special token %s undefined", name ? name : "?");
        json_array_foreach(ids, j, y) {
            json_int_t v = json_integer_value(y);
            if (!json_is_integer(y) || v < 0 || v >= MAX_ID)
                return ak_fail(err, AK_ECONFIG, "post_processor: bad id for %s", name);
            if (tk_post_push(tk, (int32_t)v, ty))
                return ak_fail(err, AK_ENOMEM, "out of memory");
        }
    }
    if (!*seen_seq)
        tk->npost_prefix = tk->npost;
    return 0;
}

static int set_vocab(loader *L, int32_t id, const char *s, size_t n, ak_err *err)
{
    const uint8_t *r;
    size_t rn;
    tk_vocab *v = &L->tk->vocab;
    if (raw_of(L, s, n, &r, &rn) || tk_vocab_set(v, id, r, rn))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (L->tk->byte_level && unbyte(L->byte_of_cp, s, n, L->buf, &rn)) {
        /* kept as it is (not byte-level text): index it second */
        if (!v->second && !(v->second = calloc(v->n, 1)))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        v->second[id] = 1;
    }
    return 0;
}

static int load_merges_list(loader *L, json_t *merges, char *const *lines, size_t nlines,
                            ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    size_t n = merges ? json_array_size(merges) : nlines;
    if (tk_merges_init(&tk->merges, n))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    uint8_t *cat = NULL;
    size_t catcap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *a, *b;
        size_t an, bn;
        if (merges) {
            json_t *m = json_array_get(merges, i);
            if (json_is_string(m)) {
                const char *s = json_string_value(m), *sp = strchr(s, ' ');
                if (!sp || strchr(sp + 1, ' ')) {
                    rc = ak_fail(err, AK_ECONFIG, "merge %zu is not two tokens", i);
                    break;
                }
                a = s, an = (size_t)(sp - s), b = sp + 1, bn = strlen(sp + 1);
            } else if (json_is_array(m) && json_array_size(m) == 2 &&
                       json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
                a = json_string_value(json_array_get(m, 0)), an = json_string_length(json_array_get(m, 0));
                b = json_string_value(json_array_get(m, 1)), bn = json_string_length(json_array_get(m, 1));
            } else {
                rc = ak_fail(err, AK_ECONFIG, "merge %zu is not two tokens", i);
                break;
            }
        } else {
            const char *s = lines[i], *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                rc = ak_fail(err, AK_ECONFIG, "merges.txt: line %zu is not two tokens", i + 1);
                break;
            }
            a = s, an = (size_t)(sp - s), b = sp + 1, bn = strlen(sp + 1);
        }
        if (an + bn + 1 > catcap) {
            catcap = an + bn + 64;
            uint8_t *c = realloc(cat, catcap);
            if (!c) {
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
                break;
            }
            cat = c;
        }
        const uint8_t *r;
        size_t rn;
        int32_t ia, ib, inew;
        if (raw_of(L, a, an, &r, &rn)) { rc = ak_fail(err, AK_ENOMEM, "out of memory"); break; }
        ia = tk_vocab_find(&tk->vocab, r, rn);
        memcpy(cat, r, rn);
        size_t cn = rn;
        if (raw_of(L, b, bn, &r, &rn)) { rc = ak_fail(err, AK_ENOMEM, "out of memory"); break; }
        ib = tk_vocab_find(&tk->vocab, r, rn);
        memcpy(cat + cn, r, rn);
        cn += rn;
        inew = tk_vocab_find(&tk->vocab, cat, cn);
        if (ia < 0 || ib < 0 || inew < 0)
            rc = ak_fail(err, AK_ECONFIG, "merge %zu (%.*s %.*s): token not in the vocabulary", i + 1,
                         (int)(an > 40 ? 40 : an), a, (int)(bn > 40 ? 40 : bn), b);
        else if (tk_merges_add(&tk->merges, ia, ib, (int32_t)i, inew))
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
    }
    free(cat);
    return rc;
}

static int load_vocab_object(loader *L, json_t *vocab, json_t *added, ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    const char *k;
    json_t *v;
    size_t maxid = 0, i;
    json_object_foreach(vocab, k, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= MAX_ID)
            return ak_fail(err, AK_ECONFIG, "vocab: bad id for token %.40s", k);
        if ((size_t)id + 1 > maxid)
            maxid = (size_t)id + 1;
    }
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (!json_is_integer(json_object_get(v, "id")) || id < 0 || id >= MAX_ID)
            return ak_fail(err, AK_ECONFIG, "added_tokens[%zu]: bad id", i);
        if ((size_t)id + 1 > maxid)
            maxid = (size_t)id + 1;
    }
    if (tk_vocab_init(&tk->vocab, maxid) || tk_ensure_ids(tk, maxid))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    json_object_foreach(vocab, k, v) {
        int32_t id = (int32_t)json_integer_value(v);
        if (tk->vocab.tok[id])
            return ak_fail(err, AK_ECONFIG, "vocab: id %d used twice", id);
        int rc = set_vocab(L, id, k, strlen(k), err);
        if (rc)
            return rc;
    }
    return 0;
}

typedef struct added_key { size_t first, n, k; } added_key;
static int added_cmp(const void *x, const void *y)
{
    const added_key *a = x, *b = y;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    if (a->n != b->n)
        return a->n > b->n ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

static int load_added(ak_tokenizer *tk, json_t *added, ak_err *err)
{
    size_t i, n = json_array_size(added);
    json_t *a;
    tk->added = calloc(n ? n : 1, sizeof *tk->added);
    if (!tk->added)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    json_array_foreach(added, i, a) {
        json_t *c = json_object_get(a, "content");
        if (!json_is_string(c) || json_string_length(c) == 0)
            return ak_fail(err, AK_ECONFIG, "added_tokens[%zu]: no content", i);
        tk_added *t = &tk->added[tk->nadded];
        size_t len;
        if (!(t->s = (uint8_t *)jdup(c, &len)))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        t->n = len;
        tk->nadded++;
        t->id = (int32_t)json_integer_value(json_object_get(a, "id"));
        t->special = jbool(a, "special", 0);
        t->lstrip = jbool(a, "lstrip", 0);
        t->rstrip = jbool(a, "rstrip", 0);
        t->normalized = jbool(a, "normalized", !t->special);
        t->single_word = jbool(a, "single_word", 0);
        tk->has_norm_added |= t->normalized;
        tk->added_of_id[t->id] = (int32_t)(tk->nadded - 1);
        if (!tk->vocab.tok[t->id] && tk_vocab_set(&tk->vocab, t->id, t->s, t->n))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        t->m = t->s, t->mn = t->n;
        if (t->normalized && tk->nnorm) {
            tk_norm a = {0}, b = {0};
            int rc = tk_norm_push(&a, t->s, t->n, 0, (int64_t)t->n) ? AK_ENOMEM : 0;
            for (size_t j = 0; j < tk->nnorm && !rc; j++) {
                rc = tk_normalize(tk, &tk->norm[j], &a, &b, err);
                tk_norm x = a;
                a = b, b = x;
            }
            tk_norm_free(&b);
            if (rc) {
                tk_norm_free(&a);
                return ak_fail(err, AK_ENOMEM, "out of memory");
            }
            t->m = a.b, t->mn = a.n; /* owned; freed with the token */
            free(a.al);
        }
    }
    return tk_index_added(tk, err);
}

/* Indexes the added tokens by first byte, longest first, for
 * leftmost-longest matching. */
int tk_index_added(ak_tokenizer *tk, ak_err *err)
{
    free(tk->added_order);
    if (!(tk->added_order = malloc((tk->nadded ? tk->nadded : 1) * sizeof *tk->added_order)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    added_key *keys = malloc((tk->nadded ? tk->nadded : 1) * sizeof *keys);
    if (!keys)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    for (size_t k = 0; k < tk->nadded; k++)
        keys[k] = (added_key){tk->added[k].mn ? tk->added[k].m[0] : 256, tk->added[k].mn, k};
    qsort(keys, tk->nadded, sizeof *keys, added_cmp);
    for (size_t k = 0; k < tk->nadded; k++)
        tk->added_order[k] = (uint32_t)keys[k].k;
    free(keys);
    memset(tk->added_first, 0, sizeof tk->added_first);
    /* tokens that normalize to nothing (sorted last, first byte 256) never match */
    for (size_t k = 0; k < tk->nadded; k++)
        if (tk->added[k].mn)
            tk->added_first[tk->added[k].m[0] + 1]++;
    for (int b = 0; b < 256; b++)
        tk->added_first[b + 1] += tk->added_first[b];
    return 0;
}

int tk_finish_model(ak_tokenizer *tk, ak_err *err)
{
    if (tk_vocab_index(&tk->vocab))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    for (int b = 0; b < 256; b++) {
        if (tk->byte_level) {
            uint8_t c = (uint8_t)b;
            tk->byte_tok[b] = tk_vocab_find(&tk->vocab, &c, 1);
            if (tk->model == TK_BPE && tk->byte_tok[b] < 0 && !tk->bytes_optional)
                return ak_fail(err, AK_ECONFIG, "byte-level vocabulary lacks byte 0x%02X", b);
        } else {
            char s[8];
            snprintf(s, sizeof s, "<0x%02X>", b);
            tk->byte_tok[b] = tk_vocab_find(&tk->vocab, (const uint8_t *)s, 6);
        }
    }
    tk->md = pcre2_match_data_create(32, NULL);
    tk->lvl = calloc(tk->npre + 1, sizeof *tk->lvl);
    if (!tk->md || !tk->lvl)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    return 0;
}

/* Does the JSON subtree mention a component of this type? */
static int mentions(json_t *n, const char *type, int depth)
{
    if (!n || depth > 8)
        return 0;
    if (json_is_object(n)) {
        const char *t = jstr(n, "type");
        if (t && !strcmp(t, type))
            return 1;
        const char *k;
        json_t *v;
        json_object_foreach(n, k, v) if (mentions(v, type, depth + 1)) return 1;
    } else if (json_is_array(n)) {
        size_t i;
        json_t *v;
        json_array_foreach(n, i, v) if (mentions(v, type, depth + 1)) return 1;
    }
    return 0;
}

/* May words be cut before U+2581? (see model_pieces) */
void tk_set_sp_split(ak_tokenizer *tk)
{
    tk->sp_split = !tk->byte_level && !tk->ignore_merges &&
                   tk_vocab_find(&tk->vocab, (const uint8_t *)"\xE2\x96\x81", 3) >= 0;
    for (size_t id = 0; id < tk->vocab.n && tk->sp_split; id++) {
        const uint8_t *t = tk->vocab.tok[id];
        for (size_t j = 1; t && j + 3 <= tk->vocab.len[id]; j++)
            if (!memcmp(t + j, "\xE2\x96\x81", 3) && (j < 3 || memcmp(t + j - 3, "\xE2\x96\x81", 3))) {
                tk->sp_split = 0;
                break;
            }
    }
}

static int load_json(loader *L, const char *data, size_t len, ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    json_error_t je;
    json_t *root = json_loadb(data, len, 0, &je);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = ak_fail(err, AK_ECONFIG, "not a JSON object (%s, line %d)", root ? "wrong type" : je.text, je.line);
        goto out;
    }
    json_t *model = json_object_get(root, "model"), *added = json_object_get(root, "added_tokens");
    json_t *vocab = json_object_get(model, "vocab");
    const char *mtype = jstr(model, "type");
    if (!json_is_object(vocab)) {
        rc = ak_fail(err, AK_ECONFIG, "model: no vocab object (Unigram and WordLevel are not supported)");
        goto out;
    }
    if (added && !json_is_array(added)) {
        rc = ak_fail(err, AK_ECONFIG, "added_tokens is not a list");
        goto out;
    }
    if (mtype && !strcmp(mtype, "WordPiece"))
        tk->model = TK_WORDPIECE;
    else if (!mtype || !strcmp(mtype, "BPE"))
        tk->model = TK_BPE;
    else {
        rc = ak_fail(err, AK_ECONFIG, "model type %s is not supported", mtype);
        goto out;
    }
    tk->byte_level = mentions(json_object_get(root, "pre_tokenizer"), "ByteLevel", 0) ||
                     mentions(json_object_get(root, "decoder"), "ByteLevel", 0);
    if ((rc = parse_normalizer(tk, json_object_get(root, "normalizer"), 0, err)) ||
        (rc = parse_pretok(tk, json_object_get(root, "pre_tokenizer"), 0, err)) ||
        (rc = load_vocab_object(L, vocab, added, err)) ||
        (rc = load_added(tk, added, err)))
        goto out;
    if (tk_vocab_index(&tk->vocab)) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    const char *unk = jstr(model, "unk_token");
    tk->unk_id = unk ? id_of(tk, unk) : -1;
    if (unk && tk->unk_id < 0) {
        rc = ak_fail(err, AK_ECONFIG, "unk_token %.40s is not in the vocabulary", unk);
        goto out;
    }
    if (tk->model == TK_BPE) {
        const char *pre = jstr(model, "continuing_subword_prefix"), *suf = jstr(model, "end_of_word_suffix");
        json_t *drop = json_object_get(model, "dropout");
        if ((pre && *pre) || (suf && *suf) || (json_is_number(drop) && json_number_value(drop) > 0)) {
            rc = ak_fail(err, AK_ECONFIG, "BPE with subword prefix/suffix or dropout is not supported");
            goto out;
        }
        tk->byte_fallback = jbool(model, "byte_fallback", 0);
        tk->fuse_unk = jbool(model, "fuse_unk", 0);
        tk->ignore_merges = jbool(model, "ignore_merges", 0);
        json_t *merges = json_object_get(model, "merges");
        if (!json_is_array(merges)) {
            rc = ak_fail(err, AK_ECONFIG, "model: no merges list");
            goto out;
        }
        if ((rc = load_merges_list(L, merges, NULL, 0, err)))
            goto out;
        tk_set_sp_split(tk);
    } else {
        const char *pre = jstr(model, "continuing_subword_prefix");
        if (!pre)
            pre = "##";
        if (strlen(pre) >= sizeof tk->wp_prefix) {
            rc = ak_fail(err, AK_ECONFIG, "WordPiece prefix too long");
            goto out;
        }
        strcpy(tk->wp_prefix, pre);
        tk->wp_prefix_len = strlen(pre);
        json_t *mx = json_object_get(model, "max_input_chars_per_word");
        tk->wp_max_chars = json_is_integer(mx) ? (int)(json_integer_value(mx) > INT_MAX ? INT_MAX : json_integer_value(mx)) : 100;
        tk->has_types = 1;
    }
    int seen = 0;
    if ((rc = parse_post(tk, json_object_get(root, "post_processor"), 0, &seen, err)))
        goto out;
    for (size_t i = 0; i < tk->npost; i++)
        if (tk->post_ids[i] < 0 || (size_t)tk->post_ids[i] >= tk->vocab.n || !tk->vocab.tok[tk->post_ids[i]]) {
            rc = ak_fail(err, AK_ECONFIG, "post_processor: id %d is not in the vocabulary", tk->post_ids[i]);
            goto out;
        }
    json_t *dec = json_object_get(root, "decoder");
    if (tk->byte_level)
        tk->decoder = TD_BYTELEVEL;
    else if (tk->model == TK_WORDPIECE)
        tk->decoder = TD_WORDPIECE;
    else if (mentions(dec, "Replace", 0) || mentions(dec, "Metaspace", 0) || mentions(dec, "ByteFallback", 0)) {
        tk->decoder = TD_SP;
        tk->sp_bytes = mentions(dec, "ByteFallback", 0);
        json_t *d, *list = json_object_get(dec, "decoders");
        size_t i;
        json_array_foreach(list, i, d) {
            const char *t = jstr(d, "type");
            if (t && !strcmp(t, "Strip"))
                tk->sp_strip_start = (int)json_integer_value(json_object_get(d, "start"));
        }
        if (mentions(dec, "Metaspace", 0)) {
            const char *sc = jstr(dec, "prepend_scheme");
            tk->sp_strip_start = sc ? strcmp(sc, "never") != 0 : jbool(dec, "add_prefix_space", 1);
        }
    } else
        tk->decoder = TD_PLAIN;
    rc = tk_finish_model(tk, err);
out:
    json_decref(root);
    return rc;
}

/* GPT-2 as Hugging Face builds it from vocab.json + merges.txt: ByteLevel
 * pre-tokenizer without prefix space, <|endoftext|> a special token. */
static int load_gpt2(loader *L, const char *vj, size_t vlen, char *merges, ak_err *err)
{
    ak_tokenizer *tk = L->tk;
    tk->byte_level = 1;
    tk->model = TK_BPE;
    tk->decoder = TD_BYTELEVEL;
    tk->unk_id = -1;
    json_error_t je;
    json_t *vocab = json_loadb(vj, vlen, 0, &je);
    json_t *added = json_array();
    char **lines = NULL;
    size_t nl = 0;
    int rc;
    if (!json_is_object(vocab)) {
        rc = ak_fail(err, AK_ECONFIG, "vocab.json: not a JSON object (%s, line %d)", vocab ? "wrong type" : je.text, je.line);
        goto out;
    }
    json_t *eot = json_object_get(vocab, "<|endoftext|>");
    if (json_is_integer(eot))
        json_array_append_new(added, json_pack("{s:I,s:s,s:b,s:b}", "id", json_integer_value(eot),
                                               "content", "<|endoftext|>", "special", 1, "normalized", 0));
    if ((rc = load_vocab_object(L, vocab, added, err)) || (rc = load_added(tk, added, err)))
        goto out;
    if (tk_vocab_index(&tk->vocab)) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    /* merges.txt: an optional "#version" line, then "a b" per line */
    size_t cap = 0;
    for (char *p = merges, *next; p && *p; p = next) {
        next = strchr(p, '\n');
        if (next)
            *next++ = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r')
            p[l - 1] = 0;
        if (!*p || (nl == 0 && !strncmp(p, "#version", 8)))
            continue;
        if (ak_grow((void **)&lines, &cap, nl + 1, sizeof *lines)) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            goto out;
        }
        lines[nl++] = p;
    }
    if ((rc = load_merges_list(L, NULL, lines, nl, err)))
        goto out;
    tk_pretok p = {.type = TP_SPLIT, .behavior = TB_ISOLATED};
    if ((rc = tk_compile_re(&p, tk_gpt2_regex, sizeof tk_gpt2_regex - 1, 0, err)))
        goto out;
    if (tk_add_pretok(tk, p)) {
        pcre2_code_free(p.re);
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    rc = tk_finish_model(tk, err);
out:
    free(lines);
    json_decref(vocab);
    json_decref(added);
    return rc;
}

static char *join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int exists(const char *path)
{
    return ak_path_exists(path);   /* stat: fopen of a FIFO would block */
}

int ak_tokenizer_exists(const char *dir)
{
    char gpath[4096];
    if (ak_gguf_locate(dir, gpath, sizeof gpath))
        return 1;   /* a GGUF file carries its tokenizer in its metadata */
    char *p1 = join(dir, "tokenizer.json"), *p2 = join(dir, "vocab.json"), *p3 = join(dir, "merges.txt");
    int yes = p1 && p2 && p3 && (exists(p1) || (exists(p2) && exists(p3)));
    free(p1);
    free(p2);
    free(p3);
    return yes;
}

/* tokenizer_config.json's chat_template (a string, or a list of {name,
 * template}: the "default" one) and bos_token, for tokenize --chat. */
static int load_chat_config(ak_tokenizer *tk, const char *dir, ak_err *err)
{
    char *path = join(dir, "tokenizer_config.json"), *data = NULL;
    size_t len;
    ak_err e2;
    int rc = 0;
    if (!path)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (!exists(path) || ak_read_file(path, 1 << 26, &data, &len, &e2)) {
        free(path);
        return 0;
    }
    /* model_max_length is often 1e30, too big an integer for jansson */
    json_t *cfg = json_loadb(data, len, JSON_DECODE_INT_AS_REAL, NULL);
    json_t *t = json_object_get(cfg, "chat_template"), *x;
    size_t i;
    if (json_is_array(t))
        json_array_foreach(t, i, x) {
            const char *nm = jstr(x, "name");
            if (nm && !strcmp(nm, "default")) {
                t = json_object_get(x, "template");
                break;
            }
        }
    if (json_is_string(t)) {
        if (!(tk->chat_template = jdup(t, &tk->chat_template_len)))
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
    }
    json_t *b = json_object_get(cfg, "bos_token");
    const char *bos = json_is_string(b) ? json_string_value(b) : jstr(b, "content");
    if (bos)
        tk->bos_id = id_of(tk, bos);
    json_decref(cfg);
    free(data);
    free(path);
    return rc;
}

int ak_tokenizer_load(ak_tokenizer **out, const char *dir, ak_err *err)
{
    *out = NULL;
    ak_tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    loader L = {.tk = tk};
    uint32_t cps[256];
    tk_bytes_to_unicode(cps);
    memset(L.byte_of_cp, 0xff, sizeof L.byte_of_cp);
    for (int b = 0; b < 256; b++)
        L.byte_of_cp[cps[b]] = (int16_t)b;
    tk->unk_id = -1;
    tk->bos_id = -1;
    int rc;
    char gpath[4096];
    int where = ak_gguf_locate(dir, gpath, sizeof gpath);
    if (where < 0) {
        ak_tokenizer_free(tk);
        return ak_gguf_ambiguous(dir, gpath, err);
    }
    if (where) {
        if ((rc = tk_load_gguf(tk, gpath, err)))
            ak_tokenizer_free(tk);
        else
            *out = tk;
        return rc;
    }
    char *p1 = join(dir, "tokenizer.json"), *p2 = join(dir, "vocab.json"), *p3 = join(dir, "merges.txt");
    char *d1 = NULL, *d2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (!p1 || !p2 || !p3) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    if (exists(p1)) {
        if ((rc = ak_read_regular(p1, MAX_TOKENIZER_BYTES, &d1, &l1, err)))
            goto out;
        tk->crc = (uint32_t)crc32(0, (const Bytef *)d1, (uInt)l1);
        if ((rc = load_json(&L, d1, l1, err)))
            ak_wrap(err, "%s", p1);
    } else if (exists(p2) && exists(p3)) {
        if ((rc = ak_read_regular(p2, MAX_TOKENIZER_BYTES, &d1, &l1, err)) ||
            (rc = ak_read_regular(p3, MAX_TOKENIZER_BYTES, &d2, &l2, err)))
            goto out;
        uLong c = crc32(0, (const Bytef *)d1, (uInt)l1);
        tk->crc = (uint32_t)crc32(c, (const Bytef *)d2, (uInt)l2);
        if ((rc = load_gpt2(&L, d1, l1, d2, err)))
            ak_wrap(err, "%s", dir);
    } else {
        rc = ak_fail(err, AK_ECONFIG, "%s: no tokenizer.json, nor vocab.json and merges.txt", dir);
    }
    if (rc)
        goto out;
    /* name and vocabulary size, as lib/model/model.c reports them */
    char *real = realpath(dir, NULL);
    const char *d = real ? real : dir;
    size_t dl = strlen(d), b;
    while (dl > 1 && d[dl - 1] == '/')
        dl--;
    for (b = dl; b > 0 && d[b - 1] != '/'; b--)
        ;
    snprintf(tk->name, sizeof tk->name, "%.*s", (int)(dl - b), d + b);
    free(real);
    tk->vocab_size = (int64_t)tk->vocab.n;
    char *cp = join(dir, "config.json"), *cd = NULL;
    size_t cl;
    ak_err e2;
    if (cp && exists(cp) && ak_read_regular(cp, 1 << 24, &cd, &cl, &e2) == 0) {
        json_t *cfg = json_loadb(cd, cl, 0, NULL);
        json_t *vs = json_object_get(cfg, "vocab_size");
        if (json_is_integer(vs) && json_integer_value(vs) > 0)
            tk->vocab_size = json_integer_value(vs);
        json_decref(cfg);
    }
    free(cd);
    free(cp);
    if ((rc = load_chat_config(tk, dir, err)))
        goto out;
out:
    free(p1), free(p2), free(p3), free(d1), free(d2), free(L.buf);
    if (rc)
        ak_tokenizer_free(tk);
    else
        *out = tk;
    return rc;
}

void ak_tokenizer_free(ak_tokenizer *tk)
{
    if (!tk)
        return;
    tk_vocab_free(&tk->vocab);
    tk_merges_free(&tk->merges);
    tk_cache_free(&tk->cache);
    for (size_t i = 0; i < tk->nnorm; i++)
        free(tk->norm[i].a), free(tk->norm[i].b);
    free(tk->norm);
    for (size_t i = 0; i < tk->npre; i++)
        pcre2_code_free(tk->pre[i].re);
    free(tk->pre);
    for (size_t i = 0; i < tk->nadded; i++) {
        if (tk->added[i].m != tk->added[i].s)
            free(tk->added[i].m);
        free(tk->added[i].s);
    }
    free(tk->added);
    free(tk->added_of_id);
    free(tk->added_order);
    free(tk->post_ids);
    free(tk->post_types);
    pcre2_match_data_free(tk->md);
    tk_norm_free(&tk->nbuf);
    tk_norm_free(&tk->nbuf2);
    tk_norm_free(&tk->nbuf3);
    free(tk->in_spans.v);
    for (size_t i = 0; tk->lvl && i < tk->npre; i++)
        free(tk->lvl[i].v);
    free(tk->lvl);
    free(tk->scratch);
    free(tk->chat_template);
    free(tk);
}

const char *ak_tokenizer_name(const ak_tokenizer *tk) { return tk->name; }
int64_t ak_tokenizer_vocab_size(const ak_tokenizer *tk) { return tk->vocab_size; }
uint32_t ak_tokenizer_crc32(const ak_tokenizer *tk) { return tk->crc; }
int ak_tokenizer_has_token_types(const ak_tokenizer *tk) { return tk->has_types; }
size_t ak_tokenizer_post_prefix(const ak_tokenizer *tk) { return tk->npost_prefix; }
const char *ak_tokenizer_kind(const ak_tokenizer *tk)
{
    return tk->model == TK_WORDPIECE ? "wordpiece" : tk->byte_level ? "bpe-byte-level" : "bpe";
}
int ak_tokenizer_round_trips(const ak_tokenizer *tk)
{
    return !tk->lossy_norm && tk->model == TK_BPE;
}

const char *ak_tokenizer_id_to_token(const ak_tokenizer *tk, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= tk->vocab.n || !tk->vocab.tok[id])
        return NULL;
    if (len)
        *len = tk->vocab.len[id];
    return (const char *)tk->vocab.tok[id];
}

int32_t ak_tokenizer_token_to_id(const ak_tokenizer *tk, const char *s, size_t len)
{
    return tk_vocab_find(&tk->vocab, (const uint8_t *)s, len);
}

int ak_tokenizer_is_special(const ak_tokenizer *tk, int32_t id)
{
    if (id < 0 || (size_t)id >= tk->id_cap || tk->added_of_id[id] < 0)
        return 0;
    return tk->added[tk->added_of_id[id]].special;
}

void ak_encoding_clear(ak_encoding *enc) { enc->n = 0; }
void ak_encoding_free(ak_encoding *enc)
{
    free(enc->ids);
    free(enc->offsets);
    free(enc->special);
    free(enc->type_ids);
    memset(enc, 0, sizeof *enc);
}

/* ---- encoding ------------------------------------------------------------------ */

static int word_char_before(const uint8_t *s, size_t at)
{
    if (at == 0)
        return 0;
    size_t i = at - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80)
        i--;
    utf8proc_int32_t cp;
    if (utf8proc_iterate(s + i, (utf8proc_ssize_t)(at - i), &cp) <= 0)
        return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}
static int word_char_at(const uint8_t *s, size_t n, size_t at)
{
    utf8proc_int32_t cp;
    if (at >= n || utf8proc_iterate(s + at, (utf8proc_ssize_t)(n - at), &cp) <= 0)
        return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* The next added token in s[from..n) among those with normalized == norm:
 * leftmost, then longest.  Returns its index or -1; *ms, *me its span
 * (widened by lstrip/rstrip, never before lo). */
static int find_added(const ak_tokenizer *tk, const uint8_t *s, size_t n, size_t from, size_t lo,
                      int norm, size_t *ms, size_t *me)
{
    for (size_t i = from; i < n; i++) {
        int best = -1;
        for (uint32_t j = tk->added_first[s[i]]; j < tk->added_first[s[i] + 1]; j++) {
            const tk_added *a = &tk->added[tk->added_order[j]];
            if (a->normalized != norm || a->mn > n - i || memcmp(a->m, s + i, a->mn))
                continue;
            if (a->single_word && (word_char_before(s, i) || word_char_at(s, n, i + a->mn)))
                continue;
            best = (int)tk->added_order[j];
            break;
        }
        if (best >= 0) {
            size_t a = i, b = i + tk->added[best].mn;
            if (tk->added[best].lstrip)
                while (a > lo && (s[a - 1] == ' ' || s[a - 1] == '\t' || s[a - 1] == '\n' || s[a - 1] == '\r'))
                    a--;
            if (tk->added[best].rstrip)
                while (b < n && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r'))
                    b++;
            *ms = a, *me = b;
            return best;
        }
    }
    return -1;
}

typedef struct stage {
    ak_tokenizer *tk;
    const tk_norm *t;
    size_t level;          /* the pre-tokenizer whose pieces arrive */
    int64_t base;
    ak_encoding *enc;
} stage;

static int model_pieces(ak_tokenizer *tk, const tk_norm *t, const tk_spans *p, int64_t base,
                        ak_encoding *enc, ak_err *err)
{
    for (size_t i = 0; i < p->n && tk->sp_split; i++) {
        /* SentencePiece-style: no token has U+2581 after another character,
         * so no merge crosses such a point; BPE on the parts is BPE on the
         * whole, and the parts hit the cache */
        size_t s = p->v[i].s, e = p->v[i].e, a = s;
        for (size_t j = s + 1; j + 3 <= e; j++) {
            if (t->b[j] == 0xE2 && t->b[j + 1] == 0x96 && t->b[j + 2] == 0x81 &&
                !(j >= s + 3 && t->b[j - 3] == 0xE2 && t->b[j - 2] == 0x96 && t->b[j - 1] == 0x81)) {
                int rc = tk_bpe_word(tk, t, a, j, enc, base, err);
                if (rc)
                    return rc;
                a = j;
                j += 2;
            }
        }
        int rc = tk_bpe_word(tk, t, a, e, enc, base, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < p->n && !tk->sp_split; i++) {
        int rc = tk->model == TK_BPE ? tk_bpe_word(tk, t, p->v[i].s, p->v[i].e, enc, base, err)
                                     : tk_wordpiece_word(tk, t, p->v[i].s, p->v[i].e, enc, base, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Pieces from pre-tokenizer `level` go through the next one, or the model. */
static int next_stage(void *ctx, tk_spans *pieces, ak_err *err)
{
    stage *st = ctx;
    ak_tokenizer *tk = st->tk;
    int rc;
    if (st->level + 1 >= tk->npre)
        rc = model_pieces(tk, st->t, pieces, st->base, st->enc, err);
    else {
        stage nx = *st;
        nx.level++;
        rc = tk_pretokenize(tk, &tk->pre[nx.level], st->t, pieces, &tk->lvl[nx.level], next_stage, &nx, err);
    }
    pieces->n = 0;
    return rc;
}

/* Metaspace: t[s..e) with spaces replaced, the replacement prepended. */
static int metaspace(ak_tokenizer *tk, const tk_norm *t, size_t s, size_t e, tk_norm *m)
{
    m->n = 0;
    const uint8_t *rep = (const uint8_t *)tk->ms_rep;
    size_t rl = tk->ms_replen;
    int starts = t->b[s] == ' ' || (e - s >= rl && !memcmp(t->b + s, rep, rl));
    if (!starts && (tk->ms_prepend == 2 || (tk->ms_prepend == 1 && tk_al_start(t, s) == 0)) &&
        tk_norm_push(m, rep, rl, tk_al_start(t, s), tk_al_end(t, s)))
        return -1;
    for (size_t i = s; i < e; i++) {
        int sp = t->b[i] == ' ';
        if (tk_norm_push(m, sp ? rep : t->b + i, sp ? rl : 1, tk_al_start(t, i), tk_al_end(t, i)))
            return -1;
    }
    return 0;
}

static int run_model(ak_tokenizer *tk, const tk_norm *t, size_t s, size_t e, int64_t base,
                     ak_encoding *enc, ak_err *err)
{
    tk_spans *in = &tk->in_spans;
    in->n = 0;
    if (e <= s)
        return 0;
    if (tk->metaspace) {
        if (metaspace(tk, t, s, e, &tk->nbuf3))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        t = &tk->nbuf3, s = 0, e = tk->nbuf3.n;
    }
    if (tk_spans_push(in, s, e))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (!tk->npre)
        return model_pieces(tk, t, in, base, enc, err);
    stage st = {tk, t, 0, base, enc};
    return tk_pretokenize(tk, &tk->pre[0], t, in, &tk->lvl[0], next_stage, &st, err);
}

static int push_added(ak_tokenizer *tk, ak_encoding *enc, int k, int64_t s, int64_t e)
{
    return ak_encoding_push(enc, tk->added[k].id, s, e, tk->added[k].special, 0);
}

/* Normalizes raw text[s..e) and runs the rest of the pipeline on it. */
static int encode_piece(ak_tokenizer *tk, const uint8_t *text, size_t s, size_t e, int64_t base,
                        ak_encoding *enc, ak_err *err)
{
    tk_norm view = {.b = (uint8_t *)text + s, .n = e - s, .off0 = (int64_t)s}, *a = &view;
    if (tk->nnorm) {
        a = &tk->nbuf;
        tk_norm *b = &tk->nbuf2;
        a->n = 0;
        if (tk_norm_reserve(a, e - s))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        /* every byte of a character maps to the whole character */
        for (size_t i = s; i < e;) {
            size_t k = text[i] < 0x80 ? 1 : text[i] < 0xE0 ? 2 : text[i] < 0xF0 ? 3 : 4;
            if (i + k > e)
                k = e - i;
            for (size_t j = 0; j < k; j++) {
                a->b[a->n] = text[i + j];
                a->al[2 * a->n] = (int64_t)i;
                a->al[2 * a->n + 1] = (int64_t)(i + k);
                a->n++;
            }
            i += k;
        }
        for (size_t i = 0; i < tk->nnorm; i++) {
            int rc = tk_normalize(tk, &tk->norm[i], a, b, err);
            if (rc)
                return rc;
            tk_norm *x = a;
            a = b, b = x;
        }
    }
    size_t pos = 0;
    if (tk->has_norm_added) {
        size_t ms, me;
        int k;
        while ((k = find_added(tk, a->b, a->n, pos, pos, 1, &ms, &me)) >= 0) {
            int rc = run_model(tk, a, pos, ms, base, enc, err);
            if (rc)
                return rc;
            if (push_added(tk, enc, k, base + tk_al_start(a, ms), base + tk_al_end(a, me - 1)))
                return ak_fail(err, AK_ENOMEM, "out of memory");
            pos = me;
        }
    }
    return run_model(tk, a, pos, a->n, base, enc, err);
}

/* Whether encode_segment may cut text at ASCII white space and encode the
 * pieces one by one with the same result: every normalizer maps characters
 * one by one (no Prepend, no Replace of a string that could span the cut),
 * the first pre-tokenizer splits at all white space (BERT, WhitespaceSplit),
 * and no added token is matched in normalized text.  The normalized copies
 * (17 bytes per byte, twice) then cost a chunk, not the whole text. */
static int chunkable(const ak_tokenizer *tk)
{
    if (!tk->nnorm || !tk->npre || tk->metaspace || tk->has_norm_added ||
        (tk->pre[0].type != TP_BERT && tk->pre[0].type != TP_WHITESPACE_SPLIT))
        return 0;
    for (size_t i = 0; i < tk->nnorm; i++)
        if (tk->norm[i].type == TN_PREPEND || tk->norm[i].type == TN_REPLACE)
            return 0;
    return 1;
}

#define ENCODE_CHUNK_BYTES ((size_t)1 << 20)

static int encode_segment(ak_tokenizer *tk, const uint8_t *text, size_t s, size_t e, int64_t base,
                          ak_encoding *enc, ak_err *err)
{
    if (e - s <= ENCODE_CHUNK_BYTES || !chunkable(tk))
        return encode_piece(tk, text, s, e, base, enc, err);
    while (s < e) {
        size_t cut = e - s <= ENCODE_CHUNK_BYTES ? e : s + ENCODE_CHUNK_BYTES;
        while (cut < e && (!text[cut] || !strchr(" \t\n\r", text[cut])))
            cut++;
        int rc = encode_piece(tk, text, s, cut, base, enc, err);
        if (rc)
            return rc;
        s = cut;
    }
    return 0;
}

int ak_tokenizer_encode(ak_tokenizer *tk, const char *text, size_t len, int64_t base,
                        ak_encoding *enc, ak_err *err)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t pos = 0, ms, me;
    int k;
    /* the regex matchers run with PCRE2_NO_UTF_CHECK (and JIT, which never
     * checks): what they read is checked here, once */
    int rc0 = ak_utf8_check(text, len, err);
    if (rc0)
        return rc0;
    while ((k = find_added(tk, s, len, pos, pos, 0, &ms, &me)) >= 0) {
        int rc = ms > pos ? encode_segment(tk, s, pos, ms, base, enc, err) : 0;
        if (rc)
            return rc;
        if (push_added(tk, enc, k, base + (int64_t)ms, base + (int64_t)me))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        pos = me;
    }
    return pos < len ? encode_segment(tk, s, pos, len, base, enc, err) : 0;
}

int ak_tokenizer_post(ak_tokenizer *tk, ak_encoding *enc, int64_t text_len, ak_err *err)
{
    if (!tk->npost) {
        for (size_t i = 0; i < enc->n; i++)
            enc->type_ids[i] = tk->seq_type;
        return 0;
    }
    /* in place (a copy would hold a long document's tokens twice): make room
     * for the template's tokens, shift the sequence, fill both ends */
    size_t n = enc->n, pre = tk->npost_prefix;
    for (size_t i = 0; i < tk->npost; i++)
        if (ak_encoding_push(enc, 0, 0, 0, 0, 0))
            return ak_fail(err, AK_ENOMEM, "out of memory");
    memmove(enc->ids + pre, enc->ids, n * sizeof *enc->ids);
    memmove(enc->offsets + 2 * pre, enc->offsets, 2 * n * sizeof *enc->offsets);
    memmove(enc->special + pre, enc->special, n);
    for (size_t i = 0; i < n; i++)
        enc->type_ids[pre + i] = tk->seq_type;
    for (size_t i = 0; i < tk->npost; i++) {
        size_t at = i < pre ? i : n + i;
        int64_t o = i < pre ? 0 : text_len;
        enc->ids[at] = tk->post_ids[i];
        enc->offsets[2 * at] = enc->offsets[2 * at + 1] = o;
        enc->special[at] = 1;
        enc->type_ids[at] = tk->post_types[i];
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------------------ */

static int hexval(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ak_tokenizer_decode(ak_tokenizer *tk, const int32_t *ids, size_t n, const uint8_t *skip,
                        char **out, size_t *outlen, int64_t *piece_end, ak_err *err)
{
    size_t cap = 256, len = 0;
    char *o = malloc(cap);
    if (!o)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int first = 1, strip = tk->decoder == TD_SP ? tk->sp_strip_start : 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= tk->vocab.n || !tk->vocab.tok[id]) {
            free(o);
            return ak_fail(err, AK_EDATA, "token %zu: id %d is not in the vocabulary", i, id);
        }
        if (skip && skip[i]) {
            if (piece_end)
                piece_end[i] = (int64_t)len;
            continue;
        }
        const uint8_t *t = tk->vocab.tok[id];
        size_t tl = tk->vocab.len[id];
        int added = (size_t)id < tk->id_cap && tk->added_of_id[id] >= 0;
        if (added) {
            const tk_added *a = &tk->added[tk->added_of_id[id]];
            t = a->s, tl = a->n;
        }
        size_t need = tl * 3 + tk->wp_prefix_len + 8;
        if (ak_grow((void **)&o, &cap, len + need, 1)) {
            free(o);
            return ak_fail(err, AK_ENOMEM, "out of memory");
        }
        size_t start = len;
        if (tk->decoder == TD_WORDPIECE) {
            if (!first && !added && tl >= tk->wp_prefix_len && !memcmp(t, tk->wp_prefix, tk->wp_prefix_len)) {
                t += tk->wp_prefix_len, tl -= tk->wp_prefix_len;
            } else if (!first)
                o[len++] = ' ';
            memcpy(o + len, t, tl);
            len += tl;
        } else if (tk->decoder == TD_SP && tk->sp_bytes && !added && tl == 6 && !memcmp(t, "<0x", 3) && t[5] == '>' &&
                   hexval(t[3]) >= 0 && hexval(t[4]) >= 0) {
            o[len++] = (char)(hexval(t[3]) * 16 + hexval(t[4]));
        } else if (tk->decoder == TD_SP && !added) {
            for (size_t j = 0; j < tl;) {
                if (j + 3 <= tl && !memcmp(t + j, "\xE2\x96\x81", 3)) { /* U+2581 */
                    o[len++] = ' ';
                    j += 3;
                } else
                    o[len++] = (char)t[j++];
            }
        } else {
            memcpy(o + len, t, tl);
            len += tl;
        }
        /* SentencePiece's decoder strips leading spaces of the whole text */
        if (strip > 0) {
            while (strip > 0 && len > start && o[start] == ' ') {
                memmove(o + start, o + start + 1, len - start - 1);
                len--;
                strip--;
            }
            if (len > start)
                strip = 0;
        }
        first = 0;
        if (piece_end)
            piece_end[i] = (int64_t)len;
    }
    o[len] = 0;
    *out = o;
    *outlen = len;
    return 0;
}

