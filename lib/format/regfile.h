/* regfile.h - the files of a model directory (config.json, tokenizer.json,
 * *.safetensors) must be regular files: open(2) of a FIFO blocks until a
 * writer comes, a device may never end.  These open with O_NONBLOCK (so a
 * FIFO does not hang), refuse anything but a regular file with one line,
 * and then clear O_NONBLOCK. */
#ifndef AK_REGFILE_H
#define AK_REGFILE_H

#include "attnkit/ak.h"

#include <sys/stat.h>

/* Opens path read-only; *fd and *st (may be NULL) on success.  AK_ENOINPUT
 * "PATH: not a regular file (a FIFO)" for FIFOs, devices, directories. */
int ak_open_regular(const char *path, int *fd, struct stat *st, ak_err *err);

/* The whole regular file at path, NUL-terminated (*len excludes the NUL);
 * AK_EDATA when it holds more than max_bytes. */
int ak_read_regular(const char *path, size_t max_bytes, char **data, size_t *len, ak_err *err);

/* 1 if something exists at path (stat(2): never blocks), else 0. */
int ak_path_exists(const char *path);

#endif
