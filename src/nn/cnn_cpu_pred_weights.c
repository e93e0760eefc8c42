/* The weights a prediction runs its fused convolutions on (cnn_cpu_predict.c):
 * the batch norm after each folded in, then for the Winograd kernels
 * transformed; where they are kept between calls, and when they may be
 * reused.
 *
 * Each such convolution may have an entry (cnn_cpu_node.pred_w, pred_u):
 * - networks that predict in chunks keep every entry in pred_cache, made
 *   for the first chunk and read by the others;
 * - a model planned for training keeps them in the buffers of the fused
 *   convolutions' own outputs, which only the training passes use (the
 *   prediction writes the batch norm's output instead);
 * - a convolution without one prepares its weights on each call, into the
 *   shared fold buffer and the kernel scratch.
 * An entry is made at most once per model state epoch (mx_model.state_epoch,
 * bumped by anything that may change the weights or the arena): each call
 * starts a new epoch unless the caller holds the weights
 * (mx_model_hold_weights), so a held evaluation prepares them once for all
 * its batches (resnet50 at 224x224, batch 32: 23 ms of a 1.1 s batch on
 * AVX2; BENCHMARKS.md). */
#include <math.h>
#include <stdlib.h>

#include "nn/cnn_cpu.h"
#include "nn/winograd.h"

/* cnn_cpu_node.pred_ready: the entry's weights folded (PRED_W) or, in their
 * place, in the layout of the oneDNN plan for batch pred_plan_n
 * (PRED_PLAN); the Winograd weights (PRED_U). */
enum { PRED_W = 1, PRED_U = 2, PRED_PLAN = 4 };

/* The batch norm after convolution k as PyTorch's fuse_conv_bn_eval folds
 * it: per output channel o a scale a = gamma / sqrt(running_var + eps) of
 * the weights, and the bias b' = beta + a (b - running_mean). */
typedef struct {
    const float *gamma, *beta, *mean, *var, *bias;
} bn_fold;

static bn_fold bn_fold_of(const mx_model *m, const cnn_graph *g, size_t k)
{
    const cnn_node *nd = &g->nodes[k], *bn = &g->nodes[cnn_cpu_node_of(g, k)->fold_bn];
    return (bn_fold){cnn_param(m, bn->weight), cnn_param(m, bn->bias), cnn_buffer(m, bn->buffer),
                     cnn_buffer(m, bn->buffer + 1), cnn_param(m, nd->bias)};
}

static inline double fold_scale(const bn_fold *f, size_t o)
{
    return (double)f->gamma[o] / sqrt((double)f->var[o] + MX_BN_EPS);
}

static inline float fold_bias(const bn_fold *f, size_t o, double a)
{
    return (float)(f->beta[o] + a * ((f->bias ? f->bias[o] : 0.0) - f->mean[o]));
}

/* Convolution k's weights and bias with the batch norm after it folded in:
 * w' = a w per output channel. */
static void fold_batch_norm(const mx_model *m, const cnn_graph *g, size_t k, float *w, float *b)
{
    const cnn_node *nd = &g->nodes[k];
    const size_t out = nd->conv.out_channels, per = m->tensors[nd->weight].numel / out;
    const float *wsrc = cnn_param(m, nd->weight);
    const bn_fold f = bn_fold_of(m, g, k);
    /* Threaded: a prediction folds every convolution's weights (resnet50: 25M) on each call. */
#pragma omp parallel for schedule(static) if (out * per >= 65536)
    for (size_t o = 0; o < out; o++) {
        const double a = fold_scale(&f, o);
        for (size_t i = 0; i < per; i++) w[o * per + i] = (float)(a * wsrc[o * per + i]);
        b[o] = fold_bias(&f, o, a);
    }
}

/* The pass over resnet50's 25M weights that took 21 ms of a 193 ms batch of
 * 32 is gone where the reorder applies the scales; each weight is then the
 * float32 product with the scale rounded to float32, where the fold
 * multiplies in double, so a bfloat16 weight may differ in its last bit. */
void cnn_cpu_fold_scales(const mx_model *m, const cnn_graph *g, size_t k, float *scales, float *b)
{
    const bn_fold f = bn_fold_of(m, g, k);
    for (size_t o = 0; o < g->nodes[k].conv.out_channels; o++) {
        const double a = fold_scale(&f, o);
        scales[o] = (float)a;
        b[o] = fold_bias(&f, o, a);
    }
}

/* Floats of convolution k's entry (0: it needs none), its Winograd weights
 * at *u_at of them: the folded weights and bias first when the batch norm is
 * folded, each part 64-byte aligned. */
static size_t entry_floats(const cnn_graph *g, size_t k, size_t *u_at)
{
    const cnn_node *nd = &g->nodes[k];
    const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
    *u_at = 0;
    if (nd->op != CNN_CONV || (cn->fold_bn < 0 && !cn->wino)) return 0;
    if (cn->fold_bn >= 0) *u_at = (g->model->tensors[nd->weight].numel + nd->conv.out_channels + 15) / 16 * 16;
    return *u_at + (cn->wino ? (mx_wino_weight_floats(&nd->conv) + 15) / 16 * 16 : 0);
}

size_t cnn_cpu_pred_cache_floats(const cnn_graph *g)
{
    size_t total = 0, u_at;
    for (size_t k = 0; k < g->num_nodes; k++) total += entry_floats(g, k, &u_at);
    return total;
}

static void set_entry(cnn_cpu_node *cn, float *at, size_t u_at)
{
    cn->pred_w = at;
    cn->pred_u = at + u_at;
    cn->pred_ready = 0;
}

void cnn_cpu_place_pred_cache(cnn_graph *g, float *cache)
{
    size_t at = 0, u_at;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const size_t floats = entry_floats(g, k, &u_at);
        if (floats) set_entry(cnn_cpu_node_of(g, k), cache + at, u_at);
        at += floats;
    }
}

/* A region of the arena no prediction touches, filled from `used` floats on. */
typedef struct {
    float *base;
    size_t floats, used;
} idle_region;

void cnn_cpu_place_pred_entries(cnn_graph *g, size_t B)
{
    const cnn_cpu_graph *cs = cnn_cpu_of(g);
    idle_region *regions = calloc(g->num_nodes, sizeof *regions);
    unsigned char *tried = calloc(g->num_nodes, 1);
    size_t count = 0, u_at;
    if (!regions || !tried) { /* no entries: every call prepares the weights */
        free(regions);
        free(tried);
        return;
    }
    for (size_t k = 0; k < g->num_nodes; k++) {
        const int t = g->nodes[k].out;
        if (g->nodes[k].op != CNN_CONV || cnn_cpu_node_of(g, k)->fold_bn < 0 || g->tensors[t].shared >= 0 ||
            g->tensors[t].data == cs->fold)
            continue;
        /* The output of a convolution that absorbs its batch norm: read by
         * that batch norm alone (cnn_cpu_plan_fusion), so by no prediction. */
        regions[count++] = (idle_region){g->tensors[t].data, B * g->tensors[t].size * cnn_tensor_elem_bytes(g, t) /
                                                                 sizeof(float), 0};
    }
    /* First fit, the largest entries first: at small batches the widest
     * layers' entries fit in no region, and the others still find room. */
    for (;;) {
        size_t best = CNN_NONE, best_floats = 0, best_u_at = 0;
        for (size_t k = 0; k < g->num_nodes; k++) {
            const size_t floats = entry_floats(g, k, &u_at);
            if (floats > best_floats && !tried[k]) best = k, best_floats = floats, best_u_at = u_at;
        }
        if (best == CNN_NONE) break;
        tried[best] = 1;
        for (size_t r = 0; r < count; r++) {
            if (regions[r].floats - regions[r].used < best_floats) continue;
            set_entry(cnn_cpu_node_of(g, best), regions[r].base + regions[r].used, best_u_at);
            regions[r].used += best_floats;
            break;
        }
    }
    free(regions);
    free(tried);
}

void cnn_cpu_drop_pred_entries(cnn_graph *g)
{
    for (size_t k = 0; k < g->num_nodes; k++) {
        cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        cn->pred_w = cn->pred_u = NULL;
        cn->pred_ready = 0;
    }
}

void cnn_cpu_pred_weights_begin(mx_model *m)
{
    if (!m->weights_held) m->state_epoch++;
}

int cnn_cpu_pred_weights_in_plan_layout(const mx_model *m, const cnn_graph *g, size_t k)
{
    const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
    return cn->pred_w && cn->pred_epoch == m->state_epoch && (cn->pred_ready & PRED_PLAN);
}

/* Whether the entry's weights can take plan's layout in their place: the
 * room of the folded ones, as oneDNN's blocked layouts of channels the
 * blocks divide need. */
static int plan_layout_fits(const mx_model *m, const cnn_node *nd, mx_dnnl_conv2d_plan *plan)
{
    const size_t bytes = plan ? mx_dnnl_conv2d_prepared_bytes(plan) : 0;
    return bytes && bytes <= m->tensors[nd->weight].numel * sizeof(float);
}

cnn_pred_weights cnn_cpu_pred_weights(const mx_model *m, const cnn_graph *g, size_t k, size_t n,
                                      mx_dnnl_conv2d_plan *plan)
{
    const cnn_cpu_graph *cs = cnn_cpu_of(g);
    const cnn_node *nd = &g->nodes[k];
    cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
    const size_t numel = m->tensors[nd->weight].numel;
    const int wino = cnn_cpu_predicts_wino(g, k, n);
    if (cn->pred_epoch != m->state_epoch) {
        cn->pred_epoch = m->state_epoch;
        cn->pred_ready = 0;
    }
    float *fw = cn->pred_w ? cn->pred_w : cs->fold, *fu = cn->pred_w ? cn->pred_u : cnn_cpu_wino_u(g);
    cnn_pred_weights r = {cnn_param(m, nd->weight), cnn_param(m, nd->bias), NULL, NULL};
    if (cn->fold_bn >= 0) {
        r.b = fw + numel;
        if (!wino && cn->pred_w && (cn->pred_ready & PRED_PLAN) && cn->pred_plan_n == n) {
            r.w = NULL, r.prepared = fw;
            return r;
        }
        if (!(cn->pred_w && (cn->pred_ready & PRED_W))) {
            fold_batch_norm(m, g, k, fw, fw + numel);
            cn->pred_ready = (cn->pred_ready & ~PRED_PLAN) | (cn->pred_w ? PRED_W : 0);
        }
        r.w = fw;
        /* Kept in the plan's layout, the forwards that follow skip its
         * reorder; a plan for another batch size folds them again. Only
         * where forwards follow (held weights, later chunks): for one
         * forward, the copy out of the reorder's region would be a pass
         * more. A failed reorder leaves them folded: the forward reorders
         * them. */
        if (!wino && cn->pred_w && (m->weights_held || cs->pred_chunked) && plan_layout_fits(m, nd, plan) &&
            mx_dnnl_conv2d_prepare_weights(plan, fw, fw) == MX_OK) {
            cn->pred_ready = (cn->pred_ready & ~PRED_W) | PRED_PLAN;
            cn->pred_plan_n = n;
            r.w = NULL, r.prepared = fw;
            return r;
        }
    }
    if (wino && cn->wino == CNN_WINO_GEMM && !cn->pred_w) return r; /* the kernel transforms r.w by blocks */
    if (wino) {
        if (!(cn->pred_w && (cn->pred_ready & PRED_U))) {
            if (cn->wino == CNN_WINO_GEMM) mx_wino_gemm_transform_weights(&nd->conv, r.w, 0, fu);
            else mx_wino_transform_weights(&nd->conv, r.w, fu);
        }
        r.u = fu;
        if (cn->pred_w) cn->pred_ready |= PRED_U;
    }
    return r;
}
