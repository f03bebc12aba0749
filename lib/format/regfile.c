/* regfile.c - model files that are regular files (see regfile.h). */
#include "regfile.h"
#include "attnkit/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a plain file";
}

int ak_open_regular(const char *path, int *fd, struct stat *st, ak_err *err)
{
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (f < 0)
        return ak_fail(err, AK_ENOINPUT, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f, &sb) < 0) {
        int e = errno;
        close(f);
        return ak_fail(err, AK_ENOINPUT, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(f);
        return ak_fail(err, AK_ENOINPUT, "%s: not a regular file (%s)", path, kind_of(sb.st_mode));
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(f);
        return ak_fail(err, AK_EIO, "%s: %s", path, strerror(e));
    }
    ak_input_note(f, path);
    *fd = f;
    if (st)
        *st = sb;
    return 0;
}

int ak_read_regular(const char *path, size_t max_bytes, char **data, size_t *len, ak_err *err)
{
    int fd;
    struct stat sb;
    int rc = ak_open_regular(path, &fd, &sb, err);
    if (rc)
        return rc;
    if (sb.st_size < 0 || (uint64_t)sb.st_size > max_bytes) {
        close(fd);
        return ak_fail(err, AK_EDATA, "%s: larger than %zu bytes", path, max_bytes);
    }
    /* the size may change while we read: read to EOF, at most max_bytes */
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return ak_fail(err, AK_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) {
                rc = ak_fail(err, AK_EDATA, "%s: larger than %zu bytes", path, max_bytes);
                break;
            }
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                rc = ak_fail(err, AK_ENOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ak_fail(err, AK_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!rc && n > max_bytes)
        rc = ak_fail(err, AK_EDATA, "%s: larger than %zu bytes", path, max_bytes);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

int ak_path_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}
