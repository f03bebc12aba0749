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
           "Exit status: 0 ok, 64 usage, 65 bad stream, 66 cannot open, 73 cannot create\n"
           "the output, 74 I/O error.\n");
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

static int on_doc(void *c, ak_doc *d, ak_err *err) { return ak_prune_doc(d, c, err); }

int main(int argc, char *argv[])
{
    ak_cli_init("prune");
    const char *markers[MAXPAT], *regexes[MAXPAT];
    ak_prune_doc_opts c = {.o = {.policy = AK_POLICY_MASS, .unit = AK_UNIT_TOKEN, .keep_ratio = -1,
                                 .max_tokens = -1, .recent = -1, .seed = 1},
                           .markers = markers, .regexes = regexes,
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
