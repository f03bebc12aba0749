/* io.c - short reads and writes, EINTR, whole files, inputs, output files. */
#include "attnkit/io.h"
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

/* ---------------------------------------------------- files read so far */

struct noted {
    dev_t dev;
    ino_t ino;
    char *name;
};
static pthread_mutex_t noted_lock = PTHREAD_MUTEX_INITIALIZER;
static struct noted *noted;
static size_t n_noted, cap_noted;
static int guard_on;

void ak_input_guard(int on)
{
    pthread_mutex_lock(&noted_lock);
    guard_on = on;
    pthread_mutex_unlock(&noted_lock);
}

void ak_input_note(int fd, const char *name)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    pthread_mutex_lock(&noted_lock);
    if (!guard_on)
        goto out;
    for (size_t i = 0; i < n_noted; i++)
        if (noted[i].dev == st.st_dev && noted[i].ino == st.st_ino)
            goto out;
    if (ak_grow((void **)&noted, &cap_noted, n_noted + 1, sizeof *noted))
        goto out;   /* out of memory: the check is weaker, nothing breaks */
    char *copy = strdup(name ? name : "an input");  /* the path as opened */
    if (copy)
        noted[n_noted++] = (struct noted){st.st_dev, st.st_ino, copy};
out:
    pthread_mutex_unlock(&noted_lock);
}

void ak_input_forget_all(void)
{
    pthread_mutex_lock(&noted_lock);
    for (size_t i = 0; i < n_noted; i++)
        free(noted[i].name);
    free(noted);
    noted = NULL;
    n_noted = cap_noted = 0;
    pthread_mutex_unlock(&noted_lock);
}

/* "NAME: output file is also an input (read as WHAT)" when st is a file
 * noted as read. */
static int check_not_noted(const char *name, const struct stat *st, ak_err *err)
{
    if (!S_ISREG(st->st_mode))
        return 0;
    int rc = 0;
    pthread_mutex_lock(&noted_lock);
    for (size_t i = 0; i < n_noted && !rc; i++)
        if (noted[i].dev == st->st_dev && noted[i].ino == st->st_ino)
            rc = ak_fail(err, AK_EUSAGE, "%s: output file is also a file this program reads (%s); not replaced",
                         name, noted[i].name);
    pthread_mutex_unlock(&noted_lock);
    return rc;
}

int ak_open_input(const char *path, int *fdp, ak_err *err)
{
    int fd = 0;
    const char *name = path;
    if (strcmp(path, "-") == 0) {
        /* ak_cli_init parks a write-only /dev/null on a closed stdin */
        int fl = fcntl(0, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY)
            return ak_fail(err, AK_ENOINPUT, "standard input is closed");
        name = "<stdin>";
    } else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return ak_fail(err, AK_ENOINPUT, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (fd > 0)
            close(fd);
        return ak_fail(err, AK_ENOINPUT, "%s: is a directory", name);
    }
    ak_input_note(fd, fd == 0 ? "standard input" : path);
    *fdp = fd;
    return 0;
}

int ak_read_file(const char *path, size_t max_bytes, char **data, size_t *len, ak_err *err)
{
    int fd, rc = ak_open_input(path, &fd, err);
    if (rc)
        return rc;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
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

int ak_write_error(ak_err *err, const char *name)
{
    return ak_fail(err, AK_EIO, "%s: %s", name, errno ? strerror(errno) : "write error");
}

/* ---------------------------------------------------------------- output */

/* The temporary file being written, for ak_output_remove_tmp, which may
 * run in a signal handler: a fixed buffer and a flag, nothing to free. */
static char live_tmp[4096 + 64];
static volatile sig_atomic_t live_armed;

void ak_output_remove_tmp(void)
{
    if (live_armed) {
        live_armed = 0;
        unlink(live_tmp);
    }
}

static void disarm(void)
{
    live_armed = 0;
    atomic_signal_fence(memory_order_seq_cst);
}

/* The symbolic link's target, relative to the link's directory. */
static char *follow_link(const char *link)
{
    size_t cap = 256;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf)
            return NULL;
        ssize_t n = readlink(link, buf, cap);
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if ((size_t)n < cap) {
            buf[n] = 0;
            const char *slash = strrchr(link, '/');
            if (buf[0] == '/' || !slash)
                return buf;
            size_t dl = (size_t)(slash - link) + 1, bl = (size_t)n + 1;
            char *full = malloc(dl + bl);
            if (full) {
                memcpy(full, link, dl);
                memcpy(full + dl, buf, bl);
            }
            free(buf);
            return full;
        }
        free(buf);
        cap *= 2;
    }
}

/* Follows path's symbolic links to the file they name: *dest (malloc'd)
 * and its stat in *st, or *exists = 0 when there is no such file yet. */
static int resolve(const char *path, char **dest, struct stat *st, int *exists, ak_err *err)
{
    char *cur = strdup(path);
    for (int hops = 0; cur; hops++) {
        if (lstat(cur, st) != 0) {
            int e = errno;
            if (e == ENOENT) {
                *exists = 0;
                *dest = cur;
                return 0;
            }
            free(cur);
            return ak_fail(err, AK_ECANTCREAT, "%s: %s", path, strerror(e));
        }
        if (!S_ISLNK(st->st_mode)) {
            *exists = 1;
            *dest = cur;
            return 0;
        }
        if (hops == 40) {
            free(cur);
            return ak_fail(err, AK_ECANTCREAT, "%s: %s", path, strerror(ELOOP));
        }
        char *next = follow_link(cur);
        if (!next && errno != ENOMEM) {
            int e = errno;
            free(cur);
            return ak_fail(err, AK_ECANTCREAT, "%s: %s", path, strerror(e));
        }
        free(cur);
        cur = next;
    }
    return ak_fail(err, AK_ENOMEM, "%s: out of memory", path);
}

/* Refuses an output file that is also an input: writing it would destroy
 * the data being read (`entropy -f tsv -o X X`).  name NULL: stdout. */
static int check_not_input(const char *name, const struct stat *out, char *const *inputs,
                           int ninputs, ak_err *err)
{
    if (!S_ISREG(out->st_mode))
        return 0;
    for (int i = 0; i < (ninputs > 0 ? ninputs : 1); i++) {
        const char *in = ninputs > 0 ? inputs[i] : "-";
        int is_stdin = strcmp(in, "-") == 0;
        struct stat st;
        if ((is_stdin ? fstat(0, &st) : stat(in, &st)) != 0 || st.st_dev != out->st_dev ||
            st.st_ino != out->st_ino)
            continue;
        if (!name)
            return is_stdin ? ak_fail(err, AK_EUSAGE, "standard input and standard output "
                                      "are the same file")
                            : ak_fail(err, AK_EUSAGE, "%s: input file is also standard output",
                                      in);
        return is_stdin ? ak_fail(err, AK_EUSAGE, "%s: output file is also standard input", name)
                        : ak_fail(err, AK_EUSAGE, "%s: input file is also the output file", in);
    }
    return check_not_noted(name ? name : "<stdout>", out, err);
}

/* The new file gets what the old one had (owner where allowed, permission
 * bits), or what open(2) would have given a new file. */
static void set_mode(int fd, const struct stat *old)
{
    if (old) {
        if ((old->st_uid != geteuid() || old->st_gid != getegid()) &&
            fchown(fd, old->st_uid, old->st_gid) != 0 && fchown(fd, (uid_t)-1, old->st_gid) != 0) {
            /* not allowed: the file is ours, the data is what matters */
        }
        if (fchmod(fd, old->st_mode & 07777) != 0) { /* as above */ }
        return;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* as above */ }
}

static int open_tmp(ak_output *o, const char *dest, const struct stat *old, ak_err *err)
{
    size_t n = strlen(dest) + sizeof ".tmp.XXXXXX";
    if (!(o->tmp = malloc(n)))
        return ak_fail(err, AK_ENOMEM, "%s: out of memory", o->name);
    snprintf(o->tmp, n, "%s.tmp.XXXXXX", dest);
    if (n > sizeof live_tmp) {
        free(o->tmp);
        o->tmp = NULL;
        return ak_fail(err, AK_ECANTCREAT, "%s: %s", o->name, strerror(ENAMETOOLONG));
    }
    /* No signal between creating the file and registering it for removal. */
    sigset_t all, was;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &was);
    o->fd = mkstemp(o->tmp);
    int e = errno;
    if (o->fd >= 0) {
        memcpy(live_tmp, o->tmp, n);
        atomic_signal_fence(memory_order_seq_cst);
        live_armed = 1;
    }
    sigprocmask(SIG_SETMASK, &was, NULL);
    if (o->fd < 0) {
        free(o->tmp);
        o->tmp = NULL;
        if (old)
            return ak_fail(err, AK_ECANTCREAT, "%s: cannot create a temporary file beside it: %s",
                           o->name, strerror(e));
        return ak_fail(err, AK_ECANTCREAT, "%s: %s", o->name, strerror(e));
    }
    o->own_fd = 1;
    fcntl(o->fd, F_SETFD, FD_CLOEXEC);
    set_mode(o->fd, old);
    return 0;
}

int ak_output_open(ak_output *o, const char *path, char *const *inputs, int ninputs,
                   ak_err *err)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    struct stat st;
    int rc;
    if (!path || strcmp(path, "-") == 0) {
        o->name = "<stdout>";
        /* ak_cli_init parks a read-only /dev/null on a closed stdout */
        int fl = fcntl(1, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
            return ak_fail(err, AK_EIO, "standard output is closed");
        if (fstat(1, &st) == 0 && (rc = check_not_input(NULL, &st, inputs, ninputs, err)))
            return rc;
        o->fd = 1;
        return 0;
    }
    o->name = path;
    if (!*path)
        return ak_fail(err, AK_EUSAGE, "-o: empty file name");
    char *dest = NULL;
    int exists = 0;
    if ((rc = resolve(path, &dest, &st, &exists, err)))
        return rc;
    if (exists && S_ISDIR(st.st_mode))
        rc = ak_fail(err, AK_ECANTCREAT, "%s: is a directory", path);
    else if (exists)
        rc = check_not_input(path, &st, inputs, ninputs, err);
    if (!rc && exists && !S_ISREG(st.st_mode)) {
        /* a device, FIFO, terminal or socket: write to it, never replace it */
        if ((o->fd = open(dest, O_WRONLY | O_NOCTTY | O_CLOEXEC)) < 0)
            rc = ak_fail(err, AK_ECANTCREAT, "%s: %s", path, strerror(errno));
        o->own_fd = o->fd >= 0;
    } else if (!rc && !(rc = open_tmp(o, dest, exists ? &st : NULL, err))) {
        o->dest = dest;
        return 0;
    }
    free(dest);
    return rc;
}

int ak_output_check(const char *path, const char *what, char *const *inputs, int ninputs,
                    ak_err *err)
{
    if (!path || strcmp(path, "-") == 0)
        return 0;
    if (!*path)
        return ak_fail(err, AK_EUSAGE, "%s: empty file name", what);
    char *dest = NULL;
    struct stat st;
    int exists = 0, rc = resolve(path, &dest, &st, &exists, err);
    free(dest);
    if (rc || !exists)
        return rc;
    if (S_ISDIR(st.st_mode))
        return ak_fail(err, AK_ECANTCREAT, "%s: is a directory", path);
    return check_not_input(path, &st, inputs, ninputs, err);
}

int ak_output_use_stdout(ak_output *o, ak_err *err)
{
    o->stdio = 1;
    if (o->fd == 1)
        return 0;
    fflush(stdout);
    if (dup2(o->fd, 1) < 0)
        return ak_fail(err, AK_EIO, "%s: %s", o->name, strerror(errno));
    return 0;
}

/* Makes the rename durable: the directory entry is on disk too. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        if (fsync(fd) != 0) { /* some file systems cannot; the data itself is synced */ }
        close(fd);
    }
    free(dir);
}

static void output_end(ak_output *o)
{
    if (o->own_fd && o->fd >= 0)
        close(o->fd);
    if (o->tmp) {
        unlink(o->tmp);
        disarm();
    }
    free(o->tmp);
    free(o->dest);
    o->tmp = o->dest = NULL;
    o->fd = -1;
    o->own_fd = o->stdio = 0;
}

int ak_output_commit(ak_output *o, ak_err *err)
{
    int rc = 0;
    errno = 0;
    if (o->stdio && (fflush(stdout) != 0 || ferror(stdout)))
        rc = ak_write_error(err, o->name);
    if (!rc && o->tmp && fsync(o->fd) != 0 && errno != EINVAL)
        rc = ak_write_error(err, o->name);
    if (o->own_fd) {
        if (close(o->fd) != 0 && !rc)
            rc = ak_write_error(err, o->name);
        o->fd = -1;
    }
    struct stat st;
    if (!rc && o->tmp && stat(o->dest, &st) == 0)
        rc = check_not_noted(o->name, &st, err);   /* a file read after ak_output_open */
    if (!rc && o->tmp) {
        if (rename(o->tmp, o->dest) != 0)
            rc = ak_fail(err, AK_EIO, "%s: %s", o->name, strerror(errno));
        else {
            disarm();
            sync_dir(o->dest);
            free(o->tmp);
            o->tmp = NULL;
        }
    }
    output_end(o);
    return rc;
}

void ak_output_abort(ak_output *o)
{
    output_end(o);
}
