/* Models: a spec (architecture + shapes), parameters and gradients each one
 * flat float array with a table of named views (so the optimizer, a gradient
 * all-reduce and the checkpoint are each one loop, one call, one write), and a
 * forward/backward pair over buffers planned once for the largest batch. */
#ifndef MIXREG_MODEL_H
#define MIXREG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/optim.h"

#define MX_MAX_HIDDEN 8
#define MX_MAX_NDIM 4
/* BLAS and oneDNN take int dimensions: an input of at most INT_MAX values per
 * sample (2^31 - 1) and as many classes at most. */
#define MX_MODEL_MAX_INPUT ((size_t)2147483647)
#define MX_MODEL_MAX_CLASSES ((size_t)2147483647)

/* Which kernels run a CNN's layers. REF: the reference layers of
 * mixreg/layers.h (plain loops, OpenBLAS sgemm), the oracle. CPU: oneDNN
 * (mixreg/layers_dnnl.h) for convolution, max pooling and the linear layers,
 * and OpenMP + SIMD kernels of its own for batch norm, ReLU and the residual
 * add, with activations kept in oneDNN's blocked layout between them where
 * the channel count allows (docs/backends.md). The two agree to float32
 * rounding (~1e-5 on the logits), not bit for bit; each repeats bit for bit
 * for a fixed thread count. The MLP ignores the choice. A backend is how a
 * model runs, not what it is: a checkpoint written under one loads under the
 * other. CUDA: NVIDIA GPUs (cuDNN, cuBLAS); parsed and refused with one line
 * (built without CUDA, no device visible, or its layer kernels not written
 * yet: docs/backends.md says what exists). */
typedef enum { MX_BACKEND_REF = 0, MX_BACKEND_CPU = 1, MX_BACKEND_CUDA = 2 } mx_backend;

/* The convolutions' arithmetic on the cpu backend. BF16: their inputs
 * (activations, weights, output gradients) are rounded to bfloat16 on the way
 * in, products accumulate in float32, and everything else stays float32 (the
 * master weights and the optimizer, batch norm, the loss): PyTorch's CPU
 * autocast, to ~1e-2 of float32 instead of ~1e-5. Only for CNNs on the cpu
 * backend (mx_model_create refuses other combinations). */
typedef enum { MX_PRECISION_FP32 = 0, MX_PRECISION_BF16 = 1 } mx_precision;

/* "fp32" or "bf16" ("?" for anything else). */
const char *mx_precision_name(mx_precision precision);
/* Parses "fp32" or "bf16"; MX_ERR_ARG naming `what` and the choices otherwise. */
mx_status mx_precision_parse(const char *what, const char *text, mx_precision *out);

/* "ref", "cpu" or "cuda" ("?" for anything else). */
const char *mx_backend_name(mx_backend backend);
/* Parses "ref", "cpu" or "cuda"; MX_ERR_ARG naming `what` and the choices otherwise. */
mx_status mx_backend_parse(const char *what, const char *text, mx_backend *out);
/* MX_OK when models can be made on `backend` on this machine; else
 * MX_ERR_UNSUPPORTED with one line saying why (cuda: built without CUDA, no
 * device visible, or no layer kernels yet). Returns at once; mx_model_create
 * asks it too. */
mx_status mx_backend_available(mx_backend backend);

typedef struct {
    char arch[32];                /* "mlp", "logreg", "lenet5", "resnet20", "wrn-28-10"...: mx_model_arch_names() */
    size_t in_channels, in_height, in_width;
    size_t num_classes;
    size_t num_hidden;            /* mlp only */
    size_t hidden[MX_MAX_HIDDEN];
    mx_backend backend;           /* CNNs only; zero-initialised specs get REF */
    mx_precision precision;       /* CNNs on the cpu backend only; zero-initialised specs get FP32 */
} mx_model_spec;

typedef struct {
    char name[64];                /* PyTorch-style, e.g. "layers.0.weight" */
    size_t offset, numel;         /* into the flat parameter array */
    size_t ndim;
    size_t shape[MX_MAX_NDIM];
} mx_param_info;

/* A model buffer: state that is saved with the parameters but is not one of
 * them (no gradient, no SGD or weight decay): batch norm's running_mean and
 * running_var (F32) and num_batches_tracked (I64, a 0-dimensional tensor), under
 * their PyTorch state_dict names, e.g. "L.3.b1.running_mean"; with WideResNet
 * dropout also the dropout generator's state, "mixreg.rng.dropout" (I64 [11]). */
typedef enum { MX_BUFFER_F32, MX_BUFFER_I64 } mx_buffer_dtype;

typedef struct {
    char name[64];
    mx_buffer_dtype dtype;
    void *data;                   /* float * or int64_t *, owned by the model */
    size_t numel, ndim;           /* ndim 0: a scalar (numel 1) */
    size_t shape[MX_MAX_NDIM];
} mx_buffer_info;

typedef struct mx_model mx_model;

/* Comma-separated names of every architecture, for help and error messages. */
const char *mx_model_arch_names(void);
/* 1 if arch names an architecture this build has. */
int mx_model_arch_known(const char *arch);

/* Parses "512,512" into spec->hidden; MX_ERR_ARG on an empty list, zero or junk. */
mx_status mx_model_spec_set_hidden(mx_model_spec *spec, const char *list);

/* Checks the spec (known arch, shapes that fit) and plans every buffer for
 * training batches of up to max_batch samples (mx_model_plan with
 * MX_MODEL_TRAIN). max_batch 0: the parameters and buffers alone (what a
 * checkpoint holds), no activation buffers: mx_model_plan before running it
 * (forward, predict and backward abort until then). Sizes are computed with
 * overflow checks: an input of more than MX_MODEL_MAX_INPUT values per sample,
 * more than MX_MODEL_MAX_CLASSES classes or a batch whose buffers overflow
 * size_t is MX_ERR_ARG before anything large is allocated. */
mx_status mx_model_create(const mx_model_spec *spec, size_t max_batch, mx_model **out);
/* The same, refusing (MX_ERR_FORMAT) a model of more than max_values parameters
 * and buffer values in all before allocating them: a checkpoint passes how
 * many its file can hold, so a crafted spec cannot ask for more memory than
 * the file's own size. */
mx_status mx_model_create_bounded(const mx_model_spec *spec, size_t max_batch, size_t max_values, mx_model **out);
void mx_model_free(mx_model *model);

/* What a model's activation buffers are planned for. TRAIN: forward and
 * backward (every tensor a backward reads kept, the gradient slots).
 * PREDICT: mx_model_predict only, nothing kept for a backward (tensors share
 * buffers by forward liveness; on the cpu backend the networks that predict
 * in chunks of CNN_PREDICT_CHUNK hold one chunk's activations): resnet20 at
 * 224x224 needs 15 MiB a sample where training keeps 72 MiB. */
typedef enum { MX_MODEL_TRAIN = 0, MX_MODEL_PREDICT = 1 } mx_model_use;

/* Replaces the model's activation buffers (and the cpu backend's plans) by
 * ones for batches of up to max_batch samples (>= 1) for `use`; parameters
 * and buffers are kept. On failure the model is left without activation
 * buffers (max batch 0). A PREDICT model refuses mx_model_forward and
 * mx_model_backward (they abort). */
mx_status mx_model_plan(mx_model *model, size_t max_batch, mx_model_use use);
/* Bytes of activation buffers mx_model_plan(model, batch, use) would
 * allocate (measured, nothing allocated; SIZE_MAX if it would overflow).
 * Outside them: the parameters, the cpu backend's oneDNN scratch (the
 * plans' own, made at first use for each batch size) and the caller's input
 * and output. */
size_t mx_model_plan_bytes(const mx_model *model, size_t batch, mx_model_use use);
/* The largest batch b <= want (at least 1) for which mx_model_plan_bytes(b)
 * plus b * caller_per_sample bytes (the caller's own per-sample buffers: its
 * input batch...) stays within budget bytes. */
size_t mx_model_fit_batch(const mx_model *model, size_t want, mx_model_use use, size_t caller_per_sample,
                          size_t budget);
/* The memory budget of inference (eval, predict, analyze): bytes of
 * activation buffers plus the caller's per-sample buffers, from
 * $MIXREG_INFERENCE_MEMORY (bytes) when set, else MX_INFERENCE_MEMORY_DEFAULT
 * or a quarter of physical memory if that is less. MX_ERR_ARG when the
 * variable is not a whole number of bytes in [1 MiB, 2^48]. */
#define MX_INFERENCE_MEMORY_DEFAULT ((size_t)512 << 20)
mx_status mx_model_inference_budget(size_t *bytes);

const mx_model_spec *mx_model_get_spec(const mx_model *model);
size_t mx_model_input_size(const mx_model *model);
size_t mx_model_max_batch(const mx_model *model);
size_t mx_model_param_count(const mx_model *model);
size_t mx_model_param_tensors(const mx_model *model, const mx_param_info **table);
float *mx_model_params(mx_model *model);
float *mx_model_grads(mx_model *model);
/* The buffers (none for the MLP), in a table owned by the model. */
size_t mx_model_buffer_tensors(const mx_model *model, const mx_buffer_info **table);

/* Training (1, the state after mx_model_create) or evaluation (0) mode, as
 * PyTorch's module.train()/eval(): a training forward normalises with the batch
 * statistics and updates the running ones (and draws dropout masks); an eval
 * forward uses the running statistics and changes nothing, so each sample's
 * logits are independent of the rest of the batch. Backward follows the mode
 * its forward ran in. The MLP has no mode-dependent layer and ignores it. */
void mx_model_set_training(mx_model *model, int training);
int mx_model_is_training(const mx_model *model);

/* Copies parameters and buffers from src, a model of the same spec (e.g. the
 * same network planned for another batch size); MX_ERR_ARG if they differ. */
mx_status mx_model_copy_state(mx_model *dst, const mx_model *src);

/* PyTorch's default initialisation for each layer, drawn from the seed's
 * MX_STREAM_INIT stream; buffers reset (running mean 0, variance 1, count 0). */
void mx_model_init_params(mx_model *model, uint64_t seed);

/* Logits (n x num_classes) in a buffer owned by the model, valid until the next
 * forward. Keeps what backward needs. n <= max_batch; a TRAIN model only. The
 * backward reads x again (the first layer's weights' gradient; on the cpu
 * backend a CNN's first convolution's output is made again from it), so x
 * must stay as it was until the backward of this forward. */
const float *mx_model_forward(mx_model *model, const float *x, size_t n);

/* Floating-point operations of one sample's forward: 2 per multiply-add of
 * the convolutions and dense layers (the rest is a few percent); a training
 * step costs about 3 times that per sample (forward, backward data, backward
 * weights). */
double mx_model_forward_flops(const mx_model *model);

/* Floating-point operations per sample, counted layer by layer (2 per
 * multiply-add of the convolutions' and dense layers' matrix products; batch
 * norm, ReLU, pooling, the loss and the optimiser, a few percent, are not
 * counted). forward: one evaluation (or training forward) pass, the same
 * as mx_model_forward_flops. train_step: a training step's forward,
 * backward weights and backward data, the last for every layer but those
 * reading the network's input (whose gradient a step does not form): just
 * under 3 x forward. */
typedef struct {
    double forward;
    double train_step;
} mx_model_flops;
mx_model_flops mx_model_count_flops(const mx_model *model);

/* Eval-mode logits (whatever the mode; it is left as it was) for inference
 * only: nothing is kept for a backward, which must not follow (it aborts).
 * On the cpu backend a convolution absorbs the batch norm after it (folded
 * into its weights and bias, as PyTorch's fuse_conv_bn_eval), the residual
 * add and the ReLU after that (oneDNN post-ops), so the logits are the eval
 * forward's up to float32 rounding (1e-5 relative), not bit for bit.
 * Evaluation (mx_predict_logits) runs on it. n <= max_batch; a TRAIN or
 * PREDICT model. */
const float *mx_model_predict(mx_model *model, const float *x, size_t n);
/* With hold 1 the caller promises that the parameters and buffers stay as
 * they are until mx_model_hold_weights(model, 0): no training step, no load
 * or mx_model_copy_state into it, no write through mx_model_params. Until
 * then mx_model_predict prepares the inference weights (the batch norms
 * folded, the Winograd transforms) on its first call and reuses them on the
 * next, where it would otherwise prepare them on every call (resnet50 at
 * 224x224: 2% of an evaluation batch; BENCHMARKS.md). A forward, backward
 * or replan of the model drops what it prepared, held or not. Holds nest:
 * the weights are held until every hold is released. Evaluation
 * (mx_evaluate, mx_evaluate_logits) holds them for its whole pass. */
void mx_model_hold_weights(mx_model *model, int hold);

/* Gradients of the loss w.r.t. every parameter, given d loss / d logits of the
 * last forward; overwrites the gradient array (no separate zero-grad step).
 * One backward per forward: a network's backward reuses the memory of the
 * activations it has read for gradients (a second one aborts, as does a
 * backward after mx_model_predict). */
void mx_model_backward(mx_model *model, const float *dlogits, size_t n);

/* mx_model_backward, then mx_sgd_step(cfg, lr, params, grads, velocity) over
 * every parameter, bit for bit the same parameters and velocity, but each
 * layer's parameters stepped as soon as its gradients are known, from a
 * buffer the size of the largest layer's: the gradient array is left as it
 * was, never written, so its memory is never touched (preact18 at batch
 * 128: 43 MiB of peak RSS fewer). For a single process (a data-parallel
 * step sums the gradients over processes first). */
void mx_model_backward_sgd(mx_model *model, const float *dlogits, size_t n, const mx_sgd_config *cfg, double lr,
                           float *velocity);

/* d loss / d input (n x input size) for the last forward, given d loss / d logits:
 * a vector-Jacobian product through the whole network. Also overwrites the
 * parameter gradients. Used by the Jacobian and Lipschitz analysis. One per
 * forward, as mx_model_backward. */
void mx_model_backward_input(mx_model *model, const float *dlogits, size_t n, float *dx);

/* Sync batch norm for data-parallel training: reduce(ctx, sums, count) must
 * replace sums[0..count) by their sums over every process of the job (or stop
 * the job: a batch norm cannot fail). With it set, every training forward
 * normalises with the statistics of all processes' samples together and its
 * backward uses their gradient sums, so N processes with batches b_1..b_N
 * compute what one process computes on their concatenation; gamma's and
 * beta's gradients stay this process's share (summed with the rest of the
 * gradient). NULL turns it off. MX_ERR_ARG on the ref backend (its layers
 * have no such form); a model without batch norm accepts and ignores it. */
typedef void (*mx_bn_reduce_fn)(void *ctx, double *sums, size_t count);
mx_status mx_model_set_bn_sync(mx_model *model, mx_bn_reduce_fn reduce, void *ctx);

/* A process with no samples in a step still takes part in every exchange of
 * a sync batch norm's forward (backward 0) or backward (1), in the same
 * order, with zeros: call this instead of that forward or backward. Nothing
 * without sync batch norm. */
void mx_model_bn_sync_idle(mx_model *model, int backward);

/* Soft-target cross-entropy averaged over the batch:
 * loss = -(1/n) sum_i sum_c y[i,c] log_softmax(logits[i])[c].
 * Writes dlogits = (softmax(logits) - y) / n when dlogits is not NULL. */
double mx_softmax_xent(const float *logits, const float *targets, size_t n, size_t num_classes,
                       float *dlogits);

/* The same for n rows of a batch of `batch` samples split over processes:
 * their share of the batch's mean, -(1/batch) sum over the n rows, and
 * dlogits = (softmax - y) / batch, so the shares of all processes add up to
 * the whole batch's loss and gradient. batch == n is mx_softmax_xent. */
double mx_softmax_xent_share(const float *logits, const float *targets, size_t n, size_t batch, size_t num_classes,
                             float *dlogits);

#endif
