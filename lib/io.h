/* io.h - file descriptors done right: short reads/writes, EINTR, atomic files. */
#ifndef AK_IO_H
#define AK_IO_H

#include "ak.h"
#include <sys/types.h>

/* read() until len bytes or end of file; returns bytes read or -1 (errno). */
AK_API ssize_t ak_read_full(int fd, void *buf, size_t len);
/* write() all of buf; returns 0 or -1 (errno). */
AK_API int ak_write_full(int fd, const void *buf, size_t len);

/* Reads a whole file ("-" = stdin) into a NUL-terminated buffer, refusing
 * files larger than max_bytes. */
AK_API int ak_read_file(const char *path, size_t max_bytes, char **data, size_t *len,
                        ak_err *err);

/* Atomic file output: data goes to a temporary file beside path, which is
 * renamed over path by ak_atomic_commit (after fsync) or removed by
 * ak_atomic_abort.  A failed or interrupted write never leaves a partial
 * file under path. */
typedef struct ak_atomic {
    int fd;
    char *path;
    char *tmp;
} ak_atomic;
AK_API int ak_atomic_open(ak_atomic *a, const char *path, ak_err *err);
AK_API int ak_atomic_commit(ak_atomic *a, ak_err *err);
AK_API void ak_atomic_abort(ak_atomic *a);

#endif
