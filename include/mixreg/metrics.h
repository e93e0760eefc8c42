/* Classification metrics as the calibration literature computes them
 * (method.md section 6): accuracy, NLL, ECE and MCE over equal-width bins
 * (lo, hi] of the top-label confidence, and the Brier score. Streaming: add
 * batches, then finish. */
#ifndef MIXREG_METRICS_H
#define MIXREG_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

#define MX_DEFAULT_ECE_BINS 15

typedef struct {
    size_t n;
    double accuracy;  /* fraction in [0, 1] */
    double nll;       /* mean -log p(label) */
    double ece;       /* sum_b (|b|/n) |acc(b) - conf(b)| */
    double mce;       /* max over non-empty bins of |acc(b) - conf(b)| */
    double brier;     /* mean over samples of sum_c (p_c - onehot_c)^2 */
} mx_metrics;

typedef struct {
    size_t bins, num_classes;
    size_t n, correct;
    double nll_sum, brier_sum;
    double *bin_conf;   /* sum of confidences per bin */
    double *bin_correct;
    size_t *bin_count;
} mx_metrics_acc;

/* Bin of a top-label confidence: bins are (lo, hi] with lo = b/B, hi = (b+1)/B,
 * except that confidence 0 (and anything below) lands in bin 0 and 1 (and
 * anything above) in bin B-1. */
size_t mx_ece_bin(double confidence, size_t bins);

mx_status mx_metrics_init(mx_metrics_acc *acc, size_t bins, size_t num_classes);
void mx_metrics_free(mx_metrics_acc *acc);

/* Adds n samples given logits (n x num_classes): softmax is taken in double
 * with the max subtracted, NLL from the log-softmax (so it stays finite). */
void mx_metrics_add_logits(mx_metrics_acc *acc, const float *logits, const int32_t *labels, size_t n);

/* Adds n samples given probabilities (rows summing to 1). NLL uses
 * -log(max(p, 1e-12)) so a confident mistake costs 27.6 instead of infinity. */
void mx_metrics_add_probs(mx_metrics_acc *acc, const float *probs, const int32_t *labels, size_t n);

/* Ties in the arg-max go to the lowest class index. */
void mx_metrics_finish(const mx_metrics_acc *acc, mx_metrics *out);

#endif
