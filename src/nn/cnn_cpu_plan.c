/* The CNN graph's "cpu" backend's planning: each tensor's layout
 * (cnn_cpu_layout.c), each convolution's kernels and the inference fusions
 * (cnn_cpu_choice.c), and the oneDNN plans (mixreg/layers_dnnl.h) per node and
 * batch size, made outside the training step. Its table (cnn_cpu_exec.c)
 * runs them, and its own threaded kernels (cnn_cpu_kernels.c,
 * cnn_cpu_blocked.c) for the other nodes.
 *
 * What runs where (measured on resnet20 and lenet5 at batch 128, 2 threads;
 * BENCHMARKS.md has the end-to-end figures and the per-layer profile):
 *  - convolution: oneDNN with its blocked layout inside (direct AVX-512
 *    kernels; 3-12x the reference's im2col + sgemm);
 *  - activations between nodes blocked by the convolution kernels' own
 *    channel block (nChw16c on AVX-512, nChw8c on AVX2;
 *    mx_dnnl_channel_block) where the channel count allows
 *    (cnn_cpu_assign_layouts, cnn_cpu_layout.c),
 *    so the convolutions read and write them without reorders: on resnet20
 *    that took the convolutions from 85 to 60 ms a step (AVX-512);
 *    The rest stay NCHW and the plans reorder at the boundary (NCHW inside
 *    instead, oneDNN's gemm convolution, was 2x slower on lenet5);
 *  - linear layers: oneDNN (through OpenBLAS instead lenet5 trained 20-35%
 *    slower: its pthreads and the OpenMP team compete);
 *  - max pooling on NCHW: the layer's own threaded loop (layers/pool.c;
 *    oneDNN's NCHW pooling is its slow reference kernel);
 *  - batch norm (ReLU fused), ReLU, residual add (ReLU fused), gradient sums,
 *    global average pooling and dropout on blocked tensors: this file's OpenMP + SIMD
 *    kernels; oneDNN 2.6's batch norm on NCHW was 4x slower forward and 1.7x
 *    backward than them;
 *  - global average pooling and dropout on NCHW: the reference loops;
 *  - 3x3 stride-1 convolutions: mixreg's own Winograd kernels where they
 *    take the tensors' block, else oneDNN's Winograd ones from 64 channels
 *    (cnn_cpu_choice.c);
 *  - inference (cnn_predict): a second kind of plan set where a convolution
 *    absorbs the batch norm, residual add and ReLU after it (cnn_cpu_choice.c);
 *    in networks no wider than 64 channels its 3x3 stride-1 convolutions
 *    run mixreg's own Winograd kernel (winograd_inference_suits). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_cpu.h"

static void free_set(cnn_graph *g, cnn_plan_set *s)
{
    if (s->node) {
        for (size_t k = 0; k < g->num_nodes; k++) {
            cnn_node_plan *p = &s->node[k];
            mx_dnnl_conv2d_plan_free(p->conv);
            mx_dnnl_linear_plan_free(p->linear);
        }
        free(s->node);
    }
    memset(s, 0, sizeof *s);
}

/* The largest channel count a batch norm sees (for bn_partial). */
static size_t bn_channels(const cnn_graph *g)
{
    size_t most = 0;
    for (size_t k = 0; k < g->num_nodes; k++)
        if (g->nodes[k].op == CNN_BN && g->tensors[g->nodes[k].in].c > most) most = g->tensors[g->nodes[k].in].c;
    return most;
}

/* Whether convolution k's oneDNN plans apply the ReLU after it: in
 * prediction the one ending its fused chain (cnn_cpu_plan_fusion), in training its
 * own (lenet5's second layer: one pass less over its output). */
int cnn_cpu_conv_plan_relu(const cnn_graph *g, size_t k, int inference)
{
    return inference ? cnn_cpu_node_of(g, k)->pred_relu : g->nodes[k].relu;
}

/* The convolution plans' name for a tensor's layout (cnn_tensor.blocked). */
static mx_dnnl_act_layout act_layout(size_t layout)
{
    return layout & CNN_NHWC ? MX_DNNL_ACT_NHWC : mx_dnnl_act_blocked(layout);
}

static mx_status make_node_plan(cnn_graph *g, size_t k, size_t n, int inference, cnn_node_plan *p)
{
    const cnn_node *nd = &g->nodes[k];
    const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
    mx_dnnl_context *dnnl = cnn_cpu_of(g)->dnnl;
    const cnn_tensor *in = &g->tensors[nd->in], *out = &g->tensors[inference ? cn->pred_out : nd->out];
    mx_status st = MX_OK;
    switch (nd->op) {
    case CNN_CONV: {
        mx_dnnl_conv2d_options opt = {.has_bias = nd->bias != CNN_NONE, .layout = MX_DNNL_LAYOUT_BLOCKED,
                                      .precision = g->model->spec.precision == MX_PRECISION_BF16 ? MX_DNNL_BF16
                                                                                                 : MX_DNNL_F32,
                                      .src_layout = act_layout(in->blocked),
                                      .dst_layout = act_layout(out->blocked)};
        opt.post_relu = cnn_cpu_conv_plan_relu(g, k, inference);
        if (inference) {
            opt.inference_only = 1;
            if (cnn_cpu_of(g)->pred_nhwc && out->blocked) {
                opt.src_layout = in->blocked ? MX_DNNL_ACT_NHWC_BF16 : MX_DNNL_ACT_NCHW;
                opt.dst_layout = MX_DNNL_ACT_NHWC_BF16;
                opt.weight_scales = cn->fold_bn >= 0; /* its batch norm folded by the weights' reorder */
            }
            if (cn->fold_bn >= 0) opt.has_bias = 1;
            opt.post_add = cn->fold_add >= 0;
        } else {
            opt.y_bf16 = cn->y_bf16;
            opt.dx_bf16 = cn->dx_bf16;
        }
        cnn_cpu_choose_conv_algorithm(g, nd, &opt);
        st = mx_dnnl_conv2d_plan_create(dnnl, &nd->conv, n, &opt, &p->conv);
        break;
    }
    case CNN_MAXPOOL:
        /* No plan: max pooling reads NCHW (cnn_cpu_assign_layouts), where oneDNN 2.x
         * has only its reference kernel; the layer's own threaded loop (the
         * exact reference semantics) is several times faster (pool.c). */
        break;
    case CNN_LINEAR:
        st = mx_dnnl_linear_plan_create(dnnl, n, in->size, out->size,
                                        (nd->bias != CNN_NONE ? MX_DNNL_LINEAR_BIAS : 0u) |
                                            (nd->relu ? MX_DNNL_LINEAR_RELU : 0u) |
                                            (inference ? MX_DNNL_LINEAR_INFERENCE : 0u),
                                        &p->linear);
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
        if (inference && (cnn_cpu_node_of(g, k)->fused || cnn_cpu_predicts_wino(g, k, n))) continue;
        mx_status st = make_node_plan(g, k, n, inference, &s->node[k]);
        if (st != MX_OK) {
            free_set(g, s);
            return mx_error_wrap(st, "oneDNN plans for batch %zu (layer %zu)", n, k);
        }
    }
    s->last_use = ++cnn_cpu_of(g)->plan_clock;
    return MX_OK;
}

mx_dnnl_conv2d_plan *cnn_cpu_node_inference_plan(cnn_graph *g, size_t k, size_t n)
{
    cnn_node_plan p = {0};
    return make_node_plan(g, k, n, 1, &p) == MX_OK ? p.conv : NULL;
}

mx_status cnn_cpu_prepare(cnn_graph *g)
{
    cnn_cpu_graph *cs = calloc(1, sizeof *cs);
    if (!cs) return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    g->state = cs;
    cs->bn_sums_ready = CNN_NONE;
    if (!(cs->node = calloc(g->num_nodes, sizeof *cs->node)))
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    for (size_t k = 0; k < g->num_nodes; k++) g->nodes[k].state = &cs->node[k];
    mx_status st = cnn_cpu_assign_layouts(g);
    if (st == MX_OK) st = cnn_cpu_plan_fusion(g);
    if (st == MX_OK) st = mx_dnnl_context_create(&cs->dnnl);
    if (st == MX_OK) st = mx_dnnl_context_reserve(cs->dnnl, cs->kernel_scratch_bytes);
    return st;
}

void cnn_cpu_reserve(cnn_graph *g, mx_arena *arena, size_t B, int commit)
{
    cnn_cpu_graph *cs = cnn_cpu_of(g);
    for (size_t k = 0; k < g->num_nodes; k++) {
        if (g->nodes[k].op != CNN_BN) continue;
        float *affine = mx_arena_alloc(arena, 3 * g->tensors[g->nodes[k].in].c * sizeof(float));
        if (commit) cnn_cpu_node_of(g, k)->affine = affine;
    }
    double *partial = mx_arena_alloc(arena, (2 * B + 3) * bn_channels(g) * sizeof(double));
    if (commit) cs->bn_partial = partial;
    /* The ReLU masks of the adds whose outputs the memory plan did not keep. */
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (g->predict_only || !cnn_cpu_add_keeps_mask_bits(g, k) || g->tensors[nd->out].shared < 0) {
            if (commit) cnn_cpu_node_of(g, k)->relu_bits = NULL;
            continue;
        }
        uint16_t *bits = mx_arena_alloc(arena, B * g->tensors[nd->out].size / 16 * sizeof(uint16_t));
        if (commit) cnn_cpu_node_of(g, k)->relu_bits = bits;
    }
}

size_t cnn_cpu_predict_samples(const cnn_graph *g, size_t B)
{
    return cnn_cpu_of(g)->pred_chunked && B > CNN_PREDICT_CHUNK ? CNN_PREDICT_CHUNK : B;
}

mx_status cnn_cpu_plan(cnn_graph *g)
{
    cnn_cpu_graph *cs = cnn_cpu_of(g);
    const size_t B = g->model->max_batch;
    /* Training: the max batch's set, made now so that a failure is reported
     * now. Prediction makes its sets at first use (cnn_cpu_plans), where one
     * that cannot be made (oneDNN refuses some fusions at some batch sizes)
     * runs unfused instead. */
    mx_status st = g->predict_only ? MX_OK : make_set(g, &cs->plans[0], B, 0);
    /* bf16: each convolution keeps its input in bfloat16 from the forward for
     * the backward weights (one reorder a step fewer; sized for the max
     * batch), unless its producer writes it so into an earlier reader's copy
     * or into the convolution's plan's room (cnn_cpu_bf16_copy_of; the
     * convolutions are met in order, so an earlier reader's is there). */
    const cnn_pass max_batch = {.m = g->model, .g = g, .n = B, .be = g->be, .set = &cs->plans[0]};
    for (size_t k = 0; st == MX_OK && !g->predict_only && k < g->num_nodes; k++) {
        const mx_dnnl_conv2d_plan *conv = cs->plans[0].node[k].conv;
        const size_t bytes = conv ? mx_dnnl_conv2d_kept_x_bytes(conv) : 0;
        if (bytes && !g->keep_conv_inputs && cnn_cpu_conv_bf16_input(&max_batch, k)) continue;
        if (bytes && !(cs->node[k].x_bf16 = aligned_alloc(64, (bytes + 63) / 64 * 64)))
            st = mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
        else if (!bytes && conv && cnn_cpu_conv_input_gone(g, k))
            st = mx_error_set(MX_ERR_ARG, "bf16 training: oneDNN's plan for layer %zu keeps no bfloat16 copy of its "
                                          "input, which the memory plan counts on", k);
    }
    const size_t logits = B * g->tensors[g->nodes[g->num_nodes - 1].out].size;
    if (st == MX_OK && cs->pred_chunked && !(cs->pred_logits = malloc(logits * sizeof(float))))
        st = mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    /* A prediction never runs inside a training step, so the weights it
     * folds may go where the backward keeps activation gradients: the
     * memory plan's prediction region (cnn_graph.pred_region_bytes). */
    const size_t cache = cs->pred_cache_floats;
    if (st == MX_OK && cache && g->pred_region) {
        cs->pred_cache = g->pred_region;
    } else if (st == MX_OK && cache) {
        if (!cs->pred_cache_own) cs->pred_cache_own = aligned_alloc(64, (cache * sizeof(float) + 63) / 64 * 64);
        if (!(cs->pred_cache = cs->pred_cache_own)) st = mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    /* Without pred_cache, the prediction folds each convolution's batch norm
     * into one buffer as it goes (preact18: 9 MiB): in a model planned for
     * training, that may be the output of such a convolution, kept for the
     * backward alone: the prediction writes the batch norm's output instead. */
    const size_t fold = cs->fold_floats;
    cs->fold = NULL;
    for (size_t k = 0; st == MX_OK && fold && !g->predict_only && !cs->fold && k < g->num_nodes; k++) {
        const int t = g->nodes[k].out;
        if (g->nodes[k].op == CNN_CONV && cnn_cpu_node_of(g, k)->fold_bn >= 0 && g->tensors[t].shared < 0 &&
            B * g->tensors[t].size * cnn_tensor_elem_bytes(g, t) >= fold * sizeof(float))
            cs->fold = g->tensors[t].data;
    }
    if (st == MX_OK && fold && !cs->fold) {
        if (!cs->fold_own) cs->fold_own = malloc(fold * sizeof(float));
        if (!(cs->fold = cs->fold_own)) st = mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    /* (cnn_cpu_unplan, always run before, dropped the last plan's entries) */
    if (st == MX_OK && cs->pred_cache) cnn_cpu_place_pred_cache(g, cs->pred_cache);
    else if (st == MX_OK && !g->predict_only) cnn_cpu_place_pred_entries(g, B);
    return st;
}

void cnn_cpu_unplan(cnn_graph *g)
{
    cnn_cpu_graph *cs = cnn_cpu_of(g);
    if (!cs) return;
    for (size_t k = 0; cs->node && k < g->num_nodes; k++) {
        free(cs->node[k].x_bf16);
        cs->node[k].x_bf16 = NULL;
        mx_dnnl_conv2d_plan_free(cs->node[k].pool_chunk);
        cs->node[k].pool_chunk = NULL;
        cs->node[k].pool_chunk_failed = 0;
    }
    for (size_t i = 0; i < CNN_PLAN_SETS; i++) free_set(g, &cs->plans[i]);
    free(cs->pred_logits);
    cs->pred_logits = NULL;
    cs->pred_cache = cs->fold = NULL; /* maybe in the arena, which goes with the plan */
    if (cs->node) cnn_cpu_drop_pred_entries(g);
}

void cnn_cpu_release(cnn_graph *g)
{
    cnn_cpu_graph *cs = cnn_cpu_of(g);
    if (!cs) return;
    cnn_cpu_unplan(g);
    mx_dnnl_context_free(cs->dnnl);
    free(cs->fold_own);
    free(cs->pred_cache_own);
    free(cs->node);
    for (size_t k = 0; k < g->num_nodes; k++) g->nodes[k].state = NULL;
    free(cs);
    g->state = NULL;
}

const cnn_plan_set *cnn_cpu_plans(cnn_graph *g, size_t n, int inference)
{
    cnn_cpu_graph *cs = cnn_cpu_of(g);
    if (!cs || !cs->dnnl) return NULL;
    cnn_plan_set *victim = NULL;
    for (size_t i = 0; i < CNN_PLAN_SETS; i++) {
        cnn_plan_set *s = &cs->plans[i];
        if (s->n == n && s->inference == inference) {
            s->last_use = ++cs->plan_clock;
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
    victim->last_use = ++cs->plan_clock;
    if (!cs->plan_warned) {
        fprintf(stderr, "mixreg: %s; running that batch size %s\n", mx_error_message(),
                inference ? "without the inference fusions" : "on the reference layers");
        cs->plan_warned = 1;
    }
    return NULL;
}
