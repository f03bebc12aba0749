/* entropy - attention entropy and received mass per layer, head, token and
 * block, from attend's statistics; scores for prune, or tables. */
#include "cli/cli.h"
#include "attnkit/filter.h"
#include "attnkit/io.h"
#include "attnkit/metrics.h"
#include "attnkit/tokenizer.h"
#include "core/tsv.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: entropy [-b LIST] [-f stream|tsv|json] [-u nats|bits] [-a mean|max]\n"
           "               [-l A-B] [-o FILE] [FILE...]\n"
           "Attention entropy and received mass from attend's statistics.\n"
           "  -b, --by LIST        layer,head,token,block: tables to print (tsv, json;\n"
           "                       default token,block)\n"
           "  -f, --format FMT     stream (default): add score.token and score.block;\n"
           "                       tsv: tables; json: one object per document\n"
           "  -u, --units U        nats (default) or bits for entropies\n"
           "  -a, --agg A          mean (default) or max over heads and layers\n"
           "  -l, --layers A-B     layers to use (default all; N alone: one layer)\n"
           "  -o, --output FILE    write here (default stdout); a file is replaced only\n"
           "                       when the run succeeds\n"
           "  -h, --help           this help\n"
           "score.token is the corrected received mass: raw mass / number of queries\n"
           "that could see the key; score.block its mean over the block's tokens.\n"
           "Tables add mass_rel, the corrected mass times the mean number of keys a\n"
           "query sees (1: what uniform attention gives; blocks: the mean over their\n"
           "tokens, comparable across blocks and documents of any length), and the\n"
           "token's or block's text (TSV-escaped).  --by and --units shape tables and\n"
           "are refused in stream mode.\n"
           "Exit status: 0 ok, 64 usage, 65 bad stream, 66 cannot open, 73 cannot create\n"
           "the output, 74 I/O error.\n");
}

enum { BY_LAYER = 1, BY_HEAD = 2, BY_TOKEN = 4, BY_BLOCK = 8 };
enum fmt { FMT_STREAM, FMT_TSV, FMT_JSON };

struct ctx {
    int by;
    enum fmt fmt;
    double unit_scale; /* 1 nats, 1/ln 2 bits */
    ak_agg agg;
    long l0, l1;       /* -1: all */
    FILE *out;         /* stdout, which ak_filter_run points at -o's file */
    const char *out_name;
    int printed[4];    /* tsv header printed per table */
};

static int parse_by(const char *s)
{
    int by = 0;
    char *dup = strdup(s), *save = NULL;
    if (!dup)
        ak_dief(AK_ENOMEM, "out of memory");
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "layer") == 0) by |= BY_LAYER;
        else if (strcmp(t, "head") == 0) by |= BY_HEAD;
        else if (strcmp(t, "token") == 0) by |= BY_TOKEN;
        else if (strcmp(t, "block") == 0) by |= BY_BLOCK;
        else /* exits; t points into dup, still reachable */
            ak_usage_error("--by: unknown level '%s' (layer, head, token, block)", t);
    }
    free(dup);
    if (!by)
        ak_usage_error("--by: empty list");
    return by;
}

/* Everything one document's tables need. */
struct docm {
    ak_attn_stats s;
    int64_t l0, l1, nblocks;
    ak_head_summary *heads;
    ak_token_metrics tm;
    const int32_t *tokens, *seg;
    const int64_t *off;
    const char *text;      /* the document's text, or NULL */
    size_t text_len;
    double keys_per_query; /* mean over the layers used and the queries */
    int64_t *bcount, *bstart, *bend;
    float *bent, *bnorm, *bmass, *bcorr;
    /* from attn.probs.<l> when attend's statistics are absent; its layer
     * and head ids are the printed numbers (NULL: the index) */
    ak_probs_stats ps;
};

static long lid(const struct docm *m, int64_t l)
{
    return m->ps.layer_id ? m->ps.layer_id[l] : (long)l;
}

static long hid(const struct docm *m, int64_t h)
{
    return m->ps.head_id ? m->ps.head_id[h] : (long)h;
}

static void docm_free(struct docm *m)
{
    free(m->heads);
    free(m->tm.entropy);
    free(m->tm.norm_entropy);
    free(m->tm.mass);
    free(m->tm.corrected);
    free(m->bcount);
    free(m->bstart);
    free(m->bend);
    free(m->bent);
    free(m->bnorm);
    free(m->bmass);
    free(m->bcorr);
    ak_probs_stats_free(&m->ps);
}

static int docm_compute(struct ctx *c, ak_doc *d, struct docm *m, ak_err *err)
{
    int rc, from_probs = !ak_doc_get(d, "attn.entropy") && !ak_doc_get(d, "attn.mass");
    if (from_probs) {
        rc = ak_doc_probs_stats(d, c->l0, c->l1, &m->ps, err);
        m->s = m->ps.s;
    } else {
        rc = ak_doc_attn_stats(d, &m->s, err);
    }
    if (rc)
        return rc;
    int64_t L = m->s.L, H = m->s.H, T = m->s.T;
    m->l0 = c->l0 < 0 || from_probs ? 0 : c->l0;
    m->l1 = c->l1 < 0 || from_probs ? L - 1 : c->l1;
    if (m->l1 >= L)
        return ak_fail(err, AK_EUSAGE, "--layers %lld-%lld: document '%s' has layers 0-%lld",
                       (long long)m->l0, (long long)m->l1, d->id, (long long)(L - 1));
    m->tokens = ak_tensor_i32(ak_doc_get(d, "tokens"));
    ak_tensor *off = ak_doc_get(d, "offsets");
    if (off && off->dtype == AK_I64 && off->ndim == 2 && off->shape[0] == T && off->shape[1] == 2)
        m->off = ak_tensor_i64(off);
    ak_tensor *tx = ak_doc_get(d, "text");
    if (tx && tx->dtype == AK_U8 && tx->ndim == 1) {
        m->text = tx->data;
        m->text_len = tx->nbytes;
    }
    m->keys_per_query = (double)T;
    if (m->s.visible && T > 0) {
        double sum = 0;
        for (int64_t l = m->l0; l <= m->l1; l++)
            for (int64_t j = 0; j < T; j++)
                sum += m->s.visible[l * T + j];
        m->keys_per_query = sum / ((double)(m->l1 - m->l0 + 1) * (double)T);
    }
    if ((rc = ak_doc_segments(d, T, &m->seg, err)))
        return rc;
    if (m->seg && (rc = ak_block_count(m->seg, T, &m->nblocks, err)))
        return ak_wrap(err, "document '%s'", d->id);
    size_t nt = (size_t)T + 1, nb = (size_t)m->nblocks + 1;
    m->heads = malloc(sizeof *m->heads * (size_t)(L * H));
    m->tm.entropy = malloc(sizeof(float) * nt);
    m->tm.norm_entropy = malloc(sizeof(float) * nt);
    m->tm.mass = malloc(sizeof(float) * nt);
    m->tm.corrected = malloc(sizeof(float) * nt);
    m->bcount = calloc(nb, sizeof(int64_t));
    m->bstart = calloc(nb, sizeof(int64_t));
    m->bend = calloc(nb, sizeof(int64_t));
    m->bent = calloc(nb, sizeof(float));
    m->bnorm = calloc(nb, sizeof(float));
    m->bmass = calloc(nb, sizeof(float));
    m->bcorr = calloc(nb, sizeof(float));
    if (!m->heads || !m->tm.entropy || !m->tm.norm_entropy || !m->tm.mass ||
        !m->tm.corrected || !m->bcount || !m->bstart || !m->bend || !m->bent || !m->bnorm ||
        !m->bmass || !m->bcorr)
        return ak_fail(err, AK_ENOMEM, "out of memory");
    if ((rc = ak_head_summaries(&m->s, m->heads, err)) ||
        (rc = ak_token_metrics_agg(&m->s, m->l0, m->l1, c->agg, NULL, &m->tm, err)))
        return rc;
    if (m->seg && m->nblocks) {
        if ((rc = ak_block_agg(m->seg, T, m->tm.entropy, m->nblocks, m->bcount, m->bent, NULL,
                               NULL, err)) ||
            (rc = ak_block_agg(m->seg, T, m->tm.norm_entropy, m->nblocks, NULL, m->bnorm, NULL,
                               NULL, err)) ||
            (rc = ak_block_agg(m->seg, T, m->tm.mass, m->nblocks, NULL, NULL, m->bmass, NULL,
                               err)) ||
            (rc = ak_block_agg(m->seg, T, m->tm.corrected, m->nblocks, NULL, m->bcorr, NULL,
                               NULL, err)))
            return rc;
        for (int64_t b = 0; b < m->nblocks; b++)
            m->bstart[b] = m->bend[b] = -1;
        for (int64_t i = 0; m->off && i < T; i++) {
            int32_t b = m->seg[i];
            if (b < 0)
                continue;
            if (m->bstart[b] < 0 || m->off[2 * i] < m->bstart[b])
                m->bstart[b] = m->off[2 * i];
            if (m->off[2 * i + 1] > m->bend[b])
                m->bend[b] = m->off[2 * i + 1];
        }
    }
    return 0;
}

static int put_scores(struct docm *m, ak_doc *d, ak_err *err)
{
    int64_t shape[1] = {m->s.T};
    ak_tensor *t = ak_tensor_new("score.token", AK_F32, 1, shape, err);
    if (!t)
        return err->code;
    memcpy(t->data, m->tm.corrected, t->nbytes);
    int rc = ak_doc_put(d, t, err);
    if (rc || !m->seg)
        return rc;
    shape[0] = m->nblocks;
    if (!(t = ak_tensor_new("score.block", AK_F32, 1, shape, err)))
        return err->code;
    if (m->nblocks)
        memcpy(t->data, m->bcorr, t->nbytes);
    return ak_doc_put(d, t, err);
}

/* ---- tables ---- */

static const char *const hdr[4] = {
    "doc\tlayer\tentropy\tnorm_entropy\tsink_share\tsharp\tmixed\tdiffuse\tsinks",
    "doc\tlayer\thead\tentropy\tnorm_entropy\tsink_share\tclass\tsink",
    "doc\ttoken\tid\tstart\tend\tblock\tentropy\tnorm_entropy\tmass\tmass_corrected\tmass_rel\ttext",
    "doc\tblock\ttokens\tstart\tend\tentropy\tnorm_entropy\tmass\tmass_corrected\tmass_rel\ttext"};

/* The text of the byte span [a, b), or an empty one outside the text. */
static void span_text(const struct docm *m, int64_t a, int64_t b, const char **s, size_t *n)
{
    *s = "";
    *n = 0;
    if (m->text && a >= 0 && b > a && (size_t)b <= m->text_len) {
        *s = m->text + a;
        *n = (size_t)(b - a);
    }
}

static void layer_row(struct docm *m, int64_t l, double *e, double *n, double *sink, int cnt[4])
{
    *e = *n = *sink = 0;
    memset(cnt, 0, 4 * sizeof *cnt);
    for (int64_t h = 0; h < m->s.H; h++) {
        ak_head_summary *hs = &m->heads[l * m->s.H + h];
        *e += hs->entropy;
        *n += hs->norm_entropy;
        *sink += hs->sink_share;
        cnt[hs->cls]++;
        cnt[3] += hs->sink;
    }
    *e /= (double)m->s.H;
    *n /= (double)m->s.H;
    *sink /= (double)m->s.H;
}

static void print_tsv(struct ctx *c, const ak_doc *d, struct docm *m)
{
    int nby = !!(c->by & BY_LAYER) + !!(c->by & BY_HEAD) + !!(c->by & BY_TOKEN) +
              !!(c->by & BY_BLOCK);
    FILE *o = c->out;
    double u = c->unit_scale;
    for (int k = 0; k < 4; k++) {
        if (!(c->by & (1 << k)) || (k == 3 && !m->seg))
            continue;
        if (nby > 1 || !c->printed[k])
            fprintf(o, "%s\n", hdr[k]);
        c->printed[k] = 1;
        if (k == 0) {
            for (int64_t l = m->l0; l <= m->l1; l++) {
                double e, n, s;
                int cnt[4];
                layer_row(m, l, &e, &n, &s, cnt);
                ak_tsv_put(o, d->id);
                fprintf(o, "\t%ld\t%.6g\t%.6g\t%.6g\t%d\t%d\t%d\t%d\n", lid(m, l),
                        e * u, n, s, cnt[0], cnt[1], cnt[2], cnt[3]);
            }
        } else if (k == 1) {
            for (int64_t l = m->l0; l <= m->l1; l++)
                for (int64_t h = 0; h < m->s.H; h++) {
                    ak_head_summary *hs = &m->heads[l * m->s.H + h];
                    ak_tsv_put(o, d->id);
                    fprintf(o, "\t%ld\t%ld\t%.6g\t%.6g\t%.6g\t%s\t%d\n",
                            lid(m, l), hid(m, h), hs->entropy * u, hs->norm_entropy,
                            hs->sink_share, ak_head_class_name(hs->cls), hs->sink);
                }
        } else if (k == 2) {
            for (int64_t i = 0; i < m->s.T; i++) {
                ak_tsv_put(o, d->id);
                fprintf(o, "\t%lld\t%d\t%lld\t%lld\t%d\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t",
                        (long long)i, m->tokens[i], m->off ? (long long)m->off[2 * i] : -1LL,
                        m->off ? (long long)m->off[2 * i + 1] : -1LL, m->seg ? m->seg[i] : -1,
                        m->tm.entropy[i] * u, m->tm.norm_entropy[i], m->tm.mass[i],
                        m->tm.corrected[i], m->tm.corrected[i] * m->keys_per_query);
                const char *ts;
                size_t tn;
                span_text(m, m->off ? m->off[2 * i] : -1, m->off ? m->off[2 * i + 1] : -1, &ts, &tn);
                ak_tsv_putn(o, ts, tn);
                fputc('\n', o);
            }
        } else {
            for (int64_t b = 0; b < m->nblocks; b++) {
                ak_tsv_put(o, d->id);
                fprintf(o, "\t%lld\t%lld\t%lld\t%lld\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t",
                        (long long)b, (long long)m->bcount[b], (long long)m->bstart[b],
                        (long long)m->bend[b], m->bent[b] * u, m->bnorm[b], m->bmass[b],
                        m->bcorr[b], m->bcorr[b] * m->keys_per_query);
                const char *ts;
                size_t tn;
                span_text(m, m->bstart[b], m->bend[b], &ts, &tn);
                ak_tsv_putn(o, ts, tn);
                fputc('\n', o);
            }
        }
        if (nby > 1)
            fputc('\n', o);
    }
}

/* The document id as a JSON string; one that is not UTF-8 gets U+FFFD for
 * each bad sequence, so the output stays valid JSON. */
static json_t *json_text(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    char *fixed;
    size_t n, nbad;
    if (j || ak_utf8_repair(s, len, &fixed, &n, &nbad, NULL))
        return j;
    j = json_stringn(fixed, n);
    free(fixed);
    return j;
}

static json_t *json_id(const char *id) { return json_text(id, strlen(id)); }

static json_t *json_span(const struct docm *m, int64_t a, int64_t b)
{
    const char *s;
    size_t n;
    span_text(m, a, b, &s, &n);
    return json_text(s, n);
}

static json_t *jnum(double x) { return json_real(isfinite(x) ? x : 0.0); }

static int print_json(struct ctx *c, const ak_doc *d, struct docm *m, ak_err *err)
{
    double u = c->unit_scale;
    json_t *o = json_object();
    json_object_set_new(o, "doc", json_id(d->id));
    json_object_set_new(o, "units", json_string(u == 1.0 ? "nats" : "bits"));
    json_object_set_new(o, "layers", json_integer(m->s.L));
    json_object_set_new(o, "heads", json_integer(m->s.H));
    json_object_set_new(o, "tokens", json_integer(m->s.T));
    if (c->by & BY_LAYER) {
        json_t *a = json_array();
        for (int64_t l = m->l0; l <= m->l1; l++) {
            double e, n, s;
            int cnt[4];
            layer_row(m, l, &e, &n, &s, cnt);
            json_array_append_new(a, json_pack("{sI so so so si si si si}", "layer", (json_int_t)lid(m, l),
                                               "entropy", jnum(e * u), "norm_entropy", jnum(n),
                                               "sink_share", jnum(s), "sharp", cnt[0], "mixed",
                                               cnt[1], "diffuse", cnt[2], "sinks", cnt[3]));
        }
        json_object_set_new(o, "by_layer", a);
    }
    if (c->by & BY_HEAD) {
        json_t *a = json_array();
        for (int64_t l = m->l0; l <= m->l1; l++)
            for (int64_t h = 0; h < m->s.H; h++) {
                ak_head_summary *hs = &m->heads[l * m->s.H + h];
                json_array_append_new(
                    a, json_pack("{sI sI so so so ss sb}", "layer", (json_int_t)lid(m, l), "head",
                                 (json_int_t)hid(m, h), "entropy", jnum(hs->entropy * u), "norm_entropy",
                                 jnum(hs->norm_entropy), "sink_share", jnum(hs->sink_share),
                                 "class", ak_head_class_name(hs->cls), "sink", hs->sink));
            }
        json_object_set_new(o, "by_head", a);
    }
    if (c->by & BY_TOKEN) {
        json_t *a = json_array();
        for (int64_t i = 0; i < m->s.T; i++)
            json_array_append_new(
                a, json_pack("{sI si sI sI si so so so so so so}", "token", (json_int_t)i, "id",
                             m->tokens[i], "start", (json_int_t)(m->off ? m->off[2 * i] : -1),
                             "end", (json_int_t)(m->off ? m->off[2 * i + 1] : -1), "block",
                             m->seg ? m->seg[i] : -1, "entropy", jnum(m->tm.entropy[i] * u),
                             "norm_entropy", jnum(m->tm.norm_entropy[i]), "mass",
                             jnum(m->tm.mass[i]), "mass_corrected", jnum(m->tm.corrected[i]),
                             "mass_rel", jnum(m->tm.corrected[i] * m->keys_per_query), "text",
                             json_span(m, m->off ? m->off[2 * i] : -1,
                                       m->off ? m->off[2 * i + 1] : -1)));
        json_object_set_new(o, "by_token", a);
    }
    if ((c->by & BY_BLOCK) && m->seg) {
        json_t *a = json_array();
        for (int64_t b = 0; b < m->nblocks; b++)
            json_array_append_new(
                a, json_pack("{sI sI sI sI so so so so so so}", "block", (json_int_t)b, "tokens",
                             (json_int_t)m->bcount[b], "start", (json_int_t)m->bstart[b], "end",
                             (json_int_t)m->bend[b], "entropy", jnum(m->bent[b] * u),
                             "norm_entropy", jnum(m->bnorm[b]), "mass", jnum(m->bmass[b]),
                             "mass_corrected", jnum(m->bcorr[b]), "mass_rel",
                             jnum(m->bcorr[b] * m->keys_per_query), "text",
                             json_span(m, m->bstart[b], m->bend[b])));
        json_object_set_new(o, "by_block", a);
    }
    int rc = json_dumpf(o, c->out, JSON_COMPACT) == 0 && fputc('\n', c->out) != EOF
                 ? 0 : ak_write_error(err, c->out_name);
    json_decref(o);
    return rc;
}

static int on_doc(void *vc, ak_doc *d, ak_err *err)
{
    struct ctx *c = vc;
    struct docm m;
    memset(&m, 0, sizeof m);
    int rc = docm_compute(c, d, &m, err);
    if (!rc) {
        if (c->fmt == FMT_STREAM)
            rc = put_scores(&m, d, err);
        else if (c->fmt == FMT_TSV)
            print_tsv(c, d, &m);
        else
            rc = print_json(c, d, &m, err);
    }
    docm_free(&m);
    if (!rc && c->fmt != FMT_STREAM && ferror(c->out))
        rc = ak_write_error(err, c->out_name);
    return rc;
}

static int on_finish(void *vc, ak_err *err)
{
    struct ctx *c = vc;
    if (c->fmt != FMT_STREAM && fflush(c->out) != 0)
        return ak_write_error(err, c->out_name);
    return 0;
}

int main(int argc, char *argv[])
{
    ak_cli_init("entropy");
    struct ctx c = {.by = BY_TOKEN | BY_BLOCK, .fmt = FMT_STREAM, .unit_scale = 1.0,
                    .agg = AK_AGG_MEAN, .l0 = -1, .l1 = -1, .out = stdout};
    const char *output = NULL;
    int by_set = 0, units_set = 0;
    static const struct option lo[] = {
        {"by", required_argument, 0, 'b'},     {"format", required_argument, 0, 'f'},
        {"units", required_argument, 0, 'u'},  {"agg", required_argument, 0, 'a'},
        {"layers", required_argument, 0, 'l'}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "b:f:u:a:l:o:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'b': c.by = parse_by(optarg); by_set = 1; break;
        case 'f':
            if (strcmp(optarg, "stream") == 0) c.fmt = FMT_STREAM;
            else if (strcmp(optarg, "tsv") == 0) c.fmt = FMT_TSV;
            else if (strcmp(optarg, "json") == 0) c.fmt = FMT_JSON;
            else ak_usage_error("--format: expected stream, tsv or json, got '%s'", optarg);
            break;
        case 'u':
            if (strcmp(optarg, "nats") == 0) c.unit_scale = 1.0;
            else if (strcmp(optarg, "bits") == 0) c.unit_scale = 1.0 / log(2.0);
            else ak_usage_error("--units: expected nats or bits, got '%s'", optarg);
            units_set = 1;
            break;
        case 'a':
            if (strcmp(optarg, "mean") == 0) c.agg = AK_AGG_MEAN;
            else if (strcmp(optarg, "max") == 0) c.agg = AK_AGG_MAX;
            else ak_usage_error("--agg: expected mean or max, got '%s'", optarg);
            break;
        case 'l': ak_parse_range("--layers", optarg, &c.l0, &c.l1); break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    if (c.fmt == FMT_STREAM && (by_set || units_set))
        ak_usage_error("--%s shapes the tables of -f tsv or -f json; the stream always gets "
                       "score.token and score.block", by_set ? "by" : "units");
    ak_err err = {0};
    c.out_name = output && strcmp(output, "-") != 0 ? output : "<stdout>";
    ak_filter_args fa = {.program = "entropy", .argc = argc, .argv = argv,
                         .inputs = argv + optind, .ninputs = argc - optind, .output = output};
    ak_cli_filter_args(&fa);
    ak_filter_ops ops = {.doc = on_doc, .finish = on_finish,
                         .no_stream_output = c.fmt != FMT_STREAM};
    if (ak_filter_run(&fa, &ops, &c, &err))
        ak_die(&err);
    return 0;
}
