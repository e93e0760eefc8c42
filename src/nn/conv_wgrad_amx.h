/* The weights' gradient of a bfloat16 3x3 (padding 1) or 1x1 (no padding)
 * convolution (stride 1 or 2, channels multiples of 16) on AMX, from x and
 * dy in bfloat16 NHWC:
 * what the training keeps for oneDNN's backward, whose AMX weight-gradient
 * kernel (oneDNN 2.6, and 3.13 in PyTorch 2.15 the same) takes four times
 * its forward's time on resnet20's 64-channel layers (conv_wgrad_amx.c says
 * by how much this one does better). */
#ifndef MIXREG_NN_CONV_WGRAD_AMX_H
#define MIXREG_NN_CONV_WGRAD_AMX_H

#include <stdint.h>

#include "mixreg/layers.h"

/* 1 when this build has the kernel and the CPU and the kernel (Linux's
 * permission for the tile data) let it run, else 0. */
int mx_wgrad_amx_available(void);
/* Whether it takes convolution d (set up: mx_conv2d_setup). */
int mx_wgrad_amx_suits(const mx_conv2d_desc *d);
/* Bytes of scratch (64-byte aligned) for a batch of n on `threads` OpenMP threads. */
size_t mx_wgrad_amx_scratch_bytes(const mx_conv2d_desc *d, size_t n, int threads);
/* dw [out, in, k, k] float32 (overwritten) from x [n, in_h, in_w, in] and
 * dy [n, out_h, out_w, out], bfloat16. The products are exact and summed in
 * float32: per thread over its share of the pixels, then the threads' sums
 * in thread order (the result depends on the thread count, not on the run).
 * scratch: mx_wgrad_amx_scratch_bytes for `threads`, the threads it runs on. */
mx_status mx_wgrad_amx(const mx_conv2d_desc *d, size_t n, const uint16_t *x, const uint16_t *dy, float *dw,
                       void *scratch, int threads);

#endif
