/* Random inputs, Mixup-like soft targets and buffer sizes for the CNN tests
 * (test_cnn.c, test_cnn_backends.c). */
#ifndef MIXREG_TEST_CNN_TEST_DATA_H
#define MIXREG_TEST_CNN_TEST_DATA_H

#include <stdint.h>
#include <string.h>

#include "mixreg/model.h"
#include "mixreg/rng.h"

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

static inline size_t buffer_bytes(const mx_buffer_info *b)
{
    return b->numel * (b->dtype == MX_BUFFER_F32 ? sizeof(float) : sizeof(int64_t));
}

#endif
