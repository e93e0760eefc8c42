/* Whole-file helpers shared by checkpoints, configs and logs. */
#ifndef MIXREG_FILEIO_H
#define MIXREG_FILEIO_H

#include <stddef.h>

#include "mixreg/error.h"

/* Writes `size` bytes to `path` atomically: a temporary file beside it,
 * fsync, rename over the old file, fsync of the directory. On failure (a
 * full disk included) the temporary file is removed and `path` is untouched.
 * A symbolic link at `path` is replaced, never written through. */
mx_status mx_file_write_atomic(const char *path, const void *data, size_t size);

/* A new temporary file beside `path`, "<path>.tmp.<pid>.<n>" (into tmp, of
 * `cap` bytes), opened for writing with O_CREAT|O_EXCL|O_NOFOLLOW: never an
 * existing file and never through a symbolic link. */
mx_status mx_file_create_temp(const char *path, char *tmp, size_t cap, int *fd);
/* Renames a written, closed temporary over `path` and fsyncs the directory;
 * on failure the temporary is removed. */
mx_status mx_file_rename_into_place(const char *tmp, const char *path);

/* Reads a whole file (NUL-terminated for convenience); *data is malloc'd. */
mx_status mx_file_read_all(const char *path, size_t max_size, char **data, size_t *size);

/* mkdir -p; MX_ERR_IO naming the directory on failure. */
mx_status mx_make_dirs(const char *path);

/* Opens (creating) a file for appending whole records: refuses a symbolic
 * link (O_NOFOLLOW), anything but a regular file, and a file with other hard
 * links, each with a message naming the file. */
mx_status mx_file_open_append(const char *path, int *fd);
/* Appends one record with one write(); if the write cannot be completed (a
 * full disk: ENOSPC, a file size limit: EFBIG) the file is cut back to its
 * length before the record (ftruncate) and the error returned, so a reader
 * never finds a partial record left behind. */
mx_status mx_file_append_record(int fd, const char *path, const void *data, size_t size);
/* Appends one line (a '\n' is added) as one record, opening the file as
 * mx_file_open_append does. */
mx_status mx_file_append_line(const char *path, const char *line);

/* The names in `dir` (no "." entries) starting with `prefix`, sorted; each
 * name and the array are malloc'd (free with mx_free_names). */
mx_status mx_list_dir(const char *dir, const char *prefix, char ***names, size_t *count);
void mx_free_names(char **names, size_t count);

/* 1 when `path` ends with `extension` (".png"), letters in either case:
 * how every writer picks its format from the file name. */
int mx_file_has_extension(const char *path, const char *extension);

#endif
