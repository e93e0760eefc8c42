/* A convolution's input gradient as forward convolutions of dy, on oneDNN's
 * AMX forward kernels (brgconv), which oneDNN 2.6 makes much faster than
 * its backward-data ones (jit) for the same multiply-adds:
 * - stride 1, padding that keeps the size (odd kernels): one forward of dy
 *   with the weights transposed (in <-> out) and turned half a turn,
 *   straight into dx;
 * - 1x1, stride 2, no padding: that forward on the output's grid gives dx
 *   at the pixels the convolution read; they are placed at even rows and
 *   columns, zeros between;
 * - 3x3, stride 2, padding 1, even sides: each of dx's four (row, column)
 *   parities is a forward of dy with the taps that reach it: even rows take
 *   kernel row 1 at dy's row i, odd rows kernel row 2 at i and row 0 at i
 *   + 1 (so a 1- or 2-tap kernel, padded by one at the end); likewise the
 *   columns. Every pixel of dx is written by exactly one.
 * Measured in BENCHMARKS.md ("bf16 convolution backward on AMX"). */
#include <stdint.h>
#include <string.h>

#include "nn/dnnl/dnnl_internal.h"

#define TRY(expr) do { mx_status try_ = (expr); if (try_ != MX_OK) return try_; } while (0)

static int mode_of(const mx_conv2d_desc *d)
{
    /* Not on grids under 4 x 4 (preact18's last stage on 12 x 12 images):
     * they gain nothing, and making oneDNN 2.6's forward for a 2 x 2 grid
     * read past its memory (AddressSanitizer's SEGV inside
     * dnnl_primitive_create, tests/test_cnn_backends.c). */
    if (d->out_h * d->out_w < 16) return MXD_DX_NONE;
    if (d->stride_h == 1 && d->stride_w == 1 && d->kernel_h % 2 && d->kernel_w % 2 &&
        d->kernel_h <= MXD_DX_MAX_TAPS && d->kernel_w <= MXD_DX_MAX_TAPS && d->pad_h == d->kernel_h / 2 &&
        d->pad_w == d->kernel_w / 2)
        return MXD_DX_SAME;
    /* Stride 2 from 32 input channels: with 16 the placement's pixels (64
     * bytes) cost more than the forwards save (resnet20 at batch 128: the
     * 16 -> 32 projection 0.66 against oneDNN's 0.53 ms, 32 -> 64 0.14
     * against 0.26; the 3x3 16 -> 32 1.00 against 0.70, 32 -> 64 0.55
     * against 0.94; resnet50's 3x3 at batch 32 8.0-10.9 against 11.7-12.7). */
    if (d->stride_h != 2 || d->stride_w != 2 || d->in_channels < 32) return MXD_DX_NONE;
    if (d->kernel_h == 1 && d->kernel_w == 1 && !d->pad_h && !d->pad_w) return MXD_DX_SPREAD;
    if (d->kernel_h == 3 && d->kernel_w == 3 && d->pad_h == 1 && d->pad_w == 1 && d->in_h % 2 == 0 && d->in_w % 2 == 0)
        return MXD_DX_PARITY;
    return MXD_DX_NONE;
}

/* The kernel rows (or columns) of a 3x3 stride-2 convolution that reach dx
 * rows of parity a, in the order of the part's taps over dy rows i, i + 1. */
static size_t parity_taps(size_t a, size_t *taps)
{
    if (!a) return taps[0] = 1, 1;
    return taps[0] = 2, taps[1] = 0, 2;
}

/* Part k's kernel and taps for mode. */
static void part_shape(int mode, const mx_conv2d_desc *d, size_t k, mxd_dx_part *part)
{
    if (mode == MXD_DX_PARITY) {
        part->a = k / 2, part->b = k % 2;
        part->th = parity_taps(part->a, part->row);
        part->tw = parity_taps(part->b, part->col);
        return;
    }
    part->a = part->b = 0;
    part->th = d->kernel_h, part->tw = d->kernel_w;
    for (size_t t = 0; t < part->th; t++) part->row[t] = d->kernel_h - 1 - t; /* turned half a turn */
    for (size_t t = 0; t < part->tw; t++) part->col[t] = d->kernel_w - 1 - t;
}

mx_status mxd_dx_forward_build(mxd_plan *b, mxd_dx_forward *f, const mx_conv2d_desc *d, const dnnl_dims_t dst_dims,
                               const dnnl_memory_desc_t *dx_user, dnnl_data_type_t dx_type)
{
    memset(f, 0, sizeof *f);
    const int mode = mode_of(d);
    if (mode == MXD_DX_NONE) return MX_OK;
    dnnl_memory_desc_t dy, out;
    TRY(mxd_check(dnnl_memory_desc_init_by_tag(&dy, 4, dst_dims, dnnl_bf16, dnnl_nhwc), "conv2d descriptor"));
    if (mode == MXD_DX_SAME) {
        out = *dx_user;
    } else { /* dx on the output's grid */
        const dnnl_dims_t sub = {dst_dims[0], (dnnl_dim_t)d->in_channels, dst_dims[2], dst_dims[3]};
        TRY(mxd_check(dnnl_memory_desc_init_by_tag(&out, 4, sub, dx_type, dnnl_nhwc), "conv2d descriptor"));
    }
    const size_t parts = mode == MXD_DX_PARITY ? 4 : 1;
    for (size_t k = 0; k < parts; k++) {
        mxd_dx_part *part = &f->part[k];
        part_shape(mode, d, k, part);
        const dnnl_dims_t wdims = {(dnnl_dim_t)d->in_channels, (dnnl_dim_t)d->out_channels, (dnnl_dim_t)part->th,
                                   (dnnl_dim_t)part->tw};
        const dnnl_dims_t unit = {1, 1}, none = {0, 0}, tail = {(dnnl_dim_t)part->th - 1, (dnnl_dim_t)part->tw - 1};
        const dnnl_dims_t same_pad = {(dnnl_dim_t)d->pad_h, (dnnl_dim_t)d->pad_w};
        dnnl_memory_desc_t wei, wei_user;
        TRY(mxd_check(dnnl_memory_desc_init_by_tag(&wei, 4, wdims, dnnl_bf16, dnnl_format_tag_any), "conv2d descriptor"));
        TRY(mxd_plain_md(&wei_user, 4, wdims, dnnl_oihw));
        dnnl_convolution_desc_t cd;
        TRY(mxd_check(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &dy, &wei,
                                                         NULL, &out, unit, mode == MXD_DX_SAME ? same_pad : none,
                                                         mode == MXD_DX_SAME ? same_pad : tail),
                      "conv2d input-gradient forward descriptor"));
        const void *alternatives[1] = {&cd};
        /* Only oneDNN's AMX forward kernels (brgconv) reading dy as given pay. */
        if (mxd_prim_create_first(b, &part->prim, alternatives, 1, NULL, NULL, "conv2d input-gradient forward") != MX_OK ||
            !strstr(mxd_impl(&part->prim), "brgconv") ||
            !dnnl_memory_desc_equal(mxd_md(&part->prim, dnnl_query_src_md), &dy) ||
            !dnnl_memory_desc_equal(mxd_md(&part->prim, dnnl_query_dst_md), &out)) {
            mx_error_clear();
            mxd_dx_forward_free(f);
            return MX_OK;
        }
        TRY(mxd_port_init(b, &part->wei, &wei_user, mxd_md(&part->prim, dnnl_query_weights_md), 0, 0));
    }
    f->mode = mode, f->parts = parts;
    TRY(mxd_check(dnnl_memory_create(&f->dy, &dy, b->ctx->engine, DNNL_MEMORY_NONE), "memory"));
    TRY(mxd_check(dnnl_memory_create(&f->dx, &out, b->ctx->engine, DNNL_MEMORY_NONE), "memory"));
    f->turned_offset = mxd_reserve(b, d->in_channels * d->out_channels * d->kernel_h * d->kernel_w * sizeof(float));
    if (mode != MXD_DX_SAME) f->sub_offset = mxd_reserve(b, dnnl_memory_desc_get_size(&out));
    return MX_OK;
}

void mxd_dx_forward_free(mxd_dx_forward *f)
{
    for (size_t k = 0; k < 4; k++) {
        mxd_port_destroy(&f->part[k].wei);
        mxd_prim_destroy(&f->part[k].prim);
    }
    if (f->dy) dnnl_memory_destroy(f->dy);
    if (f->dx) dnnl_memory_destroy(f->dx);
    memset(f, 0, sizeof *f);
}

const char *mxd_dx_forward_impl(const mxd_dx_forward *f) { return f->mode ? mxd_impl(&f->part[0].prim) : ""; }

/* Part `part`'s weights, float32 [in][out][th][tw], from the layer's
 * [out][in][kh][kw]: in 16 x 16 blocks of (out, in), a transpose (a 2048 x
 * 1024 1x1 layer's writes one cache line each took 50 ms). */
static void part_weights(const mx_conv2d_desc *d, const mxd_dx_part *part, const float *w, float *out)
{
    const size_t ci = d->in_channels, co = d->out_channels, kh = d->kernel_h, kw = d->kernel_w;
    const size_t th = part->th, tw = part->tw, blocks_o = (co + 15) / 16, blocks_i = (ci + 15) / 16;
#pragma omp parallel for schedule(static) collapse(2) if (co * ci * th * tw >= 65536)
    for (size_t bo = 0; bo < blocks_o; bo++)
        for (size_t bi = 0; bi < blocks_i; bi++)
            for (size_t i = bi * 16; i < ci && i < bi * 16 + 16; i++)
                for (size_t o = bo * 16; o < co && o < bo * 16 + 16; o++)
                    for (size_t t = 0; t < th; t++)
                        for (size_t u = 0; u < tw; u++)
                            out[((i * co + o) * th + t) * tw + u] = w[((o * ci + i) * kh + part->row[t]) * kw + part->col[u]];
}

/* dx's pixels of row parity a and column parity b (NHWC, elements of
 * `bytes`) from sub, on the output's grid; with `zero_rest` the other
 * pixels are zeroed (the 1x1 stride-2 case, which reads even ones only). */
static void place(const mx_conv2d_desc *d, size_t n, size_t bytes, const void *sub, size_t a, size_t b, int zero_rest,
                  void *dx)
{
    const size_t pixel = d->in_channels * bytes, H = d->in_h, W = d->in_w, OW = d->out_w;
#pragma omp parallel for schedule(static)
    for (size_t row = 0; row < n * H; row++) {
        char *out = (char *)dx + row * W * pixel;
        const size_t h = row % H;
        if (h % 2 != a) {
            if (zero_rest) memset(out, 0, W * pixel);
            continue;
        }
        const char *in = (const char *)sub + ((row / H) * d->out_h + h / 2) * OW * pixel;
        for (size_t w = 0; w < W; w++, out += pixel)
            if (w % 2 == b) memcpy(out, in + w / 2 * pixel, pixel);
            else if (zero_rest) memset(out, 0, pixel);
    }
}

mx_status mxd_dx_forward_run(const mxd_plan *b, mxd_dx_forward *f, const mx_conv2d_desc *d, size_t n,
                             size_t dx_bytes, const float *weight, void *dy, void *dx)
{
    float *turned = mxd_at(b, f->turned_offset);
    void *sub = f->mode == MXD_DX_SAME ? dx : mxd_at(b, f->sub_offset);
    TRY(mxd_check(dnnl_memory_set_data_handle(f->dy, dy), "memory handle"));
    TRY(mxd_check(dnnl_memory_set_data_handle(f->dx, sub), "memory handle"));
    for (size_t k = 0; k < f->parts; k++) {
        mxd_dx_part *part = &f->part[k];
        part_weights(d, part, weight, turned);
        TRY(mxd_port_bind(b, &part->wei, turned));
        TRY(mxd_port_in(b, &part->wei));
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, f->dy}, {DNNL_ARG_WEIGHTS, part->wei.mem}, {DNNL_ARG_DST, f->dx}};
        TRY(mxd_exec(b, &part->prim, 3, args, "conv2d input gradient"));
        TRY(mxd_check(dnnl_stream_wait(b->ctx->stream), "conv2d input gradient"));
        if (f->mode != MXD_DX_SAME) place(d, n, dx_bytes, sub, part->a, part->b, f->mode == MXD_DX_SPREAD, dx);
    }
    return MX_OK;
}
