/* protect.h - the spans of a prompt that pruning keeps whatever the
 * policy says: the tokens overlapping a regex's matches or a marker's
 * blocks, the first or last block, and the query span (the question the
 * prompt asks).  Marks go to protect[T] (set to 1, never cleared);
 * offsets[T, 2] are byte spans of text. */
#ifndef AK_PROTECT_H
#define AK_PROTECT_H

#include "ak.h"
#include "stream.h"

/* Tokens overlapping a match of the PCRE2 pattern re in text (UTF-8). */
AK_API int ak_protect_regex(const uint8_t *text, size_t len, const int64_t *offsets,
                            int64_t T, const char *re, uint8_t *protect, ak_err *err);
/* Every block (segment) holding a token that overlaps an occurrence of
 * marker in text; a token outside blocks is protected alone. */
AK_API int ak_protect_marker(const uint8_t *text, size_t len, const int64_t *offsets,
                             const int32_t *segments, int64_t T, const char *marker,
                             uint8_t *protect, ak_err *err);
/* The first (which = 0) or last (which = 1) block of segments. */
AK_API void ak_protect_block_end(const int32_t *segments, int64_t T, int which,
                                 uint8_t *protect);

/* The query span, marked in query[T]: the tokens overlapping regex's
 * matches (regex not NULL), else the blocks holding marker (marker not
 * NULL), else the last of segments' nblocks blocks when there are two or
 * more, else, without segments, the last paragraph of the text when there
 * are two or more (a single block or paragraph is the whole prompt, not
 * its question).  *found = 1 when a token is marked. */
AK_API int ak_query_span(const uint8_t *text, size_t len, const int64_t *offsets, int64_t T,
                         const int32_t *segments, int64_t nblocks, const char *marker,
                         const char *regex, uint8_t *query, int *found, ak_err *err);

/* The query span of d, as prune's query policy finds it (ak_query_span
 * over d's text, offsets and segments): its first and last token.  Tokens
 * between them that are outside the span (between two matches) are inside
 * [first, last] all the same.  Needs text and offsets; AK_EDATA when there
 * is no span. */
AK_API int ak_query_span_rows(const ak_doc *d, const char *marker, const char *regex,
                              int64_t *first, int64_t *last, ak_err *err);

#endif
