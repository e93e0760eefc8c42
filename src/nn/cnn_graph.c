/* Building and planning the CNN layer graph (see cnn_internal.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/checked.h"
#include "nn/cnn_internal.h"

int cnn_fail(cnn_graph *g, mx_status st)
{
    if (g->status == MX_OK) g->status = st;
    return -1;
}

static int grow(void **table, size_t *cap, size_t count, size_t size)
{
    if (count < *cap) return 1;
    size_t new_cap = *cap ? 2 * *cap : 64;
    void *p = realloc(*table, new_cap * size);
    if (!p) return 0;
    *table = p;
    *cap = new_cap;
    return 1;
}

static int new_tensor(cnn_graph *g, size_t c, size_t h, size_t w)
{
    if (!grow((void **)&g->tensors, &g->tensor_cap, g->num_tensors, sizeof *g->tensors))
        return cnn_fail(g, mx_error_set(MX_ERR_NOMEM, "out of memory building the network"));
    cnn_tensor *t = &g->tensors[g->num_tensors];
    memset(t, 0, sizeof *t);
    t->c = c, t->h = h, t->w = w;
    const size_t dims[3] = {c, h, w};
    if (!mx_size_product(dims, 3, &t->size))
        return cnn_fail(g, mx_error_set(MX_ERR_ARG, "network: a %zux%zux%zu tensor is too large", c, h, w));
    t->slot = -1;
    if (t->size > g->largest) g->largest = t->size;
    return (int)g->num_tensors++;
}

/* A node reading `in` (checked), or NULL once an error is recorded. */
static cnn_node *new_node(cnn_graph *g, cnn_op op, int in)
{
    if (g->status != MX_OK) return NULL;
    if (in < 0 || (size_t)in >= g->num_tensors) {
        cnn_fail(g, mx_error_set(MX_ERR_ARG, "network: a layer reads tensor %d, which does not exist", in));
        return NULL;
    }
    if (!grow((void **)&g->nodes, &g->node_cap, g->num_nodes, sizeof *g->nodes)) {
        cnn_fail(g, mx_error_set(MX_ERR_NOMEM, "out of memory building the network"));
        return NULL;
    }
    cnn_node *nd = &g->nodes[g->num_nodes++];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->in = in, nd->in2 = -1, nd->out = -1;
    nd->weight = nd->bias = nd->buffer = CNN_NONE;
    return nd;
}

/* The node just added writes a new tensor of this shape; its id, or -1. */
static int finish_node(cnn_graph *g, size_t c, size_t h, size_t w, int relu)
{
    int t = new_tensor(g, c, h, w);
    if (t < 0) return -1;
    cnn_node *nd = &g->nodes[g->num_nodes - 1];
    nd->out = t;
    nd->relu = relu;
    return t;
}

static size_t add_param(cnn_graph *g, const char *layer, const char *what, size_t ndim, const size_t *shape)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", layer, what);
    if (strlen(name) >= sizeof((mx_param_info *)0)->name) {
        cnn_fail(g, mx_error_set(MX_ERR_ARG, "network: parameter name '%s' is too long", name));
        return CNN_NONE;
    }
    return mx_model_add_tensor(g->model, name, ndim, shape);
}

int cnn_conv(cnn_graph *g, int in, const char *name, size_t out_channels, size_t kernel, size_t stride, size_t pad,
             int bias, int relu)
{
    cnn_node *nd = new_node(g, CNN_CONV, in);
    if (!nd) return -1;
    const cnn_tensor *x = &g->tensors[in];
    mx_conv2d_desc d = {.in_channels = x->c, .out_channels = out_channels, .in_h = x->h, .in_w = x->w,
                        .kernel_h = kernel, .kernel_w = kernel, .stride_h = stride, .stride_w = stride,
                        .pad_h = pad, .pad_w = pad};
    mx_status st = mx_conv2d_setup(&d);
    if (st != MX_OK) return cnn_fail(g, mx_error_wrap(st, "layer '%s' (%zux%zu convolution on %zux%zu)", name, kernel,
                                                      kernel, x->h, x->w));
    nd->conv = d;
    size_t fan_in = x->c * kernel * kernel;
    nd->init_bound = 1.0 / sqrt((double)fan_in);
    size_t wshape[4] = {out_channels, x->c, kernel, kernel};
    nd->weight = add_param(g, name, "weight", 4, wshape);
    if (bias) nd->bias = add_param(g, name, "bias", 1, wshape);
    size_t ws = mx_conv2d_workspace_bytes(&d);
    if (ws > g->workspace_bytes) g->workspace_bytes = ws;
    return finish_node(g, out_channels, d.out_h, d.out_w, relu);
}

int cnn_bn(cnn_graph *g, int in, const char *name, int relu)
{
    cnn_node *nd = new_node(g, CNN_BN, in);
    if (!nd) return -1;
    const cnn_tensor x = g->tensors[in];
    size_t shape[1] = {x.c};
    nd->weight = add_param(g, name, "weight", 1, shape);
    nd->bias = add_param(g, name, "bias", 1, shape);
    static const char *const buffers[3] = {"running_mean", "running_var", "num_batches_tracked"};
    for (int k = 0; k < 3; k++) {
        char full[96];
        snprintf(full, sizeof full, "%s.%s", name, buffers[k]);
        if (strlen(full) >= sizeof((mx_buffer_info *)0)->name)
            return cnn_fail(g, mx_error_set(MX_ERR_ARG, "network: buffer name '%s' is too long", full));
        size_t b = mx_model_add_buffer(g->model, full, k < 2 ? MX_BUFFER_F32 : MX_BUFFER_I64, k < 2 ? 1 : 0, shape);
        if (k == 0) nd->buffer = b;
    }
    return finish_node(g, x.c, x.h, x.w, relu);
}

int cnn_add(cnn_graph *g, int a, int b, int relu)
{
    cnn_node *nd = new_node(g, CNN_ADD, a);
    if (!nd) return -1;
    if (b < 0 || (size_t)b >= g->num_tensors) return cnn_fail(g, mx_error_set(MX_ERR_ARG, "network: bad residual input"));
    const cnn_tensor x = g->tensors[a], y = g->tensors[b];
    if (x.c != y.c || x.h != y.h || x.w != y.w)
        return cnn_fail(g, mx_error_set(MX_ERR_ARG, "network: residual add of %zux%zux%zu and %zux%zux%zu", x.c, x.h, x.w,
                                        y.c, y.h, y.w));
    nd->in2 = b;
    return finish_node(g, x.c, x.h, x.w, relu);
}

int cnn_maxpool(cnn_graph *g, int in, size_t kernel, size_t stride, size_t pad)
{
    cnn_node *nd = new_node(g, CNN_MAXPOOL, in);
    if (!nd) return -1;
    const cnn_tensor x = g->tensors[in];
    mx_pool2d_desc d = {.channels = x.c, .in_h = x.h, .in_w = x.w, .kernel_h = kernel, .kernel_w = kernel,
                        .stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad};
    mx_status st = mx_pool2d_setup(&d);
    if (st != MX_OK)
        return cnn_fail(g, mx_error_wrap(st, "%zux%zu max pool on %zux%zu", kernel, kernel, x.h, x.w));
    nd->pool = d;
    return finish_node(g, x.c, d.out_h, d.out_w, 0);
}

int cnn_gap(cnn_graph *g, int in)
{
    if (!new_node(g, CNN_GAP, in)) return -1;
    return finish_node(g, g->tensors[in].c, 1, 1, 0);
}

int cnn_linear(cnn_graph *g, int in, const char *name, size_t out, int relu)
{
    cnn_node *nd = new_node(g, CNN_LINEAR, in);
    if (!nd) return -1;
    size_t features = g->tensors[in].size;
    nd->init_bound = 1.0 / sqrt((double)features);
    size_t wshape[2] = {out, features};
    nd->weight = add_param(g, name, "weight", 2, wshape);
    nd->bias = add_param(g, name, "bias", 1, wshape);
    return finish_node(g, out, 1, 1, relu);
}

#define RNG_WORDS 11 /* mx_rng as int64 words: key[2], ctr[4], buf[4], used */

int cnn_dropout(cnn_graph *g, int in, float p)
{
    cnn_node *nd = new_node(g, CNN_DROPOUT, in);
    if (!nd) return -1;
    if (!(p > 0.0f && p < 1.0f)) return cnn_fail(g, mx_error_set(MX_ERR_ARG, "network: dropout %g is not in (0, 1)", p));
    nd->p = p;
    if (g->rng_buffer == CNN_NONE) {
        size_t shape[1] = {RNG_WORDS};
        g->rng_buffer = mx_model_add_buffer(g->model, "mixreg.rng.dropout", MX_BUFFER_I64, 1, shape);
    }
    const cnn_tensor x = g->tensors[in];
    return finish_node(g, x.c, x.h, x.w, 0);
}

mx_status cnn_plan(cnn_graph *g)
{
    if (g->status != MX_OK) return g->status;
    if (!g->num_nodes) return mx_error_set(MX_ERR_ARG, "network: no layers");
    const cnn_node *last = &g->nodes[g->num_nodes - 1];
    const cnn_tensor *out = &g->tensors[last->out];
    if (last->relu || out->size != g->model->spec.num_classes)
        return mx_error_set(MX_ERR_ARG, "network: the last layer must give the %zu logits", g->model->spec.num_classes);
    mx_status st = mx_model_alloc_params(g->model);
    if (st == MX_OK) st = cnn_assign_slots(g);
    /* Untouched until a backward steps the layers itself
     * (mx_model_backward_sgd): no resident memory till then. */
    g->layer_grads_floats = st == MX_OK ? cnn_layer_grads_floats(g->model, g) : 0;
    if (g->layer_grads_floats && !(g->layer_grads = malloc(g->layer_grads_floats * sizeof(float))))
        st = mx_error_set(MX_ERR_NOMEM, "out of memory for a layer's gradients");
    return st;
}

/* The activation arena and the gradient slots (not the backend's plans). */
static void free_buffers(cnn_graph *g)
{
    mx_arena_free(&g->arena);
    g->pred_region = NULL;
    for (size_t t = 0; t < g->num_tensors; t++) g->tensors[t].data = g->tensors[t].grad = NULL;
    for (size_t k = 0; k < g->num_nodes; k++) g->nodes[k].grad_scratch = NULL;
}

void cnn_graph_free(cnn_graph *g)
{
    if (!g) return;
    cnn_profile_report(g);
    free(g->layer_grads);
    free(g->bn_sync_sums);
    free(g->bn_sync_counts);
    if (g->be && g->be->release) g->be->release(g);  /* the plans, then their context */
    free_buffers(g);
    free(g->nodes);
    free(g->tensors);
    free(g);
}

/* mx_model_plan: the arena for model->max_batch, then the backend's plans. */
static mx_status cnn_replan(mx_model *m)
{
    cnn_graph *g = m->impl;
    if (g->be->unplan) g->be->unplan(g);
    free_buffers(g);
    g->predict_only = m->predict_only;
    g->fwd_inference = 0;
    g->fwd_pass = (cnn_pass){0};
    size_t bytes;
    mx_status st = cnn_plan_arena(g, m->max_batch, 1, &bytes);
    if (st == MX_OK && g->be->plan) st = g->be->plan(g);
    if (st != MX_OK) {
        if (g->be->unplan) g->be->unplan(g);
        free_buffers(g);
    }
    return st;
}

/* cnn_plan_arena's measuring pass on a copy of the graph (it marks tensors and
 * nodes as it plans), so the model's own plan stays as it is. */
static size_t cnn_plan_bytes(const mx_model *m, size_t batch, int predict_only)
{
    const cnn_graph *g = m->impl;
    cnn_graph copy = *g;
    copy.predict_only = predict_only;
    copy.arena = (mx_arena){0};
    copy.tensors = malloc(g->num_tensors * sizeof *copy.tensors);
    copy.nodes = malloc(g->num_nodes * sizeof *copy.nodes);
    size_t bytes = SIZE_MAX;
    if (copy.tensors && copy.nodes) {
        memcpy(copy.tensors, g->tensors, g->num_tensors * sizeof *copy.tensors);
        memcpy(copy.nodes, g->nodes, g->num_nodes * sizeof *copy.nodes);
        if (cnn_plan_arena(&copy, batch, 0, &bytes) != MX_OK) bytes = SIZE_MAX;
    }
    free(copy.tensors);
    free(copy.nodes);
    return bytes;
}

static mx_status cnn_set_bn_sync(mx_model *m, mx_bn_reduce_fn reduce, void *ctx)
{
    cnn_graph *g = m->impl;
    free(g->bn_sync_sums);
    free(g->bn_sync_counts);
    g->bn_sync_sums = NULL, g->bn_sync_counts = NULL, g->bn_reduce = NULL, g->bn_reduce_ctx = NULL;
    size_t channels = 0;
    for (size_t k = 0; k < g->num_nodes; k++)
        if (g->nodes[k].op == CNN_BN && g->tensors[g->nodes[k].in].c > channels) channels = g->tensors[g->nodes[k].in].c;
    if (!reduce || channels == 0) return MX_OK;
    if (!g->be->has_sync_bn)
        return mx_error_set(MX_ERR_ARG, "--sync-bn needs the cpu backend (the %s backend's batch norm has no sync form)",
                            g->be->name);
    g->bn_sync_sums = malloc((2 * channels + 1) * sizeof(double));
    g->bn_sync_counts = calloc(g->num_nodes, sizeof(double));
    if (!g->bn_sync_sums || !g->bn_sync_counts) return mx_error_set(MX_ERR_NOMEM, "out of memory for sync batch norm");
    g->bn_reduce = reduce, g->bn_reduce_ctx = ctx;
    return MX_OK;
}

/* The exchanges of a training forward (nodes in order: [sum, sum of squares,
 * count]) and backward (in reverse: [sum dy', sum dy' x]) with nothing of
 * this process's own in them. */
static void cnn_bn_sync_idle(mx_model *m, int backward)
{
    cnn_graph *g = m->impl;
    if (!g->bn_reduce) return;
    for (size_t i = 0; i < g->num_nodes; i++) {
        const size_t k = backward ? g->num_nodes - 1 - i : i;
        if (g->nodes[k].op != CNN_BN) continue;
        const size_t count = 2 * g->tensors[g->nodes[k].in].c + (backward ? 0 : 1);
        memset(g->bn_sync_sums, 0, count * sizeof(double));
        g->bn_reduce(g->bn_reduce_ctx, g->bn_sync_sums, count);
    }
}

static void cnn_destroy(mx_model *m)
{
    cnn_graph_free(m->impl);
    m->impl = NULL;
}

static double cnn_forward_flops(const mx_model *m)
{
    const cnn_graph *g = m->impl;
    double flops = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        const cnn_tensor *out = &g->tensors[nd->out];
        if (nd->op == CNN_CONV)
            flops += 2.0 * (double)m->tensors[nd->weight].numel * (double)(out->h * out->w);
        else if (nd->op == CNN_LINEAR)
            flops += 2.0 * (double)m->tensors[nd->weight].numel;
    }
    return flops;
}

static const mx_model_ops cnn_ops = {cnn_init_params, cnn_forward,       cnn_predict, cnn_backward,
                                     cnn_destroy,     cnn_forward_flops, cnn_replan,  cnn_plan_bytes,
                                     cnn_set_bn_sync, cnn_bn_sync_idle,  cnn_backward_sgd};

mx_status mx_cnn_create(mx_model *m)
{
    cnn_graph *g = calloc(1, sizeof *g);
    if (!g) return mx_error_set(MX_ERR_NOMEM, "out of memory creating the network");
    g->model = m;
    g->rng_buffer = CNN_NONE;
    g->backend = m->spec.backend;
    g->be = cnn_backend_of(g->backend);
    const char *profile = getenv("MIXREG_PROFILE");
    g->profile = profile && *profile && strcmp(profile, "0");
    m->impl = g;
    m->ops = &cnn_ops;
    const mx_model_spec *spec = &m->spec;
    if (new_tensor(g, spec->in_channels, spec->in_height, spec->in_width) != 0) return g->status;
    if (!g->be) return mx_error_set(MX_ERR_ARG, "unknown backend %d", (int)g->backend);
    mx_status st = cnn_build_arch(g, spec);
    if (st == MX_OK) st = cnn_plan(g);
    if (st == MX_OK && g->be->prepare) st = g->be->prepare(g);
    if (st == MX_OK) cnn_reset_buffers(m, 0);
    return st; /* the activation buffers: mx_model_plan (cnn_replan) */
}
