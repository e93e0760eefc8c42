/* Reference max, average and global average pooling (PyTorch CPU semantics:
 * floor output size; max over -inf padding, the first maximum winning ties
 * and the last NaN beating everything; average counting the padding unless
 * asked not to). */
#include <math.h>
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

void mx_maxpool2d_forward(const mx_pool2d_desc *d, size_t n, const float *x, float *y, uint32_t *argmax)
{
    const size_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w;
    for (size_t p = 0; p < n * d->channels; p++) {
        const float *xp = x + p * in_plane;
        for (size_t oh = 0; oh < d->out_h; oh++)
            for (size_t ow = 0; ow < d->out_w; ow++) {
                window win = window_at(d, oh, ow);
                /* As PyTorch: start at -inf with the window's first in-bounds index;
                 * a strictly larger value or a NaN takes over. */
                size_t best_i = win.h0 * d->in_w + win.w0;
                float best = -INFINITY;
                for (size_t ih = win.h0; ih < win.h1; ih++)
                    for (size_t iw = win.w0; iw < win.w1; iw++) {
                        float v = xp[ih * d->in_w + iw];
                        if (v > best || isnan(v)) {
                            best = v;
                            best_i = ih * d->in_w + iw;
                        }
                    }
                y[p * out_plane + oh * d->out_w + ow] = best;
                if (argmax) argmax[p * out_plane + oh * d->out_w + ow] = (uint32_t)best_i;
            }
    }
}

void mx_maxpool2d_backward(const mx_pool2d_desc *d, size_t n, const uint32_t *argmax, const float *dy, float *dx)
{
    const size_t in_plane = d->in_h * d->in_w, out_plane = d->out_h * d->out_w;
    for (size_t p = 0; p < n * d->channels; p++) {
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
