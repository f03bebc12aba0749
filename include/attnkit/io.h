/* io.h - file descriptors done right: short reads/writes, EINTR, inputs,
 * and output files that never lose data. */
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

/* Opens an input file for reading; "-" is stdin (fd 0, never closed by the
 * caller).  Refuses a directory ("PATH: is a directory") and a standard
 * input that is closed (see ak_cli_init), both AK_ENOINPUT. */
AK_API int ak_open_input(const char *path, int *fd, ak_err *err);

/* The files this process has read, for programs: after
 * ak_input_guard(1) (ak_cli_init calls it), every function of the library
 * that opens a file for reading (ak_open_input, the model readers, cache
 * and tokenizer files) notes it here by path, and ak_output_open and
 * ak_output_commit refuse to replace any of them, whichever option named
 * it (`embed -m m.gguf -o m.gguf`, `kvcache --target T --save T`).  Only
 * regular files are noted.  Off by default, so that a long-running host
 * may load a cache and save it again under its name.  This table is the
 * library's one piece of process-wide mutable state; a mutex guards it. */
AK_API void ak_input_guard(int on);
AK_API void ak_input_note(int fd, const char *name);
/* Forgets every noted file. */
AK_API void ak_input_forget_all(void);

/* Where a program's output goes: standard output, or the -o file.
 *
 * A regular file (or a new one) is written to a temporary file beside it,
 * FILE.tmp.XXXXXX, which ak_output_commit fsyncs and renames over it: a
 * failed or interrupted run leaves the old file as it was.  The new file
 * keeps the old one's permission bits (and owner, where allowed); a new
 * file gets 0666 & ~umask.  A symbolic link is followed, so the link stays
 * and the file it names is replaced.  Anything else that exists (a device,
 * a FIFO, a terminal) is opened and written to directly: never renamed
 * over, never removed.  A directory, an empty name and an output that is
 * also one of the inputs (given here, or noted with ak_input_note) are
 * refused before anything is opened for writing, and a file read after
 * the output was opened is checked again before the rename.
 * On abort, or when the program exits or is killed by a signal (see
 * ak_output_remove_tmp), only the temporary file is removed. */
typedef struct ak_output {
    int fd;            /* write here */
    const char *name;  /* for messages: the -o path, or "<stdout>" */
    char *dest;        /* the file tmp is renamed to (links resolved), or NULL */
    char *tmp;         /* the temporary file, or NULL when writing directly */
    int own_fd;        /* fd is ours to close */
    int stdio;         /* the program writes through stdio's stdout */
} ak_output;

/* path: NULL or "-" for standard output.  inputs: the files the program
 * reads ("-" = stdin); ninputs 0 means stdin alone.  Errors: AK_EUSAGE
 * (empty name, output is an input), AK_ECANTCREAT (a directory, cannot
 * create), AK_EIO (standard output closed). */
AK_API int ak_output_open(ak_output *o, const char *path, char *const *inputs, int ninputs,
                   ak_err *err);
/* The checks of ak_output_open without opening anything, for an output a
 * program writes at the end of its run (kvcache --save): refuses an empty
 * name ("WHAT: empty file name"), a directory, one of inputs and a file
 * noted as read so far. */
AK_API int ak_output_check(const char *path, const char *what, char *const *inputs,
                           int ninputs, ak_err *err);
/* For programs that print with stdio: makes fd 1 the output, so printf and
 * friends write there; ak_output_commit then flushes stdout.  Call before
 * anything is written to stdout. */
AK_API int ak_output_use_stdout(ak_output *o, ak_err *err);
/* Flushes, fsyncs and renames the temporary file into place; on failure the
 * temporary file is removed and the old file stays.  Ends o either way. */
AK_API int ak_output_commit(ak_output *o, ak_err *err);
/* Removes the temporary file (never the target) and ends o. */
AK_API void ak_output_abort(ak_output *o);
/* Unlinks the temporary file of the output now being written, if any.
 * Async-signal-safe: for signal handlers and atexit. */
AK_API void ak_output_remove_tmp(void);

/* "NAME: reason" (AK_EIO) after a failed write, from errno. */
AK_API int ak_write_error(ak_err *err, const char *name);

#endif
