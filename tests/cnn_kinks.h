/* ReLU kinks between two forwards of one network (tests/test_cnn.c,
 * tests/test_cnn_backends.c): where float32 sums in other orders, or
 * Winograd's rounding, put an activation within rounding of zero on the
 * other side of a ReLU, the gradients there legitimately differ by the whole
 * gradient, so those tests count such flips and leave that step's gradients
 * uncompared. */
#ifndef MIXREG_TESTS_CNN_KINKS_H
#define MIXREG_TESTS_CNN_KINKS_H

#include <stdlib.h>

#include "nn/cnn_cpu.h"

/* How many ReLU outputs of the last forwards are zero in one model and not in
 * the other: a the reference backend's, b the cpu backend's (which may keep a
 * tensor blocked, and recomputes some batch-norm outputs and the first
 * convolution's). */
static inline size_t relu_flips(mx_model *a, mx_model *b, size_t n)
{
    const cnn_graph *ga = ((const struct mx_model *)a)->impl, *gb = ((const struct mx_model *)b)->impl;
    size_t flips = 0;
    /* The first convolution's output, which the cpu backend recomputes in
     * the backward (cnn_memory_plan.c plan_conv_recompute): made again here
     * from the input, as the backward does, for the batch norms reading it. */
    int conv_out = -1;
    float *conv_again = NULL;
    for (size_t k = 0; k < gb->num_nodes && conv_out < 0; k++) {
        const int c = gb->nodes[k].recompute_conv;
        if (c < 0) continue;
        cnn_pass p = gb->fwd_pass;
        int relu_done;
        conv_out = gb->nodes[c].out;
        conv_again = malloc(n * gb->tensors[conv_out].size * sizeof *conv_again);
        if (!conv_again || p.be->conv_forward(&p, (size_t)c, cnn_tensor_data(gb, gb->nodes[c].in), conv_again,
                                              &relu_done) != MX_OK) {
            free(conv_again);
            return 1;
        }
    }
    for (size_t k = 0; k < ga->num_nodes; k++) {
        const cnn_node *nd = &ga->nodes[k];
        if (!nd->relu) continue;
        const cnn_tensor *ta = &ga->tensors[nd->out], *tb = &gb->tensors[nd->out];
        const size_t hw = ta->h * ta->w;
        /* A batch norm's output the cpu backend recomputes in the backward
         * shares its buffer (cnn_memory_plan.c plan_recompute): made again here from
         * its input and the forward's constants, as the backward does. */
        const float *data_b = tb->data;
        float *again = NULL;
        if (tb->shared >= 0 && nd->op == CNN_BN) {
            again = malloc(n * tb->size * sizeof *again);
            if (!again) {
                free(conv_again);
                return 1;
            }
            const float *in = nd->in == conv_out ? conv_again : gb->tensors[nd->in].data;
            cnn_cpu_bn_apply(n, tb->c, hw, tb->blocked, in, cnn_cpu_node_of(gb, k)->affine, 1, again);
            data_b = again;
        }
        for (size_t s = 0; s < n; s++)
            for (size_t c = 0; c < ta->c; c++)
                for (size_t p = 0; p < hw; p++) {
                    float x = ta->data[cnn_index(ta->blocked, ta->c, hw, s, c, p)];
                    float y = data_b[cnn_index(tb->blocked, tb->c, hw, s, c, p)];
                    flips += (x > 0.0f) != (y > 0.0f);
                }
        free(again);
    }
    free(conv_again);
    return flips;
}

#endif
