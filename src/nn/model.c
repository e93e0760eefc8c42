/* Architecture-independent parts of mx_model: spec checks, the parameter
 * table, and dispatch to the architecture. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mixreg/checked.h"
#include "mixreg/layers_dnnl.h"
#include "mixreg/parse.h"
#include "backend/cuda/cuda_backend.h"
#include "nn/model_internal.h"

const char *mx_model_arch_names(void)
{
    return "mlp, logreg, lenet5, resnet20, resnet32, resnet56, resnet110 (any resnet<6n+2>), preact18, "
           "wrn-D-K[-P] (e.g. wrn-28-10, or wrn-28-10-0.3 with dropout 0.3), resnet50";
}

const char *mx_backend_name(mx_backend backend)
{
    return backend == MX_BACKEND_REF ? "ref" : backend == MX_BACKEND_CPU ? "cpu" : backend == MX_BACKEND_CUDA ? "cuda" : "?";
}

mx_status mx_backend_parse(const char *what, const char *text, mx_backend *out)
{
    if (!strcmp(text, "ref")) *out = MX_BACKEND_REF;
    else if (!strcmp(text, "cpu")) *out = MX_BACKEND_CPU;
    else if (!strcmp(text, "cuda")) *out = MX_BACKEND_CUDA;
    else return mx_error_set(MX_ERR_ARG, "%s: unknown '%s' (expected ref, cpu or cuda)", what, text);
    return MX_OK;
}

mx_status mx_backend_available(mx_backend backend)
{
    return backend == MX_BACKEND_CUDA ? mx_cuda_backend_check() : MX_OK;
}

const char *mx_precision_name(mx_precision precision)
{
    return precision == MX_PRECISION_FP32 ? "fp32" : precision == MX_PRECISION_BF16 ? "bf16" : "?";
}

mx_status mx_precision_parse(const char *what, const char *text, mx_precision *out)
{
    if (!strcmp(text, "fp32")) *out = MX_PRECISION_FP32;
    else if (!strcmp(text, "bf16")) *out = MX_PRECISION_BF16;
    else return mx_error_set(MX_ERR_ARG, "%s: unknown '%s' (expected fp32 or bf16)", what, text);
    return MX_OK;
}

static int is_mlp(const char *arch) { return !strcmp(arch, "mlp") || !strcmp(arch, "logreg"); }

int mx_model_arch_known(const char *arch) { return is_mlp(arch) || mx_cnn_arch_known(arch); }

mx_status mx_model_spec_set_hidden(mx_model_spec *spec, const char *list)
{
    size_t count = 0, widths[MX_MAX_HIDDEN];
    if (!*list) return mx_error_set(MX_ERR_ARG, "--hidden: empty list (expected e.g. 512,512)");
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        if (count == MX_MAX_HIDDEN) return mx_error_set(MX_ERR_ARG, "--hidden: at most %d layers", MX_MAX_HIDDEN);
        if (!len) return mx_error_set(MX_ERR_ARG, "--hidden: empty entry in '%s' (expected e.g. 512,512)", list);
        mx_status st = mx_parse_size_n("--hidden", p, len, 1, 65536, &widths[count++]);
        if (st != MX_OK) return st;
        if (!p[len]) break;
        p += len + 1;
    }
    memcpy(spec->hidden, widths, count * sizeof widths[0]);
    spec->num_hidden = count;
    return MX_OK;
}

/* The per-sample sizes every architecture multiplies by the batch: bounded
 * here, so the products made while building the model cannot wrap. */
static mx_status check_sizes(const mx_model_spec *spec, size_t max_batch)
{
    size_t input, widest = spec->num_classes, bytes;
    const size_t dims[3] = {spec->in_channels, spec->in_height, spec->in_width};
    if (!mx_size_product(dims, 3, &input) || input > MX_MODEL_MAX_INPUT)
        return mx_error_set(MX_ERR_ARG, "model input %zux%zux%zu has more than %zu values", spec->in_channels,
                            spec->in_height, spec->in_width, MX_MODEL_MAX_INPUT);
    if (spec->num_classes > MX_MODEL_MAX_CLASSES)
        return mx_error_set(MX_ERR_ARG, "%zu classes: at most %zu", spec->num_classes, MX_MODEL_MAX_CLASSES);
    if (spec->num_hidden > MX_MAX_HIDDEN) return mx_error_set(MX_ERR_ARG, "more than %d hidden layers", MX_MAX_HIDDEN);
    for (size_t l = 0; l < spec->num_hidden; l++)
        if (spec->hidden[l] > widest) widest = spec->hidden[l];
    if (input > widest) widest = input;
    /* One float per value of the widest layer for every sample, with room for
     * the few such buffers an architecture keeps. */
    if (!mx_size_mul(max_batch, widest, &bytes) || !mx_size_mul(bytes, 16 * sizeof(float), &bytes))
        return mx_error_set(MX_ERR_ARG, "batch size %zu is too large for this model's layers", max_batch);
    return MX_OK;
}

mx_status mx_model_create(const mx_model_spec *spec, size_t max_batch, mx_model **out)
{
    return mx_model_create_bounded(spec, max_batch, 0, out);
}

mx_status mx_model_create_bounded(const mx_model_spec *spec, size_t max_batch, size_t max_values, mx_model **out)
{
    *out = NULL;
    if (spec->num_classes < 2) return mx_error_set(MX_ERR_ARG, "a classifier needs at least 2 classes");
    if (!spec->in_channels || !spec->in_height || !spec->in_width)
        return mx_error_set(MX_ERR_ARG, "model input shape has a zero dimension");
    if (spec->backend != MX_BACKEND_REF && spec->backend != MX_BACKEND_CPU && spec->backend != MX_BACKEND_CUDA)
        return mx_error_set(MX_ERR_ARG, "unknown backend %d (expected ref, cpu or cuda)", (int)spec->backend);
    /* Before anything is allocated: one line saying why not (exit 1 in the CLI). */
    mx_status ready = mx_backend_available(spec->backend);
    if (ready != MX_OK) return ready;
    if (spec->precision != MX_PRECISION_FP32 && spec->precision != MX_PRECISION_BF16)
        return mx_error_set(MX_ERR_ARG, "unknown precision %d (expected fp32 or bf16)", (int)spec->precision);
    if (spec->precision == MX_PRECISION_BF16 && (is_mlp(spec->arch) || spec->backend != MX_BACKEND_CPU))
        return mx_error_set(MX_ERR_ARG, "precision bf16 is for the convolutional models on the cpu backend, not %s "
                            "on %s", spec->arch, mx_backend_name(spec->backend));
    if (spec->precision == MX_PRECISION_BF16 && !mx_dnnl_bf16_available())
        return mx_error_set(MX_ERR_UNSUPPORTED, "precision bf16: this CPU has no bfloat16 convolution kernels "
                            "(oneDNN's need AVX-512); use --precision fp32");
    mx_status sizes = check_sizes(spec, max_batch);
    if (sizes != MX_OK) return sizes;
    mx_model *model = calloc(1, sizeof *model);
    if (!model) return mx_error_set(MX_ERR_NOMEM, "out of memory creating the model");
    model->spec = *spec;
    model->max_values = max_values;
    model->training = 1;
    mx_status st;
    if (is_mlp(spec->arch)) {
        if (!strcmp(spec->arch, "logreg")) model->spec.num_hidden = 0;
        st = mx_mlp_create(model);
    } else if (mx_cnn_arch_known(spec->arch)) {
        model->spec.num_hidden = 0;
        st = mx_cnn_create(model);
    } else {
        st = mx_error_set(MX_ERR_ARG, "unknown model '%s' (available: %s)", spec->arch, mx_model_arch_names());
    }
    if (st == MX_OK && max_batch) st = mx_model_plan(model, max_batch, MX_MODEL_TRAIN);
    if (st != MX_OK) {
        mx_model_free(model);
        return st;
    }
    *out = model;
    return MX_OK;
}

void mx_model_free(mx_model *model)
{
    if (!model) return;
    if (model->ops && model->ops->destroy) model->ops->destroy(model);
    free(model->params);
    free(model->grads);
    free(model->tensors);
    free(model->buffers);
    free(model->buffer_f32);
    free(model->buffer_i64);
    free(model);
}

/* Room for one more entry of `size` bytes in a growing table (at creation only). */
static int grow(void **table, size_t *cap, size_t count, size_t size)
{
    if (count < *cap) return 1;
    size_t new_cap = *cap ? 2 * *cap : 32;
    void *p = realloc(*table, new_cap * size);
    if (!p) return 0;
    *table = p;
    *cap = new_cap;
    return 1;
}

size_t mx_model_add_tensor(mx_model *model, const char *name, size_t ndim, const size_t *shape)
{
    if (!grow((void **)&model->tensors, &model->tensor_cap, model->num_tensors, sizeof *model->tensors)) {
        model->table_oom = 1;
        return 0;
    }
    mx_param_info *t = &model->tensors[model->num_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    for (size_t i = 0; i < ndim; i++) t->shape[i] = shape[i];
    if (!mx_size_product(shape, ndim, &t->numel)) model->size_overflow = 1;
    t->offset = model->param_count;
    if (!mx_size_add(model->param_count, t->numel, &model->param_count)) model->size_overflow = 1;
    return model->num_tensors++;
}

size_t mx_model_add_buffer(mx_model *model, const char *name, mx_buffer_dtype dtype, size_t ndim, const size_t *shape)
{
    if (!grow((void **)&model->buffers, &model->buffer_cap, model->num_buffers, sizeof *model->buffers)) {
        model->table_oom = 1;
        return 0;
    }
    mx_buffer_info *b = &model->buffers[model->num_buffers];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->dtype = dtype;
    b->ndim = ndim;
    for (size_t i = 0; i < ndim; i++) b->shape[i] = shape[i];
    if (!mx_size_product(shape, ndim, &b->numel)) model->size_overflow = 1;
    return model->num_buffers++;
}

mx_status mx_model_alloc_params(mx_model *model)
{
    if (model->table_oom) return mx_error_set(MX_ERR_NOMEM, "out of memory for the parameter table");
    size_t floats = 0, ints = 0, values;
    for (size_t i = 0; i < model->num_buffers; i++) {
        size_t *sum = model->buffers[i].dtype == MX_BUFFER_F32 ? &floats : &ints;
        if (!mx_size_add(*sum, model->buffers[i].numel, sum)) model->size_overflow = 1;
    }
    if (model->size_overflow || !mx_size_add(model->param_count, floats, &values) || !mx_size_add(values, ints, &values) ||
        model->param_count > SIZE_MAX / sizeof(float) || ints > SIZE_MAX / sizeof(int64_t))
        return mx_error_set(MX_ERR_ARG, "model %s: its parameter count overflows", model->spec.arch);
    if (model->max_values && values > model->max_values)
        return mx_error_set(MX_ERR_FORMAT, "model %s has %zu parameter and buffer values, more than the file can hold",
                            model->spec.arch, values);
    model->params = calloc(model->param_count, sizeof(float));
    model->grads = calloc(model->param_count, sizeof(float));
    if (!model->params || !model->grads) return mx_error_set(MX_ERR_NOMEM, "out of memory for parameters");
    model->buffer_f32 = calloc(floats ? floats : 1, sizeof(float));
    model->buffer_i64 = calloc(ints ? ints : 1, sizeof(int64_t));
    if (!model->buffer_f32 || !model->buffer_i64) return mx_error_set(MX_ERR_NOMEM, "out of memory for buffers");
    floats = ints = 0;
    for (size_t i = 0; i < model->num_buffers; i++) {
        mx_buffer_info *b = &model->buffers[i];
        if (b->dtype == MX_BUFFER_F32) {
            b->data = model->buffer_f32 + floats;
            floats += b->numel;
        } else {
            b->data = model->buffer_i64 + ints;
            ints += b->numel;
        }
    }
    return MX_OK;
}

size_t mx_model_buffer_tensors(const mx_model *model, const mx_buffer_info **table)
{
    *table = model->buffers;
    return model->num_buffers;
}

void mx_model_set_training(mx_model *model, int training) { model->training = training != 0; }

int mx_model_is_training(const mx_model *model) { return model->training; }

void mx_model_hold_weights(mx_model *model, int hold)
{
    /* What an unheld call prepared may be stale: the weights could change
     * before this hold. A release needs no new epoch: unheld calls start one. */
    if (hold && !model->weights_held++) model->state_epoch++;
    if (!hold && model->weights_held) model->weights_held--;
}

mx_status mx_model_copy_state(mx_model *dst, const mx_model *src)
{
    const mx_model_spec *a = &dst->spec, *b = &src->spec;
    int same = !strcmp(a->arch, b->arch) && a->in_channels == b->in_channels && a->in_height == b->in_height &&
               a->in_width == b->in_width && a->num_classes == b->num_classes && a->num_hidden == b->num_hidden &&
               dst->param_count == src->param_count && dst->num_buffers == src->num_buffers;
    for (size_t i = 0; same && i < a->num_hidden; i++) same = a->hidden[i] == b->hidden[i];
    for (size_t i = 0; same && i < dst->num_buffers; i++)
        same = dst->buffers[i].numel == src->buffers[i].numel && dst->buffers[i].dtype == src->buffers[i].dtype;
    if (!same) return mx_error_set(MX_ERR_ARG, "copying model state: the two models differ");
    dst->state_epoch++;
    memcpy(dst->params, src->params, src->param_count * sizeof(float));
    for (size_t i = 0; i < dst->num_buffers; i++)
        memcpy(dst->buffers[i].data, src->buffers[i].data,
               dst->buffers[i].numel * (dst->buffers[i].dtype == MX_BUFFER_F32 ? sizeof(float) : sizeof(int64_t)));
    return MX_OK;
}

const mx_model_spec *mx_model_get_spec(const mx_model *model) { return &model->spec; }
size_t mx_model_max_batch(const mx_model *model) { return model->max_batch; }
size_t mx_model_param_count(const mx_model *model) { return model->param_count; }
float *mx_model_params(mx_model *model) { return model->params; }
float *mx_model_grads(mx_model *model) { return model->grads; }

size_t mx_model_input_size(const mx_model *model)
{
    return model->spec.in_channels * model->spec.in_height * model->spec.in_width;
}

size_t mx_model_param_tensors(const mx_model *model, const mx_param_info **table)
{
    *table = model->tensors;
    return model->num_tensors;
}

void mx_model_init_params(mx_model *model, uint64_t seed)
{
    model->state_epoch++;
    model->ops->init_params(model, seed);
}

mx_status mx_model_plan(mx_model *model, size_t max_batch, mx_model_use use)
{
    if (max_batch == 0) return mx_error_set(MX_ERR_ARG, "batch size must be at least 1");
    if (use != MX_MODEL_TRAIN && use != MX_MODEL_PREDICT)
        return mx_error_set(MX_ERR_ARG, "unknown model use %d (expected train or predict)", (int)use);
    model->max_batch = max_batch;
    model->predict_only = use == MX_MODEL_PREDICT;
    model->state_epoch++;
    model->forward_unread = 0;
    mx_status st = model->ops->plan(model);
    if (st != MX_OK) model->max_batch = 0, model->predict_only = 0;
    return st;
}

size_t mx_model_plan_bytes(const mx_model *model, size_t batch, mx_model_use use)
{
    return model->ops->plan_bytes(model, batch ? batch : 1, use == MX_MODEL_PREDICT);
}

/* Bytes for b samples: the plan's and the caller's, SIZE_MAX on overflow. */
static size_t fit_bytes(const mx_model *model, size_t b, mx_model_use use, size_t per_sample)
{
    size_t plan = mx_model_plan_bytes(model, b, use);
    if (per_sample && b > (SIZE_MAX - plan) / per_sample) return SIZE_MAX;
    return plan + b * per_sample;
}

size_t mx_model_fit_batch(const mx_model *model, size_t want, mx_model_use use, size_t caller_per_sample,
                          size_t budget)
{
    if (want <= 1 || fit_bytes(model, want, use, caller_per_sample) <= budget) return want ? want : 1;
    /* The bytes grow with the batch: the largest b in [1, want) that fits, by bisection. */
    size_t lo = 1, hi = want; /* lo fits (or is 1), hi does not */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (fit_bytes(model, mid, use, caller_per_sample) <= budget) lo = mid;
        else hi = mid;
    }
    return lo;
}

mx_status mx_model_inference_budget(size_t *bytes)
{
    const char *env = getenv("MIXREG_INFERENCE_MEMORY");
    if (env && *env) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end || errno || env[0] == '-' || v < ((unsigned long long)1 << 20) || v > ((unsigned long long)1 << 48))
            return mx_error_set(MX_ERR_ARG, "MIXREG_INFERENCE_MEMORY: '%s' is not a number of bytes in [1 MiB, 2^48]",
                                env);
        *bytes = (size_t)v;
        return MX_OK;
    }
    *bytes = MX_INFERENCE_MEMORY_DEFAULT;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (size_t)pages / 4 * (size_t)page < *bytes) *bytes = (size_t)pages / 4 * (size_t)page;
    return MX_OK;
}

/* Running a model needs buffers planned for it: a caller's bug otherwise
 * (these calls return no status). */
static void must_be_planned(const mx_model *model, int for_backward, const char *what)
{
    if (model->max_batch && !(for_backward && model->predict_only)) return;
    fprintf(stderr, "mixreg: internal error: %s on a model %s\n", what,
            model->max_batch ? "planned for prediction only (mx_model_plan with MX_MODEL_TRAIN)"
                             : "without activation buffers (mx_model_plan first)");
    abort();
}

const float *mx_model_forward(mx_model *model, const float *x, size_t n)
{
    must_be_planned(model, 1, "mx_model_forward");
    model->forward_unread = 0;
    const float *logits = model->ops->forward(model, x, n);
    model->forward_unread = 1;
    return logits;
}

/* A backward reads what its forward kept, and a CNN's reuses that memory for
 * gradients as it goes (cnn_memory_plan.c): each needs a forward of its own. */
static void must_follow_forward(mx_model *model, const char *what)
{
    must_be_planned(model, 1, what);
    if (model->forward_unread) {
        model->forward_unread = 0;
        return;
    }
    fprintf(stderr, "mixreg: internal error: %s without an mx_model_forward of its own before it\n", what);
    abort();
}

double mx_model_forward_flops(const mx_model *model)
{
    if (model->ops->forward_flops) return model->ops->forward_flops(model);
    double flops = 0;
    for (size_t i = 0; i < model->num_tensors; i++)
        if (model->tensors[i].ndim == 2) flops += 2.0 * (double)model->tensors[i].numel;
    return flops;
}

const float *mx_model_predict(mx_model *model, const float *x, size_t n)
{
    must_be_planned(model, 0, "mx_model_predict");
    model->forward_unread = 0;
    if (model->ops->predict) return model->ops->predict(model, x, n);
    const int training = model->training;
    model->training = 0;
    const float *out = model->ops->forward(model, x, n);
    model->training = training;
    return out;
}

mx_status mx_model_set_bn_sync(mx_model *model, mx_bn_reduce_fn reduce, void *ctx)
{
    return model->ops->set_bn_sync ? model->ops->set_bn_sync(model, reduce, ctx) : MX_OK;
}

void mx_model_bn_sync_idle(mx_model *model, int backward)
{
    if (model->ops->bn_sync_idle) model->ops->bn_sync_idle(model, backward);
}

void mx_model_backward(mx_model *model, const float *dlogits, size_t n)
{
    must_follow_forward(model, "mx_model_backward");
    model->ops->backward(model, dlogits, n, NULL);
}

void mx_model_backward_sgd(mx_model *model, const float *dlogits, size_t n, const mx_sgd_config *cfg, double lr,
                           float *velocity)
{
    must_follow_forward(model, "mx_model_backward_sgd");
    if (model->ops->backward_sgd) {
        model->ops->backward_sgd(model, dlogits, n, cfg, lr, velocity);
        return;
    }
    model->ops->backward(model, dlogits, n, NULL);
    mx_sgd_step(cfg, lr, model->params, model->grads, velocity, model->param_count);
}

void mx_model_backward_input(mx_model *model, const float *dlogits, size_t n, float *dx)
{
    must_follow_forward(model, "mx_model_backward_input");
    model->ops->backward(model, dlogits, n, dx);
}
