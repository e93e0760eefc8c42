/* The cpu backend's own kernels on NCHW tensors and flat arrays (the
 * nChw16c ones: cnn_cpu_blocked.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_cpu_simd.h"
#include "nn/cnn_cpu.h"

/* ---- the cpu backend's own kernels ------------------------------------------
 * OpenMP-threaded and vectorised (#pragma omp simd), where the reference
 * loops are single-threaded scalar code: ReLU, the residual add, gradient
 * copies and sums, and batch norm with its ReLU fused in (one pass over the
 * activation fewer each way). Element-wise loops split the elements, batch
 * norm on NCHW the channels, on nChw16c the samples (their partial sums then
 * added in order on one thread): the results do not depend on the thread
 * count. Loops this small run on the calling thread. */

void cnn_cpu_relu_forward(size_t count, float *y)
{
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
    for (size_t i = 0; i < count; i++) {
        float v = y[i];
        y[i] = (v > 0.0f || v != v) ? v : 0.0f; /* NaN passes, as mx_relu_forward */
    }
}

void cnn_cpu_relu_backward(size_t count, const float *y, float *dy)
{
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
    for (size_t i = 0; i < count; i++) dy[i] = y[i] <= 0.0f ? 0.0f : dy[i];
}

void cnn_cpu_add_forward(size_t count, const float *a, const float *b, float *y, int relu)
{
    if (relu) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) {
            float v = a[i] + b[i];
            y[i] = (v > 0.0f || v != v) ? v : 0.0f;
        }
    } else {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
    }
}

void cnn_cpu_add_forward_bf16_copy(size_t count, const float *a, const float *b, float *y, int relu, uint16_t *y16,
                                   uint16_t *relu_bits)
{
#pragma omp parallel for schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
    for (size_t i = 0; i < count; i += 16) {
#pragma omp simd
        for (int l = 0; l < 16; l++) {
            float v = a[i + l] + b[i + l];
            y[i + l] = relu && !(v > 0.0f || v != v) ? 0.0f : v;
        }
        if (y16) store_bf16x16(y + i, y16 + i);
        if (relu_bits) relu_bits[i / 16] = relu_bits16(y + i);
    }
}

/* len elements of grad_into_extra's masked case: the sum made into a local
 * block before the select. With the loads inside the select, GCC could not
 * if-convert the loop (extra may be d, so it would not make them
 * unconditional) and ran it scalar, branching per element: 8% of a
 * resnet20 training step on AVX2. The same values: the select keeps the sum
 * or a zero. */
static inline __attribute__((always_inline)) void masked_sum_block(const size_t len, const float *y, const float *dy,
                                                                   const float *extra, float *d, int acc)
{
    float g[16];
#pragma omp simd
    for (size_t l = 0; l < len; l++) g[l] = dy[l] + extra[l];
#pragma omp simd
    for (size_t l = 0; l < len; l++) g[l] = y[l] <= 0.0f ? 0.0f : g[l];
    if (acc) {
#pragma omp simd
        for (size_t l = 0; l < len; l++) d[l] += g[l];
    } else {
#pragma omp simd
        for (size_t l = 0; l < len; l++) d[l] = g[l];
    }
}

/* d = (or +=) dy + extra, masked by y > 0 when y is not NULL. extra may be
 * d itself (written fresh): each element is read before it is written. */
static void grad_into_extra(size_t count, const float *y, const float *dy, const float *extra, float *d, int acc)
{
    if (y) {
        const size_t full = count / 16 * 16;
#pragma omp parallel for schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < full; i += 16) masked_sum_block(16, y + i, dy + i, extra + i, d + i, acc);
        if (full < count) masked_sum_block(count - full, y + full, dy + full, extra + full, d + full, acc);
    } else if (acc) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) d[i] += dy[i] + extra[i];
    } else {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) d[i] = dy[i] + extra[i];
    }
}

/* d = (or +=) dy, masked by y > 0 when y is not NULL. */
static void grad_into(size_t count, const float *restrict y, const float *restrict dy, float *restrict d, int acc)
{
    if (y && acc) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) d[i] += y[i] <= 0.0f ? 0.0f : dy[i];
    } else if (y) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) d[i] = y[i] <= 0.0f ? 0.0f : dy[i];
    } else {
        cnn_cpu_grad_pass(count, d, dy, acc);
    }
}

/* The cases are separate loops, with the pointers restrict: one loop testing
 * them per element stayed scalar and took preact18's add backward to 65 ms a
 * step (10x its forward). */
void cnn_cpu_add_backward(size_t count, const float *y, const float *dy, const float *extra, float *da, int acc_a,
                          float *db, int acc_b)
{
    if (extra) { /* extra may be da's buffer (or db's): that one written last */
        if (db && extra == da) grad_into_extra(count, y, dy, extra, db, acc_b);
        if (da) grad_into_extra(count, y, dy, extra, da, acc_a);
        if (db && extra != da) grad_into_extra(count, y, dy, extra, db, acc_b);
        return;
    }
    if (da && db && !acc_a && !acc_b) {
        /* Both inputs' gradients written fresh: one pass over dy. */
        float *restrict a = da, *restrict b = db;
        const float *restrict g = dy;
        if (y) {
            const float *restrict m = y;
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
            for (size_t i = 0; i < count; i++) a[i] = b[i] = m[i] <= 0.0f ? 0.0f : g[i];
        } else {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
            for (size_t i = 0; i < count; i++) a[i] = b[i] = g[i];
        }
        return;
    }
    if (da) grad_into(count, y, dy, da, acc_a);
    if (db) grad_into(count, y, dy, db, acc_b);
}

/* d = (or +=) dy (+ extra when not NULL: it may be d itself, written fresh)
 * where the mask's bit is set, 16 elements a word. */
static void grad_into_bits(size_t count, const uint16_t *restrict bits, const float *dy, const float *extra, float *d,
                           int acc)
{
#pragma omp parallel for schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
    for (size_t i = 0; i < count; i += 16) {
        const unsigned m = bits[i / 16];
        float g[16];
        if (extra) {
#pragma omp simd
            for (int l = 0; l < 16; l++) g[l] = dy[i + l] + extra[i + l];
#pragma omp simd
            for (int l = 0; l < 16; l++) g[l] = (m >> l) & 1u ? g[l] : 0.0f; /* the sum first: masked_sum_block says why */
        } else {
#pragma omp simd
            for (int l = 0; l < 16; l++) g[l] = (m >> l) & 1u ? dy[i + l] : 0.0f;
        }
        if (acc) {
#pragma omp simd
            for (int l = 0; l < 16; l++) d[i + l] += g[l];
        } else {
#pragma omp simd
            for (int l = 0; l < 16; l++) d[i + l] = g[l];
        }
    }
}

void cnn_cpu_add_backward_bits(size_t count, const uint16_t *relu_bits, const float *dy, const float *extra, float *da,
                               int acc_a, float *db, int acc_b)
{
    if (db && extra && extra == da) grad_into_bits(count, relu_bits, dy, extra, db, acc_b); /* da's buffer last */
    if (da) grad_into_bits(count, relu_bits, dy, extra, da, acc_a);
    if (db && !(extra && extra == da)) grad_into_bits(count, relu_bits, dy, extra, db, acc_b);
}

void cnn_cpu_grad_pass(size_t count, float *dst, const float *src, int accumulate)
{
    if (accumulate) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) dst[i] += src[i];
    } else {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) dst[i] = src[i];
    }
}

/* Sum and sum of squares of one channel (n planes of hw, `stride` apart), in double. */
static void channel_sums(size_t n, size_t hw, size_t stride, const float *x, double *sum, double *sumsq)
{
    double s1 = 0, s2 = 0;
    for (size_t s = 0; s < n; s++) {
        const float *p = x + s * stride;
#pragma omp simd reduction(+ : s1, s2)
        for (size_t i = 0; i < hw; i++) {
            double v = p[i];
            s1 += v;
            s2 += v * v;
        }
    }
    *sum = s1, *sumsq = s2;
}

void cnn_cpu_bn_forward_train(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                              const float *beta, float momentum, float eps, float *running_mean, float *running_var,
                              float *y, float *save_mean, float *save_invstd, int relu, float *affine)
{
    cnn_cpu_bn_forward_train_synced(n, channels, hw, x, gamma, beta, momentum, eps, running_mean, running_var, y,
                                    save_mean, save_invstd, relu, affine, NULL);
}

void cnn_cpu_bn_forward_train_synced(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                     const float *beta, float momentum, float eps, float *running_mean,
                                     float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                     float *affine, const cnn_bn_sync *sync)
{
    const size_t m = n * hw, stride = channels * hw;
    if (sync) {
        /* Sums of every rank's samples, then the same constants everywhere. */
        double *t = sync->sums;
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
        for (size_t c = 0; c < channels; c++) channel_sums(n, hw, stride, x + c * hw, &t[c], &t[channels + c]);
        t[2 * channels] = (double)m;
        sync->reduce(sync->ctx, t, 2 * channels + 1);
        const size_t total = (size_t)t[2 * channels];
        *sync->count = t[2 * channels];
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
        for (size_t c = 0; c < channels; c++) {
            float k[3];
            bn_train_channel(c, total, t[c], t[channels + c], gamma, beta, momentum, eps, running_mean, running_var,
                             save_mean, save_invstd, k);
            channel_affine(n, hw, stride, x + c * hw, k[0], k[1], k[2], relu, y + c * hw);
            if (affine) affine[c] = k[0], affine[channels + c] = k[1], affine[2 * channels + c] = k[2];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++) {
        double sum, sumsq;
        channel_sums(n, hw, stride, x + c * hw, &sum, &sumsq);
        float k[3];
        bn_train_channel(c, m, sum, sumsq, gamma, beta, momentum, eps, running_mean, running_var, save_mean,
                         save_invstd, k);
        channel_affine(n, hw, stride, x + c * hw, k[0], k[1], k[2], relu, y + c * hw);
        if (affine) affine[c] = k[0], affine[channels + c] = k[1], affine[2 * channels + c] = k[2];
    }
}

void cnn_cpu_bn_forward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                             const float *beta, const float *running_mean, const float *running_var, float eps,
                             float *y, int relu, float *affine)
{
    const size_t stride = channels * hw;
#pragma omp parallel for schedule(static) if (n * hw * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++) {
        const double a = (gamma ? gamma[c] : 1.0) / sqrt((double)running_var[c] + eps);
        channel_affine(n, hw, stride, x + c * hw, running_mean[c], (float)a, beta ? beta[c] : 0.0f, relu, y + c * hw);
        if (affine)
            affine[c] = running_mean[c], affine[channels + c] = (float)a, affine[2 * channels + c] = beta ? beta[c] : 0.0f;
    }
}

/* Sums of dy' and dy' x over one channel, dy' = dy masked by y > 0 (y NaN
 * passes) when y is not NULL: the fused ReLU's backward, as mx_relu_backward. */
static void channel_grad_sums(size_t n, size_t hw, size_t stride, const float *x, const float *y, const float *dy,
                              double *sum_dy, double *sum_dy_x)
{
    double s1 = 0, s2 = 0;
    for (size_t s = 0; s < n; s++) {
        const float *px = x + s * stride, *pg = dy + s * stride;
        if (y) {
            const float *py = y + s * stride;
#pragma omp simd reduction(+ : s1, s2)
            for (size_t i = 0; i < hw; i++) {
                double g = py[i] <= 0.0f ? 0.0 : (double)pg[i];
                s1 += g;
                s2 += g * px[i];
            }
        } else {
#pragma omp simd reduction(+ : s1, s2)
            for (size_t i = 0; i < hw; i++) {
                double g = pg[i];
                s1 += g;
                s2 += g * px[i];
            }
        }
    }
    *sum_dy = s1, *sum_dy_x = s2;
}

/* dx = k1 dy' - k0 - (x - mean) k2 over one channel. */
static void channel_grad(size_t n, size_t hw, size_t stride, const float *x, const float *y, const float *dy,
                         float mean, float k0, float k1, float k2, float *dx)
{
    for (size_t s = 0; s < n; s++) {
        const float *px = x + s * stride, *pg = dy + s * stride;
        float *q = dx + s * stride;
        if (y) {
            const float *py = y + s * stride;
#pragma omp simd
            for (size_t i = 0; i < hw; i++) {
                float g = py[i] <= 0.0f ? 0.0f : pg[i];
                q[i] = k1 * g - k0 - (px[i] - mean) * k2;
            }
        } else {
#pragma omp simd
            for (size_t i = 0; i < hw; i++) q[i] = k1 * pg[i] - k0 - (px[i] - mean) * k2;
        }
    }
}

void cnn_cpu_bn_backward(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                         const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                         float *dgamma, float *dbeta)
{
    cnn_cpu_bn_backward_synced(n, channels, hw, x, y, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta, NULL);
}

void cnn_cpu_bn_backward_synced(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                                const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                float *dgamma, float *dbeta, const cnn_bn_sync *sync)
{
    const size_t m = n * hw, stride = channels * hw;
    if (sync) {
        /* gamma's and beta's gradients from this rank's samples (the gradient
         * all-reduce adds them up); the input gradient from every rank's sums. */
        double *t = sync->sums;
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
        for (size_t c = 0; c < channels; c++) {
            channel_grad_sums(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, &t[c], &t[channels + c]);
            const double sum_dy_xhat = (t[channels + c] - (double)save_mean[c] * t[c]) * (double)save_invstd[c];
            if (dgamma) dgamma[c] = (float)sum_dy_xhat;
            if (dbeta) dbeta[c] = (float)t[c];
        }
        sync->reduce(sync->ctx, t, 2 * channels);
        const double total = *sync->count;
        if (!dx || !m) return;
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
        for (size_t c = 0; c < channels; c++) {
            const double mean = save_mean[c], invstd = save_invstd[c];
            const double sum_dy_xhat = (t[channels + c] - mean * t[c]) * invstd;
            const double scale = (gamma ? gamma[c] : 1.0) * invstd;
            const double mean_dy = t[c] / total, mean_dy_xhat = sum_dy_xhat / total;
            channel_grad(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, (float)mean,
                         (float)(scale * mean_dy), (float)scale, (float)(scale * invstd * mean_dy_xhat), dx + c * hw);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy, sum_dy_x;
        channel_grad_sums(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, &sum_dy, &sum_dy_x);
        const double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
        if (dgamma) dgamma[c] = (float)sum_dy_xhat;
        if (dbeta) dbeta[c] = (float)sum_dy;
        if (!dx || !m) continue;
        const double scale = (gamma ? gamma[c] : 1.0) * invstd;
        const double mean_dy = sum_dy / (double)m, mean_dy_xhat = sum_dy_xhat / (double)m;
        channel_grad(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, (float)mean,
                     (float)(scale * mean_dy), (float)scale, (float)(scale * invstd * mean_dy_xhat), dx + c * hw);
    }
}

void cnn_cpu_bn_backward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                              const float *gamma, const float *running_mean, const float *running_var, float eps,
                              float *dx, float *dgamma, float *dbeta)
{
    const size_t stride = channels * hw;
#pragma omp parallel for schedule(static) if (n * hw * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps), mean = running_mean[c];
        double sum_dy, sum_dy_x;
        channel_grad_sums(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, &sum_dy, &sum_dy_x);
        if (dgamma) dgamma[c] = (float)((sum_dy_x - mean * sum_dy) * invstd);
        if (dbeta) dbeta[c] = (float)sum_dy;
        if (dx)
            channel_grad(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, 0.0f, 0.0f,
                         (float)((gamma ? gamma[c] : 1.0) * invstd), 0.0f, dx + c * hw);
    }
}
