/* Class names: carried by the datasets that have them (image folders), kept
 * with a trained model, and the matching of a dataset's classes to a
 * model's by name rather than by position, so that a validation folder with
 * a class missing, extra or renamed is never silently scored against the
 * wrong labels. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/data.h"

mx_status mx_class_names_copy(char *const *names, size_t n, char ***out)
{
    *out = NULL;
    if (!names) return MX_OK;
    char **copy = calloc(n + 1, sizeof *copy);
    if (!copy) return mx_error_set(MX_ERR_NOMEM, "out of memory for %zu class names", n);
    for (size_t c = 0; c < n; c++) {
        size_t len = strlen(names[c]);
        if (!(copy[c] = malloc(len + 1))) {
            mx_class_names_free(copy, n);
            return mx_error_set(MX_ERR_NOMEM, "out of memory for %zu class names", n);
        }
        memcpy(copy[c], names[c], len + 1);
    }
    *out = copy;
    return MX_OK;
}

void mx_class_names_free(char **names, size_t n)
{
    if (!names) return;
    for (size_t c = 0; c < n && names[c]; c++) free(names[c]);
    free(names);
}

char *mx_class_names_to_json(char *const *names, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t c = 0; a && c < n; c++) {
        cJSON *s = cJSON_CreateString(names[c]);
        if (!s) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, s);
    }
    char *text = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return text;
}

/* A usable class name: what a directory entry can be (not empty, ".", ".."
 * or holding '/'), at most MX_CLASS_NAME_MAX bytes, no control characters. */
static int valid_name(const char *s)
{
    size_t len = strlen(s);
    if (!len || len > MX_CLASS_NAME_MAX || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

mx_status mx_class_names_from_json(const char *what, const char *json, size_t expected, char ***out)
{
    *out = NULL;
    cJSON *a = cJSON_Parse(json);
    mx_status st = MX_OK;
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != expected) {
        st = mx_error_set(MX_ERR_FORMAT, "%s: not a list of %zu class names", what, expected);
    } else {
        char **names = calloc(expected + 1, sizeof *names);
        if (!names) st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory for %zu class names", what, expected);
        size_t c = 0;
        for (const cJSON *item = a->child; st == MX_OK && item; item = item->next, c++) {
            if (!cJSON_IsString(item) || !valid_name(item->valuestring))
                st = mx_error_set(MX_ERR_FORMAT, "%s: class %zu is not a usable class name", what, c);
            else if (!(names[c] = strdup(item->valuestring)))
                st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory for %zu class names", what, expected);
        }
        /* Matching by name needs every name once. */
        char **sorted = st == MX_OK ? malloc((expected + 1) * sizeof *sorted) : NULL;
        if (st == MX_OK && !sorted) st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory", what);
        if (st == MX_OK) {
            memcpy(sorted, names, expected * sizeof *sorted);
            qsort(sorted, expected, sizeof *sorted, compare_names);
            for (size_t i = 1; st == MX_OK && i < expected; i++)
                if (!strcmp(sorted[i - 1], sorted[i]))
                    st = mx_error_set(MX_ERR_FORMAT, "%s: class name '%s' appears twice", what, sorted[i]);
        }
        free(sorted);
        if (st == MX_OK) *out = names;
        else mx_class_names_free(names, expected);
    }
    cJSON_Delete(a);
    return st;
}

/* Up to a few names of `names` whose flag is set, "a, b, c and 4 more". */
static void list_names(char *const *names, size_t n, const unsigned char *flag, char *buf, size_t cap)
{
    size_t shown = 0, total = 0, used = 0;
    buf[0] = '\0';
    for (size_t c = 0; c < n; c++) {
        if (!flag[c]) continue;
        total++;
        if (shown < 5 && used < cap) {
            int w = snprintf(buf + used, cap - used, "%s%s", shown ? ", " : "", names[c]);
            if (w > 0) used += (size_t)w;
            shown++;
        }
    }
    if (total > shown && used < cap) snprintf(buf + used, cap - used, " and %zu more", total - shown);
}

/* A model class's name and its position, to look names up in. */
typedef struct {
    const char *name;
    size_t index;
} named;

static int compare_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

static mx_status check_labels(const mx_dataset *ds, const char *what, size_t model_classes)
{
    if (ds->num_classes > model_classes)
        return mx_error_set(MX_ERR_FORMAT, "%s: the data has %zu classes but the model %zu", what, ds->num_classes,
                            model_classes);
    for (size_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || (size_t)ds->labels[i] >= model_classes)
            return mx_error_set(MX_ERR_FORMAT, "%s: sample %zu has label %d but the model has %zu classes", what, i,
                                (int)ds->labels[i], model_classes);
    return MX_OK;
}

mx_status mx_dataset_match_classes(mx_dataset *ds, const char *what, char *const *model_names, size_t model_classes,
                                   char *note, size_t note_cap)
{
    if (note_cap) note[0] = '\0';
    if (!ds->class_names || !model_names) {
        /* Unnamed classes on either side: labels are positions, and must exist in the model. */
        mx_status st = check_labels(ds, what, model_classes);
        if (st == MX_OK && ds->class_names && note_cap)
            snprintf(note, note_cap, "%s: the model stores no class names; the data's %zu classes are taken in "
                     "order as its first %zu", what, ds->num_classes, ds->num_classes);
        return st;
    }
    /* Each model class by name, then each data class looked up there. */
    named *sorted = malloc((model_classes + 1) * sizeof *sorted);
    int32_t *map = malloc((ds->num_classes + 1) * sizeof *map);
    unsigned char *present = calloc(model_classes + 1, 1);
    char **names = NULL;
    mx_status st = sorted && map && present ? MX_OK : mx_error_set(MX_ERR_NOMEM, "%s: out of memory", what);
    if (st == MX_OK) {
        for (size_t m = 0; m < model_classes; m++) sorted[m] = (named){model_names[m], m};
        qsort(sorted, model_classes, sizeof *sorted, compare_named);
    }
    for (size_t c = 0; st == MX_OK && c < ds->num_classes; c++) {
        named key = {ds->class_names[c], 0};
        const named *hit = model_classes ? bsearch(&key, sorted, model_classes, sizeof *sorted, compare_named) : NULL;
        if (!hit) {
            char known[400];
            memset(present, 1, model_classes);
            list_names(model_names, model_classes, present, known, sizeof known);
            st = mx_error_set(MX_ERR_FORMAT, "%s: class '%s' is not one of the model's %zu classes (%s)", what,
                              key.name, model_classes, known);
            break;
        }
        map[c] = (int32_t)hit->index;
    }
    if (st == MX_OK) st = mx_class_names_copy(model_names, model_classes, &names);
    if (st == MX_OK) {
        for (size_t i = 0; i < ds->n; i++) {
            int32_t l = ds->labels[i];
            if (l < 0 || (size_t)l >= ds->num_classes) {
                st = mx_error_set(MX_ERR_FORMAT, "%s: sample %zu has label %d of %zu", what, i, (int)l, ds->num_classes);
                break;
            }
        }
    }
    if (st == MX_OK) {
        for (size_t i = 0; i < ds->n; i++) ds->labels[i] = map[ds->labels[i]];
        for (size_t c = 0; c < ds->num_classes; c++) present[map[c]] = 1;
        size_t missing = 0;
        for (size_t m = 0; m < model_classes; m++) {
            present[m] = !present[m];
            missing += present[m];
        }
        if (missing && note_cap) {
            char list[400];
            list_names(model_names, model_classes, present, list, sizeof list);
            snprintf(note, note_cap, "%s: no images of %zu of the model's %zu classes (%s)", what, missing,
                     model_classes, list);
        }
        mx_class_names_free(ds->class_names, ds->num_classes);
        ds->class_names = names;
        ds->num_classes = model_classes;
        names = NULL;
    }
    mx_class_names_free(names, model_classes);
    free(sorted);
    free(map);
    free(present);
    return st;
}
