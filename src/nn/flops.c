/* Floating-point operations of one sample through a model, counted from its
 * layers (mx_model_count_flops): the matrix products of the convolutions and
 * dense layers, 2 per multiply-add, pass by pass. Read-only over the model:
 * the CNN graph's nodes and tensor shapes (cnn_internal.h), the MLP's 2-D
 * weight tensors. */
#include "nn/cnn_internal.h"

/* One matrix-product layer: `macs` multiply-adds per sample in its forward;
 * its backward weights costs the same, and so does its backward data unless
 * it reads the network's input, whose gradient a training step never forms
 * (the first convolution's or dense layer's dX is NULL there). */
static void add_layer(mx_model_flops *f, double macs, int reads_input)
{
    f->forward += 2.0 * macs;
    f->train_step += 2.0 * macs * (reads_input ? 2.0 : 3.0);
}

static void count_cnn(const mx_model *m, mx_model_flops *f)
{
    const cnn_graph *g = m->impl;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        const cnn_tensor *out = &g->tensors[nd->out];
        /* Groups are always 1 (layers.h): every output pixel of every output
         * channel takes in_channels x kh x kw multiply-adds, the weight's size. */
        if (nd->op == CNN_CONV)
            add_layer(f, (double)m->tensors[nd->weight].numel * (double)(out->h * out->w), nd->in == 0);
        else if (nd->op == CNN_LINEAR)
            add_layer(f, (double)m->tensors[nd->weight].numel, nd->in == 0);
    }
}

/* The MLP's (and logreg's) tensors are weight [out, in], bias [out] per
 * layer, first layer first. */
static void count_mlp(const mx_model *m, mx_model_flops *f)
{
    int first = 1;
    for (size_t i = 0; i < m->num_tensors; i++) {
        if (m->tensors[i].ndim != 2) continue;
        add_layer(f, (double)m->tensors[i].numel, first);
        first = 0;
    }
}

mx_model_flops mx_model_count_flops(const mx_model *model)
{
    mx_model_flops f = {0, 0};
    if (mx_cnn_arch_known(model->spec.arch)) count_cnn(model, &f);
    else count_mlp(model, &f);
    return f;
}
