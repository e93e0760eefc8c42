/* Max pooling on blocked tensors (cnn_cpu.h cnn_cpu_maxpool_*_blocked),
 * PyTorch's semantics as the reference (src/nn/layers/pool.c): -inf
 * padding, the first maximum in row-major window order winning ties, a NaN
 * beating everything (the last one in the window); each arg-max is its
 * input's index within its channel's plane (ih * in_w + iw), as the
 * reference keeps it, at the output's blocked position.
 *
 * resnet50's stem pooling (3x3, stride 2, padding 1, 64 channels at 112x112)
 * ran on the reference's NCHW planes, one window element at a time: 124 ms
 * of a 1.3 s evaluation batch of 32 at 224x224 (MIXREG_PROFILE, 2 threads),
 * and its input and output were the only NCHW activations between the stem
 * and the first block, reordered by the convolutions around them. Here a
 * window element is one vector of the block's channels. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/cnn_cpu.h"

/* One (sample, channel block) plane: x [in_h][in_w][B], y and argmax
 * [out_h][out_w][B]; B (8 or 16) a constant after inlining. */
static inline __attribute__((always_inline)) void maxpool_plane(const mx_pool2d_desc *d, size_t B, const float *x,
                                                                 float *y, uint32_t *argmax)
{
    const long H = (long)d->in_h, W = (long)d->in_w;
    for (size_t oh = 0; oh < d->out_h; oh++)
        for (size_t ow = 0; ow < d->out_w; ow++) {
            const long hs = (long)(oh * d->stride_h) - (long)d->pad_h, ws = (long)(ow * d->stride_w) - (long)d->pad_w;
            const long h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;
            const long h1 = hs + (long)d->kernel_h < H ? hs + (long)d->kernel_h : H;
            const long w1 = ws + (long)d->kernel_w < W ? ws + (long)d->kernel_w : W;
            float best[16];
            uint32_t at[16];
            for (size_t l = 0; l < B; l++) best[l] = -INFINITY, at[l] = (uint32_t)(h0 * W + w0);
            for (long ih = h0; ih < h1; ih++)
                for (long iw = w0; iw < w1; iw++) {
                    const uint32_t index = (uint32_t)(ih * W + iw);
                    const float *v = x + (size_t)index * B;
#pragma omp simd
                    for (size_t l = 0; l < B; l++) {
                        const int take = v[l] > best[l] || v[l] != v[l];
                        best[l] = take ? v[l] : best[l];
                        at[l] = take ? index : at[l];
                    }
                }
            const size_t o = (oh * d->out_w + ow) * B;
            for (size_t l = 0; l < B; l++) y[o + l] = best[l];
            if (argmax)
                for (size_t l = 0; l < B; l++) argmax[o + l] = at[l];
        }
}

void cnn_cpu_maxpool_forward_blocked(const mx_pool2d_desc *d, size_t n, size_t block, const float *x, float *y,
                                     uint32_t *argmax)
{
    const size_t planes = n * (d->channels / block), in = d->in_h * d->in_w * block, out = d->out_h * d->out_w * block;
    /* Planes are independent: any thread count gives the same outputs. */
#pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)planes; p++) {
        uint32_t *a = argmax ? argmax + (size_t)p * out : NULL;
        if (block == 8) maxpool_plane(d, 8, x + (size_t)p * in, y + (size_t)p * out, a);
        else maxpool_plane(d, 16, x + (size_t)p * in, y + (size_t)p * out, a);
    }
}

void cnn_cpu_maxpool_backward_blocked(const mx_pool2d_desc *d, size_t n, size_t block, const uint32_t *argmax,
                                      const float *dy, float *dx)
{
    const size_t planes = n * (d->channels / block), in = d->in_h * d->in_w * block, out = d->out_h * d->out_w * block;
    /* A plane's arg-max points into that plane only: threads never share an element. */
#pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)planes; p++) {
        float *dxp = dx + (size_t)p * in;
        const float *dyp = dy + (size_t)p * out;
        const uint32_t *ap = argmax + (size_t)p * out;
        memset(dxp, 0, in * sizeof(float));
        for (size_t q = 0; q < out; q++) dxp[(size_t)ap[q] * block + q % block] += dyp[q];
    }
}
