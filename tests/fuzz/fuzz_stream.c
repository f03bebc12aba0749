/* libFuzzer target: the stream reader over arbitrary bytes, with a small
 * record limit so that size checks are exercised, not the machine's memory.
 * Every record read is also written back and read again; a document's
 * `text` goes through what its readers do with it (use_text). */
#include "attnkit/prune.h"
#include "attnkit/stream.h"
#include "attnkit/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the readers of `text` do with it: protect-regex matching over the
 * offsets, and prune --count-with's encoding (the tokenizer of
 * $ATTNKIT_MODEL, which tests/run.sh sets, loaded once). */
static void use_text(const ak_doc *d)
{
    static ak_tokenizer *tk;
    static int tried;
    ak_err err;
    if (!tried) {
        tried = 1;
        const char *m = getenv("ATTNKIT_MODEL");
        if (m && ak_tokenizer_load(&tk, m, &err))
            tk = NULL;
    }
    const ak_tensor *tx = ak_doc_get(d, "text"), *off = ak_doc_get(d, "offsets");
    if (!tx || tx->dtype != AK_U8)
        return;
    if (off && off->dtype == AK_I64 && off->ndim == 2 && off->shape[1] == 2) {
        int64_t T = off->shape[0];
        uint8_t *mark = calloc((size_t)T + 1, 1);
        if (mark)
            ak_protect_regex(tx->data, tx->nbytes, off->data, T, "[0-9]+ (days|ans)", mark, &err);
        free(mark);
    }
    if (tk) {
        ak_encoding enc = {0};
        ak_tokenizer_encode(tk, tx->data, tx->nbytes < 2048 ? tx->nbytes : 2048, 0, &enc, &err);
        ak_encoding_free(&enc);
    }
}

static int read_all(int fd, int writeback_fd)
{
    ak_reader *r;
    ak_writer *w = NULL;
    ak_err err;
    if (ak_reader_open_fd(&r, fd, "fuzz", &err))
        return 0;
    ak_reader_set_limit(r, 1 << 20);
    if (writeback_fd >= 0)
        ak_writer_open_fd(&w, writeback_fd, "copy", &err);
    ak_record rec;
    while (ak_reader_next(r, &rec, &err) == 1) {
        if (rec.type == AK_REC_DOC && writeback_fd >= 0)
            use_text(rec.doc);
        if (w) {
            if (rec.type == AK_REC_HEADER) ak_write_header(w, rec.header, &err);
            else if (rec.type == AK_REC_DOC) ak_write_doc(w, rec.doc, &err);
            else if (rec.type == AK_REC_END) ak_write_end(w, -1, &err);
            else ak_write_raw(w, rec.raw, rec.rawlen, &err);
        }
        ak_record_free(&rec);
    }
    ak_writer_close(w, &err);
    ak_reader_close(r);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Feed through a pipe-like file so the reader's incremental framing is
     * what gets tested. */
    FILE *in = tmpfile(), *copy = tmpfile();
    if (!in || !copy) {
        if (in) fclose(in);
        if (copy) fclose(copy);
        return 0;
    }
    if (size)
        fwrite(data, 1, size, in);
    fflush(in);
    rewind(in);
    read_all(fileno(in), fileno(copy));
    lseek(fileno(copy), 0, SEEK_SET);
    read_all(fileno(copy), -1);
    fclose(in);
    fclose(copy);
    return 0;
}
