/* The safetensors format: an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
 * {string: string}}, then the raw little-endian tensor bytes. Written
 * atomically; read with every size and offset checked against the file. */
#ifndef MIXREG_SAFETENSORS_H
#define MIXREG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

#define MX_ST_MAX_NDIM 8

/* F16 and BF16 are read (weights saved in half precision, converted on
 * import) but mixreg's own files hold F32 and I64 only. */
typedef enum {
    MX_DTYPE_F32, MX_DTYPE_F64, MX_DTYPE_I32, MX_DTYPE_I64, MX_DTYPE_U8, MX_DTYPE_U32, MX_DTYPE_F16, MX_DTYPE_BF16
} mx_dtype;

typedef struct {
    char name[128];
    mx_dtype dtype;
    size_t ndim;
    size_t shape[MX_ST_MAX_NDIM];
    size_t nbytes;
    const void *data;   /* writer: caller's bytes; reader: inside the loaded file */
} mx_st_tensor;

typedef struct {
    const char *key;
    const char *value;
} mx_st_meta;

/* Writes the file atomically (temporary file, fsync, rename): on any failure,
 * a full disk included, the previous file at `path` is left as it was. */
mx_status mx_safetensors_write(const char *path, const mx_st_tensor *tensors, size_t count, const mx_st_meta *meta,
                               size_t meta_count);

typedef struct {
    uint8_t *file;        /* the whole file */
    size_t file_size;
    size_t count;
    mx_st_tensor *tensors;
    size_t meta_count;
    char **meta_keys;
    char **meta_values;
} mx_safetensors;

/* MX_ERR_FORMAT naming the file for: a header length beyond the file or over
 * 16 MiB, JSON that does not parse or is not one object, a key twice (at any
 * level), a tensor entry with other keys than dtype, shape and data_offsets, a
 * NUL or control byte in the header, non-string metadata, an unknown dtype, a
 * shape whose size overflows or disagrees with its offsets, offsets outside
 * the data area, overlapping or uncovered bytes (docs/formats.md). */
mx_status mx_safetensors_read(const char *path, mx_safetensors *out);

/* The same checks on bytes already in memory; takes ownership of `data`
 * (malloc'd, size + 1 bytes with a NUL at data[size]). `name` labels errors. */
mx_status mx_safetensors_parse(const char *name, uint8_t *data, size_t size, mx_safetensors *out);
void mx_safetensors_free(mx_safetensors *st);

const mx_st_tensor *mx_safetensors_find(const mx_safetensors *st, const char *name);
const char *mx_safetensors_meta(const mx_safetensors *st, const char *key);

size_t mx_dtype_size(mx_dtype dtype);

#endif
