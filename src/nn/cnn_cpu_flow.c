/* The cpu backend's bfloat16 data flow, and the passes it saves: which node
 * hands which operand on in bfloat16, which pass a later one may skip, and
 * what the memory plan need not keep (cnn_cpu_exec.c runs the nodes,
 * cnn_cpu_plan.c makes the plans these read).
 *
 * With --precision bf16 the conversions to bfloat16 are made once and handed
 * on instead of each plan reordering its own float32 operands (each change
 * measured and giving the same bits as the plans' own reorders):
 *  - a convolution keeps its input in bfloat16 from the forward for its
 *    backward weights (mx_dnnl_conv2d_forward_keep_x);
 *  - a batch norm whose one reader is such a convolution writes its output
 *    only in bfloat16, straight into that convolution's kept input; residual
 *    adds (and batch norms with other readers) write a bfloat16 copy beside
 *    their float32 output (cnn_cpu_bf16_copy_of);
 *  - those batch-norm outputs are then not recomputed for the backward
 *    (cnn_cpu_bn_output_unneeded);
 *  - a batch norm's backward writes its input gradient in bfloat16 for the
 *    convolution before it (cnn_cpu_conv_takes_bf16_dy);
 *  - between a convolution and its batch norm the activations stay in
 *    bfloat16, as autocast keeps them: the convolution's output forward, the
 *    batch norm's input gradient backward (cnn_cpu_node.y_bf16, dx_bf16);
 *  - the memory plan does not keep the inputs convolutions hold bfloat16
 *    copies of, nor the outputs of adds whose ReLU masks are kept as bits
 *    (cnn_cpu_conv_keeps_input, cnn_cpu_keeps_relu_mask);
 *  - a second convolution reading a tensor reads the first one's copy, and
 *    a convolution right after a batch norm's ReLU keeps none: it reads
 *    that output from its plan's room, written there again before its
 *    backward (cnn_cpu_conv_input_restaged).
 * And on any precision a batch norm without a ReLU writes the residual add
 * after it (cnn_cpu_bn_add_fused). */
#include <stdlib.h>

#include "nn/cnn_cpu.h"

/* Where node k (a batch norm or residual add with a fused ReLU, nChw16c, in
 * a training or eval forward on plans) writes its output in bfloat16 for the
 * convolutions reading it, or NULL: the kept input (x_bf16) of its first
 * reader among convolutions whose plans take x so
 * (mx_dnnl_conv2d_takes_bf16_x), or that reader's plan's room where it is
 * restaged (cnn_cpu_conv_input_restaged); those convolutions read it there,
 * forward and backward, without reordering. *f32 says whether the float32 output is
 * still written: always for an add (its backward masks by its output, or
 * by the bits of cnn_cpu_keeps_relu_mask), and
 * for a batch norm unless its one reader is such a convolution (the backward
 * then takes its ReLU's mask from its input, see cnn_cpu_bn_output_unneeded). */
void *cnn_cpu_bf16_copy_of(const cnn_pass *p, size_t k, int *f32)
{
    const cnn_graph *g = p->g;
    const cnn_plan_set *plans = p->inference ? NULL : cnn_cpu_pass_plans(p);
    const cnn_node *pr = &g->nodes[k];
    *f32 = 1;
    if (!plans || (pr->op != CNN_BN && pr->op != CNN_ADD) || !pr->relu || !g->tensors[pr->out].blocked ||
        (pr->op == CNN_BN && !cnn_cpu_node_of(g, k)->affine))
        return NULL;
    void *to = NULL;
    size_t readers = 0;
    for (size_t j = 0; j < g->num_nodes; j++) {
        const cnn_node *nd = &g->nodes[j];
        if (nd->in != pr->out && nd->in2 != pr->out) continue;
        readers++;
        const mx_dnnl_conv2d_plan *conv = nd->op == CNN_CONV ? plans->node[j].conv : NULL;
        if (to || !conv || !mx_dnnl_conv2d_takes_bf16_x(conv)) continue;
        to = cnn_cpu_conv_input_restaged(g, j) ? mx_dnnl_conv2d_x_room(conv) : cnn_cpu_node_of(g, j)->x_bf16;
    }
    if (to && pr->op == CNN_BN && readers == 1) *f32 = 0;
    return to;
}

/* The bfloat16 copy of convolution node k's input its producer wrote
 * (cnn_cpu_bf16_copy_of), when k's plan takes it; else NULL. */
const void *cnn_cpu_conv_bf16_input(const cnn_pass *p, size_t k)
{
    const cnn_graph *g = p->g;
    const cnn_plan_set *plans = p->inference ? NULL : cnn_cpu_pass_plans(p);
    if (!plans || !plans->node[k].conv || !mx_dnnl_conv2d_takes_bf16_x(plans->node[k].conv)) return NULL;
    for (size_t j = 0; j < k; j++)
        if (g->nodes[j].out == g->nodes[k].in) {
            int f32;
            return cnn_cpu_bf16_copy_of(p, j, &f32);
        }
    return NULL;
}

/* Convolution node k's input as its plan keeps it in bfloat16 for the
 * backward weights: its producer's copy (restaged into the plan's room for
 * the backward, cnn_cpu_conv_input_restaged), else its own reorder's; NULL
 * when its plan keeps none. */
const void *cnn_cpu_conv_kept_input(const cnn_pass *p, size_t k)
{
    const cnn_node_plan *pl = cnn_cpu_pass_plan(p, k);
    if (!pl->conv || !mx_dnnl_conv2d_kept_x_bytes(pl->conv)) return NULL;
    const void *given = cnn_cpu_conv_bf16_input(p, k);
    return given ? given : cnn_cpu_node_of(p->g, k)->x_bf16;
}

/* Batch norm node k - 1's output holds convolution node k's input: a
 * batch norm with a ReLU on a tensor blocked by 16, whose other readers are
 * residual adds (their backward reads no values), in a bfloat16 model where
 * k keeps its input (cnn_cpu_conv_keeps_input). The forward writes that
 * output in bfloat16 straight into k's plan's room (mx_dnnl_conv2d_x_room),
 * and k's backward writes it there again from the batch norm's input, kept
 * for its own backward, and the forward's constants: the same operations,
 * so the same bits (cnn_cpu_exec.c conv_backward). No copy is kept across
 * the step: resnet20-bf16 at batch 128 holds 21 MB fewer, one of each of
 * its blocks' two convolution inputs. */
int cnn_cpu_conv_input_restaged(const cnn_graph *g, size_t k)
{
    if (k == 0 || g->keep_conv_inputs || g->nodes[k].op != CNN_CONV || !cnn_cpu_conv_keeps_input(g, k)) return 0;
    const cnn_node *bn = &g->nodes[k - 1];
    if (bn->op != CNN_BN || !bn->relu || g->nodes[k].in != bn->out || cnn_block(g->tensors[bn->in].blocked) != 16 ||
        cnn_block(g->tensors[bn->out].blocked) != 16)
        return 0;
    for (size_t j = 0; j < g->num_nodes; j++)
        if (j != k && (g->nodes[j].in == bn->out || g->nodes[j].in2 == bn->out) && g->nodes[j].op != CNN_ADD) return 0;
    return 1;
}

/* Whether convolution node k takes its dy as bfloat16 from the batch norm
 * after it: a bfloat16 plan that reads dy so (mx_dnnl_conv2d_takes_bf16_dy),
 * no ReLU of its own, its output (nChw16c) read by that batch norm alone.
 * The batch norm's backward then writes its input gradient rounded to
 * bfloat16, as the plan's reorder would have, and the reorder's pass is
 * saved. */
int cnn_cpu_conv_takes_bf16_dy(const cnn_pass *p, size_t k)
{
    const cnn_graph *g = p->g;
    const cnn_plan_set *plans = cnn_cpu_pass_plans(p);
    if (k + 1 >= g->num_nodes) return 0;
    const cnn_node *cv = &g->nodes[k], *bn = &g->nodes[k + 1];
    if (cv->op != CNN_CONV || bn->op != CNN_BN || bn->in != cv->out || cv->relu || bn->acc_in ||
        !g->tensors[cv->out].blocked || !plans->node[k].conv || !mx_dnnl_conv2d_takes_bf16_dy(plans->node[k].conv))
        return 0;
    for (size_t j = 0; j < g->num_nodes; j++)
        if (j != k + 1 && (g->nodes[j].in == cv->out || g->nodes[j].in2 == cv->out)) return 0;
    return 1;
}

/* Whether the backward can do without batch norm node b's output (its ReLU
 * applied): on a blocked layout, when every reader is a convolution that
 * keeps its input from the forward in bfloat16 (cnn_cpu_conv_kept_input),
 * or a residual add (whose backward reads neither input). The batch norm's
 * own backward then takes its ReLU's mask from its input and the forward's
 * constants (bit for bit the same), and no pass recomputes the output. */
int cnn_cpu_bn_output_unneeded(const cnn_pass *p, size_t b)
{
    const cnn_graph *g = p->g;
    const cnn_node *bn = &g->nodes[b];
    if (bn->op != CNN_BN || !bn->relu || !cnn_cpu_node_of(g, b)->affine || !g->tensors[bn->in].blocked) return 0;
    for (size_t j = 0; j < g->num_nodes; j++) {
        const cnn_node *nd = &g->nodes[j];
        if ((nd->in != bn->out && nd->in2 != bn->out) || nd->op == CNN_ADD) continue;
        if (nd->op != CNN_CONV || !cnn_cpu_conv_kept_input(p, j)) return 0;
    }
    return 1;
}

/* The plan-time side of cnn_cpu_bn_output_unneeded, for the memory plan
 * (cnn_cpu_keeps_relu_mask): batch norm node b with a ReLU on a tensor
 * blocked by 16 whose readers are convolutions keeping their input in
 * bfloat16 (cnn_cpu_conv_keeps_input) or residual adds. Its output is then
 * neither kept for the backward nor recomputed: its buffer may lie where
 * other buffers or gradients do at other times (cnn_memory_plan.c build_layout).
 * cnn_cpu_plan checks that the plans keep those copies; a batch size whose
 * plans do not fails with an error (conv_backward, bn_backward). */
static int bn_mask_from_input(const cnn_graph *g, size_t b)
{
    const cnn_node *bn = &g->nodes[b];
    if (bn->op != CNN_BN || !bn->relu || g->model->spec.precision != MX_PRECISION_BF16 ||
        cnn_block(g->tensors[bn->in].blocked) != 16)
        return 0;
    size_t convs = 0;
    for (size_t j = 0; j < g->num_nodes; j++) {
        const cnn_node *nd = &g->nodes[j];
        if ((nd->in != bn->out && nd->in2 != bn->out) || nd->op == CNN_ADD) continue;
        if (nd->op != CNN_CONV || !cnn_cpu_conv_keeps_input(g, j)) return 0;
        convs++;
    }
    return convs > 0;
}

/* Batch norm node k's layout argument: its input's layout, with the
 * bfloat16 operands of the training plans' passes (cnn_cpu_node.bf16_io). */
size_t cnn_cpu_bn_layout(const cnn_pass *p, size_t k)
{
    const size_t layout = p->g->tensors[p->g->nodes[k].in].blocked;
    return p->inference || !layout ? layout : layout | cnn_cpu_node_of(p->g, k)->bf16_io;
}

/* Whether batch norm node k writes the output of the residual add after it
 * (node k + 1) in its own pass, adding the add's other input before the
 * add's ReLU: a batch norm without a ReLU whose output that add alone reads
 * (its backward reads neither input), every tensor in one blocked layout.
 * Its own output is then never written, nor read back: resnet20 bf16's
 * forward batch norms and adds took 12.6 ms a step instead of 14.7. The
 * memory plan holds the add's output from the batch norm on
 * (cnn_cpu_first_writer). */
int cnn_cpu_bn_add_fused(const cnn_graph *g, size_t k)
{
    if (k + 1 >= g->num_nodes) return 0;
    const cnn_node *bn = &g->nodes[k], *add = &g->nodes[k + 1];
    if (bn->op != CNN_BN || bn->relu || add->op != CNN_ADD || add->in == add->in2 ||
        (add->in != bn->out && add->in2 != bn->out))
        return 0;
    const size_t layout = g->tensors[bn->in].blocked;
    const int other = add->in == bn->out ? add->in2 : add->in;
    if (!layout || g->tensors[bn->out].blocked != layout || g->tensors[other].blocked != layout ||
        g->tensors[add->out].blocked != layout)
        return 0;
    for (size_t j = 0; j < g->num_nodes; j++)
        if (j != k + 1 && (g->nodes[j].in == bn->out || g->nodes[j].in2 == bn->out)) return 0;
    return 1;
}

/* cnn_backend.recompute_in_dx: a float32 model's batch norm with a ReLU on
 * a blocked tensor (its backward then takes the ReLU's mask from its input
 * and the forward's constants, as bfloat16 models' do), whose output only
 * convolutions read in the backward (residual adds read no values there),
 * c among them. c's backward reads it before writing its input gradient
 * over it (conv_backward). */
int cnn_cpu_recompute_in_dx(const cnn_graph *g, size_t b, size_t c)
{
    const cnn_node *bn = &g->nodes[b];
    if (g->model->spec.precision == MX_PRECISION_BF16 || bn->op != CNN_BN || !bn->relu ||
        !g->tensors[bn->in].blocked || g->nodes[c].op != CNN_CONV || g->nodes[c].in != bn->out)
        return 0;
    for (size_t j = 0; j < g->num_nodes; j++)
        if (g->nodes[j].op != CNN_CONV && g->nodes[j].op != CNN_ADD &&
            (g->nodes[j].in == bn->out || g->nodes[j].in2 == bn->out))
            return 0;
    return 1;
}

/* Whether the backward recomputes batch norm node b's output into a
 * convolution's input-gradient buffer (cnn_node.recompute_in_dx). */
int cnn_cpu_bn_recomputed_in_dx(const cnn_graph *g, size_t b)
{
    for (size_t j = 0; j < g->num_nodes; j++)
        if (g->nodes[j].recompute_bn == (int)b && g->nodes[j].recompute_in_dx) return 1;
    return 0;
}

/* Whether tensor t is gone by the backward: the memory plan shared its
 * buffer, and no batch norm's or convolution's output is recomputed there
 * (cnn_memory_plan.c plan_recompute, plan_conv_recompute). */
int cnn_cpu_tensor_gone(const cnn_graph *g, int t)
{
    if (t <= 0 || g->tensors[t].shared < 0) return 0;
    for (size_t j = 0; j < g->num_nodes; j++) {
        const int b = g->nodes[j].recompute_bn, c = g->nodes[j].recompute_conv;
        if (b >= 0 && g->nodes[b].out == t && !g->nodes[j].recompute_in_dx) return 0;
        if (c >= 0 && g->nodes[c].out == t) return 0;
    }
    return 1;
}

/* cnn_backend.recomputes_conv_output: a float32 model's convolution of at
 * most 3 x 7 x 7 weights an output value (a first layer: resnet50's stem is
 * the largest, 1% of its step). Its forward goes on the same kernel with the
 * same threads and operands, so it writes the same bits. Not in bfloat16
 * models: their convolutions hand bfloat16 copies on (above), a data flow
 * the tests have not run a second forward through (their kernels need
 * AVX-512). */
int cnn_cpu_recomputes_conv_output(const cnn_graph *g, size_t k)
{
    const cnn_node *nd = &g->nodes[k];
    return g->model->spec.precision != MX_PRECISION_BF16 && nd->op == CNN_CONV &&
           nd->conv.in_channels * nd->conv.kernel_h * nd->conv.kernel_w <= 3 * 7 * 7;
}

/* Whether convolution node k's input is gone by its backward, the memory
 * plan counting on the convolution's bfloat16 copy (cnn_cpu_conv_keeps_input). */
int cnn_cpu_conv_input_gone(const cnn_graph *g, size_t k)
{
    return cnn_cpu_conv_keeps_input(g, k) && cnn_cpu_tensor_gone(g, g->nodes[k].in);
}

/* A training convolution oneDNN runs (no kernel of mixreg's own) in a
 * bfloat16 model, with nothing between it and tensor t but t's layout:
 * blocked by 16 (nChw16c or NHWC), the layouts bfloat16 models use. */
static int bf16_plan_on(const cnn_graph *g, size_t k, int t)
{
    const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
    return g->model->spec.precision == MX_PRECISION_BF16 && g->nodes[k].op == CNN_CONV && !cn->narrow &&
           !cn->narrow_blocked && cn->train_wino == CNN_WINO_NONE && t > 0 && cnn_block(g->tensors[t].blocked) == 16;
}

/* The one node reading tensor t, or -1 (none, or more than one). */
static long sole_reader(const cnn_graph *g, int t)
{
    long reader = -1;
    for (size_t j = 0; j < g->num_nodes; j++)
        if (g->nodes[j].in == t || g->nodes[j].in2 == t) {
            if (reader >= 0) return -1;
            reader = (long)j;
        }
    return reader;
}

/* cnn_cpu_node.y_bf16 and dx_bf16 (cnn_cpu.h). */
static int conv_y_bf16(const cnn_graph *g, size_t k)
{
    const cnn_node *nd = &g->nodes[k];
    if (!bf16_plan_on(g, k, nd->out) || nd->relu) return 0;
    /* The next node: then prediction folds that batch norm into the
     * convolution (cnn_cpu_plan_fusion) and never writes this output, whose buffer
     * holds bfloat16 alone (cnn_tensor.bf16). */
    return sole_reader(g, nd->out) == (long)k + 1 && g->nodes[k + 1].op == CNN_BN;
}

static int conv_dx_bf16(const cnn_graph *g, size_t k)
{
    const cnn_node *nd = &g->nodes[k];
    if (!bf16_plan_on(g, k, nd->in) || nd->acc_in || sole_reader(g, nd->in) != (long)k) return 0;
    for (size_t j = 0; j < k; j++)
        if (g->nodes[j].out == nd->in) return g->nodes[j].op == CNN_BN && cnn_block(g->tensors[g->nodes[j].in].blocked) == 16;
    return 0;
}

/* cnn_backend.conv_keeps_input: a bfloat16 training convolution on oneDNN
 * keeps its input in bfloat16 for its weights' gradient (cnn_cpu_node.x_bf16,
 * which cnn_cpu_plan checks its plans make, and cnn_cpu_exec.c's
 * conv_backward where a later batch size's plans do not). */
int cnn_cpu_conv_keeps_input(const cnn_graph *g, size_t k)
{
    return bf16_plan_on(g, k, g->nodes[k].in);
}

/* Whether residual add node k records its ReLU's mask as bits
 * (cnn_cpu_node.relu_bits) where its output is not kept otherwise: in a
 * bfloat16 model on a tensor blocked by 16, unless a max pooling reads that
 * output (its backward takes the mask from the tensor). The float32 output
 * then lives in a shared buffer, as long as the forward reads it: with its
 * convolutions keeping bfloat16 copies, resnet50's block outputs (705 MB at
 * 224x224, batch 32) are no longer held to the backward. */
int cnn_cpu_add_keeps_mask_bits(const cnn_graph *g, size_t k)
{
    const cnn_node *nd = &g->nodes[k];
    if (nd->op != CNN_ADD || !nd->relu || g->model->spec.precision != MX_PRECISION_BF16 ||
        cnn_block(g->tensors[nd->out].blocked) != 16)
        return 0;
    for (size_t j = 0; j < g->num_nodes; j++)
        if (g->nodes[j].op == CNN_MAXPOOL && g->nodes[j].in == nd->out) return 0;
    return 1;
}

/* cnn_backend.keeps_relu_mask: the adds' bits, and the batch norms that take
 * their masks from their inputs (bn_mask_from_input). */
int cnn_cpu_keeps_relu_mask(const cnn_graph *g, size_t k)
{
    return cnn_cpu_add_keeps_mask_bits(g, k) || bn_mask_from_input(g, k);
}

/* cnn_cpu_node.y_bf16, dx_bf16 and bf16_io, and cnn_tensor.bf16: once the
 * layouts and the kernels of each convolution are chosen (cnn_cpu_plan_fusion). */
void cnn_cpu_mark_bf16_flow(cnn_graph *g)
{
    for (size_t k = 0; k < g->num_nodes; k++) {
        cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        cn->y_bf16 = conv_y_bf16(g, k);
        cn->dx_bf16 = conv_dx_bf16(g, k);
        const cnn_node *nd = &g->nodes[k];
        if (nd->op == CNN_CONV) g->tensors[nd->out].bf16 = cn->y_bf16;
        for (size_t j = 0; j < g->num_nodes; j++) {
            if (g->nodes[j].op != CNN_BN) continue;
            if (cn->y_bf16 && g->nodes[j].in == nd->out) cnn_cpu_node_of(g, j)->bf16_io |= CNN_X_BF16;
            if (cn->dx_bf16 && g->nodes[j].out == nd->in) cnn_cpu_node_of(g, j)->bf16_io |= CNN_DY_BF16;
        }
    }
}
