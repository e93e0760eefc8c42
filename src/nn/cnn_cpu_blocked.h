/* What the cpu backend's blocked batch-norm kernels share
 * (cnn_cpu_blocked.c: forward, backward, recomputing an output;
 * cnn_cpu_bn_sums.c: the per-sample sums they take, also for the residual
 * add's backward): the layout, the walk over a (sample, block)'s rows, and
 * the ReLU mask made again from a batch norm's input. */
#ifndef MIXREG_NN_CNN_CPU_BLOCKED_H
#define MIXREG_NN_CNN_CPU_BLOCKED_H

#include <stddef.h>

#include "nn/cnn_cpu.h"

/* ---- blocked kernels --------------------------------------------------------
 * Element (s, c, p) of a tensor of C channels (a multiple of the block B, 8
 * or 16) and hw per sample at ((s * C/B + c/B) * hw + p) * B + c % B
 * (nChw<B>c), or at (s * hw + p) * C + c (NHWC, the layout's CNN_NHWC flag):
 * either way a pixel's B channels of a block are one vector (AVX2: 8 floats,
 * AVX-512: 16), its rows cnn_row_stride floats apart. The kernels walk a
 * (sample, block)'s rows in runs (row_walk): in nChw<B>c one run of all hw
 * rows; in NHWC runs over a tile of pixels (NHWC_TILE_FLOATS), every block
 * of the tile in turn. Walking an NHWC block's rows down the whole plane
 * left the prefetchers behind where rows are kilobytes apart (resnet50's
 * bf16 training step: 14.1 img/s in nChw16c, 13.0 in NHWC), and one row a
 * run paid the sums' loads and stores per row (resnet20's: 1,223-1,265
 * img/s against 1,484-1,531 down the plane). Tiles of 512, 1,024 and 4,096
 * floats, two rounds: resnet50 16.1/16.7, 15.5/16.2, 15.4/15.4 img/s,
 * resnet20 1,432/1,488, 1,452/1,486, 1,388/1,455. Each
 * kernel's parallel loop runs one (sample, block) at a time through a
 * per-block function called with B a constant (8 or 16), so the lanes'
 * loops are unrolled and vectorised for either. Batch norm's sums are taken
 * per sample and block (split across threads by sample), kept in `partial`
 * ([n][2][C] doubles, then 3 C more), and added over the samples in order on
 * one thread: the same bits for any thread count. */
#define MAX_BLOCK 16

/* Whether the fused ReLU zeroed this output, from the batch norm's input x
 * and the forward's constants rk (mean, scale, shift per channel) with the
 * forward's own arithmetic (blocked_affine): its output was <= 0. */
static inline int relu_zeroed(float x, float mean, float scale, float shift)
{
    return (x - mean) * scale + shift <= 0.0f;
}

/* A (sample, block)'s rows as `runs` runs of `rows` rows (the last one
 * what is left): see above. */
#define NHWC_TILE_FLOATS 512
typedef struct {
    size_t runs, rows, hw;
} row_walk;

static inline row_walk walk_of(size_t layout, size_t channels, size_t hw)
{
    if (!(layout & CNN_NHWC) || !hw) return (row_walk){1, hw, hw};
    size_t rows = NHWC_TILE_FLOATS / channels;
    rows = rows < 1 ? 1 : rows > hw ? hw : rows;
    return (row_walk){(hw + rows - 1) / rows, rows, hw};
}

/* Where run r of channel block cb of sample s starts (nChw<B>c has run 0
 * alone), and its rows. */
static inline size_t run_at(size_t layout, size_t channels, row_walk w, size_t s, size_t r, size_t cb)
{
    return cnn_block_at(layout, channels, w.hw, s, cb) + r * w.rows * cnn_row_stride(layout, channels);
}
static inline size_t run_rows(row_walk w, size_t r) { return r + 1 < w.runs ? w.rows : w.hw - r * w.rows; }


/* Per-sample sums of a and a^2 (b NULL), or of g and g b with g = a masked by
 * mask > 0 (mask NULL: unmasked, or by relu_zeroed from b and rk when rk is
 * not NULL), into partial[s][0][c], partial[s][1][c] (cnn_cpu_bn_sums.c). a
 * and b are bfloat16 where the layout says so (a: x, CNN_X_BF16, without b;
 * dy, CNN_DY_BF16, with it; b: x). */
void cnn_cpu_blocked_sums(size_t n, size_t channels, size_t hw, size_t layout, const void *a, const float *mask,
                          const float *rk, const void *b, double *partial);

#endif
