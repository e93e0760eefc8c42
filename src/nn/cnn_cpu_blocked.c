/* The cpu backend's batch-norm kernels on blocked (nChw16c, nChw8c, NHWC)
 * tensors (cnn_cpu_blocked.h says how they are laid out and walked):
 * training and eval, forward (ReLU and the residual add fused) and backward,
 * and recomputing a batch norm's output; their sums are in
 * cnn_cpu_bn_sums.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_cpu_blocked.h"
#include "nn/cnn_cpu_simd.h"

/* The two sums of channel c over the samples, in order. */
static void blocked_total(size_t n, size_t channels, const double *partial, size_t c, double *t1, double *t2)
{
    double a = 0, b = 0;
    for (size_t s = 0; s < n; s++) a += partial[s * 2 * channels + c], b += partial[s * 2 * channels + channels + c];
    *t1 = a, *t2 = b;
}

/* One (sample, block) of blocked_affine: hw rows rs elements apart, x as
 * float32 or (x16) bfloat16, the addend's rows (float32) added when `add`,
 * the rows' ReLU masks into bits when not NULL (block 16). */
static inline __attribute__((always_inline)) void affine_block(const size_t B, const int x16, const int add, size_t hw,
                                                               size_t rs, const void *x, const float *mean,
                                                               const float *a, const float *b, const float *addend,
                                                               int relu, float *y, uint16_t *y16, uint16_t *bits)
{
    for (size_t q = 0; q < hw; q++) {
        float row[MAX_BLOCK], *py = y ? y + q * rs : row;
#pragma omp simd
        for (size_t l = 0; l < B; l++) {
            float v = (load_f32(x, q * rs + l, x16) - mean[l]) * a[l] + b[l];
            if (add) v += addend[q * rs + l];
            py[l] = relu && !(v > 0.0f || v != v) ? 0.0f : v;
        }
        if (y16) store_bf16x16(py, y16 + q * rs);
        if (bits) bits[q * rs / 16] = relu_bits16(py);
    }
}

#if defined(__AVX512F__)
/* affine_block for 16 lanes, each row computed in one register and stored
 * from it (affine_block's row buffer, written as two 256-bit halves and read
 * back whole, stalled on store forwarding: half of the pass). The same
 * operations in the same order, so the same bits. */
static inline __attribute__((always_inline)) void affine_block16(const int x16, const int add, size_t hw, size_t rs,
                                                                 const void *x, const float *mean, const float *a,
                                                                 const float *b, const float *addend, int relu,
                                                                 float *y, uint16_t *y16, uint16_t *bits)
{
    const __m512 m = _mm512_loadu_ps(mean), av = _mm512_loadu_ps(a), bv = _mm512_loadu_ps(b), zero = _mm512_setzero_ps();
    for (size_t q = 0; q < hw; q++) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(load_f32x16(x, q * rs, x16), m), av), bv);
        if (add) v = _mm512_add_ps(v, _mm512_loadu_ps(addend + q * rs));
        const __mmask16 pass = _mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ); /* v > 0 or NaN */
        if (relu) v = _mm512_maskz_mov_ps(pass, v);
        if (y) _mm512_storeu_ps(y + q * rs, v);
        if (y16) store_bf16x16_reg(v, y16 + q * rs);
        if (bits) bits[q * rs / 16] = (uint16_t)pass;
    }
}
#endif

/* y = relu?((x - mean) a + b (+ add->addend)) with k = {mean, a, b} per
 * channel, as float32 into y and as bfloat16 into y16 (block 16 only:
 * bfloat16 models are blocked by 16), each when not NULL; x bfloat16 with
 * CNN_X_BF16; the ReLU's mask into add->relu_bits unless NULL. */
static void blocked_affine(size_t n, size_t channels, size_t hw, size_t layout, const void *x, const float *k,
                           const cnn_bn_add *add, int relu, float *y, uint16_t *y16)
{
    const float *addend = add ? add->addend : NULL;
    uint16_t *bits = add ? add->relu_bits : NULL;
    const size_t B = cnn_block(layout), CB = channels / B, rs = cnn_row_stride(layout, channels);
    const int x16 = (layout & CNN_X_BF16) != 0;
    const row_walk w = walk_of(layout, channels, hw);
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t r = 0; r < w.runs; r++)
            for (size_t cb = 0; cb < CB; cb++) {
                const size_t base = run_at(layout, channels, w, s, r, cb), rows = run_rows(w, r);
                const float *mean = k + cb * B, *a = k + channels + cb * B, *b = k + 2 * channels + cb * B;
                float *py = y ? y + base : NULL;
                uint16_t *p16 = y16 ? y16 + base : NULL;
                const void *px = element_at(x, base, x16);
                const float *pa = addend ? addend + base : NULL;
                uint16_t *pk = bits && B == 16 ? bits + base / 16 : NULL;
                if (B == 8 && pa) affine_block(8, 0, 1, rows, rs, px, mean, a, b, pa, relu, py, NULL, NULL);
                else if (B == 8) affine_block(8, 0, 0, rows, rs, px, mean, a, b, pa, relu, py, NULL, NULL);
#if defined(__AVX512F__)
                else if (x16 && pa) affine_block16(1, 1, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else if (x16) affine_block16(1, 0, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else if (pa) affine_block16(0, 1, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else affine_block16(0, 0, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
#else
                else if (x16 && pa) affine_block(16, 1, 1, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else if (x16) affine_block(16, 1, 0, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else if (pa) affine_block(16, 0, 1, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else affine_block(16, 0, 0, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
#endif
            }
}

/* One (sample, block) of blocked_grad, hw rows rs elements apart: k0..k2 and
 * mean the block's constants, rk3 the forward's (rk3[0] NULL: none); x and
 * dy float32 or (x16, g16) bfloat16. */
static inline __attribute__((always_inline)) void grad_block(const size_t B, const int x16, const int g16, size_t hw,
                                                             size_t rs, const void *px, const float *py,
                                                             const float *const rk3[3], const void *pg,
                                                             const float *const k4[4], float *pd, uint16_t *p16)
{
    const float *k0 = k4[0], *k1 = k4[1], *k2 = k4[2], *mean = k4[3];
    const float *rm = rk3[0], *ra = rk3[1], *rb = rk3[2];
    for (size_t q = 0; q < hw * rs; q += rs) {
        float row[MAX_BLOCK], *out = p16 ? row : pd + q;
        if (!py && rm) {
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                const float xv = load_f32(px, q + l, x16);
                float g = relu_zeroed(xv, rm[l], ra[l], rb[l]) ? 0.0f : load_f32(pg, q + l, g16);
                out[l] = k1[l] * g - k0[l] - (xv - mean[l]) * k2[l];
            }
        } else if (py) {
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                float v = load_f32(pg, q + l, g16), g = py[q + l] <= 0.0f ? 0.0f : v;
                out[l] = k1[l] * g - k0[l] - (load_f32(px, q + l, x16) - mean[l]) * k2[l];
            }
        } else {
#pragma omp simd
            for (size_t l = 0; l < B; l++)
                out[l] = k1[l] * load_f32(pg, q + l, g16) - k0[l] - (load_f32(px, q + l, x16) - mean[l]) * k2[l];
        }
        if (p16) store_bf16x16(row, p16 + q);
    }
}

#if defined(__AVX512F__)
/* grad_block for 16 lanes in registers, stored from them (see
 * affine_block16); the same operations in the same order. */
static inline __attribute__((always_inline)) void grad_block16(const int x16, const int g16, size_t hw, size_t rs,
                                                               const void *px, const float *py,
                                                               const float *const rk3[3], const void *pg,
                                                               const float *const k4[4], float *pd, uint16_t *p16)
{
    const __m512 k0 = _mm512_loadu_ps(k4[0]), k1 = _mm512_loadu_ps(k4[1]), k2 = _mm512_loadu_ps(k4[2]),
                 mean = _mm512_loadu_ps(k4[3]), zero = _mm512_setzero_ps();
    const int from_x = !py && rk3[0];
    const __m512 rm = from_x ? _mm512_loadu_ps(rk3[0]) : zero, ra = from_x ? _mm512_loadu_ps(rk3[1]) : zero,
                 rb = from_x ? _mm512_loadu_ps(rk3[2]) : zero;
    for (size_t q = 0; q < hw * rs; q += rs) {
        const __m512 xv = load_f32x16(px, q, x16);
        __m512 g = load_f32x16(pg, q, g16);
        if (from_x) { /* relu_zeroed: (x - mean) scale + shift <= 0 */
            const __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(xv, rm), ra), rb);
            g = _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), zero);
        } else if (py) {
            g = _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(_mm512_loadu_ps(py + q), zero, _CMP_LE_OQ), zero);
        }
        const __m512 out = _mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(k1, g), k0), _mm512_mul_ps(_mm512_sub_ps(xv, mean), k2));
        if (p16) store_bf16x16_reg(out, p16 + q);
        else _mm512_storeu_ps(pd + q, out);
    }
}
#endif

/* dx = k[1][c] g - k[0][c] - (x - k[3][c]) k[2][c], g = dy masked by the
 * fused ReLU: by its output y > 0 when y is not NULL, else by relu_zeroed from
 * rk when that is not NULL. As float32, or with dx_bf16 (block 16 only) as
 * bfloat16 in dx's first half (the next consumer, a bfloat16 convolution's
 * backward, reads it so). */
static void blocked_grad(size_t n, size_t channels, size_t hw, size_t layout, const void *x, const float *y,
                         const float *rk, const void *dy, const float *k, float *dx, int dx_bf16)
{
    const size_t B = cnn_block(layout), CB = channels / B, rs = cnn_row_stride(layout, channels);
    const int x16 = (layout & CNN_X_BF16) != 0, g16 = (layout & CNN_DY_BF16) != 0;
    const row_walk w = walk_of(layout, channels, hw);
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t r = 0; r < w.runs; r++)
            for (size_t cb = 0; cb < CB; cb++) {
                const size_t base = run_at(layout, channels, w, s, r, cb), rows = run_rows(w, r);
                const float *k4[4] = {k + cb * B, k + channels + cb * B, k + 2 * channels + cb * B,
                                      k + 3 * channels + cb * B};
                const float *rk3[3] = {rk ? rk + cb * B : NULL, rk ? rk + channels + cb * B : NULL,
                                       rk ? rk + 2 * channels + cb * B : NULL};
                const float *py = y ? y + base : NULL;
                uint16_t *p16 = dx_bf16 ? (uint16_t *)(void *)dx + base : NULL;
                const void *px = element_at(x, base, x16), *pg = element_at(dy, base, g16);
                if (B == 8) grad_block(8, 0, 0, rows, rs, px, py, rk3, pg, k4, dx + base, NULL);
#if defined(__AVX512F__)
                else if (x16 && g16) grad_block16(1, 1, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else if (x16) grad_block16(1, 0, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else if (g16) grad_block16(0, 1, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else grad_block16(0, 0, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
#else
                else if (x16 && g16) grad_block(16, 1, 1, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else if (x16) grad_block(16, 1, 0, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else if (g16) grad_block(16, 0, 1, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else grad_block(16, 0, 0, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
#endif
            }
}

/* partial has room for 4 C floats after its 2 n C doubles. */
static float *blocked_consts(size_t n, size_t channels, double *partial)
{
    return (float *)(partial + 2 * n * channels);
}

void cnn_cpu_bn_forward_train_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                      const float *beta, float momentum, float eps, float *running_mean,
                                      float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                      double *partial, float *affine, uint16_t *y16)
{
    cnn_cpu_bn_forward_train_blocked_synced(n, channels, hw, layout, x, gamma, beta, momentum, eps, running_mean, running_var,
                                            y, save_mean, save_invstd, relu, partial, affine, y16, NULL, NULL);
}

void cnn_cpu_bn_forward_train_blocked_synced(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                             const float *beta, float momentum, float eps, float *running_mean,
                                             float *running_var, float *y, float *save_mean, float *save_invstd,
                                             int relu, double *partial, float *affine, uint16_t *y16,
                                             const cnn_bn_sync *sync, const cnn_bn_add *add)
{
    size_t m = n * hw;
    cnn_cpu_blocked_sums(n, channels, hw, layout, x, NULL, NULL, NULL, partial);
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
    blocked_affine(n, channels, hw, layout, x, k, add, relu, y, y16);
    if (affine) memcpy(affine, k, 3 * channels * sizeof(float));
}

void cnn_cpu_bn_forward_eval_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                     const float *beta, const float *running_mean, const float *running_var, float eps,
                                     float *y, int relu, double *partial, float *affine, uint16_t *y16,
                                     const cnn_bn_add *add)
{
    float *k = blocked_consts(n, channels, partial);
    for (size_t c = 0; c < channels; c++) {
        k[c] = running_mean[c];
        k[channels + c] = (float)((gamma ? gamma[c] : 1.0) / sqrt((double)running_var[c] + eps));
        k[2 * channels + c] = beta ? beta[c] : 0.0f;
    }
    blocked_affine(n, channels, hw, layout, x, k, add, relu, y, y16);
    if (affine) memcpy(affine, k, 3 * channels * sizeof(float));
}

void cnn_cpu_bn_backward_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                 const float *relu_k, const float *dy, const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                 int dx_bf16, float *dgamma, float *dbeta, double *partial)
{
    cnn_cpu_bn_backward_blocked_synced(n, channels, hw, layout, x, y, relu_k, dy, gamma, save_mean, save_invstd, dx, dx_bf16,
                                       dgamma, dbeta, partial, NULL, 0);
}

void cnn_cpu_bn_backward_blocked_synced(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                        const float *relu_k, const float *dy, const float *gamma,
                                        const float *save_mean, const float *save_invstd, float *dx, int dx_bf16,
                                        float *dgamma, float *dbeta, double *partial, const cnn_bn_sync *sync,
                                        int sums_ready)
{
    const size_t local_m = n * hw;
    double m = (double)local_m;
    if (!sums_ready) cnn_cpu_blocked_sums(n, channels, hw, layout, dy, y, relu_k, x, partial);
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
    if (dx && local_m) blocked_grad(n, channels, hw, layout, x, y, relu_k, dy, k, dx, dx_bf16);
}

void cnn_cpu_bn_backward_eval_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                      const float *relu_k, const float *dy, const float *gamma, const float *running_mean,
                                      const float *running_var, float eps, float *dx, int dx_bf16, float *dgamma,
                                      float *dbeta, double *partial)
{
    cnn_cpu_blocked_sums(n, channels, hw, layout, dy, y, relu_k, x, partial);
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
    if (dx) blocked_grad(n, channels, hw, layout, x, y, relu_k, dy, k, dx, dx_bf16);
}

void cnn_cpu_bn_apply_bf16(size_t n, size_t channels, size_t hw, size_t layout, const void *x, const float *affine,
                           int relu, uint16_t *y16)
{
    blocked_affine(n, channels, hw, layout, x, affine, NULL, relu, NULL, y16);
}

void cnn_cpu_bn_apply(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *affine, int relu,
                      float *y)
{
    if (layout) {
        blocked_affine(n, channels, hw, layout, x, affine, NULL, relu, y, NULL);
        return;
    }
    const size_t stride = channels * hw;
#pragma omp parallel for schedule(static) if (n * hw * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++)
        channel_affine(n, hw, stride, x + c * hw, affine[c], affine[channels + c], affine[2 * channels + c], relu,
                       y + c * hw);
}
