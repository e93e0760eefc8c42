/* The "cpu" backend's private parts (cnn_cpu_*.c): its state per graph and
 * per node, its kernel choice and inference fusions (cnn_cpu_choice.c), its
 * oneDNN plan sets (cnn_cpu_plan.c), its prediction (cnn_cpu_predict.c) and
 * its threaded kernels (cnn_cpu_kernels.c on NCHW, cnn_cpu_blocked.c on
 * nChw16c and nChw8c). cnn_cpu_exec.c puts them behind the backend table
 * (cnn_backend_cpu). */
#ifndef MIXREG_NN_CNN_CPU_H
#define MIXREG_NN_CNN_CPU_H

#include "mixreg/layers_dnnl.h"
#include "mixreg/rng.h"
#include "nn/cnn_internal.h"

/* A node's own state on the cpu backend (cnn_node.state).
 * Inference (cnn_cpu_predict.c; cnn_cpu_choice.c): a convolution
 * absorbs the batch norm after it (folded into its weights and bias), then
 * the residual add after that (oneDNN's binary add post-op with the add's
 * other input) and the last one's ReLU (eltwise post-op); the absorbed nodes
 * are skipped. */
typedef struct {
    float *affine;                   /* BN: the forward's per-channel float mean, scale and shift (3 x channels),
                                        to recompute its output exactly (in the arena) */
    void *x_bf16;                    /* conv, bf16: its input as its plans read it (bfloat16), kept by the
                                        forward for the backward weights (mx_dnnl_conv2d_kept_x_bytes) */
    int fold_bn, fold_add;           /* conv: the node indices absorbed, -1 none */
    int fused;                       /* BN / ADD: runs inside an earlier convolution */
    int pred_out;                    /* conv: the tensor the fused convolution writes */
    int sum_in;                      /* conv with fold_add: the add's other input */
    int pred_relu;                   /* conv: the ReLU that ends the fused chain */
    int wino;                        /* conv: prediction runs it on mixreg's Winograd kernels (winograd.h,
                                        CNN_WINO_*; cnn_cpu_predicts_wino says at which batches) */
    int train_wino;                  /* conv: its training passes and eval-mode forward run on mixreg's
                                        Winograd kernels (cnn_cpu_choice.c winograd_training_suits) */
    int narrow;                      /* conv: its forward and weights' gradient run conv_narrow.h's kernels
                                        (NCHW first layers; cnn_cpu_choice.c narrow_suits) */
    int narrow_blocked;              /* conv: its forward and weights' gradient run conv_narrow.h's nChw8c
                                        kernels (few NCHW input channels, an nChw8c output; cnn_cpu_choice.c
                                        narrow_blocked_suits) */
    /* bfloat16 activations between a training convolution (on oneDNN, in a
     * bfloat16 model) and a batch norm, as autocast keeps them, each halving
     * the bytes the batch norm's kernels read (layers_dnnl.h y_bf16, dx_bf16;
     * cnn_cpu_choice.c sets them). Tensors blocked by 16 alone. */
    int y_bf16;                      /* conv: writes its output in bfloat16, for the batch norm that alone reads it */
    int dx_bf16;                     /* conv: writes its input gradient in bfloat16, its input a batch norm's output
                                        that it alone reads */
    uint16_t *relu_bits;             /* ADD: its ReLU's mask, bit e % 16 of word e / 16 for element e (in the
                                        arena), where its output is not kept (cnn_cpu_add_keeps_mask_bits) */
    size_t bf16_io;                  /* BN: CNN_X_BF16 (its input, y_bf16) and CNN_DY_BF16 (its output's gradient,
                                        dx_bf16) for its kernels' layout argument in training plans' passes */
    float *pred_w, *pred_u;          /* conv with fold_bn or wino: where prediction keeps its folded weights and
                                        bias, and its Winograd weights, between calls (NULL: it prepares them
                                        on each call; cnn_cpu_pred_weights.c) */
    int pred_ready;                  /* what they hold for the model's state epoch pred_epoch */
    size_t pred_plan_n;              /* the batch of the oneDNN plan whose layout pred_w holds, if it does */
    mx_dnnl_conv2d_plan *pool_chunk; /* conv before a max pooling: its inference plan for CNN_POOL_CHUNK samples
                                        (cnn_cpu_predict.c pooled_in_chunks), made at first use */
    int pool_chunk_failed;           /* oneDNN could not make it: the whole batch at once */
    unsigned long pred_epoch;
} cnn_cpu_node;

/* cnn_cpu_node.train_wino: which of mixreg's Winograd kernels (winograd.h)
 * a convolution's training passes run on; CNN_WINO_GEMM only at batches
 * mx_wino_gemm_worth, oneDNN's otherwise. */
enum { CNN_WINO_NONE = 0, CNN_WINO_TILES = 1, CNN_WINO_GEMM = 2 };

/* The oneDNN plans of one node for one batch size; without one a node runs
 * on the cpu backend's own kernels where it has them (batch norm, ReLU, add),
 * else on the reference layers. */
typedef struct {
    mx_dnnl_conv2d_plan *conv;
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
    int inference;               /* the predict hook's plans: inference-only convolutions with the fusions */
    int failed;                  /* these plans could not be made (node NULL): that batch runs without them */
    unsigned long last_use;
    cnn_node_plan *node;         /* num_nodes entries */
} cnn_plan_set;

/* Predictions on networks with Winograd layers run batches above
 * CNN_PREDICT_CHUNK samples in near-equal chunks of at most that many, each
 * through the whole network (cnn_cpu_predict.c says why). */
#define CNN_PREDICT_CHUNK 32
/* A prediction runs a convolution and the max pooling that alone reads its
 * output this many samples at a time, when their output for the batch
 * would not stay in cache (cnn_cpu_predict.c pooled_in_chunks). */
#define CNN_POOL_CHUNK 2
/* The most pred_cache may take (resnet20 needs 4.8 MiB; a model whose
 * weights would need more folds them once per chunk instead). */
#define CNN_PRED_CACHE_BYTES ((size_t)64 << 20)

/* The cpu backend's state of one graph (cnn_graph.state). */
typedef struct {
    cnn_cpu_node *node;          /* num_nodes entries, cnn_node.state points into it */
    mx_dnnl_context *dnnl;       /* the engine, stream and plan scratch */
    cnn_plan_set plans[CNN_PLAN_SETS];
    unsigned long plan_clock;
    int plan_warned;
    double *bn_partial;          /* batch norm's per-sample channel sums, (2 max_batch + 3) x largest channel
                                    count (in the arena) */
    size_t bn_sums_ready;        /* the batch norm whose backward sums the residual add's backward left in
                                    bn_partial (cnn_cpu_add_bn_sums), CNN_NONE: none */
    float *fold;                 /* one convolution's folded weights and bias, for prediction without
                                    pred_cache: in a fused convolution's output buffer (cnn_cpu_plan), else
                                    fold_own; NULL while unplanned */
    float *fold_own;
    size_t fold_floats;
    size_t kernel_scratch_bytes; /* the most that scratch holds at once */
    int scratch_threads;         /* OpenMP threads when planned: the per-thread scratch is for this many (more
                                    at a call: a narrow layer runs on oneDNN, a weights' gradient on these) */
    int pred_chunked;            /* prediction splits large batches (a network of at most 64 channels with
                                    layers on the per-tile Winograd kernel: cnn_cpu_predict.c) */
    float *pred_logits;          /* with pred_chunked: the predicted logits (max_batch rows) */
    float *pred_cache;           /* with pred_chunked: every fused convolution's prediction weights (its
                                    entries, cnn_cpu_pred_weights.c), made once per call or per hold; NULL above CNN_PRED_CACHE_BYTES or while unplanned. A model
                                    planned for training keeps it in the arena's prediction region,
                                    where gradients go (cnn_graph.pred_region) */
    float *pred_cache_own;       /* or here, in a model planned for prediction (pred_cache_floats) */
    size_t pred_cache_floats;    /* its size; 0: no cache */
    int pred_nhwc;               /* bfloat16 prediction keeps the blocked tensors in bfloat16 NHWC, in the
                                    first half of their buffers (cnn_cpu_predict.c; cnn_cpu_plan_fusion says when) */
} cnn_cpu_graph;

static inline cnn_cpu_graph *cnn_cpu_of(const cnn_graph *g) { return g->state; }
static inline cnn_cpu_node *cnn_cpu_node_of(const cnn_graph *g, size_t k) { return g->nodes[k].state; }

/* mixreg's own convolution kernels' buffers live in the oneDNN context's
 * scratch (mx_dnnl_context_reserve): they run between plan calls, never
 * inside one, and so take the same memory as the plans' reorders and
 * scratchpads (preact18 fp32 at batch 128: 52 MiB of Winograd buffers
 * beside a 78 MiB oneDNN scratch). The address moves when a plan is made:
 * ask at each use.
 *  - wino_u: one convolution's weights in the Winograd domain, or its input
 *    gradient's, for the per-tile kernels (CNN_WINO_TILES);
 *  - wino_gemm, over it: the GEMM kernels' (CNN_WINO_GEMM) chunks, and the
 *    block of transformed weights they transform themselves
 *    (mx_wino_gemm_scratch_floats; a prediction's held weights lie in their
 *    entry);
 *  - wino_sums, over both: the weights' gradient's buffers
 *    (CNN_WINO_TILES's per-thread sums, mx_wino_dw_scratch_floats for
 *    scratch_threads; CNN_WINO_GEMM's chunks and a block's sums): preact18's
 *    512-channel layers took 52 MiB for either before the GEMM kernels went
 *    by blocks of output channels, 20 now;
 *  - narrow: the narrow convolutions' (mx_conv_narrow_scratch_floats) for
 *    scratch_threads; a narrow layer runs no Winograd kernel. */
static inline float *cnn_cpu_wino_u(const cnn_graph *g) { return mx_dnnl_context_scratch(cnn_cpu_of(g)->dnnl); }
static inline float *cnn_cpu_wino_gemm(const cnn_graph *g) { return mx_dnnl_context_scratch(cnn_cpu_of(g)->dnnl); }
static inline float *cnn_cpu_wino_sums(const cnn_graph *g) { return mx_dnnl_context_scratch(cnn_cpu_of(g)->dnnl); }
static inline float *cnn_cpu_narrow_scratch(const cnn_graph *g) { return mx_dnnl_context_scratch(cnn_cpu_of(g)->dnnl); }

/* ---- kernel choice (cnn_cpu_choice.c) ---- */
/* Chooses each convolution's kernels, the inference fusions, and the sizes
 * of the kernels' buffers and the folded weights: prepare's second step. */
mx_status cnn_cpu_plan_fusion(cnn_graph *g);
/* The oneDNN algorithms of convolution nd's training plans (Winograd where
 * it wins, else direct). */
void cnn_cpu_choose_conv_algorithm(const cnn_graph *g, const cnn_node *nd, mx_dnnl_conv2d_options *opt);
size_t cnn_cpu_first_writer(const cnn_graph *g, size_t k);
int cnn_cpu_add_in_place(const cnn_graph *g, size_t k, int u);
int cnn_cpu_pred_keeps_output(const cnn_graph *g, size_t k);
/* Whether prediction runs node k on mixreg's Winograd kernels at batch n
 * (its inference plan is then not made). */
int cnn_cpu_predicts_wino(const cnn_graph *g, size_t k, size_t n);

/* ---- plans (cnn_cpu_plan.c) ---- */
/* Chooses each tensor's layout and the inference fusions, makes the state
 * and the context (the table's prepare hook). */
mx_status cnn_cpu_prepare(cnn_graph *g);
/* The arena regions: batch norm's constants and partial sums (reserve hook). */
void cnn_cpu_reserve(cnn_graph *g, mx_arena *arena, size_t B, int commit);
/* The plans for the model's max batch and use (after the arena is planned). */
mx_status cnn_cpu_plan(cnn_graph *g);
/* Frees every plan set and what was sized for the max batch (before a replan). */
void cnn_cpu_unplan(cnn_graph *g);
void cnn_cpu_release(cnn_graph *g);
size_t cnn_cpu_predict_samples(const cnn_graph *g, size_t B);
/* Sets every tensor's cnn_tensor.blocked (cnn_cpu_layout.c): prepare's first step. */
mx_status cnn_cpu_assign_layouts(cnn_graph *g);
/* The plan set for batch n (inference: the predict hook's), made now if it
 * is new; NULL when that fails (a note on stderr, once): the pass then runs
 * on the reference layers. */
const cnn_plan_set *cnn_cpu_plans(cnn_graph *g, size_t n, int inference);
/* Convolution k's inference plan for n samples, outside the plan sets
 * (cnn_cpu_node.pool_chunk); NULL when oneDNN cannot make it. */
mx_dnnl_conv2d_plan *cnn_cpu_node_inference_plan(cnn_graph *g, size_t k, size_t n);
/* Whether convolution k's oneDNN plans (inference or training ones) apply
 * the ReLU after it (cnn_cpu_plan.c). */
int cnn_cpu_conv_plan_relu(const cnn_graph *g, size_t k, int inference);

/* ---- the bfloat16 data flow and the passes it saves (cnn_cpu_flow.c) ---- */
/* A pass's plan set (cnn_cpu_exec.c begin), and node k's plans in it. */
static inline const cnn_plan_set *cnn_cpu_pass_plans(const cnn_pass *p) { return p->set; }
static inline const cnn_node_plan *cnn_cpu_pass_plan(const cnn_pass *p, size_t k) { return &cnn_cpu_pass_plans(p)->node[k]; }
/* Where node k writes its output in bfloat16 for the convolutions reading it
 * (NULL: nowhere), *f32 whether it still writes float32; the bfloat16 input
 * convolution node k's producer wrote; its input as it keeps it for its
 * backward (its producer's copy or its own); whether it takes its dy in
 * bfloat16 from the batch norm after it. */
void *cnn_cpu_bf16_copy_of(const cnn_pass *p, size_t k, int *f32);
const void *cnn_cpu_conv_bf16_input(const cnn_pass *p, size_t k);
const void *cnn_cpu_conv_kept_input(const cnn_pass *p, size_t k);
/* Whether convolution node k's bfloat16 input is written again for its
 * backward instead of kept; the batch norm before it writes it so
 * (cnn_cpu_bn_apply_bf16). */
int cnn_cpu_conv_input_restaged(const cnn_graph *g, size_t k);
int cnn_cpu_conv_takes_bf16_dy(const cnn_pass *p, size_t k);
/* Whether batch norm node b's output need not be recomputed for the
 * backward; node k's layout argument with its bfloat16 operands; whether it
 * writes the residual add after it. */
int cnn_cpu_bn_output_unneeded(const cnn_pass *p, size_t b);
size_t cnn_cpu_bn_layout(const cnn_pass *p, size_t k);
/* cnn_backend.recompute_in_dx; whether batch norm node b's output is
 * recomputed so (its backward then takes its ReLU's mask from its input). */
int cnn_cpu_recompute_in_dx(const cnn_graph *g, size_t b, size_t c);
/* cnn_backend.recomputes_conv_output (cnn_cpu_flow.c). */
int cnn_cpu_recomputes_conv_output(const cnn_graph *g, size_t k);
int cnn_cpu_bn_recomputed_in_dx(const cnn_graph *g, size_t b);
int cnn_cpu_bn_add_fused(const cnn_graph *g, size_t k);
/* cnn_backend.conv_keeps_input and keeps_relu_mask; whether residual add
 * node k keeps its ReLU's mask as bits; whether tensor t is gone by the
 * backward (shared, not recomputed); whether convolution node k's input is
 * (counting on its copy). */
int cnn_cpu_conv_keeps_input(const cnn_graph *g, size_t k);
int cnn_cpu_keeps_relu_mask(const cnn_graph *g, size_t k);
int cnn_cpu_add_keeps_mask_bits(const cnn_graph *g, size_t k);
int cnn_cpu_tensor_gone(const cnn_graph *g, int t);
int cnn_cpu_conv_input_gone(const cnn_graph *g, size_t k);
/* Sets cnn_cpu_node.y_bf16, dx_bf16, bf16_io and cnn_tensor.bf16 (prepare). */
void cnn_cpu_mark_bf16_flow(cnn_graph *g);

/* The kernels of bfloat16 prediction on NHWC activations (cnn_cpu_nhwc.c):
 * y = relu?((x - mean) scale + shift) per channel; y = relu?(a + b); the
 * global average pooling into float32 [n, c]; max pooling. */
void cnn_cpu_nhwc_affine(size_t n, size_t c, size_t hw, const uint16_t *x, const float *mean, const float *scale,
                         const float *shift, int relu, uint16_t *y);
void cnn_cpu_nhwc_add(size_t count, const uint16_t *a, const uint16_t *b, int relu, uint16_t *y);
void cnn_cpu_nhwc_gap(size_t n, size_t c, size_t hw, const uint16_t *x, float *y);
void cnn_cpu_nhwc_maxpool(size_t n, const mx_pool2d_desc *d, const uint16_t *x, uint16_t *y);

/* ---- the prediction's weights (cnn_cpu_pred_weights.c) ---- */
/* Floats every fused convolution's entry takes together (pred_cache). */
size_t cnn_cpu_pred_cache_floats(const cnn_graph *g);
/* The entries, one after another in cache (cnn_cpu_pred_cache_floats of it). */
void cnn_cpu_place_pred_cache(cnn_graph *g, float *cache);
/* The entries of a model planned for training for a max batch of B, in the
 * outputs of the convolutions that absorb a batch norm (the fold buffer's
 * excepted): no prediction touches them. Those that do not fit get none. */
void cnn_cpu_place_pred_entries(cnn_graph *g, size_t B);
void cnn_cpu_drop_pred_entries(cnn_graph *g);
/* At the start of each prediction: unless the caller holds the weights, what
 * earlier calls prepared is stale. */
void cnn_cpu_pred_weights_begin(mx_model *m);
/* Convolution k's weights for prediction at batch n, the batch norm after
 * it folded in, from its entry when made in this epoch, else made now: w
 * and b; u, the Winograd weights, when it runs on those kernels at batch n
 * (the GEMM kernels without an entry: none, they transform w by blocks);
 * or, for its oneDNN plan at batch n (plan, NULL: none), prepared in that
 * plan's layout instead of w (mx_dnnl_conv2d_forward_prepared; w NULL). */
typedef struct {
    const float *w, *b, *u;
    const void *prepared;
} cnn_pred_weights;
cnn_pred_weights cnn_cpu_pred_weights(const mx_model *m, const cnn_graph *g, size_t k, size_t n,
                                      mx_dnnl_conv2d_plan *plan);
/* Whether convolution k's entry holds its weights in a oneDNN plan's layout
 * for the model's state epoch (tests). */
int cnn_cpu_pred_weights_in_plan_layout(const mx_model *m, const cnn_graph *g, size_t k);
/* The folded batch norm's scales and bias alone, for a plan whose reorder of
 * the weights applies the scales (mx_dnnl_conv2d_scales_weights). */
void cnn_cpu_fold_scales(const mx_model *m, const cnn_graph *g, size_t k, float *scales, float *b);

/* The inference fusions' predict hook (cnn_cpu_predict.c). */
int cnn_cpu_nhwc_suits(const cnn_graph *g);
mx_status cnn_cpu_predict(mx_model *m, const float *x, size_t n, const float **logits);

/* The cpu backend's threaded kernels (results independent of the thread
 * count). ReLU semantics as mx_relu_forward / mx_relu_backward; `relu` fuses
 * one into the output, a non-NULL `y` (the ReLU's output) its backward into
 * the input gradient. Batch norm as the reference's (save_mean, save_invstd
 * required in training), statistics summed in double; on NCHW tensors, or
 * blocked ones (the _blocked kernels; `layout` is the tensor's
 * cnn_tensor.blocked: 8 or 16 channels to a block, nChw<B>c, or 16 | CNN_NHWC;
 * they need `partial`: the graph's bn_partial). Their bfloat16 outputs (y16,
 * dx_bf16) are for block 16 alone, in the tensor's own layout: bfloat16
 * models are blocked by 16. */
void cnn_cpu_relu_forward(size_t count, float *y);
void cnn_cpu_relu_backward(size_t count, const float *y, float *dy);
void cnn_cpu_add_forward(size_t count, const float *a, const float *b, float *y, int relu);
/* The same writing y also in bfloat16 into y16 and its ReLU's mask as bits
 * into relu_bits (bit e % 16 of word e / 16; set where y > 0 or NaN), each
 * when not NULL (count a multiple of 16). */
void cnn_cpu_add_forward_bf16_copy(size_t count, const float *a, const float *b, float *y, int relu, uint16_t *y16,
                                   uint16_t *relu_bits);
/* The add's backward: the (masked) dy, plus extra where not NULL (the
 * gradient the executor left to add into dy, cnn_backend.add_backward; it
 * may be da or db itself, written fresh, not both), into da and db (NULL:
 * not wanted), added when acc_*. */
void cnn_cpu_add_backward(size_t count, const float *y, const float *dy, const float *extra, float *da, int acc_a,
                          float *db, int acc_b);
/* The same with the mask from those bits (count a multiple of 16). */
void cnn_cpu_add_backward_bits(size_t count, const uint16_t *relu_bits, const float *dy, const float *extra, float *da,
                               int acc_a, float *db, int acc_b);
/* dst = src, or dst += src. */
void cnn_cpu_grad_pass(size_t count, float *dst, const float *src, int accumulate);
/* The residual add's gradient into the batch norm's output before it, with
 * that batch norm's backward sums (cnn_cpu_blocked.c): g = dy (+ extra, which
 * may be g itself), masked by relu_bits or else by y > 0 when either is not
 * NULL, and into partial ([n][2][C] doubles) the per-sample sums of g and
 * g x that cnn_cpu_bn_backward_blocked_synced would take (x bfloat16 with
 * the layout's CNN_X_BF16), in one pass. */
void cnn_cpu_add_bn_sums(size_t n, size_t channels, size_t hw, size_t layout, const uint16_t *relu_bits,
                         const float *y, const float *dy, const float *extra, const void *x, float *g, double *partial);
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

/* A residual add that a batch norm's forward writes (cnn_cpu_exec.c
 * bn_add_fused): its other input, in the batch norm's layout, added before
 * the add's ReLU, and that ReLU's mask as cnn_cpu_add_forward_bf16_copy
 * writes it, into relu_bits (block 16) unless NULL. */
typedef struct {
    const float *addend;
    uint16_t *relu_bits;
} cnn_bn_add;

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
void cnn_cpu_bn_forward_train_blocked_synced(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                             const float *beta, float momentum, float eps, float *running_mean,
                                             float *running_var, float *y, float *save_mean, float *save_invstd,
                                             int relu, double *partial, float *affine, uint16_t *y16,
                                             const cnn_bn_sync *sync, const cnn_bn_add *add);
void cnn_cpu_bn_backward_blocked_synced(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                        const float *relu_k, const float *dy, const float *gamma,
                                        const float *save_mean, const float *save_invstd, float *dx, int dx_bf16,
                                        float *dgamma, float *dbeta, double *partial, const cnn_bn_sync *sync,
                                        int sums_ready);
void cnn_cpu_bn_forward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                             const float *beta, const float *running_mean, const float *running_var, float eps,
                             float *y, int relu, float *affine);
void cnn_cpu_bn_backward(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                         const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                         float *dgamma, float *dbeta);
void cnn_cpu_bn_backward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *y, const float *dy,
                              const float *gamma, const float *running_mean, const float *running_var, float eps,
                              float *dx, float *dgamma, float *dbeta);

void cnn_cpu_bn_forward_train_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                      const float *beta, float momentum, float eps, float *running_mean,
                                      float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                      double *partial, float *affine, uint16_t *y16);
void cnn_cpu_bn_forward_eval_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                     const float *beta, const float *running_mean, const float *running_var, float eps,
                                     float *y, int relu, double *partial, float *affine, uint16_t *y16,
                                     const cnn_bn_add *add);
/* add (blocked forwards, NULL: none): the residual add the batch norm
 * writes (see cnn_bn_add); y is then that add's output, the batch norm's own
 * not written (the same bits as the two nodes apart).
 * The four forwards above save their per-channel constants in affine (when
 * not NULL: 3 x channels floats, mean, scale, shift); this applies them again
 * (ReLU too when relu), giving the forward's output bit for bit. */
void cnn_cpu_bn_apply(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *affine, int relu,
                      float *y);
/* The same into bfloat16 y16 (block 16), x as the layout says: bit for bit
 * the bfloat16 copy the forwards wrote. */
void cnn_cpu_bn_apply_bf16(size_t n, size_t channels, size_t hw, size_t layout, const void *x, const float *affine,
                           int relu, uint16_t *y16);
/* dx_bf16: write dx as bfloat16 into its buffer's first half (for a bfloat16
 * convolution's backward, mx_dnnl_conv2d_backward_bf16). relu_k (with y
 * NULL): the fused ReLU's mask from x and the forward's saved constants
 * (affine) instead of from its output y, which then need not be recomputed. */
void cnn_cpu_bn_backward_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                 const float *relu_k, const float *dy, const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                 int dx_bf16, float *dgamma, float *dbeta, double *partial);
void cnn_cpu_bn_backward_eval_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                      const float *relu_k, const float *dy, const float *gamma, const float *running_mean,
                                      const float *running_var, float eps, float *dx, int dx_bf16, float *dgamma,
                                      float *dbeta, double *partial);
/* Global average pooling of a blocked tensor into [n, channels], and back. */
void cnn_cpu_gap_forward_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, float *y);
/* Max pooling of blocked tensors (cnn_cpu_pool.c), mx_maxpool2d_forward's and
 * _backward's semantics; argmax as nChw<B>c of the output's shape (whatever
 * the layout), each entry its input's index within its channel's plane. The output (y,
 * dy) is blocked too, or NCHW (y_nchw, dy_nchw: a pooling whose output goes
 * to the linear layers, cnn_cpu_assign_layouts). relu_x as cnn_cpu_maxpool_2x2_backward. */
void cnn_cpu_maxpool_forward_blocked(const mx_pool2d_desc *d, size_t n, size_t layout, const float *x, float *y,
                                     int y_nchw, uint32_t *argmax);
void cnn_cpu_maxpool_backward_blocked(const mx_pool2d_desc *d, size_t n, size_t layout, const uint32_t *argmax,
                                      const float *relu_x, const float *dy, int dy_nchw, float *dx);
/* 2x2 stride-2 unpadded max pooling on NCHW planes at least 4 windows wide
 * (cnn_cpu_maxpool_2x2_suits; AVX2; other shapes and CPUs: the reference),
 * mx_maxpool2d_forward's and _backward's results bit for bit; argmax may be
 * NULL in the forward (inference: nothing reads it). The backwards' relu_x,
 * when not NULL, is the pooling's input as a ReLU made it: dx is also the
 * ReLU's backward (0 where relu_x <= 0; the executor skips its own pass). */
int cnn_cpu_maxpool_2x2_suits(const mx_pool2d_desc *d);
void cnn_cpu_maxpool_2x2_forward(const mx_pool2d_desc *d, size_t n, const float *x, float *y, uint32_t *argmax);
void cnn_cpu_maxpool_2x2_backward(const mx_pool2d_desc *d, size_t n, const uint32_t *argmax, const float *relu_x,
                                  const float *dy, float *dx);
void cnn_cpu_gap_backward_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *dy, float *dx);
/* Dropout of a blocked tensor with the reference's draws: element (s, c, p)
 * takes the draw of its NCHW index, and mask is kept in NCHW order. */
void cnn_cpu_dropout_forward_blocked(size_t n, size_t channels, size_t hw, size_t layout, float p, mx_rng *rng, const float *x,
                                     float *y, uint8_t *mask);
void cnn_cpu_dropout_backward_blocked(size_t n, size_t channels, size_t hw, size_t layout, float p, const uint8_t *mask,
                                      const float *dy, float *dx);

#endif
