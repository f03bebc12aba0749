/* prune - keep the tokens, sentences or blocks of a prompt that carry the
 * most attention, under a budget; record what was dropped. */
#include "cli.h"
#include "filter.h"
#include "prune.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: prune (-k RATIO | -n N) [-p POLICY] [-u UNIT] [-P first,last]\n"
           "             [-m MARKER] [-r REGEX] [-o FILE] [FILE...]\n"
           "Keep the highest-scoring tokens of each document under a budget.\n"
           "  -k, --keep RATIO       keep this share of the tokens (0..1)\n"
           "  -n, --max-tokens N     keep at most N tokens\n"
           "  -p, --policy P         score (entropy's score.token; the default when\n"
           "                         present), mass (corrected received mass; the default\n"
           "                         otherwise), query, entropy, heavy, random, first, last\n"
           "  -u, --unit U           token (default), sentence or block\n"
           "  -P, --protect LIST     first,last: always keep the first / last block\n"
           "  -m, --protect-marker S always keep the blocks that contain S (repeatable)\n"
           "  -r, --protect-regex RE always keep tokens overlapping matches of the PCRE2\n"
           "                         pattern RE in the text (repeatable)\n"
           "      --query-marker S   query policy: the query span is the blocks holding S\n"
           "      --query-regex RE   query policy: the tokens overlapping matches of RE\n"
           "                         (default span: the last block)\n"
           "      --recent N         heavy: keep the last N tokens (default budget/4)\n"
           "      --seed N           random: seed (default 1)\n"
           "  -l, --layers A-B       layers used by mass, entropy, heavy, query\n"
           "  -a, --agg mean|max     over heads and layers (mass, entropy, heavy)\n"
           "  -o, --output FILE      write the stream here (atomically)\n"
           "  -h, --help             this help\n"
           "Special tokens and tokens outside blocks (segments -1) are always kept.\n"
           "Exit status: 0 ok, 64 usage, 65 bad stream, 66 cannot open, 74 I/O error.\n");
}

#define MAXPAT 32

struct ctx {
    ak_prune_opts o;
    int policy_set;
    int protect_first, protect_last;
    const char *markers[MAXPAT], *regexes[MAXPAT];
    int nmarkers, nregexes;
    const char *query_marker, *query_regex;
    long l0, l1;
    ak_agg agg;
};

static void parse_protect(struct ctx *c, const char *s)
{
    char *dup = strdup(s), *save = NULL;
    if (!dup)
        ak_dief(AK_ENOMEM, "out of memory");
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "first") == 0) c->protect_first = 1;
        else if (strcmp(t, "last") == 0) c->protect_last = 1;
        else /* exits; t points into dup, still reachable */
            ak_usage_error("--protect: unknown span '%s' (first, last)", t);
    }
    free(dup);
}

/* Work arrays for one document, freed together. */
struct work {
    int32_t *unit;
    uint8_t *protect, *keep, *query;
    float *score, *kept_score;
};

static void work_free(struct work *w)
{
    free(w->unit);
    free(w->protect);
    free(w->keep);
    free(w->query);
    free(w->score);
    free(w->kept_score);
}

/* Query policy: mean over the layers with attn.probs.<l> in range of the
 * query rows' attention (ak_query_mass). */
static int query_scores(struct ctx *c, ak_doc *d, int64_t T, const uint8_t *is_query,
                        float *score, ak_err *err)
{
    int nlayers = 0;
    for (size_t k = 0; k < d->ntensors; k++) {
        ak_tensor *t = d->tensors[k];
        const char *n = t->name;
        if (strncmp(n, "attn.probs.", 11) != 0 || strchr(n + 11, '.'))
            continue;
        char *end;
        long l = strtol(n + 11, &end, 10);
        if (end == n + 11 || *end)
            continue;
        if ((c->l0 >= 0 && l < c->l0) || (c->l1 >= 0 && l > c->l1))
            continue;
        if (t->dtype != AK_F32 || t->ndim != 3 || t->shape[1] != T || t->shape[2] != T)
            return ak_fail(err, AK_EDATA, "document '%s': %s is not f32 [h, %lld, %lld]", d->id,
                           n, (long long)T, (long long)T);
        if (t->shape[0] == 0)
            continue;
        int rc = ak_query_mass(ak_tensor_f32(t), t->shape[0], T, is_query, score, err);
        if (rc)
            return ak_wrap(err, "document '%s': %s", d->id, n);
        nlayers++;
    }
    if (!nlayers)
        return ak_fail(err, AK_EDATA,
                       "document '%s': policy query needs attn.probs.<layer> (attend --probs)",
                       d->id);
    for (int64_t j = 0; j < T; j++)
        score[j] /= (float)nlayers;
    return 0;
}

static int on_doc(void *vc, ak_doc *d, ak_err *err)
{
    struct ctx *c = vc;
    if (ak_prune_check_doc(d, err))
        return err->code;
    ak_tensor *tok = ak_doc_need(d, "tokens", AK_I32, 1, err);
    if (!tok)
        return err->code;
    ak_tensor *off = ak_doc_need(d, "offsets", AK_I64, 2, err);
    if (!off)
        return err->code;
    ak_tensor *text = ak_doc_need(d, "text", AK_U8, 1, err);
    if (!text)
        return err->code;
    int64_t T = tok->shape[0];
    if (off->shape[0] != T || off->shape[1] != 2)
        return ak_fail(err, AK_EDATA, "document '%s': offsets is not [%lld, 2]", d->id,
                       (long long)T);
    const int32_t *seg = NULL;
    ak_tensor *st = ak_doc_get(d, "segments");
    if (st) {
        if (!ak_doc_need(d, "segments", AK_I32, 1, err))
            return err->code;
        if (st->shape[0] != T)
            return ak_fail(err, AK_EDATA, "document '%s': segments has %lld tokens, not %lld",
                           d->id, (long long)st->shape[0], (long long)T);
        seg = ak_tensor_i32(st);
    }
    const uint8_t *special = NULL;
    ak_tensor *sp = ak_doc_get(d, "special");
    if (sp) {
        if (sp->dtype != AK_U8 || sp->ndim != 1 || sp->shape[0] != T)
            return ak_fail(err, AK_EDATA, "document '%s': special is not u8 [%lld]", d->id,
                           (long long)T);
        special = ak_tensor_u8(sp);
    }
    if (!seg && (c->o.unit == AK_UNIT_BLOCK || c->protect_first || c->protect_last))
        return ak_fail(err, AK_EDATA, "document '%s' has no segments (needed by %s)", d->id,
                       c->o.unit == AK_UNIT_BLOCK ? "--unit block" : "--protect");
    const uint8_t *txt = ak_tensor_u8(text);
    size_t tlen = text->nbytes;
    const int64_t *o = ak_tensor_i64(off);

    ak_prune_opts opts = c->o;
    if (!c->policy_set)
        opts.policy = ak_doc_get(d, "score.token") ? AK_POLICY_SCORE : AK_POLICY_MASS;

    struct work w = {0};
    size_t n = (size_t)T + 1;
    w.unit = malloc(n * sizeof *w.unit);
    w.protect = calloc(n, 1);
    w.keep = calloc(n, 1);
    w.query = calloc(n, 1);
    w.score = calloc(n, sizeof *w.score);
    w.kept_score = calloc(n, sizeof *w.kept_score);
    int rc = 0;
    if (!w.unit || !w.protect || !w.keep || !w.query || !w.score || !w.kept_score) {
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
        goto out;
    }
    int64_t nblocks = 0;
    if (seg && (rc = ak_block_count(seg, T, &nblocks, err)))
        goto out;

    /* units */
    int64_t nunits = T;
    if (opts.unit == AK_UNIT_TOKEN) {
        for (int64_t i = 0; i < T; i++)
            w.unit[i] = (int32_t)i;
    } else if (opts.unit == AK_UNIT_BLOCK) {
        memcpy(w.unit, seg, (size_t)T * sizeof *w.unit);
        nunits = nblocks;
    } else if ((rc = ak_sentence_ids(txt, tlen, o, T, w.unit, err))) {
        goto out;
    } else {
        nunits = 0;
        for (int64_t i = 0; i < T; i++)
            if (w.unit[i] + 1 > nunits)
                nunits = w.unit[i] + 1;
    }
    if (seg)
        for (int64_t i = 0; i < T; i++)
            if (seg[i] < 0)
                w.unit[i] = -1;

    /* protection */
    if (c->protect_first)
        ak_protect_block_end(seg, T, 0, w.protect);
    if (c->protect_last)
        ak_protect_block_end(seg, T, 1, w.protect);
    for (int k = 0; k < c->nmarkers && !rc; k++)
        rc = ak_protect_marker(txt, tlen, o, seg, T, c->markers[k], w.protect, err);
    for (int k = 0; k < c->nregexes && !rc; k++)
        rc = ak_protect_regex(txt, tlen, o, T, c->regexes[k], w.protect, err);
    if (rc)
        goto out;

    /* scores */
    const float *score = NULL, *unit_score = NULL;
    switch (opts.policy) {
    case AK_POLICY_SCORE: {
        ak_tensor *s = ak_doc_get(d, "score.token");
        if (!s) {
            rc = ak_fail(err, AK_EDATA, "document '%s' has no score.token (run entropy first)",
                         d->id);
            goto out;
        }
        if (s->dtype != AK_F32 || s->ndim != 1 || s->shape[0] != T) {
            rc = ak_fail(err, AK_EDATA, "document '%s': score.token is not f32 [%lld]", d->id,
                         (long long)T);
            goto out;
        }
        score = ak_tensor_f32(s);
        ak_tensor *b = ak_doc_get(d, "score.block");
        if (opts.unit == AK_UNIT_BLOCK && b) {
            if (b->dtype != AK_F32 || b->ndim != 1 || b->shape[0] != nblocks) {
                rc = ak_fail(err, AK_EDATA, "document '%s': score.block is not f32 [%lld]",
                             d->id, (long long)nblocks);
                goto out;
            }
            unit_score = ak_tensor_f32(b);
        }
        break;
    }
    case AK_POLICY_MASS: case AK_POLICY_ENTROPY: case AK_POLICY_HEAVY: {
        ak_attn_stats s;
        if ((rc = ak_doc_attn_stats(d, &s, err)))
            goto out;
        int64_t l0 = c->l0 < 0 ? 0 : c->l0, l1 = c->l1 < 0 ? s.L - 1 : c->l1;
        if ((rc = ak_prune_scores(&s, opts.policy, l0, l1, c->agg, w.score, err)))
            goto out;
        score = w.score;
        break;
    }
    case AK_POLICY_QUERY:
        if (c->query_regex)
            rc = ak_protect_regex(txt, tlen, o, T, c->query_regex, w.query, err);
        else if (c->query_marker)
            rc = ak_protect_marker(txt, tlen, o, seg, T, c->query_marker, w.query, err);
        else if (seg)
            ak_protect_block_end(seg, T, 1, w.query);
        else
            rc = ak_fail(err, AK_EDATA, "document '%s' has no segments: name the query span "
                         "with --query-marker or --query-regex", d->id);
        if (rc || (rc = query_scores(c, d, T, w.query, w.score, err)))
            goto out;
        for (int64_t i = 0; i < T; i++) /* the question survives its own pruning */
            w.protect[i] |= w.query[i];
        score = w.score;
        break;
    default:
        break;
    }

    ak_prune_input in = {.T = T, .unit = w.unit, .special = special, .protect = w.protect,
                         .score = score, .unit_score = unit_score, .nunits = nunits,
                         .doc_hash = ak_hash_str(d->id)};
    int64_t budget;
    if ((rc = ak_prune_select(&in, &opts, w.keep, w.kept_score, &budget, err)))
        goto out;
    if ((rc = ak_prune_apply(d, w.keep, w.kept_score, err)))
        goto out;
    if ((rc = ak_meta_set_str(&d->meta, "prune_policy", ak_policy_name(opts.policy))) ||
        (rc = ak_meta_set_int(&d->meta, "prune_budget", budget)))
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
out:
    work_free(&w);
    return rc;
}

int main(int argc, char *argv[])
{
    ak_cli_init("prune");
    struct ctx c = {.o = {.policy = AK_POLICY_MASS, .unit = AK_UNIT_TOKEN, .keep_ratio = -1,
                          .max_tokens = -1, .recent = -1, .seed = 1},
                    .l0 = -1, .l1 = -1, .agg = AK_AGG_MEAN};
    const char *output = NULL;
    enum { O_QMARK = 256, O_QRE, O_RECENT, O_SEED };
    static const struct option lo[] = {
        {"keep", required_argument, 0, 'k'},           {"max-tokens", required_argument, 0, 'n'},
        {"policy", required_argument, 0, 'p'},         {"unit", required_argument, 0, 'u'},
        {"protect", required_argument, 0, 'P'},        {"protect-marker", required_argument, 0, 'm'},
        {"protect-regex", required_argument, 0, 'r'},  {"query-marker", required_argument, 0, O_QMARK},
        {"query-regex", required_argument, 0, O_QRE},  {"recent", required_argument, 0, O_RECENT},
        {"seed", required_argument, 0, O_SEED},        {"layers", required_argument, 0, 'l'},
        {"agg", required_argument, 0, 'a'},            {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},                 {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "k:n:p:u:P:m:r:l:a:o:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'k': c.o.keep_ratio = ak_parse_double("--keep", optarg, 0, 1); break;
        case 'n': c.o.max_tokens = ak_parse_long("--max-tokens", optarg, 0, 1L << 40); break;
        case 'p':
            if (ak_policy_from_name(optarg, &c.o.policy))
                ak_usage_error("--policy: unknown policy '%s'", optarg);
            c.policy_set = 1;
            break;
        case 'u':
            if (ak_unit_from_name(optarg, &c.o.unit))
                ak_usage_error("--unit: expected token, sentence or block, got '%s'", optarg);
            break;
        case 'P': parse_protect(&c, optarg); break;
        case 'm':
            if (c.nmarkers == MAXPAT)
                ak_usage_error("--protect-marker: at most %d", MAXPAT);
            if (!*optarg)
                ak_usage_error("--protect-marker: empty marker");
            c.markers[c.nmarkers++] = optarg;
            break;
        case 'r':
            if (c.nregexes == MAXPAT)
                ak_usage_error("--protect-regex: at most %d", MAXPAT);
            c.regexes[c.nregexes++] = optarg;
            break;
        case O_QMARK:
            if (!*optarg)
                ak_usage_error("--query-marker: empty marker");
            c.query_marker = optarg;
            break;
        case O_QRE: c.query_regex = optarg; break;
        case O_RECENT: c.o.recent = ak_parse_long("--recent", optarg, 0, 1L << 40); break;
        case O_SEED: c.o.seed = (uint64_t)ak_parse_long("--seed", optarg, 0, 1L << 62); break;
        case 'l': ak_parse_range("--layers", optarg, &c.l0, &c.l1); break;
        case 'a':
            if (strcmp(optarg, "mean") == 0) c.agg = AK_AGG_MEAN;
            else if (strcmp(optarg, "max") == 0) c.agg = AK_AGG_MAX;
            else ak_usage_error("--agg: expected mean or max, got '%s'", optarg);
            break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    if (c.o.keep_ratio < 0 && c.o.max_tokens < 0)
        ak_usage_error("a budget is needed: --keep RATIO or --max-tokens N");
    if ((c.query_marker || c.query_regex) && c.o.policy != AK_POLICY_QUERY)
        ak_usage_error("--query-marker and --query-regex go with --policy query");
    if (c.query_regex) { /* a bad pattern is a usage error before any input is read */
        ak_err e = {0};
        uint8_t dummy = 0;
        if (ak_protect_regex((const uint8_t *)"", 0, NULL, 0, c.query_regex, &dummy, &e))
            ak_usage_error("--query-regex: %s", e.msg);
    }
    for (int k = 0; k < c.nregexes; k++) {
        ak_err e = {0};
        uint8_t dummy = 0;
        if (ak_protect_regex((const uint8_t *)"", 0, NULL, 0, c.regexes[k], &dummy, &e))
            ak_usage_error("--protect-regex: %s", e.msg);
    }
    ak_err err = {0};
    ak_filter_args fa = {.program = "prune", .argc = argc, .argv = argv,
                         .inputs = argv + optind, .ninputs = argc - optind, .output = output};
    ak_filter_ops ops = {.doc = on_doc};
    if (ak_filter_run(&fa, &ops, &c, &err))
        ak_die(&err);
    return 0;
}
