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
 *  - linear layers: oneDNN (through OpenBLAS instead lenet5 trained 20-35%
 *    slower: its pthreads and the OpenMP team compete);
 *  - max pooling on NCHW: the layer's own threaded loop (layers/pool.c;
 *    oneDNN's NCHW pooling is its slow reference kernel);
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
#include <immintrin.h>
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
        /* No plan: max pooling reads NCHW (assign_layouts), where oneDNN 2.x
         * has only its reference kernel; the layer's own threaded loop (the
         * exact reference semantics) is several times faster (pool.c). */
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

/* ---- the cpu backend's own kernels ------------------------------------------
 * OpenMP-threaded and vectorised (#pragma omp simd), where the reference
 * loops are single-threaded scalar code: ReLU, the residual add, gradient
 * copies and sums, and batch norm with its ReLU fused in (one pass over the
 * activation fewer each way). Element-wise loops split the elements, batch
 * norm on NCHW the channels, on nChw16c the samples (their partial sums then
 * added in order on one thread): the results do not depend on the thread
 * count. Loops this small run on the calling thread. */

#define CNN_CPU_PARALLEL_MIN 32768 /* elements: below, a team costs more than it saves */

/* 16 floats to bfloat16, rounded to nearest even (NaN stays NaN), as
 * oneDNN's reorders round. */
static inline void store_bf16x16(const float *v, uint16_t *out)
{
#ifdef __AVX512BF16__
    _mm256_storeu_si256((__m256i *)(void *)out, (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(v)));
#else
    for (int l = 0; l < 16; l++) {
        uint32_t u;
        memcpy(&u, &v[l], sizeof u);
        out[l] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u)
                                                 : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
#endif
}

void cnn_cpu_relu_forward(size_t count, float *y)
{
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
    for (size_t i = 0; i < count; i++) {
        float v = y[i];
        y[i] = (v > 0.0f || v != v) ? v : 0.0f; /* NaN passes, as mx_relu_forward */
    }
}

void cnn_cpu_relu_backward(size_t count, const float *y, float *dy)
{
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
    for (size_t i = 0; i < count; i++) dy[i] = y[i] <= 0.0f ? 0.0f : dy[i];
}

void cnn_cpu_add_forward(size_t count, const float *a, const float *b, float *y, int relu)
{
    if (relu) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) {
            float v = a[i] + b[i];
            y[i] = (v > 0.0f || v != v) ? v : 0.0f;
        }
    } else {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
    }
}

void cnn_cpu_add_forward_bf16_copy(size_t count, const float *a, const float *b, float *y, int relu, uint16_t *y16)
{
#pragma omp parallel for schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
    for (size_t i = 0; i < count; i += 16) {
#pragma omp simd
        for (int l = 0; l < 16; l++) {
            float v = a[i + l] + b[i + l];
            y[i + l] = relu && !(v > 0.0f || v != v) ? 0.0f : v;
        }
        store_bf16x16(y + i, y16 + i);
    }
}

/* d = (or +=) dy, masked by y > 0 when y is not NULL. */
static void grad_into(size_t count, const float *restrict y, const float *restrict dy, float *restrict d, int acc)
{
    if (y && acc) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) d[i] += y[i] <= 0.0f ? 0.0f : dy[i];
    } else if (y) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) d[i] = y[i] <= 0.0f ? 0.0f : dy[i];
    } else {
        cnn_cpu_grad_pass(count, d, dy, acc);
    }
}

/* The cases are separate loops, with the pointers restrict: one loop testing
 * them per element stayed scalar and took preact18's add backward to 65 ms a
 * step (10x its forward). */
void cnn_cpu_add_backward(size_t count, const float *y, const float *dy, float *da, int acc_a, float *db, int acc_b)
{
    if (da && db && !acc_a && !acc_b) {
        /* Both inputs' gradients written fresh: one pass over dy. */
        float *restrict a = da, *restrict b = db;
        const float *restrict g = dy;
        if (y) {
            const float *restrict m = y;
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
            for (size_t i = 0; i < count; i++) a[i] = b[i] = m[i] <= 0.0f ? 0.0f : g[i];
        } else {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
            for (size_t i = 0; i < count; i++) a[i] = b[i] = g[i];
        }
        return;
    }
    if (da) grad_into(count, y, dy, da, acc_a);
    if (db) grad_into(count, y, dy, db, acc_b);
}

void cnn_cpu_grad_pass(size_t count, float *dst, const float *src, int accumulate)
{
    if (accumulate) {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) dst[i] += src[i];
    } else {
#pragma omp parallel for simd schedule(static) if (count >= CNN_CPU_PARALLEL_MIN)
        for (size_t i = 0; i < count; i++) dst[i] = src[i];
    }
}

/* Sum and sum of squares of one channel (n planes of hw, `stride` apart), in double. */
static void channel_sums(size_t n, size_t hw, size_t stride, const float *x, double *sum, double *sumsq)
{
    double s1 = 0, s2 = 0;
    for (size_t s = 0; s < n; s++) {
        const float *p = x + s * stride;
#pragma omp simd reduction(+ : s1, s2)
        for (size_t i = 0; i < hw; i++) {
            double v = p[i];
            s1 += v;
            s2 += v * v;
        }
    }
    *sum = s1, *sumsq = s2;
}

/* y = relu?((x - mean) a + b) over one channel. */
static void channel_affine(size_t n, size_t hw, size_t stride, const float *x, float mean, float a, float b,
                           int relu, float *y)
{
    for (size_t s = 0; s < n; s++) {
        const float *p = x + s * stride;
        float *q = y + s * stride;
        if (relu) {
#pragma omp simd
            for (size_t i = 0; i < hw; i++) {
                float v = (p[i] - mean) * a + b;
                q[i] = (v > 0.0f || v != v) ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (size_t i = 0; i < hw; i++) q[i] = (p[i] - mean) * a + b;
        }
    }
}

/* Channel c of a training batch norm from its m values' sum and sum of
 * squares (double): the batch statistics saved for the backward, the running
 * ones moved PyTorch's way (unbiased variance), and the forward's constants
 * k = {mean, gamma / std, beta} as floats. */
static void bn_train_channel(size_t c, size_t m, double sum, double sumsq, const float *gamma, const float *beta,
                             float momentum, float eps, float *running_mean, float *running_var, float *save_mean,
                             float *save_invstd, float k[3])
{
    const double mean = m ? sum / (double)m : 0.0;
    double var = m ? sumsq / (double)m - mean * mean : 0.0;
    if (var < 0) var = 0;
    const double invstd = 1.0 / sqrt(var + eps);
    k[0] = (float)mean;
    k[1] = (float)((gamma ? gamma[c] : 1.0) * invstd);
    k[2] = beta ? beta[c] : 0.0f;
    save_mean[c] = (float)mean;
    save_invstd[c] = (float)invstd;
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + (double)momentum * mean);
    if (running_var) {
        double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
        running_var[c] = (float)((1.0 - momentum) * running_var[c] + (double)momentum * unbiased);
    }
}

void cnn_cpu_bn_forward_train(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                              const float *beta, float momentum, float eps, float *running_mean, float *running_var,
                              float *y, float *save_mean, float *save_invstd, int relu, float *affine)
{
    cnn_cpu_bn_forward_train_synced(n, channels, hw, x, gamma, beta, momentum, eps, running_mean, running_var, y,
                                    save_mean, save_invstd, relu, affine, NULL);
}

void cnn_cpu_bn_forward_train_synced(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                     const float *beta, float momentum, float eps, float *running_mean,
                                     float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                     float *affine, const cnn_bn_sync *sync)
{
    const size_t m = n * hw, stride = channels * hw;
    if (sync) {
        /* Sums of every rank's samples, then the same constants everywhere. */
        double *t = sync->sums;
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
        for (size_t c = 0; c < channels; c++) channel_sums(n, hw, stride, x + c * hw, &t[c], &t[channels + c]);
        t[2 * channels] = (double)m;
        sync->reduce(sync->ctx, t, 2 * channels + 1);
        const size_t total = (size_t)t[2 * channels];
        *sync->count = t[2 * channels];
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
        for (size_t c = 0; c < channels; c++) {
            float k[3];
            bn_train_channel(c, total, t[c], t[channels + c], gamma, beta, momentum, eps, running_mean, running_var,
                             save_mean, save_invstd, k);
            channel_affine(n, hw, stride, x + c * hw, k[0], k[1], k[2], relu, y + c * hw);
            if (affine) affine[c] = k[0], affine[channels + c] = k[1], affine[2 * channels + c] = k[2];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++) {
        double sum, sumsq;
        channel_sums(n, hw, stride, x + c * hw, &sum, &sumsq);
        float k[3];
        bn_train_channel(c, m, sum, sumsq, gamma, beta, momentum, eps, running_mean, running_var, save_mean,
                         save_invstd, k);
        channel_affine(n, hw, stride, x + c * hw, k[0], k[1], k[2], relu, y + c * hw);
        if (affine) affine[c] = k[0], affine[channels + c] = k[1], affine[2 * channels + c] = k[2];
    }
}

void cnn_cpu_bn_forward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                             const float *beta, const float *running_mean, const float *running_var, float eps,
                             float *y, int relu, float *affine)
{
    const size_t stride = channels * hw;
#pragma omp parallel for schedule(static) if (n * hw * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++) {
        const double a = (gamma ? gamma[c] : 1.0) / sqrt((double)running_var[c] + eps);
        channel_affine(n, hw, stride, x + c * hw, running_mean[c], (float)a, beta ? beta[c] : 0.0f, relu, y + c * hw);
        if (affine)
            affine[c] = running_mean[c], affine[channels + c] = (float)a, affine[2 * channels + c] = beta ? beta[c] : 0.0f;
    }
}

/* Sums of dy' and dy' x over one channel, dy' = dy masked by y > 0 (y NaN
 * passes) when y is not NULL: the fused ReLU's backward, as mx_relu_backward. */
static void channel_grad_sums(size_t n, size_t hw, size_t stride, const float *x, const float *y, const float *dy,
                              double *sum_dy, double *sum_dy_x)
{
    double s1 = 0, s2 = 0;
    for (size_t s = 0; s < n; s++) {
        const float *px = x + s * stride, *pg = dy + s * stride;
        if (y) {
            const float *py = y + s * stride;
#pragma omp simd reduction(+ : s1, s2)
            for (size_t i = 0; i < hw; i++) {
                double g = py[i] <= 0.0f ? 0.0 : (double)pg[i];
                s1 += g;
                s2 += g * px[i];
            }
        } else {
#pragma omp simd reduction(+ : s1, s2)
            for (size_t i = 0; i < hw; i++) {
                double g = pg[i];
                s1 += g;
                s2 += g * px[i];
            }
        }
    }
    *sum_dy = s1, *sum_dy_x = s2;
}

/* dx = k1 dy' - k0 - (x - mean) k2 over one channel. */
static void channel_grad(size_t n, size_t hw, size_t stride, const float *x, const float *y, const float *dy,
                         float mean, float k0, float k1, float k2, float *dx)
{
    for (size_t s = 0; s < n; s++) {
        const float *px = x + s * stride, *pg = dy + s * stride;
        float *q = dx + s * stride;
        if (y) {
            const float *py = y + s * stride;
#pragma omp simd
            for (size_t i = 0; i < hw; i++) {
                float g = py[i] <= 0.0f ? 0.0f : pg[i];
                q[i] = k1 * g - k0 - (px[i] - mean) * k2;
            }
        } else {
#pragma omp simd
            for (size_t i = 0; i < hw; i++) q[i] = k1 * pg[i] - k0 - (px[i] - mean) * k2;
        }
    }
}

void cnn_cpu_bn_backward(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                         const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                         float *dgamma, float *dbeta)
{
    cnn_cpu_bn_backward_synced(n, channels, hw, x, y, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta, NULL);
}

void cnn_cpu_bn_backward_synced(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                                const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                float *dgamma, float *dbeta, const cnn_bn_sync *sync)
{
    const size_t m = n * hw, stride = channels * hw;
    if (sync) {
        /* gamma's and beta's gradients from this rank's samples (the gradient
         * all-reduce adds them up); the input gradient from every rank's sums. */
        double *t = sync->sums;
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
        for (size_t c = 0; c < channels; c++) {
            channel_grad_sums(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, &t[c], &t[channels + c]);
            const double sum_dy_xhat = (t[channels + c] - (double)save_mean[c] * t[c]) * (double)save_invstd[c];
            if (dgamma) dgamma[c] = (float)sum_dy_xhat;
            if (dbeta) dbeta[c] = (float)t[c];
        }
        sync->reduce(sync->ctx, t, 2 * channels);
        const double total = *sync->count;
        if (!dx || !m) return;
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
        for (size_t c = 0; c < channels; c++) {
            const double mean = save_mean[c], invstd = save_invstd[c];
            const double sum_dy_xhat = (t[channels + c] - mean * t[c]) * invstd;
            const double scale = (gamma ? gamma[c] : 1.0) * invstd;
            const double mean_dy = t[c] / total, mean_dy_xhat = sum_dy_xhat / total;
            channel_grad(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, (float)mean,
                         (float)(scale * mean_dy), (float)scale, (float)(scale * invstd * mean_dy_xhat), dx + c * hw);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (m * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy, sum_dy_x;
        channel_grad_sums(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, &sum_dy, &sum_dy_x);
        const double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
        if (dgamma) dgamma[c] = (float)sum_dy_xhat;
        if (dbeta) dbeta[c] = (float)sum_dy;
        if (!dx || !m) continue;
        const double scale = (gamma ? gamma[c] : 1.0) * invstd;
        const double mean_dy = sum_dy / (double)m, mean_dy_xhat = sum_dy_xhat / (double)m;
        channel_grad(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, (float)mean,
                     (float)(scale * mean_dy), (float)scale, (float)(scale * invstd * mean_dy_xhat), dx + c * hw);
    }
}

void cnn_cpu_bn_backward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                              const float *gamma, const float *running_mean, const float *running_var, float eps,
                              float *dx, float *dgamma, float *dbeta)
{
    const size_t stride = channels * hw;
#pragma omp parallel for schedule(static) if (n * hw * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps), mean = running_mean[c];
        double sum_dy, sum_dy_x;
        channel_grad_sums(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, &sum_dy, &sum_dy_x);
        if (dgamma) dgamma[c] = (float)((sum_dy_x - mean * sum_dy) * invstd);
        if (dbeta) dbeta[c] = (float)sum_dy;
        if (dx)
            channel_grad(n, hw, stride, x + c * hw, y ? y + c * hw : NULL, dy + c * hw, 0.0f, 0.0f,
                         (float)((gamma ? gamma[c] : 1.0) * invstd), 0.0f, dx + c * hw);
    }
}

/* ---- nChw16c kernels --------------------------------------------------------
 * Element (s, c, p) of a tensor of C channels (a multiple of 16) and hw per
 * sample at ((s * C/16 + c/16) * hw + p) * 16 + c % 16: a block's 16 channels
 * are one vector. Batch norm's sums are taken per sample and block (split
 * across threads by sample), kept in `partial` ([n][2][C] doubles, then 3 C
 * more), and added over the samples in order on one thread: the same bits for
 * any thread count. */


/* Whether the fused ReLU zeroed this output, from the batch norm's input x
 * and the forward's constants rk (mean, scale, shift per channel) with the
 * forward's own arithmetic (blocked_affine): its output was <= 0. */
static inline int relu_zeroed(float x, float mean, float scale, float shift)
{
    return (x - mean) * scale + shift <= 0.0f;
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
/* One row of 16 lanes into the double sums: s1 += g, s2 += g * b (b NULL:
 * g * g), each product rounded before its add, as the scalar loop. */
static inline void sums_row(__m512 g, const float *b, __m512d s[4])
{
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(g)), hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(g, 1));
    __m512d blo = lo, bhi = hi;
    if (b) {
        const __m512 bv = _mm512_loadu_ps(b);
        blo = _mm512_cvtps_pd(_mm512_castps512_ps256(bv)), bhi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(bv, 1));
    }
    s[0] = _mm512_add_pd(s[0], lo);
    s[1] = _mm512_add_pd(s[1], hi);
    s[2] = _mm512_add_pd(s[2], _mm512_mul_pd(lo, blo));
    s[3] = _mm512_add_pd(s[3], _mm512_mul_pd(hi, bhi));
}

/* blocked_sums' per-(sample, block) loop with the sums in registers (the
 * portable loop kept them on the stack: 6% of a bf16 resnet20 step); the same
 * operations in the same order, so the same bits. */
static void sums_block(size_t end, const float *pa, const float *pm, const float *rk3[3], const float *pb, double *s1,
                       double *s2)
{
    __m512d s[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    const __m512 zero = _mm512_setzero_ps();
    for (size_t o = 0; o < end; o += 16) {
        __m512 g = _mm512_loadu_ps(pa + o);
        if (pm) {
            g = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(_mm512_loadu_ps(pm + o), zero, _CMP_NLE_UQ), g);
        } else if (rk3[0]) {
            const __m512 v = _mm512_add_ps(
                _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(pb + o), _mm512_loadu_ps(rk3[0])), _mm512_loadu_ps(rk3[1])),
                _mm512_loadu_ps(rk3[2]));
            g = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ), g);
        }
        sums_row(g, pb ? pb + o : NULL, s);
    }
    _mm512_storeu_pd(s1, s[0]);
    _mm512_storeu_pd(s1 + 8, s[1]);
    _mm512_storeu_pd(s2, s[2]);
    _mm512_storeu_pd(s2 + 8, s[3]);
}
#endif

/* Per-sample sums of a and a^2 (b NULL), or of g and g b with g = a masked by
 * mask > 0 (mask NULL: unmasked), into partial[s][0][c], partial[s][1][c]. */
static void blocked_sums(size_t n, size_t channels, size_t hw, const float *a, const float *mask, const float *rk,
                         const float *b, double *partial)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const size_t base = (s * CB + cb) * hw * 16, end = hw * 16;
            const float *pa = a + base;
            double s1[16] = {0}, s2[16] = {0};
#if defined(__AVX512F__) && defined(__AVX512DQ__)
            const float *rk3[3] = {rk && !mask ? rk + cb * 16 : NULL, rk ? rk + channels + cb * 16 : NULL,
                                   rk ? rk + 2 * channels + cb * 16 : NULL};
            sums_block(end, pa, b && mask ? mask + base : NULL, rk3, b ? b + base : NULL, s1, s2);
#else
            if (!b) {
                for (size_t o = 0; o < end; o += 16) {
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        double v = pa[o + l];
                        s1[l] += v;
                        s2[l] += v * v;
                    }
                }
            } else if (!mask && rk) { /* the mask from b = x and the forward's constants (relu_zeroed) */
                const float *pb = b + base, *rm = rk + cb * 16, *ra = rk + channels + cb * 16,
                            *rb = rk + 2 * channels + cb * 16;
                for (size_t o = 0; o < end; o += 16) {
                    float gm[16];
#pragma omp simd
                    for (int l = 0; l < 16; l++) gm[l] = relu_zeroed(pb[o + l], rm[l], ra[l], rb[l]) ? 0.0f : pa[o + l];
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        double g = gm[l];
                        s1[l] += g;
                        s2[l] += g * pb[o + l];
                    }
                }
            } else if (mask) {
                const float *pm = mask + base, *pb = b + base;
                for (size_t o = 0; o < end; o += 16) {
                    float gm[16]; /* the select in its own loop: GCC vectorises neither otherwise */
#pragma omp simd
                    for (int l = 0; l < 16; l++) gm[l] = pm[o + l] <= 0.0f ? 0.0f : pa[o + l];
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        double g = gm[l];
                        s1[l] += g;
                        s2[l] += g * pb[o + l];
                    }
                }
            } else {
                const float *pb = b + base;
                for (size_t o = 0; o < end; o += 16) {
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        double g = pa[o + l];
                        s1[l] += g;
                        s2[l] += g * pb[o + l];
                    }
                }
            }
#endif
            double *out = partial + s * 2 * channels + cb * 16;
            for (int l = 0; l < 16; l++) out[l] = s1[l], out[channels + l] = s2[l];
        }
}

/* The two sums of channel c over the samples, in order. */
static void blocked_total(size_t n, size_t channels, const double *partial, size_t c, double *t1, double *t2)
{
    double a = 0, b = 0;
    for (size_t s = 0; s < n; s++) a += partial[s * 2 * channels + c], b += partial[s * 2 * channels + channels + c];
    *t1 = a, *t2 = b;
}

/* y = relu?((x - mean) a + b) with k = {mean, a, b} per channel, as float32
 * into y and as bfloat16 into y16, each when not NULL. */
static void blocked_affine(size_t n, size_t channels, size_t hw, const float *x, const float *k, int relu, float *y,
                           uint16_t *y16)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const size_t base = (s * CB + cb) * hw * 16;
            const float *mean = k + cb * 16, *a = k + channels + cb * 16, *b = k + 2 * channels + cb * 16;
            for (size_t q = 0; q < hw; q++) {
                const float *px = x + base + q * 16;
                float row[16], *py = y ? y + base + q * 16 : row;
#pragma omp simd
                for (int l = 0; l < 16; l++) {
                    float v = (px[l] - mean[l]) * a[l] + b[l];
                    py[l] = relu && !(v > 0.0f || v != v) ? 0.0f : v;
                }
                if (y16) store_bf16x16(py, y16 + base + q * 16);
            }
        }
}



/* dx = k[1][c] g - k[0][c] - (x - k[3][c]) k[2][c], g = dy masked by the
 * fused ReLU: by its output y > 0 when y is not NULL, else by relu_zeroed from
 * rk when that is not NULL. As float32, or with dx_bf16 as bfloat16 in dx's
 * first half (the next consumer, a bfloat16 convolution's backward, reads it
 * so). */
static void blocked_grad(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *rk,
                         const float *dy, const float *k, float *dx, int dx_bf16)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const size_t base = (s * CB + cb) * hw * 16;
            const float *k0 = k + cb * 16, *k1 = k + channels + cb * 16, *k2 = k + 2 * channels + cb * 16,
                        *mean = k + 3 * channels + cb * 16;
            const float *px = x + base, *pg = dy + base, *py = y ? y + base : NULL;
            const float *rm = rk ? rk + cb * 16 : NULL, *ra = rk ? rk + channels + cb * 16 : NULL,
                        *rb = rk ? rk + 2 * channels + cb * 16 : NULL;
            float *pd = dx + base, row[16];
            uint16_t *pb = (uint16_t *)(void *)dx + base;
            for (size_t q = 0; q < hw * 16; q += 16) {
                float *out = dx_bf16 ? row : pd + q;
                if (!py && rm) {
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        float g = relu_zeroed(px[q + l], rm[l], ra[l], rb[l]) ? 0.0f : pg[q + l];
                        out[l] = k1[l] * g - k0[l] - (px[q + l] - mean[l]) * k2[l];
                    }
                } else if (py) {
#pragma omp simd
                    for (int l = 0; l < 16; l++) {
                        float v = pg[q + l], g = py[q + l] <= 0.0f ? 0.0f : v;
                        out[l] = k1[l] * g - k0[l] - (px[q + l] - mean[l]) * k2[l];
                    }
                } else {
#pragma omp simd
                    for (int l = 0; l < 16; l++) out[l] = k1[l] * pg[q + l] - k0[l] - (px[q + l] - mean[l]) * k2[l];
                }
                if (dx_bf16) store_bf16x16(row, pb + q);
            }
        }
}

/* partial has room for 4 C floats after its 2 n C doubles. */
static float *blocked_consts(size_t n, size_t channels, double *partial)
{
    return (float *)(partial + 2 * n * channels);
}

void cnn_cpu_bn_forward_train_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                      const float *beta, float momentum, float eps, float *running_mean,
                                      float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                      double *partial, float *affine, uint16_t *y16)
{
    cnn_cpu_bn_forward_train_blocked_synced(n, channels, hw, x, gamma, beta, momentum, eps, running_mean, running_var,
                                            y, save_mean, save_invstd, relu, partial, affine, y16, NULL);
}

void cnn_cpu_bn_forward_train_blocked_synced(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                             const float *beta, float momentum, float eps, float *running_mean,
                                             float *running_var, float *y, float *save_mean, float *save_invstd,
                                             int relu, double *partial, float *affine, uint16_t *y16,
                                             const cnn_bn_sync *sync)
{
    size_t m = n * hw;
    blocked_sums(n, channels, hw, x, NULL, NULL, NULL, partial);
    float *k = blocked_consts(n, channels, partial);
    if (sync) {
        /* This rank's totals, then every rank's, in sync->sums. */
        double *t = sync->sums;
        for (size_t c = 0; c < channels; c++) blocked_total(n, channels, partial, c, &t[c], &t[channels + c]);
        t[2 * channels] = (double)m;
        sync->reduce(sync->ctx, t, 2 * channels + 1);
        m = (size_t)t[2 * channels];
        *sync->count = t[2 * channels];
    }
    for (size_t c = 0; c < channels; c++) {
        double sum, sumsq;
        if (sync) sum = sync->sums[c], sumsq = sync->sums[channels + c];
        else blocked_total(n, channels, partial, c, &sum, &sumsq);
        float kc[3];
        bn_train_channel(c, m, sum, sumsq, gamma, beta, momentum, eps, running_mean, running_var, save_mean,
                         save_invstd, kc);
        k[c] = kc[0], k[channels + c] = kc[1], k[2 * channels + c] = kc[2];
    }
    blocked_affine(n, channels, hw, x, k, relu, y, y16);
    if (affine) memcpy(affine, k, 3 * channels * sizeof(float));
}

void cnn_cpu_bn_forward_eval_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                     const float *beta, const float *running_mean, const float *running_var, float eps,
                                     float *y, int relu, double *partial, float *affine, uint16_t *y16)
{
    float *k = blocked_consts(n, channels, partial);
    for (size_t c = 0; c < channels; c++) {
        k[c] = running_mean[c];
        k[channels + c] = (float)((gamma ? gamma[c] : 1.0) / sqrt((double)running_var[c] + eps));
        k[2 * channels + c] = beta ? beta[c] : 0.0f;
    }
    blocked_affine(n, channels, hw, x, k, relu, y, y16);
    if (affine) memcpy(affine, k, 3 * channels * sizeof(float));
}

void cnn_cpu_bn_backward_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                 const float *relu_k, const float *dy, const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                 int dx_bf16, float *dgamma, float *dbeta, double *partial)
{
    cnn_cpu_bn_backward_blocked_synced(n, channels, hw, x, y, relu_k, dy, gamma, save_mean, save_invstd, dx, dx_bf16,
                                       dgamma, dbeta, partial, NULL);
}

void cnn_cpu_bn_backward_blocked_synced(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                        const float *relu_k, const float *dy, const float *gamma,
                                        const float *save_mean, const float *save_invstd, float *dx, int dx_bf16,
                                        float *dgamma, float *dbeta, double *partial, const cnn_bn_sync *sync)
{
    const size_t local_m = n * hw;
    double m = (double)local_m;
    blocked_sums(n, channels, hw, dy, y, relu_k, x, partial);
    float *k = blocked_consts(n, channels, partial);
    if (sync) {
        /* gamma's and beta's gradients from this rank's samples (the gradient
         * all-reduce adds them up); the input gradient from every rank's sums. */
        double *t = sync->sums;
        for (size_t c = 0; c < channels; c++) {
            blocked_total(n, channels, partial, c, &t[c], &t[channels + c]);
            const double sum_dy_xhat = (t[channels + c] - (double)save_mean[c] * t[c]) * (double)save_invstd[c];
            if (dgamma) dgamma[c] = (float)sum_dy_xhat;
            if (dbeta) dbeta[c] = (float)t[c];
        }
        sync->reduce(sync->ctx, t, 2 * channels);
        m = *sync->count;
    }
    for (size_t c = 0; c < channels; c++) {
        double sum_dy, sum_dy_x;
        if (sync) sum_dy = sync->sums[c], sum_dy_x = sync->sums[channels + c];
        else blocked_total(n, channels, partial, c, &sum_dy, &sum_dy_x);
        const double mean = save_mean[c], invstd = save_invstd[c];
        const double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
        if (dgamma && !sync) dgamma[c] = (float)sum_dy_xhat;
        if (dbeta && !sync) dbeta[c] = (float)sum_dy;
        const double scale = (gamma ? gamma[c] : 1.0) * invstd;
        const double mean_dy = m > 0 ? sum_dy / m : 0.0, mean_dy_xhat = m > 0 ? sum_dy_xhat / m : 0.0;
        k[c] = (float)(scale * mean_dy);
        k[channels + c] = (float)scale;
        k[2 * channels + c] = (float)(scale * invstd * mean_dy_xhat);
        k[3 * channels + c] = (float)mean;
    }
    if (dx && local_m) blocked_grad(n, channels, hw, x, y, relu_k, dy, k, dx, dx_bf16);
}

void cnn_cpu_bn_backward_eval_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                      const float *relu_k, const float *dy, const float *gamma, const float *running_mean,
                                      const float *running_var, float eps, float *dx, int dx_bf16, float *dgamma,
                                      float *dbeta, double *partial)
{
    blocked_sums(n, channels, hw, dy, y, relu_k, x, partial);
    float *k = blocked_consts(n, channels, partial);
    for (size_t c = 0; c < channels; c++) {
        double sum_dy, sum_dy_x;
        blocked_total(n, channels, partial, c, &sum_dy, &sum_dy_x);
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps), mean = running_mean[c];
        if (dgamma) dgamma[c] = (float)((sum_dy_x - mean * sum_dy) * invstd);
        if (dbeta) dbeta[c] = (float)sum_dy;
        k[c] = 0.0f;
        k[channels + c] = (float)((gamma ? gamma[c] : 1.0) * invstd);
        k[2 * channels + c] = 0.0f;
        k[3 * channels + c] = 0.0f;
    }
    if (dx) blocked_grad(n, channels, hw, x, y, relu_k, dy, k, dx, dx_bf16);
}

void cnn_cpu_gap_forward_blocked(size_t n, size_t channels, size_t hw, const float *x, float *y)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            const float *p = x + (s * CB + cb) * hw * 16;
            double sum[16] = {0};
            for (size_t q = 0; q < hw; q++) {
#pragma omp simd
                for (int l = 0; l < 16; l++) sum[l] += p[q * 16 + l];
            }
            for (int l = 0; l < 16; l++) y[s * channels + cb * 16 + l] = (float)(sum[l] / (double)hw);
        }
}

void cnn_cpu_gap_backward_blocked(size_t n, size_t channels, size_t hw, const float *dy, float *dx)
{
    const size_t CB = channels / 16;
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t cb = 0; cb < CB; cb++) {
            float g[16];
            for (int l = 0; l < 16; l++) g[l] = (float)(dy[s * channels + cb * 16 + l] / (double)hw);
            float *p = dx + (s * CB + cb) * hw * 16;
            for (size_t q = 0; q < hw; q++) {
#pragma omp simd
                for (int l = 0; l < 16; l++) p[q * 16 + l] = g[l];
            }
        }
}

void cnn_cpu_dropout_forward_blocked(size_t n, size_t channels, size_t hw, float p, mx_rng *rng, const float *x,
                                     float *y, uint8_t *mask)
{
    /* mx_dropout_forward's rule and draws, in its (NCHW) order, applied through the index map. */
    const double cut = (double)p * 4294967296.0;
    const int drop_all = p >= 1.0f;
    const uint64_t threshold = p <= 0.0f ? 0 : drop_all ? UINT64_C(4294967296) : (uint64_t)cut;
    const float scale = drop_all ? 0.0f : 1.0f / (1.0f - p);
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < channels; c++)
            for (size_t q = 0; q < hw; q++) {
                const size_t i = (s * channels + c) * hw + q, j = cnn_index(1, channels, hw, s, c, q);
                uint8_t keep = (uint64_t)mx_rng_u32(rng) >= threshold;
                mask[i] = keep;
                y[j] = keep ? x[j] * scale : 0.0f;
            }
}

void cnn_cpu_dropout_backward_blocked(size_t n, size_t channels, size_t hw, float p, const uint8_t *mask,
                                      const float *dy, float *dx)
{
    const float scale = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < channels; c++)
            for (size_t q = 0; q < hw; q++) {
                const size_t i = (s * channels + c) * hw + q, j = cnn_index(1, channels, hw, s, c, q);
                dx[j] = mask[i] ? dy[j] * scale : 0.0f;
            }
}

void cnn_cpu_bn_apply(size_t n, size_t channels, size_t hw, int blocked, const float *x, const float *affine, int relu,
                      float *y)
{
    if (blocked) {
        blocked_affine(n, channels, hw, x, affine, relu, y, NULL);
        return;
    }
    const size_t stride = channels * hw;
#pragma omp parallel for schedule(static) if (n * hw * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++)
        channel_affine(n, hw, stride, x + c * hw, affine[c], affine[channels + c], affine[2 * channels + c], relu,
                       y + c * hw);
}
