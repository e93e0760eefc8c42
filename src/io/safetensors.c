#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/checked.h"
#include "mixreg/fileio.h"
#include "mixreg/safetensors.h"

/* mixreg's own headers are below 1 MiB (resnet50 with its optimizer state);
 * the bound keeps a hostile header's JSON tree (tens of bytes per token) small. */
#define MAX_HEADER_BYTES ((size_t)16 << 20)
#define MAX_FILE_BYTES ((size_t)16 << 30)

static const struct {
    const char *name;
    mx_dtype dtype;
    size_t size;
} dtype_table[] = {
    {"F32", MX_DTYPE_F32, 4}, {"F64", MX_DTYPE_F64, 8}, {"I32", MX_DTYPE_I32, 4},
    {"I64", MX_DTYPE_I64, 8}, {"U8", MX_DTYPE_U8, 1},   {"U32", MX_DTYPE_U32, 4},
    {"F16", MX_DTYPE_F16, 2}, {"BF16", MX_DTYPE_BF16, 2},
};
#define NUM_DTYPES (sizeof dtype_table / sizeof dtype_table[0])

size_t mx_dtype_size(mx_dtype dtype)
{
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (dtype_table[i].dtype == dtype) return dtype_table[i].size;
    return 0;
}

static const char *dtype_name(mx_dtype dtype)
{
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (dtype_table[i].dtype == dtype) return dtype_table[i].name;
    return "?";
}

static cJSON *header_json(const mx_st_tensor *tensors, size_t count, const mx_st_meta *meta, size_t meta_count)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    if (meta_count) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (size_t i = 0; m && i < meta_count; i++) cJSON_AddStringToObject(m, meta[i].key, meta[i].value);
    }
    size_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        const mx_st_tensor *t = &tensors[i];
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        if (!entry) break;
        cJSON_AddStringToObject(entry, "dtype", dtype_name(t->dtype));
        cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
        for (size_t d = 0; shape && d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *offsets = cJSON_AddArrayToObject(entry, "data_offsets");
        if (offsets) {
            cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
            cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(offset + t->nbytes)));
        }
        offset += t->nbytes;
    }
    return root;
}

mx_status mx_safetensors_write(const char *path, const mx_st_tensor *tensors, size_t count, const mx_st_meta *meta,
                               size_t meta_count)
{
    size_t data_bytes = 0;
    for (size_t i = 0; i < count; i++) {
        size_t numel, bytes;
        if (!mx_size_product(tensors[i].shape, tensors[i].ndim, &numel) ||
            !mx_size_mul(numel, mx_dtype_size(tensors[i].dtype), &bytes) || bytes != tensors[i].nbytes)
            return mx_error_set(MX_ERR_ARG, "%s: tensor '%s' has %zu bytes for its shape", path, tensors[i].name,
                                tensors[i].nbytes);
        if (!mx_size_add(data_bytes, bytes, &data_bytes))
            return mx_error_set(MX_ERR_ARG, "%s: the tensors' sizes overflow", path);
    }
    cJSON *root = header_json(tensors, count, meta, meta_count);
    char *header = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!header) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory building the header", path);
    /* Pad the header with spaces so the tensor data starts 8-byte aligned. */
    size_t header_len = strlen(header);
    size_t padded = (header_len + 7) & ~(size_t)7;
    size_t total;
    uint8_t *buf = mx_size_add(8 + padded, data_bytes, &total) ? malloc(total) : NULL;
    if (!buf) {
        free(header);
        return mx_error_set(MX_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, total);
    }
    for (int b = 0; b < 8; b++) buf[b] = (uint8_t)((uint64_t)padded >> (8 * b));
    memcpy(buf + 8, header, header_len);
    memset(buf + 8 + header_len, ' ', padded - header_len);
    free(header);
    uint8_t *p = buf + 8 + padded;
    for (size_t i = 0; i < count; i++) {
        if (tensors[i].nbytes) memcpy(p, tensors[i].data, tensors[i].nbytes);
        p += tensors[i].nbytes;
    }
    mx_status st = mx_file_write_atomic(path, buf, total);
    free(buf);
    return st;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_size(const cJSON *item, size_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v) return 0;
    *out = (size_t)v;
    return 1;
}

/* What cJSON lets through but a C reader cannot take: a NUL byte anywhere, a
 * raw control byte inside a string, or the escape \u0000 (a name with a NUL
 * in it is cut short by every string function, and could then equal another
 * name). JSON strings are the only place a backslash may appear. */
static int header_text_ok(const char *text, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!c) return 0;
        if (!in_string) {
            in_string = c == '"';
        } else if (c == '"') {
            in_string = 0;
        } else if (c < 0x20) {
            return 0;
        } else if (c == '\\') {
            if (i + 5 < len && text[i + 1] == 'u' && !memcmp(text + i + 2, "0000", 4)) return 0;
            i++;  /* the escaped character cannot end the string */
        }
    }
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key of `object` that occurs twice, or NULL. cJSON keeps every
 * duplicate and finds the first, so a second "__metadata__" or a second
 * tensor of the same name would otherwise be read as well (sorted: n log n
 * even for a header of a million keys). */
static const char *duplicate_key(const cJSON *object, size_t n, int *oom)
{
    *oom = 0;
    if (n < 2) return NULL;
    const char **names = malloc(n * sizeof *names);
    if (!names) {
        *oom = 1;
        return NULL;
    }
    size_t k = 0;
    for (const cJSON *item = object->child; item && k < n; item = item->next) names[k++] = item->string;
    qsort(names, k, sizeof *names, compare_names);
    const char *dup = NULL;
    for (size_t i = 1; i < k && !dup; i++)
        if (!strcmp(names[i - 1], names[i])) dup = names[i];
    free(names);
    return dup;
}

static mx_status parse_tensor(const char *path, const cJSON *entry, size_t data_size, mx_st_tensor *t, size_t *begin)
{
    if (!cJSON_IsObject(entry)) return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' is not an object", path, t->name);
    /* Exactly the three keys of the format, each once. */
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    const cJSON *found[3] = {NULL, NULL, NULL};
    for (const cJSON *item = entry->child; item; item = item->next) {
        int k = 0;
        while (k < 3 && strcmp(item->string, keys[k])) k++;
        if (k == 3) return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' has an unknown key", path, t->name);
        if (found[k]) return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' has '%s' twice", path, t->name, keys[k]);
        found[k] = item;
    }
    const cJSON *dtype = found[0], *shape = found[1], *offsets = found[2];
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", path, t->name);
    size_t elem = 0;
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (!strcmp(dtype->valuestring, dtype_table[i].name)) {
            t->dtype = dtype_table[i].dtype;
            elem = dtype_table[i].size;
        }
    if (!elem) return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' has unsupported dtype '%.32s'", path, t->name, dtype->valuestring);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > MX_ST_MAX_NDIM) return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' has %d dimensions", path, t->name, ndim);
    t->ndim = (size_t)ndim;
    int d = 0;
    for (const cJSON *dim = shape->child; dim; dim = dim->next, d++)
        if (!json_size(dim, &t->shape[d]))
            return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' has a bad shape", path, t->name);
    size_t numel, bytes;
    if (!mx_size_product(t->shape, t->ndim, &numel) || !mx_size_mul(numel, elem, &bytes))
        return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' shape overflows", path, t->name);
    size_t b, e;
    if (!json_size(offsets->child, &b) || !json_size(offsets->child->next, &e) || e < b || e > data_size)
        return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' has data_offsets outside the %zu data bytes", path,
                            t->name, data_size);
    if (e - b != bytes)
        return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' shape needs %zu bytes but its offsets span %zu", path,
                            t->name, bytes, e - b);
    t->nbytes = e - b;
    *begin = b;
    return MX_OK;
}

static mx_status parse_metadata(const char *path, const cJSON *meta, mx_safetensors *st)
{
    if (!cJSON_IsObject(meta)) return mx_error_set(MX_ERR_FORMAT, "%s: __metadata__ is not an object", path);
    size_t n = (size_t)cJSON_GetArraySize(meta);
    int oom;
    const char *dup = duplicate_key(meta, n, &oom);
    if (oom) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    if (dup) return mx_error_set(MX_ERR_FORMAT, "%s: metadata key '%.64s' appears twice", path, dup);
    st->meta_keys = calloc(n ? n : 1, sizeof(char *));
    st->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    for (const cJSON *item = meta->child; item && st->meta_count < n; item = item->next) {
        if (!cJSON_IsString(item))
            return mx_error_set(MX_ERR_FORMAT, "%s: metadata '%.64s' is not a string", path, item->string);
        size_t k = st->meta_count++;
        st->meta_keys[k] = strdup(item->string);
        st->meta_values[k] = strdup(item->valuestring);
        if (!st->meta_keys[k] || !st->meta_values[k]) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    }
    return MX_OK;
}

typedef struct {
    size_t begin, end;
} byte_range;

/* By begin, then end: an empty tensor sorts before a tensor starting where it does. */
static int compare_ranges(const void *a, const void *b)
{
    const byte_range *x = a, *y = b;
    if (x->begin != y->begin) return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->end > y->end) - (x->end < y->end);
}

/* The data area must be covered exactly once: no overlaps, no holes. */
static mx_status check_coverage(const char *path, byte_range *ranges, size_t n, size_t data_size)
{
    qsort(ranges, n, sizeof *ranges, compare_ranges);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (ranges[i].begin != at)
            return mx_error_set(MX_ERR_FORMAT, "%s: tensor data %s at byte %zu", path,
                                ranges[i].begin < at ? "overlaps" : "has a hole", at);
        at = ranges[i].end;
    }
    if (at != data_size) return mx_error_set(MX_ERR_FORMAT, "%s: %zu data bytes but tensors cover %zu", path, data_size, at);
    return MX_OK;
}

/* The tensors and the metadata of a parsed header object with unique keys. */
static mx_status parse_entries(const char *path, const cJSON *root, size_t n, size_t header_len, size_t data_size,
                               mx_safetensors *st)
{
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    byte_range *ranges = calloc(n ? n : 1, sizeof *ranges);
    mx_status status = (st->tensors && ranges) ? MX_OK : mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    for (const cJSON *item = root->child; status == MX_OK && item && st->count < n; item = item->next) {
        if (!strcmp(item->string, "__metadata__")) {
            status = parse_metadata(path, item, st);
            continue;
        }
        mx_st_tensor *t = &st->tensors[st->count];
        size_t name_len = strlen(item->string);
        if (!name_len || name_len >= sizeof t->name) {
            status = mx_error_set(MX_ERR_FORMAT, "%s: a tensor name is empty or longer than %zu bytes", path,
                                  sizeof t->name - 1);
            break;
        }
        memcpy(t->name, item->string, name_len + 1);
        size_t begin = 0;
        status = parse_tensor(path, item, data_size, t, &begin);
        if (status != MX_OK) break;
        t->data = st->file + 8 + header_len + begin;
        ranges[st->count].begin = begin;
        ranges[st->count].end = begin + t->nbytes;
        st->count++;
    }
    if (status == MX_OK) status = check_coverage(path, ranges, st->count, data_size);
    free(ranges);
    return status;
}

static mx_status parse_header(const char *path, const char *text, size_t len, size_t data_size, mx_safetensors *st)
{
    if (!header_text_ok(text, len))
        return mx_error_set(MX_ERR_FORMAT, "%s: header holds a NUL or control character", path);
    /* cJSON stops at the end of the first value: what follows may only be
     * the padding writers add (spaces). Nesting is bounded by cJSON
     * (CJSON_NESTING_LIMIT) and every array and object is walked iteratively here. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root && end) {
        for (const char *p = end; p < text + len; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                cJSON_Delete(root);
                return mx_error_set(MX_ERR_FORMAT, "%s: header has bytes after its JSON object", path);
            }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mx_error_set(MX_ERR_FORMAT, "%s: header is not a JSON object", path);
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    int oom;
    const char *dup = duplicate_key(root, n, &oom);
    mx_status status = MX_OK;
    if (oom) status = mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    else if (dup) status = mx_error_set(MX_ERR_FORMAT, "%s: header key '%.64s' appears twice", path, dup);
    else status = parse_entries(path, root, n, len, data_size, st);
    cJSON_Delete(root);
    return status;
}

mx_status mx_safetensors_parse(const char *path, uint8_t *data, size_t size, mx_safetensors *out)
{
    memset(out, 0, sizeof *out);
    out->file = data;
    out->file_size = size;
    if (size < 8) {
        mx_safetensors_free(out);
        return mx_error_set(MX_ERR_FORMAT, "%s: truncated (%zu bytes, not a safetensors file)", path, size);
    }
    uint64_t header_len = 0;
    for (int b = 0; b < 8; b++) header_len |= (uint64_t)data[b] << (8 * b);
    if (header_len > MAX_HEADER_BYTES || header_len > size - 8) {
        mx_safetensors_free(out);
        return mx_error_set(MX_ERR_FORMAT, "%s: header length %llu does not fit the %zu-byte file (truncated or not safetensors)",
                            path, (unsigned long long)header_len, size);
    }
    mx_status st = parse_header(path, (const char *)data + 8, (size_t)header_len, size - 8 - (size_t)header_len, out);
    if (st != MX_OK) mx_safetensors_free(out);
    return st;
}

mx_status mx_safetensors_read(const char *path, mx_safetensors *out)
{
    memset(out, 0, sizeof *out);
    char *file;
    size_t size;
    mx_status st = mx_file_read_all(path, MAX_FILE_BYTES, &file, &size);
    if (st != MX_OK) return st;
    return mx_safetensors_parse(path, (uint8_t *)file, size, out);
}

void mx_safetensors_free(mx_safetensors *st)
{
    for (size_t i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->tensors);
    free(st->file);
    memset(st, 0, sizeof *st);
}

const mx_st_tensor *mx_safetensors_find(const mx_safetensors *st, const char *name)
{
    for (size_t i = 0; i < st->count; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

const char *mx_safetensors_meta(const mx_safetensors *st, const char *key)
{
    for (size_t i = 0; i < st->meta_count; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}
