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

/* Gradient slots by liveness, walking the nodes as backward will: a tensor's
 * gradient is live from its last consumer's backward (which writes it; earlier
 * consumers add into it, through a slot free for the while) to its
 * producer's (which reads it and frees it). */
static mx_status assign_slots(cnn_graph *g)
{
    size_t T = g->num_tensors;
    uint8_t *seen = calloc(T, 1);
    int *free_slots = malloc(T * sizeof *free_slots);
    if (!seen || !free_slots) {
        free(seen);
        free(free_slots);
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    size_t num_free = 0;
    mx_status st = MX_OK;
    seen[g->nodes[g->num_nodes - 1].out] = 1;  /* the logits: the caller's dlogits */
    for (size_t k = g->num_nodes; k-- > 0 && st == MX_OK;) {
        cnn_node *nd = &g->nodes[k];
        if (!seen[nd->out]) {
            st = mx_error_set(MX_ERR_ARG, "network: the output of layer %zu is never used", k);
            break;
        }
        int inputs[2] = {nd->in, nd->in2}, *acc[2] = {&nd->acc_in, &nd->acc_in2};
        for (int i = 0; i < 2; i++) {
            int t = inputs[i];
            if (t < 0) continue;
            *acc[i] = seen[t];
            if (seen[t]) continue;
            seen[t] = 1;
            if (t > 0) g->tensors[t].slot = num_free ? free_slots[--num_free] : (int)g->num_slots++;
        }
        /* The input gradient a layer adds into another goes to a slot free
         * while this node runs, not to a buffer of its own. */
        nd->scratch_slot = -1;
        if (nd->op != CNN_ADD && nd->acc_in) {
            nd->scratch_slot = num_free ? free_slots[--num_free] : (int)g->num_slots++;
            free_slots[num_free++] = nd->scratch_slot;
        }
        if (k + 1 < g->num_nodes) free_slots[num_free++] = g->tensors[nd->out].slot;
    }
    free(seen);
    free(free_slots);
    return st;
}

/* Whether a backward reads tensor t's values (not only its gradient):
 * convolution, linear and batch-norm layers read their input; a layer with a
 * ReLU (batch norm's fused one included) reads its output; the logits are the
 * caller's until the next forward. Max pooling and dropout keep their own
 * index and mask; add and average pooling read nothing; neither does a
 * convolution that keeps its own copy of its input, nor a ReLU whose mask
 * the backend records (cnn_backend.conv_keeps_input, keeps_relu_mask). */
static int backward_reads(const cnn_graph *g, int t)
{
    if (t == g->nodes[g->num_nodes - 1].out) return 1;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->out == t && nd->relu && !(g->be->keeps_relu_mask && g->be->keeps_relu_mask(g, k))) return 1;
        if ((nd->in == t || nd->in2 == t) &&
            ((nd->op == CNN_CONV && !(g->be->conv_keeps_input && g->be->conv_keeps_input(g, k))) ||
             nd->op == CNN_LINEAR || nd->op == CNN_BN))
            return 1;
    }
    return 0;
}

/* On a backend that can (cnn_backend.recomputes_bn_output: the cpu
 * backend), the output of batch norm node b with its ReLU need not be kept
 * for the backward: cnn_run_backward recomputes it (bn_recompute: from the
 * input, kept anyway, and the forward's per-channel constants, bit for bit)
 * just before the first backward that reads it, the last convolution,
 * linear or batch norm layer reading it, else b's own. Marks that node and
 * returns 1, or 0 when the output must be kept (the logits, a backend that
 * cannot, or a node that already recomputes another output). */
static int plan_recompute(cnn_graph *g, size_t b)
{
    const cnn_node *bn = &g->nodes[b];
    if (g->predict_only) return 1; /* no backward: nothing to recompute, nothing kept */
    if (!g->be->recomputes_bn_output || bn->op != CNN_BN || !bn->relu || b + 1 == g->num_nodes) return 0;
    size_t first = b;
    for (size_t j = b + 1; j < g->num_nodes; j++) {
        const cnn_node *nd = &g->nodes[j];
        if ((nd->in == bn->out || nd->in2 == bn->out) &&
            (nd->op == CNN_CONV || nd->op == CNN_LINEAR || nd->op == CNN_BN))
            first = j;
    }
    if (g->nodes[first].recompute_bn >= 0) return 0;
    g->nodes[first].recompute_bn = (int)b;
    return 1;
}

/* Tensors no backward reads, and batch-norm outputs the backward recomputes
 * (plan_recompute), need their values only while the forward walks from
 * their producer to their last reader (and, recomputed, within that stretch
 * of the backward), so they share a few buffers: preact18 at batch 128 keeps
 * 243 MiB fewer. A model planned for prediction only (g->predict_only) has
 * no backward: every tensor shares, and a few buffers hold the whole
 * forward (resnet20 at 224x224: 15 MiB a sample instead of 72). A
 * tensor holds its buffer from the first node that writes it
 * (cnn_backend.first_writer: a prediction's fused convolution writes its
 * batch norm's or residual add's output) to its last reader, and a node's
 * output never shares with its inputs. Returns the number of shared
 * buffers; size[b] their element counts per sample. */
static size_t plan_shared(cnn_graph *g, size_t *size)
{
    const size_t T = g->num_tensors, N = g->num_nodes;
    size_t count = 0;
    for (size_t k = 0; k < N; k++) g->nodes[k].recompute_bn = -1;
    long *busy_until = calloc(T, sizeof *busy_until);  /* per buffer: the last node its tensor is read at */
    if (!busy_until) return 0;                          /* no sharing: every tensor keeps its own buffer */
    for (size_t k = 0; k < N; k++) {
        const int t = g->nodes[k].out;
        g->tensors[t].shared = -1;
        if (backward_reads(g, t) && !plan_recompute(g, k)) continue;
        long last = (long)k;
        for (size_t j = k + 1; j < N; j++)
            if (g->nodes[j].in == t || g->nodes[j].in2 == t) last = (long)j;
        const long start = (long)(g->be->first_writer ? g->be->first_writer(g, k) : k);
        size_t b = 0;
        while (b < count && busy_until[b] >= start) b++;
        if (b == count) size[count++] = 0;
        busy_until[b] = last;
        if (g->tensors[t].size > size[b]) size[b] = g->tensors[t].size;
        g->tensors[t].shared = (int)b;
    }
    free(busy_until);
    return count;
}

/* Marks in busy[] (one byte per node) the nodes whose backward uses gradient
 * slot s: a tensor's slot from its last reader's backward down to its
 * producer's (assign_slots), and a node's scratch slot at that node. */
static void slot_busy(const cnn_graph *g, int s, uint8_t *busy)
{
    const size_t N = g->num_nodes;
    memset(busy, 0, N);
    for (size_t p = 0; p + 1 < N; p++) {
        const int t = g->nodes[p].out;
        if (g->nodes[p].scratch_slot == s) busy[p] = 1;
        if (g->tensors[t].slot != s) continue;
        size_t last = p;
        for (size_t j = p + 1; j < N; j++)
            if (g->nodes[j].in == t || g->nodes[j].in2 == t) last = j;
        memset(busy + p, 1, last - p + 1);
    }
    if (g->nodes[N - 1].scratch_slot == s) busy[N - 1] = 1;
}

/* Where each shared buffer lives (plan_shared): inside a gradient slot, or
 * (-1) in memory of its own. Slots hold gradients during the backward alone,
 * and a shared buffer holds its tensors during the forward, except for the
 * batch-norm outputs the backward recomputes (from node `first` down to the
 * batch norm b, plan_recompute): so a buffer fits in a slot that no backward
 * of those stretches uses, and resnet20 at batch 128 keeps one buffer of
 * 8 MiB fewer. One buffer per slot; slots are sized for the largest
 * tensor, so any fits. A prediction writes the shared buffers too, so a
 * backend keeps its prediction cache in slot 0 only where none is placed
 * there (cnn_graph.slot0_shared). */
static void place_shared(const cnn_graph *g, size_t num_shared, int *in_slot)
{
    const size_t N = g->num_nodes;
    for (size_t b = 0; b < num_shared; b++) in_slot[b] = -1;
    if (g->predict_only || !g->num_slots || g->shared_own_memory) return;
    uint8_t *busy = malloc(N), *need = malloc(N), *taken = calloc(g->num_slots, 1);
    for (size_t b = 0; busy && need && taken && b < num_shared; b++) {
        memset(need, 0, N);
        for (size_t j = 0; j < N; j++) {
            const int r = g->nodes[j].recompute_bn;
            if (r >= 0 && g->tensors[g->nodes[r].out].shared == (int)b) memset(need + r, 1, j - (size_t)r + 1);
        }
        for (size_t s = g->num_slots; s-- > 0 && in_slot[b] < 0;) {
            if (taken[s]) continue;
            slot_busy(g, (int)s, busy);
            size_t k = 0;
            while (k < N && !(busy[k] && need[k])) k++;
            if (k == N) in_slot[b] = (int)s, taken[s] = 1;
        }
    }
    free(busy), free(need), free(taken);
}

/* The samples the activation buffers hold for a max batch of B: all of them,
 * except where the backend predicts in chunks (cnn_backend.predict_samples). */
static size_t arena_samples(const cnn_graph *g, size_t B, int predict_only)
{
    return predict_only && g->be->predict_samples ? g->be->predict_samples(g, B) : B;
}

/* Lays out the arena for a max batch of B (g->predict_only saying for what):
 * measures it, then with `commit` allocates it and points the tensors, the
 * nodes' saved state and the gradient slots into it. *bytes: the measured size. */
static mx_status plan_arena(cnn_graph *g, size_t max_batch, int commit, size_t *bytes)
{
    const size_t B = arena_samples(g, max_batch, g->predict_only);
    *bytes = SIZE_MAX;
    /* A bound on every buffer together: each tensor and slot at most `largest` floats a sample, with room to spare. */
    if (g->largest > SIZE_MAX / sizeof(float) / B / 4 / (g->num_tensors + g->num_slots + 1))
        return mx_error_set(MX_ERR_NOMEM, "network activations too large for batch %zu", max_batch);
    const size_t num_slots = g->predict_only ? 0 : g->num_slots;
    g->slots = commit ? calloc(num_slots ? num_slots : 1, sizeof *g->slots) : NULL;
    size_t *shared_size = calloc(g->num_tensors, sizeof *shared_size);
    float **shared = calloc(2 * g->num_tensors, sizeof *shared); /* the shared buffers, then the slots */
    int *in_slot = calloc(g->num_tensors, sizeof *in_slot);
    if ((commit && !g->slots) || !shared_size || !shared || !in_slot) {
        free(shared_size), free(shared), free(in_slot);
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    const size_t num_shared = plan_shared(g, shared_size);
    place_shared(g, num_shared, in_slot);
    g->slot0_shared = 0, g->shared_in_slots = 0;
    for (size_t b = 0; b < num_shared; b++) g->slot0_shared |= in_slot[b] == 0, g->shared_in_slots += in_slot[b] >= 0;
    for (int pass = 0; pass < 1 + commit; pass++) {
        if (pass == 0) {
            mx_arena_measure(&g->arena);
        } else {
            *bytes = g->arena.used;
            mx_status st = mx_arena_commit(&g->arena);
            if (st != MX_OK) {
                free(shared_size), free(shared), free(in_slot);
                return mx_error_wrap(st, "network buffers for batch %zu", max_batch);
            }
        }
        float **slot_at = shared + num_shared; /* the slots' memory, for the buffers placed in them */
        for (size_t s = 0; s < num_slots; s++) {
            slot_at[s] = mx_arena_alloc(&g->arena, B * g->largest * sizeof(float));
            if (g->slots) g->slots[s] = slot_at[s]; /* NULL: measuring only */
        }
        for (size_t b = 0; b < num_shared; b++)
            shared[b] = in_slot[b] >= 0 ? slot_at[in_slot[b]] : mx_arena_alloc(&g->arena, B * shared_size[b] * sizeof(float));
        for (size_t t = 1; t < g->num_tensors; t++)
            g->tensors[t].data = g->tensors[t].shared >= 0
                                     ? shared[g->tensors[t].shared]
                                     : mx_arena_alloc(&g->arena, B * g->tensors[t].size * cnn_tensor_elem_bytes(g, (int)t));
        for (size_t k = 0; k < g->num_nodes; k++) {
            cnn_node *nd = &g->nodes[k];
            if (nd->op == CNN_BN) {
                nd->save_mean = mx_arena_alloc(&g->arena, g->tensors[nd->in].c * sizeof(float));
                nd->save_invstd = mx_arena_alloc(&g->arena, g->tensors[nd->in].c * sizeof(float));
            } else if (nd->op == CNN_MAXPOOL) {
                nd->argmax = mx_arena_alloc(&g->arena, B * g->tensors[nd->out].size * sizeof(uint32_t));
            } else if (nd->op == CNN_DROPOUT) {
                nd->mask = mx_arena_alloc(&g->arena, B * g->tensors[nd->out].size);
            }
        }
        g->workspace = mx_arena_alloc(&g->arena, g->workspace_bytes);
        if (g->be->reserve) g->be->reserve(g, &g->arena, B, pass == 1);
    }
    if (!commit) *bytes = g->arena.used;
    free(shared_size), free(shared), free(in_slot);
    for (size_t t = 1; commit && t < g->num_tensors; t++)
        g->tensors[t].grad = !g->predict_only && g->tensors[t].slot >= 0 ? g->slots[g->tensors[t].slot] : NULL;
    return MX_OK;
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
    if (st == MX_OK) st = assign_slots(g);
    return st;
}

/* The activation arena and the gradient slots (not the backend's plans). */
static void free_buffers(cnn_graph *g)
{
    mx_arena_free(&g->arena);
    free(g->slots);
    g->slots = NULL;
    for (size_t t = 0; t < g->num_tensors; t++) g->tensors[t].data = g->tensors[t].grad = NULL;
}

void cnn_graph_free(cnn_graph *g)
{
    if (!g) return;
    cnn_profile_report(g);
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
    mx_status st = plan_arena(g, m->max_batch, 1, &bytes);
    if (st == MX_OK && g->be->plan) st = g->be->plan(g);
    if (st != MX_OK) {
        if (g->be->unplan) g->be->unplan(g);
        free_buffers(g);
    }
    return st;
}

/* plan_arena's measuring pass on a copy of the graph (it marks tensors and
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
        if (plan_arena(&copy, batch, 0, &bytes) != MX_OK) bytes = SIZE_MAX;
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
                                     cnn_set_bn_sync, cnn_bn_sync_idle};

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
