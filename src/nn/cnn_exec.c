/* Running the CNN layer graph: initialisation, forward and backward, each a
 * walk over the node list with buffers planned by cnn_graph.c. */
#include <string.h>

#include "mixreg/rng.h"
#include "nn/cnn_internal.h"

static float *param(mx_model *m, size_t i) { return i == CNN_NONE ? NULL : m->params + m->tensors[i].offset; }
static float *grad(mx_model *m, size_t i) { return i == CNN_NONE ? NULL : m->grads + m->tensors[i].offset; }
static float *buffer(mx_model *m, size_t i) { return m->buffers[i].data; }

static const float *tensor_data(const cnn_graph *g, int t) { return t ? g->tensors[t].data : g->input; }

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

const float *cnn_forward(mx_model *m, const float *x, size_t n)
{
    cnn_graph *g = m->impl;
    g->input = x;
    g->fwd_training = m->training;
    for (size_t k = 0; k < g->num_nodes; k++) {
        cnn_node *nd = &g->nodes[k];
        const cnn_tensor *in = &g->tensors[nd->in], *out = &g->tensors[nd->out];
        const float *X = tensor_data(g, nd->in);
        float *Y = out->data;
        const size_t hw = in->h * in->w;
        switch (nd->op) {
        case CNN_CONV:
            mx_conv2d_forward(&nd->conv, n, X, param(m, nd->weight), param(m, nd->bias), Y, g->workspace);
            break;
        case CNN_BN:
            if (m->training) {
                mx_batchnorm2d_forward_train(n, in->c, hw, X, param(m, nd->weight), param(m, nd->bias), MX_BN_MOMENTUM,
                                             MX_BN_EPS, buffer(m, nd->buffer), buffer(m, nd->buffer + 1), Y,
                                             nd->save_mean, nd->save_invstd);
                (*(int64_t *)m->buffers[nd->buffer + 2].data)++;
            } else {
                mx_batchnorm2d_forward_eval(n, in->c, hw, X, param(m, nd->weight), param(m, nd->bias),
                                            buffer(m, nd->buffer), buffer(m, nd->buffer + 1), MX_BN_EPS, Y);
            }
            break;
        case CNN_ADD:
            mx_add_forward(n * out->size, X, tensor_data(g, nd->in2), Y);
            break;
        case CNN_MAXPOOL:
            mx_maxpool2d_forward(&nd->pool, n, X, Y, nd->argmax);
            break;
        case CNN_GAP:
            mx_global_avgpool_forward(n, in->c, hw, X, Y);
            break;
        case CNN_LINEAR:
            mx_linear_forward(n, in->size, out->size, X, param(m, nd->weight), param(m, nd->bias), Y);
            break;
        case CNN_DROPOUT:
            if (m->training) {
                mx_rng rng;
                rng_load(m, g, &rng);
                mx_dropout_forward(n * out->size, nd->p, &rng, X, Y, nd->mask);
                rng_store(m, g, &rng);
            } else {
                memcpy(Y, X, n * out->size * sizeof(float));
            }
            break;
        }
        if (nd->relu) mx_relu_forward(n * out->size, Y, Y);
    }
    return g->tensors[g->nodes[g->num_nodes - 1].out].data;
}

/* Where tensor t's gradient lives: its slot, or the caller's dx (maybe NULL) for the input. */
static float *grad_of(const cnn_graph *g, int t, float *dx) { return t ? g->tensors[t].grad : dx; }

/* Where a layer should write t's gradient: the gradient itself, or the scratch
 * buffer when it must be added to what a later consumer already wrote there. */
static float *grad_target(const cnn_graph *g, int t, int acc, float *dx)
{
    float *dst = grad_of(g, t, dx);
    return dst && acc ? g->scratch : dst;
}

static void grad_finish(const cnn_graph *g, int t, int acc, float *dx, size_t n)
{
    float *dst = grad_of(g, t, dx);
    if (dst && acc) mx_grad_accumulate(n * g->tensors[t].size, dst, g->scratch);
}

/* The residual add's backward: dy into both inputs' gradients (copied or added). */
static void add_backward(const cnn_graph *g, const cnn_node *nd, const float *dy, float *dx, size_t n)
{
    int inputs[2] = {nd->in, nd->in2}, acc[2] = {nd->acc_in, nd->acc_in2};
    size_t count = n * g->tensors[nd->out].size;
    for (int i = 0; i < 2; i++) {
        float *dst = grad_of(g, inputs[i], dx);
        if (!dst) continue;
        if (acc[i]) mx_grad_accumulate(count, dst, dy);
        else memcpy(dst, dy, count * sizeof(float));
    }
}

void cnn_backward(mx_model *m, const float *dlogits, size_t n, float *dx)
{
    cnn_graph *g = m->impl;
    for (size_t k = g->num_nodes; k-- > 0;) {
        const cnn_node *nd = &g->nodes[k];
        const cnn_tensor *in = &g->tensors[nd->in], *out = &g->tensors[nd->out];
        /* The last layer reads the caller's dlogits (never written: it has no ReLU). */
        float *dY = k + 1 == g->num_nodes ? (float *)(uintptr_t)dlogits : out->grad;
        if (nd->relu) mx_relu_backward(n * out->size, out->data, dY, dY);
        if (nd->op == CNN_ADD) {
            add_backward(g, nd, dY, dx, n);
            continue;
        }
        const float *X = tensor_data(g, nd->in);
        float *dX = grad_target(g, nd->in, nd->acc_in, dx);
        const size_t hw = in->h * in->w;
        switch (nd->op) {
        case CNN_CONV:
            mx_conv2d_backward(&nd->conv, n, X, param(m, nd->weight), dY, dX, grad(m, nd->weight), grad(m, nd->bias),
                               g->workspace);
            break;
        case CNN_BN:
            if (g->fwd_training)
                mx_batchnorm2d_backward(n, in->c, hw, X, dY, param(m, nd->weight), nd->save_mean, nd->save_invstd, dX,
                                        grad(m, nd->weight), grad(m, nd->bias));
            else
                mx_batchnorm2d_backward_eval(n, in->c, hw, X, dY, param(m, nd->weight), buffer(m, nd->buffer),
                                             buffer(m, nd->buffer + 1), MX_BN_EPS, dX, grad(m, nd->weight),
                                             grad(m, nd->bias));
            break;
        case CNN_MAXPOOL:
            if (dX) mx_maxpool2d_backward(&nd->pool, n, nd->argmax, dY, dX);
            break;
        case CNN_GAP:
            if (dX) mx_global_avgpool_backward(n, in->c, hw, dY, dX);
            break;
        case CNN_LINEAR:
            mx_linear_backward(n, in->size, out->size, X, param(m, nd->weight), dY, dX, grad(m, nd->weight),
                               grad(m, nd->bias));
            break;
        case CNN_DROPOUT:
            if (dX && g->fwd_training) mx_dropout_backward(n * out->size, nd->p, nd->mask, dY, dX);
            else if (dX) memcpy(dX, dY, n * out->size * sizeof(float));
            break;
        case CNN_ADD:
            break;
        }
        grad_finish(g, nd->in, nd->acc_in, dx, n);
    }
}
