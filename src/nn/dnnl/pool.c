/* oneDNN max / average pooling on NCHW float32; max pooling's argmax lives in
 * oneDNN's workspace, which the caller keeps from forward to backward. */
#include <stdint.h>
#include <stdlib.h>

#include "nn/dnnl/dnnl_internal.h"

struct mx_dnnl_pool2d_plan {
    mxd_plan base;
    mx_pool2d_desc d;
    size_t n;
    mx_dnnl_pool_kind kind;
    int inference_only;
    mxd_prim fwd, bwd;
    dnnl_memory_t x, y, dy, dx, ws;
    size_t ws_bytes;
};

#define TRY(expr) do { mx_status try_ = (expr); if (try_ != MX_OK) return try_; } while (0)

void mx_dnnl_pool2d_plan_free(mx_dnnl_pool2d_plan *p)
{
    if (!p) return;
    mxd_prim_destroy(&p->fwd);
    mxd_prim_destroy(&p->bwd);
    dnnl_memory_t mems[] = {p->x, p->y, p->dy, p->dx, p->ws};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    free(p);
}

size_t mx_dnnl_pool2d_workspace_bytes(const mx_dnnl_pool2d_plan *p) { return p->ws_bytes; }

static mx_status build(mx_dnnl_pool2d_plan *p)
{
    mxd_plan *b = &p->base;
    const mx_pool2d_desc *d = &p->d;
    dnnl_engine_t engine = b->ctx->engine;
    dnnl_memory_desc_t src, dst;
    dnnl_dims_t sdims = {(dnnl_dim_t)p->n, (dnnl_dim_t)d->channels, (dnnl_dim_t)d->in_h, (dnnl_dim_t)d->in_w};
    dnnl_dims_t ddims = {(dnnl_dim_t)p->n, (dnnl_dim_t)d->channels, (dnnl_dim_t)d->out_h, (dnnl_dim_t)d->out_w};
    TRY(mxd_plain_md(&src, 4, sdims, dnnl_nchw));
    TRY(mxd_plain_md(&dst, 4, ddims, dnnl_nchw));
    dnnl_memory_t *mems[] = {&p->x, &p->dx, &p->y, &p->dy};
    for (size_t i = 0; i < 4; i++)
        TRY(mxd_check(dnnl_memory_create(mems[i], i < 2 ? &src : &dst, engine, DNNL_MEMORY_NONE), "memory"));
    const dnnl_dims_t strides = {(dnnl_dim_t)d->stride_h, (dnnl_dim_t)d->stride_w};
    const dnnl_dims_t kernel = {(dnnl_dim_t)d->kernel_h, (dnnl_dim_t)d->kernel_w};
    /* Symmetric padding; the output size is the floor one, as in mx_pool2d_setup. */
    const dnnl_dims_t pad = {(dnnl_dim_t)d->pad_h, (dnnl_dim_t)d->pad_w};
    const dnnl_alg_kind_t alg = p->kind == MX_DNNL_POOL_MAX ? dnnl_pooling_max
                                : d->exclude_pad           ? dnnl_pooling_avg_exclude_padding
                                                           : dnnl_pooling_avg_include_padding;
    dnnl_pooling_desc_t pd;
    TRY(mxd_check(dnnl_pooling_forward_desc_init(&pd, p->inference_only ? dnnl_forward_inference
                                                                          : dnnl_forward_training,
                                                 alg, &src, &dst, strides, kernel, pad, pad),
                  "pooling forward descriptor"));
    TRY(mxd_prim_create(b, &p->fwd, &pd, NULL, "pooling forward"));
    const dnnl_memory_desc_t *ws = mxd_md(&p->fwd, dnnl_query_workspace_md);
    p->ws_bytes = ws ? dnnl_memory_desc_get_size(ws) : 0;
    if (p->ws_bytes) TRY(mxd_check(dnnl_memory_create(&p->ws, ws, engine, DNNL_MEMORY_NONE), "memory"));
    if (!p->inference_only) {
        TRY(mxd_check(dnnl_pooling_backward_desc_init(&pd, alg, &src, &dst, strides, kernel, pad, pad),
                      "pooling backward descriptor"));
        TRY(mxd_prim_create(b, &p->bwd, &pd, p->fwd.pd, "pooling backward"));
    }
    return mxd_plan_finish(b);
}

mx_status mx_dnnl_pool2d_plan_create(mx_dnnl_context *ctx, const mx_pool2d_desc *d, size_t n, mx_dnnl_pool_kind kind,
                                     int inference_only, mx_dnnl_pool2d_plan **out)
{
    *out = NULL;
    mx_pool2d_desc checked = *d;
    TRY(mx_pool2d_setup(&checked));
    if (checked.out_h != d->out_h || checked.out_w != d->out_w)
        return mx_error_set(MX_ERR_ARG, "pool2d plan: the descriptor was not set up (mx_pool2d_setup)");
    if (!n) return mx_error_set(MX_ERR_ARG, "pool2d plan: batch size 0");
    if (kind != MX_DNNL_POOL_MAX && kind != MX_DNNL_POOL_AVG) return mx_error_set(MX_ERR_ARG, "pool2d plan: bad kind");
    mx_dnnl_pool2d_plan *p = calloc(1, sizeof *p);
    if (!p) return mx_error_set(MX_ERR_NOMEM, "pool2d plan: out of memory");
    p->base.ctx = ctx;
    p->d = checked;
    p->n = n;
    p->kind = kind;
    p->inference_only = inference_only != 0;
    mx_status st = build(p);
    if (st != MX_OK) {
        mx_dnnl_pool2d_plan_free(p);
        return mx_error_wrap(st, "pool2d plan (%zu channels, %zux%zu input, %zux%zu window, batch %zu)", d->channels,
                             d->in_h, d->in_w, d->kernel_h, d->kernel_w, n);
    }
    *out = p;
    return MX_OK;
}

static mx_status set(dnnl_memory_t m, const void *buffer)
{
    return mxd_check(dnnl_memory_set_data_handle(m, (void *)(uintptr_t)buffer), "memory handle");
}

mx_status mx_dnnl_pool2d_forward(mx_dnnl_pool2d_plan *p, size_t n, const float *x, float *y, void *workspace)
{
    const char *op = "pool2d forward";
    TRY(mxd_check_batch(op, p->n, n));
    if (!x || !y) return mx_error_set(MX_ERR_ARG, "%s: x and y are required", op);
    if (p->ws_bytes && !workspace) return mx_error_set(MX_ERR_ARG, "%s: the plan needs a workspace", op);
    TRY(set(p->x, x));
    TRY(set(p->y, y));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->x}, {DNNL_ARG_DST, p->y}};
    int nargs = 2;
    if (p->ws_bytes) {
        TRY(set(p->ws, workspace));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, p->ws};
    }
    TRY(mxd_exec(&p->base, &p->fwd, nargs, args, op));
    return mxd_check(dnnl_stream_wait(p->base.ctx->stream), op);
}

mx_status mx_dnnl_pool2d_backward(mx_dnnl_pool2d_plan *p, size_t n, const void *workspace, const float *dy,
                                  float *dx)
{
    const char *op = "pool2d backward";
    TRY(mxd_check_batch(op, p->n, n));
    if (p->inference_only) return mx_error_set(MX_ERR_ARG, "%s: the plan is inference-only", op);
    if (!dy || !dx) return mx_error_set(MX_ERR_ARG, "%s: dy and dx are required", op);
    if (p->ws_bytes && !workspace) return mx_error_set(MX_ERR_ARG, "%s: the plan needs the forward's workspace", op);
    TRY(set(p->dy, dy));
    TRY(set(p->dx, dx));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, p->dy}, {DNNL_ARG_DIFF_SRC, p->dx}};
    int nargs = 2;
    if (p->ws_bytes) {
        TRY(set(p->ws, workspace));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, p->ws};
    }
    TRY(mxd_exec(&p->base, &p->bwd, nargs, args, op));
    return mxd_check(dnnl_stream_wait(p->base.ctx->stream), op);
}
