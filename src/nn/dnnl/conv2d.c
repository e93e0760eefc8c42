/* oneDNN 2-D convolution: forward, backward data, backward weights (+ bias),
 * on the caller's NCHW (or nChw16c / nChw8c) / OIHW float32 buffers, internally NCHW or
 * oneDNN's preferred (blocked) layout, float32 or bfloat16. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_wgrad_amx.h"
#include "nn/dnnl/dnnl_internal.h"

struct mx_dnnl_conv2d_plan {
    mxd_plan base;
    mx_conv2d_desc d;
    size_t n;
    mx_dnnl_conv2d_options opt;
    mxd_prim fwd, bwd_data, bwd_weights;
    /* The input gradient as forward convolutions of dy (conv2d_dx.c), on
     * oneDNN's AMX forward kernels, faster than its backward-data ones:
     * taken with dy given in bfloat16 (bf16_dy) on NHWC. */
    mxd_dx_forward dxf;
    mxd_port f_src, f_wei, f_bias, f_dst;   /* forward */
    mxd_port d_ddst, d_wei, d_dsrc;         /* backward data */
    mxd_port w_src, w_ddst, w_dwei, w_dbias; /* backward weights */
    int ddst_shared; /* both backward primitives read dy in one reordered layout */
    int bf16_dy;     /* both backward primitives read dy as bfloat16 nChw16c: the caller may pass it so */
    size_t kept_x_bytes; /* forward and backward weights read x in one reordered layout: the caller may keep it */
    int bf16_x;          /* ... and that layout is bfloat16 nChw16c: the caller may give x so */
    dnnl_memory_t addend;  /* post_add: the binary post-op's second input, in y's layout */
    /* The weights' gradient from bfloat16 NHWC x and dy on AMX (conv_wgrad_amx.c)
     * instead of oneDNN's primitive, its scratch region, the threads it is sized for. */
    int wgrad_amx, wgrad_threads;
    size_t wgrad_offset;
    int scales_weights;  /* f_wei's reorder takes a scale per output channel (opt.weight_scales) */
    int x_room;          /* with bf16_x: f_src's region is at offset 0, and so is one as large in the backward's
                            regions (mx_dnnl_conv2d_x_room) */
};

#define TRY(expr) do { mx_status try_ = (expr); if (try_ != MX_OK) return try_; } while (0)

void mx_dnnl_conv2d_plan_free(mx_dnnl_conv2d_plan *p)
{
    if (!p) return;
    mxd_port *ports[] = {&p->f_src, &p->f_wei, &p->f_bias, &p->f_dst, &p->d_ddst, &p->d_wei, &p->d_dsrc,
                         &p->w_src, &p->w_ddst, &p->w_dwei, &p->w_dbias};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) mxd_port_destroy(ports[i]);
    if (p->addend) dnnl_memory_destroy(p->addend);
    mxd_prim_destroy(&p->fwd);
    mxd_prim_destroy(&p->bwd_data);
    mxd_prim_destroy(&p->bwd_weights);
    mxd_dx_forward_free(&p->dxf);
    free(p);
}

const char *mx_dnnl_conv2d_plan_impl(const mx_dnnl_conv2d_plan *p, int which)
{
    if (which == 2 && p->wgrad_amx) return "mixreg:amx_bf16"; /* given x kept and dy in bfloat16 */
    if (which == 1 && p->dxf.mode) return mxd_dx_forward_impl(&p->dxf); /* given dy in bfloat16 */
    return mxd_impl(which == 0 ? &p->fwd : which == 1 ? &p->bwd_data : &p->bwd_weights);
}

/* The user (plain f32) and primitive-request descriptors of the plan's tensors. */
typedef struct {
    dnnl_memory_desc_t src, wei, bias, dst;       /* plain f32: the caller's */
    dnnl_memory_desc_t y, dx;                     /* the caller's y and dx: dst and src, or bf16 (y_bf16, dx_bf16) */
    dnnl_memory_desc_t q_src, q_wei, q_dst;       /* inputs' request (may be bf16 / any) */
    dnnl_memory_desc_t q_fsrc, q_fwei, q_fdst;    /* outputs' request (f32, maybe any; y bf16 with y_bf16) */
    dnnl_memory_desc_t q_dsrc;                    /* dx's request: q_fsrc, or bf16 with dx_bf16 */
    dnnl_dims_t strides, pad_l, pad_r;
} conv_mds;

static dnnl_format_tag_t act_tag(mx_dnnl_act_layout layout)
{
    return layout == MX_DNNL_ACT_NCHW16C  ? dnnl_nChw16c
           : layout == MX_DNNL_ACT_NCHW8C ? dnnl_nChw8c
           : layout == MX_DNNL_ACT_NHWC_BF16 || layout == MX_DNNL_ACT_NHWC ? dnnl_nhwc
                                          : dnnl_nchw;
}

/* The caller's descriptor of an activation in `layout`: float32, or bfloat16 for NHWC_BF16. */
static mx_status act_md(dnnl_memory_desc_t *md, const dnnl_dims_t dims, mx_dnnl_act_layout layout)
{
    if (layout != MX_DNNL_ACT_NHWC_BF16) return mxd_plain_md(md, 4, dims, act_tag(layout));
    return mxd_check(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_bf16, dnnl_nhwc), "conv2d descriptor");
}

static mx_status make_mds(const mx_dnnl_conv2d_plan *p, conv_mds *m)
{
    const mx_conv2d_desc *d = &p->d;
    dnnl_dims_t src = {(dnnl_dim_t)p->n, (dnnl_dim_t)d->in_channels, (dnnl_dim_t)d->in_h, (dnnl_dim_t)d->in_w};
    dnnl_dims_t wei = {(dnnl_dim_t)d->out_channels, (dnnl_dim_t)d->in_channels, (dnnl_dim_t)d->kernel_h,
                       (dnnl_dim_t)d->kernel_w};
    dnnl_dims_t bias = {(dnnl_dim_t)d->out_channels};
    dnnl_dims_t dst = {(dnnl_dim_t)p->n, (dnnl_dim_t)d->out_channels, (dnnl_dim_t)d->out_h, (dnnl_dim_t)d->out_w};
    TRY(act_md(&m->src, src, p->opt.src_layout));
    TRY(mxd_plain_md(&m->wei, 4, wei, dnnl_oihw));
    TRY(mxd_plain_md(&m->bias, 1, bias, dnnl_a));
    TRY(act_md(&m->dst, dst, p->opt.dst_layout));
    const int blocked = p->opt.layout == MX_DNNL_LAYOUT_BLOCKED;
    const dnnl_data_type_t in_t = p->opt.precision == MX_DNNL_BF16 ? dnnl_bf16 : dnnl_f32;
    const dnnl_format_tag_t act = blocked ? dnnl_format_tag_any : dnnl_nchw;
    const dnnl_format_tag_t w = blocked ? dnnl_format_tag_any : dnnl_oihw;
    /* An NHWC_BF16 plan asks for nhwc on both sides: the layout of oneDNN's
     * AMX kernels (brgconv), which it picks for "any" there too, while on
     * AVX-512 BF16 without AMX "any" would give nChw16c and reorders. So does
     * one with a float32 NHWC side (the training's layout with AMX), for its
     * backward too: then nothing but the precision is converted. */
    const int nhwc = p->opt.src_layout == MX_DNNL_ACT_NHWC_BF16 || p->opt.dst_layout == MX_DNNL_ACT_NHWC_BF16 ||
                     (blocked && (p->opt.src_layout == MX_DNNL_ACT_NHWC || p->opt.dst_layout == MX_DNNL_ACT_NHWC));
    const dnnl_format_tag_t act_q = nhwc ? dnnl_nhwc : act;
    TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->q_src, 4, src, in_t, act_q), "conv2d descriptor"));
    TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->q_wei, 4, wei, in_t, w), "conv2d descriptor"));
    TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->q_dst, 4, dst, in_t, act_q), "conv2d descriptor"));
    TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->q_fsrc, 4, src, dnnl_f32, act_q), "conv2d descriptor"));
    TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->q_dsrc, 4, src, p->opt.dx_bf16 ? dnnl_bf16 : dnnl_f32, act_q),
                  "conv2d descriptor"));
    TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->q_fwei, 4, wei, dnnl_f32, w), "conv2d descriptor"));
    if (p->opt.dst_layout == MX_DNNL_ACT_NHWC_BF16) m->q_fdst = m->dst;
    else TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->q_fdst, 4, dst, p->opt.y_bf16 ? dnnl_bf16 : dnnl_f32, act_q),
                       "conv2d descriptor"));
    m->y = m->dst, m->dx = m->src;
    if (p->opt.y_bf16)
        TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->y, 4, dst, dnnl_bf16, act_tag(p->opt.dst_layout)),
                      "conv2d descriptor"));
    if (p->opt.dx_bf16)
        TRY(mxd_check(dnnl_memory_desc_init_by_tag(&m->dx, 4, src, dnnl_bf16, act_tag(p->opt.src_layout)),
                      "conv2d descriptor"));
    m->strides[0] = (dnnl_dim_t)d->stride_h;
    m->strides[1] = (dnnl_dim_t)d->stride_w;
    /* Symmetric padding as PyTorch passes it; oneDNN checks the output size
     * with the same floor division, so windows past the end are never formed. */
    m->pad_l[0] = m->pad_r[0] = (dnnl_dim_t)d->pad_h;
    m->pad_l[1] = m->pad_r[1] = (dnnl_dim_t)d->pad_w;
    return MX_OK;
}

static dnnl_alg_kind_t algorithm(mx_dnnl_conv_algorithm a)
{
    return a == MX_DNNL_CONV_WINOGRAD ? dnnl_convolution_winograd : dnnl_convolution_direct;
}

static mx_status build(mx_dnnl_conv2d_plan *p)
{
    conv_mds m;
    TRY(make_mds(p, &m));
    mxd_plan *b = &p->base;
    const int bias = p->opt.has_bias;

    /* cd[0] the algorithm asked for, cd[1] the direct fallback (the same when
     * direct was asked). Inference-only plans too ask for forward_training:
     * oneDNN 2.6 picks other kernels for forward_inference, which made
     * resnet20's eval forward slower here (29.7 against 25.6 ms a batch of 128). */
    dnnl_convolution_desc_t cd[2];
    const void *alternatives[2] = {&cd[0], &cd[1]};
    for (int k = 0; k < 2; k++)
        TRY(mxd_check(dnnl_convolution_forward_desc_init(
                          &cd[k], dnnl_forward_training,
                          algorithm(k ? MX_DNNL_CONV_DIRECT : p->opt.fwd_algorithm), &m.q_src, &m.q_wei,
                          bias ? &m.bias : NULL, &m.q_fdst, m.strides, m.pad_l, m.pad_r),
                      "conv2d forward descriptor"));
    dnnl_post_ops_t post_ops = NULL;
    if (p->opt.post_add || p->opt.post_relu) {
        TRY(mxd_check(dnnl_post_ops_create(&post_ops), "conv2d post-ops"));
        mx_status st = MX_OK;
        /* Into bfloat16 nhwc the add is a sum post-op (y += the result, the
         * addend copied into y first): with a binary add oneDNN 2.6 leaves
         * its AMX brgconv kernels for slower ones (0.75-0.79 against
         * 0.47-0.51 ms on resnet20's 16-channel layers, batch 128). */
        if (p->opt.post_add && p->opt.dst_layout == MX_DNNL_ACT_NHWC_BF16)
            st = mxd_check(dnnl_post_ops_append_sum(post_ops, 1.0f), "conv2d add post-op");
        else if (p->opt.post_add)
            st = mxd_check(dnnl_post_ops_append_binary(post_ops, dnnl_binary_add, &m.dst), "conv2d add post-op");
        if (st == MX_OK && p->opt.post_relu)
            st = mxd_check(dnnl_post_ops_append_eltwise(post_ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f),
                           "conv2d ReLU post-op");
        if (st == MX_OK) st = mxd_prim_create_first(b, &p->fwd, alternatives, 2, NULL, post_ops, "conv2d forward");
        dnnl_post_ops_destroy(post_ops);
        TRY(st);
    } else {
        TRY(mxd_prim_create_first(b, &p->fwd, alternatives, 2, NULL, NULL, "conv2d forward"));
    }
    TRY(mxd_port_init(b, &p->f_src, &m.src, mxd_md(&p->fwd, dnnl_query_src_md), 0, 0));
    p->scales_weights = p->opt.weight_scales && p->opt.inference_only &&
                        mxd_port_init_scaled(b, &p->f_wei, &m.wei, mxd_md(&p->fwd, dnnl_query_weights_md)) == MX_OK;
    if (!p->scales_weights) TRY(mxd_port_init(b, &p->f_wei, &m.wei, mxd_md(&p->fwd, dnnl_query_weights_md), 0, 0));
    if (bias) TRY(mxd_port_init(b, &p->f_bias, &m.bias, mxd_md_at(&p->fwd, dnnl_query_weights_md, 1), 0, 0));
    TRY(mxd_port_init(b, &p->f_dst, &m.y, mxd_md(&p->fwd, dnnl_query_dst_md), 1, 0));
    /* The add post-op reads the addend in the primitive's y layout: it must be the caller's. */
    if (p->opt.post_add) {
        if (mxd_port_reorders(&p->f_dst))
            return mx_error_set(MX_ERR_ARG, "conv2d plan: the add post-op needs y in the primitive's own layout");
        TRY(mxd_check(dnnl_memory_create(&p->addend, &m.dst, b->ctx->engine, DNNL_MEMORY_NONE), "memory"));
    }
    if (p->opt.inference_only) return mxd_plan_finish(b);
    for (int k = 0; k < 2; k++)
        TRY(mxd_check(dnnl_convolution_backward_data_desc_init(
                          &cd[k], algorithm(k ? MX_DNNL_CONV_DIRECT : p->opt.bwd_data_algorithm), &m.q_dsrc,
                          &m.q_wei, &m.q_dst, m.strides, m.pad_l, m.pad_r),
                      "conv2d backward data descriptor"));
    TRY(mxd_prim_create_first(b, &p->bwd_data, alternatives, 2, p->fwd.pd, NULL, "conv2d backward data"));
    for (int k = 0; k < 2; k++)
        TRY(mxd_check(dnnl_convolution_backward_weights_desc_init(
                          &cd[k], algorithm(k ? MX_DNNL_CONV_DIRECT : p->opt.bwd_weights_algorithm), &m.q_src,
                          &m.q_fwei, bias ? &m.bias : NULL, &m.q_dst, m.strides, m.pad_l, m.pad_r),
                      "conv2d backward weights descriptor"));
    TRY(mxd_prim_create_first(b, &p->bwd_weights, alternatives, 2, p->fwd.pd, NULL,
                              "conv2d backward weights"));
    const dnnl_memory_desc_t *f_src = mxd_md(&p->fwd, dnnl_query_src_md),
                             *w_src = mxd_md(&p->bwd_weights, dnnl_query_src_md);
    if (p->opt.precision == MX_DNNL_BF16 && mxd_port_reorders(&p->f_src) && !dnnl_memory_desc_equal(&m.src, w_src) &&
        dnnl_memory_desc_equal(f_src, w_src))
        p->kept_x_bytes = dnnl_memory_desc_get_size(f_src);
    /* The caller's own layout in bfloat16: its kernels write that (cnn_cpu_exec.c). */
    if (p->kept_x_bytes && (p->opt.src_layout == MX_DNNL_ACT_NCHW16C || p->opt.src_layout == MX_DNNL_ACT_NHWC)) {
        dnnl_memory_desc_t bf16_src;
        TRY(mxd_check(dnnl_memory_desc_init_by_tag(&bf16_src, 4, m.src.dims, dnnl_bf16, act_tag(p->opt.src_layout)),
                      "conv2d descriptor"));
        p->bf16_x = dnnl_memory_desc_equal(f_src, &bf16_src);
    }
    if (p->opt.precision == MX_DNNL_BF16 &&
        (p->opt.dst_layout == MX_DNNL_ACT_NCHW16C || p->opt.dst_layout == MX_DNNL_ACT_NHWC)) {
        dnnl_memory_desc_t bf16_dst;
        TRY(mxd_check(dnnl_memory_desc_init_by_tag(&bf16_dst, 4, m.dst.dims, dnnl_bf16, act_tag(p->opt.dst_layout)),
                      "conv2d descriptor"));
        p->bf16_dy = dnnl_memory_desc_equal(mxd_md(&p->bwd_data, dnnl_query_diff_dst_md), &bf16_dst) &&
                     dnnl_memory_desc_equal(mxd_md(&p->bwd_weights, dnnl_query_diff_dst_md), &bf16_dst);
    }

    /* The backward's regions: no call reads what the forward left in the
     * scratch, so they start again at 0. Those of the bfloat16 training's
     * hand-offs first, x's room (at the forward's x region, the room
     * mx_dnnl_conv2d_x_room offers) and mixreg's own kernels' scratch; then
     * the reorders that hand-off skips (x kept, dy given in bfloat16), which
     * it then never touches. The context's scratch is every plan's, and only
     * the pages some plan touches become resident: resnet20-bf16's 17 MB
     * scratch had 9.8 MB resident with the reorders first, 5.4 now. */
    mxd_begin_phase(b);
    p->x_room = p->bf16_x && p->f_src.offset == 0 && mxd_reserve(b, p->kept_x_bytes) == 0;
    /* With both operands as bfloat16 NHWC (the training's layout with AMX),
     * the weights' gradient of a 3x3 or 1x1 convolution is mixreg's own:
     * oneDNN 2.6's AMX kernel took 1.3 ms for resnet20's 64-channel layers,
     * whose forward takes 0.35, and 2-4x mixreg's on resnet50's 1x1 layers
     * (BENCHMARKS.md, bench/wgrad_bench.c). Not below 32 x 32 channels:
     * there the packing costs as much as the products, and oneDNN's kernel
     * was as fast (16 -> 16 at 32x32, batch 128: 0.77 against 0.83 ms) or
     * faster (16 -> 32 stride 2: 0.77 against 0.69; on another AMX machine
     * 1.75 against 1.45 for 16 -> 16). */
    if (p->bf16_x && p->bf16_dy && !bias && !p->opt.onednn_backward && p->opt.src_layout == MX_DNNL_ACT_NHWC &&
        p->opt.dst_layout == MX_DNNL_ACT_NHWC && p->d.in_channels * p->d.out_channels >= 32 * 32 &&
        mx_wgrad_amx_suits(&p->d) && mx_wgrad_amx_available()) {
        p->wgrad_amx = 1;
        p->wgrad_threads = omp_get_max_threads();
        p->wgrad_offset = mxd_reserve(b, mx_wgrad_amx_scratch_bytes(&p->d, p->n, p->wgrad_threads));
    }
    if (p->bf16_dy && !p->opt.onednn_backward && p->opt.src_layout == MX_DNNL_ACT_NHWC &&
        p->opt.dst_layout == MX_DNNL_ACT_NHWC)
        TRY(mxd_dx_forward_build(b, &p->dxf, &p->d, m.dst.dims, &m.dx, m.q_dsrc.data_type));
    TRY(mxd_port_init(b, &p->d_wei, &m.wei, mxd_md(&p->bwd_data, dnnl_query_weights_md), 0, 0));
    TRY(mxd_port_init(b, &p->w_dwei, &m.wei, mxd_md(&p->bwd_weights, dnnl_query_diff_weights_md), 1, 1));
    if (bias)
        TRY(mxd_port_init(b, &p->w_dbias, &m.bias, mxd_md_at(&p->bwd_weights, dnnl_query_diff_weights_md, 1), 1, 1));
    TRY(mxd_port_init(b, &p->d_dsrc, &m.dx, mxd_md(&p->bwd_data, dnnl_query_diff_src_md), 1, 0));
    TRY(mxd_port_init(b, &p->d_ddst, &m.dst, mxd_md(&p->bwd_data, dnnl_query_diff_dst_md), 0, 0));
    TRY(mxd_port_init(b, &p->w_ddst, &m.dst, mxd_md(&p->bwd_weights, dnnl_query_diff_dst_md), 0, 0));
    TRY(mxd_port_init(b, &p->w_src, &m.src, w_src, 0, 0));
    p->ddst_shared = mxd_port_reorders(&p->d_ddst) && mxd_port_reorders(&p->w_ddst) &&
                     dnnl_memory_desc_equal(mxd_md(&p->bwd_data, dnnl_query_diff_dst_md),
                                            mxd_md(&p->bwd_weights, dnnl_query_diff_dst_md));
    return mxd_plan_finish(b);
}

mx_status mx_dnnl_conv2d_plan_create(mx_dnnl_context *ctx, const mx_conv2d_desc *d, size_t n,
                                     const mx_dnnl_conv2d_options *opt, mx_dnnl_conv2d_plan **out)
{
    *out = NULL;
    mx_conv2d_desc checked = *d;
    TRY(mx_conv2d_setup(&checked));
    if (checked.out_h != d->out_h || checked.out_w != d->out_w)
        return mx_error_set(MX_ERR_ARG, "conv2d plan: the descriptor was not set up (mx_conv2d_setup)");
    if (!n) return mx_error_set(MX_ERR_ARG, "conv2d plan: batch size 0");
    if (opt && ((opt->layout != MX_DNNL_LAYOUT_NCHW && opt->layout != MX_DNNL_LAYOUT_BLOCKED) ||
                (opt->precision != MX_DNNL_F32 && opt->precision != MX_DNNL_BF16) ||
                (unsigned)opt->src_layout > MX_DNNL_ACT_NHWC || (unsigned)opt->dst_layout > MX_DNNL_ACT_NHWC ||
                (unsigned)opt->fwd_algorithm > MX_DNNL_CONV_WINOGRAD ||
                (unsigned)opt->bwd_data_algorithm > MX_DNNL_CONV_WINOGRAD ||
                (unsigned)opt->bwd_weights_algorithm > MX_DNNL_CONV_WINOGRAD))
        return mx_error_set(MX_ERR_ARG, "conv2d plan: unknown layout, precision or algorithm");
    if (opt && ((mx_dnnl_act_block(opt->src_layout) && d->in_channels % mx_dnnl_act_block(opt->src_layout)) ||
                (mx_dnnl_act_block(opt->dst_layout) && d->out_channels % mx_dnnl_act_block(opt->dst_layout))))
        return mx_error_set(MX_ERR_ARG, "conv2d plan: a blocked layout needs a multiple of its block of channels");
    if (opt && (opt->src_layout == MX_DNNL_ACT_NHWC_BF16 || opt->dst_layout == MX_DNNL_ACT_NHWC_BF16) &&
        (opt->precision != MX_DNNL_BF16 || !opt->inference_only || opt->layout != MX_DNNL_LAYOUT_BLOCKED ||
         opt->src_layout == MX_DNNL_ACT_NCHW16C || opt->src_layout == MX_DNNL_ACT_NCHW8C ||
         opt->dst_layout != MX_DNNL_ACT_NHWC_BF16))
        return mx_error_set(MX_ERR_ARG, "conv2d plan: bfloat16 nhwc needs a bfloat16 inference-only plan writing nhwc");
    if (opt && opt->post_add && !opt->inference_only)
        return mx_error_set(MX_ERR_ARG, "conv2d plan: the add post-op needs an inference-only plan");
    if (opt && (opt->y_bf16 || opt->dx_bf16) &&
        (opt->precision != MX_DNNL_BF16 || opt->inference_only || opt->layout != MX_DNNL_LAYOUT_BLOCKED ||
         opt->post_add || (opt->y_bf16 && opt->dst_layout != MX_DNNL_ACT_NCHW16C && opt->dst_layout != MX_DNNL_ACT_NHWC) ||
         (opt->dx_bf16 && opt->src_layout != MX_DNNL_ACT_NCHW16C && opt->src_layout != MX_DNNL_ACT_NHWC)))
        return mx_error_set(MX_ERR_ARG, "conv2d plan: bfloat16 y or dx needs a blocked bfloat16 training plan on nChw16c "
                                        "or NHWC activations");
    mx_dnnl_conv2d_plan *p = calloc(1, sizeof *p);
    if (!p) return mx_error_set(MX_ERR_NOMEM, "conv2d plan: out of memory");
    p->base.ctx = ctx;
    p->d = checked;
    p->n = n;
    if (opt) p->opt = *opt;
    mx_status st = build(p);
    if (st != MX_OK) {
        mx_dnnl_conv2d_plan_free(p);
        return mx_error_wrap(st, "conv2d plan (%zu -> %zu channels, %zux%zu input, %zux%zu kernel, batch %zu)",
                             d->in_channels, d->out_channels, d->in_h, d->in_w, d->kernel_h, d->kernel_w, n);
    }
    *out = p;
    return MX_OK;
}

mx_status mx_dnnl_conv2d_forward(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight,
                                 const float *bias, float *y)
{
    return mx_dnnl_conv2d_forward_add(p, n, x, weight, bias, NULL, y);
}

/* The sum post-op's addend into y on every thread: resnet50's residual
 * adds copy 350 MB a batch of 32, which one thread took 35 ms of a 235 ms
 * prediction to do. */
static void copy_threaded(void *y, const void *x, size_t bytes)
{
    const size_t chunk = (size_t)1 << 20, chunks = (bytes + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t c = 0; c < chunks; c++) {
        const size_t at = c * chunk, len = bytes - at < chunk ? bytes - at : chunk;
        memcpy((char *)y + at, (const char *)x + at, len);
    }
}

size_t mx_dnnl_conv2d_prepared_bytes(const mx_dnnl_conv2d_plan *p)
{
    if (!p->fwd.pd || !mxd_port_reorders(&p->f_wei) || p->scales_weights) return 0;
    return dnnl_memory_desc_get_size(mxd_md(&p->fwd, dnnl_query_weights_md));
}

mx_status mx_dnnl_conv2d_prepare_weights(mx_dnnl_conv2d_plan *p, const float *weight, void *prepared)
{
    const size_t bytes = mx_dnnl_conv2d_prepared_bytes(p);
    if (!bytes) return mx_error_set(MX_ERR_ARG, "conv2d: the plan keeps no weights of its own layout");
    if (!weight || !prepared)
        return mx_error_set(MX_ERR_ARG, "conv2d: weights to prepare and room for them are required");
    /* Through the port's own region, so that prepared may be weight: a
     * reorder may not write over what it reads. */
    const mxd_plan *b = &p->base;
    TRY(mxd_port_bind(b, &p->f_wei, weight));
    TRY(mxd_port_in(b, &p->f_wei));
    TRY(mxd_check(dnnl_stream_wait(b->ctx->stream), "conv2d weights"));
    memcpy(prepared, mxd_at(b, p->f_wei.offset), bytes);
    return MX_OK;
}

/* x_keep: where the reordered x goes (the caller keeps it); x_given: x
 * already in the primitive's bfloat16 layout (x then unused); w_prepared:
 * the weights already in the primitive's layout (weight then unused). */
static mx_status forward(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight, const float *bias,
                         const float *addend, float *y, void *x_keep, const void *x_given, const float *weight_scales,
                         const void *w_prepared)
{
    if (!weight_scales != !p->scales_weights)
        return mx_error_set(MX_ERR_ARG, "conv2d forward: the plan %s weights with scales",
                            p->scales_weights ? "takes its" : "does not take");
    TRY(mxd_check_batch("conv2d forward", p->n, n));
    if (x_keep && !p->kept_x_bytes) return mx_error_set(MX_ERR_ARG, "conv2d forward: the plan keeps no copy of x");
    if (x_given && !p->bf16_x) return mx_error_set(MX_ERR_ARG, "conv2d forward: the plan takes no bfloat16 x");
    if ((!x && !x_given) || (!weight && !w_prepared) || !y)
        return mx_error_set(MX_ERR_ARG, "conv2d forward: x, weight and y are required");
    if (!bias != !p->opt.has_bias)
        return mx_error_set(MX_ERR_ARG, "conv2d forward: the plan was made %s a bias",
                            p->opt.has_bias ? "with" : "without");
    if (!addend != !p->opt.post_add)
        return mx_error_set(MX_ERR_ARG, "conv2d forward: the plan was made %s an add post-op",
                            p->opt.post_add ? "with" : "without");
    const mxd_plan *b = &p->base;
    if (w_prepared) {
        if (!mx_dnnl_conv2d_prepared_bytes(p))
            return mx_error_set(MX_ERR_ARG, "conv2d forward: the plan keeps no weights of its own layout");
        TRY(mxd_check(dnnl_memory_set_data_handle(p->f_wei.mem, (void *)(uintptr_t)w_prepared), "memory handle"));
    } else {
        TRY(mxd_port_bind(b, &p->f_wei, weight));
    }
    TRY(mxd_port_bind(b, &p->f_dst, y));
    if (x_given) {
        TRY(mxd_check(dnnl_memory_set_data_handle(p->f_src.mem, (void *)(uintptr_t)x_given), "memory handle"));
    } else {
        TRY(mxd_port_bind(b, &p->f_src, x));
        if (x_keep) TRY(mxd_check(dnnl_memory_set_data_handle(p->f_src.mem, x_keep), "memory handle"));
        TRY(mxd_port_in(b, &p->f_src));
    }
    if (weight_scales) TRY(mxd_port_scales(&p->f_wei, weight_scales));
    if (!w_prepared) TRY(mxd_port_in(b, &p->f_wei));
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, p->f_src.mem},
                               {DNNL_ARG_WEIGHTS, p->f_wei.mem},
                               {DNNL_ARG_DST, p->f_dst.mem}};
    int nargs = 3;
    if (bias) {
        TRY(mxd_port_bind(b, &p->f_bias, bias));
        TRY(mxd_port_in(b, &p->f_bias));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->f_bias.mem};
    }
    if (addend && p->opt.dst_layout == MX_DNNL_ACT_NHWC_BF16) {
        if (addend != y) copy_threaded(y, addend, dnnl_memory_desc_get_size(mxd_md(&p->fwd, dnnl_query_dst_md)));
    } else if (addend) {
        TRY(mxd_check(dnnl_memory_set_data_handle(p->addend, (void *)(uintptr_t)addend), "memory handle"));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, p->addend};
    }
    TRY(mxd_exec(b, &p->fwd, nargs, args, "conv2d forward"));
    TRY(mxd_port_out(b, &p->f_dst, y));
    return mxd_check(dnnl_stream_wait(b->ctx->stream), "conv2d forward");
}

mx_status mx_dnnl_conv2d_forward_add(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight,
                                     const float *bias, const float *addend, float *y)
{
    return forward(p, n, x, weight, bias, addend, y, NULL, NULL, NULL, NULL);
}

mx_status mx_dnnl_conv2d_forward_prepared(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const void *prepared,
                                          const float *bias, const float *addend, float *y)
{
    if (!prepared) return mx_error_set(MX_ERR_ARG, "conv2d forward: the prepared weights are required");
    return forward(p, n, x, NULL, bias, addend, y, NULL, NULL, NULL, prepared);
}

size_t mx_dnnl_conv2d_kept_x_bytes(const mx_dnnl_conv2d_plan *p) { return p->kept_x_bytes; }

mx_status mx_dnnl_conv2d_forward_keep_x(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight,
                                        const float *bias, float *y, void *x_keep)
{
    return forward(p, n, x, weight, bias, NULL, y, x_keep, NULL, NULL, NULL);
}

int mx_dnnl_conv2d_takes_bf16_x(const mx_dnnl_conv2d_plan *p) { return p->bf16_x; }

void *mx_dnnl_conv2d_x_room(const mx_dnnl_conv2d_plan *p)
{
    return p->bf16_x && p->x_room ? mxd_at(&p->base, 0) : NULL;
}

mx_status mx_dnnl_conv2d_forward_bf16_x(mx_dnnl_conv2d_plan *p, size_t n, const uint16_t *x, const float *weight,
                                        const float *bias, float *y)
{
    return forward(p, n, NULL, weight, bias, NULL, y, NULL, x, NULL, NULL);
}

mx_status mx_dnnl_conv2d_forward_nhwc(mx_dnnl_conv2d_plan *p, size_t n, const void *x, const float *weight,
                                      const float *bias, const void *addend, void *y)
{
    if (p->opt.dst_layout != MX_DNNL_ACT_NHWC_BF16)
        return mx_error_set(MX_ERR_ARG, "conv2d forward: the plan does not write bfloat16 nhwc");
    /* The ports only bind and reorder these buffers, whatever their element type. */
    return forward(p, n, x, weight, bias, addend, y, NULL, NULL, NULL, NULL);
}

int mx_dnnl_conv2d_scales_weights(const mx_dnnl_conv2d_plan *p) { return p->scales_weights; }

mx_status mx_dnnl_conv2d_forward_nhwc_scaled(mx_dnnl_conv2d_plan *p, size_t n, const void *x, const float *weight,
                                             const float *weight_scales, const float *bias, const void *addend,
                                             void *y)
{
    if (p->opt.dst_layout != MX_DNNL_ACT_NHWC_BF16)
        return mx_error_set(MX_ERR_ARG, "conv2d forward: the plan does not write bfloat16 nhwc");
    if (!weight_scales) return mx_error_set(MX_ERR_ARG, "conv2d forward: weight_scales is required");
    return forward(p, n, x, weight, bias, addend, y, NULL, NULL, weight_scales, NULL);
}

int mx_dnnl_conv2d_takes_bf16_dy(const mx_dnnl_conv2d_plan *p) { return p->bf16_dy; }

/* The backward from dy as the caller holds it (float32) or, with dy_bf16,
 * already as the primitives read it (bfloat16 nChw16c): no reorder then. */
static mx_status backward(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const void *x_kept, const float *weight,
                          const void *dy, int dy_bf16, float *dx, float *dweight, float *dbias)
{
    TRY(mxd_check_batch("conv2d backward", p->n, n));
    if (p->opt.inference_only) return mx_error_set(MX_ERR_ARG, "conv2d backward: the plan is inference-only");
    if (dbias && !p->opt.has_bias) return mx_error_set(MX_ERR_ARG, "conv2d backward: dbias for a plan without bias");
    if (dy_bf16 && !p->bf16_dy) return mx_error_set(MX_ERR_ARG, "conv2d backward: the plan takes no bfloat16 dy");
    if (x_kept && !p->kept_x_bytes) return mx_error_set(MX_ERR_ARG, "conv2d backward: the plan keeps no copy of x");
    if (!dx && !dweight && !dbias) return MX_OK;
    if (!dy || (dx && !weight) || ((dweight || dbias) && !x && !x_kept))
        return mx_error_set(MX_ERR_ARG, "conv2d backward: dy, and x or weight for the gradients asked, are required");
    const mxd_plan *b = &p->base;
    void *dy_mem = (void *)(uintptr_t)dy; /* oneDNN's handles are not const; dy is only read */
    if (dx && dy_bf16 && p->dxf.mode) {
        TRY(mxd_dx_forward_run(b, &p->dxf, &p->d, n, p->opt.dx_bf16 ? sizeof(uint16_t) : sizeof(float), weight, dy_mem,
                               dx));
    } else if (dx) {
        if (dy_bf16) {
            TRY(mxd_check(dnnl_memory_set_data_handle(p->d_ddst.mem, dy_mem), "memory handle"));
        } else {
            TRY(mxd_port_bind(b, &p->d_ddst, dy));
            TRY(mxd_port_in(b, &p->d_ddst));
        }
        TRY(mxd_port_bind(b, &p->d_wei, weight));
        TRY(mxd_port_bind(b, &p->d_dsrc, dx));
        TRY(mxd_port_in(b, &p->d_wei));
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, p->d_ddst.mem},
                                   {DNNL_ARG_WEIGHTS, p->d_wei.mem},
                                   {DNNL_ARG_DIFF_SRC, p->d_dsrc.mem}};
        TRY(mxd_exec(b, &p->bwd_data, 3, args, "conv2d backward data"));
        TRY(mxd_port_out(b, &p->d_dsrc, dx));
    }
    if (dweight && x_kept && dy_bf16 && p->wgrad_amx) {
        TRY(mx_wgrad_amx(&p->d, n, x_kept, dy, dweight, mxd_at(b, p->wgrad_offset), p->wgrad_threads));
    } else if (dweight || dbias) {
        TRY(mxd_port_bind(b, &p->w_dwei, dweight));
        if (x_kept) {
            TRY(mxd_check(dnnl_memory_set_data_handle(p->w_src.mem, (void *)(uintptr_t)x_kept), "memory handle"));
        } else {
            TRY(mxd_port_bind(b, &p->w_src, x));
            TRY(mxd_port_in(b, &p->w_src));
        }
        if (dy_bf16) {
            TRY(mxd_check(dnnl_memory_set_data_handle(p->w_ddst.mem, dy_mem), "memory handle"));
        } else {
            TRY(mxd_port_bind(b, &p->w_ddst, dy));
            if (dx && p->ddst_shared)
                TRY(mxd_check(dnnl_memory_set_data_handle(p->w_ddst.mem, mxd_at(b, p->d_ddst.offset)),
                              "memory handle"));
            else
                TRY(mxd_port_in(b, &p->w_ddst));
        }
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->w_src.mem},
                                   {DNNL_ARG_DIFF_DST, p->w_ddst.mem},
                                   {DNNL_ARG_DIFF_WEIGHTS, p->w_dwei.mem}};
        int nargs = 3;
        if (p->opt.has_bias) {
            TRY(mxd_port_bind(b, &p->w_dbias, dbias));
            args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, p->w_dbias.mem};
        }
        TRY(mxd_exec(b, &p->bwd_weights, nargs, args, "conv2d backward weights"));
        TRY(mxd_port_out(b, &p->w_dwei, dweight));
        if (p->opt.has_bias) TRY(mxd_port_out(b, &p->w_dbias, dbias));
    }
    return mxd_check(dnnl_stream_wait(b->ctx->stream), "conv2d backward");
}

mx_status mx_dnnl_conv2d_backward(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight,
                                  const float *dy, float *dx, float *dweight, float *dbias)
{
    return backward(p, n, x, NULL, weight, dy, 0, dx, dweight, dbias);
}

mx_status mx_dnnl_conv2d_backward_bf16(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const void *x_kept,
                                       const float *weight, const float *dy, const uint16_t *dy_bf16, float *dx,
                                       float *dweight, float *dbias)
{
    if (!dy == !dy_bf16) return mx_error_set(MX_ERR_ARG, "conv2d backward: give dy or dy_bf16, not both");
    return dy_bf16 ? backward(p, n, x, x_kept, weight, dy_bf16, 1, dx, dweight, dbias)
                   : backward(p, n, x, x_kept, weight, dy, 0, dx, dweight, dbias);
}
