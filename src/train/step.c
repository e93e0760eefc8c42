#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/step.h"

mx_status mx_stepper_init(mx_stepper *s, mx_model *model, const mx_normalizer *nz, const mx_mixup_config *mixup,
                          const mx_sgd_config *sgd)
{
    memset(s, 0, sizeof *s);
    s->model = model;
    s->nz = nz;
    s->mixup = *mixup;
    s->cutmix = mx_cutmix_config_default();
    s->sgd = *sgd;
    s->batch = mx_model_max_batch(model);
    s->dim = mx_model_input_size(model);
    s->classes = mx_model_get_spec(model)->num_classes;
    /* Measure, allocate once, then hand out: the step itself never allocates. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) mx_arena_measure(&s->arena);
        else if (mx_arena_commit(&s->arena) != MX_OK) return MX_ERR_NOMEM;
        size_t b = s->batch;
        s->x = mx_arena_alloc(&s->arena, b * s->dim * sizeof(float));
        s->x_mix = mx_arena_alloc(&s->arena, b * s->dim * sizeof(float));
        s->y_mix = mx_arena_alloc(&s->arena, b * s->classes * sizeof(float));
        s->dlogits = mx_arena_alloc(&s->arena, b * s->classes * sizeof(float));
        s->velocity = mx_arena_alloc(&s->arena, mx_model_param_count(model) * sizeof(float));
        s->labels = mx_arena_alloc(&s->arena, b * sizeof(int32_t));
        s->mix_ws.partner = mx_arena_alloc(&s->arena, b * sizeof(uint32_t));
        s->mix_ws.lambda = mx_arena_alloc(&s->arena, b * sizeof(float));
        s->mix_ws.box = mx_arena_alloc(&s->arena, b * sizeof(mx_box));
        s->mix_ws.kind = mx_arena_alloc(&s->arena, b * sizeof(uint8_t));
    }
    return MX_OK;
}

void mx_stepper_free(mx_stepper *s)
{
    mx_arena_free(&s->arena);
    memset(s, 0, sizeof *s);
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static double batch_accuracy(const float *logits, const float *targets, size_t n, size_t classes)
{
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) correct += argmax(logits + i * classes, classes) == argmax(targets + i * classes, classes);
    return (double)correct / (double)n;
}

double mx_stepper_step(mx_stepper *s, const mx_dataset *ds, const uint32_t *idx, size_t n, mx_rng *mix_rng, double lr)
{
    /* A streamed sample that fails to decode (the message is set) ends the
     * step before any update, as a non-finite loss does. */
    if (mx_dataset_gather(ds, s->nz, idx, n, s->x, s->labels) != MX_OK) return NAN;
    return mx_stepper_step_batch(s, s->x, s->labels, n, mix_rng, lr);
}

double mx_stepper_step_batch(mx_stepper *s, const float *x, const int32_t *labels, size_t n, mx_rng *mix_rng, double lr)
{
    const mx_model_spec *spec = mx_model_get_spec(s->model);
    mx_cutmix_batch(&s->mixup, &s->cutmix, mix_rng, x, labels, n, spec->in_channels, spec->in_height,
                    spec->in_width, s->classes, s->x_mix, s->y_mix, &s->mix_ws);
    mx_model_set_training(s->model, 1);
    const float *logits = mx_model_forward(s->model, s->x_mix, n);
    double loss = mx_softmax_xent(logits, s->y_mix, n, s->classes, s->dlogits);
    s->last_accuracy = batch_accuracy(logits, s->y_mix, n, s->classes);
    if (!isfinite(loss)) return loss;
    mx_model_backward(s->model, s->dlogits, n);
    mx_sgd_step(&s->sgd, lr, mx_model_params(s->model), mx_model_grads(s->model), s->velocity,
                mx_model_param_count(s->model));
    return loss;
}
