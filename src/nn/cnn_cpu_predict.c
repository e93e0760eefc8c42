/* The cpu backend's predict hook (mx_model_predict): eval-mode logits with
 * the inference fusions chosen by cnn_cpu_choice.c cnn_cpu_plan_fusion. A convolution
 * absorbs the batch norm after it (folded into its weights and bias, as
 * PyTorch's fuse_conv_bn_eval), then the residual add after that and the
 * ReLU that ends the chain (oneDNN post-ops, or mixreg's Winograd kernel,
 * winograd.h, which applies them as each tile is stored); the absorbed nodes
 * are skipped, the others run as in the eval forward. */
#include <math.h>
#include <string.h>

#include "nn/cnn_cpu.h"
#include "nn/winograd.h"

/* Starts a prediction pass of n samples from x on the inference plans (*p,
 * the profile's clock in *t); 0 when those plans cannot be made, and the
 * caller runs the eval forward instead. */
static int begin_prediction(mx_model *m, cnn_graph *g, const float *x, size_t n, cnn_pass *p, double *t)
{
    const cnn_plan_set *plans = cnn_cpu_plans(g, n, 1);
    if (!plans) return 0;
    *p = (cnn_pass){m, g, n, &cnn_backend_cpu, plans, 1};
    g->input = x;
    g->fwd_training = 0;
    g->fwd_inference = 1;
    g->fwd_pass = *p;
    *t = g->profile ? cnn_now_s() : 0;
    g->prof_calls[0]++;
    return 1;
}

/* The next node k runs after convolution k0 (the absorbed ones skipped). */
static size_t next_run(const cnn_graph *g, size_t k0)
{
    size_t k = k0 + 1;
    while (k < g->num_nodes && cnn_cpu_node_of(g, k)->fused) k++;
    return k;
}

/* Whether convolution k's output goes to the max pooling kp alone, and is
 * too large to stay in cache between them (above 8 MiB for the batch, at
 * most 4 MiB a sample): resnet50's stem, 3.2 MB a sample at 224x224. Its
 * pooling then reads it from memory (resnet50, batch 32: 103 MB). */
static int pooled_in_chunks(const cnn_graph *g, size_t k, size_t kp, size_t n)
{
    const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
    if (kp >= g->num_nodes || g->nodes[kp].op != CNN_MAXPOOL || g->nodes[kp].in != cn->pred_out ||
        cn->fold_add >= 0 || n <= CNN_POOL_CHUNK || n % CNN_POOL_CHUNK)
        return 0;
    for (size_t j = kp + 1; j < g->num_nodes; j++)
        if (g->nodes[j].in == cn->pred_out || g->nodes[j].in2 == cn->pred_out ||
            cnn_cpu_node_of(g, j)->sum_in == cn->pred_out)
            return 0;
    const size_t bytes = g->tensors[cn->pred_out].size * sizeof(float);
    return n * bytes > ((size_t)8 << 20) && bytes <= ((size_t)4 << 20);
}

/* Convolution k and the max pooling kp after it, CNN_POOL_CHUNK samples at
 * a time: each chunk's output is still in cache when the pooling reads it.
 * resnet50 at batch 32 on 2 AVX2 cores, stem and pooling timed call by call
 * against the whole batch at once in one process: 2.6 ms less a batch in
 * chunks of 2 (of 44.9), 2.7 of 1, 1.1 of 4, 1.4 more of 8. */
static mx_status conv_pool_chunks(mx_model *m, cnn_graph *g, const cnn_pass *p, size_t k, size_t kp, double *t)
{
    const cnn_node *nd = &g->nodes[k];
    cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
    const size_t c = CNN_POOL_CHUNK;
    if (!cn->pool_chunk && !(cn->pool_chunk = cnn_cpu_node_inference_plan(g, k, c))) {
        cn->pool_chunk_failed = 1;
        return MX_ERR_UNSUPPORTED;
    }
    const cnn_pred_weights pw = cnn_cpu_pred_weights(m, g, k, c, cn->pool_chunk);
    const cnn_tensor *in = &g->tensors[nd->in], *out = &g->tensors[g->nodes[kp].out];
    const float *X = cnn_tensor_data(g, nd->in);
    float *Y = g->tensors[cn->pred_out].data, *P = g->tensors[g->nodes[kp].out].data;
    cnn_pass chunk = *p;
    chunk.n = c;
    mx_status st = MX_OK;
    for (size_t s = 0; st == MX_OK && s < p->n; s += c) {
        const float *Xs = X + s * in->size;
        st = pw.prepared ? mx_dnnl_conv2d_forward_prepared(cn->pool_chunk, c, Xs, pw.prepared, pw.b, NULL, Y)
                         : mx_dnnl_conv2d_forward_add(cn->pool_chunk, c, Xs, pw.w, pw.b, NULL, Y);
        cnn_charge(g, CNN_CONV, 0, t);
        if (st == MX_OK) st = g->be->maxpool_forward(&chunk, kp, Y, P + s * out->size);
        cnn_charge(g, CNN_MAXPOOL, 0, t);
    }
    return st;
}

/* The prediction of one chunk of at most CNN_PREDICT_CHUNK samples: the
 * logits, in the last tensor. Without inference plans for this size, the
 * eval forward. */
static mx_status predict_chunk(mx_model *m, cnn_graph *g, const float *x, size_t n, const float **logits)
{
    cnn_pass p;
    double t;
    if (!begin_prediction(m, g, x, n, &p, &t)) return cnn_run_forward(m, x, n, logits);
    const cnn_plan_set *plans = p.set;
    mx_status st = MX_OK;
    for (size_t k = 0; st == MX_OK && k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        if (cn->fused) continue;
        if (nd->op != CNN_CONV || (cn->fold_bn < 0 && !cn->wino)) {
            st = cnn_forward_node(&p, k, &t);
            continue;
        }
        const size_t kp = next_run(g, k);
        if (!cn->pool_chunk_failed && !cnn_cpu_predicts_wino(g, k, n) && pooled_in_chunks(g, k, kp, n)) {
            st = conv_pool_chunks(m, g, &p, k, kp, &t);
            if (st == MX_OK) {
                k = kp;
                continue;
            }
            if (st != MX_ERR_UNSUPPORTED) break;
            st = MX_OK; /* no plan for the chunks: the whole batch at once */
        }
        mx_dnnl_conv2d_plan *plan = plans->node[k].conv;
        const cnn_pred_weights pw = cnn_cpu_pred_weights(m, g, k, n, plan);
        float *Y = g->tensors[cn->pred_out].data;
        const float *X = cnn_tensor_data(g, nd->in), *addend = cn->fold_add >= 0 ? cnn_tensor_data(g, cn->sum_in) : NULL;
        if (cn->wino == CNN_WINO_GEMM && cnn_cpu_predicts_wino(g, k, n)) /* without an entry: w, by blocks */
            st = mx_wino_gemm_forward(&nd->conv, n, X, pw.u, pw.u ? NULL : pw.w, 0, pw.b, addend, cn->pred_relu, Y,
                                      cnn_cpu_wino_gemm(g));
        else if (pw.u) mx_wino_forward(&nd->conv, n, X, pw.u, pw.b, addend, cn->pred_relu, Y);
        else if (pw.prepared) st = mx_dnnl_conv2d_forward_prepared(plan, n, X, pw.prepared, pw.b, addend, Y);
        else st = mx_dnnl_conv2d_forward_add(plan, n, X, pw.w, pw.b, addend, Y);
        cnn_charge(g, CNN_CONV, 0, &t);
    }
    *logits = st == MX_OK ? g->tensors[g->nodes[g->num_nodes - 1].out].data : NULL;
    return st;
}

/* Batch norm node k's eval-mode constants into its affine region (mean,
 * scale, shift per channel; the training forward remakes them). */
static const float *eval_affine(const mx_model *m, const cnn_graph *g, size_t k)
{
    const cnn_node *bn = &g->nodes[k];
    float *affine = cnn_cpu_node_of(g, k)->affine;
    const size_t c = g->tensors[bn->in].c;
    const float *gamma = cnn_param(m, bn->weight), *beta = cnn_param(m, bn->bias);
    const float *mean = cnn_buffer(m, bn->buffer), *var = cnn_buffer(m, bn->buffer + 1);
    for (size_t i = 0; i < c; i++) {
        affine[i] = mean[i];
        affine[c + i] = (float)((gamma ? gamma[i] : 1.0) / sqrt((double)var[i] + MX_BN_EPS));
        affine[2 * c + i] = beta ? beta[i] : 0.0f;
    }
    return affine;
}

/* Node k of a bfloat16 prediction (pred_nhwc) that reads or writes a
 * blocked tensor, there in bfloat16 NHWC (cnn_cpu_nhwc.c). */
static mx_status nhwc_node(const cnn_pass *p, size_t k, const void *X, void *Y)
{
    const cnn_graph *g = p->g;
    const cnn_node *nd = &g->nodes[k];
    const cnn_tensor *in = &g->tensors[nd->in];
    const size_t n = p->n, hw = in->h * in->w;
    switch (nd->op) {
    case CNN_BN: {
        const float *a = eval_affine(p->m, g, k);
        cnn_cpu_nhwc_affine(n, in->c, hw, X, a, a + in->c, a + 2 * in->c, nd->relu, Y);
        return MX_OK;
    }
    case CNN_ADD:
        cnn_cpu_nhwc_add(n * in->size, X, (const void *)cnn_tensor_data(g, nd->in2), nd->relu, Y);
        return MX_OK;
    case CNN_GAP:
        cnn_cpu_nhwc_gap(n, in->c, hw, X, Y);
        return MX_OK;
    case CNN_MAXPOOL:
        cnn_cpu_nhwc_maxpool(n, &nd->pool, X, Y);
        return MX_OK;
    case CNN_DROPOUT: /* eval mode: the identity */
        if (X != Y) memmove(Y, X, n * in->size * sizeof(uint16_t));
        return MX_OK;
    case CNN_CONV:
    case CNN_LINEAR:
        break;
    }
    return mx_error_set(MX_ERR_ARG, "bfloat16 prediction: layer %zu has no NHWC kernel", k);
}

/* Whether bfloat16 prediction can keep the blocked tensors in bfloat16 NHWC
 * (cnn_cpu_graph.pred_nhwc): every node but the global pooling that reads
 * one writes one (the convolutions' plans read and write NHWC together, or
 * float32 NCHW in and NHWC out), and no node but a convolution, batch norm
 * or add has its own ReLU on one; and there is one. */
int cnn_cpu_nhwc_suits(const cnn_graph *g)
{
    if (g->model->spec.precision != MX_PRECISION_BF16) return 0;
    int any = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        const int in = g->tensors[nd->in].blocked != 0;
        const int out = g->tensors[nd->op == CNN_CONV ? cn->pred_out : nd->out].blocked != 0;
        if (cn->fused || (!in && !out)) continue;
        any = 1;
        if (in && !out && nd->op != CNN_GAP) return 0;
        if (nd->relu && nd->op != CNN_CONV && nd->op != CNN_BN && nd->op != CNN_ADD) return 0;
    }
    return any;
}

/* bfloat16 prediction with the blocked tensors in bfloat16 NHWC, in the
 * first half of their float32 buffers: oneDNN's AMX convolution kernels
 * read and write that layout, so no activation is reordered or widened
 * between layers (the eval forward reorders each convolution's input to
 * bfloat16 and its float32 output back, and with the add fused oneDNN 2.6
 * leaves AMX for a kernel 7x slower: BENCHMARKS.md). The network's input
 * and the tensors after the global pooling stay float32. */
static mx_status predict_nhwc(mx_model *m, cnn_graph *g, const float *x, size_t n, const float **logits)
{
    cnn_pass p;
    double t;
    if (!begin_prediction(m, g, x, n, &p, &t)) return cnn_run_forward(m, x, n, logits);
    const cnn_plan_set *plans = p.set;
    mx_status st = MX_OK;
    for (size_t k = 0; st == MX_OK && k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        if (cn->fused) continue;
        const int out_t = nd->op == CNN_CONV ? cn->pred_out : nd->out;
        const void *X = cnn_tensor_data(g, nd->in);
        void *Y = g->tensors[out_t].data;
        if (nd->op == CNN_CONV) {
            mx_dnnl_conv2d_plan *plan = plans->node[k].conv;
            const void *addend = cn->fold_add >= 0 ? cnn_tensor_data(g, cn->sum_in) : NULL;
            if (cn->fold_bn >= 0 && mx_dnnl_conv2d_scales_weights(plan)) {
                float *scales = cnn_cpu_of(g)->fold, *b = scales + nd->conv.out_channels;
                cnn_cpu_fold_scales(m, g, k, scales, b);
                st = mx_dnnl_conv2d_forward_nhwc_scaled(plan, n, X, cnn_param(m, nd->weight), scales, b, addend, Y);
            } else {
                const cnn_pred_weights pw = cnn_cpu_pred_weights(m, g, k, n, NULL);
                st = g->tensors[out_t].blocked ? mx_dnnl_conv2d_forward_nhwc(plan, n, X, pw.w, pw.b, addend, Y)
                                               : mx_dnnl_conv2d_forward_add(plan, n, X, pw.w, pw.b, addend, Y);
            }
            cnn_charge(g, CNN_CONV, 0, &t);
        } else if (!g->tensors[nd->in].blocked && !g->tensors[out_t].blocked) {
            st = cnn_forward_node(&p, k, &t);
        } else {
            st = nhwc_node(&p, k, X, Y);
            cnn_charge(g, (int)nd->op, 0, &t);
        }
    }
    *logits = st == MX_OK ? g->tensors[g->nodes[g->num_nodes - 1].out].data : NULL;
    return st;
}

/* On networks with Winograd layers (cnn_cpu_graph.pred_chunked) large batches
 * run in near-equal chunks of at most CNN_PREDICT_CHUNK samples (at most two
 * sizes, so two plan sets), each through the whole network while its
 * activations are still in cache: resnet20's 16-channel activations at
 * batch 128 are 6.4 MB, and the Winograd kernel at batch 16-32 ran 1.7x
 * faster per image than at 128, where it waited on memory. Networks of
 * wider layers keep the whole batch: chunks took preact18's eval from 740 to
 * 580 img/s on AVX-512 (oneDNN's kernels for 64-512 channels want the large
 * batch), and on AVX2, where its wide layers run the batch-wide GEMM
 * Winograd kernels, whole batches of 128 took it from 213 to 266 img/s (at
 * 32 samples its 512-channel 4x4 layers have too few tiles for them). 
 * The folded and transformed weights are then made once per call (in
 * pred_cache, by the first chunk), not once per chunk: they cost 0.33 ms a
 * chunk on resnet20; and once for many calls while the caller holds the
 * weights (cnn_cpu_pred_weights.c). */
mx_status cnn_cpu_predict(mx_model *m, const float *x, size_t n, const float **logits)
{
    cnn_graph *g = m->impl;
    const cnn_cpu_graph *cs = cnn_cpu_of(g);
    cnn_cpu_pred_weights_begin(m);
    if (cs->pred_nhwc) return predict_nhwc(m, g, x, n, logits);
    if (!cs->pred_chunked || n <= CNN_PREDICT_CHUNK) return predict_chunk(m, g, x, n, logits);
    const size_t chunks = (n + CNN_PREDICT_CHUNK - 1) / CNN_PREDICT_CHUNK;
    const size_t in = g->tensors[0].size, classes = g->tensors[g->nodes[g->num_nodes - 1].out].size;
    for (size_t c = 0, start = 0; c < chunks; c++) {
        const size_t len = n / chunks + (c < n % chunks);
        const float *part;
        mx_status st = predict_chunk(m, g, x + start * in, len, &part);
        if (st != MX_OK) return st;
        memcpy(cs->pred_logits + start * classes, part, len * classes * sizeof(float));
        start += len;
    }
    *logits = cs->pred_logits;
    return MX_OK;
}
