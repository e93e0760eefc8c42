/* Winograd F(2x2, 3x3) convolution, forward only, for nChw16c tensors: the
 * inference path's kernel for 3x3 stride-1 layers with few channels, where
 * oneDNN's direct kernels already run near the machine's peak and its own
 * Winograd (F(4x4, 3x3)) loses to them (winograd.c says by how much).
 *
 * Each 2x2 output tile costs 16 multiply-adds per input channel instead of
 * 36; the input and output transforms are additions. The weights are
 * transformed once per call of the caller's choosing (mx_wino_transform_weights),
 * so folded batch-norm weights can change between calls. */
#ifndef MIXREG_NN_WINOGRAD_H
#define MIXREG_NN_WINOGRAD_H

#include "mixreg/layers.h"

/* 1 when this build has the kernels (compiled for AVX-512), else 0. */
int mx_wino_available(void);

/* Whether the kernels take convolution d: 3x3, stride 1, padding 1, in and
 * out channels multiples of 16, at most MX_WINO_MAX_CHANNELS in. */
#define MX_WINO_MAX_CHANNELS 256
int mx_wino_suits(const mx_conv2d_desc *d);

/* Floats of the transformed weights: 16 x in x out. */
size_t mx_wino_weight_floats(const mx_conv2d_desc *d);

/* u = the weights w [out, in, 3, 3] in the Winograd domain, laid out for
 * mx_wino_forward (64-byte aligned u runs fastest). */
void mx_wino_transform_weights(const mx_conv2d_desc *d, const float *w, float *u);

/* y = relu?(conv(x, w) + bias + addend), x, addend and y nChw16c; bias and
 * addend may be NULL. Threaded over samples and tile rows with OpenMP; each
 * output's arithmetic does not depend on the thread count. */
void mx_wino_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *bias,
                     const float *addend, int relu, float *y);

#endif
