#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/fileio.h"
#include "mixreg/run_files.h"

#define MAX_JSON_FILE ((size_t)1 << 20)
#define MAX_LOG_FILE ((size_t)1 << 30)

struct cJSON *mx_run_files_parse_json(const char *text, size_t size) { return cJSON_ParseWithLength(text, size); }

static char *read_file(const char *dir, const char *name, size_t max_size, size_t *size)
{
    char path[8300], *text;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return mx_file_read_all(path, max_size, &text, size) == MX_OK ? text : NULL;
}

struct cJSON *mx_run_files_read_json(const char *dir, const char *name)
{
    size_t size;
    char *text = read_file(dir, name, MAX_JSON_FILE, &size);
    if (!text) return NULL;
    cJSON *j = mx_run_files_parse_json(text, size);
    free(text);
    return j;
}

/* Calls `each` with every line of text[0..size) (without its '\n') until it returns nonzero. */
static void for_each_line(const char *text, size_t size, int (*each)(const char *line, size_t len, void *ctx), void *ctx)
{
    const char *p = text, *end = text + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (each(p, len, ctx)) return;
        p += len + 1;
    }
}

static int keep_epoch(const char *line, size_t len, void *ctx)
{
    cJSON **last = ctx;
    if (!len) return 0;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "epoch")) {
        cJSON_Delete(*last);
        *last = j;
    } else {
        cJSON_Delete(j);
    }
    return 0;
}

struct cJSON *mx_run_files_parse_last_epoch(const char *text, size_t size)
{
    cJSON *last = NULL;
    for_each_line(text, size, keep_epoch, &last);
    return last;
}

struct cJSON *mx_run_files_last_epoch(const char *dir)
{
    size_t size;
    char *text = read_file(dir, "log.jsonl", MAX_LOG_FILE, &size);
    if (!text) return NULL;
    cJSON *last = mx_run_files_parse_last_epoch(text, size);
    free(text);
    return last;
}

typedef struct {
    size_t step;
    char *out;
    size_t used;
} trim_state;

static int keep_early(const char *line, size_t len, void *ctx)
{
    trim_state *t = ctx;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step");
    if (cJSON_IsNumber(s) && s->valuedouble <= (double)t->step) {
        memcpy(t->out + t->used, line, len);
        t->used += len;
        t->out[t->used++] = '\n';
    }
    cJSON_Delete(j);
    return 0;
}

mx_status mx_run_files_trim_log(const char *text, size_t size, size_t step, char **out, size_t *out_size)
{
    /* Every kept line is a line of the text plus its '\n': size + 1 bytes at most. */
    trim_state t = {step, malloc(size + 1), 0};
    *out = NULL;
    *out_size = 0;
    if (!t.out) return mx_error_set(MX_ERR_NOMEM, "out of memory trimming the log");
    for_each_line(text, size, keep_early, &t);
    *out = t.out;
    *out_size = t.used;
    return MX_OK;
}
