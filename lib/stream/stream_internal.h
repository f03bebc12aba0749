/* stream_internal.h - what lib/stream*.c share (not installed): the
 * record model's helpers in stream.c, the decoder of stream_decode.c. */
#ifndef AK_STREAM_INTERNAL_H
#define AK_STREAM_INTERNAL_H

#include "attnkit/stream.h"

#include <stddef.h>
#include <stdint.h>

/* A copy of p[0..n) with a NUL after it; NULL when out of memory. */
char *st_memdup0(const void *p, size_t n);
/* The item for key, emptied, created if needed; NULL when out of memory. */
ak_meta *st_meta_slot(ak_metamap *m, const char *key);
/* Length of the longest prefix of s[0..n) that is valid UTF-8. */
size_t st_utf8_prefix(const unsigned char *s, size_t n);
void st_stage_free(ak_stage *s);
/* zlib's crc32 over any length. */
uint32_t st_crc32(const void *p, size_t n);

/* The ids of one stream's documents, to refuse a repeated one (an open
 * addressing hash set). */
typedef struct st_id_entry {
    uint64_t hash;
    char *id;             /* NULL: empty slot */
    uint64_t record;      /* where it was first seen */
} st_id_entry;

typedef struct st_id_set {
    st_id_entry *slots;
    size_t cap, n;        /* cap: 0 or a power of two */
} st_id_set;

void st_id_set_clear(st_id_set *set);
/* Adds id; returns 0, AK_ENOMEM, or 1 with *first set when it is there
 * already. */
int st_id_set_add(st_id_set *set, const char *id, uint64_t record, uint64_t *first);

/* Decodes the record p[0..len), framed by the reader's scan, which counted
 * nelems array elements and npairs map pairs in it, into rec; a tensor may
 * not inflate past max_record bytes.  Returns 0 or an error (rec freed). */
int st_parse_record(const unsigned char *p, size_t len, uint64_t nelems, uint64_t npairs,
                    size_t max_record, ak_record *rec, ak_err *err);

#endif
