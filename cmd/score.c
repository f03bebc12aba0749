/* score - what pruning cost: full vs pruned documents compared through the
 * model's own outputs (sentence-embedding cosine, retrieval rank, or the
 * log-likelihood of a continuation). */
#include "core/buf.h"
#include "cli/cli.h"
#include "attnkit/filter.h"
#include "attnkit/io.h"
#include "attnkit/model.h"
#include "model/window.h"
#include "attnkit/stream.h"
#include "core/tsv.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: score [-q QUERIES] [-t TARGET] [-s] [-o FILE] FULL PRUNED\n"
           "       score [-m MODEL] [-t TARGET] [-s] [-o FILE] [PRUNED]\n"
           "Compare full and pruned documents (matched by id) and print a TSV table.\n"
           "With one stream (or none: stdin), straight from prune: the model is run\n"
           "on each document's full tokens (full.tokens) and on the kept ones, e.g.\n"
           "  prune --keep 0.5 full.ak | score\n"
           "  -m, --model MODEL     one stream: the model (default $ATTNKIT_MODEL, else\n"
           "                        SmolLM2-135M-Instruct); the stream must come from it\n"
           "  FULL, PRUNED          streams from attend --hidden (encoders) or\n"
           "                        attend --logits all (causal LMs); '-' is stdin\n"
           "  -q, --queries FILE    stream of queries through attend --hidden; query\n"
           "                        'dir/x.txt' belongs to document 'x' (base name, no\n"
           "                        extension): adds retrieval ranks\n"
           "  -t, --target FILE     the continuation that ends every document's text:\n"
           "                        adds its log-likelihood with full and pruned context\n"
           "  -s, --summary         one line of means instead of a row per document\n"
           "  -o, --output FILE     write the table to FILE (default stdout); a file is\n"
           "                        replaced only when the run succeeds\n"
           "  -h, --help            this help\n"
           "cosine: between mean-pooled hidden.final of the full and pruned document.\n"
           "Exit status: 0 ok, 64 usage, 65 bad stream, 66 cannot open, 73 cannot create\n"
           "the output, 74 I/O error.\n");
}

typedef struct entry {
    char *id, *key;
    float *pool;       /* [D] mean of hidden.final rows, or NULL */
    int64_t T;
    int32_t *tokens;   /* [T] (full documents only) */
    uint8_t *keep;     /* prune's keep mask over the original tokens, or NULL */
    int64_t nkeep;
    double ll;         /* target log-likelihood; NAN if none */
    int has_ll;
} entry;

typedef struct set {
    entry *e;
    size_t n, cap;
    int64_t D;         /* 0 until the first pooled vector */
    ak_header *hdr;    /* the stream's first header */
    const ak_metamap *want_model; /* every header must have this model identity */
} set;

static void entry_free(entry *e)
{
    free(e->id);
    free(e->key);
    free(e->pool);
    free(e->tokens);
    free(e->keep);
}

static void set_free(set *s)
{
    for (size_t i = 0; i < s->n; i++)
        entry_free(&s->e[i]);
    free(s->e);
    ak_header_free(s->hdr);
}

/* The identity keys both headers have agree (the name is a directory's and
 * may differ between copies of one model). */
static int same_model(const ak_metamap *a, const ak_metamap *b, ak_err *err)
{
    static const char *const ints[] = {"vocab_size", "config_crc32", "tokenizer_crc32"};
    const char *sa = ak_meta_str(a, "arch"), *sb = ak_meta_str(b, "arch");
    if (sa && sb && strcmp(sa, sb))
        return ak_fail(err, AK_EDATA, "made with a %s model, FULL with a %s model", sb, sa);
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++) {
        int64_t x, y;
        if (ak_meta_int(a, ints[k], &x) == 0 && ak_meta_int(b, ints[k], &y) == 0 && x != y)
            return ak_fail(err, AK_EDATA, "made with another model than FULL (%s %lld, FULL has %lld)",
                           ints[k], (long long)y, (long long)x);
    }
    return 0;
}

/* Copies a document's tokens and keep mask into e (for the full set). */
static int take_tokens(const ak_doc *d, entry *e, ak_err *err)
{
    ak_tensor *tok = ak_doc_get(d, "tokens"), *keep = ak_doc_get(d, "keep");
    if (tok && !ak_doc_need(d, "tokens", AK_I32, 1, err))
        return err->code;
    if (keep && !ak_doc_need(d, "keep", AK_U8, 1, err))
        return err->code;
    if (tok && !(e->tokens = malloc(tok->nbytes ? tok->nbytes : 1)))
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if (tok)
        memcpy(e->tokens, tok->data, tok->nbytes);
    if (keep) {
        if (!(e->keep = malloc(keep->nbytes ? keep->nbytes : 1)))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        memcpy(e->keep, keep->data, keep->nbytes);
        e->nkeep = keep->shape[0];
    }
    return 0;
}

/* A pruned document comes from its full one: its tokens are the full
 * tokens that its keep mask marks (prune's output, through embed and attend),
 * or without a mask at least a subsequence of them. */
static int check_pruned(const entry *f, const ak_doc *d, ak_err *err)
{
    ak_tensor *tok = ak_doc_get(d, "tokens"), *keep = ak_doc_get(d, "keep");
    if (!tok || !f->tokens)
        return ak_fail(err, AK_EDATA, "document '%s' has no tokens in %s: cannot check that "
                       "PRUNED comes from FULL", d->id, tok ? "FULL" : "PRUNED");
    if (!ak_doc_need(d, "tokens", AK_I32, 1, err) || (keep && !ak_doc_need(d, "keep", AK_U8, 1, err)))
        return err->code;
    const int32_t *pt = ak_tensor_i32(tok);
    int64_t pT = tok->shape[0];
    if (pT > f->T)
        return ak_fail(err, AK_EDATA, "pruned document '%s' has %lld tokens, the full one %lld "
                       "(are FULL and PRUNED swapped?)", d->id, (long long)pT, (long long)f->T);
    if (keep) {
        /* the mask is over the tokens before the first prune: the full
         * document's own (not pruned), or its mask's length if it was */
        const uint8_t *k = ak_tensor_u8(keep);
        int64_t n = keep->shape[0], want = f->keep ? f->nkeep : f->T, j = 0, fj = 0;
        if (n != want)
            return ak_fail(err, AK_EDATA, "pruned document '%s': keep covers %lld tokens, the "
                           "full document has %lld", d->id, (long long)n, (long long)want);
        for (int64_t i = 0; i < n; i++) {
            int in_full = f->keep ? f->keep[i] != 0 : 1;
            if (k[i] && !in_full)
                return ak_fail(err, AK_EDATA, "pruned document '%s' keeps token %lld, which the "
                               "full document does not have", d->id, (long long)i);
            if (k[i] && (j >= pT || pt[j] != f->tokens[fj]))
                return ak_fail(err, AK_EDATA, "pruned document '%s': tokens do not match the full "
                               "document's at the kept positions (token %lld)", d->id, (long long)i);
            j += k[i] != 0;
            fj += in_full;
        }
        if (j != pT)
            return ak_fail(err, AK_EDATA, "pruned document '%s' has %lld tokens, its keep mask "
                           "keeps %lld", d->id, (long long)pT, (long long)j);
        return 0;
    }
    int64_t j = 0;
    for (int64_t i = 0; i < f->T && j < pT; i++)
        j += f->tokens[i] == pt[j];
    if (j != pT)
        return ak_fail(err, AK_EDATA, "pruned document '%s': its tokens are not a subsequence of "
                       "the full document's (token %lld)", d->id, (long long)j);
    return 0;
}

/* 'dir/name.ext' -> 'name' */
static char *key_of(const char *id)
{
    const char *b = strrchr(id, '/');
    b = b ? b + 1 : id;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char *k = malloc(n + 1);
    if (k) {
        memcpy(k, b, n);
        k[n] = 0;
    }
    return k;
}

static int mean_pool(const ak_doc *d, int64_t *D, float **out, ak_err *err)
{
    ak_tensor *h = ak_doc_get(d, "hidden.final");
    *out = NULL;
    if (!h)
        return 0;
    if (!ak_doc_need(d, "hidden.final", AK_F32, 2, err))
        return err->code;
    int64_t T = h->shape[0], dim = h->shape[1];
    if (T <= 0 || dim <= 0)
        return ak_fail(err, AK_EDATA, "document '%s': hidden.final is empty", d->id);
    if (*D && dim != *D)
        return ak_fail(err, AK_EDATA, "document '%s': hidden size %lld, others have %lld",
                       d->id, (long long)dim, (long long)*D);
    *D = dim;
    double *acc = calloc((size_t)dim, sizeof *acc);
    float *p = malloc((size_t)dim * sizeof *p);
    if (!acc || !p) {
        free(acc);
        free(p);
        return ak_fail(err, AK_ENOMEM, "out of memory");
    }
    const float *x = ak_tensor_f32(h);
    for (int64_t i = 0; i < T; i++)
        for (int64_t k = 0; k < dim; k++)
            acc[k] += x[i * dim + k];
    for (int64_t k = 0; k < dim; k++) {
        p[k] = (float)(acc[k] / (double)T);
        if (!isfinite(p[k])) {
            free(acc);
            free(p);
            return ak_fail(err, AK_EDATA, "document '%s': hidden.final is not finite", d->id);
        }
    }
    free(acc);
    *out = p;
    return 0;
}

/* Log-likelihood of the target: the tokens that start inside the last
 * target_len bytes of text, each predicted by the logits of the position
 * before it (log-softmax). */
static int ll_of(const char *id, const uint8_t *text, size_t tl, const int32_t *t,
                 const int64_t *o, int64_t T, const float *L, int64_t V, const char *target,
                 size_t target_len, double *ll, ak_err *err)
{
    if (tl < target_len || memcmp(text + tl - target_len, target, target_len))
        return ak_fail(err, AK_EDATA, "document '%s': its text does not end with the target",
                       id);
    double sum = 0;
    int64_t n = 0;
    for (int64_t p = 1; p < T; p++) {
        if (o[2 * p] < (int64_t)(tl - target_len) || o[2 * p] == o[2 * p + 1])
            continue;
        if (t[p] < 0 || t[p] >= V)
            return ak_fail(err, AK_EDATA, "document '%s': token %lld id %d outside the %lld "
                           "logits", id, (long long)p, t[p], (long long)V);
        const float *row = L + (p - 1) * V;
        double mx = -INFINITY, z = 0;
        for (int64_t v = 0; v < V; v++)
            if (row[v] > mx)
                mx = row[v];
        for (int64_t v = 0; v < V; v++)
            z += exp(row[v] - mx);
        sum += row[t[p]] - mx - log(z);
        n++;
    }
    if (n == 0)
        return ak_fail(err, AK_EDATA, "document '%s': no target token after the first position",
                       id);
    if (!isfinite(sum))
        return ak_fail(err, AK_EDATA, "document '%s': logits are not finite", id);
    *ll = sum;
    return 0;
}

static int target_ll(const ak_doc *d, const char *target, size_t target_len, double *ll,
                     ak_err *err)
{
    ak_tensor *text = ak_doc_need(d, "text", AK_U8, 1, err), *tok, *off, *lg;
    if (!text || !(tok = ak_doc_need(d, "tokens", AK_I32, 1, err)) ||
        !(off = ak_doc_need(d, "offsets", AK_I64, 2, err)))
        return err->code;
    if (!(lg = ak_doc_get(d, "logits")))
        return ak_fail(err, AK_EDATA, "document '%s' has no logits (attend --logits all)", d->id);
    if (!ak_doc_need(d, "logits", AK_F32, 2, err))
        return err->code;
    int64_t T = tok->shape[0], V = lg->shape[1];
    if (lg->shape[0] != T || off->shape[0] != T || off->shape[1] != 2)
        return ak_fail(err, AK_EDATA, "document '%s': logits [%lld, %lld] must have a row per "
                       "token (%lld)", d->id, (long long)lg->shape[0], (long long)V, (long long)T);
    return ll_of(d->id, ak_tensor_u8(text), text->nbytes, ak_tensor_i32(tok), ak_tensor_i64(off),
                 T, ak_tensor_f32(lg), V, target, target_len, ll, err);
}

static const char *out_name = "<stdout>"; /* for write errors */

struct opts {
    const char *target;
    size_t target_len;
    int summary;
};

/* Reads every document of a stream into s (pooled, ll), calling back for
 * pruned documents when cb is set instead of storing them. */
typedef int (*doc_cb)(void *ctx, const ak_doc *d, entry *e, ak_err *err);

/* Reads the stream at path, calling fn for each record; errors name path. */
static int read_stream(const char *path, ak_record_fn fn, void *ctx, ak_err *err)
{
    int rc = ak_cli_read(path, fn, ctx, err);
    if (rc < 0)
        ak_wrap(err, "%s", path);
    return rc < 0 ? rc : 0;
}

struct set_reading {
    const struct opts *op;
    set *s;
    doc_cb cb;
    void *ctx;
};

static int set_record(void *vx, ak_record *rec, ak_err *err)
{
    struct set_reading *x = vx;
    const struct opts *op = x->op;
    set *s = x->s;
    doc_cb cb = x->cb;
    void *ctx = x->ctx;
    int rc = 0;
    if (rec->type == AK_REC_HEADER) {
        if (s->want_model && (rc = same_model(s->want_model, &rec->header->model, err)))
            ak_wrap(err, "PRUNED");
        if (!s->hdr) {
            s->hdr = rec->header;
            rec->header = NULL;
        }
    }
    if (rec->type == AK_REC_DOC) {
        entry e = {0};
        const ak_doc *d = rec->doc;
        ak_tensor *tok = ak_doc_get(d, "tokens");
        e.T = tok ? (int64_t)ak_tensor_count(tok) : 0;
        rc = cb ? 0 : take_tokens(d, &e, err);
        if (!rc)
            rc = mean_pool(d, &s->D, &e.pool, err);
        if (!rc && op->target) {
            rc = target_ll(d, op->target, op->target_len, &e.ll, err);
            e.has_ll = !rc;
        }
        if (!rc && !e.pool && !op->target)
            rc = ak_fail(err, AK_EDATA, "document '%s' has no hidden.final "
                         "(attend --hidden)", d->id);
        if (!rc) {
            e.id = strdup(d->id);
            e.key = key_of(d->id);
            if (!e.id || !e.key)
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
        }
        if (!rc && cb) {
            rc = cb(ctx, d, &e, err);
            entry_free(&e);
        } else if (!rc) {
            for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->e[i].id, e.id) == 0)
                    rc = ak_fail(err, AK_EDATA, "document id '%s' appears twice", e.id);
            if (!rc && ak_grow((void **)&s->e, &s->cap, s->n + 1, sizeof *s->e))
                rc = ak_fail(err, AK_ENOMEM, "out of memory");
            if (!rc)
                s->e[s->n++] = e;
            else
                entry_free(&e);
        } else {
            entry_free(&e);
        }
    }
    return rc;
}

static int read_set(const char *path, const struct opts *op, set *s, doc_cb cb, void *ctx,
                    ak_err *err)
{
    struct set_reading x = {op, s, cb, ctx};
    return read_stream(path, set_record, &x, err);
}

static double cosine(const float *a, const float *b, int64_t D)
{
    double ab = 0, aa = 0, bb = 0;
    for (int64_t k = 0; k < D; k++) {
        ab += (double)a[k] * b[k];
        aa += (double)a[k] * a[k];
        bb += (double)b[k] * b[k];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

struct run {
    const struct opts *op;
    set full, queries;
    int have_queries;
    /* sums for the summary */
    size_t n, n_cos, n_q, n_ll, top1_full, top1_pruned, agree;
    double kept, cos, cos_min, ll_delta, sim_delta;
};

/* Rank (1 = best) of candidate vector v for query q among the full set with
 * document `self` replaced by v. */
static size_t rank_of(const set *full, size_t self, const float *q, const float *v, double *sim)
{
    double s = cosine(q, v, full->D);
    size_t rank = 1;
    for (size_t j = 0; j < full->n; j++)
        if (j != self && full->e[j].pool && cosine(q, full->e[j].pool, full->D) > s)
            rank++;
    *sim = s;
    return rank;
}

static void print_header(const struct run *r)
{
    printf("doc\ttokens_full\ttokens_pruned\tkept\tcosine");
    if (r->have_queries)
        printf("\trank_full\trank_pruned\tsim_full\tsim_pruned");
    if (r->op->target)
        printf("\tll_full\tll_pruned\tll_delta");
    putchar('\n');
}

struct ranks {
    size_t rf, rp;     /* the document's rank for its query, full and pruned */
    double sf, sp;     /* the query's similarity to it, full and pruned */
};

/* One document's row (both modes): counted for the summary, printed unless
 * --summary.  q: its query's ranks, or NULL (none, or one stream); ll: with
 * --target. */
static int add_row(struct run *r, const char *id, int64_t T0, int64_t T, double cos,
                   const struct ranks *q, double llf, double llp, ak_err *err)
{
    int rows = !r->op->summary;
    if (rows && !r->n)
        print_header(r);   /* after the first document passed its checks */
    double kept = T0 ? (double)T / (double)T0 : 0;
    r->n++;
    r->kept += kept;
    if (!isnan(cos)) {
        r->cos += cos;
        if (!r->n_cos || cos < r->cos_min)
            r->cos_min = cos;
        r->n_cos++;
    }
    if (q) {
        r->n_q++;
        r->top1_full += q->rf == 1;
        r->top1_pruned += q->rp == 1;
        r->agree += (q->rf == 1) == (q->rp == 1);
        r->sim_delta += q->sp - q->sf;
    }
    if (r->op->target) {
        r->n_ll++;
        r->ll_delta += llp - llf;
    }
    if (!rows)
        return 0;
    ak_tsv_put(stdout, id);
    printf("\t%lld\t%lld\t%.4f\t%.6f", (long long)T0, (long long)T, kept, cos);
    if (q)
        printf("\t%zu\t%zu\t%.6f\t%.6f", q->rf, q->rp, q->sf, q->sp);
    else if (r->have_queries)
        printf("\t-\t-\t-\t-");
    if (r->op->target)
        printf("\t%.4f\t%.4f\t%.4f", llf, llp, llp - llf);
    putchar('\n');
    return ferror(stdout) ? ak_write_error(err, out_name) : 0;
}

/* The summary's one line (--summary), the query columns with two streams. */
static void print_summary(const struct run *r, int two)
{
    printf("docs\tkept\tcosine\tcosine_min%s\tll_delta\n",
           two ? "\ttop1_full\ttop1_pruned\tagree\tsim_delta" : "");
    printf("%zu\t%.4f\t%.6f\t%.6f", r->n, r->n ? r->kept / (double)r->n : 0,
           r->n_cos ? r->cos / (double)r->n_cos : NAN, r->n_cos ? r->cos_min : NAN);
    if (two && r->n_q) {
        double nq = (double)r->n_q;
        printf("\t%.4f\t%.4f\t%.4f\t%.6f", (double)r->top1_full / nq, (double)r->top1_pruned / nq,
               (double)r->agree / nq, r->sim_delta / nq);
    } else if (two) {
        printf("\t-\t-\t-\t-");
    }
    if (r->n_ll)
        printf("\t%.4f\n", r->ll_delta / (double)r->n_ll);
    else
        printf("\t-\n");
}

/* ---- two streams: FULL and PRUNED, the model's outputs in them ---- */

static int on_pruned(void *vc, const ak_doc *d, entry *e, ak_err *err)
{
    struct run *r = vc;
    size_t fi = r->full.n;
    for (size_t i = 0; i < r->full.n; i++)
        if (strcmp(r->full.e[i].id, e->id) == 0)
            fi = i;
    if (fi == r->full.n)
        return ak_fail(err, AK_EDATA, "pruned document '%s' is not in the full stream", e->id);
    entry *f = &r->full.e[fi];
    int rc = check_pruned(f, d, err);
    if (rc)
        return rc;
    double cos = NAN;
    if (f->pool && e->pool)
        cos = cosine(f->pool, e->pool, r->full.D);
    struct ranks q, *qp = NULL;
    if (r->have_queries) {
        entry *qe = NULL;
        for (size_t i = 0; i < r->queries.n; i++)
            if (strcmp(r->queries.e[i].key, e->key) == 0)
                qe = &r->queries.e[i];
        if (qe && qe->pool && f->pool && e->pool) {
            q.rf = rank_of(&r->full, fi, qe->pool, f->pool, &q.sf);
            q.rp = rank_of(&r->full, fi, qe->pool, e->pool, &q.sp);
            qp = &q;
        }
    }
    return add_row(r, e->id, f->T, e->T, cos, qp, f->ll, e->ll, err);
}

static int run_two(struct run *r, const char *full, const char *pruned, const char *queries,
                   ak_err *err)
{
    int rc = read_set(full, r->op, &r->full, NULL, NULL, err);
    if (!rc && queries) {
        struct opts qop = {0};
        r->have_queries = 1;
        r->queries.D = r->full.D;
        rc = read_set(queries, &qop, &r->queries, NULL, NULL, err);
    }
    if (!rc) {
        set unused = {.D = r->full.D, .want_model = r->full.hdr ? &r->full.hdr->model : NULL};
        rc = read_set(pruned, r->op, &unused, on_pruned, r, err);
        set_free(&unused);
    }
    return rc;
}

/* ---- one stream: prune's output, the model run here on both ---- */

/* Mean-pooled final hidden states of ids[T] (pool[D]) and, with logits
 * (T x V), every position's logits; windows past the model's positions. */
static int run_model(const ak_model *m, ak_device dev, const int32_t *ids, const int32_t *types,
                     int64_t T, float *pool, float *logits, ak_err *err)
{
    int64_t D = m->hidden_size;
    float *fin = malloc(sizeof *fin * (size_t)(T * D + 1));
    if (!fin)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    ak_forward_out o = {.logits = logits, .logits_all = 1};
    int64_t W = T < m->max_positions ? T : m->max_positions;
    int rc = ak_window_forward(m, dev, ids, types, T, W, W / 4, &o, fin, err);
    for (int64_t k = 0; !rc && k < D; k++) {
        double acc = 0;
        for (int64_t i = 0; i < T; i++)
            acc += fin[i * D + k];
        pool[k] = (float)(acc / (double)(T ? T : 1));
    }
    free(fin);
    return rc;
}

struct one {
    const ak_model *m;
    ak_device dev;
    struct run *r;
};

static int score_doc(struct one *x, const ak_doc *d, ak_err *err)
{
    struct run *r = x->r;
    const ak_model *m = x->m;
    ak_tensor *ft = ak_doc_get(d, "full.tokens"), *keep = ak_doc_get(d, "keep"),
              *tok = ak_doc_get(d, "tokens");
    if (!ft || !keep)
        return ak_fail(err, AK_EDATA, "document '%s' has no %s: give score prune's output (or "
                       "two streams, FULL and PRUNED)", d->id, ft ? "keep" : "full.tokens");
    if (!ak_doc_need(d, "full.tokens", AK_I32, 1, err) || !ak_doc_need(d, "keep", AK_U8, 1, err) ||
        !ak_doc_need(d, "tokens", AK_I32, 1, err))
        return err->code;
    int64_t T0 = ft->shape[0], T = tok->shape[0];
    if (keep->shape[0] != T0)
        return ak_fail(err, AK_EDATA, "document '%s': keep covers %lld tokens, full.tokens has %lld",
                       d->id, (long long)keep->shape[0], (long long)T0);
    const int32_t *f = ak_tensor_i32(ft), *t = ak_tensor_i32(tok);
    const uint8_t *k = ak_tensor_u8(keep);
    ak_tensor *ftt = ak_doc_get(d, "full.token_types");
    if (ftt && !ak_doc_need(d, "full.token_types", AK_I32, 1, err))
        return err->code;
    if (ftt && ftt->shape[0] != T0)
        return ak_fail(err, AK_EDATA, "document '%s': full.token_types is not [%lld]", d->id,
                       (long long)T0);
    int32_t *pt = malloc(sizeof *pt * (size_t)(T + 1));
    if (!pt)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    int64_t j = 0;
    for (int64_t i = 0; i < T0; i++)
        if (k[i]) {
            if (j >= T || t[j] != f[i]) {
                free(pt);
                return ak_fail(err, AK_EDATA, "document '%s': its tokens are not full.tokens at "
                               "the kept positions (token %lld)", d->id, (long long)i);
            }
            pt[j++] = ftt ? ak_tensor_i32(ftt)[i] : 0;
        }
    if (j != T) {
        free(pt);
        return ak_fail(err, AK_EDATA, "document '%s' has %lld tokens, keep keeps %lld", d->id,
                       (long long)T, (long long)j);
    }
    int64_t D = m->hidden_size, V = m->vocab_size;
    float *pf = malloc(sizeof *pf * (size_t)D), *pp = malloc(sizeof *pp * (size_t)D);
    float *lf = NULL, *lp = NULL;
    int want_ll = r->op->target != NULL, rc = 0;
    if (want_ll && !m->lm_head.w && !m->lm_head.wq)
        rc = ak_fail(err, AK_ECONFIG, "--target: model %s has no language-model head", m->name);
    if (!rc && want_ll && (!(lf = malloc(sizeof *lf * (size_t)(T0 * V + 1))) ||
                           !(lp = malloc(sizeof *lp * (size_t)(T * V + 1)))))
        rc = ak_fail(err, AK_ENOMEM, "out of memory for the logits of %lld tokens", (long long)T0);
    if (!rc && (!pf || !pp))
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
    if (!rc)
        rc = run_model(m, x->dev, f, ftt ? ak_tensor_i32(ftt) : NULL, T0, pf, lf, err);
    if (!rc)
        rc = run_model(m, x->dev, t, ftt ? pt : NULL, T, pp, lp, err);
    if (rc)
        ak_wrap(err, "document '%s'", d->id);
    double llf = 0, llp = 0;
    if (!rc && want_ll) {
        ak_tensor *text = ak_doc_need(d, "text", AK_U8, 1, err), *fo, *po;
        if (!text || !(fo = ak_doc_need(d, "full.offsets", AK_I64, 2, err)) ||
            !(po = ak_doc_need(d, "offsets", AK_I64, 2, err)))
            rc = err->code ? err->code : AK_EDATA;
        else if (fo->shape[0] != T0 || po->shape[0] != T)
            rc = ak_fail(err, AK_EDATA, "document '%s': offsets do not match the tokens", d->id);
        else if (!(rc = ll_of(d->id, ak_tensor_u8(text), text->nbytes, f, ak_tensor_i64(fo), T0,
                              lf, V, r->op->target, r->op->target_len, &llf, err)))
            rc = ll_of(d->id, ak_tensor_u8(text), text->nbytes, t, ak_tensor_i64(po), T, lp, V,
                       r->op->target, r->op->target_len, &llp, err);
    }
    if (!rc)
        rc = add_row(r, d->id, T0, T, cosine(pf, pp, D), NULL, llf, llp, err);
    free(pt);
    free(pf);
    free(pp);
    free(lf);
    free(lp);
    return rc;
}

static int one_record(void *vx, ak_record *rec, ak_err *err)
{
    struct one *x = vx;
    int rc = 0;
    if (rec->type == AK_REC_HEADER && (rc = ak_model_check_identity(x->m, &rec->header->model, err)))
        ak_wrap(err, "the stream was not made with model %s (a stream of two models?)", x->m->name);
    if (!rc && rec->type == AK_REC_DOC)
        rc = score_doc(x, rec->doc, err);
    return rc;
}

static int run_one(struct run *r, const char *path, const char *model_opt, const char *device,
                   ak_err *err)
{
    struct one x = {.r = r};
    ak_model *m = NULL;
    int rc = ak_device_parse(ak_device_opt(device), &x.dev, err);
    if (!rc)
        rc = ak_model_load(&m, ak_model_dir(model_opt), err);
    if (m)
        ak_cli_model(m);
    x.m = m;
    if (!rc)
        rc = read_stream(path, one_record, &x, err);
    ak_model_free(m);
    return rc;
}

int main(int argc, char *argv[])
{
    ak_cli_init("score");
    struct opts op = {0};
    char *queries = NULL, *target_path = NULL;
    const char *output = NULL, *model_opt = NULL, *device = NULL;
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},   {"device", required_argument, 0, 'd'},
        {"queries", required_argument, 0, 'q'}, {"target", required_argument, 0, 't'},
        {"summary", no_argument, 0, 's'},       {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m:d:q:t:so:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': model_opt = optarg; break;
        case 'd': device = optarg; break;
        case 'q': queries = optarg; break;
        case 't': op.target = target_path = optarg; break;
        case 's': op.summary = 1; break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    int one = argc - optind <= 1;
    if (argc - optind > 2)
        ak_usage_error("expected one stream (prune's output) or two, FULL and PRUNED");
    if (one && queries)
        ak_usage_error("--queries needs two streams, FULL and PRUNED");
    if (!one && (model_opt || device))
        ak_usage_error("--%s: with FULL and PRUNED the model's outputs come from the streams",
                       model_opt ? "model" : "device");
    const char *full = one ? NULL : argv[optind], *pruned = one ? NULL : argv[optind + 1];
    if (!one && strcmp(full, "-") == 0 && strcmp(pruned, "-") == 0)
        ak_usage_error("FULL and PRUNED cannot both be stdin");
    ak_err err = {0};
    /* the inputs, for -o's check that it overwrites none of them */
    char *inputs[4] = {one ? (argc > optind ? argv[optind] : "-") : argv[optind]};
    int ninputs = 1;
    if (!one)
        inputs[ninputs++] = argv[optind + 1];
    if (queries)
        inputs[ninputs++] = queries;
    if (target_path)
        inputs[ninputs++] = target_path;
    ak_output out;
    if (ak_output_open(&out, output, inputs, ninputs, &err) || ak_output_use_stdout(&out, &err))
        ak_die(&err);
    out_name = out.name;
    char *target = NULL;
    if (op.target) {
        size_t len;
        if (ak_read_file(op.target, (size_t)1 << 26, &target, &len, &err))
            ak_die(&err);
        if (len == 0)
            ak_dief(AK_EUSAGE, "%s: the target is empty", op.target);
        op.target_len = len;
        op.target = target;
    }
    struct run r = {.op = &op};
    int rc = one ? run_one(&r, inputs[0], model_opt, device, &err)
                 : run_two(&r, full, pruned, queries, &err);
    if (!rc && !op.summary && !r.n)
        print_header(&r);
    if (!rc && op.summary)
        print_summary(&r, !one);
    set_free(&r.full);
    set_free(&r.queries);
    free(target);
    rc = ak_filter_finish(&out, NULL, rc, &err);
    if (rc)
        ak_die(&err);
    return 0;
}
