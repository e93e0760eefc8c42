/* Running the CNN layer graph: initialisation, forward and backward, each a
 * walk over the node list with buffers planned by cnn_graph.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixreg/rng.h"
#include "nn/cnn_internal.h"
#include "nn/winograd.h"

static float *param(mx_model *m, size_t i) { return i == CNN_NONE ? NULL : m->params + m->tensors[i].offset; }
static float *grad(mx_model *m, size_t i) { return i == CNN_NONE ? NULL : m->grads + m->tensors[i].offset; }
static float *buffer(mx_model *m, size_t i) { return m->buffers[i].data; }

static const float *tensor_data(const cnn_graph *g, int t) { return t ? g->tensors[t].data : g->input; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* With profiling: charges the time since *t to kind (dir 0 forward, 1 backward). */
static void charge(cnn_graph *g, int kind, int dir, double *t)
{
    if (!g->profile) return;
    double now = now_s();
    g->prof_s[kind][dir] += now - *t;
    *t = now;
}

void cnn_profile_report(const cnn_graph *g)
{
    static const char *const names[CNN_PROF_KINDS] = {"conv", "batchnorm", "add", "maxpool", "avgpool",
                                                      "linear", "dropout", "relu", "grad-add"};
    if (!g->profile || !g->prof_calls[0]) return;
    double total = 0;
    for (int k = 0; k < CNN_PROF_KINDS; k++) total += g->prof_s[k][0] + g->prof_s[k][1];
    size_t f = g->prof_calls[0], b = g->prof_calls[1];
    fprintf(stderr, "mixreg profile (%s backend, batch %zu): %zu forwards, %zu backwards; ms per call\n",
            mx_backend_name(g->backend), g->model->max_batch, f, b);
    fprintf(stderr, "  %-10s %9s %9s %7s\n", "layer", "forward", "backward", "share");
    for (int k = 0; k < CNN_PROF_KINDS; k++) {
        double fs = g->prof_s[k][0], bs = g->prof_s[k][1];
        if (fs == 0 && bs == 0) continue;
        fprintf(stderr, "  %-10s %9.3f %9.3f %6.1f%%\n", names[k], 1e3 * fs / (double)f, b ? 1e3 * bs / (double)b : 0.0,
                100.0 * (fs + bs) / total);
    }
}

/* A oneDNN plan that was made for this shape and batch refused to run: a bug,
 * not a condition a caller could handle (forward and backward return no status). */
static void must(mx_status st)
{
    if (st == MX_OK) return;
    fprintf(stderr, "mixreg: internal error in the cpu backend: %s\n", mx_error_message());
    abort();
}

static void fill_uniform(mx_rng *rng, float *p, size_t count, double bound)
{
    for (size_t i = 0; i < count; i++) p[i] = (float)((2.0 * mx_rng_uniform(rng) - 1.0) * bound);
}

/* The dropout generator lives in an I64 buffer so that checkpoints carry it. */
static void rng_load(const mx_model *m, const cnn_graph *g, mx_rng *rng)
{
    const int64_t *w = m->buffers[g->rng_buffer].data;
    for (int i = 0; i < 2; i++) rng->key[i] = (uint32_t)w[i];
    for (int i = 0; i < 4; i++) rng->ctr[i] = (uint32_t)w[2 + i], rng->buf[i] = (uint32_t)w[6 + i];
    rng->used = w[10] >= 0 && w[10] <= 4 ? (uint32_t)w[10] : 4;  /* a damaged state still never reads past buf */
}

static void rng_store(mx_model *m, const cnn_graph *g, const mx_rng *rng)
{
    int64_t *w = m->buffers[g->rng_buffer].data;
    for (int i = 0; i < 2; i++) w[i] = rng->key[i];
    for (int i = 0; i < 4; i++) w[2 + i] = rng->ctr[i], w[6 + i] = rng->buf[i];
    w[10] = rng->used;
}

void cnn_reset_buffers(mx_model *m, uint64_t seed)
{
    const cnn_graph *g = m->impl;
    if (g->rng_buffer != CNN_NONE) {
        mx_rng rng;
        mx_rng_init(&rng, seed, MX_STREAM_DROPOUT);
        rng_store(m, g, &rng);
    }
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->op != CNN_BN) continue;
        size_t c = g->tensors[nd->in].c;
        memset(buffer(m, nd->buffer), 0, c * sizeof(float));
        float *var = buffer(m, nd->buffer + 1);
        for (size_t i = 0; i < c; i++) var[i] = 1.0f;
        *(int64_t *)m->buffers[nd->buffer + 2].data = 0;
    }
}

/* PyTorch's defaults: conv and linear weights kaiming_uniform(a = sqrt(5)),
 * i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases the same bound; batch norm
 * weight 1, bias 0. Drawn in parameter-table order. */
void cnn_init_params(mx_model *m, uint64_t seed)
{
    const cnn_graph *g = m->impl;
    mx_rng rng;
    mx_rng_init(&rng, seed, MX_STREAM_INIT);
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->op == CNN_CONV || nd->op == CNN_LINEAR) {
            fill_uniform(&rng, param(m, nd->weight), m->tensors[nd->weight].numel, nd->init_bound);
            if (nd->bias != CNN_NONE) fill_uniform(&rng, param(m, nd->bias), m->tensors[nd->bias].numel, nd->init_bound);
        } else if (nd->op == CNN_BN) {
            float *gamma = param(m, nd->weight);
            for (size_t i = 0; i < m->tensors[nd->weight].numel; i++) gamma[i] = 1.0f;
            memset(param(m, nd->bias), 0, m->tensors[nd->bias].numel * sizeof(float));
        }
    }
    cnn_reset_buffers(m, seed);
}

/* The node's sync batch norm exchange (filled into *at), or NULL when the
 * model has none (mx_model_set_bn_sync; the cpu backend only). */
static cnn_bn_sync *bn_sync_of(const cnn_graph *g, const cnn_node *nd, cnn_bn_sync *at)
{
    if (!g->bn_reduce) return NULL;
    *at = (cnn_bn_sync){g->bn_reduce, g->bn_reduce_ctx, g->bn_sync_sums, &g->bn_sync_counts[nd - g->nodes]};
    return at;
}

/* The reference layers have no sync form; mx_model_set_bn_sync refuses
 * their backend, so reaching this is a bug, not a user's error. */
static _Noreturn void sync_unsupported(void)
{
    fprintf(stderr, "mixreg: internal error: sync batch norm on the reference layers\n");
    abort();
}

/* Batch norm's forward on the node's backend: the reference layer, or the cpu
 * backend's own kernel, which applies the node's ReLU too (returns whether it
 * did). oneDNN 2.6's batch norm on NCHW (mx_dnnl_batchnorm2d_*) measured 4x
 * slower forward and 1.7x slower backward than that kernel on resnet20.
 * Y16 (cpu, nChw16c): the output also (Y NULL: only) in bfloat16 there, for
 * the convolutions reading it (bf16_copy_of). */
static int bn_forward(mx_model *m, cnn_graph *g, const cnn_node *nd, int cpu, size_t n,
                      const float *X, float *Y, uint16_t *Y16)
{
    const cnn_tensor *in = &g->tensors[nd->in];
    const size_t hw = in->h * in->w, C = in->c;
    const float *gamma = param(m, nd->weight), *beta = param(m, nd->bias);
    float *rmean = buffer(m, nd->buffer), *rvar = buffer(m, nd->buffer + 1);
    const int relu = nd->relu;
    if (m->training) {
        (*(int64_t *)m->buffers[nd->buffer + 2].data)++;
        cnn_bn_sync sync_at, *sync = bn_sync_of(g, nd, &sync_at);
        if (cpu && in->blocked)
            cnn_cpu_bn_forward_train_blocked_synced(n, C, hw, X, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rmean, rvar, Y,
                                                    nd->save_mean, nd->save_invstd, relu, g->bn_partial, nd->affine,
                                                    Y16, sync);
        else if (cpu)
            cnn_cpu_bn_forward_train_synced(n, C, hw, X, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rmean, rvar, Y,
                                            nd->save_mean, nd->save_invstd, relu, nd->affine, sync);
        else if (sync)
            sync_unsupported();
        else
            mx_batchnorm2d_forward_train(n, C, hw, X, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rmean, rvar, Y,
                                         nd->save_mean, nd->save_invstd);
    } else if (cpu && in->blocked) {
        cnn_cpu_bn_forward_eval_blocked(n, C, hw, X, gamma, beta, rmean, rvar, MX_BN_EPS, Y, relu, g->bn_partial,
                                        nd->affine, Y16);
    } else if (cpu) {
        cnn_cpu_bn_forward_eval(n, C, hw, X, gamma, beta, rmean, rvar, MX_BN_EPS, Y, relu, nd->affine);
    } else {
        mx_batchnorm2d_forward_eval(n, C, hw, X, gamma, beta, rmean, rvar, MX_BN_EPS, Y);
    }
    return cpu && relu;
}

/* Where node p (a batch norm or residual add with a fused ReLU, on the cpu
 * kernels with plans g->fwd_plans, nChw16c) writes its output in bfloat16 for
 * the convolutions reading it, or NULL: the kept input (x_bf16) of its first
 * reader among convolutions whose plans take x so
 * (mx_dnnl_conv2d_takes_bf16_x); those convolutions read it there, forward
 * and backward, without reordering. *f32 says whether the float32 output is
 * still written: always for an add (its backward masks by its output), and
 * for a batch norm unless its one reader is such a convolution (the backward
 * then takes its ReLU's mask from its input, see bn_output_unneeded). */
static void *bf16_copy_of(const cnn_graph *g, size_t p, int *f32)
{
    const cnn_plan_set *plans = g->fwd_plans;
    const cnn_node *pr = &g->nodes[p];
    *f32 = 1;
    if (!plans || (pr->op != CNN_BN && pr->op != CNN_ADD) || !pr->relu || !g->tensors[pr->out].blocked ||
        (pr->op == CNN_BN && !pr->affine))
        return NULL;
    void *to = NULL;
    size_t readers = 0;
    for (size_t j = 0; j < g->num_nodes; j++) {
        const cnn_node *nd = &g->nodes[j];
        if (nd->in != pr->out && nd->in2 != pr->out) continue;
        readers++;
        if (!to && nd->op == CNN_CONV && nd->x_bf16 && plans->node[j].conv &&
            mx_dnnl_conv2d_takes_bf16_x(plans->node[j].conv))
            to = nd->x_bf16;
    }
    if (to && pr->op == CNN_BN && readers == 1) *f32 = 0;
    return to;
}

/* The bfloat16 copy of convolution node k's input its producer wrote
 * (bf16_copy_of), when k's plan takes it; else NULL. */
static const void *conv_bf16_input(const cnn_graph *g, size_t k)
{
    const cnn_node *nd = &g->nodes[k];
    const cnn_plan_set *plans = g->fwd_plans;
    if (!plans || !plans->node[k].conv || !mx_dnnl_conv2d_takes_bf16_x(plans->node[k].conv)) return NULL;
    for (size_t p = 0; p < k; p++)
        if (g->nodes[p].out == nd->in) {
            int f32;
            return bf16_copy_of(g, p, &f32);
        }
    return NULL;
}

/* Convolution node k's input as its plan keeps it in bfloat16 for the
 * backward weights: its producer's copy, else its own reorder's; NULL when
 * its plan keeps none. */
static const void *conv_kept_input(const cnn_graph *g, const cnn_node_plan *pl, size_t k)
{
    if (!pl || !pl->conv || !g->nodes[k].x_bf16 || !mx_dnnl_conv2d_kept_x_bytes(pl->conv)) return NULL;
    const void *given = conv_bf16_input(g, k);
    return given ? given : g->nodes[k].x_bf16;
}

/* Node nd's forward (ReLU included) in the model's mode, on its plans pl
 * (NULL: the reference layers). */
static void forward_node(mx_model *m, cnn_graph *g, cnn_node *nd, const cnn_node_plan *pl, size_t n, double *t)
{
    const cnn_tensor *in = &g->tensors[nd->in], *out = &g->tensors[nd->out];
    const float *X = tensor_data(g, nd->in);
    float *Y = out->data;
    const size_t hw = in->h * in->w, count = n * out->size;
    int relu_done = 0;
    switch (nd->op) {
    case CNN_CONV: {
        const void *given = pl ? conv_bf16_input(g, (size_t)(nd - g->nodes)) : NULL;
        if (given)
            must(mx_dnnl_conv2d_forward_bf16_x(pl->conv, n, given, param(m, nd->weight), param(m, nd->bias), Y));
        else if (pl && pl->conv && nd->x_bf16 && mx_dnnl_conv2d_kept_x_bytes(pl->conv))
            must(mx_dnnl_conv2d_forward_keep_x(pl->conv, n, X, param(m, nd->weight), param(m, nd->bias), Y,
                                               nd->x_bf16));
        else if (pl && pl->conv)
            must(mx_dnnl_conv2d_forward(pl->conv, n, X, param(m, nd->weight), param(m, nd->bias), Y));
        else
            mx_conv2d_forward(&nd->conv, n, X, param(m, nd->weight), param(m, nd->bias), Y, g->workspace);
        break;
    }
    case CNN_BN: {
        int f32 = 1;
        uint16_t *copy = pl ? bf16_copy_of(g, (size_t)(nd - g->nodes), &f32) : NULL;
        relu_done = bn_forward(m, g, nd, pl != NULL, n, X, f32 ? Y : NULL, copy);
        break;
    }
    case CNN_ADD: {
        int f32;
        uint16_t *copy = pl ? bf16_copy_of(g, (size_t)(nd - g->nodes), &f32) : NULL;
        if (copy) cnn_cpu_add_forward_bf16_copy(count, X, tensor_data(g, nd->in2), Y, relu_done = nd->relu, copy);
        else if (pl) cnn_cpu_add_forward(count, X, tensor_data(g, nd->in2), Y, relu_done = nd->relu);
        else mx_add_forward(count, X, tensor_data(g, nd->in2), Y);
        break;
    }
    case CNN_MAXPOOL:
        if (pl && pl->pool) must(mx_dnnl_pool2d_forward(pl->pool, n, X, Y, nd->argmax));
        else mx_maxpool2d_forward(&nd->pool, n, X, Y, nd->argmax);
        break;
    case CNN_GAP:
        if (pl && in->blocked) cnn_cpu_gap_forward_blocked(n, in->c, hw, X, Y);
        else mx_global_avgpool_forward(n, in->c, hw, X, Y);
        break;
    case CNN_LINEAR:
        if (pl && pl->linear)
            must(mx_dnnl_linear_forward(pl->linear, n, X, param(m, nd->weight), param(m, nd->bias), Y));
        else
            mx_linear_forward(n, in->size, out->size, X, param(m, nd->weight), param(m, nd->bias), Y);
        break;
    case CNN_DROPOUT:
        if (m->training) {
            mx_rng rng;
            rng_load(m, g, &rng);
            if (pl && in->blocked) cnn_cpu_dropout_forward_blocked(n, in->c, hw, nd->p, &rng, X, Y, nd->mask);
            else mx_dropout_forward(count, nd->p, &rng, X, Y, nd->mask);
            rng_store(m, g, &rng);
        } else {
            memcpy(Y, X, count * sizeof(float));
        }
        break;
    }
    charge(g, (int)nd->op, 0, t);
    if (nd->relu && !relu_done) {
        if (pl) cnn_cpu_relu_forward(count, Y);
        else mx_relu_forward(count, Y, Y);
        charge(g, CNN_PROF_RELU, 0, t);
    }
}

const float *cnn_forward(mx_model *m, const float *x, size_t n)
{
    cnn_graph *g = m->impl;
    g->input = x;
    g->fwd_training = m->training;
    g->fwd_inference = 0;
    /* The backward runs on the same plans (or the same reference layers). With
     * plans, every node has an entry (its oneDNN plans, or none: then the cpu
     * backend's own kernels where it has them, else the reference layer), and
     * tensors marked blocked are nChw16c; without (the reference layers, or a
     * batch size whose plans could not be made) every tensor is NCHW. */
    const cnn_plan_set *plans = g->backend == MX_BACKEND_CPU ? cnn_dnnl_plans(g, n, 0) : NULL;
    g->fwd_plans = plans;
    double t = g->profile ? now_s() : 0;
    g->prof_calls[0]++;
    for (size_t k = 0; k < g->num_nodes; k++) forward_node(m, g, &g->nodes[k], plans ? &plans->node[k] : NULL, n, &t);
    return g->tensors[g->nodes[g->num_nodes - 1].out].data;
}

/* Convolution nd's weights and bias with the batch norm after it folded in,
 * as PyTorch's fuse_conv_bn_eval: a = gamma / sqrt(running_var + eps),
 * w' = a w per output channel, b' = beta + a (b - running_mean). */
static void fold_batch_norm(mx_model *m, const cnn_graph *g, const cnn_node *nd, float *w, float *b)
{
    const cnn_node *bn = &g->nodes[nd->fold_bn];
    const size_t out = nd->conv.out_channels, per = m->tensors[nd->weight].numel / out;
    const float *wsrc = param(m, nd->weight), *bsrc = param(m, nd->bias);
    const float *gamma = param(m, bn->weight), *beta = param(m, bn->bias);
    const float *mean = buffer(m, bn->buffer), *var = buffer(m, bn->buffer + 1);
    for (size_t o = 0; o < out; o++) {
        const double a = (double)gamma[o] / sqrt((double)var[o] + MX_BN_EPS);
        for (size_t i = 0; i < per; i++) w[o * per + i] = (float)(a * wsrc[o * per + i]);
        b[o] = (float)(beta[o] + a * ((bsrc ? bsrc[o] : 0.0) - mean[o]));
    }
}

/* Convolution nd's weights as cnn_predict runs them: the batch norm after it
 * folded in (fold_bn), then for the Winograd kernel transformed (*u); into
 * the node's place in the graph's pred_cache when it has one, else into the
 * shared g->fold and g->wino_u. */
static void predict_weights(mx_model *m, cnn_graph *g, const cnn_node *nd, const float **w, const float **b,
                            const float **u)
{
    float *fw = g->fold, *fu = g->wino_u;
    if (nd->pred_cache_at != CNN_NONE) {
        fw = g->pred_cache + nd->pred_cache_at;
        fu = fw + (nd->fold_bn >= 0 ? nd->pred_cache_wino_at : 0);
    }
    *w = param(m, nd->weight), *b = param(m, nd->bias), *u = NULL;
    if (nd->fold_bn >= 0) {
        fold_batch_norm(m, g, nd, fw, fw + m->tensors[nd->weight].numel);
        *w = fw, *b = fw + m->tensors[nd->weight].numel;
    }
    if (nd->wino) {
        mx_wino_transform_weights(&nd->conv, *w, fu);
        *u = fu;
    }
}

/* cnn_predict on one chunk of at most CNN_PREDICT_CHUNK samples, with the
 * weights already in pred_cache when `cached`: the logits, in the last tensor. */
static const float *predict_chunk(mx_model *m, cnn_graph *g, const float *x, size_t n, int cached)
{
    const cnn_plan_set *plans = cnn_dnnl_plans(g, n, 1);
    if (!plans) return cnn_forward(m, x, n);
    g->input = x;
    g->fwd_training = 0;
    g->fwd_inference = 1;
    g->fwd_plans = NULL;
    double t = g->profile ? now_s() : 0;
    g->prof_calls[0]++;
    for (size_t k = 0; k < g->num_nodes; k++) {
        cnn_node *nd = &g->nodes[k];
        const cnn_node_plan *pl = &plans->node[k];
        if (nd->fused) continue;
        if (nd->op != CNN_CONV || (nd->fold_bn < 0 && !nd->wino)) {
            forward_node(m, g, nd, pl, n, &t);
            continue;
        }
        const float *w, *b, *u;
        if (cached && nd->pred_cache_at != CNN_NONE) {
            const float *at = g->pred_cache + nd->pred_cache_at;
            w = nd->fold_bn >= 0 ? at : param(m, nd->weight);
            b = nd->fold_bn >= 0 ? at + m->tensors[nd->weight].numel : param(m, nd->bias);
            u = nd->wino ? at + (nd->fold_bn >= 0 ? nd->pred_cache_wino_at : 0) : NULL;
        } else {
            predict_weights(m, g, nd, &w, &b, &u);
        }
        float *Y = g->tensors[nd->pred_out].data;
        const float *addend = nd->fold_add >= 0 ? tensor_data(g, nd->sum_in) : NULL;
        if (u) mx_wino_forward(&nd->conv, n, tensor_data(g, nd->in), u, b, addend, nd->pred_relu, Y);
        else must(mx_dnnl_conv2d_forward_add(pl->conv, n, tensor_data(g, nd->in), w, b, addend, Y));
        charge(g, CNN_CONV, 0, &t);
    }
    return g->tensors[g->nodes[g->num_nodes - 1].out].data;
}

/* On networks with Winograd layers (cnn_graph.pred_chunked) large batches
 * run in near-equal chunks of at most CNN_PREDICT_CHUNK samples (at most two
 * sizes, so two plan sets), each through the whole network while its
 * activations are still in cache: resnet20's 16-channel activations at
 * batch 128 are 6.4 MB, and the Winograd kernel at batch 16-32 ran 1.7x
 * faster per image than at 128, where it waited on memory. Networks of
 * wider layers keep the whole batch: chunks took preact18's eval from 740 to
 * 580 img/s (oneDNN's kernels for 64-512 channels want the large batch).
 * The folded and transformed weights are then made once per call
 * (pred_cache), not once per chunk: they cost 0.33 ms a chunk on resnet20. */
const float *cnn_predict(mx_model *m, const float *x, size_t n)
{
    cnn_graph *g = m->impl;
    const int training = m->training;
    m->training = 0;
    const float *out;
    if (g->backend != MX_BACKEND_CPU) {
        out = cnn_forward(m, x, n);
    } else if (!g->pred_chunked || n <= CNN_PREDICT_CHUNK) {
        out = predict_chunk(m, g, x, n, 0);
    } else {
        const int cached = g->pred_cache != NULL;
        for (size_t k = 0; cached && k < g->num_nodes; k++) {
            const float *w, *b, *u;
            if (g->nodes[k].pred_cache_at != CNN_NONE) predict_weights(m, g, &g->nodes[k], &w, &b, &u);
        }
        const size_t chunks = (n + CNN_PREDICT_CHUNK - 1) / CNN_PREDICT_CHUNK;
        const size_t in = g->tensors[0].size, classes = g->tensors[g->nodes[g->num_nodes - 1].out].size;
        for (size_t c = 0, start = 0; c < chunks; c++) {
            const size_t len = n / chunks + (c < n % chunks);
            memcpy(g->pred_logits + start * classes, predict_chunk(m, g, x + start * in, len, cached),
                   len * classes * sizeof(float));
            start += len;
        }
        out = g->pred_logits;
    }
    m->training = training;
    return out;
}

/* Batch norm bn's output (its ReLU applied), which shares its buffer with
 * other tensors (cnn_graph.c plan_recompute), again for the backward: from the
 * constants the forward saved when it ran on the cpu kernels (bit for bit);
 * after a forward on the reference layers (a batch size without plans), from
 * the saved statistics (training) or the running ones, the eval forward's
 * own arithmetic. */
static void recompute_bn_output(mx_model *m, cnn_graph *g, const cnn_node *bn, int cpu, size_t n)
{
    const cnn_tensor *in = &g->tensors[bn->in];
    const size_t C = in->c, hw = in->h * in->w;
    const float *X = tensor_data(g, bn->in);
    float *Y = g->tensors[bn->out].data;
    if (cpu) {
        cnn_cpu_bn_apply(n, C, hw, in->blocked, X, bn->affine, bn->relu, Y);
        return;
    }
    const float *gamma = param(m, bn->weight), *beta = param(m, bn->bias);
    if (g->fwd_training) {
        const size_t stride = C * hw;
        for (size_t c = 0; c < C; c++) {
            const double mean = bn->save_mean[c], invstd = bn->save_invstd[c], gc = gamma ? gamma[c] : 1.0;
            const double b = beta ? beta[c] : 0.0;
            for (size_t s = 0; s < n; s++)
                for (size_t i = 0; i < hw; i++) {
                    const size_t at = s * stride + c * hw + i;
                    Y[at] = (float)((X[at] - mean) * invstd * gc + b);
                }
        }
    } else {
        mx_batchnorm2d_forward_eval(n, C, hw, X, gamma, beta, buffer(m, bn->buffer), buffer(m, bn->buffer + 1),
                                    MX_BN_EPS, Y);
    }
    if (bn->relu) mx_relu_forward(n * C * hw, Y, Y);
}

/* Where tensor t's gradient lives: its slot, or the caller's dx (maybe NULL) for the input. */
static float *grad_of(const cnn_graph *g, int t, float *dx) { return t ? g->tensors[t].grad : dx; }

/* Where node nd should write its input's gradient: the gradient itself, or
 * its scratch slot when it must be added to what a later consumer already
 * wrote there. */
static float *grad_target(const cnn_graph *g, const cnn_node *nd, float *dx)
{
    float *dst = grad_of(g, nd->in, dx);
    return dst && nd->acc_in ? g->slots[nd->scratch_slot] : dst;
}

/* The residual add's backward: dy (through the add's ReLU, fused on the cpu
 * backend) into both inputs' gradients, copied or added. */
/* The residual add's backward (node k). Both inputs' gradients are the same
 * (masked) dy; when both are written fresh and one input is the output of
 * a batch norm at node k - 1 (next in the backward, which only reads its
 * dy), that gradient is not written: *alias_t is that tensor and *alias_p
 * the other input's gradient, which node k - 1 reads instead (a pass over
 * the activation fewer per residual block). */
static void add_backward(const cnn_graph *g, size_t k, int cpu, float *dy, float *dx, size_t n, int *alias_t,
                         float **alias_p)
{
    const cnn_node *nd = &g->nodes[k];
    int inputs[2] = {nd->in, nd->in2}, acc[2] = {nd->acc_in, nd->acc_in2};
    size_t count = n * g->tensors[nd->out].size;
    const cnn_node *prev = k > 0 ? &g->nodes[k - 1] : NULL;
    if (cpu && prev && prev->op == CNN_BN && !acc[0] && !acc[1] && inputs[0] != inputs[1] && inputs[0] > 0 &&
        inputs[1] > 0 && (prev->out == inputs[0] || prev->out == inputs[1])) {
        const int skip = prev->out == inputs[0] ? 0 : 1;
        *alias_t = inputs[skip];
        *alias_p = grad_of(g, inputs[1 - skip], dx);
        cnn_cpu_add_backward(count, nd->relu ? g->tensors[nd->out].data : NULL, dy, *alias_p, 0, NULL, 0);
        return;
    }
    if (cpu) {
        cnn_cpu_add_backward(count, nd->relu ? g->tensors[nd->out].data : NULL, dy, grad_of(g, inputs[0], dx), acc[0],
                             grad_of(g, inputs[1], dx), acc[1]);
        return;
    }
    if (nd->relu) mx_relu_backward(count, g->tensors[nd->out].data, dy, dy);
    for (int i = 0; i < 2; i++) {
        float *dst = grad_of(g, inputs[i], dx);
        if (!dst) continue;
        if (acc[i]) mx_grad_accumulate(count, dst, dy);
        else memcpy(dst, dy, count * sizeof(float));
    }
}

/* Batch norm's backward on the backend its forward ran on; Y non-NULL: the
 * ReLU the cpu kernel fused, whose backward it applies to dY first. */
static void bn_backward(mx_model *m, const cnn_graph *g, const cnn_node *nd, int cpu, size_t n,
                        const float *X, const float *Y, const float *relu_k, float *dY, float *dX, int dx_bf16)
{
    const cnn_tensor *in = &g->tensors[nd->in];
    const size_t hw = in->h * in->w, C = in->c;
    const float *gamma = param(m, nd->weight), *rmean = buffer(m, nd->buffer), *rvar = buffer(m, nd->buffer + 1);
    float *dgamma = grad(m, nd->weight), *dbeta = grad(m, nd->bias);
    if (g->fwd_training) {
        cnn_bn_sync sync_at, *sync = bn_sync_of(g, nd, &sync_at);
        if (cpu && in->blocked)
            cnn_cpu_bn_backward_blocked_synced(n, C, hw, X, Y, relu_k, dY, gamma, nd->save_mean, nd->save_invstd, dX,
                                               dx_bf16, dgamma, dbeta, g->bn_partial, sync);
        else if (cpu)
            cnn_cpu_bn_backward_synced(n, C, hw, X, Y, dY, gamma, nd->save_mean, nd->save_invstd, dX, dgamma, dbeta,
                                       sync);
        else if (sync)
            sync_unsupported();
        else
            mx_batchnorm2d_backward(n, C, hw, X, dY, gamma, nd->save_mean, nd->save_invstd, dX, dgamma, dbeta);
    } else if (cpu && in->blocked) {
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, X, Y, relu_k, dY, gamma, rmean, rvar, MX_BN_EPS, dX, dx_bf16, dgamma,
                                         dbeta, g->bn_partial);
    } else if (cpu) {
        cnn_cpu_bn_backward_eval(n, C, hw, X, Y, dY, gamma, rmean, rvar, MX_BN_EPS, dX, dgamma, dbeta);
    } else {
        mx_batchnorm2d_backward_eval(n, C, hw, X, dY, gamma, rmean, rvar, MX_BN_EPS, dX, dgamma, dbeta);
    }
}

/* Whether convolution node k takes its dy as bfloat16 from the batch norm
 * after it: a bfloat16 plan that reads dy so (mx_dnnl_conv2d_takes_bf16_dy),
 * no ReLU of its own, its output (nChw16c) read by that batch norm alone.
 * The batch norm's backward then writes its input gradient rounded to
 * bfloat16, as the plan's reorder would have, and the reorder's pass is
 * saved. */
static int conv_takes_bf16_dy(const cnn_graph *g, const cnn_plan_set *plans, size_t k)
{
    if (!plans || k + 1 >= g->num_nodes) return 0;
    const cnn_node *cv = &g->nodes[k], *bn = &g->nodes[k + 1];
    if (cv->op != CNN_CONV || bn->op != CNN_BN || bn->in != cv->out || cv->relu || bn->acc_in ||
        !g->tensors[cv->out].blocked || !plans->node[k].conv || !mx_dnnl_conv2d_takes_bf16_dy(plans->node[k].conv))
        return 0;
    for (size_t j = 0; j < g->num_nodes; j++)
        if (j != k + 1 && (g->nodes[j].in == cv->out || g->nodes[j].in2 == cv->out)) return 0;
    return 1;
}

/* Whether the backward can do without batch norm node b's output (its ReLU
 * applied), which the memory plan left to be recomputed (cnn_graph.c
 * plan_recompute): when it runs on the cpu kernels on nChw16c, and every
 * reader is a convolution that kept its input from the forward in bfloat16
 * (mx_dnnl_conv2d_kept_x_bytes). The batch norm's own backward then takes its
 * ReLU's mask from its input and the forward's constants (bit for bit the
 * same), and the recomputing pass is saved. */
static int bn_output_unneeded(const cnn_graph *g, const cnn_plan_set *plans, size_t b)
{
    const cnn_node *bn = &g->nodes[b];
    if (!plans || bn->op != CNN_BN || !bn->relu || !bn->affine || !g->tensors[bn->in].blocked) return 0;
    for (size_t j = 0; j < g->num_nodes; j++) {
        const cnn_node *nd = &g->nodes[j];
        if (nd->in != bn->out && nd->in2 != bn->out) continue;
        if (nd->op != CNN_CONV || !nd->x_bf16 || !plans->node[j].conv ||
            !mx_dnnl_conv2d_kept_x_bytes(plans->node[j].conv))
            return 0;
    }
    return 1;
}

void cnn_backward(mx_model *m, const float *dlogits, size_t n, float *dx)
{
    cnn_graph *g = m->impl;
    if (g->fwd_inference) {
        fprintf(stderr, "mixreg: internal error: a backward after mx_model_predict (it keeps nothing for one)\n");
        abort();
    }
    const cnn_plan_set *plans = g->fwd_plans;
    double t = g->profile ? now_s() : 0;
    g->prof_calls[1]++;
    int alias_t = -1;       /* a tensor whose gradient lives at alias_p (add_backward) */
    float *alias_p = NULL;
    for (size_t k = g->num_nodes; k-- > 0;) {
        const cnn_node *nd = &g->nodes[k];
        const cnn_node_plan *pl = plans ? &plans->node[k] : NULL;
        if (nd->recompute_bn >= 0 && !bn_output_unneeded(g, plans, (size_t)nd->recompute_bn)) {
            recompute_bn_output(m, g, &g->nodes[nd->recompute_bn], plans != NULL, n);
            charge(g, CNN_BN, 1, &t);
        }
        const cnn_tensor *in = &g->tensors[nd->in], *out = &g->tensors[nd->out];
        const size_t count = n * out->size;
        /* The last layer reads the caller's dlogits (never written: it has no ReLU). */
        float *dY = k + 1 == g->num_nodes ? (float *)(uintptr_t)dlogits : out->grad;
        if (alias_t >= 0 && alias_t == nd->out) dY = alias_p; /* the add before wrote it there */
        alias_t = -1;
        if (nd->op == CNN_ADD) {
            add_backward(g, k, pl != NULL, dY, dx, n, &alias_t, &alias_p);
            charge(g, CNN_ADD, 1, &t);
            continue;
        }
        /* The ReLU's backward, unless the cpu batch-norm kernel fused it (fed the output instead). */
        const int fused_relu = nd->relu && pl && nd->op == CNN_BN;
        if (nd->relu && !fused_relu) {
            if (pl) cnn_cpu_relu_backward(count, out->data, dY);
            else mx_relu_backward(count, out->data, dY, dY);
            charge(g, CNN_PROF_RELU, 1, &t);
        }
        const float *X = tensor_data(g, nd->in);
        float *dX = grad_target(g, nd, dx);
        const size_t hw = in->h * in->w;
        switch (nd->op) {
        case CNN_CONV: {
            const int dy16 = pl && pl->conv && conv_takes_bf16_dy(g, plans, k);
            const void *x_kept = conv_kept_input(g, pl, k);
            if (dy16 || x_kept)
                must(mx_dnnl_conv2d_backward_bf16(pl->conv, n, X, x_kept, param(m, nd->weight), dy16 ? NULL : dY,
                                                  dy16 ? (const uint16_t *)(void *)dY : NULL, dX, grad(m, nd->weight),
                                                  grad(m, nd->bias)));
            else if (pl && pl->conv)
                must(mx_dnnl_conv2d_backward(pl->conv, n, X, param(m, nd->weight), dY, dX, grad(m, nd->weight),
                                             grad(m, nd->bias)));
            else
                mx_conv2d_backward(&nd->conv, n, X, param(m, nd->weight), dY, dX, grad(m, nd->weight),
                                   grad(m, nd->bias), g->workspace);
            break;
        }
        case CNN_BN:
        {
            /* Without its output (not recomputed), the ReLU's mask from the input. */
            const int from_input = fused_relu && bn_output_unneeded(g, plans, k);
            bn_backward(m, g, nd, pl != NULL, n, X, fused_relu && !from_input ? out->data : NULL,
                        from_input ? nd->affine : NULL, dY, dX, k > 0 && conv_takes_bf16_dy(g, plans, k - 1));
        }
            break;
        case CNN_MAXPOOL:
            if (dX && pl && pl->pool) must(mx_dnnl_pool2d_backward(pl->pool, n, nd->argmax, dY, dX));
            else if (dX) mx_maxpool2d_backward(&nd->pool, n, nd->argmax, dY, dX);
            break;
        case CNN_GAP:
            if (dX && pl && in->blocked) cnn_cpu_gap_backward_blocked(n, in->c, hw, dY, dX);
            else if (dX) mx_global_avgpool_backward(n, in->c, hw, dY, dX);
            break;
        case CNN_LINEAR:
            if (pl && pl->linear)
                must(mx_dnnl_linear_backward(pl->linear, n, X, param(m, nd->weight), dY, dX, grad(m, nd->weight),
                                             grad(m, nd->bias)));
            else
                mx_linear_backward(n, in->size, out->size, X, param(m, nd->weight), dY, dX, grad(m, nd->weight),
                                   grad(m, nd->bias));
            break;
        case CNN_DROPOUT:
            if (dX && g->fwd_training && pl && in->blocked)
                cnn_cpu_dropout_backward_blocked(n, in->c, hw, nd->p, nd->mask, dY, dX);
            else if (dX && g->fwd_training) mx_dropout_backward(count, nd->p, nd->mask, dY, dX);
            else if (dX) memcpy(dX, dY, count * sizeof(float));
            break;
        case CNN_ADD:
            break;
        }
        charge(g, (int)nd->op, 1, &t);
        float *dst = grad_of(g, nd->in, dx);
        if (dst && nd->acc_in) {
            if (pl) cnn_cpu_grad_pass(n * in->size, dst, g->slots[nd->scratch_slot], 1);
            else mx_grad_accumulate(n * in->size, dst, g->slots[nd->scratch_slot]);
        }
        charge(g, CNN_PROF_ACCUMULATE, 1, &t);
    }
}
