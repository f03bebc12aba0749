/* io.c - short reads and writes, EINTR, whole files, atomic output files. */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t ak_read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int ak_write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ak_read_file(const char *path, size_t max_bytes, char **data, size_t *len, ak_err *err)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ak_fail(err, AK_ENOINPUT, "%s: %s", path, strerror(errno));
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    if (!buf) {
        rc = ak_fail(err, AK_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                rc = ak_fail(err, AK_EDATA, "%s: larger than %zu bytes", path, max_bytes);
                goto out;
            }
            size_t ncap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                rc = ak_fail(err, AK_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = ak_fail(err, AK_EIO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    if (fd > 0)
        close(fd);
    return rc;
}

int ak_atomic_open(ak_atomic *a, const char *path, ak_err *err)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    size_t n = strlen(path) + 32;
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        ak_atomic_abort(a);
        return ak_fail(err, AK_ENOMEM, "%s: out of memory", path);
    }
    snprintf(a->tmp, n, "%s.tmp.XXXXXX", path);
    a->fd = mkstemp(a->tmp);
    if (a->fd < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        ak_atomic_abort(a);
        return ak_fail(err, AK_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    /* mkstemp makes 0600; give the file the mode open(2) would have. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(a->fd, 0666 & ~mask) != 0) { /* not fatal: the data is what matters */ }
    return 0;
}

int ak_atomic_commit(ak_atomic *a, ak_err *err)
{
    int rc = 0;
    if (fsync(a->fd) != 0 && errno != EINVAL)
        rc = ak_fail(err, AK_EIO, "%s: %s", a->path, strerror(errno));
    if (close(a->fd) != 0 && !rc)
        rc = ak_fail(err, AK_EIO, "%s: %s", a->path, strerror(errno));
    a->fd = -1;
    if (!rc && rename(a->tmp, a->path) != 0)
        rc = ak_fail(err, AK_EIO, "%s: %s", a->path, strerror(errno));
    if (rc)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    a->tmp = a->path = NULL;
    return rc;
}

void ak_atomic_abort(ak_atomic *a)
{
    if (a->fd >= 0)
        close(a->fd);
    if (a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    a->fd = -1;
    a->tmp = a->path = NULL;
}
