/* Winograd convolutions for blocked tensors (nChw16c with AVX-512, nChw8c
 * with AVX2: mx_wino_block), 3x3 stride 1 padding 1: the forward (which is
 * also the input gradient, mx_wino_transposed) and the weights' gradient.
 * Where each runs instead of oneDNN (cnn_cpu_choice.c
 * winograd_inference_suits and winograd_training_suits say by how much it
 * wins): the inference path's layers with few channels, and on AVX2, where
 * oneDNN has no Winograd kernels, the training passes too.
 *
 * F(4x4, 3x3) or F(2x2, 3x3) by the shape (mx_wino_tile). The weights are
 * transformed when the caller chooses (mx_wino_transform_weights), so folded
 * batch-norm weights can change between calls. */
#ifndef MIXREG_NN_WINOGRAD_H
#define MIXREG_NN_WINOGRAD_H

#include "mixreg/layers.h"

/* 1 when this build has the kernels (compiled for AVX-512 or AVX2 with
 * FMA), else 0. */
int mx_wino_available(void);
/* The channel block of the tensors they take: 16 (AVX-512), 8 (AVX2), 0
 * without the kernels. */
size_t mx_wino_block(void);

/* Whether the kernels take convolution d: 3x3, stride 1, padding 1, in and
 * out channels multiples of the block (16 where the build has no kernels),
 * at most MX_WINO_MAX_CHANNELS in. */
#define MX_WINO_MAX_CHANNELS 256
int mx_wino_suits(const mx_conv2d_desc *d);
/* Whether, of mixreg's two Winograd kernels, the per-tile one (this) beats
 * the batch-wide GEMM one (mx_wino_gemm_*) on d: at most
 * MX_WINO_TILES_BEST_CHANNELS in and out. On AVX2 (2-core EPYC,
 * bench/conv_bench, forward + backward ms, per-tile / GEMM, alternated):
 * 64@32 at batch 128 73.0 / 99.2-105.6, 128@16 67.1-67.4 / 73.3-74.1,
 * 256@8 98.5-103.8 / 61.7-63.2; at batch 32 128@28 51.7 / 58.2, 256@14
 * 107.5 / 64.2. AVX-512 keeps 64, as measured there before. */
#if defined(__AVX512F__)
#define MX_WINO_TILES_BEST_CHANNELS 64
#else
#define MX_WINO_TILES_BEST_CHANNELS 128
#endif
int mx_wino_tiles_best(const mx_conv2d_desc *d);

/* The output tile's side for d: of F(2x2, 3x3) (16 points a tile) and
 * F(4x4, 3x3) (36), the one whose tiles cover the output with fewer points,
 * a tie going to F2: F4 on 28x28, 20x20, 14x14, 8x8 and 7x7, F2 on 6x6 and
 * 5x5 (measured: 64@7 0.144 against 0.192 ms at batch 32, 64@6 0.143
 * against 0.113); then on AVX2 builds F(5x5, 3x3) (49 points) instead where
 * its tiles take at most four fifths of those points and each side has
 * two or more of them: 14x14 (9 x 49 points against 16 x 36), 13x13, 10x10,
 * 9x9, 30x30, not 20x20 (784 against 900) or 5x5 (winograd.c has the
 * measurements; AVX-512 builds, where F5 is unmeasured, keep F4 and F2). F4
 * does 2.25 multiply-adds per output and input channel against F2's 4 and
 * direct's 9, F5 1.96; F4's rounding error is about ten times F2's
 * (relative to the output's scale, ~5e-6 against ~4e-7 in
 * tests/test_winograd.c), as oneDNN's own F(4x4, 3x3), and F5's up to
 * twice F4's. */
int mx_wino_tile(const mx_conv2d_desc *d);

/* The largest tile mx_wino_tile may pick for the process (2, 4 or 5; any
 * other value restores the build's: 5 with AVX2, 4 otherwise): tests and
 * benchmarks compare the tile sizes on one shape. Set it before any plan
 * is made, since plans keep weights transformed for the tile they saw. */
void mx_wino_largest_tile_set(int tile);

/* Floats of the transformed weights: (tile + 2)^2 x in x out. */
size_t mx_wino_weight_floats(const mx_conv2d_desc *d);

/* u = the weights w [out, in, 3, 3] in the Winograd domain, laid out for
 * mx_wino_forward (64-byte aligned u runs fastest). */
void mx_wino_transform_weights(const mx_conv2d_desc *d, const float *w, float *u);

/* The input gradient of a convolution d the kernels suit (stride 1,
 * padding 1, so the planes keep their size) is itself such a convolution:
 * dx = conv(dy, w'), K channels in and C out, w' from input channel k to
 * output channel c being w's filter from c to k rotated by 180 degrees.
 * mx_wino_transposed is its descriptor (mx_wino_suits it when d's channels
 * are multiples of the block and K <= MX_WINO_MAX_CHANNELS), and
 * mx_wino_transform_weights_dx transforms w into its Winograd weights
 * (mx_wino_weight_floats of either descriptor: the same count), so
 * mx_wino_forward(&t, n, dy, u, NULL, NULL, 0, dx) gives dx. */
mx_conv2d_desc mx_wino_transposed(const mx_conv2d_desc *d);
void mx_wino_transform_weights_dx(const mx_conv2d_desc *d, const float *w, float *u);

/* The weights' gradient of a convolution d the kernels suit: dw [out, in,
 * 3, 3] (overwritten; NULL: none) from its input x and output gradient dy
 * (n samples, blocked by mx_wino_block), and db [out] (NULL: none), on at
 * most `threads` OpenMP threads with the caller's scratch of
 * mx_wino_dw_scratch_floats(d, threads) floats (64-byte aligned: each
 * thread's sum and tile buffers, made once rather than in every step).
 * Threaded over the tiles; each thread's share is summed apart and the
 * shares added in thread order, so the result depends on the thread count
 * (as oneDNN's), not on scheduling. MX_ERR_UNSUPPORTED in a build without
 * the kernels. */
size_t mx_wino_dw_scratch_floats(const mx_conv2d_desc *d, int threads);
mx_status mx_wino_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                   float *db, float *scratch, int threads);

/* Wide layers (winograd_gemm.c): the same convolutions over a whole batch,
 * tiles transformed a chunk at a time and each Winograd point's product a
 * GEMM (oneDNN's sgemm, the points shared among the threads): for layers of
 * hundreds of channels, where the per-tile kernels above stream the
 * transformed weights once per tile group. mx_wino_gemm_suits: as
 * mx_wino_suits without its channel limit (at most MX_WINO_GEMM_MAX_CHANNELS
 * in and out). */
#define MX_WINO_GEMM_MAX_CHANNELS 2048
int mx_wino_gemm_suits(const mx_conv2d_desc *d);
/* Whether a batch of n gives d's GEMMs enough rows to win: at least
 * MX_WINO_GEMM_MIN_TILES output tiles. On AVX2 (bench/conv_bench, 2
 * threads, forward + backward ms, these kernels / oneDNN's direct ones):
 * 512@4 at 8 tiles 24.7 / 19.2, at 16 25.5 / 32.3, at 32 31.6 / 56.5;
 * 512@7 at 16 tiles 26.5 / 23.3, at 32 32.9 / 41.5. (Before the weights'
 * transforms read and wrote in row order, 32 tiles of 512@4 had lost,
 * 62.1 / 51.4.) AVX-512 builds, not measured again here (no such CPU),
 * keep the threshold of before, 128. */
#if defined(__AVX512F__)
#define MX_WINO_GEMM_MIN_TILES 128
#else
#define MX_WINO_GEMM_MIN_TILES 32
#endif
int mx_wino_gemm_worth(const mx_conv2d_desc *d, size_t n);
/* Replaces MX_WINO_GEMM_MIN_TILES for the process (0: restores it): tests
 * lower it so that small networks run the GEMM kernels. */
void mx_wino_gemm_min_tiles_set(size_t tiles);
/* What the caller's scratch is for: a forward on weights transformed
 * beforehand (u), a forward transforming them itself a block at a time, the
 * weights' gradient. */
typedef enum { MX_WINO_GEMM_HELD_U, MX_WINO_GEMM_FROM_W, MX_WINO_GEMM_DW } mx_wino_gemm_use;
/* Floats of the caller's scratch for that use of d: the chunk's transformed
 * tiles, and a block's transformed weights (FROM_W) or their gradient's sum
 * in the Winograd domain (DW); independent of the batch. 64-byte aligned
 * scratch runs fastest. */
size_t mx_wino_gemm_scratch_floats(const mx_conv2d_desc *d, mx_wino_gemm_use use);
/* The output channels d's weights go by when transformed in the kernels (a
 * divisor of d's, all of them up to the weights of a 256 x 256 layer). */
size_t mx_wino_gemm_block_channels(const mx_conv2d_desc *d);
/* Replaces that limit, in floats of transformed weights, for the process
 * (0: restores it): tests lower it so that small layers go by blocks. */
void mx_wino_gemm_block_floats_set(size_t floats);
/* u (mx_wino_weight_floats of run) = the weights w of convolution run, or
 * with transposed those of the convolution whose mx_wino_transposed run is
 * (for its input gradient), laid out as [point][in][out] for the GEMM; the
 * block form transforms output channels [k0, k0 + kn) alone, laid out as
 * [point][in][kn]. */
void mx_wino_gemm_transform_weights(const mx_conv2d_desc *run, const float *w, int transposed, float *u);
void mx_wino_gemm_transform_block(const mx_conv2d_desc *run, const float *w, int transposed, size_t k0, size_t kn,
                                  float *u);
/* y = relu?(conv(x, w) + bias + addend) as mx_wino_forward, from u
 * (mx_wino_gemm_transform_weights) or, with u NULL, from the weights w (or
 * with transposed, as there) transformed block by block into the scratch
 * (MX_WINO_GEMM_FROM_W). MX_ERR_UNSUPPORTED without the kernels or when
 * oneDNN's sgemm fails. */
mx_status mx_wino_gemm_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *w,
                               int transposed, const float *bias, const float *addend, int relu, float *y,
                               float *scratch);
/* dw (overwritten) and db (NULL: none) as mx_wino_backward_weights. */
mx_status mx_wino_gemm_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                        float *db, float *scratch);

/* y = relu?(conv(x, w) + bias + addend), x, addend and y blocked by
 * mx_wino_block channels; bias and
 * addend may be NULL. Threaded over samples and tile rows with OpenMP; each
 * output's arithmetic does not depend on the thread count. */
void mx_wino_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *bias,
                     const float *addend, int relu, float *y);

#endif
