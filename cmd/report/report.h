/* report.h - what the two halves of the report program share: report.c
 * (the page: reading, merging, the page's data) and figures.c (SVG and PNG
 * figures). */
#ifndef AK_REPORT_H
#define AK_REPORT_H

#include "core/buf.h"
#include "attnkit/metrics.h"
#include "attnkit/stream.h"

#include <stddef.h>
#include <stdint.h>

/* ---- what one document contributes to the page ---- */

typedef struct probs_layer {
    long layer;
    ak_tensor *p, *heads; /* attn.probs.<l> [h,T,T], its .heads (or NULL: 0..h-1) */
} probs_layer;

/* A later pruning of the same document, shown beside the first */
typedef struct pruning {
    char *name;                          /* "policy, unit, kept of total" */
    ak_tensor *keep, *dropped, *dropped_score;
} pruning;

typedef struct view {
    char *id;
    ak_tensor *text, *tokens, *offsets, *segments, *special;
    ak_tensor *entropy, *mass, *visible; /* attend's statistics */
    ak_attn_stats s;                     /* points into them; s.L == 0: none */
    ak_tensor *score, *score_block, *keep, *dropped, *dropped_score;
    char *pname;                         /* the pruning of keep / dropped (NULL: none) */
    pruning *extra;                      /* more prunings of this document */
    size_t nextra;
    ak_tensor *mass_last, *mass_gen;     /* [L, H, T]: the question's and the answer's rows */
    double mass_last_rows, mass_gen_rows;
    probs_layer *probs;
    size_t nprobs;
    int64_t T;
} view;

/* ---- options and the figures' statistic ---- */

enum statistic { ST_CORRECTED, ST_MASS, ST_ENTROPY, ST_NORM, ST_SCORE };
/* each statistic's option name and title (report.c) */
extern const char *const stat_names[], *const stat_titles[];

struct opts {
    const char *svg_dir, *png_dir;
    enum statistic stat;
    long layer, head;   /* -1: all (mean) */
    long max_probs;
};

/* HTML/XML text: & < > " escaped, the C0 controls XML cannot hold as U+FFFD. */
void sb_escape(ak_buf *b, const char *s, size_t n);
/* Length of the UTF-8 character at s, 0 if not UTF-8. */
int utf8_seq(const unsigned char *s, size_t n);
/* Token values of statistic st for the chosen layer and head; NULL with
 * *why set when the document lacks it, NULL with *why NULL on an error. */
float *token_values(const view *v, const struct opts *o, enum statistic st, ak_err *err,
                    const char **why);
/* Without text (tokenize --from-ids): the token ids, one after another. */
int synth_text(view *v, ak_err *err);

/* figures.c: the figures of every document into o->svg_dir, o->png_dir. */
int write_figures(view *vs, size_t nv, const struct opts *o, char *const *inputs, int ninputs,
                  ak_err *err);

#endif
