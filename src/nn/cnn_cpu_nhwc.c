/* The cpu backend's kernels on bfloat16 NHWC activations ([n, h, w, c],
 * oneDNN's nhwc), the layout of bfloat16 prediction (cnn_cpu_predict.c):
 * what its convolutions (oneDNN's AMX kernels) read and write, so the
 * nodes between them work there too: an unfolded batch norm, the residual
 * add, max pooling and the global average pooling that leaves it. Each
 * value is widened to float32, computed as the float32 kernels compute it,
 * and rounded to nearest even on the way out, as oneDNN's kernels round;
 * element-wise loops split the elements, the others the samples, so the
 * results do not depend on the thread count. */
#include <float.h>
#include <string.h>

#include "nn/cnn_cpu.h"
#include "nn/cnn_cpu_simd.h"

static inline float widen(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Rounded to nearest even, NaN kept a (quiet) NaN: store_bf16x16's scalar rule. */
static inline uint16_t narrow(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u)
                                           : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float relu_of(float v) { return (v > 0.0f || v != v) ? v : 0.0f; /* NaN passes */ }

void cnn_cpu_nhwc_affine(size_t n, size_t c, size_t hw, const uint16_t *x, const float *mean, const float *scale,
                         const float *shift, int relu, uint16_t *y)
{
    const size_t pixels = n * hw;
#pragma omp parallel for schedule(static) if (pixels * c >= CNN_CPU_PARALLEL_MIN)
    for (size_t p = 0; p < pixels; p++) {
        const uint16_t *a = x + p * c;
        uint16_t *b = y + p * c;
#pragma omp simd
        for (size_t i = 0; i < c; i++) {
            const float v = (widen(a[i]) - mean[i]) * scale[i] + shift[i];
            b[i] = narrow(relu ? relu_of(v) : v);
        }
    }
}

void cnn_cpu_nhwc_add(size_t count, const uint16_t *a, const uint16_t *b, int relu, uint16_t *y)
{
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
    for (size_t i = 0; i < count; i++) {
        const float v = widen(a[i]) + widen(b[i]);
        y[i] = narrow(relu ? relu_of(v) : v);
    }
}

void cnn_cpu_nhwc_gap(size_t n, size_t c, size_t hw, const uint16_t *x, float *y)
{
#pragma omp parallel for schedule(static) if (n * hw * c >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++) {
        float *out = y + s * c;
        for (size_t i = 0; i < c; i++) out[i] = 0.0f;
        for (size_t p = 0; p < hw; p++) {
            const uint16_t *a = x + (s * hw + p) * c;
#pragma omp simd
            for (size_t i = 0; i < c; i++) out[i] += widen(a[i]);
        }
        const float inv = 1.0f / (float)hw;
        for (size_t i = 0; i < c; i++) out[i] *= inv;
    }
}

void cnn_cpu_nhwc_maxpool(size_t n, const mx_pool2d_desc *d, const uint16_t *x, uint16_t *y)
{
    enum { LANES = 64 }; /* channels per pass over a window, their maxima in registers */
    const size_t c = d->channels, outputs = n * d->out_h * d->out_w;
#pragma omp parallel for schedule(static) if (outputs * c >= CNN_CPU_PARALLEL_MIN)
    for (size_t o = 0; o < outputs; o++) {
        const size_t s = o / (d->out_h * d->out_w), oh = o / d->out_w % d->out_h, ow = o % d->out_w;
        const size_t h0 = oh * d->stride_h, w0 = ow * d->stride_w;
        for (size_t c0 = 0; c0 < c; c0 += LANES) {
            const size_t lanes = c - c0 < LANES ? c - c0 : LANES;
            float best[LANES];
            for (size_t i = 0; i < lanes; i++) best[i] = -FLT_MAX;
            /* The window clipped to the input: padding never wins, as in PyTorch. */
            for (size_t kh = 0; kh < d->kernel_h; kh++) {
                if (h0 + kh < d->pad_h || h0 + kh - d->pad_h >= d->in_h) continue;
                for (size_t kw = 0; kw < d->kernel_w; kw++) {
                    if (w0 + kw < d->pad_w || w0 + kw - d->pad_w >= d->in_w) continue;
                    const uint16_t *a = x + ((s * d->in_h + h0 + kh - d->pad_h) * d->in_w + w0 + kw - d->pad_w) * c + c0;
#pragma omp simd
                    for (size_t i = 0; i < lanes; i++) {
                        const float v = widen(a[i]);
                        best[i] = (v > best[i] || v != v) ? v : best[i]; /* NaN propagates */
                    }
                }
            }
            uint16_t *out = y + o * c + c0;
            for (size_t i = 0; i < lanes; i++) out[i] = narrow(best[i]);
        }
    }
}
