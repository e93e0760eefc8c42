/* The "cpu" backend's table (cnn_backend_cpu): each node on its oneDNN plans
 * (cnn_cpu_plan.c) where it has one, else on the backend's own threaded
 * kernels (batch norm with its ReLU, ReLU, residual add, gradient sums, and on
 * blocked tensors global average pooling and dropout), else on the reference layers
 * (cnn_ref.c). The pass's state is its plan set for the batch size; a size
 * whose plans could not be made runs on the reference table.
 * The bfloat16 data flow's hand-offs: cnn_cpu_flow.c.
 * On AVX2 the 3x3 stride-1 convolutions train on mixreg's Winograd kernels
 * (cnn_cpu_node.train_wino: per tile up to 64 channels, batch-wide GEMMs
 * above), and a first layer of few input channels on conv_narrow.h's
 * (cnn_cpu_node.narrow). */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_cpu.h"
#include "nn/conv_narrow.h"
#include "nn/winograd.h"


/* The node's sync batch norm exchange (filled into *at), or NULL when the
 * model has none (mx_model_set_bn_sync). */
static cnn_bn_sync *bn_sync_of(const cnn_graph *g, const cnn_node *nd, cnn_bn_sync *at)
{
    if (!g->bn_reduce) return NULL;
    *at = (cnn_bn_sync){g->bn_reduce, g->bn_reduce_ctx, g->bn_sync_sums, &g->bn_sync_counts[nd - g->nodes]};
    return at;
}

static mx_status begin(cnn_pass *p, int inference)
{
    p->set = cnn_cpu_plans(p->g, p->n, inference);
    p->inference = inference;
    if (p->set) return MX_OK;
    /* The plans could not be made: the reference layers, every tensor NCHW
     * and float32. Not for a bfloat16 model: its memory plan sized buffers
     * for bfloat16 and shared the inputs its convolutions keep copies of
     * (cnn_cpu_flow.c), which the reference layers would read. */
    if (p->g->model->spec.precision == MX_PRECISION_BF16)
        return mx_error_set(MX_ERR_NOMEM, "bf16 training needs its oneDNN plans for batch %zu, which could not be "
                                          "made (see above)", p->n);
    p->be = &cnn_backend_ref;
    return MX_OK;
}

/* The Winograd kernel node k's training passes run at this pass's batch
 * (cnn_cpu_node.train_wino). */
static int wino_kernel(const cnn_pass *p, size_t k)
{
    const int kind = cnn_cpu_node_of(p->g, k)->train_wino;
    return kind == CNN_WINO_GEMM && !mx_wino_gemm_worth(&p->g->nodes[k].conv, p->n) ? CNN_WINO_NONE : kind;
}

/* Whether node k runs conv_narrow.h's kernels in this pass (not with more
 * threads than its scratch was made for): the NCHW ones, or the forward
 * into nChw8c. */
static int narrow_runs(const cnn_pass *p, size_t k)
{
    return cnn_cpu_node_of(p->g, k)->narrow && omp_get_max_threads() <= cnn_cpu_of(p->g)->scratch_threads;
}

static int narrow_blocked_runs(const cnn_pass *p, size_t k)
{
    return cnn_cpu_node_of(p->g, k)->narrow_blocked && omp_get_max_threads() <= cnn_cpu_of(p->g)->scratch_threads;
}

/* The node's ReLU goes with the convolution wherever the kernel can apply
 * it as it stores: mixreg's narrow and Winograd kernels, and oneDNN's plans
 * (made with the ReLU post-op, cnn_cpu_conv_plan_relu). lenet5's evaluation
 * spent 8% of its time in separate ReLU passes. */
static mx_status conv_forward(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done)
{
    const cnn_node *nd = &p->g->nodes[k];
    const cnn_cpu_node *cn = cnn_cpu_node_of(p->g, k);
    const cnn_node_plan *pl = cnn_cpu_pass_plan(p, k);
    void *kept = cn->x_bf16;
    const float *w = cnn_param(p->m, nd->weight), *b = cnn_param(p->m, nd->bias);
    *relu_done = 0;
    if (pl->conv && narrow_runs(p, k)) {
        *relu_done = nd->relu;
        return mx_conv_narrow_forward(&nd->conv, p->n, x, w, b, nd->relu, y, cnn_cpu_narrow_scratch(p->g));
    }
    /* Into nChw16c oneDNN's AVX-512 forward is the faster (lenet5's evaluation
     * 163-171K img/s against 134-143K with this kernel); its weights'
     * gradient is not (conv_backward). */
    if (pl->conv && narrow_blocked_runs(p, k) && p->g->tensors[nd->out].blocked == 8) {
        *relu_done = nd->relu;
        return mx_conv_narrow_forward_blocked(&nd->conv, p->g->tensors[nd->out].blocked, p->n, x, w, b, nd->relu, y,
                                              cnn_cpu_narrow_scratch(p->g));
    }
    const int wino = pl->conv ? wino_kernel(p, k) : CNN_WINO_NONE;
    if (wino != CNN_WINO_NONE) *relu_done = nd->relu;
    if (wino == CNN_WINO_TILES) {
        float *u = cnn_cpu_wino_u(p->g);
        mx_wino_transform_weights(&nd->conv, w, u);
        mx_wino_forward(&nd->conv, p->n, x, u, b, NULL, nd->relu, y);
        return MX_OK;
    }
    if (wino == CNN_WINO_GEMM) /* the weights transformed a block at a time, in the kernel */
        return mx_wino_gemm_forward(&nd->conv, p->n, x, NULL, w, 0, b, NULL, nd->relu, y, cnn_cpu_wino_gemm(p->g));
    if (!pl->conv) return cnn_backend_ref.conv_forward(p, k, x, y, relu_done);
    *relu_done = cnn_cpu_conv_plan_relu(p->g, k, p->inference);
    const void *given = cnn_cpu_conv_bf16_input(p, k);
    if (given) return mx_dnnl_conv2d_forward_bf16_x(pl->conv, p->n, given, w, b, y);
    if (kept && mx_dnnl_conv2d_kept_x_bytes(pl->conv)) return mx_dnnl_conv2d_forward_keep_x(pl->conv, p->n, x, w, b, y, kept);
    return mx_dnnl_conv2d_forward(pl->conv, p->n, x, w, b, y);
}

/* The backend's own kernel, which applies the node's ReLU too. oneDNN 2.6's
 * batch norm on NCHW (mx_dnnl_batchnorm2d_*) measured 4x slower forward and
 * 1.7x slower backward than it on resnet20. On nChw16c the output may also
 * (y NULL: only) go in bfloat16 to the convolutions reading it (cnn_cpu_bf16_copy_of). */
static mx_status bn_forward(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done)
{
    const mx_model *m = p->m;
    const cnn_graph *g = p->g;
    const cnn_node *nd = &g->nodes[k];
    const cnn_tensor *in = &g->tensors[nd->in];
    const size_t hw = in->h * in->w, C = in->c, n = p->n;
    const float *gamma = cnn_param(m, nd->weight), *beta = cnn_param(m, nd->bias);
    float *rmean = cnn_buffer(m, nd->buffer), *rvar = cnn_buffer(m, nd->buffer + 1);
    float *affine = cnn_cpu_node_of(g, k)->affine;
    double *partial = cnn_cpu_of(g)->bn_partial;
    int relu = nd->relu, f32 = 1;
    uint16_t *y16 = cnn_cpu_bf16_copy_of(p, k, &f32);
    if (!f32) y = NULL;
    cnn_bn_add fused, *add = NULL;
    if (cnn_cpu_bn_add_fused(p->g, k)) {
        const cnn_node *an = &g->nodes[k + 1];
        fused = (cnn_bn_add){cnn_tensor_data(g, an->in == nd->out ? an->in2 : an->in),
                             p->inference ? NULL : cnn_cpu_node_of(g, k + 1)->relu_bits};
        add = &fused;
        y = g->tensors[an->out].data;
        relu = an->relu;
        y16 = cnn_cpu_bf16_copy_of(p, k + 1, &f32);
    }
    const size_t layout = cnn_cpu_bn_layout(p, k);
    if (m->training) {
        cnn_bn_sync sync_at, *sync = bn_sync_of(g, nd, &sync_at);
        if (in->blocked)
            cnn_cpu_bn_forward_train_blocked_synced(n, C, hw, layout, x, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rmean, rvar, y,
                                                    nd->save_mean, nd->save_invstd, relu, partial, affine, y16, sync,
                                                    add);
        else
            cnn_cpu_bn_forward_train_synced(n, C, hw, x, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rmean, rvar, y,
                                            nd->save_mean, nd->save_invstd, relu, affine, sync);
    } else if (in->blocked) {
        cnn_cpu_bn_forward_eval_blocked(n, C, hw, layout, x, gamma, beta, rmean, rvar, MX_BN_EPS, y, relu, partial, affine, y16,
                                        add);
    } else {
        cnn_cpu_bn_forward_eval(n, C, hw, x, gamma, beta, rmean, rvar, MX_BN_EPS, y, relu, affine);
    }
    *relu_done = nd->relu;
    return MX_OK;
}

static mx_status add_forward(const cnn_pass *p, size_t k, const float *a, const float *b, float *y, int *relu_done)
{
    const cnn_node *nd = &p->g->nodes[k];
    *relu_done = nd->relu;
    /* The batch norm before wrote y, unless a prediction folded that batch
     * norm into its convolution (and skipped it). */
    if (k > 0 && cnn_cpu_bn_add_fused(p->g, k - 1) && !(p->inference && cnn_cpu_node_of(p->g, k - 1)->fused))
        return MX_OK;
    const size_t count = p->n * p->g->tensors[nd->out].size;
    int f32;
    uint16_t *y16 = cnn_cpu_bf16_copy_of(p, k, &f32), *bits = p->inference ? NULL : cnn_cpu_node_of(p->g, k)->relu_bits;
    if (y16 || bits) cnn_cpu_add_forward_bf16_copy(count, a, b, y, nd->relu, y16, bits);
    else cnn_cpu_add_forward(count, a, b, y, nd->relu);
    *relu_done = nd->relu;
    return MX_OK;
}

/* Max pooling keeps its input's layout (cnn_cpu_assign_layouts), but for a blocked
 * input whose output must be NCHW. Blocked, or NCHW
 * with 2x2 windows, the backend's own kernels (cnn_cpu_pool.c); other NCHW
 * poolings the layer's own threaded loop (layers/pool.c), since oneDNN 2.x
 * has only a slow reference kernel for that layout. A prediction keeps no
 * arg-max (no backward follows it). */
static mx_status maxpool_forward(const cnn_pass *p, size_t k, const float *x, float *y)
{
    const cnn_node *nd = &p->g->nodes[k];
    const cnn_tensor *in = &p->g->tensors[nd->in];
    uint32_t *argmax = p->inference ? NULL : nd->argmax;
    const int out_nchw = !p->g->tensors[nd->out].blocked;
    if (in->blocked) cnn_cpu_maxpool_forward_blocked(&nd->pool, p->n, in->blocked, x, y, out_nchw, argmax);
    else if (cnn_cpu_maxpool_2x2_suits(&nd->pool)) cnn_cpu_maxpool_2x2_forward(&nd->pool, p->n, x, y, argmax);
    else return cnn_backend_ref.maxpool_forward(p, k, x, y);
    return MX_OK;
}

static mx_status gap_forward(const cnn_pass *p, size_t k, const float *x, float *y)
{
    const cnn_tensor *in = &p->g->tensors[p->g->nodes[k].in];
    if (!in->blocked) return cnn_backend_ref.gap_forward(p, k, x, y);
    cnn_cpu_gap_forward_blocked(p->n, in->c, in->h * in->w, in->blocked, x, y);
    return MX_OK;
}

/* The plan applies the layer's ReLU as a post-op (cnn_cpu_plan.c): one pass
 * over the output fewer (lenet5's two hidden layers). */
static mx_status linear_forward(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done)
{
    const cnn_node *nd = &p->g->nodes[k];
    const cnn_node_plan *pl = cnn_cpu_pass_plan(p, k);
    if (!pl->linear) return cnn_backend_ref.linear_forward(p, k, x, y, relu_done);
    *relu_done = nd->relu;
    return mx_dnnl_linear_forward(pl->linear, p->n, x, cnn_param(p->m, nd->weight), cnn_param(p->m, nd->bias), y);
}

static mx_status dropout_forward(const cnn_pass *p, size_t k, const float *x, float *y)
{
    const cnn_node *nd = &p->g->nodes[k];
    const cnn_tensor *in = &p->g->tensors[nd->in];
    if (!p->m->training || !in->blocked) return cnn_backend_ref.dropout_forward(p, k, x, y);
    mx_rng rng;
    cnn_rng_load(p->m, p->g, &rng);
    cnn_cpu_dropout_forward_blocked(p->n, in->c, in->h * in->w, in->blocked, nd->p, &rng, x, y, nd->mask);
    cnn_rng_store(p->m, p->g, &rng);
    return MX_OK;
}

static mx_status relu_forward(const cnn_pass *p, size_t count, float *y)
{
    (void)p;
    cnn_cpu_relu_forward(count, y);
    return MX_OK;
}

/* Convolution node k's bfloat16 input, written again into its plan's room
 * by the batch norm before it (cnn_cpu_conv_input_restaged). */
static void restage_input(const cnn_pass *p, size_t k, const void *room)
{
    const cnn_graph *g = p->g;
    const cnn_node *bn = &g->nodes[k - 1];
    const cnn_tensor *in = &g->tensors[bn->in];
    cnn_cpu_bn_apply_bf16(p->n, in->c, in->h * in->w, cnn_cpu_bn_layout(p, k - 1), cnn_tensor_data(g, bn->in),
                          cnn_cpu_node_of(g, k - 1)->affine, bn->relu, (uint16_t *)(uintptr_t)room);
}

/* conv_backward's gradients: dx unless NULL, the weights' and the bias's
 * unless `weights` is 0. */
static mx_status conv_backward_of(const cnn_pass *p, size_t k, const float *x, float *dy, float *dx, int weights)
{
    const mx_model *m = p->m;
    const cnn_node *nd = &p->g->nodes[k];
    const cnn_node_plan *pl = cnn_cpu_pass_plan(p, k);
    const float *w = cnn_param(m, nd->weight);
    float *dw = weights ? cnn_grad(m, nd->weight) : NULL, *db = weights ? cnn_grad(m, nd->bias) : NULL;
    if (!pl->conv) {
        mx_conv2d_backward(&nd->conv, p->n, x, w, dy, dx, dw, db, p->g->workspace);
        return MX_OK;
    }
    const int dy16 = cnn_cpu_conv_takes_bf16_dy(p, k);
    const void *x_kept = cnn_cpu_conv_kept_input(p, k);
    if (narrow_runs(p, k) || narrow_blocked_runs(p, k)) { /* the input's gradient on oneDNN, the weights' here */
        if (dx) {
            const mx_status st = mx_dnnl_conv2d_backward(pl->conv, p->n, x, w, dy, dx, NULL, NULL);
            if (st != MX_OK) return st;
        }
        if (!weights) return MX_OK;
        return narrow_runs(p, k) ? mx_conv_narrow_backward_weights(&nd->conv, p->n, x, dy, dw, db,
                                                                   cnn_cpu_narrow_scratch(p->g))
                                 : mx_conv_narrow_backward_weights_blocked(&nd->conv, p->g->tensors[nd->out].blocked,
                                                                           p->n, x, dy, dw, db,
                                                                           cnn_cpu_narrow_scratch(p->g));
    }
    const int wino = wino_kernel(p, k);
    if (wino) {
        if (dx) {
            const mx_conv2d_desc t = mx_wino_transposed(&nd->conv);
            if (wino == CNN_WINO_TILES) {
                float *u = cnn_cpu_wino_u(p->g);
                mx_wino_transform_weights_dx(&nd->conv, w, u);
                mx_wino_forward(&t, p->n, dy, u, NULL, NULL, 0, dx);
            } else {
                const mx_status st = mx_wino_gemm_forward(&t, p->n, dy, NULL, w, 1, NULL, NULL, 0, dx,
                                                          cnn_cpu_wino_gemm(p->g));
                if (st != MX_OK) return st;
            }
        }
        if (!weights) return MX_OK;
        float *sums = cnn_cpu_wino_sums(p->g);
        return wino == CNN_WINO_TILES ? mx_wino_backward_weights(&nd->conv, p->n, x, dy, dw, db, sums,
                                                                 cnn_cpu_of(p->g)->scratch_threads)
                                      : mx_wino_gemm_backward_weights(&nd->conv, p->n, x, dy, dw, db, sums);
    }
    /* Its producer wrote x into the plan's room in the forward (cnn_cpu_bf16_copy_of): again now. */
    if (x_kept && weights && cnn_cpu_conv_input_restaged(p->g, k) && x_kept == mx_dnnl_conv2d_x_room(pl->conv))
        restage_input(p, k, x_kept);
    if (!x_kept && weights && cnn_cpu_conv_input_gone(p->g, k))
        return mx_error_set(MX_ERR_ARG, "bf16 training: oneDNN's plan for layer %zu at batch %zu keeps no bfloat16 copy "
                                        "of its input, whose buffer the memory plan shares", k, p->n);
    if (dy16 || x_kept)
        return mx_dnnl_conv2d_backward_bf16(pl->conv, p->n, x, x_kept, w, dy16 ? NULL : dy,
                                            dy16 ? (const uint16_t *)(void *)dy : NULL, dx, dw, db);
    return mx_dnnl_conv2d_backward(pl->conv, p->n, x, w, dy, dx, dw, db);
}

/* Where the executor recomputed x into dx's buffer (cnn_node.recompute_in_dx),
 * the weights' gradient reads it first, and then dx is written over it: the
 * same operations as together, so the same bits. */
static mx_status conv_backward(const cnn_pass *p, size_t k, const float *x, float *dy, float *dx)
{
    if (!dx || x != dx) return conv_backward_of(p, k, x, dy, dx, 1);
    const mx_status st = conv_backward_of(p, k, x, dy, NULL, 1);
    return st == MX_OK ? conv_backward_of(p, k, x, dy, dx, 0) : st;
}

/* The fused ReLU's backward first (from its output, or without that, its
 * mask from the input and the forward's constants), then batch norm's. */
static mx_status bn_backward(const cnn_pass *p, size_t k, const float *x, float *dy, float *dx)
{
    const mx_model *m = p->m;
    const cnn_graph *g = p->g;
    const cnn_node *nd = &g->nodes[k];
    const cnn_tensor *in = &g->tensors[nd->in];
    const size_t hw = in->h * in->w, C = in->c, n = p->n;
    const float *gamma = cnn_param(m, nd->weight), *rmean = cnn_buffer(m, nd->buffer),
                *rvar = cnn_buffer(m, nd->buffer + 1);
    float *dgamma = cnn_grad(m, nd->weight), *dbeta = cnn_grad(m, nd->bias);
    double *partial = cnn_cpu_of(g)->bn_partial;
    const int from_input = nd->relu && (cnn_cpu_bn_output_unneeded(p, k) || cnn_cpu_bn_recomputed_in_dx(g, k));
    if (nd->relu && !from_input && cnn_cpu_tensor_gone(g, nd->out))
        return mx_error_set(MX_ERR_ARG, "bf16 training: at batch %zu the backward of layer %zu needs its output, "
                                        "whose buffer the memory plan shares", p->n, k);
    const float *y = nd->relu && !from_input ? g->tensors[nd->out].data : NULL;
    const float *relu_k = from_input ? cnn_cpu_node_of(g, k)->affine : NULL;
    const int dx_bf16 = k > 0 && cnn_cpu_conv_takes_bf16_dy(p, k - 1);
    const size_t layout = cnn_cpu_bn_layout(p, k);
    /* The residual add after it took the sums as it wrote dy (add_backward). */
    const int sums_ready = cnn_cpu_of(g)->bn_sums_ready == k;
    cnn_cpu_of(g)->bn_sums_ready = CNN_NONE;
    if (g->fwd_training) {
        cnn_bn_sync sync_at, *sync = bn_sync_of(g, nd, &sync_at);
        if (in->blocked)
            cnn_cpu_bn_backward_blocked_synced(n, C, hw, layout, x, y, relu_k, dy, gamma, nd->save_mean, nd->save_invstd, dx,
                                               dx_bf16, dgamma, dbeta, partial, sync, sums_ready);
        else
            cnn_cpu_bn_backward_synced(n, C, hw, x, y, dy, gamma, nd->save_mean, nd->save_invstd, dx, dgamma, dbeta,
                                       sync);
    } else if (in->blocked) {
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, layout, x, y, relu_k, dy, gamma, rmean, rvar, MX_BN_EPS, dx, dx_bf16, dgamma,
                                         dbeta, partial);
    } else {
        cnn_cpu_bn_backward_eval(n, C, hw, x, y, dy, gamma, rmean, rvar, MX_BN_EPS, dx, dgamma, dbeta);
    }
    return MX_OK;
}

/* Whether the residual add's backward takes batch norm node b's backward
 * sums (cnn_cpu_add_bn_sums): a training forward's batch norm without a
 * ReLU on a layout the fused pass walks. */
static int bn_sums_fuse(const cnn_pass *p, size_t b)
{
    const cnn_graph *g = p->g;
    const cnn_node *bn = &g->nodes[b];
    const size_t layout = g->tensors[bn->in].blocked;
    return g->fwd_training && bn->op == CNN_BN && !bn->relu && layout && g->tensors[bn->out].blocked == layout &&
           !(cnn_cpu_bn_layout(p, b) & CNN_DY_BF16);
}

/* The residual add's backward (node k): both inputs' gradients are the same
 * (masked) dy. When both are written fresh and one input is the output of a
 * batch norm at node k - 1 (next in the backward, which only reads its dy),
 * that gradient is not written: *alias_t is that tensor and *alias_p the
 * other input's gradient, which node k - 1 reads instead (a pass over the
 * activation fewer per residual block). */
static mx_status add_backward(const cnn_pass *p, size_t k, float *dy, const float *dy_extra, float *dx, int *alias_t,
                              float **alias_p)
{
    const cnn_graph *g = p->g;
    const cnn_node *nd = &g->nodes[k];
    const int inputs[2] = {nd->in, nd->in2}, acc[2] = {nd->acc_in, nd->acc_in2};
    const size_t count = p->n * g->tensors[nd->out].size;
    /* The ReLU's mask from its output, or from the bits the forward recorded
     * where the output was not kept (cnn_cpu_add_keeps_mask_bits). */
    const uint16_t *bits = nd->relu ? cnn_cpu_node_of(g, k)->relu_bits : NULL;
    const float *y = nd->relu && !bits ? g->tensors[nd->out].data : NULL;
    float *da = cnn_grad_of(g, inputs[0], dx), *db = cnn_grad_of(g, inputs[1], dx);
    int acc_a = acc[0], acc_b = acc[1];
    const cnn_node *prev = k > 0 ? &g->nodes[k - 1] : NULL;
    if (prev && prev->op == CNN_BN && !acc[0] && !acc[1] && inputs[0] != inputs[1] && inputs[0] > 0 &&
        inputs[1] > 0 && (prev->out == inputs[0] || prev->out == inputs[1])) {
        const int skip = prev->out == inputs[0] ? 0 : 1;
        *alias_t = inputs[skip];
        *alias_p = da = cnn_grad_of(g, inputs[1 - skip], dx);
        db = NULL, acc_a = 0;
    }
    cnn_cpu_of(g)->bn_sums_ready = CNN_NONE;
    if (*alias_t >= 0 && da && bn_sums_fuse(p, k - 1)) {
        /* The batch norm's dy is what this pass writes: its sums too. */
        const cnn_tensor *bx = &g->tensors[prev->in];
        cnn_cpu_add_bn_sums(p->n, bx->c, bx->h * bx->w, cnn_cpu_bn_layout(p, k - 1), bits, y, dy, dy_extra,
                            cnn_tensor_data(g, prev->in), da, cnn_cpu_of(g)->bn_partial);
        cnn_cpu_of(g)->bn_sums_ready = k - 1;
    } else if (bits) {
        cnn_cpu_add_backward_bits(count, bits, dy, dy_extra, da, acc_a, db, acc_b);
    } else {
        cnn_cpu_add_backward(count, y, dy, dy_extra, da, acc_a, db, acc_b);
    }
    return MX_OK;
}

static mx_status maxpool_backward(const cnn_pass *p, size_t k, const float *dy, float *dx, int relu_in)
{
    const cnn_node *nd = &p->g->nodes[k];
    const cnn_tensor *in = &p->g->tensors[nd->in];
    const float *relu_x = relu_in ? cnn_tensor_data(p->g, nd->in) : NULL;
    const int out_nchw = !p->g->tensors[nd->out].blocked;
    if (in->blocked) cnn_cpu_maxpool_backward_blocked(&nd->pool, p->n, in->blocked, nd->argmax, relu_x, dy, out_nchw, dx);
    else if (cnn_cpu_maxpool_2x2_suits(&nd->pool))
        cnn_cpu_maxpool_2x2_backward(&nd->pool, p->n, nd->argmax, relu_x, dy, dx);
    else return cnn_backend_ref.maxpool_backward(p, k, dy, dx, relu_in);
    return MX_OK;
}

static mx_status gap_backward(const cnn_pass *p, size_t k, const float *dy, float *dx)
{
    const cnn_tensor *in = &p->g->tensors[p->g->nodes[k].in];
    if (!in->blocked) return cnn_backend_ref.gap_backward(p, k, dy, dx);
    cnn_cpu_gap_backward_blocked(p->n, in->c, in->h * in->w, in->blocked, dy, dx);
    return MX_OK;
}

static mx_status linear_backward(const cnn_pass *p, size_t k, const float *x, const float *dy, float *dx)
{
    const cnn_node *nd = &p->g->nodes[k];
    const cnn_node_plan *pl = cnn_cpu_pass_plan(p, k);
    if (!pl->linear) return cnn_backend_ref.linear_backward(p, k, x, dy, dx);
    return mx_dnnl_linear_backward(pl->linear, p->n, x, cnn_param(p->m, nd->weight), dy, dx,
                                   cnn_grad(p->m, nd->weight), cnn_grad(p->m, nd->bias));
}

static mx_status dropout_backward(const cnn_pass *p, size_t k, const float *dy, float *dx)
{
    const cnn_node *nd = &p->g->nodes[k];
    const cnn_tensor *in = &p->g->tensors[nd->in];
    if (!p->g->fwd_training || !in->blocked) return cnn_backend_ref.dropout_backward(p, k, dy, dx);
    cnn_cpu_dropout_backward_blocked(p->n, in->c, in->h * in->w, in->blocked, nd->p, nd->mask, dy, dx);
    return MX_OK;
}

static mx_status relu_backward(const cnn_pass *p, size_t count, const float *y, float *dy)
{
    (void)p;
    cnn_cpu_relu_backward(count, y, dy);
    return MX_OK;
}

static mx_status grad_accumulate(const cnn_pass *p, size_t count, float *dst, const float *src)
{
    (void)p;
    cnn_cpu_grad_pass(count, dst, src, 1);
    return MX_OK;
}

/* From the constants the forward saved (bit for bit), unless no backward
 * needs the output (cnn_cpu_bn_output_unneeded). */
static mx_status bn_recompute(const cnn_pass *p, size_t b, float *y)
{
    const cnn_graph *g = p->g;
    const cnn_node *bn = &g->nodes[b];
    if (cnn_cpu_bn_output_unneeded(p, b)) return MX_OK;
    const cnn_tensor *in = &g->tensors[bn->in];
    cnn_cpu_bn_apply(p->n, in->c, in->h * in->w, cnn_cpu_bn_layout(p, b), cnn_tensor_data(g, bn->in),
                     cnn_cpu_node_of(g, b)->affine, bn->relu, y);
    return MX_OK;
}

const cnn_backend cnn_backend_cpu = {
    .name = "cpu",
    .prepare = cnn_cpu_prepare,
    .reserve = cnn_cpu_reserve,
    .plan = cnn_cpu_plan,
    .unplan = cnn_cpu_unplan,
    .release = cnn_cpu_release,
    .predict_samples = cnn_cpu_predict_samples,
    .first_writer = cnn_cpu_first_writer,
    .add_in_place = cnn_cpu_add_in_place,
    .pred_keeps_output = cnn_cpu_pred_keeps_output,
    .recomputes_bn_output = 1,
    .has_sync_bn = 1,
    .bn_backward_fuses_relu = 1,
    .conv_keeps_input = cnn_cpu_conv_keeps_input,
    .keeps_relu_mask = cnn_cpu_keeps_relu_mask,
    .recompute_in_dx = cnn_cpu_recompute_in_dx,
    .recomputes_conv_output = cnn_cpu_recomputes_conv_output,
    .begin = begin,
    .predict = cnn_cpu_predict,
    .conv_forward = conv_forward,
    .bn_forward = bn_forward,
    .add_forward = add_forward,
    .maxpool_forward = maxpool_forward,
    .gap_forward = gap_forward,
    .linear_forward = linear_forward,
    .dropout_forward = dropout_forward,
    .relu_forward = relu_forward,
    .conv_backward = conv_backward,
    .bn_backward = bn_backward,
    .add_backward = add_backward,
    .maxpool_backward = maxpool_backward,
    .gap_backward = gap_backward,
    .linear_backward = linear_backward,
    .dropout_backward = dropout_backward,
    .relu_backward = relu_backward,
    .grad_accumulate = grad_accumulate,
    .bn_recompute = bn_recompute,
    .sgd_step = cnn_host_sgd_step,
    .to_device = cnn_host_copy,
    .to_host = cnn_host_copy,
};
