/* What every architecture provides behind mx_model (the public API dispatches
 * through these, so a CNN or a GPU backend slots in without touching callers). */
#ifndef MIXREG_NN_MODEL_INTERNAL_H
#define MIXREG_NN_MODEL_INTERNAL_H

#include "mixreg/model.h"

typedef struct {
    void (*init_params)(mx_model *model, uint64_t seed);
    const float *(*forward)(mx_model *model, const float *x, size_t n);
    /* dx may be NULL (parameter gradients only). */
    void (*backward)(mx_model *model, const float *dlogits, size_t n, float *dx);
    void (*destroy)(mx_model *model);
} mx_model_ops;

struct mx_model {
    const mx_model_ops *ops;
    mx_model_spec spec;
    size_t max_batch;
    size_t param_count;
    float *params;
    float *grads;
    size_t num_tensors;
    mx_param_info tensors[2 * (MX_MAX_HIDDEN + 1)];
    void *impl;  /* architecture-private buffers */
};

/* Appends a parameter tensor to the table, laying it out after the previous one. */
void mx_model_add_tensor(mx_model *model, const char *name, size_t ndim, const size_t *shape);

/* Allocates params and grads for every tensor added (zero-filled). */
mx_status mx_model_alloc_params(mx_model *model);

mx_status mx_mlp_create(mx_model *model);

#endif
