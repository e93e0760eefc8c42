/* Random inputs, Mixup-like soft targets, a norm-wise error, buffer sizes
 * and a few Mixup steps for the CNN tests (test_cnn.c, test_cnn_gradcheck.c,
 * test_cnn_backends.c, test_memory_plan.c, test_predict_bf16.c), and the
 * models they make. */
#ifndef MIXREG_TEST_CNN_TEST_DATA_H
#define MIXREG_TEST_CNN_TEST_DATA_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/mixup.h"
#include "mixreg/model.h"
#include "mixreg/optim.h"
#include "mixreg/rng.h"
#include "mixreg/step.h"

/* A model of arch for c x h x w inputs and `classes` classes, planned for
 * `batch` on backend in precision (the mlp with two hidden layers of
 * `hidden`); a failure is a failed check, with the reason on stderr. */
static inline mx_model *make_model(const char *arch, size_t c, size_t h, size_t w, size_t classes, size_t batch,
                                   mx_backend backend, mx_precision precision, size_t hidden)
{
    mx_model_spec spec = {.in_channels = c, .in_height = h, .in_width = w, .num_classes = classes,
                          .backend = backend, .precision = precision};
    snprintf(spec.arch, sizeof spec.arch, "%s", arch);
    if (!strcmp(arch, "mlp")) {
        spec.num_hidden = 2;
        spec.hidden[0] = spec.hidden[1] = hidden;
    }
    mx_model *m = NULL;
    mx_status st = mx_model_create(&spec, batch, &m);
    if (st != MX_OK) fprintf(stderr, "creating %s (%s): %s\n", arch, mx_backend_name(backend), mx_error_message());
    CHECK(st == MX_OK);
    return m;
}

/* The model's buffer called name (NULL: none). */
static inline mx_buffer_info *find_buffer(mx_model *m, const char *name)
{
    const mx_buffer_info *b;
    size_t nb = mx_model_buffer_tensors(m, &b);
    for (size_t i = 0; i < nb; i++)
        if (!strcmp(b[i].name, name)) return (mx_buffer_info *)&b[i];
    return NULL;
}

static inline void random_fill(mx_rng *rng, float *x, size_t count)
{
    for (size_t i = 0; i < count; i++) x[i] = (float)mx_rng_normal(rng);
}

/* Soft targets: two classes mixed with a random weight per sample. */
static inline void random_targets(mx_rng *rng, float *y, size_t n, size_t classes)
{
    memset(y, 0, n * classes * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        float lam = (float)mx_rng_uniform(rng);
        y[i * classes + mx_rng_below(rng, (uint32_t)classes)] += lam;
        y[i * classes + mx_rng_below(rng, (uint32_t)classes)] += 1 - lam;
    }
}

/* ||got - want|| / ||want|| (2-norms in double), infinite where got is not finite. */
static inline double norm_error(const float *got, const float *want, size_t count)
{
    double d = 0, w = 0;
    for (size_t i = 0; i < count; i++) {
        d += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        w += (double)want[i] * want[i];
    }
    return isfinite(d) ? sqrt(d / (w + 1e-300)) : INFINITY;
}

/* A model as predictions meet it after training: its 1-D parameters (batch
 * norms' gamma and beta, biases) moved off their defaults by 0.3 N(0, 1),
 * then two SGD steps (lr 0.05) on random batches of B samples of d values
 * and C classes (x, y, dl: the caller's buffers of B d, B C, B C), which
 * move the running statistics. */
static inline void settle_model(mx_model *m, mx_rng *rng, size_t B, size_t d, size_t C, float *x, float *y, float *dl)
{
    const mx_param_info *tab;
    const size_t nt = mx_model_param_tensors(m, &tab);
    float *params = mx_model_params(m), *grads = mx_model_grads(m);
    for (size_t t = 0; t < nt; t++)
        if (tab[t].ndim == 1)
            for (size_t i = 0; i < tab[t].numel; i++) params[tab[t].offset + i] += 0.3f * (float)mx_rng_normal(rng);
    for (int step = 0; step < 2; step++) {
        random_fill(rng, x, B * d);
        random_targets(rng, y, B, C);
        mx_softmax_xent(mx_model_forward(m, x, B), y, B, C, dl);
        mx_model_backward(m, dl, B);
        for (size_t i = 0; i < mx_model_param_count(m); i++) params[i] -= 0.05f * grads[i];
    }
}

static inline size_t buffer_bytes(const mx_buffer_info *b)
{
    return b->numel * (b->dtype == MX_BUFFER_F32 ? sizeof(float) : sizeof(int64_t));
}

/* `steps` Mixup steps of batch n (the last one smaller), an eval forward
 * between them, or a prediction (which on the cpu backend folds its weights
 * into a gradient slot of the training arena). */
static inline void train_steps(mx_model *m, size_t steps, size_t n, int predict)
{
    const size_t d = mx_model_input_size(m), C = mx_model_get_spec(m)->num_classes;
    mx_normalizer nz;
    float mean = 0, std = 1;
    mx_normalizer_init(&nz, 1, &mean, &std);
    mx_mixup_config mixup = mx_mixup_config_default();
    mx_sgd_config sgd = {0.9, 1, 5e-4};
    mx_stepper s;
    CHECK_OK(mx_stepper_init(&s, m, &nz, &mixup, &sgd));
    mx_rng data, mix;
    mx_rng_init(&data, 77, 0);
    mx_rng_init(&mix, 78, MX_STREAM_MIXUP);
    float *x = malloc(n * d * sizeof *x);
    int32_t *labels = malloc(n * sizeof *labels);
    for (size_t k = 0; k < steps; k++) {
        size_t b = k + 1 == steps ? n - 1 : n;
        random_fill(&data, x, b * d);
        for (size_t i = 0; i < b; i++) labels[i] = (int32_t)mx_rng_below(&data, (uint32_t)C);
        double loss = mx_stepper_step_batch(&s, x, labels, b, &mix, 0.05);
        CHECK(isfinite(loss));
        mx_model_set_training(m, 0);
        if (predict) CHECK(mx_model_predict(m, x, n) != NULL);
        else mx_model_forward(m, x, 2);
    }
    free(x), free(labels);
    mx_stepper_free(&s);
}

#endif
