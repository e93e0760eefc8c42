/* Architecture-independent parts of mx_model: spec checks, the parameter
 * table, and dispatch to the architecture. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model_internal.h"

const char *mx_model_arch_names(void)
{
    return "mlp, logreg, lenet5, resnet20, resnet32, resnet56, resnet110 (any resnet<6n+2>), preact18, "
           "wrn-D-K[-P] (e.g. wrn-28-10, or wrn-28-10-0.3 with dropout 0.3), resnet50";
}

const char *mx_backend_name(mx_backend backend)
{
    return backend == MX_BACKEND_REF ? "ref" : backend == MX_BACKEND_CPU ? "cpu" : "?";
}

mx_status mx_backend_parse(const char *what, const char *text, mx_backend *out)
{
    if (!strcmp(text, "ref")) *out = MX_BACKEND_REF;
    else if (!strcmp(text, "cpu")) *out = MX_BACKEND_CPU;
    else return mx_error_set(MX_ERR_ARG, "%s: unknown '%s' (expected ref or cpu)", what, text);
    return MX_OK;
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
    size_t count = 0;
    const char *p = list;
    if (!*p) return mx_error_set(MX_ERR_ARG, "--hidden: empty list (expected e.g. 512,512)");
    while (*p) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || v == 0 || v > 65536 || (*end && *end != ','))
            return mx_error_set(MX_ERR_ARG, "--hidden: '%s' is not a list of widths in 1..65536", list);
        if (count == MX_MAX_HIDDEN)
            return mx_error_set(MX_ERR_ARG, "--hidden: at most %d layers", MX_MAX_HIDDEN);
        spec->hidden[count++] = (size_t)v;
        p = *end ? end + 1 : end;
        if (*end && !*p) return mx_error_set(MX_ERR_ARG, "--hidden: trailing comma in '%s'", list);
    }
    spec->num_hidden = count;
    return MX_OK;
}

mx_status mx_model_create(const mx_model_spec *spec, size_t max_batch, mx_model **out)
{
    *out = NULL;
    if (max_batch == 0) return mx_error_set(MX_ERR_ARG, "batch size must be at least 1");
    if (spec->num_classes < 2) return mx_error_set(MX_ERR_ARG, "a classifier needs at least 2 classes");
    if (!spec->in_channels || !spec->in_height || !spec->in_width)
        return mx_error_set(MX_ERR_ARG, "model input shape has a zero dimension");
    if (spec->backend != MX_BACKEND_REF && spec->backend != MX_BACKEND_CPU)
        return mx_error_set(MX_ERR_ARG, "unknown backend %d (expected ref or cpu)", (int)spec->backend);
    if (spec->precision != MX_PRECISION_FP32 && spec->precision != MX_PRECISION_BF16)
        return mx_error_set(MX_ERR_ARG, "unknown precision %d (expected fp32 or bf16)", (int)spec->precision);
    if (spec->precision == MX_PRECISION_BF16 && (is_mlp(spec->arch) || spec->backend != MX_BACKEND_CPU))
        return mx_error_set(MX_ERR_ARG, "precision bf16 is for the convolutional models on the cpu backend, not %s "
                            "on %s", spec->arch, mx_backend_name(spec->backend));
    mx_model *model = calloc(1, sizeof *model);
    if (!model) return mx_error_set(MX_ERR_NOMEM, "out of memory creating the model");
    model->spec = *spec;
    model->max_batch = max_batch;
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
    t->numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    t->offset = model->param_count;
    model->param_count += t->numel;
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
    b->numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        b->shape[i] = shape[i];
        b->numel *= shape[i];
    }
    return model->num_buffers++;
}

mx_status mx_model_alloc_params(mx_model *model)
{
    if (model->table_oom) return mx_error_set(MX_ERR_NOMEM, "out of memory for the parameter table");
    model->params = calloc(model->param_count, sizeof(float));
    model->grads = calloc(model->param_count, sizeof(float));
    if (!model->params || !model->grads) return mx_error_set(MX_ERR_NOMEM, "out of memory for parameters");
    size_t floats = 0, ints = 0;
    for (size_t i = 0; i < model->num_buffers; i++) {
        if (model->buffers[i].dtype == MX_BUFFER_F32) floats += model->buffers[i].numel;
        else ints += model->buffers[i].numel;
    }
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

void mx_model_init_params(mx_model *model, uint64_t seed) { model->ops->init_params(model, seed); }

const float *mx_model_forward(mx_model *model, const float *x, size_t n)
{
    return model->ops->forward(model, x, n);
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
    model->ops->backward(model, dlogits, n, NULL);
}

void mx_model_backward_input(mx_model *model, const float *dlogits, size_t n, float *dx)
{
    model->ops->backward(model, dlogits, n, dx);
}
