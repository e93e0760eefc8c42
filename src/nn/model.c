/* Architecture-independent parts of mx_model: spec checks, the parameter
 * table, and dispatch to the architecture. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model_internal.h"

const char *mx_model_arch_names(void) { return "mlp, logreg"; }

int mx_model_arch_known(const char *arch) { return !strcmp(arch, "mlp") || !strcmp(arch, "logreg"); }

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
    mx_model *model = calloc(1, sizeof *model);
    if (!model) return mx_error_set(MX_ERR_NOMEM, "out of memory creating the model");
    model->spec = *spec;
    model->max_batch = max_batch;
    mx_status st;
    if (mx_model_arch_known(spec->arch)) {
        if (!strcmp(spec->arch, "logreg")) model->spec.num_hidden = 0;
        st = mx_mlp_create(model);
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
    free(model);
}

void mx_model_add_tensor(mx_model *model, const char *name, size_t ndim, const size_t *shape)
{
    mx_param_info *t = &model->tensors[model->num_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
    t->offset = model->param_count;
    model->param_count += t->numel;
}

mx_status mx_model_alloc_params(mx_model *model)
{
    model->params = calloc(model->param_count, sizeof(float));
    model->grads = calloc(model->param_count, sizeof(float));
    if (!model->params || !model->grads) return mx_error_set(MX_ERR_NOMEM, "out of memory for parameters");
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

void mx_model_backward(mx_model *model, const float *dlogits, size_t n)
{
    model->ops->backward(model, dlogits, n, NULL);
}

void mx_model_backward_input(mx_model *model, const float *dlogits, size_t n, float *dx)
{
    model->ops->backward(model, dlogits, n, dx);
}
