/* Reading a run directory's text files: config.json and result.json (one JSON
 * object each) and log.jsonl (one JSON object a line, "type" "step" or
 * "epoch", each with its "step"). Each reader has a file form and a form on
 * bytes in memory (no NUL needed; a NUL byte ends nothing early), which the
 * fuzz targets call. The JSON values are cJSON trees the caller deletes. */
#ifndef MIXREG_RUN_FILES_H
#define MIXREG_RUN_FILES_H

#include <stddef.h>

#include "mixreg/error.h"

struct cJSON;

/* DIR/NAME parsed, or NULL when it is absent, over 1 MiB or not JSON. */
struct cJSON *mx_run_files_read_json(const char *dir, const char *name);
struct cJSON *mx_run_files_parse_json(const char *text, size_t size);

/* The last line of DIR/log.jsonl whose "type" is "epoch", or NULL (no log,
 * over 1 GiB, or no such line); lines that do not parse are skipped. */
struct cJSON *mx_run_files_last_epoch(const char *dir);
struct cJSON *mx_run_files_parse_last_epoch(const char *text, size_t size);

/* The lines of a log whose "step" is at most `step`, each ending in '\n'
 * (lines that do not parse, or have no numeric step, are dropped): what a
 * resumed run keeps of the log of the run it continues. *out is malloc'd,
 * at most size + 1 bytes. */
mx_status mx_run_files_trim_log(const char *text, size_t size, size_t step, char **out, size_t *out_size);

#endif
