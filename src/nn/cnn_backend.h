/* The interface every backend of the CNN executor implements (docs/backends.md,
 * "The backend interface"): a table of kernels, one per node type and
 * direction, hooks around planning, and the optimizer update and host <->
 * device copies. cnn_exec.c walks the node list and calls through the table;
 * it never looks at a backend's layouts, precisions or plans. A backend keeps
 * its own state behind cnn_graph.state (per graph) and cnn_node.state (per
 * node), made by its prepare hook and freed by its release hook.
 *
 * Memory: tensors, gradients, batch-norm statistics, max-pool arg-max
 * and dropout masks live in the graph's arena (cnn_memory_plan.c cnn_plan_arena), in
 * the backend's memory space; a backend adds its own regions there with
 * reserve. Parameters and gradients are the model's flat arrays. What a
 * backend allocates elsewhere it owns and frees (unplan, release).
 *
 * Failure: every kernel returns mx_status; MX_OK, or an error set with
 * mx_error_set (one line: what failed and why). The executor stops the pass
 * at the first failure and returns it. */
#ifndef MIXREG_NN_CNN_BACKEND_H
#define MIXREG_NN_CNN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/arena.h"
#include "mixreg/model.h"
#include "mixreg/optim.h"

struct cnn_graph;
struct cnn_backend;

/* One forward or backward pass: the table it runs on and that table's state
 * for this batch size (the cpu backend's plan set; NULL for the reference
 * layers). A backend's begin hook may hand a pass to another table (the cpu
 * backend runs a batch size whose plans could not be made on the reference
 * layers); the backward runs on the table its forward ran on. */
typedef struct {
    mx_model *m;
    struct cnn_graph *g;
    size_t n;                        /* samples in the batch */
    const struct cnn_backend *be;
    const void *set;
    int inference;                   /* the predict hook's pass: nothing kept for a backward */
} cnn_pass;

typedef struct cnn_backend {
    const char *name;

    /* ---- planning (cnn_graph.c) ----
     * prepare: once, after the graph is built and its parameters allocated:
     * choose layouts, fusions, make contexts and the per-node state (NULL: none).
     * reserve: during each pass of cnn_plan_arena, the backend's own regions of
     * the arena for a max batch of B samples (writes its pointers only when
     * `commit`: the measuring passes of mx_model_plan_bytes run on a copy of
     * the graph that shares the backend's state).
     * plan: after the arena is committed (the max batch's plans; NULL: none).
     * unplan: undoes plan, before a replan or on failure (NULL: none).
     * release: frees everything prepare made (NULL: nothing). */
    mx_status (*prepare)(struct cnn_graph *g);
    void (*reserve)(struct cnn_graph *g, mx_arena *arena, size_t B, int commit);
    mx_status (*plan)(struct cnn_graph *g);
    void (*unplan)(struct cnn_graph *g);
    void (*release)(struct cnn_graph *g);
    /* The samples a prediction-only arena holds for a max batch of B (a
     * backend that predicts in chunks holds one chunk); NULL: B. */
    size_t (*predict_samples)(const struct cnn_graph *g, size_t B);
    /* The first node that writes node k's output during a prediction: a
     * convolution whose fused chain ends at k writes it in place of k
     * (NULL: k itself, no fusions). The memory plan keeps the output's
     * buffer from there. */
    size_t (*first_writer)(const struct cnn_graph *g, size_t k);
    /* Whether residual add node k may write its output over its input
     * tensor u, u's last reader: every kernel that writes that output
     * (prediction's fused ones included) goes element by element, reading
     * u's element before writing the same one. NULL: never. */
    int (*add_in_place)(const struct cnn_graph *g, size_t k, int u);
    /* Whether a prediction on a model planned for training leaves node k's
     * output, kept for the backward, unwritten, and may keep data of its
     * own there across calls (the cpu backend's held prediction weights,
     * cnn_cpu_pred_weights.c): the memory plan then lends it to nothing a
     * prediction writes. NULL: never. */
    int (*pred_keeps_output)(const struct cnn_graph *g, size_t k);

    /* What the memory plan may assume (cnn_memory_plan.c): whether the backend can
     * recompute a batch norm's ReLU output for the backward (bn_recompute
     * bit for bit), so that output need not be kept; whether its batch norm
     * has the sync form (--sync-bn); whether its batch-norm backward applies
     * the node's ReLU backward itself (else the executor calls relu_backward). */
    int recomputes_bn_output;
    int has_sync_bn;
    int bn_backward_fuses_relu;
    /* Whether convolution node k's backward reads a copy of its input the
     * backend keeps (not the input tensor), and whether node k's backward
     * takes its ReLU's mask from the backend's own record (not its output):
     * then those tensors need not be kept for the backward (NULL: never). */
    int (*conv_keeps_input)(const struct cnn_graph *g, size_t k);
    int (*keeps_relu_mask)(const struct cnn_graph *g, size_t k);
    /* Whether batch norm node b's output, recomputed for convolution node
     * c's backward, may go where that backward writes its input gradient:
     * the convolution reads it (for its weights' gradient) before it writes
     * there, the batch norm's backward takes its ReLU's mask from its input,
     * and any other backward reading it is a convolution's (the memory plan
     * asks for each: all recompute it, or one does into a buffer of its
     * own). The recomputed output then needs no buffer of its own in the
     * backward (NULL: never). */
    int (*recompute_in_dx)(const struct cnn_graph *g, size_t b, size_t c);
    /* Whether convolution node k, which reads the network's input (kept for
     * the backward anyway: the first layer's weights' gradient reads it),
     * may run its forward again in the backward and give the same bits, so
     * that its output need not be kept across the step (NULL: never). */
    int (*recomputes_conv_output)(const struct cnn_graph *g, size_t k);

    /* Fills pass->be and pass->set for a batch of pass->n (inference: for
     * the predict hook's fused nodes). NULL: the pass runs on this table
     * with no set. */
    mx_status (*begin)(cnn_pass *pass, int inference);
    /* Eval-mode logits with the backend's inference fusions (mx_model_predict);
     * NULL: the forward in eval mode. */
    mx_status (*predict)(mx_model *m, const float *x, size_t n, const float **logits);

    /* ---- forward kernels of node k: x (and b) its inputs, y its output. A
     * kernel that applied the node's ReLU sets *relu_done; otherwise the
     * executor calls relu_forward on y. The model's mode (m->training)
     * says training or eval (batch norm, dropout). ---- */
    mx_status (*conv_forward)(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done);
    mx_status (*bn_forward)(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done);
    mx_status (*add_forward)(const cnn_pass *p, size_t k, const float *a, const float *b, float *y, int *relu_done);
    mx_status (*maxpool_forward)(const cnn_pass *p, size_t k, const float *x, float *y);
    mx_status (*gap_forward)(const cnn_pass *p, size_t k, const float *x, float *y);
    mx_status (*linear_forward)(const cnn_pass *p, size_t k, const float *x, float *y, int *relu_done);
    mx_status (*dropout_forward)(const cnn_pass *p, size_t k, const float *x, float *y);
    mx_status (*relu_forward)(const cnn_pass *p, size_t count, float *y);

    /* ---- backward kernels of node k: dy its output's gradient (the ReLU's
     * backward already applied unless the kernel fuses it), dx where its
     * input's gradient goes (NULL: not wanted, the network input), written,
     * not added (the executor adds through grad_accumulate). Parameter
     * gradients are written into the model's flat gradient array.
     * Convolution: data and weights in one call (oneDNN's plans reorder dy
     * once for both; cuDNN's take the same descriptors). ---- */
    mx_status (*conv_backward)(const cnn_pass *p, size_t k, const float *x, float *dy, float *dx);
    mx_status (*bn_backward)(const cnn_pass *p, size_t k, const float *x, float *dy, float *dx);
    /* The residual add writes (or adds, per node acc_in / acc_in2) dy into
     * both inputs' gradients itself; it may instead leave one gradient at
     * *alias_p for the next node, naming that tensor in *alias_t. dy_extra,
     * when not NULL, is a gradient the executor has not yet added into dy
     * (the last reader's, at the node before: one pass fewer); the add takes
     * dy + dy_extra, added in that order as grad_accumulate would. It may be
     * the buffer of an input's gradient written fresh. */
    mx_status (*add_backward)(const cnn_pass *p, size_t k, float *dy, const float *dy_extra, float *dx, int *alias_t,
                              float **alias_p);
    /* Max pooling, global average pooling and dropout are only called with a dx. */
    /* relu_in: the pool's input is the output of a ReLU whose backward the
     * executor leaves to this call (the pool its only reader): dx is also 0
     * where that input is <= 0. */
    mx_status (*maxpool_backward)(const cnn_pass *p, size_t k, const float *dy, float *dx, int relu_in);
    mx_status (*gap_backward)(const cnn_pass *p, size_t k, const float *dy, float *dx);
    mx_status (*linear_backward)(const cnn_pass *p, size_t k, const float *x, const float *dy, float *dx);
    mx_status (*dropout_backward)(const cnn_pass *p, size_t k, const float *dy, float *dx);
    mx_status (*relu_backward)(const cnn_pass *p, size_t count, const float *y, float *dy);
    /* dst += src (a tensor read by two nodes: its second gradient). */
    mx_status (*grad_accumulate)(const cnn_pass *p, size_t count, float *dst, const float *src);
    /* Batch norm node b's output again (its ReLU applied) into y, for a
     * backward reading it when the memory plan did not keep it
     * (cnn_node.recompute_bn); the same bits as the forward wrote. */
    mx_status (*bn_recompute)(const cnn_pass *p, size_t b, float *y);

    /* ---- the optimizer and the copies ----
     * sgd_step: mx_sgd_step over the flat arrays in the backend's memory.
     * to_device / to_host: copies between host memory and the backend's
     * (the same memory for ref and cpu: memcpy). */
    mx_status (*sgd_step)(const mx_sgd_config *cfg, double lr, float *params, const float *grads, float *velocity,
                          size_t count);
    mx_status (*to_device)(void *device, const void *host, size_t bytes);
    mx_status (*to_host)(void *host, const void *device, size_t bytes);
} cnn_backend;

/* The tables (cnn_ref.c, cnn_cpu_exec.c, src/backend/cuda/cnn_cuda.c). */
extern const cnn_backend cnn_backend_ref, cnn_backend_cpu, cnn_backend_cuda;
/* The table of a backend value; NULL for an unknown one. */
const cnn_backend *cnn_backend_of(mx_backend backend);

/* The host implementations ref and cpu share. */
mx_status cnn_host_sgd_step(const mx_sgd_config *cfg, double lr, float *params, const float *grads, float *velocity,
                            size_t count);
mx_status cnn_host_copy(void *dst, const void *src, size_t bytes);

#endif
