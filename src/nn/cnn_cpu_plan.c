/* The CNN graph's "cpu" backend: oneDNN plans (mixreg/layers_dnnl.h) per node
 * and batch size, made outside the training step, and the threaded kernels
 * cnn_exec.c runs for the other nodes.
 *
 * What runs where (measured on resnet20 and lenet5 at batch 128, 2 threads;
 * BENCHMARKS.md has the end-to-end figures and the per-layer profile):
 *  - convolution: oneDNN with its blocked layout inside (direct AVX-512
 *    kernels; 3-12x the reference's im2col + sgemm);
 *  - activations between nodes as nChw16c where the channel count allows
 *    (assign_layouts), so the convolutions read and write them without
 *    reorders: on resnet20 that took the convolutions from 85 to 60 ms a step.
 *    The rest stay NCHW and the plans reorder at the boundary (NCHW inside
 *    instead, oneDNN's gemm convolution, was 2x slower on lenet5);
 *  - max pooling and linear layers: oneDNN (the linear layers through
 *    OpenBLAS instead trained lenet5 20-35% slower: its pthreads and the
 *    OpenMP team compete);
 *  - batch norm (ReLU fused), ReLU, residual add (ReLU fused), gradient sums,
 *    global average pooling and dropout on nChw16c: this file's OpenMP + SIMD
 *    kernels; oneDNN 2.6's batch norm on NCHW was 4x slower forward and 1.7x
 *    backward than them;
 *  - global average pooling and dropout on NCHW: the reference loops;
 *  - 3x3 stride-1 convolutions of 64+ channels: oneDNN's Winograd kernels
 *    (choose_conv_algorithm);
 *  - inference (cnn_predict): a second kind of plan set where a convolution
 *    absorbs the batch norm, residual add and ReLU after it (plan_fusion);
 *    in networks no wider than 64 channels its 3x3 stride-1 convolutions
 *    run mixreg's own Winograd kernel (winograd_inference_suits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_internal.h"
#include "nn/winograd.h"

static void free_set(cnn_graph *g, cnn_plan_set *s)
{
    if (s->node) {
        for (size_t k = 0; k < g->num_nodes; k++) {
            cnn_node_plan *p = &s->node[k];
            mx_dnnl_conv2d_plan_free(p->conv);
            mx_dnnl_pool2d_plan_free(p->pool);
            mx_dnnl_linear_plan_free(p->linear);
        }
        free(s->node);
    }
    memset(s, 0, sizeof *s);
}

size_t cnn_cpu_bn_channels(const cnn_graph *g)
{
    size_t most = 0;
    for (size_t k = 0; k < g->num_nodes; k++)
        if (g->nodes[k].op == CNN_BN && g->tensors[g->nodes[k].in].c > most) most = g->tensors[g->nodes[k].in].c;
    return most;
}

static int find_root(int *parent, int t)
{
    while (parent[t] != t) t = parent[t] = parent[parent[t]];
    return t;
}

/* Which tensors live as nChw16c: those whose channels are a multiple of 16,
 * with more than one pixel (a [n, c, 1, 1] tensor is the same either way),
 * and whose every reader and writer handles the layout. Batch norm, add and
 * dropout keep their input's layout, so they tie tensors into groups that
 * are blocked together or not at all; convolutions read and write either
 * (their plans are told which); max pooling and the linear layers' flattened
 * inputs stay NCHW, as does the network's input. */
static mx_status assign_layouts(cnn_graph *g)
{
    const size_t T = g->num_tensors;
    int *parent = malloc(T * sizeof *parent);
    unsigned char *ok = malloc(T);
    if (!parent || !ok) {
        free(parent), free(ok);
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    for (size_t t = 0; t < T; t++) {
        const cnn_tensor *x = &g->tensors[t];
        parent[t] = (int)t;
        ok[t] = t > 0 && x->c % 16 == 0 && x->h * x->w > 1;
    }
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->op == CNN_BN || nd->op == CNN_ADD || nd->op == CNN_DROPOUT) {
            parent[find_root(parent, nd->out)] = find_root(parent, nd->in);
            if (nd->in2 >= 0) parent[find_root(parent, nd->in2)] = find_root(parent, nd->in);
        } else if (nd->op == CNN_MAXPOOL) {
            ok[nd->in] = ok[nd->out] = 0;
        } else if (nd->op == CNN_LINEAR) {
            ok[nd->in] = 0;
        }
    }
    for (size_t t = 0; t < T; t++) ok[find_root(parent, (int)t)] &= ok[t];
    for (size_t t = 0; t < T; t++) g->tensors[t].blocked = ok[find_root(parent, (int)t)];
    free(parent), free(ok);
    return MX_OK;
}

/* Whether a convolution runs oneDNN's Winograd kernels (all three passes):
 * float32 3x3 stride-1 convolutions between blocked tensors with at least 64
 * channels in and out. Measured here with bench/conv_bench (plans on
 * nChw16c buffers as the engine runs them, batch 128, 2 threads, best of 10;
 * forward + both backward passes, ms, direct -> Winograd):
 *   16@28 3.32 -> 4.59   16@32 5.10 -> 8.38   32@14 3.10 -> 3.66   32@16 4.06 -> 3.99
 *   64@7  3.07 -> 2.53   64@8  3.97 -> 2.52   64@32 70.0 -> 47.9   128@16 65.8 -> 35.5
 *   256@8 65.3 -> 26.8
 * Below 64 channels the transforms are memory-bound and lose. The rule is a
 * pure function of the shape, so the choice (and the rounding) repeats from
 * run to run. */
static int winograd_suits(const cnn_graph *g, const cnn_node *nd)
{
    const mx_conv2d_desc *d = &nd->conv;
    return g->model->spec.precision == MX_PRECISION_FP32 && d->kernel_h == 3 && d->kernel_w == 3 &&
           d->stride_h == 1 && d->stride_w == 1 && d->in_channels >= 64 && d->out_channels >= 64 &&
           g->tensors[nd->in].blocked && g->tensors[nd->out].blocked;
}

/* Backward weights stays direct above 256 output channels: oneDNN's
 * Winograd pass keeps per-thread transformed weight gradients, which at
 * preact18's 512 channels took the plans' scratch from 88 to 161 MiB (peak
 * RSS +36 MiB) to make the step 6-12% faster (183 against 163-173 img/s). */
#define WINOGRAD_BWD_WEIGHTS_MAX_CHANNELS 256

static void choose_conv_algorithm(const cnn_graph *g, const cnn_node *nd, mx_dnnl_conv2d_options *opt)
{
    if (!winograd_suits(g, nd)) return;
    opt->fwd_algorithm = opt->bwd_data_algorithm = MX_DNNL_CONV_WINOGRAD;
    if (nd->conv.out_channels <= WINOGRAD_BWD_WEIGHTS_MAX_CHANNELS) opt->bwd_weights_algorithm = MX_DNNL_CONV_WINOGRAD;
}

/* The widest convolution's channel count, in or out. */
static size_t widest_conv(const cnn_graph *g)
{
    size_t most = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->op != CNN_CONV) continue;
        if (nd->conv.in_channels > most) most = nd->conv.in_channels;
        if (nd->conv.out_channels > most) most = nd->conv.out_channels;
    }
    return most;
}

/* Whether cnn_predict runs convolution nd on mixreg's Winograd kernel
 * (winograd.h) instead of oneDNN: float32 3x3 stride-1 padding-1 layers
 * between nChw16c tensors, in networks no wider than 64 channels (the CIFAR
 * ResNets), which cnn_predict then runs in chunks of 32 samples (cnn_exec.c).
 * Measured here with bench/conv_bench at batch 32, 2 threads, forward ms
 * (this kernel with its weight transform / oneDNN direct / oneDNN Winograd):
 * 16@28 0.14 / 0.23 / 0.20, 32@14 0.14 / 0.23 / 0.22, 64@7 0.17 / 0.23 / 0.18,
 * 16@32 0.17 / 0.37 / 0.48, 32@16 0.14 / 0.30 / 0.22, 64@8 0.17 / 0.30 / 0.18.
 * Wider networks keep oneDNN and whole batches: on preact18 the chunks and
 * this kernel on its 64-channel layers took the evaluation from 766 to
 * 640-660 img/s (oneDNN's Winograd on 128-512 channels wants the large batch). */
static int winograd_inference_suits(const cnn_graph *g, const cnn_node *nd, size_t widest, int out)
{
    const mx_conv2d_desc *d = &nd->conv;
    return mx_wino_available() && g->model->spec.precision == MX_PRECISION_FP32 && mx_wino_suits(d) &&
           widest <= 64 && g->tensors[nd->in].blocked && g->tensors[out].blocked;
}

/* Which nodes cnn_predict fuses (see cnn_node): a convolution without its
 * own ReLU whose output only the next node, a batch norm, reads; then, if
 * that batch norm has no ReLU and only the next node, a residual add, reads
 * its output, that add too, when its output is nChw16c (the binary add
 * post-op reads the other input in the primitive's layout) and the
 * convolution does not run oneDNN's Winograd kernels (they take no binary
 * post-op: oneDNN would fall back to its direct kernel, slower than Winograd
 * and a separate add together; mixreg's own Winograd kernel takes it). Measured on
 * resnet20 eval at batch 128 (2 threads, best of 30, three alternations):
 * folding the batch norms took the forward from 20.6-22.3 to 18.1-19.4 ms;
 * the add as a binary post-op then to 18.0-20.2 (a sum post-op on y, which
 * needs the other input copied into y first, lost: 19.1-24.5). */
static mx_status plan_fusion(cnn_graph *g)
{
    int *readers = calloc(g->num_tensors, sizeof *readers);
    if (!readers) return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    for (size_t k = 0; k < g->num_nodes; k++) {
        readers[g->nodes[k].in]++;
        if (g->nodes[k].in2 >= 0) readers[g->nodes[k].in2]++;
    }
    for (size_t k = 0; k < g->num_nodes; k++) {
        cnn_node *nd = &g->nodes[k];
        nd->fold_bn = nd->fold_add = nd->sum_in = -1;
        nd->fused = nd->wino = 0;
        nd->pred_out = nd->out;
        nd->pred_relu = nd->relu;
    }
    size_t folded = 0;
    const size_t widest = widest_conv(g);
    for (size_t k = 0; k + 1 < g->num_nodes; k++) {
        cnn_node *nd = &g->nodes[k], *bn = &g->nodes[k + 1];
        if (nd->op != CNN_CONV || nd->relu || bn->op != CNN_BN || bn->in != nd->out || readers[nd->out] != 1) continue;
        nd->fold_bn = (int)k + 1;
        nd->pred_out = bn->out;
        nd->pred_relu = bn->relu;
        bn->fused = 1;
        size_t need = g->model->tensors[nd->weight].numel + nd->conv.out_channels;
        if (need > folded) folded = need;
        if (k + 2 >= g->num_nodes) continue;
        cnn_node *add = &g->nodes[k + 2];
        /* oneDNN's Winograd kernels take no binary post-op; mixreg's own takes the add. */
        if (bn->relu || add->op != CNN_ADD || readers[bn->out] != 1 || !g->tensors[add->out].blocked ||
            (winograd_suits(g, nd) && !winograd_inference_suits(g, nd, widest, add->out)))
            continue;
        if (add->in != bn->out && add->in2 != bn->out) continue;
        nd->fold_add = (int)k + 2;
        nd->sum_in = add->in == bn->out ? add->in2 : add->in;
        nd->pred_out = add->out;
        nd->pred_relu = add->relu;
        add->fused = 1;
    }
    free(readers);
    size_t wino_floats = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        cnn_node *nd = &g->nodes[k];
        if (nd->op != CNN_CONV || !(nd->wino = winograd_inference_suits(g, nd, widest, nd->pred_out))) continue;
        if (mx_wino_weight_floats(&nd->conv) > wino_floats) wino_floats = mx_wino_weight_floats(&nd->conv);
    }
    if (folded && !(g->fold = malloc(folded * sizeof(float))))
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    if (wino_floats && !(g->wino_u = aligned_alloc(64, (wino_floats * sizeof(float) + 63) / 64 * 64)))
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    /* pred_cache: per fused convolution its folded weights and bias, then its
     * Winograd weights, each start 64-byte aligned. */
    size_t cache = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        cnn_node *nd = &g->nodes[k];
        nd->pred_cache_at = nd->pred_cache_wino_at = CNN_NONE;
        if (nd->op != CNN_CONV || (nd->fold_bn < 0 && !nd->wino)) continue;
        nd->pred_cache_at = cache;
        if (nd->fold_bn >= 0) {
            nd->pred_cache_wino_at = (g->model->tensors[nd->weight].numel + nd->conv.out_channels + 15) / 16 * 16;
            cache += nd->pred_cache_wino_at;
        }
        if (nd->wino) cache += mx_wino_weight_floats(&nd->conv);
    }
    g->pred_chunked = wino_floats > 0; /* cnn_exec.c cnn_predict says why only these */
    if (g->pred_chunked && cache && cache * sizeof(float) <= CNN_PRED_CACHE_BYTES &&
        !(g->pred_cache = aligned_alloc(64, cache * sizeof(float))))
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    if (!g->pred_cache)
        for (size_t k = 0; k < g->num_nodes; k++) g->nodes[k].pred_cache_at = CNN_NONE;
    return MX_OK;
}

static mx_status make_node_plan(cnn_graph *g, const cnn_node *nd, size_t n, int inference, cnn_node_plan *p)
{
    const cnn_tensor *in = &g->tensors[nd->in], *out = &g->tensors[inference ? nd->pred_out : nd->out];
    mx_status st = MX_OK;
    switch (nd->op) {
    case CNN_CONV: {
        mx_dnnl_conv2d_options opt = {.has_bias = nd->bias != CNN_NONE, .layout = MX_DNNL_LAYOUT_BLOCKED,
                                      .precision = g->model->spec.precision == MX_PRECISION_BF16 ? MX_DNNL_BF16
                                                                                                 : MX_DNNL_F32,
                                      .src_layout = in->blocked ? MX_DNNL_ACT_NCHW16C : MX_DNNL_ACT_NCHW,
                                      .dst_layout = out->blocked ? MX_DNNL_ACT_NCHW16C : MX_DNNL_ACT_NCHW};
        if (inference) {
            opt.inference_only = 1;
            if (nd->fold_bn >= 0) opt.has_bias = 1;
            opt.post_add = nd->fold_add >= 0;
            opt.post_relu = nd->pred_relu;
        }
        choose_conv_algorithm(g, nd, &opt);
        st = mx_dnnl_conv2d_plan_create(g->dnnl, &nd->conv, n, &opt, &p->conv);
        break;
    }
    case CNN_MAXPOOL:
        st = mx_dnnl_pool2d_plan_create(g->dnnl, &nd->pool, n, MX_DNNL_POOL_MAX, 0, &p->pool);
        /* Its workspace (an index per output, u8 or s32) lives in the node's argmax buffer. */
        if (st == MX_OK && mx_dnnl_pool2d_workspace_bytes(p->pool) > n * out->size * sizeof(uint32_t)) {
            mx_dnnl_pool2d_plan_free(p->pool);
            p->pool = NULL;
        }
        break;
    case CNN_LINEAR:
        st = mx_dnnl_linear_plan_create(g->dnnl, n, in->size, out->size, nd->bias != CNN_NONE, 0, &p->linear);
        break;
    case CNN_BN:
    case CNN_ADD:
    case CNN_GAP:
    case CNN_DROPOUT:
        break;
    }
    return st;
}

static mx_status make_set(cnn_graph *g, cnn_plan_set *s, size_t n, int inference)
{
    s->node = calloc(g->num_nodes, sizeof *s->node);
    if (!s->node) return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    s->n = n;
    s->inference = inference;
    for (size_t k = 0; k < g->num_nodes; k++) {
        if (inference && (g->nodes[k].fused || g->nodes[k].wino)) continue;
        mx_status st = make_node_plan(g, &g->nodes[k], n, inference, &s->node[k]);
        if (st != MX_OK) {
            free_set(g, s);
            return mx_error_wrap(st, "oneDNN plans for batch %zu (layer %zu)", n, k);
        }
    }
    s->last_use = ++g->plan_clock;
    return MX_OK;
}

mx_status cnn_dnnl_init(cnn_graph *g)
{
    mx_status st = assign_layouts(g);
    if (st == MX_OK) st = plan_fusion(g);
    if (st == MX_OK) st = mx_dnnl_context_create(&g->dnnl);
    return st;
}

mx_status cnn_dnnl_plan(cnn_graph *g)
{
    const size_t B = g->model->max_batch;
    /* Training: the max batch's set, made now so that a failure is reported
     * now. Prediction makes its sets at first use (cnn_dnnl_plans), where one
     * that cannot be made (oneDNN refuses some fusions at some batch sizes)
     * runs unfused instead. */
    mx_status st = g->predict_only ? MX_OK : make_set(g, &g->plans[0], B, 0);
    /* bf16: each convolution keeps its input in bfloat16 from the forward for
     * the backward weights (one reorder a step fewer; sized for the max batch). */
    for (size_t k = 0; st == MX_OK && !g->predict_only && k < g->num_nodes; k++) {
        const mx_dnnl_conv2d_plan *conv = g->plans[0].node[k].conv;
        const size_t bytes = conv ? mx_dnnl_conv2d_kept_x_bytes(conv) : 0;
        if (bytes && !(g->nodes[k].x_bf16 = aligned_alloc(64, (bytes + 63) / 64 * 64)))
            st = mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    const size_t logits = B * g->tensors[g->nodes[g->num_nodes - 1].out].size;
    if (st == MX_OK && g->pred_chunked && !(g->pred_logits = malloc(logits * sizeof(float))))
        st = mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    return st;
}

void cnn_dnnl_drop_plans(cnn_graph *g)
{
    for (size_t k = 0; k < g->num_nodes; k++) {
        free(g->nodes[k].x_bf16);
        g->nodes[k].x_bf16 = NULL;
    }
    for (size_t i = 0; i < CNN_PLAN_SETS; i++) free_set(g, &g->plans[i]);
    free(g->pred_logits);
    g->pred_logits = NULL;
}

void cnn_dnnl_free(cnn_graph *g)
{
    cnn_dnnl_drop_plans(g);
    mx_dnnl_context_free(g->dnnl);
    g->dnnl = NULL;
    free(g->fold);
    free(g->wino_u);
    free(g->pred_cache);
    g->fold = g->wino_u = g->pred_cache = NULL;
}

const cnn_plan_set *cnn_dnnl_plans(cnn_graph *g, size_t n, int inference)
{
    if (!g->dnnl) return NULL;
    cnn_plan_set *victim = NULL;
    for (size_t i = 0; i < CNN_PLAN_SETS; i++) {
        cnn_plan_set *s = &g->plans[i];
        if (s->n == n && s->inference == inference) {
            s->last_use = ++g->plan_clock;
            return s->failed ? NULL : s;
        }
        /* Slot 0 (the max batch's training set) stays; an empty slot, else the least recently used. */
        if ((i > 0 || g->predict_only) && (!victim || (victim->n && (!s->n || s->last_use < victim->last_use))))
            victim = s;
    }
    free_set(g, victim);
    if (make_set(g, victim, n, inference) == MX_OK) return victim;
    /* Remembered, so that later batches of this size do not make (and fail)
     * the same plans again, one call each. */
    victim->n = n, victim->inference = inference, victim->failed = 1;
    victim->last_use = ++g->plan_clock;
    if (!g->plan_warned) {
        fprintf(stderr, "mixreg: %s; running that batch size %s\n", mx_error_message(),
                inference ? "without the inference fusions" : "on the reference layers");
        g->plan_warned = 1;
    }
    return NULL;
}
