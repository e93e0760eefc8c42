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
#include "mixreg/loader.h"
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
    mx_cutmix_workspace mix_ws;   /* global_batch entries: the plan of the whole batch */
    /* data-parallel steps (mx_stepper_step_share) */
    size_t global_batch;          /* the largest batch of all processes together */
    float *rows;                  /* this process's rows, then the partner rows it loads (2 x batch rows) */
    int32_t *row_labels;
    uint32_t *slot;               /* global_batch: batch row -> row of `rows` (UINT32_MAX: not here) */
    uint32_t *load_idx;           /* dataset indices of the partner rows to load */
    mx_arena arena;               /* owns every buffer above */
    double last_accuracy;         /* the last step's fraction of samples whose arg-max logit is the
                                     mixed target's dominant class */
} mx_stepper;

mx_status mx_stepper_init(mx_stepper *s, mx_model *model, const mx_normalizer *nz, const mx_mixup_config *mixup,
                          const mx_sgd_config *sgd);
/* The same for one process of a data-parallel job whose batches hold up to
 * global_batch samples in all (the model's max batch is this process's
 * largest share). */
mx_status mx_stepper_init_shared(mx_stepper *s, mx_model *model, const mx_normalizer *nz, const mx_mixup_config *mixup,
                                 const mx_sgd_config *sgd, size_t global_batch);
void mx_stepper_free(mx_stepper *s);

/* From now on the steps mix nothing (Mixup and CutMix off, no draws): the
 * epochs after --mixup-off-epoch. */
void mx_stepper_stop_mixing(mx_stepper *s);

/* Trains on samples idx[0..n) of ds (n <= the model's max batch) with learning
 * rate lr; returns the batch loss before the update. A non-finite loss is
 * returned without touching the parameters; NaN too when a streamed sample
 * fails to decode (the error message then says which). */
double mx_stepper_step(mx_stepper *s, const mx_dataset *ds, const uint32_t *idx, size_t n, mx_rng *mix_rng,
                       double lr);

/* The same on a batch already gathered (normalised inputs x, n x dim, and
 * their labels), e.g. by the loader's workers. */
double mx_stepper_step_batch(mx_stepper *s, const float *x, const int32_t *labels, size_t n, mx_rng *mix_rng, double lr);

/* One process's share of a global batch (mx_loader_batch), and how to load
 * the partner rows it mixes with that lie in other processes' shares. */
typedef struct {
    const float *x;               /* rows first..first+n of the batch, normalised and augmented */
    const int32_t *labels;
    size_t n, first, total;
    const uint32_t *indices;      /* the whole batch's dataset indices (total) */
    mx_batch_fill_fn fill;        /* loads rows as the loader does (same augmentation draws) */
    void *fill_ctx;
    uint64_t epoch;
} mx_step_share;

typedef struct {
    double loss;                  /* the whole batch's mean loss (every process's share added) */
    double accuracy;              /* over the whole batch */
    int stop;                     /* some process asked to stop after this step */
} mx_step_result;

/* A data-parallel training step, taken by every process of the job together
 * (with one process it is exactly mx_stepper_step_batch):
 *   - every process draws the plan of the whole batch from mix_rng (the same
 *     draws one process makes, so mix_rng stays the same everywhere),
 *     loads the partner rows of its share that lie elsewhere and mixes its
 *     own rows;
 *   - forward on its rows, its share of the batch's mean loss; the loss and
 *     the accuracy are added over the processes;
 *   - backward, the gradients added over the processes (one all-reduce of
 *     the flat gradient array, mx_dist_allreduce_sum_float), then the same
 *     SGD step everywhere.
 * failed: this process could not make its share (its message is set); every
 * process then returns an error without updating. stop_request: this
 * process was asked to stop; out->stop says whether any was. A non-finite
 * loss is returned in out->loss (MX_OK) without an update, on every process
 * alike. Errors: a failed share (here or elsewhere), a collective that failed
 * (another process died). */
mx_status mx_stepper_step_share(mx_stepper *s, const mx_step_share *share, int failed, int stop_request,
                                mx_rng *mix_rng, double lr, mx_step_result *out);

#endif
