/* tok_chat.c - one user message in the model's chat format, as Hugging
 * Face's apply_chat_template([{"role": "user", ...}],
 * add_generation_prompt=True) renders it, then tokenized as HF tokenizes
 * the rendering (without the post-processor's tokens).
 *
 * No Jinja here: the template families are recognised from the template's
 * text and rendered in C.
 *   chatml  <|im_start|>system\nSYSTEM<|im_end|>\n (the --system text, else
 *           the default system turn the template writes, if any)
 *           <|im_start|>user\nTEXT<|im_end|>\n<|im_start|>assistant\n
 *   gemma   BOS<start_of_turn>user\n[SYSTEM SEP]TEXT<end_of_turn>\n
 *           <start_of_turn>model\n   with TEXT trimmed as Jinja's trim does
 *           and SEP the template's first_user_prefix separator ("\n\n").
 * Without a template the family follows the vocabulary's turn tokens. */
#include "core/buf.h"
#include "tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum { CHAT_CHATML = 1, CHAT_GEMMA };

typedef struct chat_fmt {
    int family;
    char *default_system;  /* chatml: the template's own system turn; NULL: none */
    char *sep;             /* gemma: after the system text; NULL: no system turn */
    int trim, bos;
} chat_fmt;

static const char *find(const char *s, size_t n, const char *pat)
{
    size_t pl = strlen(pat);
    return pl <= n ? memmem(s, n, pat, pl) : NULL;
}

/* A Jinja string literal's text from s (just inside the quote q) up to the
 * closing quote or, when stop is given, up to stop: unescaped and
 * malloc'd.  NULL when the text holds an expression instead. */
static char *literal(const char *s, const char *end, char q, const char *stop)
{
    char *o = malloc((size_t)(end - s) + 1);
    size_t k = 0;
    if (!o)
        return NULL;
    size_t sl = stop ? strlen(stop) : 0;
    for (const char *p = s; p < end; p++) {
        if (stop && (size_t)(end - p) >= sl && !memcmp(p, stop, sl)) {
            o[k] = 0;
            return o;
        }
        if (*p == '\\' && p + 1 < end) {
            p++;
            o[k++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p;
            continue;
        }
        if (*p == q) {
            if (stop)
                break; /* the literal ends before stop: an expression follows */
            o[k] = 0;
            return o;
        }
        if (stop && (*p == '{' || *p == '}'))
            break;
        o[k++] = *p;
    }
    free(o);
    return NULL;
}

/* The quote that opens the literal holding position p of the template. */
static char quote_before(const char *t, const char *p)
{
    while (p > t && p[-1] != '\'' && p[-1] != '"')
        p--;
    return p > t ? p[-1] : '\'';
}

static int recognise(const ak_tokenizer *tk, const char *want, chat_fmt *f, ak_err *err)
{
    const char *t = tk->chat_template;
    size_t n = tk->chat_template_len;
    memset(f, 0, sizeof *f);
    if (t) {
        if (find(t, n, "<|im_start|>") && find(t, n, "<|im_end|>"))
            f->family = CHAT_CHATML;
        else if (find(t, n, "<start_of_turn>") && find(t, n, "<end_of_turn>"))
            f->family = CHAT_GEMMA;
    } else {
        /* no template in the metadata: the family whose turn tokens the vocabulary has */
        if (tk_vocab_find(&tk->vocab, (const uint8_t *)"<start_of_turn>", 15) >= 0 &&
            tk_vocab_find(&tk->vocab, (const uint8_t *)"<end_of_turn>", 13) >= 0)
            f->family = CHAT_GEMMA;
        else if (tk_vocab_find(&tk->vocab, (const uint8_t *)"<|im_start|>", 12) >= 0 &&
                 tk_vocab_find(&tk->vocab, (const uint8_t *)"<|im_end|>", 10) >= 0)
            f->family = CHAT_CHATML;
    }
    if (want) {
        f->family = !strcmp(want, "chatml") ? CHAT_CHATML : !strcmp(want, "gemma") ? CHAT_GEMMA : -1;
        if (f->family < 0)
            return ak_fail(err, AK_EUSAGE, "chat format %s is not known (chatml, gemma)", want);
    }
    if (!f->family)
        return ak_fail(err, AK_ECONFIG, t ? "the chat template is not one of the known families (ChatML, Gemma); "
                                            "name one with --chat-format"
                                          : "the model has no chat template; name a format with --chat-format");
    int from_template = t && ((f->family == CHAT_CHATML && find(t, n, "<|im_start|>")) ||
                              (f->family == CHAT_GEMMA && find(t, n, "<start_of_turn>")));
    if (f->family == CHAT_GEMMA) {
        f->bos = 1, f->trim = 1;
        f->sep = strdup("\n\n");
        if (from_template) {
            f->bos = find(t, n, "bos_token") != NULL;
            f->trim = find(t, n, "| trim") || find(t, n, "|trim");
            free(f->sep);
            f->sep = NULL;
            const char *k = find(t, n, "first_user_prefix = messages[0]['content'] + ");
            if (k) {
                k += strlen("first_user_prefix = messages[0]['content'] + ");
                if (k < t + n && (*k == '\'' || *k == '"'))
                    f->sep = literal(k + 1, t + n, *k, NULL);
            }
        } else if (!f->sep)
            return ak_fail(err, AK_ENOMEM, "out of memory");
    } else if (from_template) {
        f->bos = find(t, n, "bos_token") != NULL;
        /* the default system turn: a literal after <|im_start|>system and a newline */
        for (const char *p = t; (p = find(p, (size_t)(t + n - p), "<|im_start|>system")); p++) {
            const char *q = p + strlen("<|im_start|>system");
            if (q < t + n && *q == '\n')
                q++;
            else if (q + 1 < t + n && q[0] == '\\' && q[1] == 'n')
                q += 2;
            else
                continue;
            if ((f->default_system = literal(q, t + n, quote_before(t, p), "<|im_end|>")))
                break;
        }
    }
    return 0;
}

/* Jinja's trim (Python's str.strip()): [*a, *b) inside text. */
static void trim(const char *text, size_t len, size_t *a, size_t *b)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0, e = len;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (l <= 0 || !tk_py_space((uint32_t)cp))
            break;
        i += (size_t)l;
    }
    while (e > i) {
        size_t j = e - 1;
        while (j > i && (s[j] & 0xC0) == 0x80)
            j--;
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(s + j, (utf8proc_ssize_t)(e - j), &cp);
        if (l <= 0 || !tk_py_space((uint32_t)cp))
            break;
        e = j;
    }
    *a = i, *b = e;
}

int ak_tokenizer_chat(ak_tokenizer *tk, const char *format, const char *system, const char *text,
                      size_t len, ak_encoding *enc, ak_err *err)
{
    chat_fmt f;
    int rc = recognise(tk, format, &f, err);
    if (rc)
        return rc;
    ak_buf r = {0};
    ak_encoding tmp = {0};
    size_t ua = 0, ub = len, P = 0;
    if (f.bos && tk->bos_id >= 0) {
        size_t bl;
        const char *bs = ak_tokenizer_id_to_token(tk, tk->bos_id, &bl);
        if ((size_t)tk->bos_id < tk->id_cap && tk->added_of_id[tk->bos_id] >= 0)
            bs = (const char *)tk->added[tk->added_of_id[tk->bos_id]].s, bl = tk->added[tk->added_of_id[tk->bos_id]].n;
        if (bs)
            ak_buf_put(&r, bs, bl);
    }
    if (f.family == CHAT_CHATML) {
        const char *sys = system ? system : f.default_system;
        if (sys)
            ak_buf_printf(&r, "<|im_start|>system\n%s<|im_end|>\n", sys);
        ak_buf_puts(&r, "<|im_start|>user\n");
    } else {
        if (system && !f.sep) {
            rc = ak_fail(err, AK_ECONFIG, "the chat template has no system turn");
            goto out;
        }
        ak_buf_puts(&r, "<start_of_turn>user\n");
        if (system)
            ak_buf_printf(&r, "%s%s", system, f.sep);
        if (f.trim)
            trim(text, len, &ua, &ub);
    }
    P = r.len;
    ak_buf_put(&r, text + ua, ub - ua);
    ak_buf_puts(&r, f.family == CHAT_CHATML ? "<|im_end|>\n<|im_start|>assistant\n"
                                             : "<end_of_turn>\n<start_of_turn>model\n");
    if (r.oom) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = ak_tokenizer_encode(tk, r.data, r.len, 0, &tmp, err)))
        goto out;
    /* offsets back into text; the template's own tokens are special and
     * cover nothing, at the text's start or end as post-processor tokens */
    size_t U = ub - ua;
    for (size_t i = 0; i < tmp.n; i++) {
        int64_t s = tmp.offsets[2 * i], e = tmp.offsets[2 * i + 1];
        int64_t cs = s > (int64_t)P ? s : (int64_t)P, ce = e < (int64_t)(P + U) ? e : (int64_t)(P + U);
        int r2;
        if (cs < ce)
            r2 = ak_encoding_push(enc, tmp.ids[i], cs - (int64_t)P + (int64_t)ua, ce - (int64_t)P + (int64_t)ua,
                             tmp.special[i], 0);
        else {
            int64_t at = s < (int64_t)P ? 0 : (int64_t)len;
            r2 = ak_encoding_push(enc, tmp.ids[i], at, at, 1, 0);
        }
        if (r2) {
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    free(r.data);
    free(f.default_system);
    free(f.sep);
    ak_encoding_free(&tmp);
    return rc;
}
