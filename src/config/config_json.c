/* The configuration's JSON form, stored in config.json and in a checkpoint's
 * metadata so a run explains itself. Both are files people share: reading
 * takes each key through the settings table, with the range and parser its
 * flag has, and then validates the whole as a command line would be. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "mixreg/parse.h"

static void add_setting(cJSON *o, const mx_setting *s, const mx_train_config *cfg)
{
    switch (s->type) {
    case MX_SETTING_COUNT: {
        /* Written as an exact integer (a double prints seeds above 2^50 as 1e+15 and the like). */
        char text[32];
        snprintf(text, sizeof text, "%" PRIu64, mx_setting_get_count(s, cfg));
        cJSON_AddRawToObject(o, s->key, text);
        break;
    }
    case MX_SETTING_NUMBER:
        cJSON_AddNumberToObject(o, s->key, *(const double *)((const char *)cfg + s->offset));
        break;
    case MX_SETTING_SWITCH:
        cJSON_AddBoolToObject(o, s->key, *(const int *)((const char *)cfg + s->offset));
        break;
    case MX_SETTING_TEXT:
    default:
        if (s->json_list) {
            cJSON *list = cJSON_AddArrayToObject(o, s->key);
            char text[MX_PATH_MAX + 1], *save = NULL;
            mx_setting_format(s, cfg, text, sizeof text);
            for (char *item = strtok_r(text, ",", &save); list && item; item = strtok_r(NULL, ",", &save))
                cJSON_AddItemToArray(list, cJSON_CreateRaw(item));
        } else {
            char text[MX_PATH_MAX + 1];
            mx_setting_format(s, cfg, text, sizeof text);
            cJSON_AddStringToObject(o, s->key, text);
        }
        break;
    }
}

char *mx_train_config_to_json(const mx_train_config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const mx_setting *table;
    size_t count = mx_settings(&table);
    for (size_t i = 0; i < count; i++) add_setting(o, &table[i], cfg);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

/* A JSON array of numbers as the comma list its flag takes ([512, 256] -> "512,256"). */
static mx_status list_text(const cJSON *item, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (const cJSON *v = item->child; v; v = v->next) {
        if (!cJSON_IsNumber(v)) return mx_error_set(MX_ERR_ARG, "must be a list of numbers");
        int n = snprintf(out + len, cap - len, "%s%.17g", len ? "," : "", v->valuedouble);
        if (n < 0 || (size_t)n >= cap - len) return mx_error_set(MX_ERR_ARG, "list too long");
        len += (size_t)n;
    }
    return MX_OK;
}

static mx_status read_setting(const mx_setting *s, const cJSON *item, mx_train_config *cfg)
{
    char what[64];
    mx_setting_name(s, what, sizeof what);
    switch (s->type) {
    case MX_SETTING_COUNT: {
        if (!cJSON_IsNumber(item)) return mx_error_set(MX_ERR_ARG, "must be a whole number");
        mx_status st = mx_setting_check_count(s, what, item->valuedouble);
        if (st == MX_OK) mx_setting_set_count(s, cfg, (uint64_t)item->valuedouble);
        return st;
    }
    case MX_SETTING_NUMBER: {
        if (!cJSON_IsNumber(item)) return mx_error_set(MX_ERR_ARG, "must be a number");
        mx_status st = mx_check_double_range(what, item->valuedouble, s->min, s->max);
        if (st == MX_OK) *(double *)mx_setting_field(s, cfg) = item->valuedouble;
        return st;
    }
    case MX_SETTING_SWITCH:
        if (!cJSON_IsBool(item)) return mx_error_set(MX_ERR_ARG, "must be true or false");
        *(int *)mx_setting_field(s, cfg) = cJSON_IsTrue(item);
        return MX_OK;
    case MX_SETTING_TEXT:
    default: {
        char text[MX_PATH_MAX + 1];
        if (s->json_list) {
            if (!cJSON_IsArray(item)) return mx_error_set(MX_ERR_ARG, "must be a list of numbers");
            mx_status st = list_text(item, text, sizeof text);
            if (st != MX_OK) return st;
        } else {
            if (!cJSON_IsString(item)) return mx_error_set(MX_ERR_ARG, "must be a string");
            if (strlen(item->valuestring) >= sizeof text) return mx_error_set(MX_ERR_ARG, "string too long");
            strcpy(text, item->valuestring);
        }
        if (s->unset_ok && !text[0]) return MX_OK;
        return s->parse(s, cfg, what, text);
    }
    }
}

/* Re-raises the current error as a corrupt file's, "config: [KEY: ]<message>":
 * the message is copied first because it lives in the buffer being written. */
static mx_status format_error(const char *key)
{
    char message[512];
    snprintf(message, sizeof message, "%s", mx_error_message());
    if (key) return mx_error_set(MX_ERR_FORMAT, "config: %s: %s", key, message);
    return mx_error_set(MX_ERR_FORMAT, "config: %s", message);
}

mx_status mx_train_config_from_json(const char *json, mx_train_config *cfg)
{
    mx_train_config_default(cfg);
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mx_error_set(MX_ERR_FORMAT, "config: not a JSON object");
    }
    const mx_setting *table;
    size_t count = mx_settings(&table);
    unsigned char *seen = calloc(count, 1);
    mx_status st = seen ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory reading a config");
    for (const cJSON *item = root->child; st == MX_OK && item; item = item->next) {
        const mx_setting *s = mx_setting_by_key(item->string);
        if (!s) {
            st = mx_error_set(MX_ERR_FORMAT, "config: unknown key '%.100s'", item->string);
        } else if (seen[s - table]++) {
            st = mx_error_set(MX_ERR_FORMAT, "config: key '%s' appears twice", s->key);
        } else if (read_setting(s, item, cfg) != MX_OK) {
            st = format_error(s->key);
        }
    }
    free(seen);
    cJSON_Delete(root);
    if (st == MX_OK && mx_train_config_validate(cfg) != MX_OK) st = format_error(NULL);
    return st;
}
