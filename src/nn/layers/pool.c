/* Reference max, average and global average pooling (PyTorch CPU semantics:
 * floor output size; max over -inf padding, the first maximum winning ties
 * and the last NaN beating everything; average counting the padding unless
 * asked not to). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mixreg/layers.h"

mx_status mx_pool2d_setup(mx_pool2d_desc *d)
{
    if (!d->channels || !d->in_h || !d->in_w || !d->kernel_h || !d->kernel_w)
        return mx_error_set(MX_ERR_ARG, "pool2d: zero channel count, input size or kernel size");
    if (!d->stride_h || !d->stride_w) return mx_error_set(MX_ERR_ARG, "pool2d: stride must be at least 1");
    if (2 * d->pad_h > d->kernel_h || 2 * d->pad_w > d->kernel_w)
        return mx_error_set(MX_ERR_ARG, "pool2d: padding %zux%zu must be at most half the kernel %zux%zu", d->pad_h,
                            d->pad_w, d->kernel_h, d->kernel_w);
    if (d->in_h + 2 * d->pad_h < d->kernel_h || d->in_w + 2 * d->pad_w < d->kernel_w)
        return mx_error_set(MX_ERR_ARG, "pool2d: kernel %zux%zu larger than the padded input %zux%zu", d->kernel_h,
                            d->kernel_w, d->in_h + 2 * d->pad_h, d->in_w + 2 * d->pad_w);
    d->out_h = (d->in_h + 2 * d->pad_h - d->kernel_h) / d->stride_h + 1;
    d->out_w = (d->in_w + 2 * d->pad_w - d->kernel_w) / d->stride_w + 1;
    return MX_OK;
}

/* The window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1).
 * (With floor output sizes no window reaches past the padding, so the average's
 * count_include_pad divisor is always the kernel area.) */
typedef struct {
    size_t h0, h1, w0, w1;
} window;

static window window_at(const mx_pool2d_desc *d, size_t oh, size_t ow)
{
    ptrdiff_t hs = (ptrdiff_t)(oh * d->stride_h) - (ptrdiff_t)d->pad_h;
    ptrdiff_t ws = (ptrdiff_t)(ow * d->stride_w) - (ptrdiff_t)d->pad_w;
    ptrdiff_t he = hs + (ptrdiff_t)d->kernel_h, we = ws + (ptrdiff_t)d->kernel_w;
    window win;
    win.h0 = hs < 0 ? 0 : (size_t)hs;
    win.w0 = ws < 0 ? 0 : (size_t)ws;
    win.h1 = he > (ptrdiff_t)d->in_h ? d->in_h : (size_t)he;
    win.w1 = we > (ptrdiff_t)d->in_w ? d->in_w : (size_t)we;
    return win;
}

/* Below this many outputs a pooling runs on one thread: the team's start-up
 * (a few microseconds) would cost more than it saves. */
#define POOL_PARALLEL_MIN 16384

/* One candidate of a max-pool window, in window order: a strictly larger
 * value or a NaN takes over (so the first maximum wins ties and the last NaN
 * wins outright). Branch-free, so the 2x2 loop below vectorises. */
#define MAXPOOL_TAKE(v, i)                       \
    do {                                         \
        int take_ = (v) > best || isnan(v);      \
        best = take_ ? (v) : best;               \
        best_i = take_ ? (uint32_t)(i) : best_i; \
    } while (0)

/* The 2x2 stride-2 unpadded window (LeNet's pooling), the same comparisons in
 * the same order as the general loop, so the same outputs and arg-max bit for
 * bit. oneDNN 2.x runs this shape on its reference NCHW pooling, which took
 * 3.4 ms for lenet5's first pooling at batch 64 on one AVX2 core, 40% of the
 * training step (BENCHMARKS.md); this loop takes a small fraction of that. */
static void maxpool_2x2_plane(const mx_pool2d_desc *d, const float *xp, float *yp, uint32_t *ap)
{
    const size_t in_w = d->in_w, out_w = d->out_w;
    uint32_t scratch[64];
    for (size_t oh = 0; oh < d->out_h; oh++) {
        const float *r0 = xp + 2 * oh * in_w, *r1 = r0 + in_w;
        const uint32_t base = (uint32_t)(2 * oh * in_w);
        float *yrow = yp + oh * out_w;
        for (size_t ow0 = 0; ow0 < out_w; ow0 += 64) {
            const size_t len = out_w - ow0 < 64 ? out_w - ow0 : 64;
            uint32_t *arow = ap ? ap + oh * out_w + ow0 : scratch;
            /* The window's first element always takes over from -inf (or
             * keeps -inf with the same index), so start from it; then the
             * others in order, a strictly larger value or a NaN taking over. */
#pragma omp simd
            for (size_t k = 0; k < len; k++) {
                const size_t c = 2 * (ow0 + k);
                const float a = r0[c], b = r0[c + 1], e = r1[c], f = r1[c + 1];
                float best = a;
                uint32_t at = 0;
                int take = b > best || b != b;
                best = take ? b : best, at = take ? 1u : at;
                take = e > best || e != e;
                best = take ? e : best, at = take ? (uint32_t)in_w : at;
                take = f > best || f != f;
                best = take ? f : best, at = take ? (uint32_t)in_w + 1u : at;
                yrow[ow0 + k] = best;
                arow[k] = base + (uint32_t)c + at;
            }
        }
    }
}

static void maxpool_plane(const mx_pool2d_desc *d, const float *xp, float *yp, uint32_t *ap)
{
    for (size_t oh = 0; oh < d->out_h; oh++)
        for (size_t ow = 0; ow < d->out_w; ow++) {
            window win = window_at(d, oh, ow);
            /* As PyTorch: start at -inf with the window's first in-bounds index. */
            uint32_t best_i = (uint32_t)(win.h0 * d->in_w + win.w0);
            float best = -INFINITY;
            for (size_t ih = win.h0; ih < win.h1; ih++)
                for (size_t iw = win.w0; iw < win.w1; iw++) MAXPOOL_TAKE(xp[ih * d->in_w + iw], ih * d->in_w + iw);
            yp[oh * d->out_w + ow] = best;
            if (ap) ap[oh * d->out_w + ow] = best_i;
        }
}

void mx_maxpool2d_forward(const mx_pool2d_desc *d, size_t n, const float *x, float *y, uint32_t *argmax)
{
    const size_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w, planes = n * d->channels;
    const int is_2x2 = d->kernel_h == 2 && d->kernel_w == 2 && d->stride_h == 2 && d->stride_w == 2 && !d->pad_h &&
                       !d->pad_w;
    /* Planes are independent, so any thread count gives the same outputs. */
#pragma omp parallel for schedule(static) if (planes * out_plane >= POOL_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        uint32_t *ap = argmax ? argmax + p * out_plane : NULL;
        if (is_2x2) maxpool_2x2_plane(d, x + p * in_plane, y + p * out_plane, ap);
        else maxpool_plane(d, x + p * in_plane, y + p * out_plane, ap);
    }
}

void mx_maxpool2d_backward(const mx_pool2d_desc *d, size_t n, const uint32_t *argmax, const float *dy, float *dx)
{
    const size_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w, planes = n * d->channels;
    /* A plane's arg-max points into that plane only: threads never share an element. */
#pragma omp parallel for schedule(static) if (planes * out_plane >= POOL_PARALLEL_MIN)
    for (size_t p = 0; p < planes; p++) {
        float *dxp = dx + p * in_plane;
        memset(dxp, 0, in_plane * sizeof(float));
        for (size_t q = 0; q < out_plane; q++) dxp[argmax[p * out_plane + q]] += dy[p * out_plane + q];
    }
}

static size_t avg_divisor(const mx_pool2d_desc *d, window win)
{
    return d->exclude_pad ? (win.h1 - win.h0) * (win.w1 - win.w0) : d->kernel_h * d->kernel_w;
}

void mx_avgpool2d_forward(const mx_pool2d_desc *d, size_t n, const float *x, float *y)
{
    const size_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w;
    for (size_t p = 0; p < n * d->channels; p++) {
        const float *xp = x + p * in_plane;
        for (size_t oh = 0; oh < d->out_h; oh++)
            for (size_t ow = 0; ow < d->out_w; ow++) {
                window win = window_at(d, oh, ow);
                double sum = 0;
                for (size_t ih = win.h0; ih < win.h1; ih++)
                    for (size_t iw = win.w0; iw < win.w1; iw++) sum += xp[ih * d->in_w + iw];
                y[p * out_plane + oh * d->out_w + ow] = (float)(sum / (double)avg_divisor(d, win));
            }
    }
}

void mx_avgpool2d_backward(const mx_pool2d_desc *d, size_t n, const float *dy, float *dx)
{
    const size_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w;
    for (size_t p = 0; p < n * d->channels; p++) {
        float *dxp = dx + p * in_plane;
        memset(dxp, 0, in_plane * sizeof(float));
        for (size_t oh = 0; oh < d->out_h; oh++)
            for (size_t ow = 0; ow < d->out_w; ow++) {
                window win = window_at(d, oh, ow);
                float g = (float)(dy[p * out_plane + oh * d->out_w + ow] / (double)avg_divisor(d, win));
                for (size_t ih = win.h0; ih < win.h1; ih++)
                    for (size_t iw = win.w0; iw < win.w1; iw++) dxp[ih * d->in_w + iw] += g;
            }
    }
}

void mx_global_avgpool_forward(size_t n, size_t channels, size_t hw, const float *x, float *y)
{
    for (size_t p = 0; p < n * channels; p++) {
        double sum = 0;
        for (size_t i = 0; i < hw; i++) sum += x[p * hw + i];
        y[p] = (float)(sum / (double)hw);
    }
}

void mx_global_avgpool_backward(size_t n, size_t channels, size_t hw, const float *dy, float *dx)
{
    for (size_t p = 0; p < n * channels; p++) {
        float g = (float)(dy[p] / (double)hw);
        for (size_t i = 0; i < hw; i++) dx[p * hw + i] = g;
    }
}
