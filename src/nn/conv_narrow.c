/* Direct convolution of a network's first layer on NCHW (conv_narrow.h):
 * few input channels, stride 1.
 *
 * oneDNN blocks channels by 8, so lenet5's 1 -> 6 channel 5x5 layer went
 * through a reorder of its 1-channel input into 8 padded channels, its
 * output through two more, and its weights' gradient ran at 12 GFLOP/s:
 * 3.7 of a 7.7 ms training step at batch 128 (ONEDNN_VERBOSE, 2 threads).
 * Here each output row is vectors of 8 columns (16 in the AVX-512 forward,
 * forward_row16): a padded copy of the
 * sample's input planes (zeros around, so no tap tests an edge), then
 *   forward: per output row and pair of output channels, every tap's
 *     weight broadcast against the shifted input row, 2 x 4 accumulators;
 *   weights' gradient: per sample, output channel, input channel and tap
 *     row, the output gradient's row against the tap row's shifted input
 *     rows, one accumulator per tap column, 8 lanes summed at the end.
 * Threaded over samples; the weights' gradient's per-thread sums are added in
 * thread order (the result depends on the thread count, not on the run). */
#include "nn/conv_narrow.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/error.h"

/* Output columns per vector, and vectors per accumulator row (32 columns:
 * one 28- or 32-wide row of the usual first layers in one pass). */
#define LANES 8
#define ROW_VECS 4
/* The AVX-512 forward's vectors are 16 columns (forward_row16): the padded
 * rows cover whole vectors of either. */
#if defined(__AVX512F__)
#define PAD_LANES 16
#else
#define PAD_LANES LANES
#endif

int mx_conv_narrow_suits(const mx_conv2d_desc *d)
{
    return mx_conv_narrow_available() && d->stride_h == 1 && d->stride_w == 1 && d->in_channels >= 1 &&
           d->in_channels <= MX_CONV_NARROW_MAX_IN && d->out_channels >= 1 && d->out_channels <= 64 &&
           d->kernel_h <= MX_CONV_NARROW_MAX_KERNEL && d->kernel_w <= MX_CONV_NARROW_MAX_KERNEL &&
           d->out_w >= 1 && d->out_h >= 1 && d->in_w + 2 * d->pad_w <= 1024;
}

int mx_conv_narrow_blocked_suits(const mx_conv2d_desc *d, size_t block)
{
    return mx_conv_narrow_available() && (block == 8 || block == 16) && d->stride_h == 1 && d->stride_w == 1 &&
           d->in_channels >= 1 && d->in_channels <= MX_CONV_NARROW_MAX_BLOCKED_IN && d->out_channels % block == 0 &&
           d->out_channels >= 8 &&
           d->kernel_h <= MX_CONV_NARROW_MAX_KERNEL && d->kernel_w <= MX_CONV_NARROW_MAX_KERNEL &&
           d->out_w >= 1 && d->out_h >= 1 && d->in_w + 2 * d->pad_w <= 1024;
}

/* The padded plane's row: the input's with pad columns of zeros on the left
 * and, on the right, enough that a whole vector read at any output column
 * chunk and tap stays inside. */
static size_t padded_width(const mx_conv2d_desc *d)
{
    const size_t chunks = (d->out_w + PAD_LANES - 1) / PAD_LANES;
    return chunks * PAD_LANES + d->kernel_w - 1;
}

static size_t padded_rows(const mx_conv2d_desc *d) { return d->in_h + 2 * d->pad_h; }

/* Sample s's input planes into pad (zeros outside the image). */
static void pad_sample(const mx_conv2d_desc *d, const float *x, float *pad)
{
    const size_t pw = padded_width(d), ph = padded_rows(d), H = d->in_h, W = d->in_w;
    const size_t copy = W < pw - d->pad_w ? W : pw - d->pad_w;
    memset(pad, 0, d->in_channels * ph * pw * sizeof(float));
    for (size_t c = 0; c < d->in_channels; c++)
        for (size_t r = 0; r < H; r++)
            memcpy(pad + (c * ph + r + d->pad_h) * pw + d->pad_w, x + (c * H + r) * W, copy * sizeof(float));
}

size_t mx_conv_narrow_scratch_floats(const mx_conv2d_desc *d, int threads)
{
    const size_t pad = d->in_channels * padded_rows(d) * padded_width(d);
    const size_t sums = d->out_channels * d->in_channels * d->kernel_h * d->kernel_w * LANES + d->out_channels * LANES;
    return (size_t)threads * ((pad + sums + 15) / 16 * 16);
}

/* Per thread: its padded input, then (weights' gradient) its sums, in
 * double, in the forward's weight order [c][i][j][k] and the bias's [k]. After every
 * thread's: the weights as the forward reads them, [c][i][j][k] (the output
 * channels innermost, one vector per block of 8). */
static size_t blocked_pad_floats(const mx_conv2d_desc *d)
{
    return (d->in_channels * padded_rows(d) * padded_width(d) + 15) / 16 * 16;
}

static size_t blocked_thread_floats(const mx_conv2d_desc *d)
{
    const size_t sums = d->out_channels * (d->in_channels * d->kernel_h * d->kernel_w + 1);
    return blocked_pad_floats(d) + (2 * sums + 15) / 16 * 16;
}

size_t mx_conv_narrow_blocked_scratch_floats(const mx_conv2d_desc *d, int threads)
{
    return (size_t)threads * blocked_thread_floats(d) +
           d->out_channels * d->in_channels * d->kernel_h * d->kernel_w;
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

int mx_conv_narrow_available(void) { return 1; }

/* Lane l of the mask is on when column x0 + l is an output column. */
static __m256i column_mask(size_t x0, size_t width)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const long left = (long)width - (long)x0;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left > 8 ? 8 : (int)left), lane);
}

/* The first `left` (>= 1) of v's 8 columns to y: a plain store for a whole
 * vector, the row's last columns through a copy (a masked store, vmaskmovps,
 * is microcoded on AMD's cores: it took a sixth of the forward). */
static inline void store_columns(float *y, size_t left, __m256 v)
{
    if (left >= LANES) {
        _mm256_storeu_ps(y, v);
        return;
    }
    float lanes[LANES];
    _mm256_storeu_ps(lanes, v);
    memcpy(y, lanes, left * sizeof(float));
}

/* The columns [x0, x0 + 8) of a row of `width`: a plain load for a whole
 * vector, zeros past the row's end. */
static inline __m256 load_columns(const float *row, size_t x0, size_t width)
{
    return x0 + LANES <= width ? _mm256_loadu_ps(row + x0) : _mm256_maskload_ps(row + x0, column_mask(x0, width));
}

/* max(v, 0) with NaN passing through, as the other ReLUs (a -0 becomes +0). */
static inline __m256 relu8(__m256 v)
{
    const __m256 keep =
        _mm256_or_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    return _mm256_blendv_ps(_mm256_setzero_ps(), v, keep);
}

/* One output row oy of output channels k0 and k1 (k1 may equal k0, then its
 * results are dropped), columns [x0, x0 + 8 nv); nv a constant after
 * inlining, so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void forward_row(const mx_conv2d_desc *d, const float *pad, const float *w,
                                                              const float *bias, int relu, size_t k0, size_t k1,
                                                              size_t oy, size_t x0, int nv, float *y0, float *y1)
{
    const size_t C = d->in_channels, KH = d->kernel_h, KW = d->kernel_w, pw = padded_width(d), ph = padded_rows(d);
    __m256 a0[ROW_VECS], a1[ROW_VECS];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        a0[v] = _mm256_set1_ps(bias ? bias[k0] : 0.0f);
        a1[v] = _mm256_set1_ps(bias ? bias[k1] : 0.0f);
    }
    for (size_t c = 0; c < C; c++)
        for (size_t i = 0; i < KH; i++) {
            const float *row = pad + (c * ph + oy + i) * pw + x0;
            const float *w0 = w + ((k0 * C + c) * KH + i) * KW, *w1 = w + ((k1 * C + c) * KH + i) * KW;
            for (size_t j = 0; j < KW; j++) {
                const __m256 b0 = _mm256_set1_ps(w0[j]), b1 = _mm256_set1_ps(w1[j]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++) {
                    const __m256 in = _mm256_loadu_ps(row + (size_t)v * LANES + j);
                    a0[v] = _mm256_fmadd_ps(b0, in, a0[v]);
                    a1[v] = _mm256_fmadd_ps(b1, in, a1[v]);
                }
            }
        }
    const size_t OW = d->out_w;
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        const size_t at = x0 + (size_t)v * LANES;
        if (relu) a0[v] = relu8(a0[v]), a1[v] = relu8(a1[v]);
        store_columns(y0 + at, OW - at, a0[v]);
        if (k1 != k0) store_columns(y1 + at, OW - at, a1[v]);
    }
}

#if defined(__AVX512F__)
/* max(v, 0) with NaN passing through, as relu8. */
static inline __m512 relu16(__m512 v)
{
    const __mmask16 keep = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_maskz_mov_ps(keep, v);
}

/* forward_row on AVX-512: output channels k[0..3] (repeats' results
 * dropped: the first nk are distinct) by nv (1 or 2) vectors of 16 columns
 * from x0, 4 x 2 accumulators, each output summed in forward_row's order
 * (the same arithmetic). BENCHMARKS.md has lenet5 with it. */
static inline __attribute__((always_inline)) void forward_row16(const mx_conv2d_desc *d, const float *pad,
                                                                const float *w, const float *bias, int relu,
                                                                const size_t k[4], int nk, size_t oy, size_t x0,
                                                                int nv, float *const y[4])
{
    const size_t C = d->in_channels, KH = d->kernel_h, KW = d->kernel_w, pw = padded_width(d), ph = padded_rows(d);
    __m512 a[4][2];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) a[q][v] = _mm512_set1_ps(bias ? bias[k[q]] : 0.0f);
    for (size_t c = 0; c < C; c++)
        for (size_t i = 0; i < KH; i++) {
            const float *row = pad + (c * ph + oy + i) * pw + x0;
            const float *wq[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) wq[q] = w + ((k[q] * C + c) * KH + i) * KW;
            for (size_t j = 0; j < KW; j++) {
                __m512 in[2];
#pragma GCC unroll 2
                for (int v = 0; v < nv; v++) in[v] = _mm512_loadu_ps(row + (size_t)v * 16 + j);
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) {
                    const __m512 b = _mm512_set1_ps(wq[q][j]);
#pragma GCC unroll 2
                    for (int v = 0; v < nv; v++) a[q][v] = _mm512_fmadd_ps(b, in[v], a[q][v]);
                }
            }
        }
    const size_t OW = d->out_w;
#pragma GCC unroll 2
    for (int v = 0; v < nv; v++) {
        const size_t at = x0 + (size_t)v * 16, left = OW - at;
        const __mmask16 cols = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
        for (int q = 0; q < nk; q++) _mm512_mask_storeu_ps(y[q] + at, cols, relu ? relu16(a[q][v]) : a[q][v]);
    }
}

static void forward16(const mx_conv2d_desc *d, size_t n, const float *x, const float *w, const float *bias, int relu,
                      float *y, float *scratch)
{
    const size_t C = d->in_channels, K = d->out_channels, OH = d->out_h, OW = d->out_w;
    const size_t in = C * d->in_h * d->in_w, out = OH * OW, per = mx_conv_narrow_scratch_floats(d, 1);
    const size_t chunks = (OW + 15) / 16;
#pragma omp parallel for schedule(static)
    for (long s = 0; s < (long)n; s++) {
        float *pad = scratch + (size_t)omp_get_thread_num() * per;
        pad_sample(d, x + (size_t)s * in, pad);
        float *ys = y + (size_t)s * K * out;
        for (size_t k0 = 0; k0 < K; k0 += 4) {
            const int nk = (int)(K - k0 < 4 ? K - k0 : 4);
            const size_t k[4] = {k0, k0 + (nk > 1), k0 + 2 * (nk > 2), k0 + 3 * (nk > 3)};
            for (size_t oy = 0; oy < OH; oy++) {
                float *const yq[4] = {ys + (k[0] * OH + oy) * OW, ys + (k[1] * OH + oy) * OW,
                                      ys + (k[2] * OH + oy) * OW, ys + (k[3] * OH + oy) * OW};
                for (size_t c0 = 0; c0 < chunks; c0 += 2) {
                    if (chunks - c0 >= 2) forward_row16(d, pad, w, bias, relu, k, nk, oy, c0 * 16, 2, yq);
                    else forward_row16(d, pad, w, bias, relu, k, nk, oy, c0 * 16, 1, yq);
                }
            }
        }
    }
}
#endif

mx_status mx_conv_narrow_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *w, const float *bias,
                                 int relu, float *y, float *scratch)
{
#if defined(__AVX512F__)
    forward16(d, n, x, w, bias, relu, y, scratch);
#else
    const size_t C = d->in_channels, K = d->out_channels, OH = d->out_h, OW = d->out_w;
    const size_t in = C * d->in_h * d->in_w, out = OH * OW, per = mx_conv_narrow_scratch_floats(d, 1);
    const size_t chunks = (OW + LANES - 1) / LANES;
#pragma omp parallel for schedule(static)
    for (long s = 0; s < (long)n; s++) {
        float *pad = scratch + (size_t)omp_get_thread_num() * per;
        pad_sample(d, x + (size_t)s * in, pad);
        float *ys = y + (size_t)s * K * out;
        for (size_t k = 0; k < K; k += 2) {
            const size_t k1 = k + 1 < K ? k + 1 : k;
            for (size_t oy = 0; oy < OH; oy++)
                for (size_t c0 = 0; c0 < chunks; c0 += ROW_VECS) {
                    const int nv = (int)(chunks - c0 < ROW_VECS ? chunks - c0 : ROW_VECS);
                    float *y0 = ys + (k * OH + oy) * OW, *y1 = ys + (k1 * OH + oy) * OW;
                    switch (nv) {
                    case 1: forward_row(d, pad, w, bias, relu, k, k1, oy, c0 * LANES, 1, y0, y1); break;
                    case 2: forward_row(d, pad, w, bias, relu, k, k1, oy, c0 * LANES, 2, y0, y1); break;
                    case 3: forward_row(d, pad, w, bias, relu, k, k1, oy, c0 * LANES, 3, y0, y1); break;
                    default: forward_row(d, pad, w, bias, relu, k, k1, oy, c0 * LANES, 4, y0, y1); break;
                    }
                }
        }
    }
#endif
    return MX_OK;
}

/* For sample s's output channel k, input channel c and tap row i: sum[j]
 * (8 lanes each) += over the output, dy times the input at tap (i, j); KW
 * a constant after inlining (weights_row), so the accumulators stay in
 * registers. */
static inline __attribute__((always_inline)) void weights_taps(const mx_conv2d_desc *d, size_t KW, const float *pad,
                                                                const float *dyk, size_t c, size_t i, float *sum)
{
    const size_t OH = d->out_h, OW = d->out_w, pw = padded_width(d), ph = padded_rows(d);
    __m256 acc[MX_CONV_NARROW_MAX_KERNEL];
#pragma GCC unroll 7
    for (size_t j = 0; j < KW; j++) acc[j] = _mm256_setzero_ps();
    for (size_t oy = 0; oy < OH; oy++) {
        const float *row = pad + (c * ph + oy + i) * pw, *g = dyk + oy * OW;
        for (size_t x0 = 0; x0 < OW; x0 += LANES) {
            const __m256 dv = load_columns(g, x0, OW);
#pragma GCC unroll 7
            for (size_t j = 0; j < KW; j++) acc[j] = _mm256_fmadd_ps(dv, _mm256_loadu_ps(row + x0 + j), acc[j]);
        }
    }
#pragma GCC unroll 7
    for (size_t j = 0; j < KW; j++) _mm256_storeu_ps(sum + j * LANES, _mm256_add_ps(_mm256_loadu_ps(sum + j * LANES), acc[j]));
}

static void weights_row(const mx_conv2d_desc *d, const float *pad, const float *dyk, size_t c, size_t i, float *sum)
{
    switch (d->kernel_w) {
#define TAPS_CASE(KW)                                                                                                  \
    case KW: weights_taps(d, KW, pad, dyk, c, i, sum); break;
        TAPS_CASE(1) TAPS_CASE(2) TAPS_CASE(3) TAPS_CASE(4) TAPS_CASE(5) TAPS_CASE(6)
#undef TAPS_CASE
    default: weights_taps(d, MX_CONV_NARROW_MAX_KERNEL, pad, dyk, c, i, sum); break;
    }
}

mx_status mx_conv_narrow_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy,
                                          float *dw, float *db, float *scratch)
{
    const size_t C = d->in_channels, K = d->out_channels, KH = d->kernel_h, KW = d->kernel_w, OH = d->out_h,
                 OW = d->out_w;
    const size_t in = C * d->in_h * d->in_w, out = OH * OW, per = mx_conv_narrow_scratch_floats(d, 1);
    const size_t pad_floats = C * padded_rows(d) * padded_width(d), taps = K * C * KH * KW;
    int used = 1;
#pragma omp parallel
    {
        const int th = omp_get_thread_num(), nth = omp_get_num_threads();
#pragma omp single
        used = nth;
        float *pad = scratch + (size_t)th * per, *sum = pad + pad_floats, *bsum = sum + taps * LANES;
        memset(sum, 0, (taps + K) * LANES * sizeof(float));
        const size_t begin = n * (size_t)th / (size_t)nth, end = n * (size_t)(th + 1) / (size_t)nth;
        for (size_t s = begin; s < end; s++) {
            pad_sample(d, x + s * in, pad);
            for (size_t k = 0; k < K; k++) {
                const float *dyk = dy + (s * K + k) * out;
                for (size_t c = 0; c < C; c++)
                    for (size_t i = 0; i < KH; i++) weights_row(d, pad, dyk, c, i, sum + ((k * C + c) * KH + i) * KW * LANES);
                if (db) {
                    __m256 b = _mm256_loadu_ps(bsum + k * LANES);
                    for (size_t p = 0; p < out; p += LANES) b = _mm256_add_ps(b, load_columns(dyk, p, out));
                    _mm256_storeu_ps(bsum + k * LANES, b);
                }
            }
        }
    }
    /* Each thread's 8 lanes, then the threads in order. */
    for (size_t t = 0; t < taps + (db ? K : 0); t++) {
        double total = 0;
        for (int th = 0; th < used; th++) {
            const float *lanes = scratch + (size_t)th * per + pad_floats + t * LANES;
            float part = 0;
            for (int l = 0; l < LANES; l++) part += lanes[l];
            total += part;
        }
        if (t < taps) dw[t] = (float)total;
        else db[t - taps] = (float)total;
    }
    return MX_OK;
}

/* ---- the forward into nChw8c ----------------------------------------------------
 * lenet5's second layer (6 -> 16 channels, 5x5, 14x14): its output rows are
 * 10 wide, so vectors along a row leave lanes idle, and oneDNN reached 97
 * GFLOP/s of a 190 SGEMM peak. Here a vector is 8 output channels at one
 * pixel (the output's own nChw8c block): per tap, one weight vector per
 * block against P broadcast input pixels of the padded row, 2 blocks x P
 * pixels accumulators (P <= 6: 12 of the 16 registers). */

/* Where 8-channel group kb of one sample's output (or output gradient) of
 * `plane` pixels starts in nChw<block>c, block 8 or 16 (its pixels then
 * `block` floats apart): in nChw16c two groups share a block, side by side. */
static inline size_t group_at(size_t kb, size_t block, size_t plane)
{
    return kb / (block / 8) * plane * block + kb % (block / 8) * 8;
}

/* Output pixels [x0, x0 + P) of row oy, groups kb0 and (two) kb0 + 1 of 8
 * channels, of one sample (pad: its padded input; ys: its output, in
 * nChw<block>c). P and two constants after inlining. */
static inline __attribute__((always_inline)) void blocked_pixels(const mx_conv2d_desc *d, const float *pad,
                                                                 const float *wt, const float *bias, int relu,
                                                                 size_t kb0, int two, size_t oy, size_t x0, int P,
                                                                 size_t block, float *ys)
{
    const size_t C = d->in_channels, KH = d->kernel_h, KW = d->kernel_w, K = d->out_channels;
    const size_t pw = padded_width(d), ph = padded_rows(d), OH = d->out_h, OW = d->out_w;
    __m256 a0[6], a1[6];
    const __m256 b0 = bias ? _mm256_loadu_ps(bias + kb0 * 8) : _mm256_setzero_ps();
    const __m256 b1 = bias && two ? _mm256_loadu_ps(bias + kb0 * 8 + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int p = 0; p < P; p++) a0[p] = b0, a1[p] = b1;
    for (size_t c = 0; c < C; c++)
        for (size_t i = 0; i < KH; i++) {
            const float *row = pad + (c * ph + oy + i) * pw + x0;
            const float *wr = wt + (c * KH + i) * KW * K + kb0 * 8;
            for (size_t j = 0; j < KW; j++) {
                const __m256 w0 = _mm256_loadu_ps(wr + j * K), w1 = two ? _mm256_loadu_ps(wr + j * K + 8) : w0;
#pragma GCC unroll 6
                for (int p = 0; p < P; p++) {
                    const __m256 xv = _mm256_broadcast_ss(row + p + j);
                    a0[p] = _mm256_fmadd_ps(w0, xv, a0[p]);
                    if (two) a1[p] = _mm256_fmadd_ps(w1, xv, a1[p]);
                }
            }
        }
#pragma GCC unroll 6
    for (int p = 0; p < P; p++) {
        const size_t q = (oy * OW + x0 + (size_t)p) * block;
        _mm256_storeu_ps(ys + group_at(kb0, block, OH * OW) + q, relu ? relu8(a0[p]) : a0[p]);
        if (two) _mm256_storeu_ps(ys + group_at(kb0 + 1, block, OH * OW) + q, relu ? relu8(a1[p]) : a1[p]);
    }
}

/* A run of P pixels (1 to 6) of blocks kb0 (and two: kb0 + 1). */
static void blocked_run(const mx_conv2d_desc *d, const float *pad, const float *wt, const float *bias, int relu,
                        size_t kb0, int two, size_t oy, size_t x0, int P, size_t block, float *ys)
{
#define RUN_CASE(N)                                                                                                        case N:                                                                                                                    if (two) blocked_pixels(d, pad, wt, bias, relu, kb0, 1, oy, x0, N, block, ys);                                                else blocked_pixels(d, pad, wt, bias, relu, kb0, 0, oy, x0, N, block, ys);                                                    break;
    switch (P) {
        RUN_CASE(1) RUN_CASE(2) RUN_CASE(3) RUN_CASE(4) RUN_CASE(5) default: RUN_CASE(6)
    }
#undef RUN_CASE
}

mx_status mx_conv_narrow_forward_blocked(const mx_conv2d_desc *d, size_t block, size_t n, const float *x,
                                         const float *w, const float *bias, int relu, float *y, float *scratch)
{
    const size_t C = d->in_channels, K = d->out_channels, KH = d->kernel_h, KW = d->kernel_w;
    const size_t OH = d->out_h, OW = d->out_w, KB = K / 8, in = C * d->in_h * d->in_w, out = K * OH * OW;
    const size_t per = blocked_thread_floats(d);
    float *wt = scratch + (size_t)omp_get_max_threads() * per;
    for (size_t k = 0; k < K; k++)
        for (size_t t = 0; t < C * KH * KW; t++) wt[t * K + k] = w[k * C * KH * KW + t];
    /* Runs of near-equal length, at most 6 pixels: a 10-wide row is 5 + 5. */
    const size_t runs = (OW + 5) / 6;
#pragma omp parallel for schedule(static)
    for (long s = 0; s < (long)n; s++) {
        float *pad = scratch + (size_t)omp_get_thread_num() * per;
        pad_sample(d, x + (size_t)s * in, pad);
        float *ys = y + (size_t)s * out;
        for (size_t kb = 0; kb < KB; kb += 2)
            for (size_t oy = 0; oy < OH; oy++)
                for (size_t r = 0, x0 = 0; r < runs; r++) {
                    const size_t len = OW / runs + (r < OW % runs);
                    blocked_run(d, pad, wt, bias, relu, kb, kb + 1 < KB, oy, x0, (int)len, block, ys);
                    x0 += len;
                }
    }
    return MX_OK;
}

/* v's 8 lanes added to s[0..7]. */
static inline void add_to_doubles(double *s, __m256 v)
{
    _mm256_storeu_pd(s, _mm256_add_pd(_mm256_loadu_pd(s), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    _mm256_storeu_pd(s + 4, _mm256_add_pd(_mm256_loadu_pd(s + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

/* For tap row i of input channel c, blocks kb0 and (two) kb0 + 1, over one
 * sample: sum[j][k] += dy[k] at each output pixel times the padded input
 * under tap (i, j), the sample's part in float, the samples' in double (so
 * a batch split between processes sums to the same up to the last bit
 * nearly: the data-parallel runs agree with one process). KW and two
 * constants after inlining: 2 x 6 accumulators at most. */
static inline __attribute__((always_inline)) void blocked_weight_taps(const mx_conv2d_desc *d, size_t KW,
                                                                      const float *pad, const float *dys, size_t c,
                                                                      size_t i, size_t kb0, int two, size_t block,
                                                                      double *sum)
{
    const size_t OH = d->out_h, OW = d->out_w, pw = padded_width(d), ph = padded_rows(d), K = d->out_channels;
    __m256 a0[MX_CONV_NARROW_MAX_KERNEL], a1[MX_CONV_NARROW_MAX_KERNEL];
#pragma GCC unroll 7
    for (size_t j = 0; j < KW; j++) a0[j] = a1[j] = _mm256_setzero_ps();
    const float *g0 = dys + group_at(kb0, block, OH * OW), *g1 = dys + group_at(kb0 + 1, block, OH * OW);
    for (size_t oy = 0; oy < OH; oy++) {
        const float *row = pad + (c * ph + oy + i) * pw;
        for (size_t ox = 0; ox < OW; ox++) {
            const size_t q = (oy * OW + ox) * block;
            const __m256 d0 = _mm256_loadu_ps(g0 + q), d1 = two ? _mm256_loadu_ps(g1 + q) : d0;
#pragma GCC unroll 7
            for (size_t j = 0; j < KW; j++) {
                const __m256 xv = _mm256_broadcast_ss(row + ox + j);
                a0[j] = _mm256_fmadd_ps(d0, xv, a0[j]);
                if (two) a1[j] = _mm256_fmadd_ps(d1, xv, a1[j]);
            }
        }
    }
    double *s = sum + ((c * d->kernel_h + i) * d->kernel_w) * K + kb0 * 8;
#pragma GCC unroll 7
    for (size_t j = 0; j < KW; j++) {
        add_to_doubles(s + j * K, a0[j]);
        if (two) add_to_doubles(s + j * K + 8, a1[j]);
    }
}

static void blocked_weight_row(const mx_conv2d_desc *d, const float *pad, const float *dys, size_t c, size_t i,
                               size_t kb0, int two, size_t block, double *sum)
{
    switch (d->kernel_w * 2 + (two ? 1 : 0)) {
#define TAPS_CASE(KW)                                                                                                      case 2 * KW: blocked_weight_taps(d, KW, pad, dys, c, i, kb0, 0, block, sum); break;                                          case 2 * KW + 1: blocked_weight_taps(d, KW, pad, dys, c, i, kb0, 1, block, sum); break;
        TAPS_CASE(1) TAPS_CASE(2) TAPS_CASE(3) TAPS_CASE(4) TAPS_CASE(5) TAPS_CASE(6)
#undef TAPS_CASE
    default: blocked_weight_taps(d, MX_CONV_NARROW_MAX_KERNEL, pad, dys, c, i, kb0, 0, block, sum); break;
    }
}

mx_status mx_conv_narrow_backward_weights_blocked(const mx_conv2d_desc *d, size_t block, size_t n, const float *x,
                                                  const float *dy, float *dw, float *db, float *scratch)
{
    const size_t C = d->in_channels, K = d->out_channels, KB = K / 8, KH = d->kernel_h, KW = d->kernel_w;
    const size_t hw = d->out_h * d->out_w, in = C * d->in_h * d->in_w, taps = C * KH * KW;
    const size_t per = blocked_thread_floats(d), pad_floats = blocked_pad_floats(d);
    /* Two blocks at a time, but for 7-wide kernels (2 x 7 accumulators would spill). */
    const size_t step = KW < MX_CONV_NARROW_MAX_KERNEL ? 2 : 1;
    int used = 1;
#pragma omp parallel
    {
        const int th = omp_get_thread_num(), nth = omp_get_num_threads();
#pragma omp single
        used = nth;
        float *pad = scratch + (size_t)th * per;
        double *sum = (double *)(void *)(pad + pad_floats), *bsum = sum + taps * K;
        memset(sum, 0, (taps + 1) * K * sizeof(double));
        const size_t begin = n * (size_t)th / (size_t)nth, end = n * (size_t)(th + 1) / (size_t)nth;
        for (size_t s = begin; s < end; s++) {
            pad_sample(d, x + s * in, pad);
            const float *dys = dy + s * K * hw;
            for (size_t c = 0; c < C; c++)
                for (size_t i = 0; i < KH; i++)
                    for (size_t kb = 0; kb < KB; kb += step)
                        blocked_weight_row(d, pad, dys, c, i, kb, kb + 1 < KB && step == 2, block, sum);
            for (size_t kb = 0; db && kb < KB; kb++) {
                __m256 b = _mm256_setzero_ps();
                for (size_t q = 0; q < hw; q++) b = _mm256_add_ps(b, _mm256_loadu_ps(dys + group_at(kb, block, hw) + q * block));
                add_to_doubles(bsum + kb * 8, b);
            }
        }
    }
    /* The threads' sums in thread order, into PyTorch's [k][c][i][j]. */
    for (size_t t = 0; t < taps + (db ? 1 : 0); t++)
        for (size_t k = 0; k < K; k++) {
            double total = 0;
            for (int th = 0; th < used; th++)
                total += ((const double *)(const void *)(scratch + (size_t)th * per + pad_floats))[t * K + k];
            if (t < taps) dw[k * taps + t] = (float)total;
            else db[k] = (float)total;
        }
    return MX_OK;
}

#else /* no AVX2: callers use oneDNN */

int mx_conv_narrow_available(void) { return 0; }

mx_status mx_conv_narrow_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *w, const float *bias,
                                 int relu, float *y, float *scratch)
{
    (void)d, (void)n, (void)x, (void)w, (void)bias, (void)relu, (void)y, (void)scratch, (void)pad_sample;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no AVX2 kernels for narrow convolutions");
}

mx_status mx_conv_narrow_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy,
                                          float *dw, float *db, float *scratch)
{
    (void)d, (void)n, (void)x, (void)dy, (void)dw, (void)db, (void)scratch;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no AVX2 kernels for narrow convolutions");
}

mx_status mx_conv_narrow_forward_blocked(const mx_conv2d_desc *d, size_t block, size_t n, const float *x,
                                         const float *w, const float *bias, int relu, float *y, float *scratch)
{
    (void)d, (void)block, (void)n, (void)x, (void)w, (void)bias, (void)relu, (void)y, (void)scratch;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no AVX2 kernels for narrow convolutions");
}

mx_status mx_conv_narrow_backward_weights_blocked(const mx_conv2d_desc *d, size_t block, size_t n, const float *x,
                                                  const float *dy, float *dw, float *db, float *scratch)
{
    (void)d, (void)block, (void)n, (void)x, (void)dy, (void)dw, (void)db, (void)scratch;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no AVX2 kernels for narrow convolutions");
}

#endif
