/* oneDNN inner product as nn.Linear: y [n, out] = x [n, in] weight^T + bias,
 * plain layouts throughout (weight [out, in] is oneDNN's "oi"), optionally
 * with the ReLU after it as a post-op. */
#include <stdlib.h>

#include "nn/dnnl/dnnl_internal.h"

struct mx_dnnl_linear_plan {
    mxd_plan base;
    size_t n, in, out;
    int has_bias, inference_only, relu;
    mxd_prim fwd, bwd_data, bwd_weights;
    mxd_port f_src, f_wei, f_bias, f_dst, d_ddst, d_wei, d_dsrc, w_src, w_ddst, w_dwei, w_dbias;
};

#define TRY(expr) do { mx_status try_ = (expr); if (try_ != MX_OK) return try_; } while (0)

void mx_dnnl_linear_plan_free(mx_dnnl_linear_plan *p)
{
    if (!p) return;
    mxd_port *ports[] = {&p->f_src, &p->f_wei, &p->f_bias, &p->f_dst, &p->d_ddst, &p->d_wei,
                         &p->d_dsrc, &p->w_src, &p->w_ddst, &p->w_dwei, &p->w_dbias};
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) mxd_port_destroy(ports[i]);
    mxd_prim_destroy(&p->fwd);
    mxd_prim_destroy(&p->bwd_data);
    mxd_prim_destroy(&p->bwd_weights);
    free(p);
}

static mx_status build(mx_dnnl_linear_plan *p)
{
    mxd_plan *b = &p->base;
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_dims_t sdims = {(dnnl_dim_t)p->n, (dnnl_dim_t)p->in}, wdims = {(dnnl_dim_t)p->out, (dnnl_dim_t)p->in};
    dnnl_dims_t bdims = {(dnnl_dim_t)p->out}, ddims = {(dnnl_dim_t)p->n, (dnnl_dim_t)p->out};
    TRY(mxd_plain_md(&src, 2, sdims, dnnl_nc));
    TRY(mxd_plain_md(&wei, 2, wdims, dnnl_oi));
    TRY(mxd_plain_md(&bias, 1, bdims, dnnl_a));
    TRY(mxd_plain_md(&dst, 2, ddims, dnnl_nc));
    const int has_bias = p->has_bias;
    dnnl_inner_product_desc_t ipd;
    TRY(mxd_check(dnnl_inner_product_forward_desc_init(
                      &ipd, p->inference_only ? dnnl_forward_inference : dnnl_forward_training, &src, &wei,
                      has_bias ? &bias : NULL, &dst),
                  "linear forward descriptor"));
    dnnl_post_ops_t post_ops = NULL;
    if (p->relu) {
        TRY(mxd_check(dnnl_post_ops_create(&post_ops), "linear post-ops"));
        mx_status st = mxd_check(dnnl_post_ops_append_eltwise(post_ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f),
                                 "linear ReLU post-op");
        if (st != MX_OK) {
            dnnl_post_ops_destroy(post_ops);
            return st;
        }
    }
    const void *fwd_desc = &ipd;
    mx_status made = mxd_prim_create_first(b, &p->fwd, &fwd_desc, 1, NULL, post_ops, "linear forward");
    if (post_ops) dnnl_post_ops_destroy(post_ops);
    TRY(made);
    TRY(mxd_port_init(b, &p->f_src, &src, mxd_md(&p->fwd, dnnl_query_src_md), 0, 0));
    TRY(mxd_port_init(b, &p->f_wei, &wei, mxd_md(&p->fwd, dnnl_query_weights_md), 0, 0));
    if (has_bias) TRY(mxd_port_init(b, &p->f_bias, &bias, mxd_md_at(&p->fwd, dnnl_query_weights_md, 1), 0, 0));
    TRY(mxd_port_init(b, &p->f_dst, &dst, mxd_md(&p->fwd, dnnl_query_dst_md), 1, 0));
    if (p->inference_only) return mxd_plan_finish(b);

    TRY(mxd_check(dnnl_inner_product_backward_data_desc_init(&ipd, &src, &wei, &dst), "linear backward data"));
    TRY(mxd_prim_create(b, &p->bwd_data, &ipd, p->fwd.pd, "linear backward data"));
    TRY(mxd_port_init(b, &p->d_ddst, &dst, mxd_md(&p->bwd_data, dnnl_query_diff_dst_md), 0, 0));
    TRY(mxd_port_init(b, &p->d_wei, &wei, mxd_md(&p->bwd_data, dnnl_query_weights_md), 0, 0));
    TRY(mxd_port_init(b, &p->d_dsrc, &src, mxd_md(&p->bwd_data, dnnl_query_diff_src_md), 1, 0));

    TRY(mxd_check(dnnl_inner_product_backward_weights_desc_init(&ipd, &src, &wei, has_bias ? &bias : NULL, &dst),
                  "linear backward weights"));
    TRY(mxd_prim_create(b, &p->bwd_weights, &ipd, p->fwd.pd, "linear backward weights"));
    TRY(mxd_port_init(b, &p->w_src, &src, mxd_md(&p->bwd_weights, dnnl_query_src_md), 0, 0));
    TRY(mxd_port_init(b, &p->w_ddst, &dst, mxd_md(&p->bwd_weights, dnnl_query_diff_dst_md), 0, 0));
    TRY(mxd_port_init(b, &p->w_dwei, &wei, mxd_md(&p->bwd_weights, dnnl_query_diff_weights_md), 1, 1));
    if (has_bias)
        TRY(mxd_port_init(b, &p->w_dbias, &bias, mxd_md_at(&p->bwd_weights, dnnl_query_diff_weights_md, 1), 1, 1));
    return mxd_plan_finish(b);
}

mx_status mx_dnnl_linear_plan_create(mx_dnnl_context *ctx, size_t n, size_t in, size_t out, unsigned flags,
                                     mx_dnnl_linear_plan **out_plan)
{
    *out_plan = NULL;
    if (!n || !in || !out) return mx_error_set(MX_ERR_ARG, "linear plan: zero batch, input or output size");
    mx_dnnl_linear_plan *p = calloc(1, sizeof *p);
    if (!p) return mx_error_set(MX_ERR_NOMEM, "linear plan: out of memory");
    p->base.ctx = ctx;
    p->n = n;
    p->in = in;
    p->out = out;
    p->has_bias = (flags & MX_DNNL_LINEAR_BIAS) != 0;
    p->inference_only = (flags & MX_DNNL_LINEAR_INFERENCE) != 0;
    p->relu = (flags & MX_DNNL_LINEAR_RELU) != 0;
    mx_status st = build(p);
    if (st != MX_OK) {
        mx_dnnl_linear_plan_free(p);
        return mx_error_wrap(st, "linear plan (%zu -> %zu, batch %zu)", in, out, n);
    }
    *out_plan = p;
    return MX_OK;
}

mx_status mx_dnnl_linear_forward(mx_dnnl_linear_plan *p, size_t n, const float *x, const float *weight,
                                 const float *bias, float *y)
{
    const char *op = "linear forward";
    TRY(mxd_check_batch(op, p->n, n));
    if (!x || !weight || !y) return mx_error_set(MX_ERR_ARG, "%s: x, weight and y are required", op);
    if (!bias != !p->has_bias)
        return mx_error_set(MX_ERR_ARG, "%s: the plan was made %s a bias", op, p->has_bias ? "with" : "without");
    const mxd_plan *b = &p->base;
    TRY(mxd_port_bind(b, &p->f_src, x));
    TRY(mxd_port_bind(b, &p->f_wei, weight));
    TRY(mxd_port_bind(b, &p->f_dst, y));
    TRY(mxd_port_in(b, &p->f_src));
    TRY(mxd_port_in(b, &p->f_wei));
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->f_src.mem}, {DNNL_ARG_WEIGHTS, p->f_wei.mem},
                               {DNNL_ARG_DST, p->f_dst.mem}};
    int nargs = 3;
    if (bias) {
        TRY(mxd_port_bind(b, &p->f_bias, bias));
        TRY(mxd_port_in(b, &p->f_bias));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->f_bias.mem};
    }
    TRY(mxd_exec(b, &p->fwd, nargs, args, op));
    TRY(mxd_port_out(b, &p->f_dst, y));
    return mxd_check(dnnl_stream_wait(b->ctx->stream), op);
}

mx_status mx_dnnl_linear_backward(mx_dnnl_linear_plan *p, size_t n, const float *x, const float *weight,
                                  const float *dy, float *dx, float *dweight, float *dbias)
{
    const char *op = "linear backward";
    TRY(mxd_check_batch(op, p->n, n));
    if (p->inference_only) return mx_error_set(MX_ERR_ARG, "%s: the plan is inference-only", op);
    if (dbias && !p->has_bias) return mx_error_set(MX_ERR_ARG, "%s: dbias for a plan without bias", op);
    if (!dx && !dweight && !dbias) return MX_OK;
    if (!dy || (dx && !weight) || ((dweight || dbias) && !x))
        return mx_error_set(MX_ERR_ARG, "%s: dy, and x or weight for the gradients asked, are required", op);
    const mxd_plan *b = &p->base;
    if (dx) {
        TRY(mxd_port_bind(b, &p->d_ddst, dy));
        TRY(mxd_port_bind(b, &p->d_wei, weight));
        TRY(mxd_port_bind(b, &p->d_dsrc, dx));
        TRY(mxd_port_in(b, &p->d_ddst));
        TRY(mxd_port_in(b, &p->d_wei));
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, p->d_ddst.mem}, {DNNL_ARG_WEIGHTS, p->d_wei.mem},
                                   {DNNL_ARG_DIFF_SRC, p->d_dsrc.mem}};
        TRY(mxd_exec(b, &p->bwd_data, 3, args, "linear backward data"));
        TRY(mxd_port_out(b, &p->d_dsrc, dx));
    }
    if (dweight || dbias) {
        TRY(mxd_port_bind(b, &p->w_src, x));
        TRY(mxd_port_bind(b, &p->w_ddst, dy));
        TRY(mxd_port_bind(b, &p->w_dwei, dweight));
        TRY(mxd_port_in(b, &p->w_src));
        TRY(mxd_port_in(b, &p->w_ddst));
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->w_src.mem}, {DNNL_ARG_DIFF_DST, p->w_ddst.mem},
                                   {DNNL_ARG_DIFF_WEIGHTS, p->w_dwei.mem}};
        int nargs = 3;
        if (p->has_bias) {
            TRY(mxd_port_bind(b, &p->w_dbias, dbias));
            args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, p->w_dbias.mem};
        }
        TRY(mxd_exec(b, &p->bwd_weights, nargs, args, "linear backward weights"));
        TRY(mxd_port_out(b, &p->w_dwei, dweight));
        if (p->has_bias) TRY(mxd_port_out(b, &p->w_dbias, dbias));
    }
    return mxd_check(dnnl_stream_wait(b->ctx->stream), op);
}
