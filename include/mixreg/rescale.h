/* The paper's rescaled prediction (method.md section 4): shrink the input
 * towards the training mean by theta_bar, then undo the shrinkage on the logits:
 *   x' = x_bar + theta_bar (x - x_bar);  h = y_bar + (f(x') - y_bar) / theta_bar.
 * x_bar is the per-coordinate mean training input in the network's input space
 * (after normalisation), y_bar the class frequencies, theta_bar = E[max(l, 1-l)]. */
#ifndef MIXREG_RESCALE_H
#define MIXREG_RESCALE_H

#include <stddef.h>

#include "mixreg/augment.h"
#include "mixreg/data.h"
#include "mixreg/error.h"
#include "mixreg/model.h"

typedef struct {
    double theta_bar;     /* 1 for a model trained without mixing: the transformation is then the identity */
    size_t input_size;
    size_t num_classes;
    float *x_bar;         /* input_size */
    float *y_bar;         /* num_classes */
} mx_rescale_stats;

mx_status mx_rescale_stats_alloc(mx_rescale_stats *stats, size_t input_size, size_t num_classes);
void mx_rescale_stats_free(mx_rescale_stats *stats);

/* One pass over the training set without mixing, in the network's input
 * space (x_bar over a streamed set: its evenly spaced subsample of
 * mx_dataset_stats_count samples, decoded in parallel; y_bar over every
 * label). Fails only on a streamed sample's error. */
mx_status mx_rescale_stats_compute(mx_rescale_stats *stats, const mx_dataset *train, const mx_normalizer *nz,
                                   double theta_bar);

/* The same over the training set as augmentation `augment` makes it (draws
 * from seed and epoch, as in training; padding counts as pixel value 0): the
 * paper's reference computes the statistics on the training pipeline without
 * mixing. With no random augmentation this equals mx_rescale_stats_compute. */
mx_status mx_rescale_stats_compute_augmented(mx_rescale_stats *stats, const mx_dataset *train, const mx_normalizer *nz,
                                             double theta_bar, const mx_augment_config *augment, uint64_t seed,
                                             uint64_t epoch);

/* out[i] = x_bar + theta_bar (x[i] - x_bar) for n samples; out may equal x. */
void mx_rescale_inputs(const mx_rescale_stats *stats, const float *x, size_t n, float *out);

/* In place on n x num_classes logits: h = y_bar + (h' - y_bar) / theta_bar. */
void mx_rescale_logits(const mx_rescale_stats *stats, float *logits, size_t n);

/* The whole prediction in one call: logits (n x num_classes) for normalised
 * inputs x, rescaled when stats is not NULL. scratch holds n x input_size
 * floats (unused when stats is NULL). */
void mx_predict_logits(mx_model *model, const mx_rescale_stats *stats, const float *x, size_t n, float *scratch,
                       float *logits);

#endif
