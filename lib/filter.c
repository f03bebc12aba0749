/* filter.c - read every input stream, let the program edit each record,
 * write the result.  See filter.h. */
#include "filter.h"
#include "io.h"

#include <string.h>

static int run_input(ak_reader *r, ak_writer *w, const ak_filter_args *a,
                     const ak_filter_ops *ops, void *ctx, ak_err *err)
{
    int rc = 0;
    for (;;) {
        ak_record rec;
        int got = ak_reader_next(r, &rec, err);
        if (got <= 0)
            return got;
        switch (rec.type) {
        case AK_REC_HEADER:
            if (ops->header)
                rc = ops->header(ctx, rec.header, err);
            if (!rc && w && !(rc = ak_header_add_stage(rec.header, a->program, a->argc, a->argv)))
                rc = ak_write_header(w, rec.header, err);
            else if (rc == AK_ENOMEM)
                ak_fail(err, rc, "out of memory");
            break;
        case AK_REC_DOC:
            rc = ops->doc ? ops->doc(ctx, rec.doc, err) : 0;
            if (rc == 0 && w)
                rc = ak_write_doc(w, rec.doc, err);
            else if (rc == 1)
                rc = 0;
            break;
        case AK_REC_END:
            if (w)
                rc = ak_write_end(w, -1, err);
            break;
        case AK_REC_OTHER:
            if (w)
                rc = ak_write_raw(w, rec.raw, rec.rawlen, err);
            break;
        }
        ak_record_free(&rec);
        if (rc)
            return rc;
    }
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
    else
        rc = ak_writer_open_fd(&w, out.fd, out.name, err);
    int n = a->ninputs > 0 ? a->ninputs : 1;
    for (int i = 0; i < n && !rc; i++) {
        ak_reader *r;
        rc = ak_reader_open_path(&r, a->ninputs > 0 ? a->inputs[i] : "-", err);
        if (rc)
            break;
        rc = run_input(r, w, a, ops, ctx, err);
        ak_reader_close(r);
    }
    if (!rc && ops->finish)
        rc = ops->finish(ctx, err);
    if (w) {
        ak_err werr;
        int wrc = ak_writer_close(w, &werr);
        if (!rc && wrc) {
            rc = wrc;
            *err = werr;
        }
    }
    if (rc)
        ak_output_abort(&out);
    else
        rc = ak_output_commit(&out, err);
    return rc;
}
