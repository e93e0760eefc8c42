#include <cjson/cJSON.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/parse.h"
#include "mixreg/run.h"
#include "mixreg/safetensors.h"

#define FORMAT_VERSION "1"

static char *spec_json(const mx_model_spec *spec)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "arch", spec->arch);
    cJSON_AddNumberToObject(o, "in_channels", (double)spec->in_channels);
    cJSON_AddNumberToObject(o, "in_height", (double)spec->in_height);
    cJSON_AddNumberToObject(o, "in_width", (double)spec->in_width);
    cJSON_AddNumberToObject(o, "num_classes", (double)spec->num_classes);
    cJSON *hidden = cJSON_AddArrayToObject(o, "hidden");
    for (size_t i = 0; i < spec->num_hidden; i++) cJSON_AddItemToArray(hidden, cJSON_CreateNumber((double)spec->hidden[i]));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static char *normalizer_json(const mx_normalizer *nz)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *mean = cJSON_AddArrayToObject(o, "mean"), *std = cJSON_AddArrayToObject(o, "std");
    for (size_t c = 0; c < nz->channels; c++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(nz->mean[c]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(nz->std[c]));
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

#define RNG_WORDS 11 /* key[2], ctr[4], buf[4], used */

static void rng_to_words(const mx_rng *rng, uint32_t *w)
{
    memcpy(w, rng->key, 2 * sizeof(uint32_t));
    memcpy(w + 2, rng->ctr, 4 * sizeof(uint32_t));
    memcpy(w + 6, rng->buf, 4 * sizeof(uint32_t));
    w[10] = rng->used;
}

static void rng_from_words(const uint32_t *w, mx_rng *rng)
{
    memcpy(rng->key, w, 2 * sizeof(uint32_t));
    memcpy(rng->ctr, w + 2, 4 * sizeof(uint32_t));
    memcpy(rng->buf, w + 6, 4 * sizeof(uint32_t));
    rng->used = w[10];
}

mx_status mx_run_save(const char *dir, const mx_run *run)
{
    char path[MX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, MX_RUN_MODEL_FILE);
    return mx_run_save_file(path, run);
}

mx_status mx_run_save_file(const char *path, const mx_run *run)
{
    const mx_param_info *table;
    const mx_buffer_info *buffers;
    size_t count = mx_model_param_tensors(run->model, &table);
    size_t num_buffers = mx_model_buffer_tensors(run->model, &buffers);
    size_t total = count + num_buffers + 2 + (run->momentum ? count + 1 : 0);
    mx_st_tensor *tensors = calloc(total, sizeof *tensors);
    if (!tensors) return mx_error_set(MX_ERR_NOMEM, "out of memory saving the model");
    const float *params = mx_model_params(run->model);
    for (size_t i = 0; i < count; i++) {
        snprintf(tensors[i].name, sizeof tensors[i].name, "%s", table[i].name);
        tensors[i].dtype = MX_DTYPE_F32;
        tensors[i].ndim = table[i].ndim;
        memcpy(tensors[i].shape, table[i].shape, table[i].ndim * sizeof(size_t));
        tensors[i].nbytes = table[i].numel * sizeof(float);
        tensors[i].data = params + table[i].offset;
    }
    /* Buffers (batch norm's running statistics) under their PyTorch names, after the parameters. */
    mx_st_tensor *bt = tensors + count;
    for (size_t i = 0; i < num_buffers; i++) {
        snprintf(bt[i].name, sizeof bt[i].name, "%s", buffers[i].name);
        bt[i].dtype = buffers[i].dtype == MX_BUFFER_F32 ? MX_DTYPE_F32 : MX_DTYPE_I64;
        bt[i].ndim = buffers[i].ndim;
        memcpy(bt[i].shape, buffers[i].shape, buffers[i].ndim * sizeof(size_t));
        bt[i].nbytes = buffers[i].numel * (buffers[i].dtype == MX_BUFFER_F32 ? sizeof(float) : sizeof(int64_t));
        bt[i].data = buffers[i].data;
    }
    count += num_buffers;  /* the tensors before the rescale statistics */
    const mx_model_spec *spec = mx_model_get_spec(run->model);
    mx_st_tensor *xb = &tensors[count], *yb = &tensors[count + 1];
    snprintf(xb->name, sizeof xb->name, "mixreg.rescale.x_bar");
    xb->dtype = MX_DTYPE_F32;
    xb->ndim = 3;
    xb->shape[0] = spec->in_channels;
    xb->shape[1] = spec->in_height;
    xb->shape[2] = spec->in_width;
    xb->nbytes = run->rescale.input_size * sizeof(float);
    xb->data = run->rescale.x_bar;
    snprintf(yb->name, sizeof yb->name, "mixreg.rescale.y_bar");
    yb->dtype = MX_DTYPE_F32;
    yb->ndim = 1;
    yb->shape[0] = run->rescale.num_classes;
    yb->nbytes = run->rescale.num_classes * sizeof(float);
    yb->data = run->rescale.y_bar;
    /* Stored as I64 (not U32) so that PyTorch versions without uint32 load the file. */
    int64_t rng_words[RNG_WORDS];
    if (run->momentum) {
        size_t num_params = count - num_buffers;
        for (size_t i = 0; i < num_params; i++) {
            mx_st_tensor *m = &tensors[count + 2 + i];
            *m = tensors[i];
            snprintf(m->name, sizeof m->name, "mixreg.optim.momentum.%s", table[i].name);
            m->data = run->momentum + table[i].offset;
        }
        mx_st_tensor *r = &tensors[count + 2 + num_params];
        uint32_t words[RNG_WORDS];
        rng_to_words(&run->mix_rng, words);
        for (int k = 0; k < RNG_WORDS; k++) rng_words[k] = words[k];
        snprintf(r->name, sizeof r->name, "mixreg.rng.mixup");
        r->dtype = MX_DTYPE_I64;
        r->ndim = 1;
        r->shape[0] = RNG_WORDS;
        r->nbytes = sizeof rng_words;
        r->data = rng_words;
    }

    char theta[32], epoch[32], step[32], loss_sum[32], best[32];
    snprintf(loss_sum, sizeof loss_sum, "%.17g", run->epoch_loss_sum);
    snprintf(best, sizeof best, "%.17g", run->best_score);
    snprintf(theta, sizeof theta, "%.17g", run->rescale.theta_bar);
    snprintf(epoch, sizeof epoch, "%zu", run->epoch);
    snprintf(step, sizeof step, "%zu", run->step);
    char *config = mx_train_config_to_json(&run->config);
    char *model = spec_json(spec);
    char *norm = normalizer_json(&run->normalizer);
    char *classes = run->class_names ? mx_class_names_to_json(run->class_names, spec->num_classes) : NULL;
    mx_status st;
    if (!config || !model || !norm || (run->class_names && !classes)) {
        st = mx_error_set(MX_ERR_NOMEM, "out of memory saving the model");
    } else {
        mx_st_meta meta[] = {
            {"format", "pt"},  /* lets safetensors' PyTorch loader accept the file */
            {"mixreg.format_version", FORMAT_VERSION},
            {"mixreg.version", MIXREG_VERSION},
            {"mixreg.model", model},
            {"mixreg.normalize", norm},
            {"mixreg.theta_bar", theta},
            {"mixreg.epoch", epoch},
            {"mixreg.step", step},
            {"mixreg.config", config},
            {"mixreg.epoch_loss_sum", loss_sum},
            {"mixreg.best_score", best},
            {"mixreg.classes", classes}, /* last: left out when NULL */
        };
        st = mx_safetensors_write(path, tensors, total, meta, sizeof meta / sizeof meta[0] - !classes);
    }
    free(config);
    free(model);
    free(norm);
    free(classes);
    free(tensors);
    return st;
}

static mx_status json_size_field(const cJSON *o, const char *key, size_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e9)
        return mx_error_set(MX_ERR_FORMAT, "metadata mixreg.model: bad '%s'", key);
    *out = (size_t)v->valuedouble;
    return MX_OK;
}

static mx_status parse_spec(const char *text, mx_model_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    cJSON *o = cJSON_Parse(text);
    mx_status st = MX_OK;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(o, "arch");
    const cJSON *hidden = cJSON_GetObjectItemCaseSensitive(o, "hidden");
    if (!cJSON_IsString(arch) || strlen(arch->valuestring) >= sizeof spec->arch || !cJSON_IsArray(hidden) ||
        cJSON_GetArraySize(hidden) > MX_MAX_HIDDEN) {
        st = mx_error_set(MX_ERR_FORMAT, "metadata mixreg.model is malformed");
    } else {
        strcpy(spec->arch, arch->valuestring);
        if (st == MX_OK) st = json_size_field(o, "in_channels", &spec->in_channels);
        if (st == MX_OK) st = json_size_field(o, "in_height", &spec->in_height);
        if (st == MX_OK) st = json_size_field(o, "in_width", &spec->in_width);
        if (st == MX_OK) st = json_size_field(o, "num_classes", &spec->num_classes);
        for (const cJSON *w = hidden->child; st == MX_OK && w; w = w->next) {
            if (!cJSON_IsNumber(w) || w->valuedouble < 1 || w->valuedouble > 65536)
                st = mx_error_set(MX_ERR_FORMAT, "metadata mixreg.model: bad hidden width");
            else
                spec->hidden[spec->num_hidden++] = (size_t)w->valuedouble;
        }
    }
    cJSON_Delete(o);
    return st;
}

static mx_status parse_normalizer(const char *text, size_t channels, mx_normalizer *nz)
{
    cJSON *o = cJSON_Parse(text);
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(o, "mean"), *std = cJSON_GetObjectItemCaseSensitive(o, "std");
    float m[MX_MAX_CHANNELS], s[MX_MAX_CHANNELS];
    mx_status st = MX_OK;
    if (!cJSON_IsArray(mean) || !cJSON_IsArray(std) || channels > MX_MAX_CHANNELS ||
        cJSON_GetArraySize(mean) != (int)channels || cJSON_GetArraySize(std) != (int)channels) {
        st = mx_error_set(MX_ERR_FORMAT, "metadata mixreg.normalize does not match the model's %zu channels", channels);
    } else {
        for (size_t c = 0; c < channels; c++) {
            const cJSON *mc = cJSON_GetArrayItem(mean, (int)c), *sc = cJSON_GetArrayItem(std, (int)c);
            if (!cJSON_IsNumber(mc) || !cJSON_IsNumber(sc)) {
                st = mx_error_set(MX_ERR_FORMAT, "metadata mixreg.normalize holds a non-number");
                break;
            }
            m[c] = (float)mc->valuedouble;
            s[c] = (float)sc->valuedouble;
        }
        if (st == MX_OK) st = mx_normalizer_init(nz, channels, m, s);
    }
    cJSON_Delete(o);
    return st;
}

/* Copies a float tensor of exactly `numel` elements out of the file. */
static mx_status copy_tensor(const mx_safetensors *st, const char *name, size_t numel, float *dst)
{
    const mx_st_tensor *t = mx_safetensors_find(st, name);
    if (!t) return mx_error_set(MX_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->dtype != MX_DTYPE_F32 || t->nbytes != numel * sizeof(float))
        return mx_error_set(MX_ERR_FORMAT, "tensor '%s' has the wrong type or size for this model", name);
    memcpy(dst, t->data, t->nbytes);
    return MX_OK;
}

/* The model's buffers (batch norm's running statistics), each required. */
static mx_status load_buffers(const mx_safetensors *st, mx_model *model)
{
    const mx_buffer_info *buffers;
    size_t count = mx_model_buffer_tensors(model, &buffers);
    for (size_t i = 0; i < count; i++) {
        const mx_buffer_info *b = &buffers[i];
        if (b->dtype == MX_BUFFER_F32) {
            mx_status s = copy_tensor(st, b->name, b->numel, b->data);
            if (s != MX_OK) return s;
            continue;
        }
        const mx_st_tensor *t = mx_safetensors_find(st, b->name);
        if (!t) return mx_error_set(MX_ERR_FORMAT, "tensor '%s' is missing", b->name);
        if (t->dtype != MX_DTYPE_I64 || t->nbytes != b->numel * sizeof(int64_t))
            return mx_error_set(MX_ERR_FORMAT, "tensor '%s' has the wrong type or size for this model", b->name);
        memcpy(b->data, t->data, t->nbytes);
    }
    return MX_OK;
}

/* The optimizer and RNG state, when the file carries them. */
/* Epoch and step counters: exact in the JSON and doubles they pass through. */
#define MAX_COUNTER ((size_t)1 << 53)

/* A metadata number the parser refused: the file is corrupt, not the command line. */
static mx_status metadata_error(void)
{
    char message[512];
    snprintf(message, sizeof message, "%s", mx_error_message());
    return mx_error_set(MX_ERR_FORMAT, "metadata %s", message);
}

static mx_status load_train_state(const mx_safetensors *st, mx_run *run)
{
    const mx_st_tensor *rng = mx_safetensors_find(st, "mixreg.rng.mixup");
    run->best_score = -1;
    if (!rng) return MX_OK;
    if (rng->dtype != MX_DTYPE_I64 || rng->nbytes != RNG_WORDS * sizeof(int64_t))
        return mx_error_set(MX_ERR_FORMAT, "tensor 'mixreg.rng.mixup' has the wrong type or size");
    int64_t wide[RNG_WORDS];
    uint32_t words[RNG_WORDS];
    memcpy(wide, rng->data, sizeof wide);
    for (int k = 0; k < RNG_WORDS; k++) {
        if (wide[k] < 0 || wide[k] > UINT32_MAX)
            return mx_error_set(MX_ERR_FORMAT, "tensor 'mixreg.rng.mixup' holds an invalid state");
        words[k] = (uint32_t)wide[k];
    }
    rng_from_words(words, &run->mix_rng);
    if (run->mix_rng.used > 4) return mx_error_set(MX_ERR_FORMAT, "tensor 'mixreg.rng.mixup' holds an invalid state");
    const mx_param_info *table;
    size_t count = mx_model_param_tensors(run->model, &table);
    run->momentum = calloc(mx_model_param_count(run->model), sizeof(float));
    if (!run->momentum) return mx_error_set(MX_ERR_NOMEM, "out of memory for the optimizer state");
    char name[160];
    for (size_t i = 0; i < count; i++) {
        snprintf(name, sizeof name, "mixreg.optim.momentum.%s", table[i].name);
        mx_status s = copy_tensor(st, name, table[i].numel, run->momentum + table[i].offset);
        if (s != MX_OK) return s;
    }
    const char *loss_sum = mx_safetensors_meta(st, "mixreg.epoch_loss_sum");
    const char *best = mx_safetensors_meta(st, "mixreg.best_score");
    if (!loss_sum || !best) return mx_error_set(MX_ERR_FORMAT, "training state metadata is missing");
    if (mx_parse_double("mixreg.epoch_loss_sum", loss_sum, 0, DBL_MAX, &run->epoch_loss_sum) != MX_OK ||
        mx_parse_double("mixreg.best_score", best, -1, 1, &run->best_score) != MX_OK)
        return metadata_error();
    run->has_train_state = 1;
    return MX_OK;
}

/* The rescale statistics are stored in the model's input shape and class
 * count: the declared sizes must be theirs, which bounds both by the file's
 * own size before any buffer is planned for them. */
static mx_status check_declared_sizes(const mx_safetensors *st, const mx_model_spec *spec)
{
    const mx_st_tensor *x = mx_safetensors_find(st, "mixreg.rescale.x_bar");
    const mx_st_tensor *y = mx_safetensors_find(st, "mixreg.rescale.y_bar");
    if (!x || !y || x->ndim != 3 || x->shape[0] != spec->in_channels || x->shape[1] != spec->in_height ||
        x->shape[2] != spec->in_width || y->ndim != 1 || y->shape[0] != spec->num_classes)
        return mx_error_set(MX_ERR_FORMAT, "metadata mixreg.model (%zux%zux%zu input, %zu classes) does not match the "
                            "tensors mixreg.rescale.x_bar and y_bar", spec->in_channels, spec->in_height,
                            spec->in_width, spec->num_classes);
    return MX_OK;
}

static mx_status load_from(const mx_safetensors *st, size_t max_batch, mx_run *run)
{
    const char *config = mx_safetensors_meta(st, "mixreg.config");
    const char *model = mx_safetensors_meta(st, "mixreg.model");
    const char *norm = mx_safetensors_meta(st, "mixreg.normalize");
    const char *theta = mx_safetensors_meta(st, "mixreg.theta_bar");
    const char *epoch = mx_safetensors_meta(st, "mixreg.epoch");
    const char *step = mx_safetensors_meta(st, "mixreg.step");
    if (!config || !model || !norm || !theta || !epoch || !step)
        return mx_error_set(MX_ERR_FORMAT, "not a mixreg model (metadata missing)");
    mx_status s = mx_train_config_from_json(config, &run->config);
    mx_model_spec spec;
    if (s == MX_OK) s = parse_spec(model, &spec);
    if (s == MX_OK) s = parse_normalizer(norm, spec.in_channels, &run->normalizer);
    /* The backend and precision are the run's (config.json), not part of the model's metadata. */
    spec.backend = run->config.model.backend;
    spec.precision = run->config.model.precision;
    if (s == MX_OK) s = check_declared_sizes(st, &spec);
    /* Every parameter and buffer value is stored in the file, in 4 bytes at least. */
    if (s == MX_OK) s = mx_model_create_bounded(&spec, max_batch, st->file_size / sizeof(float), &run->model);
    if (s != MX_OK) return s;
    const mx_param_info *table;
    size_t count = mx_model_param_tensors(run->model, &table);
    float *params = mx_model_params(run->model);
    for (size_t i = 0; s == MX_OK && i < count; i++) s = copy_tensor(st, table[i].name, table[i].numel, params + table[i].offset);
    if (s == MX_OK) s = load_buffers(st, run->model);
    if (s == MX_OK) s = mx_rescale_stats_alloc(&run->rescale, mx_model_input_size(run->model), spec.num_classes);
    if (s == MX_OK) s = copy_tensor(st, "mixreg.rescale.x_bar", run->rescale.input_size, run->rescale.x_bar);
    if (s == MX_OK) s = copy_tensor(st, "mixreg.rescale.y_bar", run->rescale.num_classes, run->rescale.y_bar);
    if (s != MX_OK) return s;
    if (mx_parse_double("mixreg.theta_bar", theta, 0.5, 1.0, &run->rescale.theta_bar) != MX_OK ||
        mx_parse_size("mixreg.epoch", epoch, 0, MAX_COUNTER, &run->epoch) != MX_OK ||
        mx_parse_size("mixreg.step", step, 0, MAX_COUNTER, &run->step) != MX_OK)
        return metadata_error();
    const char *classes = mx_safetensors_meta(st, "mixreg.classes");
    if (classes) s = mx_class_names_from_json("metadata mixreg.classes", classes, spec.num_classes, &run->class_names);
    if (s != MX_OK) return s;
    return load_train_state(st, run);
}

mx_status mx_run_load(const char *dir, size_t max_batch, mx_run *run)
{
    memset(run, 0, sizeof *run);
    char path[MX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, MX_RUN_MODEL_FILE);
    mx_safetensors st;
    mx_status s = mx_safetensors_read(path, &st);
    if (s != MX_OK) return s;
    s = load_from(&st, max_batch, run);
    mx_safetensors_free(&st);
    if (s != MX_OK) {
        mx_run_free(run);
        return mx_error_wrap(s, "%s", path);
    }
    return MX_OK;
}

void mx_run_free(mx_run *run)
{
    mx_model_free(run->model);
    run->model = NULL;
    free(run->momentum);
    run->momentum = NULL;
    mx_rescale_stats_free(&run->rescale);
    mx_class_names_free(run->class_names, SIZE_MAX); /* NULL-terminated */
    run->class_names = NULL;
}
