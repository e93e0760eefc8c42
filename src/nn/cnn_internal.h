/* The CNN engine behind mx_model: a small graph of layers built once per
 * (spec, max_batch) by an architecture (cnn_arch.c), then planned into one
 * arena: every activation and what backward keeps (batch-norm statistics,
 * max-pool arg-max), a few gradient slots shared by liveness, and the im2col
 * workspace. Forward and backward only walk the node list; they never
 * allocate. The backend (mx_model_spec.backend) runs each node on the
 * reference layers (include/mixreg/layers.h) or, for "cpu", on oneDNN plans
 * and threaded kernels (cnn_cpu.c), made when the graph is planned.
 *
 * Tensors are per-sample shapes [c, h, w] (NCHW for the batch; on the cpu
 * backend some are nChw16c, see cnn_tensor.blocked); tensor 0 is the network
 * input (the caller's buffer). Every node writes one new tensor; ReLU is a
 * flag on the node that produced its input (applied in place, its backward
 * from the output, or fused into batch norm and add on the cpu backend), so
 * no node needs its own ReLU. */
#ifndef MIXREG_NN_CNN_INTERNAL_H
#define MIXREG_NN_CNN_INTERNAL_H

#include "mixreg/arena.h"
#include "mixreg/layers.h"
#include "mixreg/layers_dnnl.h"
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
                                    backward that takes its input gradient before it is added */
    size_t weight, bias;         /* parameter indices (BN: gamma, beta), CNN_NONE if absent */
    size_t buffer;               /* BN: running_mean's buffer index (running_var +1, num_batches_tracked +2) */
    double init_bound;           /* conv / linear: PyTorch's default U(-b, b) bound, 1/sqrt(fan_in) */
    mx_conv2d_desc conv;
    mx_pool2d_desc pool;
    float *save_mean, *save_invstd;  /* BN, training mode */
    float *affine;                   /* BN on the cpu backend: the forward's per-channel float mean, scale
                                        and shift (3 x channels), to recompute its output exactly */
    int recompute_bn;                /* cpu backend: before this node's backward, recompute the output of
                                        batch norm node recompute_bn (-1 none; cnn_graph.c plan_shared) */
    uint32_t *argmax;                /* max pool */
    float p;                         /* dropout probability */
    uint8_t *mask;                   /* dropout, training mode */
    /* Inference on the cpu backend (cnn_predict; cnn_cpu.c plan_fusion): a
     * convolution absorbs the batch norm after it (folded into its weights
     * and bias), then the residual add after that (oneDNN's binary add
     * post-op with the add's other input) and the last one's ReLU (eltwise
     * post-op); the absorbed nodes are skipped. */
    int fold_bn, fold_add;           /* conv: the node indices absorbed, -1 none */
    int fused;                       /* BN / ADD: runs inside an earlier convolution */
    int pred_out;                    /* conv: the tensor the fused convolution writes */
    int sum_in;                      /* conv with fold_add: the add's other input */
    int pred_relu;                   /* conv: the ReLU that ends the fused chain */
    void *x_bf16;                    /* conv, bf16 cpu backend: its input as its plans read it (bfloat16), kept
                                        by the forward for the backward weights (mx_dnnl_conv2d_kept_x_bytes) */
    int wino;                        /* conv: cnn_predict runs it on mixreg's Winograd kernel (winograd.h) */
    size_t pred_cache_at;            /* conv with fold_bn or wino: its folded weights and bias, then its
                                        Winograd weights, at this float offset in pred_cache (CNN_NONE: none) */
    size_t pred_cache_wino_at;       /* with fold_bn and wino: the Winograd weights' offset from pred_cache_at */
} cnn_node;

typedef struct {
    size_t c, h, w, size;        /* per-sample shape and element count */
    int blocked;                 /* cpu backend: stored as oneDNN's nChw16c ([n, c / 16, h, w, 16]), not NCHW */
    float *data;                 /* max_batch * size floats; NULL for the input */
    float *grad;                 /* its gradient slot during backward; NULL for the input */
    int slot;                    /* index of that slot, -1 before planning */
    int shared;                  /* its data is a buffer shared with other tensors alive at other
                                    times: no backward reads it (cnn_graph.c plan_shared) */
} cnn_tensor;

/* The "cpu" backend's oneDNN plans of one node for one batch size (cnn_cpu.c);
 * without one a node runs on the cpu backend's own kernels where it has them
 * (batch norm, ReLU, add), else on the reference layers. */
typedef struct {
    mx_dnnl_conv2d_plan *conv;
    mx_dnnl_pool2d_plan *pool;      /* its workspace is the node's argmax buffer */
    mx_dnnl_linear_plan *linear;
} cnn_node_plan;

/* Every node's plans for batch size n: a model planned for training has its
 * max batch's, made when it is planned, and up to three other (size,
 * training or inference) sets (an epoch's last partial batch, an
 * evaluation's full and last batches), made at their first forward and
 * replaced least recently used first; a model planned for prediction only
 * has up to four inference sets, all made at first use. */
#define CNN_PLAN_SETS 4
typedef struct {
    size_t n;                    /* 0: an empty slot */
    int inference;               /* cnn_predict's plans: inference-only convolutions with the fusions */
    int failed;                  /* these plans could not be made (node NULL): that batch runs without them */
    unsigned long last_use;
    cnn_node_plan *node;         /* num_nodes entries */
} cnn_plan_set;

typedef struct {
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
    float **slots;               /* gradient slots, max_batch * largest tensor each */
    size_t num_slots;

    size_t largest;              /* largest per-sample tensor size */
    const float *input;          /* the last forward's input */
    int fwd_training;            /* the mode the last forward ran in */
    int fwd_inference;           /* the last forward was cnn_predict's: no backward */
    float *fold;                 /* cpu backend: one convolution's folded weights and bias */
    float *wino_u;               /* cpu backend: one convolution's weights in the Winograd domain (64-byte aligned) */
    int pred_chunked;            /* cpu backend: cnn_predict splits large batches (some layer runs Winograd) */
    float *pred_logits;          /* with pred_chunked: cnn_predict's logits (max_batch rows) */
    float *pred_cache;           /* with pred_chunked: every fused convolution's cnn_predict weights, made once
                                    per call; NULL above CNN_PRED_CACHE_BYTES */
    size_t rng_buffer;           /* with dropout: the buffer "mixreg.rng.dropout" holding the
                                    generator's state (so checkpoints carry it), else CNN_NONE */
    mx_backend backend;
    mx_dnnl_context *dnnl;       /* cpu backend: the engine, stream and plan scratch */
    cnn_plan_set plans[CNN_PLAN_SETS];
    unsigned long plan_clock;
    const cnn_plan_set *fwd_plans;  /* the set the last forward ran on (NULL: the reference layers) */
    int plan_warned;
    void (*bn_reduce)(void *ctx, double *sums, size_t count);  /* sync batch norm (cnn_cpu.c cnn_bn_sync), or NULL */
    void *bn_reduce_ctx;
    double *bn_sync_sums;        /* with bn_reduce: 2 x the largest channel count + 1 doubles (malloc) */
    double *bn_sync_counts;      /* with bn_reduce: each node's global value count (num_nodes, malloc) */
    double *bn_partial;          /* cpu backend: batch norm's per-sample channel sums, (2 max_batch + 3) x largest channel count */
    int profile;                 /* MIXREG_PROFILE: time every node, print a table when freed */
    double prof_s[CNN_PROF_KINDS][2];  /* seconds, forward / backward */
    size_t prof_calls[2];        /* forwards, backwards */
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
void cnn_graph_free(cnn_graph *g);

/* ---- the cpu backend (cnn_cpu.c) ---- */
/* The largest channel count a batch norm sees (for bn_partial). */
size_t cnn_cpu_bn_channels(const cnn_graph *g);
/* Chooses each tensor's layout and the inference fusions, and makes the
 * context (after cnn_plan, once). */
mx_status cnn_dnnl_init(cnn_graph *g);
/* The plans for the model's max batch and use (after the arena is planned). */
mx_status cnn_dnnl_plan(cnn_graph *g);
/* Frees every plan set and what was sized for the max batch (before a replan). */
void cnn_dnnl_drop_plans(cnn_graph *g);
void cnn_dnnl_free(cnn_graph *g);
/* The plan set for batch n (inference: cnn_predict's), made now if it is
 * new; NULL when that fails (a note on stderr, once): the forward then runs
 * on the reference layers. */
const cnn_plan_set *cnn_dnnl_plans(cnn_graph *g, size_t n, int inference);

/* The cpu backend's threaded kernels (results independent of the thread
 * count). ReLU semantics as mx_relu_forward / mx_relu_backward; `relu` fuses
 * one into the output, a non-NULL `y` (the ReLU's output) its backward into
 * the input gradient. Batch norm as the reference's (save_mean, save_invstd
 * required in training), statistics summed in double; on NCHW tensors, or
 * nChw16c ones (the _blocked kernels, which need `partial`: the graph's
 * bn_partial). */
void cnn_cpu_relu_forward(size_t count, float *y);
void cnn_cpu_relu_backward(size_t count, const float *y, float *dy);
void cnn_cpu_add_forward(size_t count, const float *a, const float *b, float *y, int relu);
/* The same writing y also in bfloat16 into y16 (count a multiple of 16). */
void cnn_cpu_add_forward_bf16_copy(size_t count, const float *a, const float *b, float *y, int relu, uint16_t *y16);
/* The add's backward: the (masked) dy into da and db (NULL: not wanted), added when acc_*. */
void cnn_cpu_add_backward(size_t count, const float *y, const float *dy, float *da, int acc_a, float *db, int acc_b);
/* dst = src, or dst += src. */
void cnn_cpu_grad_pass(size_t count, float *dst, const float *src, int accumulate);
void cnn_cpu_bn_forward_train(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                              const float *beta, float momentum, float eps, float *running_mean, float *running_var,
                              float *y, float *save_mean, float *save_invstd, int relu, float *affine);
/* Sync batch norm (--sync-bn): a training batch norm's per-channel sums are
 * added over every process of a data-parallel job before the statistics are
 * formed, so each process normalises with the global batch's. reduce sums
 * `count` doubles in place across the processes (it stops the job itself if
 * it cannot); sums has room for 2 x channels + 1; count is the node's global
 * value count, written by the forward and read by its backward. */
typedef struct {
    void (*reduce)(void *ctx, double *sums, size_t count);
    void *ctx;
    double *sums;
    double *count;
} cnn_bn_sync;

/* The training kernels with sync NULL are the plain ones above and below;
 * with it, they exchange [sum x, sum x^2, m] (forward) and [sum dy', sum dy' x]
 * (backward) through sync->reduce, gamma's and beta's gradients staying this
 * process's own. */
void cnn_cpu_bn_forward_train_synced(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                     const float *beta, float momentum, float eps, float *running_mean,
                                     float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                     float *affine, const cnn_bn_sync *sync);
void cnn_cpu_bn_backward_synced(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                                const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                float *dgamma, float *dbeta, const cnn_bn_sync *sync);
void cnn_cpu_bn_forward_train_blocked_synced(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                             const float *beta, float momentum, float eps, float *running_mean,
                                             float *running_var, float *y, float *save_mean, float *save_invstd,
                                             int relu, double *partial, float *affine, uint16_t *y16,
                                             const cnn_bn_sync *sync);
void cnn_cpu_bn_backward_blocked_synced(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                        const float *relu_k, const float *dy, const float *gamma,
                                        const float *save_mean, const float *save_invstd, float *dx, int dx_bf16,
                                        float *dgamma, float *dbeta, double *partial, const cnn_bn_sync *sync);
void cnn_cpu_bn_forward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                             const float *beta, const float *running_mean, const float *running_var, float eps,
                             float *y, int relu, float *affine);
void cnn_cpu_bn_backward(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                         const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                         float *dgamma, float *dbeta);
void cnn_cpu_bn_backward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                              const float *gamma, const float *running_mean, const float *running_var, float eps,
                              float *dx, float *dgamma, float *dbeta);

void cnn_cpu_bn_forward_train_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                      const float *beta, float momentum, float eps, float *running_mean,
                                      float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                      double *partial, float *affine, uint16_t *y16);
void cnn_cpu_bn_forward_eval_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                     const float *beta, const float *running_mean, const float *running_var, float eps,
                                     float *y, int relu, double *partial, float *affine, uint16_t *y16);
/* The four forwards above save their per-channel constants in affine (when
 * not NULL: 3 x channels floats, mean, scale, shift); this applies them again
 * (ReLU too when relu), giving the forward's output bit for bit. */
void cnn_cpu_bn_apply(size_t n, size_t channels, size_t hw, int blocked, const float *x, const float *affine, int relu,
                      float *y);
/* dx_bf16: write dx as bfloat16 into its buffer's first half (for a bfloat16
 * convolution's backward, mx_dnnl_conv2d_backward_bf16). relu_k (with y
 * NULL): the fused ReLU's mask from x and the forward's saved constants
 * (affine) instead of from its output y, which then need not be recomputed. */
void cnn_cpu_bn_backward_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                 const float *relu_k, const float *dy, const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                 int dx_bf16, float *dgamma, float *dbeta, double *partial);
void cnn_cpu_bn_backward_eval_blocked(size_t n, size_t channels, size_t hw, const float *x, const float *y,
                                      const float *relu_k, const float *dy, const float *gamma, const float *running_mean,
                                      const float *running_var, float eps, float *dx, int dx_bf16, float *dgamma,
                                      float *dbeta, double *partial);
/* Global average pooling of an nChw16c tensor into [n, channels], and back. */
void cnn_cpu_gap_forward_blocked(size_t n, size_t channels, size_t hw, const float *x, float *y);
void cnn_cpu_gap_backward_blocked(size_t n, size_t channels, size_t hw, const float *dy, float *dx);
/* Dropout of an nChw16c tensor with the reference's draws: element (s, c, p)
 * takes the draw of its NCHW index, and mask is kept in NCHW order. */
void cnn_cpu_dropout_forward_blocked(size_t n, size_t channels, size_t hw, float p, mx_rng *rng, const float *x,
                                     float *y, uint8_t *mask);
void cnn_cpu_dropout_backward_blocked(size_t n, size_t channels, size_t hw, float p, const uint8_t *mask,
                                      const float *dy, float *dx);
/* Index of element (s, c, p) of a tensor of `channels` x hw per sample in either layout. */
static inline size_t cnn_index(int blocked, size_t channels, size_t hw, size_t s, size_t c, size_t p)
{
    return blocked ? ((s * (channels / 16) + c / 16) * hw + p) * 16 + c % 16 : (s * channels + c) * hw + p;
}

/* ---- running (cnn_exec.c) ---- */
void cnn_init_params(mx_model *m, uint64_t seed);
/* Running statistics to their defaults, the dropout generator to the seed's stream. */
void cnn_reset_buffers(mx_model *m, uint64_t seed);
const float *cnn_forward(mx_model *m, const float *x, size_t n);
/* Eval-mode logits with the inference fusions (mx_model_predict); on
 * networks with Winograd layers, batches above CNN_PREDICT_CHUNK samples run
 * in near-equal chunks of at most that many, each through the whole network
 * (cnn_exec.c says why). */
#define CNN_PREDICT_CHUNK 32
/* The most pred_cache may take (resnet20 needs 1.5 MiB; a model whose
 * weights would need more folds them once per chunk instead). */
#define CNN_PRED_CACHE_BYTES ((size_t)64 << 20)
const float *cnn_predict(mx_model *m, const float *x, size_t n);
void cnn_backward(mx_model *m, const float *dlogits, size_t n, float *dx);
/* The MIXREG_PROFILE table, on stderr. */
void cnn_profile_report(const cnn_graph *g);

/* ---- architectures (cnn_arch.c) ---- */
mx_status cnn_build_arch(cnn_graph *g, const mx_model_spec *spec);

#endif
