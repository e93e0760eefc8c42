/* Reference 2-D convolution (dilation 1, groups 1): per sample, an im2col
 * matrix and one cblas_sgemm; plus a direct-loop version with double
 * accumulators as the oracle for it.
 *
 * No OpenMP in these layers: the only threads are OpenBLAS's. Debian's
 * OpenBLAS is the pthreads build, and an OpenMP region between sgemm calls
 * leaves libgomp's workers spinning on the cores OpenBLAS's threads want
 * (measured on 2 busy cores: OpenMP-parallel im2col between the per-sample
 * sgemm calls ran 3 to 30 times slower). */
#include <cblas.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "mixreg/layers.h"

mx_status mx_conv2d_setup(mx_conv2d_desc *d)
{
    if (!d->in_channels || !d->out_channels || !d->in_h || !d->in_w || !d->kernel_h || !d->kernel_w)
        return mx_error_set(MX_ERR_ARG, "conv2d: zero channel count, input size or kernel size");
    if (!d->stride_h || !d->stride_w) return mx_error_set(MX_ERR_ARG, "conv2d: stride must be at least 1");
    if (d->in_h + 2 * d->pad_h < d->kernel_h || d->in_w + 2 * d->pad_w < d->kernel_w)
        return mx_error_set(MX_ERR_ARG, "conv2d: kernel %zux%zu larger than the padded input %zux%zu", d->kernel_h,
                            d->kernel_w, d->in_h + 2 * d->pad_h, d->in_w + 2 * d->pad_w);
    d->out_h = (d->in_h + 2 * d->pad_h - d->kernel_h) / d->stride_h + 1;
    d->out_w = (d->in_w + 2 * d->pad_w - d->kernel_w) / d->stride_w + 1;
    size_t col = d->in_channels * d->kernel_h * d->kernel_w;
    if (col > INT_MAX / (d->out_h * d->out_w) || d->out_channels * d->out_h * d->out_w > INT_MAX ||
        d->in_channels * d->in_h * d->in_w > INT_MAX)
        return mx_error_set(MX_ERR_ARG, "conv2d: tensor too large for the BLAS interface");
    return MX_OK;
}

/* The im2col matrix is the input itself: no copy, no workspace. */
static int is_pointwise(const mx_conv2d_desc *d)
{
    return d->kernel_h == 1 && d->kernel_w == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 &&
           d->pad_w == 0;
}

size_t mx_conv2d_workspace_bytes(const mx_conv2d_desc *d)
{
    if (is_pointwise(d)) return 0;
    return d->in_channels * d->kernel_h * d->kernel_w * d->out_h * d->out_w * sizeof(float);
}

/* col[(c kh + i) kw + j][oh ow_n + ow] = x[c][oh stride - pad + i][ow stride - pad + j], 0 outside. */
static void im2col(const mx_conv2d_desc *d, const float *x, float *col)
{
    const size_t kk = d->kernel_h * d->kernel_w, plane = d->out_h * d->out_w;
    for (size_t c = 0; c < d->in_channels; c++) {
        const float *xc = x + c * d->in_h * d->in_w;
        for (size_t i = 0; i < d->kernel_h; i++)
            for (size_t j = 0; j < d->kernel_w; j++) {
                float *row = col + (c * kk + i * d->kernel_w + j) * plane;
                for (size_t oh = 0; oh < d->out_h; oh++) {
                    /* ih = oh * stride + i - pad, unsigned: wraps to huge when negative. */
                    size_t ih = oh * d->stride_h + i - d->pad_h;
                    float *out = row + oh * d->out_w;
                    if (ih >= d->in_h) {
                        memset(out, 0, d->out_w * sizeof(float));
                        continue;
                    }
                    for (size_t ow = 0; ow < d->out_w; ow++) {
                        size_t iw = ow * d->stride_w + j - d->pad_w;
                        out[ow] = iw < d->in_w ? xc[ih * d->in_w + iw] : 0.0f;
                    }
                }
            }
    }
}

/* The adjoint of im2col: dx = 0, then every col entry added back where it was read from. */
static void col2im(const mx_conv2d_desc *d, const float *col, float *dx)
{
    const size_t kk = d->kernel_h * d->kernel_w, plane = d->out_h * d->out_w;
    for (size_t c = 0; c < d->in_channels; c++) {
        float *dxc = dx + c * d->in_h * d->in_w;
        memset(dxc, 0, d->in_h * d->in_w * sizeof(float));
        for (size_t i = 0; i < d->kernel_h; i++)
            for (size_t j = 0; j < d->kernel_w; j++) {
                const float *row = col + (c * kk + i * d->kernel_w + j) * plane;
                for (size_t oh = 0; oh < d->out_h; oh++) {
                    size_t ih = oh * d->stride_h + i - d->pad_h;
                    if (ih >= d->in_h) continue;
                    for (size_t ow = 0; ow < d->out_w; ow++) {
                        size_t iw = ow * d->stride_w + j - d->pad_w;
                        if (iw < d->in_w) dxc[ih * d->in_w + iw] += row[oh * d->out_w + ow];
                    }
                }
            }
    }
}

void mx_conv2d_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *weight, const float *bias,
                       float *y, float *workspace)
{
    const int m = (int)d->out_channels, k = (int)(d->in_channels * d->kernel_h * d->kernel_w),
              p = (int)(d->out_h * d->out_w);
    const size_t in_size = d->in_channels * d->in_h * d->in_w, out_size = d->out_channels * (size_t)p;
    for (size_t s = 0; s < n; s++) {
        const float *col = x + s * in_size;
        if (!is_pointwise(d)) {
            im2col(d, col, workspace);
            col = workspace;
        }
        float *ys = y + s * out_size;
        /* y_s [out_c, plane] = weight [out_c, k] col [k, plane] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, p, k, 1.0f, weight, k, col, p, 0.0f, ys, p);
        if (bias)
            for (size_t o = 0; o < d->out_channels; o++)
                for (size_t q = 0; q < (size_t)p; q++) ys[o * (size_t)p + q] += bias[o];
    }
}

void mx_conv2d_backward(const mx_conv2d_desc *d, size_t n, const float *x, const float *weight, const float *dy,
                        float *dx, float *dweight, float *dbias, float *workspace)
{
    const int m = (int)d->out_channels, k = (int)(d->in_channels * d->kernel_h * d->kernel_w),
              p = (int)(d->out_h * d->out_w);
    const size_t in_size = d->in_channels * d->in_h * d->in_w, out_size = d->out_channels * (size_t)p;
    if (dbias) {
        for (size_t o = 0; o < d->out_channels; o++) {
            double sum = 0;
            for (size_t s = 0; s < n; s++) {
                const float *g = dy + s * out_size + o * (size_t)p;
                for (size_t q = 0; q < (size_t)p; q++) sum += g[q];
            }
            dbias[o] = (float)sum;
        }
    }
    if (dweight && n == 0) memset(dweight, 0, (size_t)m * (size_t)k * sizeof(float));
    for (size_t s = 0; s < n; s++) {
        const float *dys = dy + s * out_size;
        if (dweight) {
            const float *col = x + s * in_size;
            if (!is_pointwise(d)) {
                im2col(d, col, workspace);
                col = workspace;
            }
            /* dweight [out_c, k] (+)= dy_s [out_c, plane] col^T [plane, k]; the first sample overwrites. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, p, 1.0f, dys, p, col, p, s ? 1.0f : 0.0f,
                        dweight, k);
        }
        if (dx) {
            float *dxs = dx + s * in_size;
            /* dcol [k, plane] = weight^T [k, out_c] dy_s [out_c, plane], then scattered back. */
            float *dcol = is_pointwise(d) ? dxs : workspace;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, m, 1.0f, weight, k, dys, p, 0.0f, dcol, p);
            if (!is_pointwise(d)) col2im(d, dcol, dxs);
        }
    }
}

/* ---- direct loops ---------------------------------------------------------- */

void mx_conv2d_forward_direct(const mx_conv2d_desc *d, size_t n, const float *x, const float *weight,
                              const float *bias, float *y)
{
    const size_t C = d->in_channels, H = d->in_h, W = d->in_w, KH = d->kernel_h, KW = d->kernel_w;
    const size_t O = d->out_channels, OH = d->out_h, OW = d->out_w;
    for (size_t s = 0; s < n; s++)
        for (size_t o = 0; o < O; o++)
            for (size_t oh = 0; oh < OH; oh++)
                for (size_t ow = 0; ow < OW; ow++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (size_t c = 0; c < C; c++)
                        for (size_t i = 0; i < KH; i++)
                            for (size_t j = 0; j < KW; j++) {
                                ptrdiff_t ih = (ptrdiff_t)(oh * d->stride_h + i) - (ptrdiff_t)d->pad_h;
                                ptrdiff_t iw = (ptrdiff_t)(ow * d->stride_w + j) - (ptrdiff_t)d->pad_w;
                                if (ih < 0 || iw < 0 || ih >= (ptrdiff_t)H || iw >= (ptrdiff_t)W) continue;
                                acc += (double)x[((s * C + c) * H + (size_t)ih) * W + (size_t)iw] *
                                       weight[((o * C + c) * KH + i) * KW + j];
                            }
                    y[((s * O + o) * OH + oh) * OW + ow] = (float)acc;
                }
}

void mx_conv2d_backward_direct(const mx_conv2d_desc *d, size_t n, const float *x, const float *weight,
                               const float *dy, float *dx, float *dweight, float *dbias)
{
    const size_t C = d->in_channels, H = d->in_h, W = d->in_w, KH = d->kernel_h, KW = d->kernel_w;
    const size_t O = d->out_channels, OH = d->out_h, OW = d->out_w;
    const ptrdiff_t sh = (ptrdiff_t)d->stride_h, sw = (ptrdiff_t)d->stride_w;
    if (dbias)
        for (size_t o = 0; o < O; o++) {
            double acc = 0;
            for (size_t s = 0; s < n; s++)
                for (size_t q = 0; q < OH * OW; q++) acc += dy[(s * O + o) * OH * OW + q];
            dbias[o] = (float)acc;
        }
    if (dweight)
        for (size_t o = 0; o < O; o++)
            for (size_t c = 0; c < C; c++)
                for (size_t i = 0; i < KH; i++)
                    for (size_t j = 0; j < KW; j++) {
                        double acc = 0;
                        for (size_t s = 0; s < n; s++)
                            for (size_t oh = 0; oh < OH; oh++)
                                for (size_t ow = 0; ow < OW; ow++) {
                                    ptrdiff_t ih = (ptrdiff_t)(oh * d->stride_h + i) - (ptrdiff_t)d->pad_h;
                                    ptrdiff_t iw = (ptrdiff_t)(ow * d->stride_w + j) - (ptrdiff_t)d->pad_w;
                                    if (ih < 0 || iw < 0 || ih >= (ptrdiff_t)H || iw >= (ptrdiff_t)W) continue;
                                    acc += (double)dy[((s * O + o) * OH + oh) * OW + ow] *
                                           x[((s * C + c) * H + (size_t)ih) * W + (size_t)iw];
                                }
                        dweight[((o * C + c) * KH + i) * KW + j] = (float)acc;
                    }
    if (dx)
        /* Gather form: input (ih, iw) was read by output (oh, ow) through tap (i, j)
         * exactly when oh stride + i - pad = ih (and likewise for w). */
        for (size_t s = 0; s < n; s++)
            for (size_t c = 0; c < C; c++)
                for (size_t ih = 0; ih < H; ih++)
                    for (size_t iw = 0; iw < W; iw++) {
                        double acc = 0;
                        for (size_t o = 0; o < O; o++)
                            for (size_t i = 0; i < KH; i++)
                                for (size_t j = 0; j < KW; j++) {
                                    ptrdiff_t th = (ptrdiff_t)(ih + d->pad_h) - (ptrdiff_t)i;
                                    ptrdiff_t tw = (ptrdiff_t)(iw + d->pad_w) - (ptrdiff_t)j;
                                    if (th < 0 || tw < 0 || th % sh || tw % sw) continue;
                                    size_t oh = (size_t)(th / sh), ow = (size_t)(tw / sw);
                                    if (oh >= OH || ow >= OW) continue;
                                    acc += (double)dy[((s * O + o) * OH + oh) * OW + ow] *
                                           weight[((o * C + c) * KH + i) * KW + j];
                                }
                        dx[((s * C + c) * H + ih) * W + iw] = (float)acc;
                    }
}
