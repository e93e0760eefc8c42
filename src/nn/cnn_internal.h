/* The CNN engine behind mx_model: a small graph of reference layers
 * (include/mixreg/layers.h) built once per (spec, max_batch) by an
 * architecture (cnn_arch.c), then planned into one arena: every activation and
 * what backward keeps (batch-norm statistics, max-pool arg-max), a few
 * gradient slots shared by liveness, and the im2col workspace. Forward and
 * backward only walk the node list; they never allocate.
 *
 * Tensors are per-sample shapes [c, h, w] (NCHW for the batch); tensor 0 is
 * the network input (the caller's buffer). Every node writes one new tensor;
 * ReLU is a flag on the node that produced its input (applied in place, its
 * backward from the output), so no node needs its own ReLU. */
#ifndef MIXREG_NN_CNN_INTERNAL_H
#define MIXREG_NN_CNN_INTERNAL_H

#include "mixreg/arena.h"
#include "mixreg/layers.h"
#include "nn/model_internal.h"

#define CNN_NONE ((size_t)-1)

typedef enum { CNN_CONV, CNN_BN, CNN_ADD, CNN_MAXPOOL, CNN_GAP, CNN_LINEAR, CNN_DROPOUT } cnn_op;

typedef struct {
    cnn_op op;
    int relu;                    /* ReLU on the output, in place */
    int in, in2, out;            /* tensor ids; in2 only for ADD (else -1) */
    int acc_in, acc_in2;         /* backward adds into the input's gradient (a later consumer wrote it) */
    size_t weight, bias;         /* parameter indices (BN: gamma, beta), CNN_NONE if absent */
    size_t buffer;               /* BN: running_mean's buffer index (running_var +1, num_batches_tracked +2) */
    double init_bound;           /* conv / linear: PyTorch's default U(-b, b) bound, 1/sqrt(fan_in) */
    mx_conv2d_desc conv;
    mx_pool2d_desc pool;
    float *save_mean, *save_invstd;  /* BN, training mode */
    uint32_t *argmax;                /* max pool */
    float p;                         /* dropout probability */
    uint8_t *mask;                   /* dropout, training mode */
} cnn_node;

typedef struct {
    size_t c, h, w, size;        /* per-sample shape and element count */
    float *data;                 /* max_batch * size floats; NULL for the input */
    float *grad;                 /* its gradient slot during backward; NULL for the input */
    int slot;                    /* index of that slot, -1 before planning */
} cnn_tensor;

typedef struct {
    mx_model *model;
    cnn_node *nodes;
    size_t num_nodes, node_cap;
    cnn_tensor *tensors;
    size_t num_tensors, tensor_cap;
    mx_status status;            /* the first error while building */
    mx_arena arena;
    float *workspace;            /* im2col, the largest any convolution needs */
    size_t workspace_bytes;
    float **slots;               /* gradient slots, max_batch * largest tensor each */
    size_t num_slots;
    float *scratch;              /* one more, for a gradient that is added into another */
    size_t largest;              /* largest per-sample tensor size */
    const float *input;          /* the last forward's input */
    int fwd_training;            /* the mode the last forward ran in */
    size_t rng_buffer;           /* with dropout: the buffer "mixreg.rng.dropout" holding the
                                    generator's state (so checkpoints carry it), else CNN_NONE */
} cnn_graph;

/* ---- building (cnn_graph.c): each returns the new tensor's id, or -1 once
 * an error has been recorded in g->status (later calls then do nothing), so
 * an architecture is straight-line code checked once at the end. ---- */
int cnn_conv(cnn_graph *g, int in, const char *name, size_t out_channels, size_t kernel, size_t stride, size_t pad,
             int bias, int relu);
int cnn_bn(cnn_graph *g, int in, const char *name, int relu);
int cnn_add(cnn_graph *g, int a, int b, int relu);
int cnn_maxpool(cnn_graph *g, int in, size_t kernel, size_t stride, size_t pad);
int cnn_gap(cnn_graph *g, int in);
/* Reads its input flattened (c * h * w features). */
int cnn_linear(cnn_graph *g, int in, const char *name, size_t out, int relu);
/* Dropout with probability 0 < p < 1 in training mode (MX_STREAM_DROPOUT,
 * state in the buffer "mixreg.rng.dropout"), the identity in eval mode. */
int cnn_dropout(cnn_graph *g, int in, float p);
/* Records an error (the first one wins) and returns -1. */
int cnn_fail(cnn_graph *g, mx_status st);

/* After an architecture built the graph: allocates parameters and buffers,
 * assigns gradient slots and plans the arena. */
mx_status cnn_plan(cnn_graph *g);
void cnn_graph_free(cnn_graph *g);

/* ---- running (cnn_exec.c) ---- */
void cnn_init_params(mx_model *m, uint64_t seed);
/* Running statistics to their defaults, the dropout generator to the seed's stream. */
void cnn_reset_buffers(mx_model *m, uint64_t seed);
const float *cnn_forward(mx_model *m, const float *x, size_t n);
void cnn_backward(mx_model *m, const float *dlogits, size_t n, float *dx);

/* ---- architectures (cnn_arch.c) ---- */
mx_status cnn_build_arch(cnn_graph *g, const mx_model_spec *spec);

#endif
