/* The cpu backend's activation layouts: which tensors live blocked by the
 * convolution kernels' channel block, so that they read and write them
 * without reorders (cnn_cpu_plan.c says what that saved). */
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_cpu.h"

static int find_root(int *parent, int t)
{
    while (parent[t] != t) t = parent[t] = parent[parent[t]];
    return t;
}

/* The layout of the graph's blocked tensors (cnn_tensor.blocked): the
 * convolution kernels' own. Float32: nChw<B>c in their block
 * (mx_dnnl_channel_block: 16 on AVX-512, 8 on AVX2). bfloat16: blocks of 16
 * channels (the bfloat16 hand-offs of cnn_cpu_exec.c are written for 16
 * lanes), stored NHWC where oneDNN's bfloat16 kernels work in NHWC (AMX:
 * with nChw16c every convolution reordered its input, output and both
 * gradients, 31 ms of a 106 ms resnet20 step at batch 128), else nChw16c.
 * MIXREG_CHANNEL_BLOCK=8, 16 or nhwc (16 channels to a row) in the
 * environment sets it (bfloat16 models: 16 or nhwc): the tests run every
 * layout on any CPU, and a benchmark can measure what another costs. */
static mx_status choose_layout(const cnn_graph *g, size_t *layout)
{
    const int bf16 = g->model->spec.precision == MX_PRECISION_BF16;
    const char *env = getenv("MIXREG_CHANNEL_BLOCK");
    *layout = !bf16 ? mx_dnnl_channel_block() : mx_dnnl_bf16_prefers_nhwc() ? 16 | CNN_NHWC : 16;
    if (!env || !*env) return MX_OK;
    if (strcmp(env, "8") != 0 && strcmp(env, "16") != 0 && strcmp(env, "nhwc") != 0)
        return mx_error_set(MX_ERR_ARG, "MIXREG_CHANNEL_BLOCK is '%.20s'; it must be 8, 16 or nhwc", env);
    if (bf16 && !strcmp(env, "8"))
        return mx_error_set(MX_ERR_ARG, "MIXREG_CHANNEL_BLOCK=%s: bfloat16 models are blocked by 16 channels", env);
    *layout = !strcmp(env, "nhwc") ? 16 | CNN_NHWC : (size_t)atoi(env);
    return MX_OK;
}

/* Which tensors live blocked: those whose channels are a multiple of the
 * block, with more than one pixel (a [n, c, 1, 1] tensor is the same either
 * way), and whose every reader and writer handles the layout. Batch norm,
 * add and dropout keep their input's layout, so they tie tensors into
 * groups that are blocked together or not at all; convolutions read and
 * write either (their plans are told which); the linear layers' flattened
 * inputs stay NCHW, as does the network's input. Max pooling keeps its
 * input's layout too, except that a blocked input may give an NCHW output:
 * lenet5's second convolution then writes its blocked output directly,
 * without the reorders to and from NCHW around it (forward and backward). */
mx_status cnn_cpu_assign_layouts(cnn_graph *g)
{
    size_t layout;
    mx_status st = choose_layout(g, &layout);
    if (st != MX_OK) return st;
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
        ok[t] = t > 0 && x->c % cnn_block(layout) == 0 && x->h * x->w > 1;
    }
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->op == CNN_BN || nd->op == CNN_ADD || nd->op == CNN_DROPOUT) {
            parent[find_root(parent, nd->out)] = find_root(parent, nd->in);
            if (nd->in2 >= 0) parent[find_root(parent, nd->in2)] = find_root(parent, nd->in);
        } else if (nd->op == CNN_LINEAR) {
            ok[nd->in] = 0;
        }
    }
    for (size_t t = 0; t < T; t++) ok[find_root(parent, (int)t)] &= ok[t];
    /* A pooling of an NCHW input writes NCHW: its output's group joins its
     * input's, which may make another pooling's input NCHW, so until none
     * changes. */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t k = 0; k < g->num_nodes; k++) {
            const cnn_node *nd = &g->nodes[k];
            const int in = find_root(parent, nd->in), out = find_root(parent, nd->out);
            if (nd->op != CNN_MAXPOOL || ok[in] || !ok[out]) continue;
            ok[out] = 0;
            parent[out] = in;
            changed = 1;
        }
    }
    for (size_t t = 0; t < T; t++) g->tensors[t].blocked = ok[find_root(parent, (int)t)] ? layout : 0;
    free(parent), free(ok);
    return MX_OK;
}
