/* One training step (gather, mix, forward, loss, backward, SGD update) over
 * buffers allocated once; shared by the training loop and the benchmark so
 * both time exactly the same work. */
#ifndef MIXREG_STEP_H
#define MIXREG_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/arena.h"
#include "mixreg/cutmix.h"
#include "mixreg/data.h"
#include "mixreg/mixup.h"
#include "mixreg/model.h"
#include "mixreg/optim.h"
#include "mixreg/rng.h"

typedef struct {
    mx_model *model;              /* borrowed */
    const mx_normalizer *nz;      /* borrowed */
    mx_mixup_config mixup;
    mx_cutmix_config cutmix;      /* CutMix off unless set after init */
    mx_sgd_config sgd;
    size_t batch, dim, classes;
    float *x, *x_mix, *y_mix, *dlogits, *velocity;
    int32_t *labels;
    mx_cutmix_workspace mix_ws;
    mx_arena arena;               /* owns every buffer above */
    double last_accuracy;         /* the last step's fraction of samples whose arg-max logit is the
                                     mixed target's dominant class */
} mx_stepper;

mx_status mx_stepper_init(mx_stepper *s, mx_model *model, const mx_normalizer *nz, const mx_mixup_config *mixup,
                          const mx_sgd_config *sgd);
void mx_stepper_free(mx_stepper *s);

/* Trains on samples idx[0..n) of ds (n <= the model's max batch) with learning
 * rate lr; returns the batch loss before the update. A non-finite loss is
 * returned without touching the parameters; NaN too when a streamed sample
 * fails to decode (the error message then says which). */
double mx_stepper_step(mx_stepper *s, const mx_dataset *ds, const uint32_t *idx, size_t n, mx_rng *mix_rng,
                       double lr);

/* The same on a batch already gathered (normalised inputs x, n x dim, and
 * their labels), e.g. by the loader's workers. */
double mx_stepper_step_batch(mx_stepper *s, const float *x, const int32_t *labels, size_t n, mx_rng *mix_rng, double lr);

#endif
