/* Running the CNN layer graph: initialisation, forward and backward, each a
 * walk over the node list with buffers planned by cnn_memory_plan.c, every node run
 * through the backend's table of kernels (cnn_backend.h). Nothing here
 * depends on which backend that is. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixreg/rng.h"
#include "nn/cnn_internal.h"

double cnn_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cnn_charge(cnn_graph *g, int kind, int dir, double *t)
{
    if (!g->profile) return;
    double now = cnn_now_s();
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

/* mx_model_ops' forward and backward return no status: a kernel that
 * failed on a plan made for this shape and batch is a bug, not a condition a
 * caller could handle. */
static void must(const cnn_graph *g, mx_status st)
{
    if (st == MX_OK) return;
    fprintf(stderr, "mixreg: internal error in the %s backend: %s\n", g->be->name, mx_error_message());
    abort();
}

static void fill_uniform(mx_rng *rng, float *p, size_t count, double bound)
{
    for (size_t i = 0; i < count; i++) p[i] = (float)((2.0 * mx_rng_uniform(rng) - 1.0) * bound);
}

void cnn_rng_load(const mx_model *m, const cnn_graph *g, mx_rng *rng)
{
    const int64_t *w = m->buffers[g->rng_buffer].data;
    for (int i = 0; i < 2; i++) rng->key[i] = (uint32_t)w[i];
    for (int i = 0; i < 4; i++) rng->ctr[i] = (uint32_t)w[2 + i], rng->buf[i] = (uint32_t)w[6 + i];
    rng->used = w[10] >= 0 && w[10] <= 4 ? (uint32_t)w[10] : 4;  /* a damaged state still never reads past buf */
}

void cnn_rng_store(mx_model *m, const cnn_graph *g, const mx_rng *rng)
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
        cnn_rng_store(m, g, &rng);
    }
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->op != CNN_BN) continue;
        size_t c = g->tensors[nd->in].c;
        memset(cnn_buffer(m, nd->buffer), 0, c * sizeof(float));
        float *var = cnn_buffer(m, nd->buffer + 1);
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
            fill_uniform(&rng, cnn_param(m, nd->weight), m->tensors[nd->weight].numel, nd->init_bound);
            if (nd->bias != CNN_NONE) fill_uniform(&rng, cnn_param(m, nd->bias), m->tensors[nd->bias].numel, nd->init_bound);
        } else if (nd->op == CNN_BN) {
            float *gamma = cnn_param(m, nd->weight);
            for (size_t i = 0; i < m->tensors[nd->weight].numel; i++) gamma[i] = 1.0f;
            memset(cnn_param(m, nd->bias), 0, m->tensors[nd->bias].numel * sizeof(float));
        }
    }
    cnn_reset_buffers(m, seed);
}

mx_status cnn_forward_node(const cnn_pass *p, size_t k, double *t)
{
    mx_model *m = p->m;
    cnn_graph *g = p->g;
    const cnn_backend *be = p->be;
    const cnn_node *nd = &g->nodes[k];
    const float *X = cnn_tensor_data(g, nd->in);
    float *Y = g->tensors[nd->out].data;
    const size_t count = p->n * g->tensors[nd->out].size;
    int relu_done = 0;
    mx_status st = MX_OK;
    switch (nd->op) {
    case CNN_CONV:
        st = be->conv_forward(p, k, X, Y, &relu_done);
        break;
    case CNN_BN:
        if (m->training) (*(int64_t *)m->buffers[nd->buffer + 2].data)++;
        st = be->bn_forward(p, k, X, Y, &relu_done);
        break;
    case CNN_ADD:
        st = be->add_forward(p, k, X, cnn_tensor_data(g, nd->in2), Y, &relu_done);
        break;
    case CNN_MAXPOOL:
        st = be->maxpool_forward(p, k, X, Y);
        break;
    case CNN_GAP:
        st = be->gap_forward(p, k, X, Y);
        break;
    case CNN_LINEAR:
        st = be->linear_forward(p, k, X, Y, &relu_done);
        break;
    case CNN_DROPOUT:
        st = be->dropout_forward(p, k, X, Y);
        break;
    }
    if (st != MX_OK) return st;
    cnn_charge(g, (int)nd->op, 0, t);
    if (nd->relu && !relu_done) {
        st = be->relu_forward(p, count, Y);
        cnn_charge(g, CNN_PROF_RELU, 0, t);
    }
    return st;
}

mx_status cnn_run_forward(mx_model *m, const float *x, size_t n, const float **logits)
{
    cnn_graph *g = m->impl;
    *logits = NULL;
    m->state_epoch++; /* it writes the whole arena, where a prediction may keep its weights */
    g->input = x;
    g->fwd_training = m->training;
    g->fwd_inference = 0;
    /* The backward runs on the same table and state (g->fwd_pass). */
    cnn_pass p = {m, g, n, g->be, NULL, 0};
    g->fwd_pass = (cnn_pass){0};
    mx_status st = g->be->begin ? g->be->begin(&p, 0) : MX_OK;
    if (st != MX_OK) return st;
    g->fwd_pass = p;
    double t = g->profile ? cnn_now_s() : 0;
    g->prof_calls[0]++;
    for (size_t k = 0; k < g->num_nodes; k++)
        if ((st = cnn_forward_node(&p, k, &t)) != MX_OK) return st;
    *logits = g->tensors[g->nodes[g->num_nodes - 1].out].data;
    return MX_OK;
}

mx_status cnn_run_predict(mx_model *m, const float *x, size_t n, const float **logits)
{
    cnn_graph *g = m->impl;
    const int training = m->training;
    m->training = 0;
    mx_status st = g->be->predict ? g->be->predict(m, x, n, logits) : cnn_run_forward(m, x, n, logits);
    m->training = training;
    return st;
}

/* Where node nd should write its input's gradient: the gradient itself, or
 * its scratch slot when it must be added to what a later consumer already
 * wrote there. */
static float *grad_target(const cnn_graph *g, const cnn_node *nd, float *dx)
{
    float *dst = cnn_grad_of(g, nd->in, dx);
    return dst && nd->acc_in ? nd->grad_scratch : dst;
}

/* Whether the executor runs node nd's ReLU's backward (unless the backend's
 * batch norm fuses it). */
static int relu_in_backward(const cnn_backend *be, const cnn_node *nd)
{
    return nd->relu && !(nd->op == CNN_BN && be->bn_backward_fuses_relu);
}

/* The range of the flat parameter array node nd's parameters take: [*lo, *hi). 0: none. */
static int node_params(const mx_model *m, const cnn_node *nd, size_t *lo, size_t *hi)
{
    const size_t ids[2] = {nd->weight, nd->bias};
    *lo = SIZE_MAX, *hi = 0;
    for (int i = 0; i < 2; i++) {
        if (ids[i] == CNN_NONE) continue;
        const mx_param_info *t = &m->tensors[ids[i]];
        if (t->offset < *lo) *lo = t->offset;
        if (t->offset + t->numel > *hi) *hi = t->offset + t->numel;
    }
    return *hi > 0;
}

size_t cnn_layer_grads_floats(const mx_model *m, const cnn_graph *g)
{
    size_t largest = 0, covered = 0, lo, hi;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (!node_params(m, nd, &lo, &hi)) continue;
        const size_t own = (nd->weight != CNN_NONE ? m->tensors[nd->weight].numel : 0) +
                           (nd->bias != CNN_NONE ? m->tensors[nd->bias].numel : 0);
        if (own != hi - lo) return 0; /* another's parameters between its own */
        covered += own;
        if (own > largest) largest = own;
    }
    return covered == m->param_count ? largest : 0; /* else some parameter belongs to no node */
}

mx_status cnn_run_backward(mx_model *m, const float *dlogits, size_t n, float *dx, const cnn_sgd_update *sgd)
{
    cnn_graph *g = m->impl;
    m->state_epoch++;
    if (g->fwd_inference)
        return mx_error_set(MX_ERR_ARG, "a backward after mx_model_predict (it keeps nothing for one)");
    if (!g->fwd_pass.be) return mx_error_set(MX_ERR_ARG, "a backward without a forward before it");
    cnn_pass p = g->fwd_pass;
    p.n = n;
    const cnn_backend *be = p.be;
    double t = g->profile ? cnn_now_s() : 0;
    g->prof_calls[1]++;
    int alias_t = -1;       /* a tensor whose gradient lives at alias_p (the add's backward) */
    const float *extra = NULL; /* a gradient node k left for the add at k - 1 to add into its dy */
    size_t relu_by_pool = CNN_NONE; /* a node whose ReLU's backward the max pooling after it did */
    float *alias_p = NULL;
    mx_status st = MX_OK;
    for (size_t k = g->num_nodes; k-- > 0;) {
        const cnn_node *nd = &g->nodes[k];
        /* The first convolution's output, not kept (cnn_node.recompute_conv):
         * its weights are the forward's still, stepped at its own backward. */
        if (nd->recompute_conv >= 0) {
            const cnn_node *cv = &g->nodes[nd->recompute_conv];
            int relu_done;
            st = be->conv_forward(&p, (size_t)nd->recompute_conv, cnn_tensor_data(g, cv->in),
                                  g->tensors[cv->out].data, &relu_done);
            if (st != MX_OK) return st;
            cnn_charge(g, CNN_CONV, 1, &t);
        }
        /* A batch norm's output recomputed where this node's input gradient
         * goes (cnn_node.recompute_in_dx) is its input there. */
        float *recomputed = NULL;
        if (nd->recompute_bn >= 0) {
            const int b = nd->recompute_bn;
            recomputed = nd->recompute_in_dx ? grad_target(g, nd, dx) : g->tensors[g->nodes[b].out].data;
            if ((st = be->bn_recompute(&p, (size_t)b, recomputed)) != MX_OK) return st;
            cnn_charge(g, CNN_BN, 1, &t);
        }
        const cnn_tensor *in = &g->tensors[nd->in], *out = &g->tensors[nd->out];
        const size_t count = n * out->size;
        /* The last layer reads the caller's dlogits (never written: it has no ReLU). */
        float *dY = k + 1 == g->num_nodes ? (float *)(uintptr_t)dlogits : out->grad;
        if (alias_t >= 0 && alias_t == nd->out) dY = alias_p; /* the add before wrote it there */
        alias_t = -1;
        const float *dY_extra = extra;
        extra = NULL;
        if (nd->op == CNN_ADD) {
            if ((st = be->add_backward(&p, k, dY, dY_extra, dx, &alias_t, &alias_p)) != MX_OK) return st;
            cnn_charge(g, CNN_ADD, 1, &t);
            continue;
        }
        /* The ReLU's backward, unless the backend's batch norm fuses it. */
        if (relu_in_backward(be, nd) && k != relu_by_pool) {
            if ((st = be->relu_backward(&p, count, out->data, dY)) != MX_OK) return st;
            cnn_charge(g, CNN_PROF_RELU, 1, &t);
        }
        const float *X = nd->recompute_in_dx ? recomputed : cnn_tensor_data(g, nd->in);
        float *dX = grad_target(g, nd, dx);
        /* The node's parameter gradients into the layer buffer, stepped below. */
        size_t lo = 0, hi = 0;
        if (sgd && node_params(m, nd, &lo, &hi)) g->node_grads = g->layer_grads, g->node_grads_at = lo;
        switch (nd->op) {
        case CNN_CONV:
            st = be->conv_backward(&p, k, X, dY, dX);
            break;
        case CNN_BN:
            st = be->bn_backward(&p, k, X, dY, dX);
            break;
        case CNN_MAXPOOL:
            if (dX) {
                /* The ReLU before it, if the pooling is the only reader of
                 * its output (a second reader, later in the network, would
                 * have run its backward first: acc_in), goes with the
                 * pooling's backward: one pass less over the larger tensor. */
                const int fuse = k > 0 && g->nodes[k - 1].out == nd->in && !nd->acc_in &&
                                 relu_in_backward(be, &g->nodes[k - 1]);
                st = be->maxpool_backward(&p, k, dY, dX, fuse);
                if (fuse) relu_by_pool = k - 1;
            }
            break;
        case CNN_GAP:
            if (dX) st = be->gap_backward(&p, k, dY, dX);
            break;
        case CNN_LINEAR:
            st = be->linear_backward(&p, k, X, dY, dX);
            break;
        case CNN_DROPOUT:
            if (dX) st = be->dropout_backward(&p, k, dY, dX);
            break;
        case CNN_ADD:
            break;
        }
        g->node_grads = NULL;
        if (st != MX_OK) return st;
        if (hi) mx_sgd_step(sgd->cfg, sgd->lr, m->params + lo, g->layer_grads, sgd->velocity + lo, hi - lo);
        cnn_charge(g, (int)nd->op, 1, &t);
        float *dst = cnn_grad_of(g, nd->in, dx);
        if (dst && nd->acc_in) {
            /* The node before is a residual add writing that gradient's
             * tensor, its last reader in the backward: it adds this one as
             * it reads dy (same bits, a pass fewer). Not where the add's two
             * inputs are one tensor, whose gradient buffer the scratch
             * slot could be. */
            const cnn_node *add = k > 0 ? &g->nodes[k - 1] : NULL;
            if (add && add->op == CNN_ADD && add->out == nd->in && add->in != add->in2)
                extra = nd->grad_scratch;
            else if ((st = be->grad_accumulate(&p, n * in->size, dst, nd->grad_scratch)) != MX_OK)
                return st;
        }
        cnn_charge(g, CNN_PROF_ACCUMULATE, 1, &t);
    }
    return MX_OK;
}

const float *cnn_forward(mx_model *m, const float *x, size_t n)
{
    const float *logits;
    must(m->impl, cnn_run_forward(m, x, n, &logits));
    return logits;
}

const float *cnn_predict(mx_model *m, const float *x, size_t n)
{
    const float *logits;
    must(m->impl, cnn_run_predict(m, x, n, &logits));
    return logits;
}

void cnn_backward(mx_model *m, const float *dlogits, size_t n, float *dx)
{
    must(m->impl, cnn_run_backward(m, dlogits, n, dx, NULL));
}

void cnn_backward_sgd(mx_model *m, const float *dlogits, size_t n, const mx_sgd_config *cfg, double lr,
                      float *velocity)
{
    cnn_graph *g = m->impl;
    if (!g->layer_grads) {
        must(g, cnn_run_backward(m, dlogits, n, NULL, NULL));
        mx_sgd_step(cfg, lr, m->params, m->grads, velocity, m->param_count);
        return;
    }
    const cnn_sgd_update sgd = {cfg, lr, velocity};
    must(g, cnn_run_backward(m, dlogits, n, NULL, &sgd));
}
