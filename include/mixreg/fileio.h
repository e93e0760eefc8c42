/* Whole-file helpers shared by checkpoints, configs and logs. */
#ifndef MIXREG_FILEIO_H
#define MIXREG_FILEIO_H

#include <stddef.h>

#include "mixreg/error.h"

/* Writes `size` bytes to `path` atomically: a temporary file beside it,
 * fsync, rename over the old file, fsync of the directory. On failure (a
 * full disk included) the temporary file is removed and `path` is untouched. */
mx_status mx_file_write_atomic(const char *path, const void *data, size_t size);

/* Reads a whole file (NUL-terminated for convenience); *data is malloc'd. */
mx_status mx_file_read_all(const char *path, size_t max_size, char **data, size_t *size);

/* mkdir -p; MX_ERR_IO naming the directory on failure. */
mx_status mx_make_dirs(const char *path);

/* Appends one line (a '\n' is added) to a file, flushing it. */
mx_status mx_file_append_line(const char *path, const char *line);

/* The names in `dir` (no "." entries) starting with `prefix`, sorted; each
 * name and the array are malloc'd (free with mx_free_names). */
mx_status mx_list_dir(const char *dir, const char *prefix, char ***names, size_t *count);
void mx_free_names(char **names, size_t count);

#endif
