/* filter.h - the read-modify-write loop shared by stream filters.
 *
 * Reads every input stream in order, calls the hooks, passes through what
 * they do not touch, appends this program to the header's history and
 * writes the result to stdout or the output file (see ak_output in io.h).
 * Unknown records are passed through unchanged.
 *
 * ak_filter_records is the loop underneath, for programs that read streams
 * without writing one (peek, report, score) or hold every record first
 * (prune --global): one call per record, in order.
 */
#ifndef AK_FILTER_H
#define AK_FILTER_H

#include "io.h"
#include "stream.h"

typedef struct ak_filter_ops {
    /* Called for each header before the program's stage is appended; may
     * check the model identity or edit the header.  Optional. */
    int (*header)(void *ctx, ak_header *h, ak_err *err);
    /* Called for each document; edits it in place.  Return 0 to write it,
     * 1 to drop it, or an AK_E* code.  Optional. */
    int (*doc)(void *ctx, ak_doc *d, ak_err *err);
    /* Called once after the last input.  Optional. */
    int (*finish)(void *ctx, ak_err *err);
    /* 0: write a stream to output; 1: the program prints something else
     * itself (a table, text) with stdio to stdout, which is then the
     * output (ak_output_use_stdout), and no stream is written. */
    int no_stream_output;
} ak_filter_ops;

typedef struct ak_filter_args {
    const char *program;    /* for history */
    int argc;               /* for history: the program's whole argv */
    char *const *argv;
    char *const *inputs;    /* input paths; none = stdin; "-" = stdin */
    int ninputs;
    const char *output;     /* NULL or "-" = stdout, else the file (io.h) */
    size_t max_record;      /* the readers' largest record (ak_reader_set_limit); 0: the default */
    int compress;           /* the writer's zlib level (ak_writer_set_compress); 0: none */
} ak_filter_args;

/* Called for each record of a stream.  The record is freed when it returns;
 * to keep a part, take it and leave NULL (or a zeroed record) behind.
 * Return 0 to go on, or an AK_E* code to stop. */
typedef int (*ak_record_fn)(void *ctx, ak_record *rec, ak_err *err);

/* Reads r to its end, calling fn for each record.  0 at the end of the
 * stream, else the reader's error or what fn returned. */
AK_API int ak_filter_records(ak_reader *r, ak_record_fn fn, void *ctx, ak_err *err);
/* Opens path ("-": standard input), reads it to its end as
 * ak_filter_records does, and closes it.  max_record: the reader's largest
 * record (ak_reader_set_limit); 0: the default. */
AK_API int ak_filter_path(const char *path, size_t max_record, ak_record_fn fn, void *ctx,
                          ak_err *err);
/* The end of a filter's output: closes w (NULL: none), then commits out
 * when rc is 0 and the close succeeded, else removes what was written.
 * Returns rc, else the close's or the commit's error. */
AK_API int ak_filter_finish(ak_output *out, ak_writer *w, int rc, ak_err *err);

AK_API int ak_filter_run(const ak_filter_args *args, const ak_filter_ops *ops,
                         void *ctx, ak_err *err);

#endif
