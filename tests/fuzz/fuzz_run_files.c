/* libFuzzer target for the readers of a run directory's text files
 * (run_files.h): `mixreg runs` reading config.json, result.json and
 * log.jsonl, and the log trimming of `train --resume`. The first input byte
 * is the step to trim at; the rest is the file. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/run_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every line of the trimmed log parses and has a step no later than `step`. */
static void check_trimmed(const char *out, size_t size, size_t step)
{
    if (size && out[size - 1] != '\n') abort();
    for (const char *p = out, *end = out + size; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (!cJSON_IsNumber(s) || !(s->valuedouble <= (double)step)) abort();
        cJSON_Delete(j);
        p = nl + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    const size_t step = data[0];
    const char *text = (const char *)data + 1;
    size--;
    cJSON_Delete(mx_run_files_parse_json(text, size));
    cJSON *epoch = mx_run_files_parse_last_epoch(text, size);
    if (epoch) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(epoch, "type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "epoch")) abort();
        cJSON_Delete(epoch);
    }
    char *out;
    size_t out_size;
    if (mx_run_files_trim_log(text, size, step, &out, &out_size) == MX_OK) {
        if (out_size > size + 1) abort();
        check_trimmed(out, out_size, step);
        free(out);
    }
    return 0;
}
