/* Classification metrics as the calibration literature computes them
 * (method.md section 6): accuracy, top-5 accuracy, NLL, ECE and MCE over
 * equal-width bins (lo, hi] of the top-label confidence, the adaptive
 * (equal-mass) ECE, and the Brier score; per-bin reliability data for
 * plotting. Streaming: add batches, then finish. */
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
    double top5;      /* fraction whose label is among the 5 highest scores
                       * (ties to the lower class index, as for the arg-max);
                       * -1 when num_classes <= 5, where it is trivially 1:
                       * callers skip a negative value */
    double ece_adaptive; /* equal-mass ECE: samples sorted by confidence (ties
                          * in sample order) and cut into `bins` groups of
                          * floor((b+1)n/B) - floor(bn/B) samples; then
                          * sum_b (|b|/n) |acc(b) - conf(b)| over non-empty
                          * groups. NaN if memory for the sort ran out. */
} mx_metrics;

typedef struct {
    size_t bins, num_classes;
    size_t n, correct;
    double nll_sum, brier_sum;
    double *bin_conf;   /* sum of confidences per bin */
    double *bin_correct;
    size_t *bin_count;
    size_t top5_correct;
    /* Per-sample top-label confidence and correctness, in the order added,
     * for the adaptive ECE (growing arrays; evaluation-sized). */
    double *sample_conf;
    unsigned char *sample_correct;
    size_t sample_cap;
    int sample_oom;     /* an allocation failed: ece_adaptive is NaN */
} mx_metrics_acc;

/* Bin of a top-label confidence: bins are (lo, hi] with lo = b/B, hi = (b+1)/B,
 * except that confidence 0 (and anything below) lands in bin 0 and 1 (and
 * anything above) in bin B-1. */
size_t mx_ece_bin(double confidence, size_t bins);

mx_status mx_metrics_init(mx_metrics_acc *acc, size_t bins, size_t num_classes);
void mx_metrics_free(mx_metrics_acc *acc);

/* Makes room for `total` samples in all (so that adding them allocates
 * nothing): optional, MX_ERR_NOMEM if that much memory is not there. Without
 * it the per-sample arrays grow as samples are added, and a failed growth
 * only makes ece_adaptive NaN. */
mx_status mx_metrics_reserve(mx_metrics_acc *acc, size_t total);

/* Adds n samples given logits (n x num_classes): softmax is taken in double
 * with the max subtracted, NLL from the log-softmax (so it stays finite). */
void mx_metrics_add_logits(mx_metrics_acc *acc, const float *logits, const int32_t *labels, size_t n);

/* Adds n samples given probabilities (rows summing to 1). NLL uses
 * -log(max(p, 1e-12)) so a confident mistake costs 27.6 instead of infinity. */
void mx_metrics_add_probs(mx_metrics_acc *acc, const float *probs, const int32_t *labels, size_t n);

/* Ties in the arg-max go to the lowest class index. */
void mx_metrics_finish(const mx_metrics_acc *acc, mx_metrics *out);

/* The reliability diagram's data, per equal-width bin b < acc->bins (the same
 * bins as the ECE): conf[b] the mean top-label confidence, accuracy[b] the
 * fraction correct, count[b] the number of samples. An empty bin reports
 * count 0, accuracy 0 and its centre (b + 0.5)/B as the confidence. Each
 * array has acc->bins entries; any of them may be NULL. */
void mx_metrics_reliability(const mx_metrics_acc *acc, double *conf, double *accuracy, size_t *count);

#endif
