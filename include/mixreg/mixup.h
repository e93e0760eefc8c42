/* Mixup on one batch (method.md section 1): every variant users know. */
#ifndef MIXREG_MIXUP_H
#define MIXREG_MIXUP_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/rng.h"

typedef enum {
    MX_MIX_BATCH = 0,  /* one lambda for the whole batch (mixup-cifar10, torchvision, timm 'batch') */
    MX_MIX_PAIR,       /* one lambda per pair {i, partner(i)} (timm 'pair'); both members use it */
    MX_MIX_ELEM        /* one lambda per sample (timm 'elem', uncertainty-baselines) */
} mx_mix_mode;

typedef enum {
    MX_PARTNER_PERM = 0, /* a random permutation of the batch (mixup-cifar10) */
    MX_PARTNER_FLIP,     /* the reversed batch: partner(i) = n - 1 - i (timm, uncertainty-baselines) */
    MX_PARTNER_ROLL      /* the batch rolled by one: partner(i) = (i + n - 1) % n (torchvision) */
} mx_partner;

typedef struct {
    double alpha;            /* Beta(alpha, alpha); 0 = plain ERM (no mixing) */
    mx_mix_mode mode;
    mx_partner partner;
    int theta_form;          /* fold lambda to theta = max(lambda, 1 - lambda) (the paper's form) */
    double label_smoothing;  /* applied to the one-hot targets before mixing: (1-e) y + e / C */
    int mix_inputs;          /* 1 normally; 0 for the labels-only ablation */
    int mix_labels;          /* 1 normally; 0 for the inputs-only ablation */
} mx_mixup_config;

/* The defaults: alpha 1, batch mode, perm partner, no theta form, no smoothing, mix both. */
mx_mixup_config mx_mixup_config_default(void);

/* MX_ERR_ARG with a message naming the bad field: negative/NaN alpha, smoothing
 * outside [0, 1), unknown enum, or pair mode with the roll partner (not a pairing). */
mx_status mx_mixup_config_validate(const mx_mixup_config *cfg);

/* Workspace one batch of n samples needs (no allocation inside the training step). */
typedef struct {
    uint32_t *partner;  /* n entries */
    double *lambda;     /* n entries: the weight of sample i itself in row i (double: see mixup.c) */
} mx_mixup_workspace;

/* Partners for a batch of n (batch, pair or elem mode, perm/flip/roll), the
 * draws Mixup and CutMix share: perm is a uniform permutation, or in pair mode
 * a uniform perfect matching (one sample left alone when n is odd). */
void mx_mixup_choose_partners(const mx_mixup_config *cfg, mx_rng *rng, uint32_t *partner, size_t n);

/* The draws of mx_mixup_batch for a batch of n, without the data: ws->partner
 * and ws->lambda as mx_mixup_batch leaves them (partner i and lambda 1 when
 * alpha is 0, drawing nothing). */
void mx_mixup_plan(const mx_mixup_config *cfg, mx_rng *rng, size_t n, mx_mixup_workspace *ws);

/* Mixes one batch. x_in: n x dim inputs (already normalised); labels: n class ids
 * in [0, num_classes). Writes x_out (n x dim, may not alias x_in) and y_out
 * (n x num_classes soft targets, rows sum to 1). Draws from rng only when
 * alpha > 0, so ERM runs consume no mixup randomness. ws->partner and
 * ws->lambda report what was used. In pair mode with the perm partner the
 * pairing is a uniformly random perfect matching (one sample stays unpaired
 * when n is odd and keeps lambda = 1). n >= 1 of any parity works in every mode. */
void mx_mixup_batch(const mx_mixup_config *cfg, mx_rng *rng,
                    const float *x_in, const int32_t *labels, size_t n, size_t dim,
                    size_t num_classes, float *x_out, float *y_out, mx_mixup_workspace *ws);

#endif
