/* filter.c - read every input stream, let the program edit each record,
 * write the result.  See filter.h. */
#include "attnkit/filter.h"
#include "attnkit/io.h"

#include <string.h>

int ak_filter_records(ak_reader *r, ak_record_fn fn, void *ctx, ak_err *err)
{
    for (;;) {
        ak_record rec;
        int got = ak_reader_next(r, &rec, err);
        if (got <= 0)
            return got;
        int rc = fn(ctx, &rec, err);
        ak_record_free(&rec);
        if (rc)
            return rc;
    }
}

/* What ak_filter_run does with each record. */
struct run_state {
    ak_writer *w;
    const ak_filter_args *a;
    const ak_filter_ops *ops;
    void *ctx;
};

static int filter_record(void *vs, ak_record *rec, ak_err *err)
{
    struct run_state *s = vs;
    ak_writer *w = s->w;
    int rc = 0;
    switch (rec->type) {
    case AK_REC_HEADER:
        if (s->ops->header)
            rc = s->ops->header(s->ctx, rec->header, err);
        if (!rc && w && !(rc = ak_header_add_stage(rec->header, s->a->program, s->a->argc, s->a->argv)))
            rc = ak_write_header(w, rec->header, err);
        else if (rc == AK_ENOMEM)
            ak_fail(err, rc, "out of memory");
        break;
    case AK_REC_DOC:
        rc = s->ops->doc ? s->ops->doc(s->ctx, rec->doc, err) : 0;
        if (rc == 0 && w)
            rc = ak_write_doc(w, rec->doc, err);
        else if (rc == 1)
            rc = 0;
        break;
    case AK_REC_END:
        if (w)
            rc = ak_write_end(w, -1, err);
        break;
    case AK_REC_OTHER:
        if (w)
            rc = ak_write_raw(w, rec->raw, rec->rawlen, err);
        break;
    }
    return rc;
}

int ak_filter_run(const ak_filter_args *a, const ak_filter_ops *ops, void *ctx, ak_err *err)
{
    ak_output out;
    ak_writer *w = NULL;
    int rc = ak_output_open(&out, a->output, a->inputs, a->ninputs, err);
    if (rc)
        return rc;
    if (ops->no_stream_output)
        rc = ak_output_use_stdout(&out, err);
    else if (!(rc = ak_writer_open_fd(&w, out.fd, out.name, err)))
        ak_writer_set_compress(w, a->compress);
    struct run_state st = {w, a, ops, ctx};
    int n = a->ninputs > 0 ? a->ninputs : 1;
    for (int i = 0; i < n && !rc; i++)
        rc = ak_filter_path(a->ninputs > 0 ? a->inputs[i] : "-", a->max_record, filter_record, &st, err);
    if (!rc && ops->finish)
        rc = ops->finish(ctx, err);
    return ak_filter_finish(&out, w, rc, err);
}

int ak_filter_path(const char *path, size_t max_record, ak_record_fn fn, void *ctx, ak_err *err)
{
    ak_reader *r;
    int rc = ak_reader_open_path(&r, path, err);
    if (rc)
        return rc;
    if (max_record)
        ak_reader_set_limit(r, max_record);
    rc = ak_filter_records(r, fn, ctx, err);
    ak_reader_close(r);
    return rc;
}

int ak_filter_finish(ak_output *out, ak_writer *w, int rc, ak_err *err)
{
    if (w) {
        ak_err werr;
        int wrc = ak_writer_close(w, &werr);
        if (!rc && wrc) {
            rc = wrc;
            *err = werr;
        }
    }
    if (rc)
        ak_output_abort(out);
    else
        rc = ak_output_commit(out, err);
    return rc;
}
