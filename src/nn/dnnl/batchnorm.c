/* oneDNN 2-D batch normalisation on NCHW float32 (viewed as [n, c, 1, hw]),
 * with the reference's interface: oneDNN returns the batch mean and BIASED
 * variance; here they become save_mean / save_invstd and the PyTorch running
 * statistics update (UNBIASED variance, momentum), and the backward turns
 * save_invstd back into the variance oneDNN wants. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "nn/dnnl/dnnl_internal.h"

struct mx_dnnl_batchnorm2d_plan {
    mxd_plan base;
    size_t n, channels, hw;
    int affine;
    float eps;
    mxd_prim fwd_train, fwd_eval, bwd, bwd_eval;
    /* Plain memories on the caller's buffers (or scratch), handles set per call. */
    dnnl_memory_t x, y, dy, dx, mean, var, scale, shift, dscale, dshift;
    size_t off_mean, off_var, off_dscale, off_dshift; /* [channels] floats each */
};

#define TRY(expr) do { mx_status try_ = (expr); if (try_ != MX_OK) return try_; } while (0)

void mx_dnnl_batchnorm2d_plan_free(mx_dnnl_batchnorm2d_plan *p)
{
    if (!p) return;
    mxd_prim_destroy(&p->fwd_train);
    mxd_prim_destroy(&p->fwd_eval);
    mxd_prim_destroy(&p->bwd);
    mxd_prim_destroy(&p->bwd_eval);
    dnnl_memory_t mems[] = {p->x, p->y, p->dy, p->dx, p->mean, p->var, p->scale, p->shift, p->dscale, p->dshift};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    free(p);
}

static mx_status build(mx_dnnl_batchnorm2d_plan *p)
{
    mxd_plan *b = &p->base;
    dnnl_engine_t engine = b->ctx->engine;
    dnnl_memory_desc_t data, stat;
    dnnl_dims_t dims = {(dnnl_dim_t)p->n, (dnnl_dim_t)p->channels, 1, (dnnl_dim_t)p->hw};
    dnnl_dims_t cdims = {(dnnl_dim_t)p->channels};
    TRY(mxd_plain_md(&data, 4, dims, dnnl_nchw));
    TRY(mxd_plain_md(&stat, 1, cdims, dnnl_a));
    dnnl_memory_t *data_mems[] = {&p->x, &p->y, &p->dy, &p->dx};
    for (size_t i = 0; i < 4; i++)
        TRY(mxd_check(dnnl_memory_create(data_mems[i], &data, engine, DNNL_MEMORY_NONE), "memory"));
    dnnl_memory_t *stat_mems[] = {&p->mean, &p->var, &p->scale, &p->shift, &p->dscale, &p->dshift};
    for (size_t i = 0; i < 6; i++)
        TRY(mxd_check(dnnl_memory_create(stat_mems[i], &stat, engine, DNNL_MEMORY_NONE), "memory"));

    const unsigned affine = p->affine ? (unsigned)(dnnl_use_scale | dnnl_use_shift) : 0u;
    dnnl_batch_normalization_desc_t bd;
    TRY(mxd_check(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, &data, p->eps, affine),
                  "batchnorm forward descriptor"));
    TRY(mxd_prim_create(b, &p->fwd_train, &bd, NULL, "batchnorm forward (training)"));
    TRY(mxd_check(dnnl_batch_normalization_forward_desc_init(&bd, dnnl_forward_training, &data, p->eps,
                                                             affine | dnnl_use_global_stats),
                  "batchnorm forward descriptor"));
    TRY(mxd_prim_create(b, &p->fwd_eval, &bd, NULL, "batchnorm forward (eval)"));
    const dnnl_prop_kind_t bprop = p->affine ? dnnl_backward : dnnl_backward_data;
    TRY(mxd_check(dnnl_batch_normalization_backward_desc_init(&bd, bprop, &data, &data, p->eps, affine),
                  "batchnorm backward descriptor"));
    TRY(mxd_prim_create(b, &p->bwd, &bd, p->fwd_train.pd, "batchnorm backward"));
    TRY(mxd_check(dnnl_batch_normalization_backward_desc_init(&bd, bprop, &data, &data, p->eps,
                                                              affine | dnnl_use_global_stats),
                  "batchnorm backward descriptor"));
    TRY(mxd_prim_create(b, &p->bwd_eval, &bd, p->fwd_eval.pd, "batchnorm backward (eval)"));

    const size_t cbytes = p->channels * sizeof(float);
    p->off_mean = mxd_reserve(b, cbytes);
    p->off_var = mxd_reserve(b, cbytes);
    p->off_dscale = mxd_reserve(b, cbytes);
    p->off_dshift = mxd_reserve(b, cbytes);
    return mxd_plan_finish(b);
}

mx_status mx_dnnl_batchnorm2d_plan_create(mx_dnnl_context *ctx, size_t n, size_t channels, size_t hw, int affine,
                                          float eps, mx_dnnl_batchnorm2d_plan **out)
{
    *out = NULL;
    if (!n || !channels || !hw) return mx_error_set(MX_ERR_ARG, "batchnorm plan: zero batch, channel or plane size");
    if (!(eps >= 0.0f)) return mx_error_set(MX_ERR_ARG, "batchnorm plan: eps must be >= 0");
    mx_dnnl_batchnorm2d_plan *p = calloc(1, sizeof *p);
    if (!p) return mx_error_set(MX_ERR_NOMEM, "batchnorm plan: out of memory");
    p->base.ctx = ctx;
    p->n = n;
    p->channels = channels;
    p->hw = hw;
    p->affine = affine != 0;
    p->eps = eps;
    mx_status st = build(p);
    if (st != MX_OK) {
        mx_dnnl_batchnorm2d_plan_free(p);
        return mx_error_wrap(st, "batchnorm plan (batch %zu, %zu channels, %zu per plane)", n, channels, hw);
    }
    *out = p;
    return MX_OK;
}

static mx_status set(dnnl_memory_t m, const void *buffer)
{
    return mxd_check(dnnl_memory_set_data_handle(m, (void *)(uintptr_t)buffer), "memory handle");
}

/* The affine parameters' presence against the plan. */
static mx_status check_affine(const mx_dnnl_batchnorm2d_plan *p, const char *op, const float *gamma,
                              const float *beta, int need_beta, const float *dgamma, const float *dbeta)
{
    if (p->affine ? (!gamma || (need_beta && !beta)) : (gamma || beta || dgamma || dbeta))
        return mx_error_set(MX_ERR_ARG, "%s: the plan is %s: gamma%s %s", op, p->affine ? "affine" : "not affine",
                            need_beta ? " and beta" : "", p->affine ? "required" : "(and their gradients) must be NULL");
    return MX_OK;
}

mx_status mx_dnnl_batchnorm2d_forward_train(mx_dnnl_batchnorm2d_plan *p, size_t n, const float *x,
                                            const float *gamma, const float *beta, float momentum,
                                            float *running_mean, float *running_var, float *y, float *save_mean,
                                            float *save_invstd)
{
    const char *op = "batchnorm forward (training)";
    TRY(mxd_check_batch(op, p->n, n));
    TRY(check_affine(p, op, gamma, beta, 1, NULL, NULL));
    if (!x || !y) return mx_error_set(MX_ERR_ARG, "%s: x and y are required", op);
    const mxd_plan *b = &p->base;
    float *mean = save_mean ? save_mean : mxd_at(b, p->off_mean);
    float *var = mxd_at(b, p->off_var);
    TRY(set(p->x, x));
    TRY(set(p->y, y));
    TRY(set(p->mean, mean));
    TRY(set(p->var, var));
    dnnl_exec_arg_t args[8] = {{DNNL_ARG_SRC, p->x}, {DNNL_ARG_DST, p->y}, {DNNL_ARG_MEAN, p->mean},
                               {DNNL_ARG_VARIANCE, p->var}};
    int nargs = 4;
    if (p->affine) {
        TRY(set(p->scale, gamma));
        TRY(set(p->shift, beta));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCALE, p->scale};
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, p->shift};
    }
    TRY(mxd_exec(b, &p->fwd_train, nargs, args, op));
    TRY(mxd_check(dnnl_stream_wait(b->ctx->stream), op));
    const size_t m = n * p->hw;
    const double correction = m > 1 ? (double)m / (double)(m - 1) : 1.0;
    for (size_t c = 0; c < p->channels; c++) {
        if (save_invstd) save_invstd[c] = (float)(1.0 / sqrt((double)var[c] + p->eps));
        if (running_mean)
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + (double)momentum * mean[c]);
        if (running_var)
            running_var[c] =
                (float)((1.0 - momentum) * running_var[c] + (double)momentum * (double)var[c] * correction);
    }
    return MX_OK;
}

mx_status mx_dnnl_batchnorm2d_forward_eval(mx_dnnl_batchnorm2d_plan *p, size_t n, const float *x,
                                           const float *gamma, const float *beta, const float *running_mean,
                                           const float *running_var, float *y)
{
    const char *op = "batchnorm forward (eval)";
    TRY(mxd_check_batch(op, p->n, n));
    TRY(check_affine(p, op, gamma, beta, 1, NULL, NULL));
    if (!x || !y || !running_mean || !running_var)
        return mx_error_set(MX_ERR_ARG, "%s: x, y and the running statistics are required", op);
    const mxd_plan *b = &p->base;
    TRY(set(p->x, x));
    TRY(set(p->y, y));
    TRY(set(p->mean, running_mean));
    TRY(set(p->var, running_var));
    dnnl_exec_arg_t args[8] = {{DNNL_ARG_SRC, p->x}, {DNNL_ARG_DST, p->y}, {DNNL_ARG_MEAN, p->mean},
                               {DNNL_ARG_VARIANCE, p->var}};
    int nargs = 4;
    if (p->affine) {
        TRY(set(p->scale, gamma));
        TRY(set(p->shift, beta));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCALE, p->scale};
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, p->shift};
    }
    TRY(mxd_exec(b, &p->fwd_eval, nargs, args, op));
    return mxd_check(dnnl_stream_wait(b->ctx->stream), op);
}

/* The backward primitives' shared body: stat_mean/stat_var as oneDNN wants them. */
static mx_status run_backward(mx_dnnl_batchnorm2d_plan *p, const mxd_prim *pr, const char *op, const float *x,
                              const float *dy, const float *gamma, const float *stat_mean, const float *stat_var,
                              float *dx, float *dgamma, float *dbeta)
{
    const mxd_plan *b = &p->base;
    TRY(set(p->x, x));
    TRY(set(p->dy, dy));
    TRY(set(p->dx, dx));
    TRY(set(p->mean, stat_mean));
    TRY(set(p->var, stat_var));
    dnnl_exec_arg_t args[10] = {{DNNL_ARG_SRC, p->x},       {DNNL_ARG_DIFF_DST, p->dy}, {DNNL_ARG_DIFF_SRC, p->dx},
                               {DNNL_ARG_MEAN, p->mean}, {DNNL_ARG_VARIANCE, p->var}};
    int nargs = 5;
    if (p->affine) {
        TRY(set(p->scale, gamma));
        /* oneDNN 2.6 insists on a shift input to the backward too (it does not
         * read it): any [channels] buffer, here a region of the plan's scratch. */
        TRY(set(p->shift, mxd_at(b, p->off_mean)));
        TRY(set(p->dscale, dgamma ? dgamma : mxd_at(b, p->off_dscale)));
        TRY(set(p->dshift, dbeta ? dbeta : mxd_at(b, p->off_dshift)));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCALE, p->scale};
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, p->shift};
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SCALE, p->dscale};
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SHIFT, p->dshift};
    }
    TRY(mxd_exec(b, pr, nargs, args, op));
    return mxd_check(dnnl_stream_wait(b->ctx->stream), op);
}

mx_status mx_dnnl_batchnorm2d_backward(mx_dnnl_batchnorm2d_plan *p, size_t n, const float *x, const float *dy,
                                       const float *gamma, const float *save_mean, const float *save_invstd,
                                       float *dx, float *dgamma, float *dbeta)
{
    const char *op = "batchnorm backward";
    TRY(mxd_check_batch(op, p->n, n));
    TRY(check_affine(p, op, gamma, NULL, 0, dgamma, dbeta));
    if (!x || !dy || !save_mean || !save_invstd)
        return mx_error_set(MX_ERR_ARG, "%s: x, dy, save_mean and save_invstd are required", op);
    if (!dx) {
        /* Only the parameter gradients: two reductions, no oneDNN primitive for that. */
        mx_batchnorm2d_backward(n, p->channels, p->hw, x, dy, gamma, save_mean, save_invstd, NULL, dgamma, dbeta);
        return MX_OK;
    }
    float *var = mxd_at(&p->base, p->off_var);
    for (size_t c = 0; c < p->channels; c++) {
        /* oneDNN computes 1/sqrt(var + eps): give it back the variance behind save_invstd. */
        double inv = save_invstd[c];
        var[c] = (float)(1.0 / (inv * inv) - p->eps);
    }
    return run_backward(p, &p->bwd, op, x, dy, gamma, save_mean, var, dx, dgamma, dbeta);
}

mx_status mx_dnnl_batchnorm2d_backward_eval(mx_dnnl_batchnorm2d_plan *p, size_t n, const float *x,
                                            const float *dy, const float *gamma, const float *running_mean,
                                            const float *running_var, float *dx, float *dgamma, float *dbeta)
{
    const char *op = "batchnorm backward (eval)";
    TRY(mxd_check_batch(op, p->n, n));
    TRY(check_affine(p, op, gamma, NULL, 0, dgamma, dbeta));
    if (!x || !dy || !running_mean || !running_var)
        return mx_error_set(MX_ERR_ARG, "%s: x, dy and the running statistics are required", op);
    if (!dx) {
        mx_batchnorm2d_backward_eval(n, p->channels, p->hw, x, dy, gamma, running_mean, running_var, p->eps, NULL,
                                     dgamma, dbeta);
        return MX_OK;
    }
    return run_backward(p, &p->bwd_eval, op, x, dy, gamma, running_mean, running_var, dx, dgamma, dbeta);
}
