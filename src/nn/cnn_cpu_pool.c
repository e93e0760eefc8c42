/* Pooling on blocked tensors: global average pooling (cnn_cpu_gap_*_blocked,
 * at the end), and max pooling (cnn_cpu_maxpool_*_blocked),
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
#include "nn/cnn_cpu_simd.h"

/* The window's shape: d's, or constants the compiler unrolls (2x2). */
typedef struct {
    long kh, kw, sh, sw, ph, pw;
} pool_window;

/* A window's B lanes into y, lane_stride floats apart: one vector store
 * where they are adjacent (a strided loop of scalar stores took as long as
 * the window's maxima). */
static inline __attribute__((always_inline)) void store_lanes(const float *best, size_t B, float *y,
                                                               size_t lane_stride)
{
    if (lane_stride == 1) memcpy(y, best, B * sizeof(float));
    else
        for (size_t l = 0; l < B; l++) y[l * lane_stride] = best[l];
}

/* Output (oh, ow) of one (sample, channel block) plane: x [in_h][in_w] rows
 * of B channels rs floats apart (B in nChw<B>c, the channel count in NHWC),
 * its B lanes into y lane_stride floats apart, and with track its arg-max
 * into at_out; B, k and track constants after inlining. */
static inline __attribute__((always_inline)) void maxpool_window(const mx_pool2d_desc *d, pool_window k, size_t B,
                                                                  size_t rs, const float *x, size_t oh, size_t ow,
                                                                  float *y, size_t lane_stride, uint32_t *at_out,
                                                                  int track)
{
    const long H = (long)d->in_h, W = (long)d->in_w;
    const long hs = (long)oh * k.sh - k.ph, ws = (long)ow * k.sw - k.pw;
    const long h0 = hs < 0 ? 0 : hs, w0 = ws < 0 ? 0 : ws;
    const long h1 = hs + k.kh < H ? hs + k.kh : H;
    const long w1 = ws + k.kw < W ? ws + k.kw : W;
    float best[16];
    uint32_t at[16];
    for (size_t l = 0; l < B; l++) best[l] = -INFINITY, at[l] = (uint32_t)(h0 * W + w0);
    for (long ih = h0; ih < h1; ih++)
        for (long iw = w0; iw < w1; iw++) {
            const uint32_t index = (uint32_t)(ih * W + iw);
            const float *v = x + (size_t)index * rs;
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                const int take = v[l] > best[l] || v[l] != v[l];
                best[l] = take ? v[l] : best[l];
                if (track) at[l] = take ? index : at[l];
            }
        }
    store_lanes(best, B, y, lane_stride);
    if (track)
        for (size_t l = 0; l < B; l++) at_out[l] = at[l];
}

/* A whole plane: argmax [out_h][out_w][B] (track 1; a prediction's, track
 * 0, keeps none), y rows as x's (lane_stride 1) or the block's B NCHW planes
 * (lane_stride out_h * out_w). */
static inline __attribute__((always_inline)) void maxpool_plane(const mx_pool2d_desc *d, pool_window k, size_t B,
                                                                 size_t rs, const float *x, float *y,
                                                                 size_t lane_stride, uint32_t *argmax, int track)
{
    for (size_t oh = 0; oh < d->out_h; oh++)
        for (size_t ow = 0; ow < d->out_w; ow++) {
            const size_t o = oh * d->out_w + ow;
            maxpool_window(d, k, B, rs, x, oh, ow, y + o * (lane_stride == 1 ? rs : 1), lane_stride,
                           track ? argmax + o * B : NULL, track);
        }
}

/* maxpool_plane with track a constant in each copy: a run-time one left the
 * arg-max's select inside the window's loop as masked moves, and lenet5's
 * 2x2 pooling 3-4x slower (16@10x10 at batch 128: 0.18 against 0.045 ms). */
static inline __attribute__((always_inline)) void tracked_plane(const mx_pool2d_desc *d, pool_window k, size_t B,
                                                                 size_t rs, const float *x, float *y,
                                                                 size_t lane_stride, uint32_t *argmax)
{
    if (argmax) maxpool_plane(d, k, B, rs, x, y, lane_stride, argmax, 1);
    else maxpool_plane(d, k, B, rs, x, y, lane_stride, NULL, 0);
}

/* maxpool_plane for the 3x3 stride-2 windows with padding 1 of a
 * prediction (no arg-max): a window inside the plane is 9 maxima of
 * vectors and a NaN test; one that meets the border or holds a NaN goes
 * through maxpool_window's exact loop (the last NaN in it wins). resnet50's
 * stem pooling on 2 AVX2 cores, 2 samples from cache: 0.45 ms with the
 * arg-max, 0.36 by maxpool_plane without it, 0.19 here; 32 samples from
 * memory 10.4 ms with the arg-max, 6.7 here. */
static inline __attribute__((always_inline)) void maxpool3s2_plane(const mx_pool2d_desc *d, size_t B, size_t rs,
                                                                    const float *x, float *y, size_t lane_stride)
{
    const pool_window three = {3, 3, 2, 2, 1, 1};
    const size_t W = d->in_w;
    for (size_t oh = 0; oh < d->out_h; oh++) {
        const int row_inside = oh >= 1 && 2 * oh + 1 < d->in_h;
        for (size_t ow = 0; ow < d->out_w; ow++) {
            float *yo = y + (oh * d->out_w + ow) * (lane_stride == 1 ? rs : 1);
#if defined(__AVX2__)
            if (row_inside && ow >= 1 && 2 * ow + 1 < W) {
                const float *w0 = x + ((2 * oh - 1) * W + 2 * ow - 1) * rs;
                float best[16];
                int nan = 0;
                for (size_t h = 0; h < B; h += 8) {
                    /* MAXPS(v, m) is v > m ? v : m, the exact loop's choice
                     * where neither is NaN. */
                    __m256 m = _mm256_loadu_ps(w0 + h), bad = _mm256_setzero_ps();
                    for (size_t i = 0; i < 3; i++)
                        for (size_t j = 0; j < 3; j++) {
                            const __m256 v = _mm256_loadu_ps(w0 + (i * W + j) * rs + h);
                            m = _mm256_max_ps(v, m);
                            bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
                        }
                    _mm256_storeu_ps(best + h, m);
                    nan |= !_mm256_testz_ps(bad, bad);
                }
                if (!nan) {
                    store_lanes(best, B, yo, lane_stride);
                    continue;
                }
            }
#else
            (void)row_inside, (void)W;
#endif
            maxpool_window(d, three, B, rs, x, oh, ow, yo, lane_stride, NULL, 0);
        }
    }
}

/* Where plane p = (sample, channel block) of an NCHW output starts. */
static size_t nchw_plane_at(const mx_pool2d_desc *d, size_t block, size_t p)
{
    return p * block * d->out_h * d->out_w;
}

void cnn_cpu_maxpool_forward_blocked(const mx_pool2d_desc *d, size_t n, size_t layout, const float *x, float *y,
                                     int y_nchw, uint32_t *argmax)
{
    const size_t block = cnn_block(layout), C = d->channels, CB = C / block, rs = cnn_row_stride(layout, C);
    const size_t planes = n * CB, out = d->out_h * d->out_w * block;
    const size_t lanes = y_nchw ? d->out_h * d->out_w : 1; /* a block's output planes are as many floats apart */
    const pool_window any = {(long)d->kernel_h, (long)d->kernel_w, (long)d->stride_h, (long)d->stride_w,
                             (long)d->pad_h, (long)d->pad_w};
    const pool_window two = {2, 2, 2, 2, 0, 0}, three = {3, 3, 2, 2, 1, 1};
    /* lenet5's windows, and the ResNets' stem's (resnet50: 64 channels at
     * 112x112), whose loops the constants unroll. */
    const int shape = !memcmp(&any, &two, sizeof two) ? 2 : !memcmp(&any, &three, sizeof three) ? 3 : 0;
    /* Planes are independent: any thread count gives the same outputs. */
#pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)planes; p++) {
        uint32_t *a = argmax ? argmax + (size_t)p * out : NULL;
        const size_t s = (size_t)p / CB, cb = (size_t)p % CB;
        const float *xp = x + cnn_block_at(layout, C, d->in_h * d->in_w, s, cb);
        float *yp = y + (y_nchw ? nchw_plane_at(d, block, (size_t)p) : cnn_block_at(layout, C, d->out_h * d->out_w, s, cb));
        if (shape == 3 && !a && block == 8) maxpool3s2_plane(d, 8, rs, xp, yp, lanes);
        else if (shape == 3 && !a) maxpool3s2_plane(d, 16, rs, xp, yp, lanes);
        else if (block == 8 && shape == 2) tracked_plane(d, two, 8, rs, xp, yp, lanes, a);
        else if (block == 8 && shape == 3) maxpool_plane(d, three, 8, rs, xp, yp, lanes, a, 1);
        else if (block == 8) tracked_plane(d, any, 8, rs, xp, yp, lanes, a);
        else if (shape == 2) tracked_plane(d, two, 16, rs, xp, yp, lanes, a);
        else if (shape == 3) maxpool_plane(d, three, 16, rs, xp, yp, lanes, a, 1);
        else tracked_plane(d, any, 16, rs, xp, yp, lanes, a);
    }
}

void cnn_cpu_maxpool_backward_blocked(const mx_pool2d_desc *d, size_t n, size_t layout, const uint32_t *argmax,
                                      const float *relu_x, const float *dy, int dy_nchw, float *dx)
{
    const size_t block = cnn_block(layout), C = d->channels, CB = C / block, rs = cnn_row_stride(layout, C);
    const size_t planes = n * CB, ihw = d->in_h * d->in_w, ohw = d->out_h * d->out_w, out = ohw * block;
    /* A plane's arg-max points into that plane only: threads never share an element. */
#pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)planes; p++) {
        const size_t s = (size_t)p / CB, cb = (size_t)p % CB, in_at = cnn_block_at(layout, C, ihw, s, cb);
        float *dxp = dx + in_at;
        const float *dyp = dy + (dy_nchw ? nchw_plane_at(d, block, (size_t)p) : cnn_block_at(layout, C, ohw, s, cb));
        const float *xp = relu_x ? relu_x + in_at : NULL;
        const uint32_t *ap = argmax + (size_t)p * out;
        for (size_t q = 0; q < ihw; q++) memset(dxp + q * rs, 0, block * sizeof(float));
        for (size_t q = 0; q < out; q++) {
            const size_t at = (size_t)ap[q] * rs + q % block;
            /* dy in the input's layout, or the block's NCHW planes */
            const float g = dyp[dy_nchw ? q % block * ohw + q / block : q / block * rs + q % block];
            dxp[at] += xp && xp[at] <= 0.0f ? 0.0f : g;
        }
    }
}

/* ---- 2x2 stride-2 pooling on NCHW planes ------------------------------------------
 * lenet5's poolings (its activations stay NCHW: 6 channels after the first
 * layer, and the flattening for the linear layers after the second). The
 * reference's loop reads every other column, which the compiler cannot turn
 * into whole-vector loads: 22% of lenet5's evaluation. Here 16 (or 8) input
 * columns of a row are two loads, split into their even and odd columns by
 * shuffles, so 8 (or 4) windows take 4 loads and 3 compare-and-take steps
 * in the reference's window order (a, b, then the second row's c, e). The
 * last vector of a row overlaps the one before (the same windows give the
 * same values); rows under 4 windows go to the reference. */
#if defined(__AVX2__)
#include <immintrin.h>

int cnn_cpu_maxpool_2x2_suits(const mx_pool2d_desc *d)
{
    return d->kernel_h == 2 && d->kernel_w == 2 && d->stride_h == 2 && d->stride_w == 2 && !d->pad_h && !d->pad_w &&
           d->out_w >= 4;
}

/* A candidate takes over when strictly larger or a NaN (the reference's rule). */
static inline __m256 takes8(__m256 v, __m256 best)
{
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

static inline __m128 takes4(__m128 v, __m128 best)
{
    return _mm_or_ps(_mm_cmp_ps(v, best, _CMP_GT_OQ), _mm_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* The even (*ev) and odd (*od) columns of row[0..15] and of row[0..7]. */
static inline void split8(const float *row, __m256 *ev, __m256 *od)
{
    const __m256 lo = _mm256_loadu_ps(row), hi = _mm256_loadu_ps(row + 8);
    /* per 128-bit half: lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6, then the 64-bit pairs in order */
    *ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
    *od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
}

static inline void split4(const float *row, __m128 *ev, __m128 *od)
{
    const __m128 lo = _mm_loadu_ps(row), hi = _mm_loadu_ps(row + 4);
    *ev = _mm_shuffle_ps(lo, hi, 0x88);
    *od = _mm_shuffle_ps(lo, hi, 0xDD);
}

/* Windows o .. o + 7 of output row oh: y, and the arg-max when ap. */
static inline void windows8(const float *xp, size_t W, size_t oh, size_t o, float *y, uint32_t *ap)
{
    __m256 a, b, c, e;
    split8(xp + 2 * oh * W + 2 * o, &a, &b);
    split8(xp + (2 * oh + 1) * W + 2 * o, &c, &e);
    __m256 best = a, t = takes8(b, best);
    best = _mm256_blendv_ps(best, b, t);
    __m256 col1 = t; /* the winner is in the window's second column */
    t = takes8(c, best), best = _mm256_blendv_ps(best, c, t);
    __m256 row1 = t; /* ... in its second row */
    col1 = _mm256_andnot_ps(t, col1);
    t = takes8(e, best), best = _mm256_blendv_ps(best, e, t);
    row1 = _mm256_or_ps(row1, t), col1 = _mm256_or_ps(col1, t);
    _mm256_storeu_ps(y, best);
    if (!ap) return;
    __m256i at = _mm256_add_epi32(_mm256_set1_epi32((int)(2 * oh * W + 2 * o)), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    at = _mm256_sub_epi32(at, _mm256_castps_si256(col1)); /* a true lane is -1 */
    at = _mm256_add_epi32(at, _mm256_and_si256(_mm256_castps_si256(row1), _mm256_set1_epi32((int)W)));
    _mm256_storeu_si256((__m256i *)ap, at);
}

static inline void windows4(const float *xp, size_t W, size_t oh, size_t o, float *y, uint32_t *ap)
{
    __m128 a, b, c, e;
    split4(xp + 2 * oh * W + 2 * o, &a, &b);
    split4(xp + (2 * oh + 1) * W + 2 * o, &c, &e);
    __m128 best = a, t = takes4(b, best);
    best = _mm_blendv_ps(best, b, t);
    __m128 col1 = t;
    t = takes4(c, best), best = _mm_blendv_ps(best, c, t);
    __m128 row1 = t;
    col1 = _mm_andnot_ps(t, col1);
    t = takes4(e, best), best = _mm_blendv_ps(best, e, t);
    row1 = _mm_or_ps(row1, t), col1 = _mm_or_ps(col1, t);
    _mm_storeu_ps(y, best);
    if (!ap) return;
    __m128i at = _mm_add_epi32(_mm_set1_epi32((int)(2 * oh * W + 2 * o)), _mm_setr_epi32(0, 2, 4, 6));
    at = _mm_sub_epi32(at, _mm_castps_si128(col1));
    at = _mm_add_epi32(at, _mm_and_si128(_mm_castps_si128(row1), _mm_set1_epi32((int)W)));
    _mm_storeu_si128((__m128i *)ap, at);
}

static void maxpool_2x2_plane(const mx_pool2d_desc *d, const float *xp, float *yp, uint32_t *ap)
{
    const size_t W = d->in_w, OW = d->out_w, V = OW >= 8 ? 8 : 4;
    for (size_t oh = 0; oh < d->out_h; oh++)
        for (size_t o = 0;; o += V) {
            if (o + V > OW) o = OW - V; /* the last vector overlaps the one before */
            const size_t q = oh * OW + o;
            if (V == 8) windows8(xp, W, oh, o, yp + q, ap ? ap + q : NULL);
            else windows4(xp, W, oh, o, yp + q, ap ? ap + q : NULL);
            if (o + V >= OW) break;
        }
}

void cnn_cpu_maxpool_2x2_forward(const mx_pool2d_desc *d, size_t n, const float *x, float *y, uint32_t *argmax)
{
    const size_t in = d->in_h * d->in_w, out = d->out_h * d->out_w, planes = n * d->channels;
    if (!cnn_cpu_maxpool_2x2_suits(d)) {
        mx_maxpool2d_forward(d, n, x, y, argmax);
        return;
    }
    /* Planes are independent: any thread count gives the same outputs. */
#pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)planes; p++)
        maxpool_2x2_plane(d, x + (size_t)p * in, y + (size_t)p * out, argmax ? argmax + (size_t)p * out : NULL);
}

/* The gradients of windows o .. o + 7 (o .. o + 3) of output row oh into
 * their 16 (8) inputs of each of the two rows: g where the arg-max is, 0
 * at the window's other three inputs. */
static inline void grads8(float *dx, const float *relu_x, size_t W, size_t oh, size_t o, const float *dy,
                          const uint32_t *ap)
{
    const __m256 g = _mm256_loadu_ps(dy), z = _mm256_setzero_ps();
    const __m256i at = _mm256_loadu_si256((const __m256i *)ap), one = _mm256_set1_epi32(1);
    const __m256i a = _mm256_add_epi32(_mm256_set1_epi32((int)(2 * oh * W + 2 * o)), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    const __m256i c = _mm256_add_epi32(a, _mm256_set1_epi32((int)W));
#define GRAD_AT(i) _mm256_blendv_ps(z, g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, (i))))
    const __m256 ga = GRAD_AT(a), gb = GRAD_AT(_mm256_add_epi32(a, one)), gc = GRAD_AT(c), ge = GRAD_AT(_mm256_add_epi32(c, one));
#undef GRAD_AT
    /* a, b (and c, e) interleaved back into columns */
    const __m256 lo0 = _mm256_unpacklo_ps(ga, gb), hi0 = _mm256_unpackhi_ps(ga, gb);
    const __m256 lo1 = _mm256_unpacklo_ps(gc, ge), hi1 = _mm256_unpackhi_ps(gc, ge);
    const size_t at0 = 2 * oh * W + 2 * o, to[4] = {at0, at0 + 8, at0 + W, at0 + W + 8};
    const __m256 v[4] = {_mm256_permute2f128_ps(lo0, hi0, 0x20), _mm256_permute2f128_ps(lo0, hi0, 0x31),
                         _mm256_permute2f128_ps(lo1, hi1, 0x20), _mm256_permute2f128_ps(lo1, hi1, 0x31)};
    for (int i = 0; i < 4; i++) /* the ReLU's backward: 0 where its output was <= 0 */
        _mm256_storeu_ps(dx + to[i], relu_x ? _mm256_andnot_ps(_mm256_cmp_ps(_mm256_loadu_ps(relu_x + to[i]), z, _CMP_LE_OQ), v[i])
                                     : v[i]);
}

static inline void grads4(float *dx, const float *relu_x, size_t W, size_t oh, size_t o, const float *dy,
                          const uint32_t *ap)
{
    const __m128 g = _mm_loadu_ps(dy), z = _mm_setzero_ps();
    const __m128i at = _mm_loadu_si128((const __m128i *)ap), one = _mm_set1_epi32(1);
    const __m128i a = _mm_add_epi32(_mm_set1_epi32((int)(2 * oh * W + 2 * o)), _mm_setr_epi32(0, 2, 4, 6));
    const __m128i c = _mm_add_epi32(a, _mm_set1_epi32((int)W));
#define GRAD_AT(i) _mm_blendv_ps(z, g, _mm_castsi128_ps(_mm_cmpeq_epi32(at, (i))))
    const __m128 ga = GRAD_AT(a), gb = GRAD_AT(_mm_add_epi32(a, one)), gc = GRAD_AT(c), ge = GRAD_AT(_mm_add_epi32(c, one));
#undef GRAD_AT
    const size_t at0 = 2 * oh * W + 2 * o, to[4] = {at0, at0 + 4, at0 + W, at0 + W + 4};
    const __m128 v[4] = {_mm_unpacklo_ps(ga, gb), _mm_unpackhi_ps(ga, gb), _mm_unpacklo_ps(gc, ge),
                         _mm_unpackhi_ps(gc, ge)};
    for (int i = 0; i < 4; i++)
        _mm_storeu_ps(dx + to[i], relu_x ? _mm_andnot_ps(_mm_cmp_ps(_mm_loadu_ps(relu_x + to[i]), z, _CMP_LE_OQ), v[i]) : v[i]);
}

/* dx of a plane, every element written: zeros also to a last odd row or
 * column no window covers. */
static void maxpool_2x2_plane_backward(const mx_pool2d_desc *d, const uint32_t *ap, const float *relu_x,
                                       const float *dyp, float *dx)
{
    const size_t W = d->in_w, OW = d->out_w, V = OW >= 8 ? 8 : 4;
    for (size_t oh = 0; oh < d->out_h; oh++) {
        for (size_t o = 0;; o += V) {
            if (o + V > OW) o = OW - V;
            const size_t q = oh * OW + o;
            if (V == 8) grads8(dx, relu_x, W, oh, o, dyp + q, ap + q);
            else grads4(dx, relu_x, W, oh, o, dyp + q, ap + q);
            if (o + V >= OW) break;
        }
        if (W > 2 * OW) dx[2 * oh * W + W - 1] = dx[(2 * oh + 1) * W + W - 1] = 0.0f;
    }
    if (d->in_h > 2 * d->out_h) memset(dx + (d->in_h - 1) * W, 0, W * sizeof(float));
}

void cnn_cpu_maxpool_2x2_backward(const mx_pool2d_desc *d, size_t n, const uint32_t *argmax, const float *relu_x,
                                  const float *dy, float *dx)
{
    const size_t in = d->in_h * d->in_w, out = d->out_h * d->out_w, planes = n * d->channels;
    if (!cnn_cpu_maxpool_2x2_suits(d)) {
        mx_maxpool2d_backward(d, n, argmax, dy, dx);
        if (relu_x) mx_relu_backward(planes * in, relu_x, dx, dx);
        return;
    }
#pragma omp parallel for schedule(static)
    for (long p = 0; p < (long)planes; p++)
        maxpool_2x2_plane_backward(d, argmax + (size_t)p * out, relu_x ? relu_x + (size_t)p * in : NULL,
                                   dy + (size_t)p * out, dx + (size_t)p * in);
}

#else /* the reference's loops */

int cnn_cpu_maxpool_2x2_suits(const mx_pool2d_desc *d)
{
    (void)d;
    return 0;
}

void cnn_cpu_maxpool_2x2_forward(const mx_pool2d_desc *d, size_t n, const float *x, float *y, uint32_t *argmax)
{
    mx_maxpool2d_forward(d, n, x, y, argmax);
}

void cnn_cpu_maxpool_2x2_backward(const mx_pool2d_desc *d, size_t n, const uint32_t *argmax, const float *relu_x,
                                  const float *dy, float *dx)
{
    mx_maxpool2d_backward(d, n, argmax, dy, dx);
    if (relu_x) mx_relu_backward(n * d->channels * d->in_h * d->in_w, relu_x, dx, dx);
}
#endif

/* Global average pooling: each (sample, channel)'s mean in double, and its
 * gradient spread back evenly. */
void cnn_cpu_gap_forward_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, float *y)
{
    const size_t B = cnn_block(layout), CB = channels / B, rs = cnn_row_stride(layout, channels);
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const float *p = x + cnn_block_at(layout, channels, hw, s, cb);
            double sum[16] = {0};
            for (size_t q = 0; q < hw; q++) {
#pragma omp simd
                for (size_t l = 0; l < B; l++) sum[l] += p[q * rs + l];
            }
            for (size_t l = 0; l < B; l++) y[s * channels + cb * B + l] = (float)(sum[l] / (double)hw);
        }
}

void cnn_cpu_gap_backward_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *dy, float *dx)
{
    const size_t B = cnn_block(layout), CB = channels / B, rs = cnn_row_stride(layout, channels);
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            float g[16];
            for (size_t l = 0; l < B; l++) g[l] = (float)(dy[s * channels + cb * B + l] / (double)hw);
            float *p = dx + cnn_block_at(layout, channels, hw, s, cb);
            for (size_t q = 0; q < hw; q++) {
#pragma omp simd
                for (size_t l = 0; l < B; l++) p[q * rs + l] = g[l];
            }
        }
}
