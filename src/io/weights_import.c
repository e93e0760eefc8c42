/* Mapping a state dict onto a mixreg model (weights_import.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mixreg/checked.h"
#include "mixreg/fileio.h"
#include "mixreg/run_dir.h"
#include "mixreg/weights_import.h"

/* Prefixes wrappers add to every key, dropped in this order. */
static const char *const wrapper_prefixes[] = {"module.", "_orig_mod."};

/* Other libraries' names for the same tensors (prefix -> mixreg's). */
static const struct {
    const char *from, *to;
} name_table[] = {
    {"head.fc.", "fc."},  /* timm's newer classifier heads */
};

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int mx_import_canonical_name(const char *key, char *buf, size_t cap)
{
    for (size_t i = 0; i < sizeof wrapper_prefixes / sizeof wrapper_prefixes[0]; i++)
        if (!strncmp(key, wrapper_prefixes[i], strlen(wrapper_prefixes[i]))) key += strlen(wrapper_prefixes[i]);
    snprintf(buf, cap, "%s", key);
    for (size_t i = 0; i < sizeof name_table / sizeof name_table[0]; i++)
        if (!strncmp(key, name_table[i].from, strlen(name_table[i].from))) {
            snprintf(buf, cap, "%s%s", name_table[i].to, key + strlen(name_table[i].from));
            break;
        }
    return !has_suffix(buf, "num_batches_tracked");
}

typedef struct {
    char name[128];
    const mx_st_tensor *tensor;
    int used;
} named;

static int compare_named(const void *a, const void *b)
{
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

static named *find(named *index, size_t n, const char *name)
{
    named key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return bsearch(&key, index, n, sizeof key, compare_named);
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    if (exp == 0) {
        float f = ldexpf((float)man, -24);  /* zero or subnormal */
        return sign ? -f : f;
    }
    bits = exp == 31 ? sign | 0x7F800000u | man << 13 : sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The tensor's elements as float32 into dst; the file's bytes may be unaligned. */
static mx_status to_float(const mx_st_tensor *t, const char *name, size_t numel, float *dst)
{
    const uint8_t *p = t->data;
    for (size_t i = 0; i < numel; i++) {
        float f;
        if (t->dtype == MX_DTYPE_F32) {
            memcpy(&f, p + 4 * i, 4);
        } else if (t->dtype == MX_DTYPE_F64) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            f = fabs(d) <= 3.4028234663852886e38 ? (float)d : (float)INFINITY;  /* beyond float: refused below */
        } else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            if (t->dtype == MX_DTYPE_F16) {
                f = half_to_float(h);
            } else {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&f, &bits, sizeof f);
            }
        }
        if (!isfinite(f))
            return mx_error_set(MX_ERR_FORMAT, "tensor '%s' holds a NaN or infinite value (element %zu)", name, i);
        dst[i] = f;
    }
    return MX_OK;
}

static mx_status copy_into(named *index, size_t n, const char *name, size_t ndim, const size_t *shape, size_t numel,
                           float *dst)
{
    named *e = find(index, n, name);
    if (!e) return mx_error_set(MX_ERR_FORMAT, "tensor '%s' is missing", name);
    const mx_st_tensor *t = e->tensor;
    int same = t->ndim == ndim;
    for (size_t d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (size_t d = 0; d < ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%zu", d ? "x" : "", shape[d]);
        for (size_t d = 0; d < t->ndim; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", d ? "x" : "", t->shape[d]);
        return mx_error_set(MX_ERR_FORMAT, "tensor '%s' has shape [%s], the model's is [%s]", t->name, got, want);
    }
    if (t->dtype != MX_DTYPE_F32 && t->dtype != MX_DTYPE_F64 && t->dtype != MX_DTYPE_F16 && t->dtype != MX_DTYPE_BF16)
        return mx_error_set(MX_ERR_FORMAT, "tensor '%s' is not floating point", t->name);
    e->used = 1;
    return to_float(t, t->name, numel, dst);
}

/* Canonical names, sorted; two keys naming one tensor are refused. */
static mx_status build_index(const mx_weights_file *wf, named **out, size_t *count)
{
    named *index = calloc(wf->count + 1, sizeof *index);
    if (!index) return mx_error_set(MX_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < wf->count; i++) {
        if (!mx_import_canonical_name(wf->tensors[i].name, index[n].name, sizeof index[n].name)) continue;
        index[n++].tensor = &wf->tensors[i];
    }
    qsort(index, n, sizeof *index, compare_named);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(index[i - 1].name, index[i].name)) {
            mx_status st = mx_error_set(MX_ERR_FORMAT, "tensors '%s' and '%s' both stand for '%s'", index[i - 1].tensor->name,
                                        index[i].tensor->name, index[i].name);
            free(index);
            return st;
        }
    *out = index;
    *count = n;
    return MX_OK;
}

/* The input channels and classes the file's tensors give: the first
 * parameter when it is a convolution's weight [out, in, kh, kw], the last
 * 2-dimensional one (the classifier's weight [classes, features]). */
static mx_status shape_from_file(named *index, size_t n, const mx_model *probe, const mx_import_options *opt,
                                 mx_model_spec *spec)
{
    const mx_param_info *table;
    size_t count = mx_model_param_tensors(probe, &table);
    if (!opt->channels && count && table[0].ndim == 4) {
        named *e = find(index, n, table[0].name);
        if (!e) return mx_error_set(MX_ERR_FORMAT, "tensor '%s' is missing", table[0].name);
        if (e->tensor->ndim == 4 && e->tensor->shape[1] >= 1 && e->tensor->shape[1] <= 4) spec->in_channels = e->tensor->shape[1];
    }
    for (size_t i = count; i-- > 0;) {
        if (table[i].ndim != 2) continue;
        named *e = find(index, n, table[i].name);
        if (!e) return mx_error_set(MX_ERR_FORMAT, "tensor '%s' (the classifier) is missing", table[i].name);
        if (e->tensor->ndim != 2 || e->tensor->shape[0] < 1)
            return mx_error_set(MX_ERR_FORMAT, "tensor '%s' is not a classifier's weight [classes, features]", e->tensor->name);
        if (opt->classes && e->tensor->shape[0] != opt->classes)
            return mx_error_set(MX_ERR_FORMAT, "tensor '%s' has %zu rows (classes), not the %zu asked for", e->tensor->name,
                                e->tensor->shape[0], opt->classes);
        spec->num_classes = e->tensor->shape[0];
        break;
    }
    return MX_OK;
}

mx_status mx_weights_import(const mx_weights_file *wf, const mx_import_options *opt, mx_model **out)
{
    *out = NULL;
    named *index = NULL;
    size_t n = 0;
    mx_status st = build_index(wf, &index, &n);
    if (st != MX_OK) return st;
    mx_model_spec spec = {0};
    snprintf(spec.arch, sizeof spec.arch, "%s", opt->arch);
    spec.in_channels = opt->channels ? opt->channels : 3;
    spec.in_height = opt->height;
    spec.in_width = opt->width;
    spec.num_classes = opt->classes ? opt->classes : 2;  /* a probe: the file says how many */
    spec.backend = MX_BACKEND_CPU;
    /* Every value comes from the file, 2 bytes each at least (F16): a
     * classifier declared with a huge shape cannot allocate more than that. */
    size_t bound = wf->file_size / 2 + 1;
    mx_model *probe = NULL, *model = NULL;
    st = mx_model_create_bounded(&spec, 0, bound, &probe);
    if (st == MX_OK) st = shape_from_file(index, n, probe, opt, &spec);
    mx_model_free(probe);
    if (st == MX_OK) st = mx_model_create_bounded(&spec, 0, bound, &model);
    const mx_param_info *table;
    size_t count = st == MX_OK ? mx_model_param_tensors(model, &table) : 0;
    float *params = st == MX_OK ? mx_model_params(model) : NULL;
    for (size_t i = 0; st == MX_OK && i < count; i++)
        st = copy_into(index, n, table[i].name, table[i].ndim, table[i].shape, table[i].numel, params + table[i].offset);
    const mx_buffer_info *buffers;
    size_t num_buffers = st == MX_OK ? mx_model_buffer_tensors(model, &buffers) : 0;
    for (size_t i = 0; st == MX_OK && i < num_buffers; i++)
        if (buffers[i].dtype == MX_BUFFER_F32)  /* running statistics; the I64 counters start at 0 */
            st = copy_into(index, n, buffers[i].name, buffers[i].ndim, buffers[i].shape, buffers[i].numel, buffers[i].data);
    size_t extra = 0, first = 0;
    for (size_t i = 0; st == MX_OK && i < n; i++)
        if (!index[i].used && !extra++) first = i;
    if (st == MX_OK && extra && !opt->allow_extra)
        st = mx_error_set(MX_ERR_FORMAT, "%zu tensor%s that model '%s' does not have, the first '%s' (--allow-extra "
                          "ignores them)", extra, extra == 1 ? "" : "s", spec.arch, index[first].tensor->name);
    free(index);
    if (st != MX_OK) {
        mx_model_free(model);
        return st;
    }
    *out = model;
    return MX_OK;
}

static mx_status refuse_existing_run(const char *dir)
{
    char path[MX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, MX_RUN_MODEL_FILE);
    struct stat sb;
    if (lstat(path, &sb) == 0)
        return mx_error_set(MX_ERR_ARG, "%s already holds a run; choose another --out", dir);
    return MX_OK;
}

mx_status mx_import_save_run(const char *dir, const mx_run *run)
{
    if (!dir[0] || strlen(dir) >= MX_PATH_MAX) return mx_error_set(MX_ERR_ARG, "no usable run directory given");
    int lock_fd = -1;
    mx_status st = refuse_existing_run(dir);
    if (st == MX_OK) st = mx_make_dirs(dir);
    if (st == MX_OK) st = mx_run_dir_lock(dir, &lock_fd);
    if (st == MX_OK) st = refuse_existing_run(dir);  /* again, now that no other writer can be saving one */
    if (st == MX_OK) {
        mx_run_dir_remove_stale_temporaries(dir);
        st = mx_run_dir_start_over(dir);
    }
    char *json = st == MX_OK ? mx_train_config_to_json(&run->config) : NULL;
    if (st == MX_OK && !json) st = mx_error_set(MX_ERR_NOMEM, "out of memory writing the config");
    char path[MX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (st == MX_OK) st = mx_file_write_atomic(path, json, strlen(json));
    free(json);
    if (st == MX_OK) st = mx_run_save(dir, run);
    mx_run_dir_unlock(lock_fd);
    return st;
}
