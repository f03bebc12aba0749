/* segment.h - where a text's sentences, paragraphs and lines start: the one
 * rule behind `tokenize --segments` and `prune --unit sentence`.
 *
 * A block starts at the first non-space byte after
 *   sentence   a sentence end, or a blank line.  A sentence end is . ! ? or
 *              … (U+2026), then any run of . ! ? and closing marks " ' ) ]
 *              ” ’ », then white space or the end of the text; or a CJK
 *              full stop 。 ！ ？ (U+3002 U+FF01 U+FF1F), which needs no space
 *              after it (then the same closing marks).  "1.5" and "e.g.x" do
 *              not end a sentence, "Stop." She did.
 *   paragraph  a blank line (newline, optional spaces/tabs/CRs, newline)
 *   line       a newline
 * White space is ASCII: space, \t, \n, \r, \f, \v. */
#ifndef AK_SEGMENT_H
#define AK_SEGMENT_H

#include "ak.h"

enum { AK_SEG_SENTENCE = 1, AK_SEG_PARAGRAPH, AK_SEG_LINE };

/* The byte positions where a new block starts, ascending, never 0
 * (*starts is malloc'd; NULL when *n is 0). */
AK_API int ak_text_blocks(const char *text, size_t len, int mode, int64_t **starts, size_t *n,
                          ak_err *err);

/* blocks[t] = the block (0 .. nstarts) of token t, given its byte span
 * offsets[2t], offsets[2t+1]: the block holding the token's first non-space
 * byte (byte-level BPE glues the space before a word to the word), or its
 * start if it covers only white space.  Offsets need not be sorted. */
AK_API void ak_token_blocks(const char *text, size_t len, const int64_t *offsets, size_t T,
                     const int64_t *starts, size_t nstarts, int32_t *blocks);

#endif
