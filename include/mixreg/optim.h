/* SGD with momentum (PyTorch's formulation, optionally Nesterov) and L2 weight
 * decay folded into the gradient (PyTorch's SGD weight_decay, the form the Mixup
 * recipes use), plus learning-rate schedules with linear warm-up. */
#ifndef MIXREG_OPTIM_H
#define MIXREG_OPTIM_H

#include <stddef.h>

#include "mixreg/error.h"

typedef struct {
    double momentum;
    int nesterov;
    double weight_decay;
} mx_sgd_config;

/* One step over a flat parameter array; velocity has the same length and
 * starts at zero (so the first step's buffer equals the gradient, as in PyTorch):
 *   g = grad + wd * p;  v = m v + g;  d = nesterov ? g + m v : v;  p -= lr d. */
void mx_sgd_step(const mx_sgd_config *cfg, double lr, float *params, const float *grads, float *velocity,
                 size_t count);

typedef enum { MX_SCHEDULE_CONSTANT, MX_SCHEDULE_COSINE, MX_SCHEDULE_STEP } mx_schedule_kind;

#define MX_MAX_MILESTONES 16

typedef struct {
    mx_schedule_kind kind;
    double base_lr;
    double warmup_epochs;        /* linear ramp from base_lr / steps to base_lr over this many epochs */
    size_t num_milestones;       /* step: lr x step_gamma at each listed epoch */
    double milestones[MX_MAX_MILESTONES];
    double step_gamma;           /* 0.1 */
    size_t epochs;
    size_t steps_per_epoch;
} mx_schedule;

/* Parses "constant", "cosine" or "step:E1,E2,..." (epochs ascending). */
mx_status mx_schedule_parse(const char *text, mx_schedule *out);

/* Learning rate for global step `step` (0-based). Cosine decays from base_lr
 * to 0 over the steps after warm-up. */
double mx_schedule_lr(const mx_schedule *s, size_t step);

#endif
