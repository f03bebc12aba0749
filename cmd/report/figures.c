/* figures.c - report's figures: the tinted text and the layer x head grid
 * as SVG or PNG (an encoder of its own over zlib), one file per document
 * (--svg DIR, --png DIR). */
#include "report.h"

#include "attnkit/io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* The colour of x in [0, 1] over white: orange for where the attention
 * goes, blue for entropies (as on the page). */
static void tint_rgb(double x, enum statistic st, unsigned char rgb[3])
{
    static const unsigned char orange[3] = {230, 85, 13}, blue[3] = {33, 113, 181};
    const unsigned char *c = st == ST_ENTROPY || st == ST_NORM ? blue : orange;
    double a = (x < 0 ? 0 : x > 1 ? 1 : x) * 0.85;
    for (int k = 0; k < 3; k++)
        rgb[k] = (unsigned char)lround(255.0 + (c[k] - 255.0) * a);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The page's scale: mass-like statistics from 0 to their 99th percentile
 * (a sink would wash out the rest), entropies over their range. */
static int value_range(const float *x, int64_t n, enum statistic st, double *lo, double *hi)
{
    float *c = malloc(sizeof *c * ((size_t)n + 1));
    if (!c)
        return -1;
    memcpy(c, x, sizeof *c * (size_t)n);
    qsort(c, (size_t)n, sizeof *c, cmp_float);
    int ent = st == ST_ENTROPY || st == ST_NORM;
    *lo = n && ent ? c[0] : 0;
    *hi = !n ? 1 : ent ? c[n - 1] : c[(int64_t)floor(0.99 * (double)(n - 1))];
    if (!(*hi > *lo))
        *hi = *lo + 1;
    free(c);
    return 0;
}

/* The text laid out in a fixed grid of character cells, as a monospace
 * font shows it: a new line at '\n' and after COLS characters. */
#define COLS 100
typedef struct cell {
    int32_t line, col, tok; /* tok -1: text between tokens */
    unsigned char dropped;
    char ch[5];             /* UTF-8 of the character ("" for a space) */
} cell;

typedef struct layout {
    cell *c;
    size_t n, cap;
    int32_t lines;
    int64_t next_drop; /* the first dropped span not yet passed */
} layout;

static int lay_push(layout *lo, int32_t *line, int32_t *col, int32_t tok, int dropped,
                    const char *ch, size_t chlen)
{
    if (*col >= COLS) {
        /* wrap at the last space of the line when the word is short */
        size_t k = lo->n;
        while (k > 0 && lo->c[k - 1].line == *line && lo->c[k - 1].ch[0] && lo->n - k < 30)
            k--;
        int at_space = k > 0 && lo->c[k - 1].line == *line && !lo->c[k - 1].ch[0];
        (*line)++;
        *col = 0;
        if (chlen && at_space)
            for (; k < lo->n; k++) {
                lo->c[k].line = *line;
                lo->c[k].col = (*col)++;
            }
    }
    if (ak_grow((void **)&lo->c, &lo->cap, lo->n + 1, sizeof *lo->c))
        return -1;
    cell *c = &lo->c[lo->n++];
    c->line = *line;
    c->col = (*col)++;
    c->tok = tok;
    c->dropped = (unsigned char)dropped;
    memcpy(c->ch, ch, chlen);
    c->ch[chlen] = 0;
    lo->lines = *line + 1;
    return 0;
}

/* Whether a byte is in a dropped span; bytes come in increasing order, so
 * the spans (sorted) are walked once. */
static int in_dropped(const view *v, layout *lo, int64_t byte)
{
    if (!v->dropped)
        return 0;
    const int64_t *d = ak_tensor_i64(v->dropped);
    int64_t n = v->dropped->shape[0];
    while (lo->next_drop < n && d[2 * lo->next_drop + 1] <= byte)
        lo->next_drop++;
    return lo->next_drop < n && d[2 * lo->next_drop] <= byte;
}

/* Bytes s..e of the text as cells. */
static int lay_text(layout *lo, const view *v, int64_t s, int64_t e, int32_t tok, int tok_dropped,
                    int32_t *line, int32_t *col)
{
    const unsigned char *t = v->text->data;
    for (int64_t i = s; i < e;) {
        int k = t[i] ? utf8_seq(t + i, (size_t)(e - i)) : 1;
        int dropped = tok >= 0 ? tok_dropped : in_dropped(v, lo, i);
        if (k == 0) {
            if (lay_push(lo, line, col, tok, dropped, "\xef\xbf\xbd", 3))
                return -1;
            i++;
            continue;
        }
        if (t[i] == '\n') {
            (*line)++;
            *col = 0;
            lo->lines = *line + 1;
        } else if (k == 1 && (t[i] < 0x20 || t[i] == 0x7f || t[i] == ' ')) {
            if (lay_push(lo, line, col, tok, dropped, "", 0))
                return -1;
        } else if (lay_push(lo, line, col, tok, dropped, (const char *)t + i, (size_t)k)) {
            return -1;
        }
        i += k;
    }
    return 0;
}

static int lay_out(const view *v, layout *lo)
{
    memset(lo, 0, sizeof *lo);
    const int64_t *off = ak_tensor_i64(v->offsets);
    const uint8_t *keep = v->keep && v->keep->shape[0] == v->T ? ak_tensor_u8(v->keep) : NULL;
    int32_t line = 0, col = 0;
    int64_t pos = 0;
    for (int64_t i = 0; i < v->T; i++) {
        int64_t s = off[2 * i] > pos ? off[2 * i] : pos, e = off[2 * i + 1] > s ? off[2 * i + 1] : s;
        if (s > pos && lay_text(lo, v, pos, s, -1, 0, &line, &col))
            return -1;
        int dropped = keep ? !keep[i] : in_dropped(v, lo, s);
        if (e == s) { /* a special token: one cell, a bullet */
            if (lay_push(lo, &line, &col, (int32_t)i, dropped, "\xe2\x80\xa2", 3))
                return -1;
        } else if (lay_text(lo, v, s, e, (int32_t)i, dropped, &line, &col)) {
            return -1;
        }
        pos = e;
    }
    if ((size_t)pos < v->text->nbytes &&
        lay_text(lo, v, pos, (int64_t)v->text->nbytes, -1, 0, &line, &col))
        return -1;
    return 0;
}

static void sb_rgb(ak_buf *b, const unsigned char rgb[3])
{
    ak_buf_printf(b, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static void selection_label(ak_buf *b, const view *v, const struct opts *o, enum statistic st)
{
    ak_buf_printf(b, "%s", stat_titles[st]);
    if (st != ST_SCORE) {
        if (o->layer >= 0) ak_buf_printf(b, ", layer %ld", o->layer);
        else ak_buf_puts(b, ", mean of all layers");
        if (o->head >= 0) ak_buf_printf(b, ", head %ld", o->head);
        else ak_buf_puts(b, ", mean of all heads");
    }
    ak_buf_puts(b, " - ");
    sb_escape(b, v->id, strlen(v->id));
}

#define SVG_CW 7.2  /* a 12px monospace character */
#define SVG_LH 18.0
#define SVG_TOP 40.0

static void svg_tokens(ak_buf *b, const view *v, const struct opts *o, enum statistic st,
                       const layout *lo, const float *val, double vlo, double vhi)
{
    double w = 2 * 12 + COLS * SVG_CW, h = SVG_TOP + lo->lines * SVG_LH + 12;
    ak_buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http:/"
                 "/www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "font-family=\"DejaVu Sans Mono, monospace\" font-size=\"12\">\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
                 "<text x=\"12\" y=\"18\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"13\">",
              w, h, w, h);
    selection_label(b, v, o, st);
    ak_buf_printf(b, "</text>\n<text x=\"12\" y=\"32\" font-size=\"10\" fill=\"#555\">%.4g", vlo);
    unsigned char c0[3], c1[3];
    tint_rgb(0, st, c0);
    tint_rgb(1, st, c1);
    ak_buf_puts(b, "</text>\n<defs><linearGradient id=\"g\"><stop offset=\"0\" stop-color=\"");
    sb_rgb(b, c0);
    ak_buf_puts(b, "\"/><stop offset=\"1\" stop-color=\"");
    sb_rgb(b, c1);
    ak_buf_printf(b, "\"/></linearGradient></defs>\n<rect x=\"70\" y=\"24\" width=\"120\" height=\"9\" "
                 "fill=\"url(#g)\" stroke=\"#ccc\"/>\n<text x=\"196\" y=\"32\" font-size=\"10\" "
                 "fill=\"#555\">%.4g+</text>\n",
              vhi);
    /* per line: tinted rectangles for runs of one token, struck lines for
     * dropped runs, then the characters as one text of fixed length */
    size_t k = 0;
    while (k < lo->n) {
        int32_t line = lo->c[k].line;
        size_t e = k;
        while (e < lo->n && lo->c[e].line == line)
            e++;
        double y = SVG_TOP + line * SVG_LH;
        for (size_t r = k; r < e;) {
            size_t q = r;
            while (q < e && lo->c[q].tok == lo->c[r].tok && lo->c[q].col == lo->c[r].col + (int32_t)(q - r))
                q++;
            double x = 12 + lo->c[r].col * SVG_CW, cw = (double)(q - r) * SVG_CW;
            if (lo->c[r].tok >= 0 && val) {
                unsigned char rgb[3];
                tint_rgb((val[lo->c[r].tok] - vlo) / (vhi - vlo), st, rgb);
                ak_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"",
                          x, y, cw, SVG_LH - 2);
                sb_rgb(b, rgb);
                ak_buf_printf(b, "\"><title>token %d: %.4g</title></rect>\n", lo->c[r].tok,
                          val[lo->c[r].tok]);
            }
            r = q;
        }
        for (size_t r = k; r < e;) {
            if (!lo->c[r].dropped) {
                r++;
                continue;
            }
            size_t q = r;
            while (q < e && lo->c[q].dropped)
                q++;
            ak_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#b00\"/>\n",
                      12 + lo->c[r].col * SVG_CW, 12 + (lo->c[q - 1].col + 1) * SVG_CW,
                      y + SVG_LH / 2, y + SVG_LH / 2);
            r = q;
        }
        int32_t ncol = lo->c[e - 1].col + 1;
        ak_buf_printf(b, "<text x=\"12\" y=\"%.1f\" xml:space=\"preserve\" textLength=\"%.1f\" "
                     "lengthAdjust=\"spacing\">", y + 12.5, ncol * SVG_CW);
        int32_t col = 0;
        for (size_t r = k; r < e; r++) {
            for (; col < lo->c[r].col; col++)
                ak_buf_puts(b, " ");
            sb_escape(b, lo->c[r].ch[0] ? lo->c[r].ch : " ", lo->c[r].ch[0] ? strlen(lo->c[r].ch) : 1);
            col++;
        }
        ak_buf_puts(b, "</text>\n");
        k = e;
    }
    ak_buf_puts(b, "</svg>\n");
}

static void svg_heads(ak_buf *b, const view *v, const ak_head_summary *hs)
{
    int64_t L = v->s.L, H = v->s.H;
    double cw = 32, ch = 22, x0 = 40, y0 = 50;
    double w = x0 + H * cw + 20, h = y0 + L * ch + 30;
    if (w < 560)
        w = 560;
    ak_buf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http:/"
                 "/www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "font-family=\"DejaVu Sans, sans-serif\" font-size=\"10\">\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
                 "<text x=\"10\" y=\"18\" font-size=\"13\">mean normalised entropy per head - ",
              w, h, w, h);
    sb_escape(b, v->id, strlen(v->id));
    ak_buf_puts(b, "</text>\n<text x=\"10\" y=\"32\" fill=\"#555\">rows: layers, columns: heads; "
               "black frame: sink (more than half the attention on the first token)</text>\n");
    for (int64_t hh = 0; hh < H; hh++)
        ak_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%lld</text>\n",
                  x0 + hh * cw + cw / 2, y0 - 4, (long long)hh);
    for (int64_t l = 0; l < L; l++) {
        ak_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%lld</text>\n", x0 - 6,
                  y0 + l * ch + ch / 2 + 4, (long long)l);
        for (int64_t hh = 0; hh < H; hh++) {
            const ak_head_summary *s = &hs[l * H + hh];
            double a = 0.1 + 0.9 * (s->norm_entropy < 0 ? 0 : s->norm_entropy > 1 ? 1 : s->norm_entropy);
            unsigned char rgb[3] = {(unsigned char)lround(255 + (33 - 255) * a),
                                    (unsigned char)lround(255 + (113 - 255) * a),
                                    (unsigned char)lround(255 + (181 - 255) * a)};
            double x = x0 + hh * cw, y = y0 + l * ch;
            ak_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"", x, y,
                      cw - 2, ch - 2);
            sb_rgb(b, rgb);
            ak_buf_printf(b, "\"%s><title>layer %lld head %lld: %.3f, first-token share %.3f</title></rect>\n",
                      s->sink ? " stroke=\"#000\" stroke-width=\"2\"" : "", (long long)l,
                      (long long)hh, s->norm_entropy, s->sink_share);
            ak_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\"%s>%.2f</text>\n",
                      x + (cw - 2) / 2, y + ch / 2 + 3, a > 0.6 ? "#fff" : "#000",
                      s->sink ? " font-weight=\"bold\"" : "", s->norm_entropy);
        }
    }
    ak_buf_puts(b, "</svg>\n");
}

/* ---- PNG: RGB, 8 bits, filter 0 rows, zlib's deflate ---- */

static void png_chunk(ak_buf *b, const char *type, const unsigned char *data, size_t n)
{
    unsigned char hdr[8] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n,
                            (unsigned char)type[0], (unsigned char)type[1],
                            (unsigned char)type[2], (unsigned char)type[3]};
    ak_buf_put(b, hdr, 8);
    if (n)
        ak_buf_put(b, data, n);
    uLong crc = crc32(0L, hdr + 4, 4);
    if (n)
        crc = crc32(crc, data, (uInt)n);
    unsigned char c[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                          (unsigned char)(crc >> 8), (unsigned char)crc};
    ak_buf_put(b, c, 4);
}

typedef struct image {
    int w, h;
    unsigned char *rgb;
} image;

static int img_new(image *im, int w, int h)
{
    im->w = w;
    im->h = h;
    im->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!im->rgb)
        return -1;
    memset(im->rgb, 255, (size_t)w * (size_t)h * 3);
    return 0;
}

static void img_rect(image *im, int x, int y, int w, int h, const unsigned char rgb[3])
{
    for (int yy = y < 0 ? 0 : y; yy < y + h && yy < im->h; yy++)
        for (int xx = x < 0 ? 0 : x; xx < x + w && xx < im->w; xx++)
            memcpy(im->rgb + ((size_t)yy * (size_t)im->w + (size_t)xx) * 3, rgb, 3);
}

static int png_encode(ak_buf *b, const image *im, ak_err *err)
{
    size_t row = (size_t)im->w * 3 + 1, raw_n = row * (size_t)im->h;
    unsigned char *raw = malloc(raw_n);
    uLongf zn = compressBound((uLong)raw_n);
    unsigned char *z = malloc(zn);
    if (!raw || !z) {
        free(raw);
        free(z);
        return ak_fail(err, AK_ENOMEM, "out of memory for a %dx%d image", im->w, im->h);
    }
    for (int y = 0; y < im->h; y++) {
        raw[row * (size_t)y] = 0;
        memcpy(raw + row * (size_t)y + 1, im->rgb + (size_t)y * (size_t)im->w * 3, row - 1);
    }
    int zrc = compress2(z, &zn, raw, (uLong)raw_n, 9);
    free(raw);
    if (zrc != Z_OK) {
        free(z);
        return ak_fail(err, AK_EINTERNAL, "zlib compress2 failed (%d)", zrc);
    }
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[13] = {(unsigned char)(im->w >> 24), (unsigned char)(im->w >> 16),
                              (unsigned char)(im->w >> 8), (unsigned char)im->w,
                              (unsigned char)(im->h >> 24), (unsigned char)(im->h >> 16),
                              (unsigned char)(im->h >> 8), (unsigned char)im->h,
                              8, 2, 0, 0, 0};
    ak_buf_put(b, sig, 8);
    png_chunk(b, "IHDR", ihdr, 13);
    png_chunk(b, "IDAT", z, zn);
    png_chunk(b, "IEND", NULL, 0);
    free(z);
    return 0;
}

/* The token heatmap as a minimap: each character a 4x8 cell in its
 * token's colour, a dark mark where it is not a space, a red line through
 * dropped text.  No font is drawn (the SVG has the text). */
static int png_tokens(ak_buf *b, const layout *lo, const float *val, double vlo, double vhi,
                      enum statistic st, ak_err *err)
{
    const int cw = 4, chh = 8, m = 8;
    image im;
    int h = m * 2 + (lo->lines ? lo->lines : 1) * chh;
    if (lo->lines > 200000 || img_new(&im, m * 2 + COLS * cw, h))
        return ak_fail(err, AK_ENOMEM, "out of memory for the token image");
    static const unsigned char ink[3] = {110, 110, 110}, red[3] = {187, 0, 0};
    for (size_t k = 0; k < lo->n; k++) {
        const cell *c = &lo->c[k];
        int x = m + c->col * cw, y = m + c->line * chh;
        if (c->tok >= 0 && val) {
            unsigned char rgb[3];
            tint_rgb((val[c->tok] - vlo) / (vhi - vlo), st, rgb);
            img_rect(&im, x, y, cw, chh - 1, rgb);
        }
        if (c->ch[0])
            img_rect(&im, x + 1, y + 3, cw - 2, chh - 5, ink);
        if (c->dropped)
            img_rect(&im, x, y + chh / 2 - 1, cw, 1, red);
    }
    int rc = png_encode(b, &im, err);
    free(im.rgb);
    return rc;
}

static int png_heads(ak_buf *b, const view *v, const ak_head_summary *hs, ak_err *err)
{
    const int c = 24, g = 2, m = 8;
    image im;
    if (img_new(&im, m * 2 + (int)v->s.H * c, m * 2 + (int)v->s.L * c))
        return ak_fail(err, AK_ENOMEM, "out of memory for the head image");
    static const unsigned char black[3] = {0, 0, 0};
    for (int64_t l = 0; l < v->s.L; l++)
        for (int64_t hh = 0; hh < v->s.H; hh++) {
            const ak_head_summary *s = &hs[l * v->s.H + hh];
            double a = 0.1 + 0.9 * (s->norm_entropy < 0 ? 0 : s->norm_entropy > 1 ? 1 : s->norm_entropy);
            unsigned char rgb[3] = {(unsigned char)lround(255 + (33 - 255) * a),
                                    (unsigned char)lround(255 + (113 - 255) * a),
                                    (unsigned char)lround(255 + (181 - 255) * a)};
            int x = m + (int)hh * c, y = m + (int)l * c;
            if (s->sink)
                img_rect(&im, x, y, c - g, c - g, black);
            img_rect(&im, x + (s->sink ? 3 : 0), y + (s->sink ? 3 : 0), c - g - (s->sink ? 6 : 0),
                     c - g - (s->sink ? 6 : 0), rgb);
        }
    int rc = png_encode(b, &im, err);
    free(im.rgb);
    return rc;
}

/* ---- writing ---- */

static int write_file(const char *path, const ak_buf *b, char *const *inputs, int ninputs,
                      ak_err *err)
{
    if (b->oom)
        return ak_fail(err, AK_ENOMEM, "out of memory writing %s", path);
    ak_output o;
    int rc = ak_output_open(&o, path, inputs, ninputs, err);
    if (rc)
        return rc;
    if (ak_write_full(o.fd, b->data, b->len) != 0) {
        rc = ak_write_error(err, o.name);
        ak_output_abort(&o);
        return rc;
    }
    return ak_output_commit(&o, err);
}

/* DIR/N-ID.KIND.EXT, the id reduced to [A-Za-z0-9._-]. */
static char *figure_path(const char *dir, size_t n, const char *id, const char *kind,
                         const char *ext)
{
    ak_buf b = {0};
    ak_buf_printf(&b, "%s/%zu-", dir, n + 1);
    size_t start = b.len;
    for (const char *p = id; *p && b.len - start < 80; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_';
        ak_buf_put(&b, ok ? &c : "_", 1);
    }
    ak_buf_printf(&b, ".%s.%s", kind, ext);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

static int make_dir(const char *dir, ak_err *err)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : ak_fail(err, AK_ECANTCREAT, "%s: not a directory", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ak_fail(err, AK_ECANTCREAT, "%s: cannot create directory: %s", dir, strerror(errno));
    return 0;
}

int write_figures(view *vs, size_t nv, const struct opts *o, char *const *inputs, int ninputs,
                  ak_err *err)
{
    const char *dirs[2] = {o->svg_dir, o->png_dir};
    int rc = 0;
    for (int kind = 0; kind < 2 && !rc; kind++) {
        if (!dirs[kind])
            continue;
        if ((rc = make_dir(dirs[kind], err)))
            return rc;
        for (size_t n = 0; n < nv && !rc; n++) {
            view *v = &vs[n];
            if ((rc = synth_text(v, err)))
                return rc;
            enum statistic st = o->stat;
            if (st != ST_SCORE && !v->s.L && v->score)
                st = ST_SCORE; /* after prune alone only the scores are left */
            if (st == ST_SCORE && !v->score && v->s.L)
                st = ST_CORRECTED; /* before entropy: no scores yet */
            const char *why;
            float *val = token_values(v, o, st, err, &why);
            if (!val && !why)
                return err->code;
            double lo = 0, hi = 1;
            if (val && value_range(val, v->T, st, &lo, &hi)) {
                free(val);
                return ak_fail(err, AK_ENOMEM, "out of memory");
            }
            layout lay;
            ak_buf b = {0};
            char *path = figure_path(dirs[kind], n, v->id, "tokens", kind ? "png" : "svg");
            if (!path || lay_out(v, &lay)) {
                free(path);
                free(lay.c);
                free(val);
                return ak_fail(err, AK_ENOMEM, "out of memory");
            }
            if (kind)
                rc = png_tokens(&b, &lay, val, lo, hi, st, err);
            else
                svg_tokens(&b, v, o, st, &lay, val, lo, hi);
            if (!rc)
                rc = write_file(path, &b, inputs, ninputs, err);
            free(path);
            free(lay.c);
            free(val);
            free(b.data);
            if (rc || !v->s.L)
                continue;
            ak_head_summary *hs = malloc(sizeof *hs * (size_t)(v->s.L * v->s.H));
            if (!hs)
                return ak_fail(err, AK_ENOMEM, "out of memory");
            memset(&b, 0, sizeof b);
            path = figure_path(dirs[kind], n, v->id, "heads", kind ? "png" : "svg");
            rc = !path ? ak_fail(err, AK_ENOMEM, "out of memory") : ak_head_summaries(&v->s, hs, err);
            if (!rc) {
                if (kind)
                    rc = png_heads(&b, v, hs, err);
                else
                    svg_heads(&b, v, hs);
            }
            if (!rc)
                rc = write_file(path, &b, inputs, ninputs, err);
            free(hs);
            free(path);
            free(b.data);
        }
    }
    return rc;
}
