/* stream.h - reading and writing attnkit tensor streams (formats/tensor-stream.md).
 *
 * A stream is a sequence of MessagePack maps: a header, documents, an end
 * record; streams can be concatenated.  The reader holds one record at a
 * time and validates every length before allocating.
 *
 * Typical filter (see filter.h for the helper that does all of this):
 *
 *   ak_reader *r; ak_writer *w;
 *   ak_reader_open_fd(&r, 0, "<stdin>", &err);
 *   ak_writer_open_fd(&w, 1, "<stdout>", &err);
 *   for (;;) {
 *       ak_record rec;
 *       int rc = ak_reader_next(r, &rec, &err);   // 1 = record, 0 = end of input
 *       ...
 *   }
 */
#ifndef AK_STREAM_H
#define AK_STREAM_H

#include "tensor.h"

#define AK_STREAM_FORMAT "attnkit-stream"
#define AK_STREAM_MAJOR 1
#define AK_STREAM_MINOR 1
/* Deepest nesting of arrays and maps a record may have, the record's own
 * map counting as level 1 (formats/tensor-stream.md, section 1). */
#define AK_STREAM_MAX_DEPTH 128

/* A metadata value: documents and the header carry maps of these.  Values
 * this library does not model (nested maps and arrays) are kept as their
 * MessagePack encoding in `raw` and written back unchanged. */
typedef enum { AK_META_NIL, AK_META_BOOL, AK_META_INT, AK_META_FLOAT,
               AK_META_STR, AK_META_RAW } ak_meta_kind;

typedef struct ak_meta {
    char *key;
    ak_meta_kind kind;
    int64_t i;     /* BOOL, INT */
    double f;      /* FLOAT */
    char *s;       /* STR (NUL-terminated copy; slen bytes) */
    size_t slen;
    uint8_t *raw;  /* RAW: a complete MessagePack object */
    size_t rawlen;
} ak_meta;

typedef struct ak_metamap {
    ak_meta *items;
    size_t n, cap;
} ak_metamap;

AK_API const ak_meta *ak_meta_get(const ak_metamap *m, const char *key);
AK_API const char *ak_meta_str(const ak_metamap *m, const char *key); /* NULL if absent/not str */
/* An integer (or boolean) value into *out: 0 found, 1 absent, AK_EDATA
 * when the value is of another kind (*out untouched but for 0). */
AK_API int ak_meta_int(const ak_metamap *m, const char *key, int64_t *out);
AK_API int ak_meta_set_str(ak_metamap *m, const char *key, const char *val);
AK_API int ak_meta_set_int(ak_metamap *m, const char *key, int64_t val);
AK_API int ak_meta_set_float(ak_metamap *m, const char *key, double val);
AK_API int ak_meta_del(ak_metamap *m, const char *key);
AK_API void ak_meta_clear(ak_metamap *m);

/* One stage in the header's history (like samtools' @PG lines). */
typedef struct ak_stage {
    char *program;
    char *version;
    char **args;
    size_t nargs;
} ak_stage;

typedef struct ak_header {
    int major, minor;
    ak_metamap model;     /* model identity: name, arch, vocab_size, ... */
    ak_stage *history;
    size_t nhistory;
    ak_metamap extra;     /* unknown header fields, preserved */
} ak_header;

typedef struct ak_doc {
    char *id;             /* document id, e.g. the input file name */
    ak_metamap meta;
    ak_tensor **tensors;
    size_t ntensors, cap;
    ak_metamap extra;     /* unknown document fields, preserved */
} ak_doc;

typedef enum { AK_REC_HEADER = 1, AK_REC_DOC, AK_REC_END, AK_REC_OTHER } ak_rec_type;

typedef struct ak_record {
    ak_rec_type type;
    ak_header *header;    /* HEADER: owned by the record */
    ak_doc *doc;          /* DOC: owned by the record */
    int64_t end_docs;     /* END: documents the writer said it wrote */
    uint8_t *raw;         /* OTHER: the record's MessagePack bytes, passed through */
    size_t rawlen;
} ak_record;

AK_API void ak_record_free(ak_record *rec); /* frees what the record owns, zeroes it */

/* ---- strings ----
 * Every string in a stream is UTF-8 (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF); the writer refuses any other. */
int ak_utf8_valid(const void *s, size_t n);          /* 1 if valid */

/* Writes s[0..n) into out[0..cap) (NUL-terminated, cut before an escape
 * that would not fit; returns the length) so that nothing in it can act on
 * a terminal or break a line: C0 controls and DEL become \n, \t, \r or
 * \xNN, C1 controls \u0080..\u009f, bytes that are not UTF-8 \xNN.
 * AK_ESC_QUOTE also escapes " and \; AK_ESC_FORMAT also the invisible
 * characters that reorder or break a line (bidi controls U+061C, U+200E,
 * U+200F, U+202A-U+202E, U+2066-U+2069; U+2028, U+2029). */
enum { AK_ESC_QUOTE = 1, AK_ESC_FORMAT = 2 };
size_t ak_escape(char *out, size_t cap, const char *s, size_t n, int flags);

/* ---- header ---- */
AK_API ak_header *ak_header_new(void);
AK_API void ak_header_free(ak_header *h);
/* Appends a history stage: program name, version, argv[0..argc).  The
 * history is informational: arguments that are not UTF-8 (a file name in
 * another encoding) are stored with each bad byte replaced by U+FFFD. */
AK_API int ak_header_add_stage(ak_header *h, const char *program, int argc,
                        char *const argv[]);

/* ---- documents ---- */
AK_API ak_doc *ak_doc_new(const char *id);
AK_API void ak_doc_free(ak_doc *d);
AK_API ak_tensor *ak_doc_get(const ak_doc *d, const char *name);  /* NULL if absent */
/* Takes ownership of t; replaces an existing tensor of the same name. */
AK_API int ak_doc_put(ak_doc *d, ak_tensor *t, ak_err *err);
/* Removes and frees the named tensor; returns 1 if it existed. */
AK_API int ak_doc_drop(ak_doc *d, const char *name);
/* Removes the named tensor and hands it to the caller (NULL if absent). */
AK_API ak_tensor *ak_doc_take(ak_doc *d, const char *name);
/* Fetches a tensor that must exist with the given dtype and rank
 * (ndim < 0: any rank); fills err naming doc and tensor otherwise. */
AK_API ak_tensor *ak_doc_need(const ak_doc *d, const char *name, ak_dtype t,
                              int ndim, ak_err *err);

/* ---- reading ---- */
typedef struct ak_reader ak_reader;

/* The reader does not close fd.  name is used in messages. */
AK_API int ak_reader_open_fd(ak_reader **r, int fd, const char *name, ak_err *err);
/* Reads from a file path ("-" is stdin). */
AK_API int ak_reader_open_path(ak_reader **r, const char *path, ak_err *err);
AK_API void ak_reader_close(ak_reader *r);
/* Largest record accepted, in bytes: 8 GiB unless set, clamped to
 * [AK_MIN_RECORD, AK_MAX_RECORD_LIMIT] (the programs set it from
 * $ATTNKIT_MAX_RECORD). */
#define AK_MIN_RECORD ((size_t)16)
#define AK_MAX_RECORD_LIMIT ((size_t)1 << 60)
AK_API void ak_reader_set_limit(ak_reader *r, size_t max_record_bytes);

/* Returns 1 with *rec filled, 0 at the clean end of input, or an AK_E* code.
 * Enforces the grammar: a stream starts with a header, a document needs a
 * header before it, the input must not end in the middle of a stream
 * (header without end record), document ids are unique within a stream.
 * Every string is valid UTF-8, records nest at most AK_STREAM_MAX_DEPTH
 * levels, and tensors with a crc32 field match it.  Concatenated streams
 * are accepted. */
AK_API int ak_reader_next(ak_reader *r, ak_record *rec, ak_err *err);

/* ---- writing ---- */
typedef struct ak_writer ak_writer;

AK_API int ak_writer_open_fd(ak_writer **w, int fd, const char *name, ak_err *err);
/* Every tensor is written with its crc32 (format 1.1).  Strings that are not
 * valid UTF-8 make ak_write_header/ak_write_doc fail (AK_EDATA) before
 * anything is written.
 * zlib level 1..9 for tensors of at least 1 KiB; 0 (default) = none (the
 * programs set it from $ATTNKIT_COMPRESS). */
AK_API void ak_writer_set_compress(ak_writer *w, int level);
AK_API int ak_write_header(ak_writer *w, const ak_header *h, ak_err *err);
AK_API int ak_write_doc(ak_writer *w, const ak_doc *d, ak_err *err);
AK_API int ak_write_end(ak_writer *w, int64_t ndocs, ak_err *err);
AK_API int ak_write_raw(ak_writer *w, const uint8_t *raw, size_t len, ak_err *err);
/* Flushes; does not close fd.  Returns the first write error, if any. */
AK_API int ak_writer_close(ak_writer *w, ak_err *err);

#endif
