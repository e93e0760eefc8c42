/* The "ref" backend's table: every node on the reference layers
 * (include/mixreg/layers.h), NCHW float32 on the host, no plans and no state.
 * The cpu backend runs a batch size whose plans could not be made on it too. */
#include <string.h>

#include "nn/cnn_internal.h"

/* The reference layers have no sync form: mx_model_set_bn_sync refuses this
 * backend (cnn_backend.has_sync_bn), so a sync batch norm here is a bug. */
static mx_status sync_unsupported(void)
{
    return mx_error_set(MX_ERR_UNSUPPORTED, "sync batch norm on the reference layers");
}

static mx_status conv_forward(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done)
{
    const cnn_node *nd = &p->g->nodes[k];
    *relu_done = 0;
    mx_conv2d_forward(&nd->conv, p->n, x, cnn_param(p->m, nd->weight), cnn_param(p->m, nd->bias), y,
                      p->g->workspace);
    return MX_OK;
}

static mx_status bn_forward(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done)
{
    const mx_model *m = p->m;
    const cnn_graph *g = p->g;
    const cnn_node *nd = &g->nodes[k];
    const cnn_tensor *in = &g->tensors[nd->in];
    const size_t hw = in->h * in->w, C = in->c;
    const float *gamma = cnn_param(m, nd->weight), *beta = cnn_param(m, nd->bias);
    float *rmean = cnn_buffer(m, nd->buffer), *rvar = cnn_buffer(m, nd->buffer + 1);
    *relu_done = 0;
    if (m->training && g->bn_reduce) return sync_unsupported();
    if (m->training)
        mx_batchnorm2d_forward_train(p->n, C, hw, x, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rmean, rvar, y,
                                     nd->save_mean, nd->save_invstd);
    else
        mx_batchnorm2d_forward_eval(p->n, C, hw, x, gamma, beta, rmean, rvar, MX_BN_EPS, y);
    return MX_OK;
}

static mx_status add_forward(const cnn_pass *p, size_t k, const float *a, const float *b, float *y, int *relu_done)
{
    *relu_done = 0;
    mx_add_forward(p->n * p->g->tensors[p->g->nodes[k].out].size, a, b, y);
    return MX_OK;
}

static mx_status maxpool_forward(const cnn_pass *p, size_t k, const float *x, float *y)
{
    const cnn_node *nd = &p->g->nodes[k];
    mx_maxpool2d_forward(&nd->pool, p->n, x, y, nd->argmax);
    return MX_OK;
}

static mx_status gap_forward(const cnn_pass *p, size_t k, const float *x, float *y)
{
    const cnn_tensor *in = &p->g->tensors[p->g->nodes[k].in];
    mx_global_avgpool_forward(p->n, in->c, in->h * in->w, x, y);
    return MX_OK;
}

static mx_status linear_forward(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done)
{
    (void)relu_done; /* the executor's pass */
    const cnn_node *nd = &p->g->nodes[k];
    mx_linear_forward(p->n, p->g->tensors[nd->in].size, p->g->tensors[nd->out].size, x, cnn_param(p->m, nd->weight),
                      cnn_param(p->m, nd->bias), y);
    return MX_OK;
}

static mx_status dropout_forward(const cnn_pass *p, size_t k, const float *x, float *y)
{
    const cnn_node *nd = &p->g->nodes[k];
    const size_t count = p->n * p->g->tensors[nd->out].size;
    if (!p->m->training) {
        memcpy(y, x, count * sizeof(float));
        return MX_OK;
    }
    mx_rng rng;
    cnn_rng_load(p->m, p->g, &rng);
    mx_dropout_forward(count, nd->p, &rng, x, y, nd->mask);
    cnn_rng_store(p->m, p->g, &rng);
    return MX_OK;
}

static mx_status relu_forward(const cnn_pass *p, size_t count, float *y)
{
    (void)p;
    mx_relu_forward(count, y, y);
    return MX_OK;
}

static mx_status conv_backward(const cnn_pass *p, size_t k, const float *x, float *dy, float *dx)
{
    const cnn_node *nd = &p->g->nodes[k];
    mx_conv2d_backward(&nd->conv, p->n, x, cnn_param(p->m, nd->weight), dy, dx, cnn_grad(p->m, nd->weight),
                       cnn_grad(p->m, nd->bias), p->g->workspace);
    return MX_OK;
}

static mx_status bn_backward(const cnn_pass *p, size_t k, const float *x, float *dy, float *dx)
{
    const mx_model *m = p->m;
    const cnn_graph *g = p->g;
    const cnn_node *nd = &g->nodes[k];
    const cnn_tensor *in = &g->tensors[nd->in];
    const size_t hw = in->h * in->w, C = in->c;
    const float *gamma = cnn_param(m, nd->weight);
    float *dgamma = cnn_grad(m, nd->weight), *dbeta = cnn_grad(m, nd->bias);
    if (g->fwd_training && g->bn_reduce) return sync_unsupported();
    if (g->fwd_training)
        mx_batchnorm2d_backward(p->n, C, hw, x, dy, gamma, nd->save_mean, nd->save_invstd, dx, dgamma, dbeta);
    else
        mx_batchnorm2d_backward_eval(p->n, C, hw, x, dy, gamma, cnn_buffer(m, nd->buffer),
                                     cnn_buffer(m, nd->buffer + 1), MX_BN_EPS, dx, dgamma, dbeta);
    return MX_OK;
}

/* dy (through the add's ReLU) into both inputs' gradients, copied or added. */
static mx_status add_backward(const cnn_pass *p, size_t k, float *dy, const float *dy_extra, float *dx, int *alias_t,
                              float **alias_p)
{
    const cnn_graph *g = p->g;
    const cnn_node *nd = &g->nodes[k];
    const int inputs[2] = {nd->in, nd->in2}, acc[2] = {nd->acc_in, nd->acc_in2};
    const size_t count = p->n * g->tensors[nd->out].size;
    (void)alias_t, (void)alias_p;
    if (dy_extra) mx_grad_accumulate(count, dy, dy_extra);
    if (nd->relu) mx_relu_backward(count, g->tensors[nd->out].data, dy, dy);
    for (int i = 0; i < 2; i++) {
        float *dst = cnn_grad_of(g, inputs[i], dx);
        if (!dst) continue;
        if (acc[i]) mx_grad_accumulate(count, dst, dy);
        else memcpy(dst, dy, count * sizeof(float));
    }
    return MX_OK;
}

static mx_status maxpool_backward(const cnn_pass *p, size_t k, const float *dy, float *dx, int relu_in)
{
    const cnn_node *nd = &p->g->nodes[k];
    mx_maxpool2d_backward(&nd->pool, p->n, nd->argmax, dy, dx);
    if (relu_in) mx_relu_backward(p->n * p->g->tensors[nd->in].size, cnn_tensor_data(p->g, nd->in), dx, dx);
    return MX_OK;
}

static mx_status gap_backward(const cnn_pass *p, size_t k, const float *dy, float *dx)
{
    const cnn_tensor *in = &p->g->tensors[p->g->nodes[k].in];
    mx_global_avgpool_backward(p->n, in->c, in->h * in->w, dy, dx);
    return MX_OK;
}

static mx_status linear_backward(const cnn_pass *p, size_t k, const float *x, const float *dy, float *dx)
{
    const cnn_node *nd = &p->g->nodes[k];
    mx_linear_backward(p->n, p->g->tensors[nd->in].size, p->g->tensors[nd->out].size, x, cnn_param(p->m, nd->weight),
                       dy, dx, cnn_grad(p->m, nd->weight), cnn_grad(p->m, nd->bias));
    return MX_OK;
}

static mx_status dropout_backward(const cnn_pass *p, size_t k, const float *dy, float *dx)
{
    const cnn_node *nd = &p->g->nodes[k];
    const size_t count = p->n * p->g->tensors[nd->out].size;
    if (p->g->fwd_training) mx_dropout_backward(count, nd->p, nd->mask, dy, dx);
    else memcpy(dx, dy, count * sizeof(float));
    return MX_OK;
}

static mx_status relu_backward(const cnn_pass *p, size_t count, const float *y, float *dy)
{
    (void)p;
    mx_relu_backward(count, y, dy, dy);
    return MX_OK;
}

static mx_status grad_accumulate(const cnn_pass *p, size_t count, float *dst, const float *src)
{
    (void)p;
    mx_grad_accumulate(count, dst, src);
    return MX_OK;
}

/* From the saved statistics (training) or the running ones, the eval
 * forward's own arithmetic. */
static mx_status bn_recompute(const cnn_pass *p, size_t b, float *Y)
{
    const mx_model *m = p->m;
    const cnn_graph *g = p->g;
    const cnn_node *bn = &g->nodes[b];
    const cnn_tensor *in = &g->tensors[bn->in];
    const size_t C = in->c, hw = in->h * in->w, n = p->n;
    const float *X = cnn_tensor_data(g, bn->in);
    const float *gamma = cnn_param(m, bn->weight), *beta = cnn_param(m, bn->bias);
    if (g->fwd_training) {
        const size_t stride = C * hw;
        for (size_t c = 0; c < C; c++) {
            const double mean = bn->save_mean[c], invstd = bn->save_invstd[c], gc = gamma ? gamma[c] : 1.0;
            const double beta_c = beta ? beta[c] : 0.0;
            for (size_t s = 0; s < n; s++)
                for (size_t i = 0; i < hw; i++) {
                    const size_t at = s * stride + c * hw + i;
                    Y[at] = (float)((X[at] - mean) * invstd * gc + beta_c);
                }
        }
    } else {
        mx_batchnorm2d_forward_eval(n, C, hw, X, gamma, beta, cnn_buffer(m, bn->buffer), cnn_buffer(m, bn->buffer + 1),
                                    MX_BN_EPS, Y);
    }
    if (bn->relu) mx_relu_forward(n * C * hw, Y, Y);
    return MX_OK;
}

mx_status cnn_host_sgd_step(const mx_sgd_config *cfg, double lr, float *params, const float *grads, float *velocity,
                            size_t count)
{
    mx_sgd_step(cfg, lr, params, grads, velocity, count);
    return MX_OK;
}

mx_status cnn_host_copy(void *dst, const void *src, size_t bytes)
{
    if (bytes) memmove(dst, src, bytes);
    return MX_OK;
}

const cnn_backend cnn_backend_ref = {
    .name = "ref",
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

const cnn_backend *cnn_backend_of(mx_backend backend)
{
    switch (backend) {
    case MX_BACKEND_REF: return &cnn_backend_ref;
    case MX_BACKEND_CPU: return &cnn_backend_cpu;
    case MX_BACKEND_CUDA: return &cnn_backend_cuda;
    }
    return NULL;
}
