/* A trained model as it lives on disk: RUN_DIR/model.safetensors holds the
 * weights and buffers (PyTorch names), the rescale statistics (tensors "mixreg.rescale.x_bar",
 * "mixreg.rescale.y_bar"; theta_bar in the metadata), the input normalisation and
 * the full training config, so `eval` and `predict` need nothing else. */
#ifndef MIXREG_RUN_H
#define MIXREG_RUN_H

#include "mixreg/data.h"
#include "mixreg/error.h"
#include "mixreg/model.h"
#include "mixreg/rescale.h"
#include "mixreg/rng.h"
#include "mixreg/config.h"

#define MX_RUN_MODEL_FILE "model.safetensors"

typedef struct {
    mx_train_config config;
    mx_model *model;
    mx_normalizer normalizer;
    mx_rescale_stats rescale;
    size_t epoch;   /* epochs completed when saved */
    size_t step;    /* optimisation steps completed when saved */
    /* The model's class names in label order (one per class: a model trained
     * on an image folder, metadata "mixreg.classes"), or NULL (other data, or
     * a checkpoint written before names were kept). Owned: mx_run_free frees
     * them. */
    char **class_names;
    /* Training state, saved when momentum is not NULL and restored by
     * mx_run_load when the file has it (has_train_state): enough to resume
     * bit-identically. */
    int has_train_state;
    float *momentum;          /* SGD momentum, one per parameter, tensors "mixreg.optim.momentum.<name>" */
    mx_rng mix_rng;           /* the mixing stream of the epoch in progress, "mixreg.rng.mixup" */
    double epoch_loss_sum;    /* loss summed over the epoch's steps so far (for its mean) */
    double best_score;        /* best validation accuracy so far, -1 if none */
} mx_run;

/* Writes RUN_DIR/model.safetensors atomically. */
mx_status mx_run_save(const char *dir, const mx_run *run);
/* Writes the same content to any path, atomically. */
mx_status mx_run_save_file(const char *path, const mx_run *run);

/* Loads a run directory; the model is created for batches of up to max_batch. */
mx_status mx_run_load(const char *dir, size_t max_batch, mx_run *run);
void mx_run_free(mx_run *run);

#endif
