/* Direct convolution for a network's first layers on NCHW tensors, where
 * oneDNN's kernels pad the few input channels to its block of 8 and reorder
 * around it (conv_narrow.c says by how much that cost): stride 1, at most
 * MX_CONV_NARROW_MAX_IN input channels, kernels up to
 * MX_CONV_NARROW_MAX_KERNEL, AVX2 builds. The forward and the weights' (and
 * bias's) gradient; the input gradient, which a first layer never forms in
 * training, stays with oneDNN. */
#ifndef MIXREG_NN_CONV_NARROW_H
#define MIXREG_NN_CONV_NARROW_H

#include "mixreg/layers.h"

#define MX_CONV_NARROW_MAX_IN 4
#define MX_CONV_NARROW_MAX_BLOCKED_IN 8
#define MX_CONV_NARROW_MAX_KERNEL 7

/* 1 when this build has the kernels (AVX2 and FMA), else 0. */
int mx_conv_narrow_available(void);
/* Whether they take convolution d (set up: mx_conv2d_setup). */
int mx_conv_narrow_suits(const mx_conv2d_desc *d);
/* Floats of scratch for `threads` OpenMP threads (each its padded input
 * planes and sums), the caller's to give to both calls. */
size_t mx_conv_narrow_scratch_floats(const mx_conv2d_desc *d, int threads);

/* y = conv(x, w) + bias (bias may be NULL), then max(y, 0) when relu, n
 * samples, NCHW. scratch for at least omp_get_max_threads() threads. */
mx_status mx_conv_narrow_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *w, const float *bias,
                                 int relu, float *y, float *scratch);
/* dw (overwritten) and db (NULL: none) from x and dy. */
mx_status mx_conv_narrow_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy,
                                          float *dw, float *db, float *scratch);

/* The forward into an nChw<block>c output, block 8 or 16 (the input
 * NCHW): a vector is 8 output channels at one pixel, so rows too short for
 * whole vectors (lenet5's second layer, 10 wide) lose no lanes. Stride 1, at
 * most MX_CONV_NARROW_MAX_BLOCKED_IN input channels, output channels a
 * multiple of the block, kernels up to MX_CONV_NARROW_MAX_KERNEL; y =
 * relu?(conv(x, w) + bias); scratch of mx_conv_narrow_blocked_scratch_floats
 * for at least omp_get_max_threads() threads. */
int mx_conv_narrow_blocked_suits(const mx_conv2d_desc *d, size_t block);
size_t mx_conv_narrow_blocked_scratch_floats(const mx_conv2d_desc *d, int threads);
mx_status mx_conv_narrow_forward_blocked(const mx_conv2d_desc *d, size_t block, size_t n, const float *x,
                                         const float *w, const float *bias, int relu, float *y, float *scratch);
/* Its weights' gradient dw (overwritten) and the bias's db (NULL: none)
 * from x (NCHW) and dy (nChw<block>c): per tap row, the output gradient's
 * vectors against the input under each tap, broadcast; the threads' sums
 * added in thread order (the result depends on the thread count, not on
 * the run). */
mx_status mx_conv_narrow_backward_weights_blocked(const mx_conv2d_desc *d, size_t block, size_t n, const float *x,
                                                  const float *dy, float *dw, float *db, float *scratch);

#endif
