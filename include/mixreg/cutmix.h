/* CutMix (Yun et al. 2019) as timm implements it, and timm's switch between
 * CutMix and Mixup, on one batch of normalised float NCHW images. The call
 * mirrors mx_mixup_batch and shares its config (mode, partner, label
 * smoothing, the input/label ablations), so the trainer can call either. */
#ifndef MIXREG_CUTMIX_H
#define MIXREG_CUTMIX_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/mixup.h"
#include "mixreg/rng.h"

typedef struct {
    double alpha;        /* CutMix's Beta(alpha, alpha); 0 = no CutMix */
    double switch_prob;  /* with Mixup also on (mixup alpha > 0): the probability that a batch (pair, row in
                            pair/elem mode) uses CutMix rather than Mixup (timm switch_prob, default 0.5) */
    double prob;         /* the probability that a batch (pair, row) is mixed at all (timm mixup_prob, default 1) */
    int correct_lambda;  /* after clipping the box, lambda = 1 - box area / image area (timm correct_lam,
                            default 1); 0 keeps the drawn lambda for the labels */
    double minmax_lo, minmax_hi; /* timm's cutmix_minmax: 0 <= lo < hi <= 1 draws the box's sides (a share
                            of the image's) instead of lambda, which is then the box's area share; CutMix is
                            on whatever alpha is. Both 0 (the default): off */
} mx_cutmix_config;

/* A pasted region: rows [y0, y1) and columns [x0, x1); empty when y0 == y1 or x0 == x1. */
typedef struct {
    uint32_t y0, y1, x0, x1;
} mx_box;

/* What happened to a row. */
typedef enum { MX_MIXED_NONE = 0, MX_MIXED_MIXUP, MX_MIXED_CUTMIX } mx_mixed_kind;

/* Workspace for n samples (allocated by the caller, as for mx_mixup_workspace). */
typedef struct {
    uint32_t *partner;  /* n: the row each row mixes with */
    double *lambda;     /* n: the weight of row i's own label (corrected for CutMix rows); the input
                           blend converts it to float, the targets use it as it is */
    mx_box *box;        /* n: the region row i took from its partner (empty unless CutMix) */
    uint8_t *kind;      /* n: an mx_mixed_kind */
} mx_cutmix_workspace;

/* CutMix off (alpha 0, no minmax), switch_prob 0.5, prob 1, correct_lambda 1. */
mx_cutmix_config mx_cutmix_config_default(void);

/* Whether CutMix can occur: alpha > 0 or a minmax range given. */
int mx_cutmix_on(const mx_cutmix_config *cut);

/* mx_mixup_config_validate(mix), then MX_ERR_ARG naming the bad field:
 * alpha negative, NaN or > 1e6; switch_prob or prob outside [0, 1]; a
 * minmax range not 0 <= lo < hi <= 1 (both 0 is off). */
mx_status mx_cutmix_config_validate(const mx_cutmix_config *cut, const mx_mixup_config *mix);

/* timm's rand_bbox for a given centre (cy, cx) in [0, height) x [0, width):
 * cut = floor(size * sqrt(1 - lambda)) per side, the box
 * [c - cut/2, c + cut/2) (integer halves) clipped to the image. lambda is
 * clamped to [0, 1]. */
mx_box mx_cutmix_box_at(double lambda, size_t height, size_t width, size_t cy, size_t cx);

/* The same with the centre drawn uniformly from rng (row, then column). */
mx_box mx_cutmix_rand_box(mx_rng *rng, double lambda, size_t height, size_t width);

/* timm's rand_bbox_minmax: height and width drawn uniformly from the integers
 * [floor(lo size), floor(hi size)) (that one value when the range is empty),
 * then the top-left corner uniformly where the whole box fits (rows: height -
 * cut choices); draws height, width, row, column in that order. */
mx_box mx_cutmix_rand_box_minmax(mx_rng *rng, double lo, double hi, size_t height, size_t width);

/* 1 - area(box) / (height * width): the share of the image the sample keeps. */
double mx_cutmix_box_lambda(mx_box box, size_t height, size_t width);

/* Mixes one batch (x_in: n x channels x height x width, normalised; labels:
 * n class ids in [0, num_classes)) into x_out (may not alias x_in) and y_out
 * (n x num_classes soft targets, rows summing to 1):
 *   - decide whether to mix (a uniform draw < cut->prob, drawn only when
 *     prob < 1), then CutMix or Mixup (a uniform draw < switch_prob, drawn
 *     only when both alphas are > 0; otherwise whichever is on);
 *   - Mixup rows are mx_mixup_batch's blend (theta_form applies);
 *   - CutMix rows: lambda ~ Beta(cut->alpha, cut->alpha) (never theta-folded),
 *     a box of side ratio sqrt(1 - lambda) around a uniform centre (with a
 *     minmax range: no lambda draw, mx_cutmix_rand_box_minmax), row i's box
 *     replaced by partner(i)'s pixels (all channels), lambda corrected to
 *     1 - box area / image area, targets lambda * own + (1 - lambda) * partner's
 *     (smoothed as in mixup).
 * mix->mode sets the granularity: batch = one decision, lambda and box for
 * the batch; pair = one per pair (both members take each other's pixels in
 * the same box; an unpaired sample stays whole); elem = one per row. Partners
 * follow mix->partner exactly as in mx_mixup_batch. Draw order: partners,
 * then per batch/pair/row [prob draw] [switch draw] lambda [box centre].
 * With CutMix off and (mix->alpha == 0 or cut->prob == 1) this is
 * exactly mx_mixup_batch(mix, ...), random draws included. mix_inputs = 0
 * leaves x_out = x_in; mix_labels = 0 gives own-label targets. */
void mx_cutmix_batch(const mx_mixup_config *mix, const mx_cutmix_config *cut, mx_rng *rng, const float *x_in,
                     const int32_t *labels, size_t n, size_t channels, size_t height, size_t width,
                     size_t num_classes, float *x_out, float *y_out, mx_cutmix_workspace *ws);

/* mx_cutmix_batch in two halves, for a batch split over processes: the plan
 * (every random draw, for all n rows, into ws: partner, lambda, box, kind)
 * needs no data, so each process draws the whole batch's and they agree; the
 * rows are then written for any range of it. */
void mx_cutmix_plan(const mx_mixup_config *mix, const mx_cutmix_config *cut, mx_rng *rng, size_t n, size_t height,
                    size_t width, mx_cutmix_workspace *ws);

/* Rows first..first+count of the planned batch into x_out and y_out (row k
 * of each is batch row first + k). Batch row i's own input and label are
 * row slot[i] of x_in and labels, its partner's row slot[partner[i]]
 * (slot NULL: row i itself), so x_in need hold only the rows this range
 * reads. */
void mx_cutmix_apply(const mx_mixup_config *mix, const mx_cutmix_workspace *ws, size_t first, size_t count,
                     const float *x_in, const int32_t *labels, const uint32_t *slot, size_t channels, size_t height,
                     size_t width, size_t num_classes, float *x_out, float *y_out);

#endif
