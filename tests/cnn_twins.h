/* cpu-backend models made and trained alike, for the tests that compare
 * two of them (test_cnn_backends.c, test_memory_plan.c): the precision and
 * activation layout they are made in, a few Mixup steps, and whether two end
 * with the same parameters, gradients and buffers, bit for bit. */
#ifndef MIXREG_TEST_CNN_TWINS_H
#define MIXREG_TEST_CNN_TWINS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cnn_test_data.h"
#include "mixreg/mixup.h"
#include "mixreg/model.h"
#include "mixreg/optim.h"
#include "mixreg/rng.h"
#include "mixreg/step.h"
#include "nn/cnn_internal.h"

/* The precision make() gives cpu-backend models. */
static mx_precision g_precision = MX_PRECISION_FP32;
/* The layout their blocked activations use (MIXREG_CHANNEL_BLOCK: 8, 16, or
 * 16 | CNN_NHWC), 0: the CPU's own (mx_dnnl_channel_block). */
static size_t g_block;

static inline void set_block(size_t layout)
{
    g_block = layout;
    if (layout) setenv("MIXREG_CHANNEL_BLOCK", layout & CNN_NHWC ? "nhwc" : layout == 8 ? "8" : "16", 1);
    else unsetenv("MIXREG_CHANNEL_BLOCK");
}

static inline const char *layout_name(size_t layout)
{
    return layout & CNN_NHWC ? "NHWC (rows of 16 channels)" : layout == 8 ? "nChw8c" : "nChw16c";
}

static inline mx_model *make(const char *arch, size_t c, size_t h, size_t w, size_t classes, size_t batch,
                             mx_backend backend)
{
    return make_model(arch, c, h, w, classes, batch, backend,
                      backend == MX_BACKEND_CPU ? g_precision : MX_PRECISION_FP32, 32);
}

/* Whether a and b have the same buffers (batch norm's running statistics...). */
static inline int same_buffers(mx_model *a, mx_model *b)
{
    const mx_buffer_info *ba, *bb;
    size_t nb = mx_model_buffer_tensors(a, &ba);
    mx_model_buffer_tensors(b, &bb);
    int same = 1;
    for (size_t i = 0; i < nb; i++) same = same && memcmp(ba[i].data, bb[i].data, buffer_bytes(&ba[i])) == 0;
    return same;
}

static inline int same_state(mx_model *a, mx_model *b)
{
    size_t count = mx_model_param_count(a);
    return memcmp(mx_model_params(a), mx_model_params(b), count * sizeof(float)) == 0 &&
           memcmp(mx_model_grads(a), mx_model_grads(b), count * sizeof(float)) == 0 && same_buffers(a, b);
}

/* The model of arch twice (3x16x16 inputs, 3 classes, batch B, the cpu
 * backend) at that precision, for a test to plan one of them otherwise; 0
 * when either could not be made (both freed). */
static inline int make_twins(const char *arch, mx_precision precision, size_t B, mx_model **a, mx_model **b)
{
    g_precision = precision;
    *a = make(arch, 3, 16, 16, 3, B, MX_BACKEND_CPU), *b = make(arch, 3, 16, 16, 3, B, MX_BACKEND_CPU);
    g_precision = MX_PRECISION_FP32;
    if (*a && *b) return 1;
    mx_model_free(*a), mx_model_free(*b);
    return 0;
}

/* Both from one seed through 3 Mixup steps with predictions between them:
 * whether they end with the same parameters, gradients and buffers. */
static inline int train_twins(mx_model *a, mx_model *b, uint64_t seed, size_t B)
{
    mx_model_init_params(a, seed);
    mx_model_init_params(b, seed);
    train_steps(a, 3, B, 1);
    train_steps(b, 3, B, 1);
    return same_state(a, b);
}

#endif
