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
 * tensor blocked, and recomputes some batch-norm outputs). */
static inline size_t relu_flips(mx_model *a, mx_model *b, size_t n)
{
    const cnn_graph *ga = ((const struct mx_model *)a)->impl, *gb = ((const struct mx_model *)b)->impl;
    size_t flips = 0;
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
            if (!again) return 1;
            cnn_cpu_bn_apply(n, tb->c, hw, tb->blocked, gb->tensors[nd->in].data, cnn_cpu_node_of(gb, k)->affine, 1, again);
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
    return flips;
}

#endif
