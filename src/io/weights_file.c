/* State dicts from safetensors and .pt files (weights_file.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/checked.h"
#include "mixreg/fileio.h"
#include "mixreg/torch_pickle.h"
#include "mixreg/weights_file.h"
#include "mixreg/zip_reader.h"

/* The archive's one "<prefix>/data.pkl" at the top level: torch.save names
 * the prefix after the file (1.x) or "archive" (2.x); every record lies under it. */
static mx_status find_pickle(const char *label, const mx_zip *zip, char *prefix, size_t cap, const mx_zip_entry **pkl)
{
    *pkl = NULL;
    for (size_t i = 0; i < zip->count; i++) {
        const char *name = zip->entries[i].name, *slash = strchr(name, '/');
        if (!slash || slash == name || strcmp(slash, "/data.pkl")) continue;
        if (*pkl) return mx_error_set(MX_ERR_FORMAT, "%s: the archive holds two data.pkl records", label);
        *pkl = &zip->entries[i];
        snprintf(prefix, cap, "%.*s", (int)(slash - name), name);
    }
    if (!*pkl)
        return mx_error_set(MX_ERR_FORMAT, "%s: a zip archive without a data.pkl record (not a torch.save file)", label);
    return MX_OK;
}

/* Row-major strides for the shape (dimensions of size 1 may have any). */
static int contiguous(const mx_torch_tensor_ref *r)
{
    size_t expect = 1;
    for (size_t d = r->ndim; d-- > 0;) {
        if (r->shape[d] != 1 && r->stride[d] != expect) return 0;
        if (!mx_size_mul(expect, r->shape[d], &expect)) return 0;
    }
    return 1;
}

static mx_status resolve(const char *label, const mx_zip *zip, const char *prefix, const mx_torch_tensor_ref *r,
                         mx_st_tensor *t)
{
    char name[MX_ZIP_MAX_NAME + 128];
    snprintf(name, sizeof name, "%s/data/%s", prefix, r->storage);
    const mx_zip_entry *e = mx_zip_find(zip, name);
    if (!e) return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s': its storage record %s is missing", label, r->name, name);
    size_t elem = mx_dtype_size(r->dtype), numel, end, bytes;
    if (!mx_size_mul(r->storage_numel, elem, &bytes) || bytes != e->size)
        return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s': storage %s holds %zu bytes, not the %zu declared", label,
                            r->name, r->storage, e->size, bytes);
    if (!contiguous(r))
        return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' is not contiguous (save tensor.contiguous())", label, r->name);
    mx_size_product(r->shape, r->ndim, &numel);
    if (numel && (!mx_size_add(r->offset, numel, &end) || end > r->storage_numel))
        return mx_error_set(MX_ERR_FORMAT, "%s: tensor '%s' lies outside its storage", label, r->name);
    const uint8_t *data;
    mx_status st = mx_zip_entry_data(zip, e, &data);
    if (st != MX_OK) return mx_error_wrap(st, "%s", label);
    snprintf(t->name, sizeof t->name, "%s", r->name);
    t->dtype = r->dtype;
    t->ndim = r->ndim;
    memcpy(t->shape, r->shape, r->ndim * sizeof(size_t));
    t->nbytes = numel * elem;
    t->data = data + (numel ? r->offset * elem : 0);
    return MX_OK;
}

/* PyTorch writes "<prefix>/byteorder" since 2.1; older files are little-endian. */
static mx_status check_byte_order(const char *label, const mx_zip *zip, const char *prefix)
{
    char name[MX_ZIP_MAX_NAME + 32];
    snprintf(name, sizeof name, "%s/byteorder", prefix);
    const mx_zip_entry *e = mx_zip_find(zip, name);
    const uint8_t *data;
    if (!e) return MX_OK;
    if (mx_zip_entry_data(zip, e, &data) != MX_OK || e->size != 6 || memcmp(data, "little", 6))
        return mx_error_set(MX_ERR_FORMAT, "%s: the tensors are not stored little-endian", label);
    return MX_OK;
}

mx_status mx_weights_file_parse_pt(const char *label, uint8_t *data, size_t size, mx_weights_file *out)
{
    memset(out, 0, sizeof *out);
    out->file = data;
    out->file_size = size;
    mx_zip zip;
    mx_status st = mx_zip_open(label, data, size, &zip);
    if (st != MX_OK) {
        mx_weights_file_free(out);
        return st;
    }
    char prefix[MX_ZIP_MAX_NAME + 1];
    const mx_zip_entry *pkl_entry;
    const uint8_t *pkl = NULL;
    mx_torch_tensor_ref *refs = NULL;
    size_t count = 0;
    st = find_pickle(label, &zip, prefix, sizeof prefix, &pkl_entry);
    if (st == MX_OK) st = check_byte_order(label, &zip, prefix);
    if (st == MX_OK) st = mx_zip_entry_data(&zip, pkl_entry, &pkl);
    if (st == MX_OK) st = mx_torch_pickle_parse(label, pkl, pkl_entry->size, &refs, &count);
    if (st == MX_OK) {
        out->tensors = calloc(count, sizeof *out->tensors);
        if (!out->tensors) st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory", label);
    }
    for (size_t i = 0; st == MX_OK && i < count; i++) st = resolve(label, &zip, prefix, &refs[i], &out->tensors[i]);
    out->count = count;
    free(refs);
    mx_zip_free(&zip);
    if (st != MX_OK) mx_weights_file_free(out);
    return st;
}

mx_status mx_weights_file_read(const char *path, mx_weights_file *out)
{
    memset(out, 0, sizeof *out);
    char *data;
    size_t size;
    mx_status st = mx_file_read_all(path, MX_WEIGHTS_FILE_MAX_BYTES, &data, &size);
    if (st != MX_OK) return st;
    const uint8_t *b = (const uint8_t *)data;
    if (size >= 4 && !memcmp(b, "PK\x03\x04", 4)) return mx_weights_file_parse_pt(path, (uint8_t *)data, size, out);
    /* torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False): a bare pickle. */
    if (size >= 2 && b[0] == 0x80 && b[1] <= 5) {
        free(data);
        return mx_error_set(MX_ERR_FORMAT, "%s: an old-style torch.save file (a bare pickle, not a zip archive); "
                            "re-save it with PyTorch 1.6 or later, or as safetensors", path);
    }
    st = mx_safetensors_parse(path, (uint8_t *)data, size, &out->st);  /* takes data */
    if (st != MX_OK) return st;
    out->is_safetensors = 1;
    out->file_size = out->st.file_size;
    out->count = out->st.count;
    out->tensors = out->st.tensors;
    return MX_OK;
}

void mx_weights_file_free(mx_weights_file *wf)
{
    if (wf->is_safetensors) {
        mx_safetensors_free(&wf->st);
    } else {
        free(wf->tensors);
        free(wf->file);
    }
    memset(wf, 0, sizeof *wf);
}
