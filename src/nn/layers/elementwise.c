/* Reference element-wise layers: ReLU, the residual add (and gradient
 * fan-out), dropout. */
#include <math.h>
#include <string.h>

#include "mixreg/layers.h"


void mx_relu_forward(size_t count, const float *x, float *y)
{
    for (size_t i = 0; i < count; i++) {
        float v = x[i];
        y[i] = (v > 0.0f || isnan(v)) ? v : 0.0f;
    }
}

void mx_relu_backward(size_t count, const float *y, const float *dy, float *dx)
{
    /* PyTorch's threshold_backward: the gradient passes unless the output is <= 0. */
    for (size_t i = 0; i < count; i++) dx[i] = y[i] <= 0.0f ? 0.0f : dy[i];
}

void mx_add_forward(size_t count, const float *a, const float *b, float *y)
{
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

void mx_add_backward(size_t count, const float *dy, float *da, float *db)
{
    if (da && da != dy) memcpy(da, dy, count * sizeof(float));
    if (db && db != dy) memcpy(db, dy, count * sizeof(float));
}

void mx_grad_accumulate(size_t count, float *dst, const float *src)
{
    for (size_t i = 0; i < count; i++) dst[i] += src[i];
}

void mx_dropout_forward(size_t count, float p, mx_rng *rng, const float *x, float *y, uint8_t *mask)
{
    /* Element i is dropped when its 32-bit draw is below p 2^32: probability p
     * to within 2^-32 (exactly 0 for p = 0; p >= 1 drops all). */
    const double cut = (double)p * 4294967296.0;
    const int drop_all = p >= 1.0f;
    const uint64_t threshold = p <= 0.0f ? 0 : drop_all ? UINT64_C(4294967296) : (uint64_t)cut;
    const float scale = drop_all ? 0.0f : 1.0f / (1.0f - p);
    for (size_t i = 0; i < count; i++) {
        uint8_t keep = (uint64_t)mx_rng_u32(rng) >= threshold;
        mask[i] = keep;
        y[i] = keep ? x[i] * scale : 0.0f;
    }
}

void mx_dropout_backward(size_t count, float p, const uint8_t *mask, const float *dy, float *dx)
{
    const float scale = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (size_t i = 0; i < count; i++) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}
