/* The hyperparameters TensorBoard's HParams dashboard shows for a run, read
 * from the configuration's JSON form: its keys are the stored names and its
 * types say which are numbers, switches and texts, so the list follows the
 * settings table without a copy of it here. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/hparams.h"

/* A JSON array of numbers as "a,b,c". */
static char *join_numbers(const cJSON *array)
{
    size_t cap = 16 * (size_t)cJSON_GetArraySize(array) + 1, len = 0;
    char *text = malloc(cap);
    if (!text) return NULL;
    text[0] = '\0';
    const cJSON *item;
    cJSON_ArrayForEach(item, array) {
        len += (size_t)snprintf(text + len, cap - len, "%s%g", len ? "," : "", cJSON_GetNumberValue(item));
        if (len >= cap) break;
    }
    return text;
}

mx_status mx_train_events_hparams(mx_tfevents *w, const mx_train_config *cfg, int processes, double wall_time)
{
    char *json = mx_train_config_to_json(cfg);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    free(json);
    size_t count = root ? (size_t)cJSON_GetArraySize(root) + 1 : 0;
    mx_hparam *list = root ? calloc(count, sizeof *list) : NULL;
    char **texts = root ? calloc(count, sizeof *texts) : NULL;
    if (!list || !texts) {
        cJSON_Delete(root);
        free(list);
        free(texts);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for the TensorBoard hyperparameters");
    }
    size_t n = 0;
    mx_status st = MX_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "out")) continue;  /* where the run is, not how it was trained */
        mx_hparam *h = &list[n];
        h->name = item->string;
        if (cJSON_IsBool(item)) {
            h->kind = MX_HPARAM_BOOL, h->on = cJSON_IsTrue(item);
        } else if (cJSON_IsNumber(item)) {
            h->kind = MX_HPARAM_NUMBER, h->number = item->valuedouble;
        } else if (cJSON_IsString(item)) {
            h->kind = MX_HPARAM_TEXT, h->text = item->valuestring;
        } else if (cJSON_IsArray(item)) {
            h->kind = MX_HPARAM_TEXT, h->text = texts[n] = join_numbers(item);
            if (!h->text) st = mx_error_set(MX_ERR_NOMEM, "out of memory for the TensorBoard hyperparameters");
        } else {
            continue;
        }
        n++;
    }
    list[n++] = (mx_hparam){.name = "processes", .kind = MX_HPARAM_NUMBER, .number = processes};
    if (st == MX_OK) st = mx_tfevents_hparams(w, wall_time, list, n);
    for (size_t i = 0; i < count; i++) free(texts[i]);
    free(texts);
    free(list);
    cJSON_Delete(root);
    return st;
}
