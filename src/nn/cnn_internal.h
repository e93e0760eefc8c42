/* The CNN engine behind mx_model: a small graph of layers built once per
 * (spec, max_batch) by an architecture (cnn_arch.c), then planned into one
 * arena: every activation and what backward keeps (batch-norm statistics,
 * max-pool arg-max), the gradients, where activations the backward has read
 * were (packed by the times each is alive), and the im2col
 * workspace. Forward and backward only walk the node list; they never
 * allocate. The backend (mx_model_spec.backend) runs each node through its
 * table of kernels (cnn_backend.h): the reference layers (cnn_ref.c), the
 * cpu backend's oneDNN plans and threaded kernels (cnn_cpu*.c), or the cuda
 * backend's (src/backend/cuda/cnn_cuda.c).
 *
 * Tensors are per-sample shapes [c, h, w] (NCHW for the batch; on the cpu
 * backend some are nChw16c or nChw8c, see cnn_tensor.blocked); tensor 0 is the network
 * input (the caller's buffer). Every node writes one new tensor; ReLU is a
 * flag on the node that produced its input (applied in place, its backward
 * from the output, or fused into batch norm and add on the cpu backend), so
 * no node needs its own ReLU. */
#ifndef MIXREG_NN_CNN_INTERNAL_H
#define MIXREG_NN_CNN_INTERNAL_H

#include "mixreg/arena.h"
#include "mixreg/layers.h"
#include "mixreg/rng.h"
#include "nn/cnn_backend.h"
#include "nn/model_internal.h"

#define CNN_NONE ((size_t)-1)

typedef enum { CNN_CONV, CNN_BN, CNN_ADD, CNN_MAXPOOL, CNN_GAP, CNN_LINEAR, CNN_DROPOUT } cnn_op;
#define CNN_NUM_OPS 7
/* Time per layer type with MIXREG_PROFILE=1 in the environment: the ops, then
 * the ReLUs and the gradient additions of tensors read twice. */
enum { CNN_PROF_RELU = CNN_NUM_OPS, CNN_PROF_ACCUMULATE, CNN_PROF_KINDS };

typedef struct {
    cnn_op op;
    int relu;                    /* ReLU on the output, in place */
    int in, in2, out;            /* tensor ids; in2 only for ADD (else -1) */
    int acc_in, acc_in2;         /* backward adds into the input's gradient (a later consumer wrote it) */
    int scratch_slot;            /* with acc_in (not ADD): the gradient slot free during this node's
                                    backward that takes its input gradient before it is added (>= 0) */
    float *grad_scratch;         /* with scratch_slot: that buffer, in the arena (cnn_memory_plan.c) */
    size_t weight, bias;         /* parameter indices (BN: gamma, beta), CNN_NONE if absent */
    size_t buffer;               /* BN: running_mean's buffer index (running_var +1, num_batches_tracked +2) */
    double init_bound;           /* conv / linear: PyTorch's default U(-b, b) bound, 1/sqrt(fan_in) */
    mx_conv2d_desc conv;
    mx_pool2d_desc pool;
    float *save_mean, *save_invstd;  /* BN, training mode */
    int recompute_bn;                /* before this node's backward, recompute the output of batch norm node
                                        recompute_bn (-1 none; cnn_memory_plan.c plan_recompute, on backends that
                                        can: cnn_backend.recomputes_bn_output) */
    int recompute_in_dx;             /* ... into the buffer this node's backward then writes its input gradient
                                        to (cnn_backend.recompute_in_dx), not into that output's own */
    int recompute_conv;              /* before this node's backward (and its recompute_bn), recompute the output of
                                        convolution node recompute_conv from the network's input (-1 none;
                                        cnn_memory_plan.c plan_conv_recompute, cnn_backend.recomputes_conv_output) */
    uint32_t *argmax;                /* max pool */
    float p;                         /* dropout probability */
    uint8_t *mask;                   /* dropout, training mode */
    void *state;                     /* the backend's own per-node state (cpu: cnn_cpu_node), NULL none */
} cnn_node;

typedef struct {
    size_t c, h, w, size;        /* per-sample shape and element count */
    size_t blocked;              /* 0: NCHW; else the channel block B (8 or 16) of its nChw<B>c layout
                                    ([n, c / B, h, w, B]), or B | CNN_NHWC: [n, h, w, c], which the
                                    same kernels walk as rows of B channels (the cpu backend's choice,
                                    cnn_cpu_layout.c cnn_cpu_assign_layouts; cnn_block, cnn_index) */
    float *data;                 /* max_batch * size floats; NULL for the input */
    float *grad;                 /* its gradient during backward, in the arena; NULL for the input */
    int slot;                    /* its gradient slot by backward liveness (cnn_assign_slots), -1 none */
    int shared;                  /* its data is a buffer shared with other tensors alive at other
                                    times: no backward reads it (cnn_memory_plan.c plan_shared) */
    int bf16;                    /* held as bfloat16 by the backend's training passes (cpu:
                                    cnn_cpu_node.y_bf16): half the bytes, unless the graph is planned
                                    for prediction only (cnn_tensor_elem_bytes) */
} cnn_tensor;

typedef struct cnn_graph {
    mx_model *model;
    cnn_node *nodes;
    size_t num_nodes, node_cap;
    cnn_tensor *tensors;
    size_t num_tensors, tensor_cap;
    mx_status status;            /* the first error while building */
    int predict_only;            /* the arena is planned for cnn_predict alone (MX_MODEL_PREDICT) */
    mx_arena arena;
    float *workspace;            /* im2col, the largest any convolution needs */
    size_t workspace_bytes;
    size_t num_slots;            /* gradient slots (cnn_assign_slots) */
    size_t shared_over_grads;    /* shared activation buffers in memory a gradient takes in the backward */
    int backward_reuses;         /* gradients take memory of activations the backward has read: one
                                    backward per forward (cnn_memory_plan.c note_sharing) */
    size_t pred_region_bytes;    /* the backend's: bytes a prediction on a model planned for training keeps
                                    across calls, in memory no training step needs then (0: none) */
    float *pred_region;          /* those bytes in the arena (training plans only, else NULL) */
    int shared_own_memory;       /* plan every shared buffer in memory of its own (tests compare the two) */
    int no_packing;              /* every buffer of the arena in memory of its own (tests compare the two) */
    int no_adds_in_place;        /* no residual add writes over its input (tests compare the two) */
    int keep_conv_inputs;        /* bf16 on the cpu backend: every convolution keeps a copy of its input of its
                                    own, none written again for the backward (tests compare the two) */
    int no_recompute_in_dx;      /* every recomputed batch-norm output into its own buffer (tests compare the two) */
    int no_recompute_conv;       /* the first convolution's output kept for the backward (tests compare the two) */

    size_t largest;              /* largest per-sample tensor size */
    const float *input;          /* the last forward's input */
    int fwd_training;            /* the mode the last forward ran in */
    int fwd_inference;           /* the last forward was cnn_predict's: no backward */
    size_t rng_buffer;           /* with dropout: the buffer "mixreg.rng.dropout" holding the
                                    generator's state (so checkpoints carry it), else CNN_NONE */
    mx_backend backend;
    const cnn_backend *be;       /* its table (cnn_backend_of) */
    void *state;                 /* the backend's own state (cpu: cnn_cpu_graph), NULL none */
    cnn_pass fwd_pass;           /* what the last forward ran on (be NULL: none yet); its backward runs there */
    void (*bn_reduce)(void *ctx, double *sums, size_t count);  /* sync batch norm (cnn_cpu.h cnn_bn_sync), or NULL */
    void *bn_reduce_ctx;
    double *bn_sync_sums;        /* with bn_reduce: 2 x the largest channel count + 1 doubles (malloc) */
    double *bn_sync_counts;      /* with bn_reduce: each node's global value count (num_nodes, malloc) */
    int profile;                 /* MIXREG_PROFILE: time every node, print a table when freed */
    double prof_s[CNN_PROF_KINDS][2];  /* seconds, forward / backward */
    size_t prof_calls[2];        /* forwards, backwards */
    /* mx_model_backward_sgd: each node's parameter gradients go to layer_grads (node_grads_at: the
     * parameter offset of its first float; NULL: to the model's gradient array), then its step. */
    float *layer_grads;          /* layer_grads_floats, malloc'd by cnn_plan (NULL when 0) */
    size_t layer_grads_floats;   /* the largest node's parameters; 0: some node's are not one range
                                    (cnn_plan), and the step goes over the whole array after the backward */
    const float *node_grads;     /* layer_grads while a node's backward writes there, else NULL */
    size_t node_grads_at;
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

/* After an architecture built the graph: allocates parameters and buffers
 * and assigns gradient slots; the arena is planned by mx_model_plan. */
mx_status cnn_plan(cnn_graph *g);
/* The memory plan (cnn_memory_plan.c): gradient slots, assigned once the
 * graph is built; the arena for a max batch (g->predict_only saying for
 * what), measured into *bytes and, with `commit`, allocated with the
 * tensors, their gradients and the nodes' saved state pointed into it. */
mx_status cnn_assign_slots(cnn_graph *g);
mx_status cnn_plan_arena(cnn_graph *g, size_t max_batch, int commit, size_t *bytes);
void cnn_graph_free(cnn_graph *g);

/* ---- running (cnn_exec.c) ---- */
void cnn_init_params(mx_model *m, uint64_t seed);
/* Running statistics to their defaults, the dropout generator to the seed's stream. */
void cnn_reset_buffers(mx_model *m, uint64_t seed);
/* Training or eval logits (the model's mode), keeping what the backward reads. */
mx_status cnn_run_forward(mx_model *m, const float *x, size_t n, const float **logits);
/* Eval-mode logits through the backend's predict hook (its inference
 * fusions), nothing kept for a backward. */
mx_status cnn_run_predict(mx_model *m, const float *x, size_t n, const float **logits);
/* The SGD step a backward applies node by node (mx_model_backward_sgd). */
typedef struct {
    const mx_sgd_config *cfg;
    double lr;
    float *velocity;
} cnn_sgd_update;
/* The backward of the last forward, on the table that forward ran on; dx may
 * be NULL; with sgd, each node's parameters stepped after its backward. */
mx_status cnn_run_backward(mx_model *m, const float *dlogits, size_t n, float *dx, const cnn_sgd_update *sgd);
/* mx_model_ops' forms of the three (they return no status: a failure is
 * reported on stderr as an internal error and aborts). */
const float *cnn_forward(mx_model *m, const float *x, size_t n);
const float *cnn_predict(mx_model *m, const float *x, size_t n);
void cnn_backward(mx_model *m, const float *dlogits, size_t n, float *dx);
void cnn_backward_sgd(mx_model *m, const float *dlogits, size_t n, const mx_sgd_config *cfg, double lr,
                      float *velocity);
/* cnn_graph.layer_grads_floats for m's parameters (cnn_plan). */
size_t cnn_layer_grads_floats(const mx_model *m, const cnn_graph *g);
/* One node's forward (ReLU included) on pass p, timed into *t when
 * profiling: the predict hooks run the nodes they do not fuse through it. */
mx_status cnn_forward_node(const cnn_pass *p, size_t k, double *t);
/* The MIXREG_PROFILE table, on stderr. */
void cnn_profile_report(const cnn_graph *g);
/* With profiling: charges the time since *t to kind (dir 0 forward, 1 backward). */
double cnn_now_s(void);
void cnn_charge(cnn_graph *g, int kind, int dir, double *t);

/* The dropout generator's state, kept in the I64 buffer g->rng_buffer so
 * that checkpoints carry it: loaded before a training dropout's draws,
 * stored after. */
void cnn_rng_load(const mx_model *m, const cnn_graph *g, mx_rng *rng);
void cnn_rng_store(mx_model *m, const cnn_graph *g, const mx_rng *rng);

/* Where the kernels find their operands. */
static inline float *cnn_param(const mx_model *m, size_t i)
{
    return i == CNN_NONE ? NULL : m->params + m->tensors[i].offset;
}
static inline float *cnn_grad(const mx_model *m, size_t i)
{
    const struct cnn_graph *g = m->impl;
    if (i == CNN_NONE) return NULL;
    return g->node_grads ? g->layer_grads + (m->tensors[i].offset - g->node_grads_at) : m->grads + m->tensors[i].offset;
}
static inline float *cnn_buffer(const mx_model *m, size_t i) { return m->buffers[i].data; }
/* The bytes an element of tensor t's buffer takes. */
static inline size_t cnn_tensor_elem_bytes(const cnn_graph *g, int t)
{
    return g->tensors[t].bf16 && !g->predict_only ? sizeof(uint16_t) : sizeof(float);
}
/* Tensor t's values: tensor 0 is the forward's input. */
static inline const float *cnn_tensor_data(const cnn_graph *g, int t) { return t ? g->tensors[t].data : g->input; }
/* Where tensor t's gradient lives: its buffer, or the caller's dx (maybe NULL) for the input. */
static inline float *cnn_grad_of(const cnn_graph *g, int t, float *dx) { return t ? g->tensors[t].grad : dx; }
/* cnn_tensor.blocked's flag for a channels-last ([n, h, w, c]) tensor; the
 * low bits keep the block B its kernels take the channels by. */
#define CNN_NHWC ((size_t)0x100)
/* Not layouts but what a batch-norm kernel's `layout` argument may carry
 * beside one (the cpu backend's bfloat16 data flow, cnn_cpu_flow.c): its
 * input x, or its dy, is held as bfloat16 in that layout (block 16 alone),
 * each element at the index a float would have. */
#define CNN_X_BF16 ((size_t)0x200)
#define CNN_DY_BF16 ((size_t)0x400)
/* A layout's channel block B (0 for NCHW). */
static inline size_t cnn_block(size_t layout) { return layout & (CNN_NHWC - 1); }
/* Where a blocked layout's (sample s, channel block cb) starts, and how many
 * floats apart its pixels' rows of B channels are: B in nChw<B>c, the
 * channel count in NHWC. */
static inline size_t cnn_block_at(size_t layout, size_t channels, size_t hw, size_t s, size_t cb)
{
    const size_t B = cnn_block(layout);
    return layout & CNN_NHWC ? s * hw * channels + cb * B : (s * (channels / B) + cb) * hw * B;
}
static inline size_t cnn_row_stride(size_t layout, size_t channels)
{
    return layout & CNN_NHWC ? channels : cnn_block(layout);
}
/* Index of element (s, c, p) of a tensor of `channels` x hw per sample in
 * `layout`: NCHW (0), nChw<B>c or NHWC (cnn_tensor.blocked). */
static inline size_t cnn_index(size_t layout, size_t channels, size_t hw, size_t s, size_t c, size_t p)
{
    if (!layout) return (s * channels + c) * hw + p;
    const size_t B = cnn_block(layout);
    return cnn_block_at(layout, channels, hw, s, c / B) + p * cnn_row_stride(layout, channels) + c % B;
}

/* ---- architectures (cnn_arch.c) ---- */
mx_status cnn_build_arch(cnn_graph *g, const mx_model_spec *spec);

#endif
