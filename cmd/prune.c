/* prune - keep the tokens, sentences or blocks of a prompt that carry the
 * most attention, under a budget; record what was dropped. */
#include "cli/cli.h"
#include "core/buf.h"
#include "attnkit/filter.h"
#include "attnkit/io.h"
#include "attnkit/model.h"
#include "attnkit/prune.h"
#include "attnkit/prune_embed.h"
#include "attnkit/tokenizer.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf("usage: prune (-k RATIO | -n N) [-p POLICY] [-u UNIT] [-P first,last]\n"
           "             [--protect-marker S] [-r REGEX] [--count-with TOKENIZER]\n"
           "             [--query-rows question|answer|both] [--encoder MODEL]\n"
           "             [--global] [--lm MODEL [--fine [--coarse R]]] [-v] [-o FILE]\n"
           "             [--unit-score mean|max|topK] [--sinks N] [--heads FILE]\n"
           "             [--keep-numbers] [--position-baseline FILE]\n"
           "             [FILE...]\n"
           "Keep the highest-scoring words, tokens, sentences or blocks of each document\n"
           "under a budget.\n"
           "  -k, --keep RATIO       keep this share of the tokens (0..1)\n"
           "  -n, --max-tokens N     keep at most N tokens\n"
           "  -p, --policy P         score (entropy's score.token; the default when\n"
           "                         present), mass (corrected received mass; the default\n"
           "                         otherwise), query, entropy, heavy, random, first, last,\n"
           "                         similarity (blocks by --encoder's cosine to the query),\n"
           "                         surprisal (attend --surprisal's token.surprisal:\n"
           "                         Selective Context), qppl (blocks by log p(question |\n"
           "                         block) - log p(question) under --lm: LongLLMLingua)\n"
           "  -u, --unit U           word (default: never splits a word or a number),\n"
           "                         token, sentence or block\n"
           "  -P, --protect LIST     first,last: always keep the first / last block\n"
           "      --protect-marker S always keep the blocks that contain S (repeatable)\n"
           "  -r, --protect-regex RE always keep tokens overlapping matches of the PCRE2\n"
           "                         pattern RE in the text (repeatable)\n"
           "      --query-marker S   the query span is the blocks holding S\n"
           "      --query-regex RE   the query span is the tokens overlapping matches of RE\n"
           "                         (default: the last block, else the last paragraph);\n"
           "                         it is always kept and the query policy scores by it\n"
           "      --no-protect-query do not keep the query span (not with --policy query)\n"
           "      --query-rows R     query: the rows of the question (attn.probs.<l>, else\n"
           "                         attn.mass_last), of the answer (attn.mass_gen from\n"
           "                         kvcache --gen-mass) or both (default: both when\n"
           "                         attn.mass_gen is there, else question)\n"
           "      --encoder MODEL    similarity: the sentence encoder (default minilm,\n"
           "                         all-MiniLM-L6-v2); texts cut to its max_seq_length\n"
           "  -c, --count-with TOK   count the budget in TOK's tokens of each unit's text:\n"
           "                         a model name, directory or tokenizer.json\n"
           "  -g, --global           one budget across all documents of the stream: they\n"
           "                         are ranked, better ones keep more (holds the stream)\n"
           "      --lm MODEL         qppl: the causal LM (default: $ATTNKIT_MODEL, else\n"
           "                         SmolLM2-135M-Instruct); the stream's tokens must be its\n"
           "      --fine             qppl: keep the best blocks up to --coarse x the budget,\n"
           "                         then drop their lowest-surprisal units (needs\n"
           "                         token.surprisal)\n"
           "      --coarse R         --fine: the blocks' share of the budget (default 2)\n"
           "  -d, --device DEV       qppl, similarity: cpu, cuda or auto (default\n"
           "                         $ATTNKIT_DEVICE)\n"
           "      --recent N         heavy: keep the last N tokens (default budget/4)\n"
           "      --seed N           random: seed (default 1)\n"
           "  -l, --layers A-B       layers used by mass, entropy, heavy, query\n"
           "  -a, --agg mean|max     over heads and layers (mass, entropy, heavy)\n"
           "      --unit-score S     a word's, sentence's or block's score from its\n"
           "                         tokens': mean (default), max, or topK (the mean of\n"
           "                         the K highest, e.g. top3)\n"
           "      --sinks N          leave the first N tokens' scores out of their units'\n"
           "                         (attention sinks; a unit of sinks only scores 0)\n"
           "      --heads FILE       query: read only these heads, FILE's lines `LAYER\n"
           "                         HEAD` (retrieval heads; # comments)\n"
           "      --position-baseline FILE  query: subtract the attention an irrelevant\n"
           "                         token gets at each relative position (FILE's lines\n"
           "                         `POS VALUE`, VALUE x uniform; Found in the Middle)\n"
           "      --keep-numbers     -u word: a number and the word it counts, dates and\n"
           "                         names (capitalised runs) are one unit: kept or dropped\n"
           "                         whole (\"30 days\", \"29 June 2007\", \"Mark Adler\")\n"
           "  -v, --verbose          one line per document on stderr: budget, kept, ratio,\n"
           "                         the blocks kept whole and in part\n"
           "  -o, --output FILE      write the stream here (atomically)\n"
           "  -h, --help             this help\n"
           "Special tokens and tokens outside blocks (segments -1) are always kept.\n"
           "Meta prune_budget, prune_kept, prune_total, prune_ratio record what was kept.\n"
           "Exit status: 0 ok, 64 usage, 65 bad stream, 66 cannot open, 73 cannot create\n"
           "the output, 74 I/O error, 78 unsupported tokenizer or model.\n");
}

#define MAXPAT 32

static void parse_protect(ak_prune_doc_opts *c, const char *s)
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

struct ctx {
    ak_prune_doc_opts c;
    int verbose, global;
    /* --global: the stream held */
    ak_record *recs;
    size_t nrecs, cap;
    const ak_filter_args *args;   /* for the history each header gets */
};

/* -v: each block's token count (segments >= 0), before or after pruning;
 * NULL (and *nb 0) without segments. */
static int64_t *block_counts(const ak_doc *d, int64_t *nb)
{
    ak_tensor *s = ak_doc_get(d, "segments");
    *nb = 0;
    if (!s || s->dtype != AK_I32 || s->ndim != 1)
        return NULL;
    const int32_t *v = ak_tensor_i32(s);
    int64_t n = s->shape[0], hi = -1;
    for (int64_t i = 0; i < n; i++)
        if (v[i] > hi)
            hi = v[i];
    int64_t *c = calloc((size_t)hi + 2, sizeof *c);
    if (!c)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        if (v[i] >= 0)
            c[v[i]]++;
    *nb = hi + 1;
    return c;
}

/* "0-2,5": the ids i < n with want(i), runs as ranges */
static void print_ids(const int64_t *before, const int64_t *after, int64_t na, int64_t n, int whole)
{
    int first = 1;
    for (int64_t i = 0; i < n;) {
        int64_t a = i < na ? after[i] : 0;
        int hit = a > 0 && (whole ? a >= before[i] : a < before[i]);
        if (!hit) {
            i++;
            continue;
        }
        int64_t j = i + 1;
        while (j < n) {
            int64_t b = j < na ? after[j] : 0;
            if (!(b > 0 && (whole ? b >= before[j] : b < before[j])))
                break;
            j++;
        }
        fprintf(stderr, "%s%lld", first ? "" : ",", (long long)i);
        if (j - i > 1)
            fprintf(stderr, "-%lld", (long long)(j - 1));
        first = 0;
        i = j;
    }
    if (first)
        fputs("none", stderr);
}

/* -v's line: the budget, and which blocks were kept whole or in part */
static void report(const ak_doc *d, const ak_prune_result *r, const int64_t *before, int64_t nb)
{
    fprintf(stderr, "prune: %s: budget %lld, kept %lld of %lld (%.4f)%s", d->id,
            (long long)r->budget, (long long)r->kept, (long long)r->total,
            r->total ? (double)r->kept / (double)r->total : 0.0, r->exact ? "" : ", greedy");
    int64_t na;
    int64_t *after = before ? block_counts(d, &na) : NULL;
    if (after) {
        int partly = 0;
        for (int64_t i = 0; i < nb && i < na; i++)
            partly |= after[i] > 0 && after[i] < before[i];
        fputs("; blocks kept ", stderr);
        print_ids(before, after, na, nb, 1);
        if (partly) {
            fputs(", in part ", stderr);
            print_ids(before, after, na, nb, 0);
        }
    }
    fputc('\n', stderr);
    free(after);
}

/* qppl runs the stream's tokens through --lm: they must be its. */
static int on_header(void *vc, ak_header *h, ak_err *err)
{
    struct ctx *x = vc;
    return x->c.lm ? ak_model_check_identity(x->c.lm, &h->model, err) : 0;
}

static int on_doc(void *vc, ak_doc *d, ak_err *err)
{
    struct ctx *x = vc;
    ak_prune_result r;
    int64_t nb = 0, *before = x->verbose ? block_counts(d, &nb) : NULL;
    int rc = ak_prune_doc(d, &x->c, &r, err);
    if (!rc && x->verbose)
        report(d, &r, before, nb);
    free(before);
    return rc;
}

/* --global: read every record, rank the documents, give each its share of
 * one budget, prune, write. */
static int hold(void *vx, ak_record *rec, ak_err *err)
{
    struct ctx *x = vx;
    if (rec->type == AK_REC_HEADER) {
        const ak_filter_args *a = x->args;
        if (ak_header_add_stage(rec->header, a->program, a->argc, a->argv))
            return ak_fail(err, AK_ENOMEM, "out of memory");
        int rc = on_header(x, rec->header, err);
        if (rc)
            return rc;
    }
    if (ak_grow((void **)&x->recs, &x->cap, x->nrecs + 1, sizeof *x->recs))
        return ak_fail(err, AK_ENOMEM, "out of memory holding the stream");
    x->recs[x->nrecs++] = *rec;
    memset(rec, 0, sizeof *rec);
    return 0;
}

static int run_global(struct ctx *x, const ak_filter_args *a, ak_err *err)
{
    x->args = a;
    ak_output out;
    ak_writer *w = NULL;
    int rc = ak_output_open(&out, a->output, a->inputs, a->ninputs, err);
    if (rc)
        return rc;
    if (!(rc = ak_writer_open_fd(&w, out.fd, out.name, err)))
        ak_cli_writer(w);
    int n = a->ninputs > 0 ? a->ninputs : 1;
    for (int i = 0; i < n && !rc; i++)
        rc = ak_cli_read(a->ninputs > 0 ? a->inputs[i] : "-", hold, x, err);
    size_t nd = 0;
    for (size_t k = 0; k < x->nrecs; k++)
        nd += x->recs[k].type == AK_REC_DOC;
    double *score = calloc(nd + 1, sizeof *score);
    int64_t *size = calloc(nd + 1, sizeof *size), *floor_ = calloc(nd + 1, sizeof *floor_),
            *budget = calloc(nd + 1, sizeof *budget);
    /* the blocks' scores of qppl and similarity, from the ranking to the
     * pruning: their model runs once per document */
    ak_block_cache *cache = calloc(nd + 1, sizeof *cache);
    if (!rc && (!score || !size || !floor_ || !budget || !cache))
        rc = ak_fail(err, AK_ENOMEM, "out of memory");
    int64_t total = 0, kept = 0, want = 0;
    for (size_t k = 0, j = 0; k < x->nrecs && !rc; k++)
        if (x->recs[k].type == AK_REC_DOC) {
            ak_prune_doc_opts c = x->c;
            c.cache = &cache[j];
            rc = ak_prune_doc_rank(x->recs[k].doc, &c, &score[j], &size[j], &floor_[j], err);
            total += size[j++];
        }
    if (!rc) {
        want = total;
        if (x->c.o.keep_ratio >= 0)
            want = (int64_t)floor(x->c.o.keep_ratio * (double)total + 0.5);
        if (x->c.o.max_tokens >= 0 && x->c.o.max_tokens < want)
            want = x->c.o.max_tokens;
        ak_global_budgets(score, size, floor_, nd, want, budget);
    }
    for (size_t k = 0, j = 0; k < x->nrecs && !rc; k++) {
        ak_record *rec = &x->recs[k];
        if (rec->type == AK_REC_DOC) {
            ak_prune_doc_opts c = x->c;
            ak_prune_result r;
            c.budget = budget[j];
            c.budget_set = 1;
            c.cache = &cache[j];
            int64_t nb = 0, *before = x->verbose ? block_counts(rec->doc, &nb) : NULL;
            if (!(rc = ak_prune_doc(rec->doc, &c, &r, err)) &&
                !(rc = ak_meta_set_float(&rec->doc->meta, "prune_rank_score", score[j]) ||
                           ak_meta_set_int(&rec->doc->meta, "prune_global_budget", want) ||
                           ak_meta_set_int(&rec->doc->meta, "prune_global_total", total)
                       ? ak_fail(err, AK_ENOMEM, "out of memory") : 0)) {
                kept += r.kept;
                if (x->verbose)
                    report(rec->doc, &r, before, nb);
                rc = ak_write_doc(w, rec->doc, err);
            }
            free(before);
            j++;
        } else if (rec->type == AK_REC_HEADER) {
            rc = ak_write_header(w, rec->header, err);
        } else if (rec->type == AK_REC_END) {
            rc = ak_write_end(w, -1, err);
        } else {
            rc = ak_write_raw(w, rec->raw, rec->rawlen, err);
        }
    }
    if (!rc && x->verbose)
        fprintf(stderr, "prune: all %zu documents: budget %lld, kept %lld of %lld (%.4f)\n", nd,
                (long long)want, (long long)kept, (long long)total,
                total ? (double)kept / (double)total : 0.0);
    free(score);
    free(size);
    free(floor_);
    free(budget);
    for (size_t j = 0; cache && j < nd; j++)
        ak_block_cache_free(&cache[j]);
    free(cache);
    for (size_t k = 0; k < x->nrecs; k++)
        ak_record_free(&x->recs[k]);
    free(x->recs);
    return ak_filter_finish(&out, w, rc, err);
}

/* --count-with: a model short name or directory (ak_model_dir), or a
 * tokenizer.json (its directory). */
static ak_tokenizer *load_counter(const char *arg)
{
    ak_err e = {0};
    ak_tokenizer *tk = NULL;
    const char *base = strrchr(arg, '/');
    base = base ? base + 1 : arg;
    char *dir = NULL;
    if (!strcmp(base, "tokenizer.json")) {
        dir = strdup(arg);
        if (!dir)
            ak_dief(AK_ENOMEM, "out of memory");
        dir[base - arg ? (size_t)(base - arg) - 1 : 0] = 0;
        if (!*dir)
            strcpy(dir, ".");
    }
    if (ak_tokenizer_load(&tk, dir ? dir : ak_model_dir(arg), &e)) {
        free(dir);
        ak_dief(e.code, "--count-with: %s", e.msg);
    }
    free(dir);
    return tk;
}

/* qppl's model: causal, with a head; the BOS its tokenizer puts first. */
static ak_model *load_lm(const char *arg, int32_t *bos)
{
    ak_err e = {0};
    ak_model *m = NULL;
    const char *dir = ak_model_dir(arg);
    if (ak_model_load(&m, dir, &e))
        ak_dief(e.code, "--lm: %s", e.msg);
    ak_cli_model(m);
    if (!m->causal || (!m->lm_head.w && !m->lm_head.wq))
        ak_dief(AK_ECONFIG, "policy qppl: model %s (%s) is not a causal language model%s", m->name,
                m->arch, m->causal ? " (it has no language-model head)" : " (it is bidirectional)");
    ak_tokenizer *tk = NULL;
    ak_encoding enc = {0};
    if (ak_tokenizer_load(&tk, dir, &e) || ak_tokenizer_post(tk, &enc, 0, &e))
        ak_dief(e.code, "--lm: %s", e.msg);
    *bos = ak_tokenizer_post_prefix(tk) > 0 && enc.n > 0 ? enc.ids[0] : -1;
    ak_encoding_free(&enc);
    ak_tokenizer_free(tk);
    return m;
}

/* The two-number lines of --heads and --position-baseline (blank lines and
 * # comments allowed) into pairs[2n]; ok(x, y, the previous pair or NULL)
 * says whether a pair is valid, else the program exits with one line
 * naming the file, the line and what was expected. */
static int64_t read_pairs(const char *opt, const char *path, const char *expected,
                          const char *empty, int (*ok)(double x, double y, const double *prev),
                          double **out)
{
    ak_err e = {0};
    char *data;
    size_t len;
    if (ak_read_file(path, (size_t)1 << 24, &data, &len, &e))
        ak_dief(e.code, "%s: %s", opt, e.msg);
    double *v = NULL;
    int64_t n = 0, lineno = 0;
    size_t cap = 0;
    for (char *line = data, *next; line < data + len; line = next) {
        lineno++;
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        next = nl ? nl + 1 : data + len;
        if (nl)
            *nl = 0;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        if (strspn(line, " \t\r") == strlen(line))
            continue;  /* blank or comment */
        double x, y;
        int used = 0;
        if (sscanf(line, " %lf %lf %n", &x, &y, &used) != 2 || line[used] || !isfinite(x) ||
            !isfinite(y) || !ok(x, y, n ? v + 2 * n - 2 : NULL)) {
            free(data);
            free(v);
            ak_dief(AK_EDATA, "%s: %s:%lld: expected %s", opt, path, (long long)lineno, expected);
        }
        if (ak_grow((void **)&v, &cap, (size_t)n + 1, 2 * sizeof *v))
            ak_dief(AK_ENOMEM, "out of memory");
        v[2 * n] = x;
        v[2 * n + 1] = y;
        n++;
    }
    free(data);
    if (!n)
        ak_dief(AK_EDATA, "%s: %s %s", opt, path, empty);
    *out = v;
    return n;
}

static int head_ok(double l, double h, const double *prev)
{
    return l == floor(l) && h == floor(h) && l >= 0 && h >= 0 && l <= 1 << 20 && h <= 1 << 20;
}

/* --heads FILE: lines "LAYER HEAD" (retrieval heads), into pairs. */
static int64_t read_heads(const char *path, int32_t **out)
{
    double *v;
    int64_t n = read_pairs("--heads", path, "LAYER HEAD (two whole numbers >= 0)",
                           "names no head", head_ok, &v);
    if (!(*out = malloc((size_t)n * 2 * sizeof **out)))
        ak_dief(AK_ENOMEM, "out of memory");
    for (int64_t i = 0; i < 2 * n; i++)
        (*out)[i] = (int32_t)v[i];
    free(v);
    return n;
}

static int baseline_ok(double pos, double value, const double *prev)
{
    return pos >= 0 && pos <= 1 && (!prev || pos > prev[0]);
}

/* --position-baseline FILE: lines "POS VALUE", POS in [0, 1] ascending,
 * VALUE finite. */
static int64_t read_baseline(const char *path, double **out)
{
    return read_pairs("--position-baseline", path,
                      "POS VALUE (POS in [0, 1], ascending; VALUE finite)", "has no point",
                      baseline_ok, out);
}

/* An option that only one policy takes (the table in lib/analysis/policy.c says
 * which: ak_policy_takes) is a usage error with any other.  Without -p the
 * policy is score or mass, which take none. */
static void policy_option(const ak_prune_doc_opts *c, int given, const char *opt)
{
    if (!given || ak_policy_takes(c->o.policy, opt))
        return;
    ak_policy owner = AK_POLICY_SCORE;
    while (ak_policy_name(owner) && !ak_policy_takes(owner, opt))
        owner = (ak_policy)(owner + 1);
    ak_usage_error("%s goes with --policy %s", opt, ak_policy_name(owner));
}

/* What the command line gave besides ak_prune_doc_opts. */
struct given {
    const char *lm, *device, *encoder, *heads, *pbase, *count_with;
    int recent, seed, coarse, uscore;
};

/* The options together: a budget, and no option that would do nothing
 * (an error, not silence); the similarity policy's encoder is loaded and
 * the regexes compiled here, so that a bad one is a usage error before any
 * input is read. */
static void check_options(ak_prune_doc_opts *c, const struct given *g)
{
    if (c->o.keep_ratio < 0 && c->o.max_tokens < 0)
        ak_usage_error("a budget is needed: --keep RATIO or --max-tokens N");
    if (c->o.keep_ratio >= 0 && c->o.max_tokens >= 0)
        ak_usage_error("--keep and --max-tokens: one budget, not both");
    /* an option that would do nothing is an error, not silence */
    if (c->no_query && (c->query_marker || c->query_regex))
        ak_usage_error("--no-protect-query and --query-marker / --query-regex contradict");
    if (c->no_query && c->policy_set && c->o.policy == AK_POLICY_QUERY)
        ak_usage_error("--no-protect-query: the query policy keeps its query span");
    int qppl = c->policy_set && c->o.policy == AK_POLICY_QPPL;
    policy_option(c, g->lm != NULL, "--lm");
    if (g->device && !qppl && !(c->policy_set && c->o.policy == AK_POLICY_SIMILARITY))
        ak_usage_error("--device goes with --policy qppl or similarity");
    policy_option(c, c->fine, "--fine");
    if (g->coarse && !c->fine)
        ak_usage_error("--coarse goes with --fine");
    if (c->no_query && qppl)
        ak_usage_error("--no-protect-query: the qppl policy keeps its query span");
    policy_option(c, g->recent, "--recent");
    policy_option(c, g->seed, "--seed");
    /* the rule lives in lib/analysis/policy.c's table (ak_policy_uses_layers/_agg); without
     * -p the policy is chosen per document, and ak_prune_doc asks the same */
    if (c->policy_set && c->layers_set && !ak_policy_uses_layers(c->o.policy))
        ak_usage_error("--layers: policy %s does not use layers", ak_policy_name(c->o.policy));
    if (c->policy_set && c->agg_set && !ak_policy_uses_agg(c->o.policy))
        ak_usage_error("--agg: policy %s does not aggregate heads and layers%s",
                       ak_policy_name(c->o.policy), c->o.policy == AK_POLICY_QUERY
                       ? " (the query policy averages its rows and heads)" : "");
    policy_option(c, c->query_rows != AK_QROWS_AUTO, "--query-rows");
    policy_option(c, g->encoder != NULL, "--encoder");
    if (c->policy_set && c->o.policy == AK_POLICY_SIMILARITY) {
        ak_err e = {0};
        ak_device dev;
        const char *dir = ak_model_dir(g->encoder ? g->encoder : "minilm");
        if (ak_device_parse(ak_device_opt(g->device), &dev, &e) ||
            ak_encoder_load(&c->encoder, dir, dev, &e))
            ak_dief(e.code, "--encoder: %s", e.msg);
        ak_cli_model(ak_encoder_model(c->encoder));
    }
    if (c->query_regex) { /* a bad pattern is a usage error before any input is read */
        ak_err e = {0};
        uint8_t dummy = 0;
        if (ak_protect_regex((const uint8_t *)"", 0, NULL, 0, c->query_regex, &dummy, &e))
            ak_usage_error("--query-regex: %s", e.msg);
    }
    for (int k = 0; k < c->nregexes; k++) {
        ak_err e = {0};
        uint8_t dummy = 0;
        if (ak_protect_regex((const uint8_t *)"", 0, NULL, 0, c->regexes[k], &dummy, &e))
            ak_usage_error("--protect-regex: %s", e.msg);
    }
    int token_scores = !c->policy_set || ak_policy_scores_tokens(c->o.policy);
    if ((g->uscore || c->sinks) && !token_scores)
        ak_usage_error("--unit-score and --sinks go with the policies that score tokens (score, "
                       "mass, query, entropy, heavy, surprisal)");
    if (g->uscore && c->o.unit == AK_UNIT_TOKEN)
        ak_usage_error("--unit-score: a token is its own unit (--unit word, sentence or block)");
    if (c->keep_numbers && c->o.unit != AK_UNIT_WORD)
        ak_usage_error("--keep-numbers goes with --unit word");
    policy_option(c, g->heads != NULL, "--heads");
    policy_option(c, g->pbase != NULL, "--position-baseline");
}

/* The files and models the options name: --position-baseline, --heads,
 * --count-with's tokenizer and qppl's LM. */
static void load_inputs(ak_prune_doc_opts *c, const struct given *g, double **pbase,
                        int32_t **heads)
{
    if (g->pbase) {
        c->npos = read_baseline(g->pbase, pbase);
        c->pos_base = *pbase;
    }
    if (g->heads) {
        c->nheads = read_heads(g->heads, heads);
        c->heads = *heads;
    }
    if (g->count_with)
        c->count_with = load_counter(g->count_with);
    if (c->policy_set && c->o.policy == AK_POLICY_QPPL) {
        ak_err e = {0};
        if (ak_device_parse(ak_device_opt(g->device), &c->lm_dev, &e))
            ak_die(&e);
        c->lm = load_lm(g->lm, &c->lm_bos);
    }
}

int main(int argc, char *argv[])
{
    ak_cli_init("prune");
    const char *markers[MAXPAT], *regexes[MAXPAT];
    ak_prune_doc_opts c = {.o = {.policy = AK_POLICY_MASS, .unit = AK_UNIT_WORD, .keep_ratio = -1,
                                 .max_tokens = -1, .recent = -1, .seed = 1},
                           .markers = markers, .regexes = regexes,
                           .l0 = -1, .l1 = -1, .agg = AK_AGG_MEAN};
    struct ctx x = {0};
    const char *output = NULL;
    struct given g = {0};
    enum { O_QMARK = 256, O_QRE, O_RECENT, O_SEED, O_PMARK, O_NOQ, O_QROWS, O_ENC, O_LM,
           O_FINE, O_COARSE, O_USCORE, O_SINKS, O_HEADS, O_KNUM, O_PBASE };
    static const struct option lo[] = {
        {"keep", required_argument, 0, 'k'},           {"max-tokens", required_argument, 0, 'n'},
        {"policy", required_argument, 0, 'p'},         {"unit", required_argument, 0, 'u'},
        {"protect", required_argument, 0, 'P'},        {"protect-marker", required_argument, 0, O_PMARK},
        {"protect-regex", required_argument, 0, 'r'},  {"query-marker", required_argument, 0, O_QMARK},
        {"query-regex", required_argument, 0, O_QRE},  {"recent", required_argument, 0, O_RECENT},
        {"no-protect-query", no_argument, 0, O_NOQ},   {"count-with", required_argument, 0, 'c'},
        {"global", no_argument, 0, 'g'},               {"verbose", no_argument, 0, 'v'},
        {"seed", required_argument, 0, O_SEED},        {"layers", required_argument, 0, 'l'},
        {"agg", required_argument, 0, 'a'},            {"output", required_argument, 0, 'o'},
        {"query-rows", required_argument, 0, O_QROWS}, {"encoder", required_argument, 0, O_ENC},
        {"lm", required_argument, 0, O_LM},            {"fine", no_argument, 0, O_FINE},
        {"coarse", required_argument, 0, O_COARSE},    {"device", required_argument, 0, 'd'},
        {"unit-score", required_argument, 0, O_USCORE}, {"sinks", required_argument, 0, O_SINKS},
        {"heads", required_argument, 0, O_HEADS},    {"keep-numbers", no_argument, 0, O_KNUM},
        {"position-baseline", required_argument, 0, O_PBASE},
        {"help", no_argument, 0, 'h'},                 {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "k:n:p:u:P:m:r:c:gvl:a:d:o:h", lo, NULL)) != -1) {
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
                ak_usage_error("--unit: expected word, token, sentence or block, got '%s'",
                               optarg);
            break;
        case 'P': parse_protect(&c, optarg); break;
        case 'm': /* -m is the model in every program; prune has none */
            ak_usage_error("-m is the model elsewhere: use --lm for qppl's model, "
                           "--encoder for similarity's, --protect-marker for a marker, "
                           "--count-with for a tokenizer");
        case O_PMARK:
            if (c.nmarkers == MAXPAT)
                ak_usage_error("--protect-marker: at most %d", MAXPAT);
            if (!*optarg)
                ak_usage_error("--protect-marker: empty marker");
            markers[c.nmarkers++] = optarg;
            break;
        case 'r':
            if (c.nregexes == MAXPAT)
                ak_usage_error("--protect-regex: at most %d", MAXPAT);
            regexes[c.nregexes++] = optarg;
            break;
        case O_QMARK:
            if (!*optarg)
                ak_usage_error("--query-marker: empty marker");
            c.query_marker = optarg;
            break;
        case O_QRE: c.query_regex = optarg; break;
        case O_NOQ: c.no_query = 1; break;
        case O_QROWS:
            if (ak_query_rows_from_name(optarg, &c.query_rows))
                ak_usage_error("--query-rows: expected question, answer or both, got '%s'", optarg);
            break;
        case O_ENC: g.encoder = optarg; break;
        case 'c':
            if (!*optarg)
                ak_usage_error("--count-with: empty name (a model, a model directory or a "
                               "tokenizer.json)");
            g.count_with = optarg;
            break;
        case 'g': x.global = 1; break;
        case 'v': x.verbose = 1; break;
        case O_RECENT:
            c.o.recent = ak_parse_long("--recent", optarg, 0, 1L << 40);
            g.recent = 1;
            break;
        case O_SEED:
            c.o.seed = (uint64_t)ak_parse_long("--seed", optarg, 0, 1L << 62);
            g.seed = 1;
            break;
        case 'l':
            ak_parse_range("--layers", optarg, &c.l0, &c.l1);
            c.layers_set = 1;
            break;
        case 'a':
            if (strcmp(optarg, "mean") == 0) c.agg = AK_AGG_MEAN;
            else if (strcmp(optarg, "max") == 0) c.agg = AK_AGG_MAX;
            else ak_usage_error("--agg: expected mean or max, got '%s'", optarg);
            c.agg_set = 1;
            break;
        case O_USCORE:
            g.uscore = 1;
            if (strcmp(optarg, "mean") == 0) c.unit_agg = AK_UAGG_MEAN;
            else if (strcmp(optarg, "max") == 0) c.unit_agg = AK_UAGG_MAX;
            else if (strncmp(optarg, "top", 3) == 0 && optarg[3]) {
                c.unit_agg = AK_UAGG_TOP;
                c.unit_topk = (int)ak_parse_long("--unit-score top", optarg + 3, 1, 1 << 24);
            } else
                ak_usage_error("--unit-score: expected mean, max or topK, got '%s'", optarg);
            break;
        case O_SINKS: c.sinks = ak_parse_long("--sinks", optarg, 0, 1L << 40); break;
        case O_HEADS: g.heads = optarg; break;
        case O_KNUM: c.keep_numbers = 1; break;
        case O_PBASE: g.pbase = optarg; break;
        case O_LM: g.lm = optarg; break;
        case O_FINE: c.fine = 1; break;
        case O_COARSE:
            c.coarse = ak_parse_double("--coarse", optarg, 1, 1e6);
            g.coarse = 1;
            break;
        case 'd': g.device = optarg; break;
        case 'o': output = optarg; break;
        case 'h': usage(); return 0;
        default: ak_bad_option(argv);
        }
    }
    check_options(&c, &g);
    double *pbase = NULL;
    int32_t *heads = NULL;
    load_inputs(&c, &g, &pbase, &heads);
    x.c = c;
    ak_err err = {0};
    ak_filter_args fa = {.program = "prune", .argc = argc, .argv = argv,
                         .inputs = argv + optind, .ninputs = argc - optind, .output = output};
    ak_cli_filter_args(&fa);
    ak_filter_ops ops = {.header = on_header, .doc = on_doc};
    int rc = x.global ? run_global(&x, &fa, &err) : ak_filter_run(&fa, &ops, &x, &err);
    ak_tokenizer_free(x.c.count_with);
    ak_encoder_free(x.c.encoder);
    ak_model_free((ak_model *)x.c.lm);
    free(heads);
    free(pbase);
    if (rc)
        ak_die(&err);
    return 0;
}
