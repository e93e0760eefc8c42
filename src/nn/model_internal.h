/* What every architecture provides behind mx_model (the public API dispatches
 * through these, so a CNN or a GPU backend slots in without touching callers). */
#ifndef MIXREG_NN_MODEL_INTERNAL_H
#define MIXREG_NN_MODEL_INTERNAL_H

#include "mixreg/model.h"

typedef struct {
    void (*init_params)(mx_model *model, uint64_t seed);
    const float *(*forward)(mx_model *model, const float *x, size_t n);
    /* Eval-mode logits with nothing kept for a backward; NULL: forward in eval mode. */
    const float *(*predict)(mx_model *model, const float *x, size_t n);
    /* dx may be NULL (parameter gradients only). */
    void (*backward)(mx_model *model, const float *dlogits, size_t n, float *dx);
    void (*destroy)(mx_model *model);
    /* Multiply-adds x 2 of one sample's forward; NULL: 2 x every 2-D weight's size (dense layers). */
    double (*forward_flops)(const mx_model *model);
    /* (Re)plans the activation buffers for model->max_batch and model->predict_only
     * (mx_model_plan set them; it clears both on failure). */
    mx_status (*plan)(mx_model *model);
    /* What plan would allocate for that batch and use (mx_model_plan_bytes). */
    size_t (*plan_bytes)(const mx_model *model, size_t batch, int predict_only);
    /* Sync batch norm (mx_model_set_bn_sync, mx_model_bn_sync_idle); NULL: no batch norm. */
    mx_status (*set_bn_sync)(mx_model *model, mx_bn_reduce_fn reduce, void *ctx);
    void (*bn_sync_idle)(mx_model *model, int backward);
    /* mx_model_backward_sgd; NULL: the backward, then the step over every parameter. */
    void (*backward_sgd)(mx_model *model, const float *dlogits, size_t n, const mx_sgd_config *cfg, double lr,
                         float *velocity);
} mx_model_ops;

struct mx_model {
    const mx_model_ops *ops;
    mx_model_spec spec;
    size_t max_batch;             /* 0: no activation buffers planned */
    int predict_only;             /* planned for MX_MODEL_PREDICT */
    size_t param_count;
    float *params;
    float *grads;
    size_t num_tensors, tensor_cap;
    mx_param_info *tensors;
    size_t num_buffers, buffer_cap;
    mx_buffer_info *buffers;      /* data pointers set by mx_model_alloc_params */
    float *buffer_f32;            /* storage of the F32 buffers, then of the I64 ones */
    int64_t *buffer_i64;
    int training;                 /* mx_model_set_training */
    int forward_unread;           /* a forward ran that no backward has used yet (one backward per forward) */
    unsigned weights_held;        /* mx_model_hold_weights' holds not yet released: while any, the parameters
                                     and buffers stay as they are */
    unsigned long state_epoch;    /* bumped whenever the parameters or the activation buffers may have changed
                                     under what a prediction prepared (a forward, a backward, a replan, a first
                                     hold, an unheld prediction): a backend reuses what it prepared in one epoch
                                     only */
    int table_oom;                /* a table could not grow: mx_model_alloc_params fails */
    int size_overflow;            /* a tensor's or the total size overflowed: mx_model_alloc_params fails */
    size_t max_values;            /* mx_model_create_bounded's limit (0: none) */
    void *impl;  /* architecture-private buffers */
};

/* Appends a parameter tensor to the table, laying it out after the previous
 * one; returns its index. */
size_t mx_model_add_tensor(mx_model *model, const char *name, size_t ndim, const size_t *shape);

/* Appends a buffer to the buffer table; returns its index. */
size_t mx_model_add_buffer(mx_model *model, const char *name, mx_buffer_dtype dtype, size_t ndim, const size_t *shape);

/* Allocates params and grads for every tensor added (zero-filled), and the
 * buffers' storage (zero-filled). */
mx_status mx_model_alloc_params(mx_model *model);

mx_status mx_mlp_create(mx_model *model);
/* Every other architecture: the layer graph of src/nn/cnn*.c. */
int mx_cnn_arch_known(const char *arch);
mx_status mx_cnn_create(mx_model *model);

#endif
