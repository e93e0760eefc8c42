/* The cpu backend's kernels on nChw16c tensors: batch norm (ReLU fused),
 * global average pooling, dropout, and recomputing a batch norm's output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_cpu_simd.h"
#include "nn/cnn_cpu.h"

/* ---- nChw16c kernels --------------------------------------------------------
 * Element (s, c, p) of a tensor of C channels (a multiple of 16) and hw per
 * sample at ((s * C/16 + c/16) * hw + p) * 16 + c % 16: a block's 16 channels
 * are one vector. Batch norm's sums are taken per sample and block (split
 * across threads by sample), kept in `partial` ([n][2][C] doubles, then 3 C
 * more), and added over the samples in order on one thread: the same bits for
 * any thread count. */


/* Whether the fused ReLU zeroed this output, from the batch norm's input x
 * and the forward's constants rk (mean, scale, shift per channel) with the
 * forward's own arithmetic (blocked_affine): its output was <= 0. */
static inline int relu_zeroed(float x, float mean, float scale, float shift)
{
    return (x - mean) * scale + shift <= 0.0f;
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
/* One row of 16 lanes into the double sums: s1 += g, s2 += g * b (b NULL:
 * g * g), each product rounded before its add, as the scalar loop. */
static inline void sums_row(__m512 g, const float *b, __m512d s[4])
{
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(g)), hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(g, 1));
    __m512d blo = lo, bhi = hi;
    if (b) {
        const __m512 bv = _mm512_loadu_ps(b);
        blo = _mm512_cvtps_pd(_mm512_castps512_ps256(bv)), bhi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(bv, 1));
    }
    s[0] = _mm512_add_pd(s[0], lo);
    s[1] = _mm512_add_pd(s[1], hi);
    s[2] = _mm512_add_pd(s[2], _mm512_mul_pd(lo, blo));
    s[3] = _mm512_add_pd(s[3], _mm512_mul_pd(hi, bhi));
}

/* blocked_sums' per-(sample, block) loop with the sums in registers (the
 * portable loop kept them on the stack: 6% of a bf16 resnet20 step); the same
 * operations in the same order, so the same bits. */
static void sums_block(size_t end, const float *pa, const float *pm, const float *rk3[3], const float *pb, double *s1,
                       double *s2)
{
    __m512d s[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    const __m512 zero = _mm512_setzero_ps();
    for (size_t o = 0; o < end; o += 16) {
        __m512 g = _mm512_loadu_ps(pa + o);
        if (pm) {
            g = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(_mm512_loadu_ps(pm + o), zero, _CMP_NLE_UQ), g);
        } else if (rk3[0]) {
            const __m512 v = _mm512_add_ps(
                _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(pb + o), _mm512_loadu_ps(rk3[0])), _mm512_loadu_ps(rk3[1])),
                _mm512_loadu_ps(rk3[2]));
            g = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ), g);
        }
        sums_row(g, pb ? pb + o : NULL, s);
    }
    _mm512_storeu_pd(s1, s[0]);
    _mm512_storeu_pd(s1 + 8, s[1]);
    _mm512_storeu_pd(s2, s[2]);
    _mm512_storeu_pd(s2 + 8, s[3]);
}
#endif

/* Per-sample sums of a and a^2 (b NULL), or of g and g b with g = a masked by
 * mask > 0 (mask NULL: unmasked), into partial[s][0][c], partial[s][1][c]. */
static void blocked_sums(size_t n, size_t channels, size_t hw, const float *a, const float *mask, const float *rk,
                         const float *b, double *partial)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const size_t base = (s * CB + cb) * hw * 16, end = hw * 16;
            const float *pa = a + base;
            double s1[16] = {0}, s2[16] = {0};
#if defined(__AVX512F__) && defined(__AVX512DQ__)
            const float *rk3[3] = {rk && !mask ? rk + cb * 16 : NULL, rk ? rk + channels + cb * 16 : NULL,
                                   rk ? rk + 2 * channels + cb * 16 : NULL};
            sums_block(end, pa, b && mask ? mask + base : NULL, rk3, b ? b + base : NULL, s1, s2);
#else
            if (!b) {
                for (size_t o = 0; o < end; o += 16) {
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        double v = pa[o + l];
                        s1[l] += v;
                        s2[l] += v * v;
                    }
                }
            } else if (!mask && rk) { /* the mask from b = x and the forward's constants (relu_zeroed) */
                const float *pb = b + base, *rm = rk + cb * 16, *ra = rk + channels + cb * 16,
                            *rb = rk + 2 * channels + cb * 16;
                for (size_t o = 0; o < end; o += 16) {
                    float gm[16];
#pragma omp simd
                    for (int l = 0; l < 16; l++) gm[l] = relu_zeroed(pb[o + l], rm[l], ra[l], rb[l]) ? 0.0f : pa[o + l];
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        double g = gm[l];
                        s1[l] += g;
                        s2[l] += g * pb[o + l];
                    }
                }
            } else if (mask) {
                const float *pm = mask + base, *pb = b + base;
                for (size_t o = 0; o < end; o += 16) {
                    float gm[16]; /* the select in its own loop: GCC vectorises neither otherwise */
#pragma omp simd
                    for (int l = 0; l < 16; l++) gm[l] = pm[o + l] <= 0.0f ? 0.0f : pa[o + l];
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        double g = gm[l];
                        s1[l] += g;
                        s2[l] += g * pb[o + l];
                    }
                }
            } else {
                const float *pb = b + base;
                for (size_t o = 0; o < end; o += 16) {
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        double g = pa[o + l];
                        s1[l] += g;
                        s2[l] += g * pb[o + l];
                    }
                }
            }
#endif
            double *out = partial + s * 2 * channels + cb * 16;
            for (int l = 0; l < 16; l++) out[l] = s1[l], out[channels + l] = s2[l];
        }
}

/* The two sums of channel c over the samples, in order. */
static void blocked_total(size_t n, size_t channels, const double *partial, size_t c, double *t1, double *t2)
{
    double a = 0, b = 0;
    for (size_t s = 0; s < n; s++) a += partial[s * 2 * channels + c], b += partial[s * 2 * channels + channels + c];
    *t1 = a, *t2 = b;
}

/* y = relu?((x - mean) a + b) with k = {mean, a, b} per channel, as float32
 * into y and as bfloat16 into y16, each when not NULL. */
static void blocked_affine(size_t n, size_t channels, size_t hw, const float *x, const float *k, int relu, float *y,
                           uint16_t *y16)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const size_t base = (s * CB + cb) * hw * 16;
            const float *mean = k + cb * 16, *a = k + channels + cb * 16, *b = k + 2 * channels + cb * 16;
            for (size_t q = 0; q < hw; q++) {
                const float *px = x + base + q * 16;
                float row[16], *py = y ? y + base + q * 16 : row;
#pragma omp simd
                for (int l = 0; l < 16; l++) {
                    float v = (px[l] - mean[l]) * a[l] + b[l];
                    py[l] = relu && !(v > 0.0f || v != v) ? 0.0f : v;
                }
                if (y16) store_bf16x16(py, y16 + base + q * 16);
            }
        }
}



/* dx = k[1][c] g - k[0][c] - (x - k[3][c]) k[2][c], g = dy masked by the
 * fused ReLU: by its output y > 0 when y is not NULL, else by relu_zeroed from
 * rk when that is not NULL. As float32, or with dx_bf16 as bfloat16 in dx's
 * first half (the next consumer, a bfloat16 convolution's backward, reads it
 * so). */
static void blocked_grad(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *rk,
                         const float *dy, const float *k, float *dx, int dx_bf16)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const size_t base = (s * CB + cb) * hw * 16;
            const float *k0 = k + cb * 16, *k1 = k + channels + cb * 16, *k2 = k + 2 * channels + cb * 16,
                        *mean = k + 3 * channels + cb * 16;
            const float *px = x + base, *pg = dy + base, *py = y ? y + base : NULL;
            const float *rm = rk ? rk + cb * 16 : NULL, *ra = rk ? rk + channels + cb * 16 : NULL,
                        *rb = rk ? rk + 2 * channels + cb * 16 : NULL;
            float *pd = dx + base, row[16];
            uint16_t *pb = (uint16_t *)(void *)dx + base;
            for (size_t q = 0; q < hw * 16; q += 16) {
                float *out = dx_bf16 ? row : pd + q;
                if (!py && rm) {
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        float g = relu_zeroed(px[q + l], rm[l], ra[l], rb[l]) ? 0.0f : pg[q + l];
                        out[l] = k1[l] * g - k0[l] - (px[q + l] - mean[l]) * k2[l];
                    }
                } else if (py) {
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        float v = pg[q + l], g = py[q + l] <= 0.0f ? 0.0f : v;
                        out[l] = k1[l] * g - k0[l] - (px[q + l] - mean[l]) * k2[l];
                    }
                } else {
#pragma omp simd
                    for (int l = 0; l < 16; l++) out[l] = k1[l] * pg[q + l] - k0[l] - (px[q + l] - mean[l]) * k2[l];
                }
                if (dx_bf16) store_bf16x16(row, pb + q);
            }
        }
}

/* partial has room for 4 C floats after its 2 n C doubles. */
static float *blocked_consts(size_t n, size_t channels, double *partial)
{
    return (float *)(partial + 2 * n * channels);
}

void cnn_cpu_bn_forward_train_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                      const float *beta, float momentum, float eps, float *running_mean,
                                      float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                      double *partial, float *affine, uint16_t *y16)
{
    cnn_cpu_bn_forward_train_blocked_synced(n, channels, hw, x, gamma, beta, momentum, eps, running_mean, running_var,
                                            y, save_mean, save_invstd, relu, partial, affine, y16, NULL);
}

void cnn_cpu_bn_forward_train_blocked_synced(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                             const float *beta, float momentum, float eps, float *running_mean,
                                             float *running_var, float *y, float *save_mean, float *save_invstd,
                                             int relu, double *partial, float *affine, uint16_t *y16,
                                             const cnn_bn_sync *sync)
{
    size_t m = n * hw;
    blocked_sums(n, channels, hw, x, NULL, NULL, NULL, partial);
    float *k = blocked_consts(n, channels, partial);
    if (sync) {
        /* This rank's totals, then every rank's, in sync->sums. */
        double *t = sync->sums;
        for (size_t c = 0; c < channels; c++) blocked_total(n, channels, partial, c, &t[c], &t[channels + c]);
        t[2 * channels] = (double)m;
        sync->reduce(sync->ctx, t, 2 * channels + 1);
        m = (size_t)t[2 * channels];
        *sync->count = t[2 * channels];
    }
    for (size_t c = 0; c < channels; c++) {
        double sum, sumsq;
        if (sync) sum = sync->sums[c], sumsq = sync->sums[channels + c];
        else blocked_total(n, channels, partial, c, &sum, &sumsq);
        float kc[3];
        bn_train_channel(c, m, sum, sumsq, gamma, beta, momentum, eps, running_mean, running_var, save_mean,
                         save_invstd, kc);
        k[c] = kc[0], k[channels + c] = kc[1], k[2 * channels + c] = kc[2];
    }
    blocked_affine(n, channels, hw, x, k, relu, y, y16);
    if (affine) memcpy(affine, k, 3 * channels * sizeof(float));
}

void cnn_cpu_bn_forward_eval_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                     const float *beta, const float *running_mean, const float *running_var, float eps,
                                     float *y, int relu, double *partial, float *affine, uint16_t *y16)
{
    float *k = blocked_consts(n, channels, partial);
    for (size_t c = 0; c < channels; c++) {
        k[c] = running_mean[c];
        k[channels + c] = (float)((gamma ? gamma[c] : 1.0) / sqrt((double)running_var[c] + eps));
        k[2 * channels + c] = beta ? beta[c] : 0.0f;
    }
    blocked_affine(n, channels, hw, x, k, relu, y, y16);
    if (affine) memcpy(affine, k, 3 * channels * sizeof(float));
}

void cnn_cpu_bn_backward_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                 const float *relu_k, const float *dy, const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                 int dx_bf16, float *dgamma, float *dbeta, double *partial)
{
    cnn_cpu_bn_backward_blocked_synced(n, channels, hw, x, y, relu_k, dy, gamma, save_mean, save_invstd, dx, dx_bf16,
                                       dgamma, dbeta, partial, NULL);
}

void cnn_cpu_bn_backward_blocked_synced(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                        const float *relu_k, const float *dy, const float *gamma,
                                        const float *save_mean, const float *save_invstd, float *dx, int dx_bf16,
                                        float *dgamma, float *dbeta, double *partial, const cnn_bn_sync *sync)
{
    const size_t local_m = n * hw;
    double m = (double)local_m;
    blocked_sums(n, channels, hw, dy, y, relu_k, x, partial);
    float *k = blocked_consts(n, channels, partial);
    if (sync) {
        /* gamma's and beta's gradients from this rank's samples (the gradient
         * all-reduce adds them up); the input gradient from every rank's sums. */
        double *t = sync->sums;
        for (size_t c = 0; c < channels; c++) {
            blocked_total(n, channels, partial, c, &t[c], &t[channels + c]);
            const double sum_dy_xhat = (t[channels + c] - (double)save_mean[c] * t[c]) * (double)save_invstd[c];
            if (dgamma) dgamma[c] = (float)sum_dy_xhat;
            if (dbeta) dbeta[c] = (float)t[c];
        }
        sync->reduce(sync->ctx, t, 2 * channels);
        m = *sync->count;
    }
    for (size_t c = 0; c < channels; c++) {
        double sum_dy, sum_dy_x;
        if (sync) sum_dy = sync->sums[c], sum_dy_x = sync->sums[channels + c];
        else blocked_total(n, channels, partial, c, &sum_dy, &sum_dy_x);
        const double mean = save_mean[c], invstd = save_invstd[c];
        const double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
        if (dgamma && !sync) dgamma[c] = (float)sum_dy_xhat;
        if (dbeta && !sync) dbeta[c] = (float)sum_dy;
        const double scale = (gamma ? gamma[c] : 1.0) * invstd;
        const double mean_dy = m > 0 ? sum_dy / m : 0.0, mean_dy_xhat = m > 0 ? sum_dy_xhat / m : 0.0;
        k[c] = (float)(scale * mean_dy);
        k[channels + c] = (float)scale;
        k[2 * channels + c] = (float)(scale * invstd * mean_dy_xhat);
        k[3 * channels + c] = (float)mean;
    }
    if (dx && local_m) blocked_grad(n, channels, hw, x, y, relu_k, dy, k, dx, dx_bf16);
}

void cnn_cpu_bn_backward_eval_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                      const float *relu_k, const float *dy, const float *gamma, const float *running_mean,
                                      const float *running_var, float eps, float *dx, int dx_bf16, float *dgamma,
                                      float *dbeta, double *partial)
{
    blocked_sums(n, channels, hw, dy, y, relu_k, x, partial);
    float *k = blocked_consts(n, channels, partial);
    for (size_t c = 0; c < channels; c++) {
        double sum_dy, sum_dy_x;
        blocked_total(n, channels, partial, c, &sum_dy, &sum_dy_x);
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps), mean = running_mean[c];
        if (dgamma) dgamma[c] = (float)((sum_dy_x - mean * sum_dy) * invstd);
        if (dbeta) dbeta[c] = (float)sum_dy;
        k[c] = 0.0f;
        k[channels + c] = (float)((gamma ? gamma[c] : 1.0) * invstd);
        k[2 * channels + c] = 0.0f;
        k[3 * channels + c] = 0.0f;
    }
    if (dx) blocked_grad(n, channels, hw, x, y, relu_k, dy, k, dx, dx_bf16);
}

void cnn_cpu_gap_forward_blocked(size_t n, size_t channels, size_t hw, const float *x, float *y)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const float *p = x + (s * CB + cb) * hw * 16;
            double sum[16] = {0};
            for (size_t q = 0; q < hw; q++) {
#pragma omp simd
                for (int l = 0; l < 16; l++) sum[l] += p[q * 16 + l];
            }
            for (int l = 0; l < 16; l++) y[s * channels + cb * 16 + l] = (float)(sum[l] / (double)hw);
        }
}

void cnn_cpu_gap_backward_blocked(size_t n, size_t channels, size_t hw, const float *dy, float *dx)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            float g[16];
            for (int l = 0; l < 16; l++) g[l] = (float)(dy[s * channels + cb * 16 + l] / (double)hw);
            float *p = dx + (s * CB + cb) * hw * 16;
            for (size_t q = 0; q < hw; q++) {
#pragma omp simd
                for (int l = 0; l < 16; l++) p[q * 16 + l] = g[l];
            }
        }
}

void cnn_cpu_dropout_forward_blocked(size_t n, size_t channels, size_t hw, float p, mx_rng *rng, const float *x,
                                     float *y, uint8_t *mask)
{
    /* mx_dropout_forward's rule and draws, in its (NCHW) order, applied through the index map. */
    const double cut = (double)p * 4294967296.0;
    const int drop_all = p >= 1.0f;
    const uint64_t threshold = p <= 0.0f ? 0 : drop_all ? UINT64_C(4294967296) : (uint64_t)cut;
    const float scale = drop_all ? 0.0f : 1.0f / (1.0f - p);
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < channels; c++)
            for (size_t q = 0; q < hw; q++) {
                const size_t i = (s * channels + c) * hw + q, j = cnn_index(1, channels, hw, s, c, q);
                uint8_t keep = (uint64_t)mx_rng_u32(rng) >= threshold;
                mask[i] = keep;
                y[j] = keep ? x[j] * scale : 0.0f;
            }
}

void cnn_cpu_dropout_backward_blocked(size_t n, size_t channels, size_t hw, float p, const uint8_t *mask,
                                      const float *dy, float *dx)
{
    const float scale = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < channels; c++)
            for (size_t q = 0; q < hw; q++) {
                const size_t i = (s * channels + c) * hw + q, j = cnn_index(1, channels, hw, s, c, q);
                dx[j] = mask[i] ? dy[j] * scale : 0.0f;
            }
}

void cnn_cpu_bn_apply(size_t n, size_t channels, size_t hw, int blocked, const float *x, const float *affine, int relu,
                      float *y)
{
    if (blocked) {
        blocked_affine(n, channels, hw, x, affine, relu, y, NULL);
        return;
    }
    const size_t stride = channels * hw;
#pragma omp parallel for schedule(static) if (n * hw * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++)
        channel_affine(n, hw, stride, x + c * hw, affine[c], affine[channels + c], affine[2 * channels + c], relu,
                       y + c * hw);
}
