/* report - a self-contained HTML page (and SVG / PNG figures) showing where
 * the model looks: the text tinted by attention statistics, blocks, heads,
 * and attention rows, from a stream at any stage after attend. */
#include "core/buf.h"
#include "cli/cli.h"
#include "attnkit/filter.h"
#include "attnkit/io.h"
#include "attnkit/metrics.h"
#include "attnkit/stream.h"
#include "report/report.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: report [-o FILE] [--svg DIR] [--png DIR] [-s STAT] [-l LAYER] [-H HEAD]\n"
           "              [--max-probs N] [FILE...]\n"
           "One self-contained HTML page (no network, everything inline) showing an attnkit\n"
           "stream after attend: the text tinted by a statistic, blocks, a layer x head\n"
           "grid, attention rows; documents with the same id in later FILEs are merged\n"
           "(give the stream from entropy and the one from prune to see both).\n"
           "  -o, --output FILE  the page (default stdout; with --svg/--png only: none);\n"
           "                     a file is replaced only when the run succeeds\n"
           "      --svg DIR      write DIR/N-ID.tokens.svg and DIR/N-ID.heads.svg\n"
           "      --png DIR      the same figures as PNG (attnkit's own encoder)\n"
           "  -s, --stat STAT    corrected (default), mass, entropy, norm, score: the\n"
           "                     page's first tint and the figures' statistic\n"
           "  -l, --layer N      layer for the tint and figures (default all: the mean)\n"
           "  -H, --head N       head (default the mean of all heads)\n"
           "      --max-probs N  embed attn.probs only up to N values per document\n"
           "                     (default 4194304)\n"
           "  -h, --help         this help\n"
           "Exit status: 0 ok, 64 usage, 65 bad stream (not a stream, truncated, no\n"
           "attention statistics), 66 cannot open, 70 out of memory, 73 cannot create\n"
           "the output, 74 I/O error.\n");
}

/* The page's style sheet and script, at the end of this file. */
static const char *page_css(void);
static const char *page_js(void);

/* ---- the page is built in an ak_buf (buf.h) ---- */

/* HTML/XML text: & < > " escaped; the C0 controls XML 1.0 cannot hold,
 * even as references (all but tab, LF, CR), become U+FFFD. */
void sb_escape(ak_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            ak_buf_puts(b, "\xef\xbf\xbd");
            continue;
        }
        switch (s[i]) {
        case '&': ak_buf_puts(b, "&amp;"); break;
        case '<': ak_buf_puts(b, "&lt;"); break;
        case '>': ak_buf_puts(b, "&gt;"); break;
        case '"': ak_buf_puts(b, "&quot;"); break;
        default: ak_buf_put(b, s + i, 1);
        }
    }
}

static char *base64(const void *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *d = data;
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

/* ---- what one document contributes to the page (the view, report.h) ---- */

static void view_free(view *v)
{
    ak_tensor *ts[] = {v->text, v->tokens, v->offsets, v->segments, v->special, v->entropy,
                       v->mass, v->visible, v->score, v->score_block, v->keep, v->dropped,
                       v->dropped_score};
    for (size_t k = 0; k < sizeof ts / sizeof *ts; k++)
        ak_tensor_free(ts[k]);
    for (size_t k = 0; k < v->nprobs; k++) {
        ak_tensor_free(v->probs[k].p);
        ak_tensor_free(v->probs[k].heads);
    }
    for (size_t k = 0; k < v->nextra; k++) {
        free(v->extra[k].name);
        ak_tensor_free(v->extra[k].keep);
        ak_tensor_free(v->extra[k].dropped);
        ak_tensor_free(v->extra[k].dropped_score);
    }
    free(v->extra);
    free(v->pname);
    ak_tensor_free(v->mass_last);
    ak_tensor_free(v->mass_gen);
    free(v->probs);
    free(v->id);
    memset(v, 0, sizeof *v);
}

/* A pruning's name from prune's meta: "query, word, 50 of 100". */
static char *pruning_name(const ak_doc *d)
{
    const char *pol = ak_meta_str(&d->meta, "prune_policy"), *unit = ak_meta_str(&d->meta, "prune_unit");
    int64_t kept = -1, total = -1;
    ak_meta_int(&d->meta, "prune_kept", &kept);
    ak_meta_int(&d->meta, "prune_total", &total);
    char b[256];
    if (kept >= 0 && total > 0)
        snprintf(b, sizeof b, "%s, %s, %lld of %lld", pol ? pol : "pruned", unit ? unit : "?",
                 (long long)kept, (long long)total);
    else
        snprintf(b, sizeof b, "%s%s%s", pol ? pol : "pruned", unit ? ", " : "", unit ? unit : "");
    return strdup(b);
}

/* attn.mass_last / attn.mass_gen: f32 [L, H, T], and the rows each sums
 * (meta key, else the mass of its first row, as prune reads them) */
static int take_rows(ak_doc *d, const char *name, const char *key, int64_t T, ak_tensor **out,
                     double *rows, ak_err *err)
{
    ak_tensor *t = ak_doc_get(d, name);
    *out = NULL;
    if (!t)
        return 0;
    if (t->dtype != AK_F32 || t->ndim != 3 || t->shape[2] != T || !t->shape[0] || !t->shape[1])
        return ak_fail(err, AK_EDATA, "document '%s': %s is not f32 [L, H, %lld]", d->id, name,
                       (long long)T);
    int64_t v;
    double r = 0;
    if (ak_meta_int(&d->meta, key, &v) == 0)
        r = (double)v;
    else
        for (int64_t j = 0; j < T; j++)
            r += ak_tensor_f32(t)[j];
    *rows = r > 0 ? floor(r + 0.5) : 1;
    *out = ak_doc_take(d, name);
    return 0;
}

/* attn.probs.<l> layer number, or -1 for other names. */
static long probs_layer_of(const char *n)
{
    if (strncmp(n, "attn.probs.", 11) != 0)
        return -1;
    char *end;
    long l = strtol(n + 11, &end, 10);
    return end == n + 11 || *end || l < 0 ? -1 : l;
}

static int need_shape1(const ak_doc *d, const ak_tensor *t, ak_dtype dt, int64_t n, ak_err *err)
{
    if (t->dtype != dt || t->ndim != 1 || (n >= 0 && t->shape[0] != n))
        return ak_fail(err, AK_EDATA, "document '%s': %s is not %s [%lld]", d->id, t->name,
                       ak_dtype_name(dt), (long long)(n >= 0 ? n : t->shape[0]));
    return 0;
}

/* Takes what the page needs out of d into v, checking shapes. */
static int view_from_doc(ak_doc *d, view *v, ak_err *err)
{
    memset(v, 0, sizeof *v);
    if (!(v->id = strdup(d->id)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    ak_tensor *tok = ak_doc_need(d, "tokens", AK_I32, 1, err);
    if (!tok)
        return err->code;
    int64_t T = v->T = tok->shape[0];
    int have_stats = ak_doc_get(d, "attn.entropy") || ak_doc_get(d, "attn.mass");
    int rc;
    if (have_stats && (rc = ak_doc_attn_stats(d, &v->s, err)))
        return rc;
    if (!have_stats && !ak_doc_get(d, "score.token") && !ak_doc_get(d, "keep"))
        return ak_fail(err, AK_EDATA, "document '%s' has no attention statistics (attn.entropy, "
                       "attn.mass: run attend first)", d->id);
    ak_tensor *t;
    if ((t = ak_doc_get(d, "text")) && t->dtype != AK_U8)
        return ak_fail(err, AK_EDATA, "document '%s': text is not u8", d->id);
    if ((t = ak_doc_get(d, "offsets")) &&
        (t->dtype != AK_I64 || t->ndim != 2 || t->shape[0] != T || t->shape[1] != 2))
        return ak_fail(err, AK_EDATA, "document '%s': offsets is not i64 [%lld, 2]", d->id,
                       (long long)T);
    if ((t = ak_doc_get(d, "segments")) && (rc = need_shape1(d, t, AK_I32, T, err)))
        return rc;
    if ((t = ak_doc_get(d, "special")) && (rc = need_shape1(d, t, AK_U8, T, err)))
        return rc;
    if ((t = ak_doc_get(d, "score.token")) && (rc = need_shape1(d, t, AK_F32, T, err)))
        return rc;
    if ((t = ak_doc_get(d, "score.block")) && (rc = need_shape1(d, t, AK_F32, -1, err)))
        return rc;
    if ((t = ak_doc_get(d, "keep")) && (rc = need_shape1(d, t, AK_U8, -1, err)))
        return rc;
    ak_tensor *dr = ak_doc_get(d, "dropped"), *ds = ak_doc_get(d, "dropped.score");
    if (dr && (dr->dtype != AK_I64 || dr->ndim != 2 || dr->shape[1] != 2 || !ds ||
               ds->dtype != AK_F32 || ds->ndim != 1 || ds->shape[0] != dr->shape[0]))
        return ak_fail(err, AK_EDATA, "document '%s': dropped / dropped.score malformed", d->id);
    if (have_stats) {
        v->entropy = ak_doc_take(d, "attn.entropy");
        v->mass = ak_doc_take(d, "attn.mass");
        v->visible = ak_doc_take(d, "attn.visible");
    }
    /* attn.probs.<l>: f32 [h, T, T] with .heads i32 [h] */
    for (size_t k = 0; k < d->ntensors; k++) {
        t = d->tensors[k];
        long l = probs_layer_of(t->name);
        if (l < 0)
            continue;
        if (t->dtype != AK_F32 || t->ndim != 3 || t->shape[1] != T || t->shape[2] != T)
            return ak_fail(err, AK_EDATA, "document '%s': %s is not f32 [h, %lld, %lld]", d->id,
                           t->name, (long long)T, (long long)T);
        if (v->s.L && l >= v->s.L)
            return ak_fail(err, AK_EDATA, "document '%s': %s: the stream has %lld layers", d->id,
                           t->name, (long long)v->s.L);
        char hn[64];
        snprintf(hn, sizeof hn, "%s.heads", t->name);
        ak_tensor *hl = ak_doc_get(d, hn);
        if (hl && (rc = need_shape1(d, hl, AK_I32, t->shape[0], err)))
            return rc;
        for (int64_t h = 0; hl && h < t->shape[0]; h++) {
            int32_t x = ak_tensor_i32(hl)[h];
            if (x < 0 || (v->s.H && x >= v->s.H))
                return ak_fail(err, AK_EDATA, "document '%s': %s: head %d", d->id, hn, x);
        }
        probs_layer *np = realloc(v->probs, sizeof *np * (v->nprobs + 1));
        if (!np)
            return ak_fail(err, AK_ENOMEM, "out of memory");
        v->probs = np;
        v->probs[v->nprobs++] = (probs_layer){.layer = l};
    }
    for (size_t k = 0; k < v->nprobs; k++) {
        char n[64];
        snprintf(n, sizeof n, "attn.probs.%ld", v->probs[k].layer);
        v->probs[k].p = ak_doc_take(d, n);
        snprintf(n, sizeof n, "attn.probs.%ld.heads", v->probs[k].layer);
        v->probs[k].heads = ak_doc_take(d, n);
    }
    v->text = ak_doc_take(d, "text");
    v->tokens = ak_doc_take(d, "tokens");
    v->offsets = ak_doc_take(d, "offsets");
    v->segments = ak_doc_take(d, "segments");
    v->special = ak_doc_take(d, "special");
    v->score = ak_doc_take(d, "score.token");
    v->score_block = ak_doc_take(d, "score.block");
    v->keep = ak_doc_take(d, "keep");
    v->dropped = ak_doc_take(d, "dropped");
    v->dropped_score = ak_doc_take(d, "dropped.score");
    if ((v->keep || v->dropped) && !(v->pname = pruning_name(d)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if ((rc = take_rows(d, "attn.mass_last", "mass_last_w", T, &v->mass_last, &v->mass_last_rows,
                        err)) ||
        (rc = take_rows(d, "attn.mass_gen", "gen_mass_rows", T, &v->mass_gen, &v->mass_gen_rows,
                        err)))
        return rc;
    if (v->entropy) { /* the pointers ak_doc_attn_stats gave now live in v */
        v->s.entropy = ak_tensor_f32(v->entropy);
        v->s.mass = ak_tensor_f32(v->mass);
        v->s.visible = v->visible ? ak_tensor_i32(v->visible) : NULL;
    }
    if (v->segments) {
        int64_t nb;
        if ((rc = ak_block_count(ak_tensor_i32(v->segments), T, &nb, err)))
            return ak_wrap(err, "document '%s'", d->id);
    }
    if (v->offsets) {
        const int64_t *o = ak_tensor_i64(v->offsets);
        size_t len = v->text ? v->text->nbytes : 0;
        for (int64_t i = 0; i < T; i++)
            if (o[2 * i] < 0 || o[2 * i] > o[2 * i + 1] || (size_t)o[2 * i + 1] > len)
                return ak_fail(err, AK_EDATA, "document '%s': offsets[%lld] = [%lld, %lld] "
                               "outside the text (%zu bytes)", d->id, (long long)i,
                               (long long)o[2 * i], (long long)o[2 * i + 1], len);
    }
    if (v->dropped) {
        const int64_t *o = ak_tensor_i64(v->dropped);
        size_t len = v->text ? v->text->nbytes : 0;
        for (int64_t i = 0; i < v->dropped->shape[0]; i++)
            if (o[2 * i] < (i ? o[2 * i - 1] : 0) || o[2 * i] > o[2 * i + 1] ||
                (size_t)o[2 * i + 1] > len)
                return ak_fail(err, AK_EDATA, "document '%s': dropped[%lld] = [%lld, %lld] is "
                               "out of order or outside the text", d->id, (long long)i,
                               (long long)o[2 * i], (long long)o[2 * i + 1]);
    }
    return 0;
}

static void swap_tensor(ak_tensor **a, ak_tensor **b)
{
    ak_tensor *t = *a;
    *a = *b;
    *b = t;
}

/* A later document with the same id (the same prompt after prune, say):
 * the one with attention statistics is the base; the other fills in what
 * the base lacks (keep, dropped spans, scores), where it fits, and a
 * pruning when the base has one already is shown beside it.  A repeat that
 * brings nothing is a warning. */
static int view_merge(view *base, view *o, const char *path, ak_err *err)
{
    if (base->text && o->text &&
        (base->text->nbytes != o->text->nbytes ||
         memcmp(base->text->data, o->text->data, base->text->nbytes) != 0))
        return ak_fail(err, AK_EDATA, "%s: document '%s' has another text than the document "
                       "of that id read before", path, o->id);
    int added = 0;
    if (!base->s.L && o->s.L) {
        view t = *base;
        *base = *o;
        *o = t;
        added = 1;
    }
    if (!base->text || !o->text) {
        if (!added)
            ak_warn("%s: document '%s' appears again without text: nothing of it is shown", path,
                    o->id);
        return 0; /* spans of a text not shown: nothing to add */
    }
    int o_prunes = (o->keep && o->keep->shape[0] == base->T) || (!o->keep && o->dropped);
    if (o_prunes && !base->keep && !base->dropped) {
        swap_tensor(&base->keep, &o->keep);
        swap_tensor(&base->dropped, &o->dropped);
        swap_tensor(&base->dropped_score, &o->dropped_score);
        char *t = base->pname;
        base->pname = o->pname;
        o->pname = t;
        added = 1;
    } else if (o_prunes && o->keep) {
        pruning *np = realloc(base->extra, sizeof *np * (base->nextra + 1));
        if (!np)
            return ak_fail(err, AK_ENOMEM, "out of memory");
        base->extra = np;
        np[base->nextra++] = (pruning){.name = o->pname, .keep = o->keep, .dropped = o->dropped,
                                       .dropped_score = o->dropped_score};
        o->pname = NULL;
        o->keep = o->dropped = o->dropped_score = NULL;
        added = 1;
    }
    if (!base->score && o->score && o->score->shape[0] == base->T) {
        swap_tensor(&base->score, &o->score);
        added = 1;
    }
    if (!base->score_block && o->score_block) {
        swap_tensor(&base->score_block, &o->score_block);
        added = 1;
    }
    if (!base->mass_last && o->mass_last && o->T == base->T) {
        swap_tensor(&base->mass_last, &o->mass_last);
        base->mass_last_rows = o->mass_last_rows;
        added = 1;
    }
    if (!base->mass_gen && o->mass_gen && o->T == base->T) {
        swap_tensor(&base->mass_gen, &o->mass_gen);
        base->mass_gen_rows = o->mass_gen_rows;
        added = 1;
    }
    if (!base->nprobs && o->nprobs && o->T == base->T) {
        base->probs = o->probs;
        base->nprobs = o->nprobs;
        o->probs = NULL;
        o->nprobs = 0;
        added = 1;
    }
    if (!added)
        ak_warn("%s: document '%s' appears again with nothing to compare or add (no other "
                "pruning, no statistics the page lacks): ignored", path, o->id);
    return 0;
}

/* ---- options and the figures' statistic ---- */

const char *const stat_names[] = {"corrected", "mass", "entropy", "norm", "score"};
const char *const stat_titles[] = {"corrected received mass", "received mass",
                                   "query entropy (nats)", "normalised entropy", "prune score"};


/* Token values of the figures' statistic, through the library's aggregation
 * (heads weighted 1 for the chosen head, 0 for the others).  NULL with *why
 * set when the document lacks it. */
float *token_values(const view *v, const struct opts *o, enum statistic st, ak_err *err,
                    const char **why)
{
    int64_t T = v->T;
    float *out = calloc((size_t)T + 1, sizeof *out);
    if (!out) {
        ak_fail(err, AK_ENOMEM, "out of memory");
        return NULL;
    }
    *why = NULL;
    if (st == ST_SCORE) {
        if (!v->score) {
            *why = "no score.token (run entropy)";
            free(out);
            return NULL;
        }
        memcpy(out, v->score->data, v->score->nbytes);
        return out;
    }
    if (!v->s.L) {
        *why = "no attention statistics";
        free(out);
        return NULL;
    }
    int64_t L = v->s.L, H = v->s.H;
    double *w = NULL;
    if (o->head >= 0) {
        if (!(w = calloc((size_t)(L * H), sizeof *w))) {
            free(out);
            ak_fail(err, AK_ENOMEM, "out of memory");
            return NULL;
        }
        for (int64_t l = 0; l < L; l++)
            w[l * H + o->head] = 1;
    }
    ak_token_metrics tm = {0};
    float **slot = st == ST_CORRECTED ? &tm.corrected : st == ST_MASS ? &tm.mass
                   : st == ST_ENTROPY ? &tm.entropy : &tm.norm_entropy;
    *slot = out;
    int64_t l0 = o->layer >= 0 ? o->layer : 0, l1 = o->layer >= 0 ? o->layer : L - 1;
    int rc = ak_token_metrics_agg(&v->s, l0, l1, AK_AGG_MEAN, w, &tm, err);
    free(w);
    if (rc) {
        free(out);
        return NULL;
    }
    return out;
}

static int check_selection(const view *v, const struct opts *o, ak_err *err)
{
    if (!v->s.L)
        return 0;
    if (o->layer >= v->s.L)
        return ak_fail(err, AK_EUSAGE, "--layer %ld: document '%s' has layers 0-%lld", o->layer,
                       v->id, (long long)(v->s.L - 1));
    if (o->head >= v->s.H)
        return ak_fail(err, AK_EUSAGE, "--head %ld: document '%s' has heads 0-%lld", o->head,
                       v->id, (long long)(v->s.H - 1));
    return 0;
}

/* ---- the text: valid UTF-8 and UTF-16 positions for the page ---- */

typedef struct text16 {
    char *utf8;       /* the text with each byte that is not UTF-8 as U+FFFD */
    size_t len;
    int64_t *pos16;   /* [bytes + 1]: UTF-16 index of each byte offset */
} text16;

/* Length of the UTF-8 character at s (the lead byte says how long it
 * claims to be; the library's check says whether it is), 0 if not UTF-8. */
int utf8_seq(const unsigned char *s, size_t n)
{
    int k = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
            : s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : 0;
    return k && (size_t)k <= n && ak_utf8_valid(s, (size_t)k) ? k : 0;
}

/* Byte offsets inside a character map to the character's start. */
static int text_prepare(const view *v, text16 *t, ak_err *err)
{
    memset(t, 0, sizeof *t);
    const unsigned char *s = v->text ? v->text->data : (const unsigned char *)"";
    size_t n = v->text ? v->text->nbytes : 0;
    t->utf8 = malloc(3 * n + 1);
    t->pos16 = malloc(sizeof *t->pos16 * (n + 1));
    if (!t->utf8 || !t->pos16)
        return ak_fail(err, AK_ENOMEM, "out of memory for a text of %zu bytes", n);
    int64_t u = 0;
    for (size_t i = 0; i < n;) {
        int k = s[i] ? utf8_seq(s + i, n - i) : 1;
        if (k == 0) {
            memcpy(t->utf8 + t->len, "\xef\xbf\xbd", 3);
            t->len += 3;
            t->pos16[i++] = u++;
            continue;
        }
        memcpy(t->utf8 + t->len, s + i, (size_t)k);
        t->len += (size_t)k;
        for (int j = 0; j < k; j++)
            t->pos16[i + (size_t)j] = u;
        u += k == 4 ? 2 : 1;
        i += (size_t)k;
    }
    t->pos16[n] = u;
    t->utf8[t->len] = 0;
    return 0;
}

static void text_free(text16 *t)
{
    free(t->utf8);
    free(t->pos16);
}

/* Without text (tokenize --from-ids): the token ids, one after another. */
int synth_text(view *v, ak_err *err)
{
    if (v->text && v->offsets)
        return 0;
    int64_t T = v->T;
    const int32_t *ids = ak_tensor_i32(v->tokens);
    ak_buf b = {0};
    int64_t *off = malloc(sizeof *off * (size_t)(2 * T + 2));
    if (!off)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    for (int64_t i = 0; i < T; i++) {
        if (i)
            ak_buf_puts(&b, " ");
        off[2 * i] = (int64_t)b.len;
        ak_buf_printf(&b, "#%d", ids[i]);
        off[2 * i + 1] = (int64_t)b.len;
    }
    if (b.oom) {
        free(b.data);
        free(off);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    int64_t ts[1] = {(int64_t)b.len}, os[2] = {T, 2};
    ak_tensor *t = ak_tensor_new("text", AK_U8, 1, ts, err);
    ak_tensor *o = t ? ak_tensor_new("offsets", AK_I64, 2, os, err) : NULL;
    if (!o) {
        ak_tensor_free(t);
        free(b.data);
        free(off);
        return err->code;
    }
    if (b.len)
        memcpy(t->data, b.data, b.len);
    memcpy(o->data, off, o->nbytes);
    free(b.data);
    free(off);
    ak_tensor_free(v->text);
    ak_tensor_free(v->offsets);
    v->text = t;
    v->offsets = o;
    /* the dropped spans were byte spans of the text that is no longer shown */
    ak_tensor_free(v->dropped);
    ak_tensor_free(v->dropped_score);
    v->dropped = v->dropped_score = NULL;
    return 0;
}

/* ---- the page's data ---- */

static json_t *jb64(const void *data, size_t n)
{
    char *s = base64(data, n);
    json_t *j = s ? json_string(s) : NULL;
    free(s);
    return j ? j : json_null();
}

/* f32 as bf16 (round to nearest even): half the bytes, 3 significant digits. */
static json_t *jbf16(const float *x, size_t n)
{
    uint16_t *h = malloc(sizeof *h * (n + 1));
    if (!h)
        return json_null();
    for (size_t i = 0; i < n; i++) {
        uint16_t b = ak_f32_to_bf16(x[i]);
        unsigned char *p = (unsigned char *)&h[i]; /* little-endian bytes */
        p[0] = (unsigned char)(b & 0xff);
        p[1] = (unsigned char)(b >> 8);
    }
    json_t *j = jb64(h, n * 2);
    free(h);
    return j;
}

static json_t *jnum(double x) { return json_real(isfinite(x) ? x : 0.0); }

static json_t *jfloats(const float *x, int64_t n)
{
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++)
        json_array_append_new(a, jnum(x[i]));
    return a;
}

/* The tokens' arrays: offsets (as UTF-16 positions), ids, segments, special
 * marks, scores and the kept mask. */
static int json_tokens(json_t *d, const view *v, const text16 *tx, ak_err *err)
{
    int64_t T = v->T;
    int32_t *i32 = malloc(sizeof *i32 * (size_t)(2 * T + 2));
    if (!i32)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    const int64_t *off = ak_tensor_i64(v->offsets);
    for (int64_t i = 0; i < 2 * T; i++)
        i32[i] = (int32_t)tx->pos16[off[i]];
    json_object_set_new(d, "off", jb64(i32, sizeof *i32 * (size_t)(2 * T)));
    free(i32);
    json_object_set_new(d, "tok", jb64(v->tokens->data, v->tokens->nbytes));
    json_object_set_new(d, "seg", v->segments ? jb64(v->segments->data, v->segments->nbytes)
                                              : json_null());
    json_object_set_new(d, "special", v->special ? jb64(v->special->data, v->special->nbytes)
                                                 : json_null());
    json_object_set_new(d, "score", v->score ? jb64(v->score->data, v->score->nbytes)
                                             : json_null());
    json_object_set_new(d, "keep", v->keep && v->keep->shape[0] == T
                                       ? jb64(v->keep->data, v->keep->nbytes) : json_null());
    return 0;
}

/* The dropped spans (UTF-16 positions and score) and every pruning, for the
 * selector and the comparison: the first is keep / dropped. */
static void json_prunings(json_t *d, const view *v, const text16 *tx)
{
    int64_t T = v->T;
    if (v->dropped) {
        json_t *a = json_array();
        const int64_t *dr = ak_tensor_i64(v->dropped);
        const float *sc = ak_tensor_f32(v->dropped_score);
        for (int64_t k = 0; k < v->dropped->shape[0]; k++)
            json_array_append_new(a, json_pack("[IIo]", (json_int_t)tx->pos16[dr[2 * k]],
                                               (json_int_t)tx->pos16[dr[2 * k + 1]], jnum(sc[k])));
        json_object_set_new(d, "dropped", a);
    }
    if (v->pname || v->nextra) {
        json_t *pa = json_array();
        for (size_t k = 0; k <= v->nextra; k++) {
            const char *nm = k ? v->extra[k - 1].name : v->pname;
            ak_tensor *kp = k ? v->extra[k - 1].keep : v->keep;
            ak_tensor *dr = k ? v->extra[k - 1].dropped : v->dropped;
            ak_tensor *ds = k ? v->extra[k - 1].dropped_score : v->dropped_score;
            json_t *spans = json_array();
            for (int64_t q = 0; dr && q < dr->shape[0]; q++)
                json_array_append_new(spans, json_pack("[IIo]",
                    (json_int_t)tx->pos16[ak_tensor_i64(dr)[2 * q]],
                    (json_int_t)tx->pos16[ak_tensor_i64(dr)[2 * q + 1]], jnum(ak_tensor_f32(ds)[q])));
            json_array_append_new(pa, json_pack("{sssoso}", "name", nm ? nm : "pruned", "keep",
                                                kp && kp->shape[0] == T ? jb64(kp->data, kp->nbytes)
                                                                        : json_null(),
                                                "dropped", spans));
        }
        json_object_set_new(d, "prunings", pa);
    }
}

/* The query policy's rows: the question's (attend --mass-last) and the
 * answer's (kvcache --gen-mass), per row. */
static int json_query_rows(json_t *d, const view *v, ak_err *err)
{
    ak_tensor *rows_t[2] = {v->mass_last, v->mass_gen};
    const char *rows_k[2] = {"massLast", "massGen"};
    double rows_n[2] = {v->mass_last_rows, v->mass_gen_rows};
    for (int k = 0; k < 2; k++) {
        ak_tensor *t = rows_t[k];
        if (!t)
            continue;
        size_t n = ak_tensor_count(t);
        float *x = malloc(sizeof *x * (n ? n : 1));
        if (!x)
            return ak_fail(err, AK_ENOMEM, "out of memory");
        for (size_t q = 0; q < n; q++)
            x[q] = (float)(ak_tensor_f32(t)[q] / rows_n[k]);
        char key[32];
        snprintf(key, sizeof key, "%sLH", rows_k[k]);
        json_object_set_new(d, rows_k[k], jbf16(x, n));
        json_object_set_new(d, key, json_pack("[II]", (json_int_t)t->shape[0], (json_int_t)t->shape[1]));
        free(x);
    }
    return 0;
}

/* attend's statistics: entropy and mass per layer, head and token, the
 * factors the page multiplies them by, and each head's summary. */
static int json_attention(json_t *d, const view *v, ak_err *err)
{
    int64_t T = v->T, L = v->s.L, H = v->s.H;
    size_t n = (size_t)(L * H * T);
    float *f = malloc(sizeof *f * (size_t)(L * T + 1));
    if (!f)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    json_object_set_new(d, "ent", jbf16(v->s.entropy, n));
    json_object_set_new(d, "mass", jbf16(v->s.mass, n));
    /* the page multiplies by these: 1 / seers(j) for the corrected mass,
     * ak_norm_entropy(1, visible) for the normalised entropy */
    for (int64_t j = 0; j < T; j++) {
        int64_t s = ak_mask_seers(v->s.mask, T, j);
        f[j] = s > 0 ? (float)(1.0 / (double)s) : 0.0f;
    }
    json_object_set_new(d, "invSeers", jb64(f, sizeof *f * (size_t)T));
    for (int64_t l = 0; l < L; l++)
        for (int64_t i = 0; i < T; i++) {
            int64_t vis = v->s.visible ? v->s.visible[l * T + i]
                                       : ak_mask_visible(v->s.mask, T, i);
            f[l * T + i] = (float)ak_norm_entropy(1.0, vis);
        }
    /* one row when every layer sees alike (no sliding-window layers) */
    int64_t rows = 1;
    for (int64_t k = T; k < L * T && rows == 1; k++)
        if (f[k] != f[k % T])
            rows = L;
    json_object_set_new(d, "visRows", json_integer(rows));
    json_object_set_new(d, "invLogVis", jb64(f, sizeof *f * (size_t)(rows * T)));
    free(f);
    int rc;
    ak_head_summary *hs = malloc(sizeof *hs * (size_t)(L * H));
    if (!hs || (rc = ak_head_summaries(&v->s, hs, err))) {
        free(hs);
        return hs ? rc : ak_fail(err, AK_ENOMEM, "out of memory");
    }
    json_t *hn = json_array(), *he = json_array(), *hsk = json_array(), *hss = json_array(),
           *hc = json_array();
    for (int64_t k = 0; k < L * H; k++) {
        json_array_append_new(hn, jnum(hs[k].norm_entropy));
        json_array_append_new(he, jnum(hs[k].entropy));
        json_array_append_new(hsk, json_integer(hs[k].sink));
        json_array_append_new(hss, jnum(hs[k].sink_share));
        json_array_append_new(hc, json_string(ak_head_class_name(hs[k].cls)));
    }
    free(hs);
    json_t *heads = json_object();
    json_object_set_new(heads, "norm", hn);
    json_object_set_new(heads, "ent", he);
    json_object_set_new(heads, "sink", hsk);
    json_object_set_new(heads, "sinkShare", hss);
    json_object_set_new(heads, "cls", hc);
    json_object_set_new(d, "heads", heads);
    return 0;
}

/* Blocks: score.block, and the corrected mass and normalised entropy of
 * all layers and heads, averaged over each block's tokens. */
static int json_blocks(json_t *d, const view *v, ak_err *err)
{
    int64_t T = v->T, L = v->s.L;
    const int32_t *seg = ak_tensor_i32(v->segments);
    int64_t nb = 0;
    ak_block_count(seg, T, &nb, err);
    json_t *b = json_object();
    json_object_set_new(b, "n", json_integer(nb));
    int64_t *cnt = calloc((size_t)nb + 1, sizeof *cnt);
    float *bm = calloc((size_t)nb + 1, sizeof *bm), *bn = calloc((size_t)nb + 1, sizeof *bn);
    float *corr = calloc((size_t)T + 1, sizeof *corr), *norm = calloc((size_t)T + 1, sizeof *norm);
    float *kept = calloc((size_t)T + 1, sizeof *kept), *bk = calloc((size_t)nb + 1, sizeof *bk);
    int rc = !cnt || !bm || !bn || !corr || !norm || !kept || !bk
                 ? ak_fail(err, AK_ENOMEM, "out of memory") : 0;
    if (!rc)
        rc = ak_block_agg(seg, T, corr, nb, cnt, NULL, NULL, NULL, err);
    if (!rc) {
        json_t *c = json_array();
        for (int64_t k = 0; k < nb; k++)
            json_array_append_new(c, json_integer(cnt[k]));
        json_object_set_new(b, "count", c);
    }
    if (!rc && L) {
        ak_token_metrics tm = {.corrected = corr, .norm_entropy = norm};
        rc = ak_token_metrics_agg(&v->s, 0, L - 1, AK_AGG_MEAN, NULL, &tm, err);
        if (!rc)
            rc = ak_block_agg(seg, T, corr, nb, NULL, bm, NULL, NULL, err);
        if (!rc)
            rc = ak_block_agg(seg, T, norm, nb, NULL, bn, NULL, NULL, err);
        if (!rc) {
            json_object_set_new(b, "mass", jfloats(bm, nb));
            json_object_set_new(b, "norm", jfloats(bn, nb));
        }
    }
    if (!rc && v->score_block && v->score_block->shape[0] == nb)
        json_object_set_new(b, "score", jfloats(ak_tensor_f32(v->score_block), nb));
    if (!rc && v->keep && v->keep->shape[0] == T) {
        for (int64_t i = 0; i < T; i++)
            kept[i] = ak_tensor_u8(v->keep)[i] ? 1.0f : 0.0f;
        rc = ak_block_agg(seg, T, kept, nb, NULL, bk, NULL, NULL, err);
        if (!rc)
            json_object_set_new(b, "kept", jfloats(bk, nb));
    }
    free(cnt);
    free(bm);
    free(bn);
    free(corr);
    free(norm);
    free(kept);
    free(bk);
    json_object_set_new(d, "blocks", b);
    return rc;
}

/* attn.probs: bf16, while the document's total stays under --max-probs */
static void json_probs(json_t *d, const view *v, const struct opts *o)
{
    size_t total = 0;
    for (size_t k = 0; k < v->nprobs; k++)
        total += ak_tensor_count(v->probs[k].p);
    if (v->nprobs && total <= (size_t)o->max_probs) {
        json_t *a = json_array();
        for (size_t k = 0; k < v->nprobs; k++) {
            ak_tensor *p = v->probs[k].p;
            json_t *hl = json_array();
            for (int64_t h = 0; h < p->shape[0]; h++)
                json_array_append_new(hl, json_integer(v->probs[k].heads
                                                           ? ak_tensor_i32(v->probs[k].heads)[h]
                                                           : h));
            json_array_append_new(a, json_pack("{sIsoso}", "layer", (json_int_t)v->probs[k].layer,
                                               "heads", hl, "data",
                                               jbf16(ak_tensor_f32(p), ak_tensor_count(p))));
        }
        json_object_set_new(d, "probs", a);
    } else if (v->nprobs) {
        char note[160];
        snprintf(note, sizeof note, "attn.probs left out: %zu values, more than --max-probs %ld",
                 total, o->max_probs);
        json_object_set_new(d, "probsNote", json_string(note));
    }
}

/* One document's part of the page's data. */
static int doc_json(view *v, const struct opts *o, json_t **out, ak_err *err)
{
    int rc;
    if ((rc = synth_text(v, err)))
        return rc;
    text16 tx;
    if ((rc = text_prepare(v, &tx, err))) {
        text_free(&tx);
        return rc;
    }
    json_t *d = json_object();
    json_object_set_new(d, "id", json_string(v->id));
    json_object_set_new(d, "T", json_integer(v->T));
    json_object_set_new(d, "L", json_integer(v->s.L));
    json_object_set_new(d, "H", json_integer(v->s.H));
    json_object_set_new(d, "causal", json_boolean(v->s.mask.causal));
    json_object_set_new(d, "window", json_integer(v->s.mask.window));
    json_t *js = json_stringn(tx.utf8, tx.len);
    json_object_set_new(d, "text", js ? js : json_string(""));
    rc = json_tokens(d, v, &tx, err);
    if (!rc)
        json_prunings(d, v, &tx);
    text_free(&tx);
    if (!rc)
        rc = json_query_rows(d, v, err);
    if (!rc && v->s.L)
        rc = json_attention(d, v, err);
    if (!rc && v->segments)
        rc = json_blocks(d, v, err);
    if (rc) {
        json_decref(d);
        return rc;
    }
    json_probs(d, v, o);
    json_object_set_new(d, "init", json_pack("{sssIsI}", "stat", stat_names[o->stat], "layer",
                                             (json_int_t)o->layer, "head", (json_int_t)o->head));
    *out = d;
    return 0;
}


/* The page: the data as JSON in a script element ('<' written as \u003c,
 * so no string in it can end the element), then the page's own script. */
static int page(ak_buf *b, view *vs, size_t nv, const char *model, const struct opts *o,
                ak_err *err)
{
    json_t *root = json_object(), *docs = json_array();
    json_object_set_new(root, "model", json_string(model));
    json_object_set_new(root, "docs", docs);
    for (size_t n = 0; n < nv; n++) {
        json_t *d = NULL;
        int rc = doc_json(&vs[n], o, &d, err);
        if (rc) {
            json_decref(root);
            return rc;
        }
        json_array_append_new(docs, d);
        /* the page holds the data now; give the memory back early */
        for (size_t k = 0; k < vs[n].nprobs; k++) {
            ak_tensor_free(vs[n].probs[k].p);
            ak_tensor_free(vs[n].probs[k].heads);
        }
        free(vs[n].probs);
        vs[n].probs = NULL;
        vs[n].nprobs = 0;
    }
    char *js = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (!js)
        return ak_fail(err, AK_ENOMEM, "out of memory for the page's data");
    ak_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width\">\n<title>attnkit report");
    if (nv) {
        ak_buf_puts(b, ": ");
        sb_escape(b, vs[0].id, strlen(vs[0].id));
    }
    ak_buf_puts(b, "</title>\n<style>\n");
    ak_buf_puts(b, page_css());
    ak_buf_puts(b, "</style></head>\n<body data-errors=\"\" data-ready=\"0\">\n"
               "<header><h1>attnkit report</h1>\n"
               "<label>document <select id=\"doc\"></select></label>\n"
               "<label>tint by <select id=\"stat\"></select></label>\n"
               "<label>layer <select id=\"layer\"></select></label>\n"
               "<label>head <select id=\"head\"></select></label>\n"
               "<label id=\"prunlab\">pruning <select id=\"pruning\"></select></label>\n"
               "<button id=\"jumpq\" type=\"button\">to the question</button>"
               "<button id=\"jumpd\" type=\"button\">next dropped span</button>\n"
               "<span id=\"legend\"></span><span id=\"what\" class=\"note\"></span>"
               "<span id=\"status\"></span></header>\n"
               "<div class=\"note\" style=\"padding:4px 14px\"><span id=\"model\"></span> "
               "<span id=\"info\"></span> · hover a token for its numbers; click one for its "
               "attention row (with attn.probs)</div>\n"
               "<main><div id=\"textcol\"><div id=\"text\"></div></div>\n<aside>"
               "<section id=\"heads\"></section><section id=\"blocks\"></section>"
               "<section id=\"matrix\"><h2>Attention matrix</h2><canvas id=\"mcanvas\"></canvas>"
               "<div id=\"mnote\" class=\"note\"></div></section></aside></main>\n"
               "<div id=\"tip\"></div>\n<script type=\"application/json\" id=\"akdata\">");
    for (const char *p = js; *p;) {
        const char *lt = strchr(p, '<');
        size_t n = lt ? (size_t)(lt - p) : strlen(p);
        ak_buf_put(b, p, n);
        if (!lt)
            break;
        ak_buf_puts(b, "\\u003c");
        p = lt + 1;
    }
    free(js);
    ak_buf_puts(b, "</script>\n<script>\n");
    ak_buf_puts(b, page_js());
    ak_buf_puts(b, "</script>\n</body></html>\n");
    return b->oom ? ak_fail(err, AK_ENOMEM, "out of memory for the page") : 0;
}

struct reading {
    const char *path;
    view **vs;
    size_t *nv;
    char **model;
};

/* One record of an input: the first header names the model, each document
 * becomes a view or is merged into the view of its id. */
static int read_record(void *vc, ak_record *rec, ak_err *err)
{
    struct reading *x = vc;
    view **vs = x->vs;
    size_t *nv = x->nv;
    int rc = 0;
    if (rec->type == AK_REC_HEADER && !*x->model) {
        const char *name = ak_meta_str(&rec->header->model, "name");
        const char *arch = ak_meta_str(&rec->header->model, "arch");
        ak_buf b = {0};
        ak_buf_printf(&b, "model %s%s%s%s", name ? name : "?", arch ? " (" : "", arch ? arch : "",
                      arch ? ")" : "");
        *x->model = b.data;
        if (b.oom)
            rc = ak_fail(err, AK_ENOMEM, "out of memory");
    } else if (rec->type == AK_REC_DOC) {
        view v;
        rc = view_from_doc(rec->doc, &v, err);
        size_t k = 0;
        while (!rc && k < *nv && strcmp((*vs)[k].id, v.id) != 0)
            k++;
        if (rc) {
            view_free(&v);
        } else if (k < *nv) {
            rc = view_merge(&(*vs)[k], &v, x->path, err);
            view_free(&v);
        } else {
            view *p = realloc(*vs, sizeof *p * (*nv + 1));
            if (!p) {
                view_free(&v);
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
            } else {
                *vs = p;
                (*vs)[(*nv)++] = v;
            }
        }
    }
    return rc;
}

static int read_input(const char *path, view **vs, size_t *nv, char **model, ak_err *err)
{
    struct reading x = {path, vs, nv, model};
    return ak_cli_read(path, read_record, &x, err);
}

int main(int argc, char **argv)
{
    ak_cli_init("report");
    struct opts o = {.stat = ST_CORRECTED, .layer = -1, .head = -1, .max_probs = 4194304};
    enum { OPT_SVG = 256, OPT_PNG, OPT_MAXP };
    static const struct option lo[] = {
        {"output", required_argument, 0, 'o'}, {"svg", required_argument, 0, OPT_SVG},
        {"png", required_argument, 0, OPT_PNG}, {"stat", required_argument, 0, 's'},
        {"layer", required_argument, 0, 'l'},  {"head", required_argument, 0, 'H'},
        {"max-probs", required_argument, 0, OPT_MAXP}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *output = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:s:l:H:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case OPT_SVG: o.svg_dir = optarg; break;
        case OPT_PNG: o.png_dir = optarg; break;
        case 's': {
            size_t k = 0;
            while (k < 5 && strcmp(optarg, stat_names[k]) != 0)
                k++;
            if (k == 5)
                ak_usage_error("--stat: expected corrected, mass, entropy, norm or score, got '%s'",
                               optarg);
            o.stat = (enum statistic)k;
            break;
        }
        case 'l':
            o.layer = strcmp(optarg, "all") == 0 ? -1 : ak_parse_long("--layer", optarg, 0, 1 << 20);
            break;
        case 'H':
            o.head = strcmp(optarg, "mean") == 0 ? -1 : ak_parse_long("--head", optarg, 0, 1 << 20);
            break;
        case OPT_MAXP: o.max_probs = ak_parse_long("--max-probs", optarg, 0, 1L << 40); break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    ak_err err = {0};
    char *const *inputs = argv + optind;
    int ninputs = argc - optind;
    int want_page = output || (!o.svg_dir && !o.png_dir);
    ak_output out;
    if (want_page && ak_output_open(&out, output, inputs, ninputs, &err))
        ak_die(&err);
    view *vs = NULL;
    size_t nv = 0;
    char *model = NULL;
    int rc = 0;
    if (ninputs == 0)
        rc = read_input("-", &vs, &nv, &model, &err);
    for (int i = 0; i < ninputs && !rc; i++)
        rc = read_input(inputs[i], &vs, &nv, &model, &err);
    for (size_t n = 0; n < nv && !rc; n++)
        rc = check_selection(&vs[n], &o, &err);
    if (!rc && (o.svg_dir || o.png_dir))
        rc = write_figures(vs, nv, &o, inputs, ninputs, &err);
    ak_buf b = {0};
    if (!rc && want_page)
        rc = page(&b, vs, nv, model ? model : "", &o, &err);
    if (!rc && want_page && ak_write_full(out.fd, b.data, b.len) != 0)
        rc = ak_write_error(&err, out.name);
    free(b.data);
    if (want_page)
        rc = ak_filter_finish(&out, NULL, rc, &err);
    for (size_t n = 0; n < nv; n++)
        view_free(&vs[n]);
    free(vs);
    free(model);
    if (rc)
        ak_die(&err);
    return 0;
}

/* ---- the page's style and script: all of the page's code, inline (it loads
 * nothing).  They are real files, cmd/report/page.css and page.js (readable,
 * lintable: tests/analysis/report.t runs node --check on the script), embedded here
 * at build time by the assembler's .incbin, NUL-terminated; the Makefile
 * passes their folder (REPORT_ASSETS) and makes report.o depend on them.
 * The script reads the data from the akdata element. ---- */

#ifndef REPORT_ASSETS
#define REPORT_ASSETS "cmd/report"
#endif
__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        "report_page_css:\n"
        ".incbin \"" REPORT_ASSETS "/page.css\"\n"
        ".byte 0\n"
        ".balign 16\n"
        "report_page_js:\n"
        ".incbin \"" REPORT_ASSETS "/page.js\"\n"
        ".byte 0\n"
        ".popsection\n");
extern const char report_page_css[] __asm__("report_page_css");
extern const char report_page_js[] __asm__("report_page_js");

static const char *page_css(void)
{
    return report_page_css;
}

static const char *page_js(void)
{
    return report_page_js;
}
