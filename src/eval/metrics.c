/* Streaming classification metrics. Everything is accumulated as sums in
 * double in sample order, so adding a set in several batches gives exactly
 * the same result as adding it at once; the per-sample confidences kept for
 * the adaptive ECE are sorted with the sample order breaking ties, so that
 * holds for it too. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/metrics.h"

#define PROB_FLOOR 1e-12
#define TOP_K 5

/* Upper edge of bin k-1 (= lower edge of bin k), as the double nearest k/B,
 * which is also what a caller writing the literal k/B gets. */
static double bin_edge(size_t k, size_t bins) { return (double)k / (double)bins; }

size_t mx_ece_bin(double confidence, size_t bins)
{
    if (bins == 0) return 0;
    if (!(confidence > 0)) return 0;  /* also NaN: some bin, never out of range */
    if (confidence >= 1) return bins - 1;
    /* ceil(c*B)-1 is right up to the rounding of c*B; then the edges decide,
     * so that a confidence equal to an edge k/B always falls in bin k-1. */
    double scaled = ceil(confidence * (double)bins) - 1.0;
    size_t b = scaled < 0 ? 0 : (scaled > (double)(bins - 1) ? bins - 1 : (size_t)scaled);
    while (b > 0 && confidence <= bin_edge(b, bins)) b--;
    while (b + 1 < bins && confidence > bin_edge(b + 1, bins)) b++;
    return b;
}

mx_status mx_metrics_init(mx_metrics_acc *acc, size_t bins, size_t num_classes)
{
    memset(acc, 0, sizeof *acc);
    if (bins == 0) return mx_error_set(MX_ERR_ARG, "metrics: the number of ECE bins must be at least 1");
    if (num_classes == 0) return mx_error_set(MX_ERR_ARG, "metrics: the number of classes must be at least 1");
    acc->bins = bins;
    acc->num_classes = num_classes;
    acc->bin_conf = calloc(bins, sizeof *acc->bin_conf);
    acc->bin_correct = calloc(bins, sizeof *acc->bin_correct);
    acc->bin_count = calloc(bins, sizeof *acc->bin_count);
    if (!acc->bin_conf || !acc->bin_correct || !acc->bin_count) {
        mx_metrics_free(acc);
        return mx_error_set(MX_ERR_NOMEM, "metrics: out of memory for %zu bins", bins);
    }
    return MX_OK;
}

void mx_metrics_free(mx_metrics_acc *acc)
{
    free(acc->bin_conf);
    free(acc->bin_correct);
    free(acc->bin_count);
    free(acc->sample_conf);
    free(acc->sample_correct);
    memset(acc, 0, sizeof *acc);
}

/* Grows the per-sample arrays to hold at least `total` samples. */
static int grow_samples(mx_metrics_acc *acc, size_t total)
{
    if (total <= acc->sample_cap) return 1;
    if (total > SIZE_MAX / sizeof *acc->sample_conf) return 0;
    double *conf = realloc(acc->sample_conf, total * sizeof *conf);
    if (!conf) return 0;
    acc->sample_conf = conf;
    unsigned char *correct = realloc(acc->sample_correct, total * sizeof *correct);
    if (!correct) return 0;
    acc->sample_correct = correct;
    acc->sample_cap = total;
    return 1;
}

mx_status mx_metrics_reserve(mx_metrics_acc *acc, size_t total)
{
    if (!grow_samples(acc, total))
        return mx_error_set(MX_ERR_NOMEM, "metrics: out of memory for %zu per-sample confidences", total);
    return MX_OK;
}

static int label_in_range(const mx_metrics_acc *acc, int32_t label)
{
    return label >= 0 && (size_t)label < acc->num_classes;
}

/* Records one sample's prediction, confidence, NLL, Brier term and whether
 * the label is in the top 5. */
static void add_sample(mx_metrics_acc *acc, size_t predicted, double confidence, int32_t label, double nll,
                       double brier, int in_top5)
{
    int correct = label_in_range(acc, label) && predicted == (size_t)label;
    size_t b = mx_ece_bin(confidence, acc->bins);
    if (!acc->sample_oom && acc->n == acc->sample_cap) {
        size_t want = acc->sample_cap < 1024 ? 1024 : acc->sample_cap * 2;
        if (!grow_samples(acc, want)) acc->sample_oom = 1;
    }
    if (!acc->sample_oom) {
        acc->sample_conf[acc->n] = confidence;
        acc->sample_correct[acc->n] = (unsigned char)correct;
    }
    acc->n++;
    acc->correct += (size_t)correct;
    acc->top5_correct += (size_t)(in_top5 != 0);
    acc->nll_sum += nll;
    acc->brier_sum += brier;
    acc->bin_conf[b] += confidence;
    acc->bin_correct[b] += correct;
    acc->bin_count[b]++;
}

/* First index of the largest value: strict '>' leaves ties with the lowest. */
static size_t argmax_float(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t c = 1; c < n; c++)
        if (v[c] > v[best]) best = c;
    return best;
}

/* Whether class `label` is among the TOP_K highest of v[0..n), ranking ties
 * to the lower index as the arg-max does: its rank is the number of classes
 * scoring higher plus the lower-indexed ones scoring the same. */
static int in_top_k(const float *v, size_t n, int32_t label)
{
    if (label < 0 || (size_t)label >= n) return 0;
    float s = v[label];
    size_t rank = 0;
    for (size_t c = 0; c < n && rank < TOP_K; c++)
        if (v[c] > s || (v[c] == s && c < (size_t)label)) rank++;
    return rank < TOP_K;
}

/* A label outside [0, num_classes) is treated as a class the model gives
 * probability 0: a mistake with the floor NLL and a Brier term of 1. */
void mx_metrics_add_probs(mx_metrics_acc *acc, const float *probs, const int32_t *labels, size_t n)
{
    const size_t classes = acc->num_classes;
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * classes;
        int32_t label = labels[i];
        int in_range = label_in_range(acc, label);
        double brier = in_range ? 0.0 : 1.0;
        for (size_t c = 0; c < classes; c++) {
            double d = (double)p[c] - (in_range && c == (size_t)label ? 1.0 : 0.0);
            brier += d * d;
        }
        double p_label = in_range ? (double)p[label] : 0.0;
        double nll = -log(p_label > PROB_FLOOR ? p_label : PROB_FLOOR);
        size_t predicted = argmax_float(p, classes);
        add_sample(acc, predicted, (double)p[predicted], label, nll, brier, in_top_k(p, classes, label));
    }
}

/* Softmax in double with the max subtracted: exp never overflows, the top
 * class's term is exp(0) = 1, and NLL = log-sum-exp - logit stays finite
 * however confident the model is. */
void mx_metrics_add_logits(mx_metrics_acc *acc, const float *logits, const int32_t *labels, size_t n)
{
    const size_t classes = acc->num_classes;
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * classes;
        int32_t label = labels[i];
        int in_range = label_in_range(acc, label);
        size_t predicted = argmax_float(z, classes);
        double top = z[predicted], sum = 0.0;
        for (size_t c = 0; c < classes; c++) sum += exp((double)z[c] - top);
        double log_sum = log(sum);
        double brier = in_range ? 0.0 : 1.0;
        for (size_t c = 0; c < classes; c++) {
            double p = exp((double)z[c] - top - log_sum);
            double d = p - (in_range && c == (size_t)label ? 1.0 : 0.0);
            brier += d * d;
        }
        double nll = in_range ? top + log_sum - (double)z[label] : -log(PROB_FLOOR);
        add_sample(acc, predicted, 1.0 / sum, label, nll, brier, in_top_k(z, classes, label));
    }
}

typedef struct {
    double conf;
    size_t index;
} ranked_sample;

/* Ascending confidence, NaN first, equal confidences in sample order: a
 * total order, so the sort's result does not depend on qsort's algorithm. */
static int compare_ranked(const void *pa, const void *pb)
{
    const ranked_sample *a = pa, *b = pb;
    int na = isnan(a->conf), nb = isnan(b->conf);
    if (na != nb) return na ? -1 : 1;
    if (!na && a->conf != b->conf) return a->conf < b->conf ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index ? 1 : 0);
}

/* Equal-mass ECE: group b holds the sorted samples [floor(b n/B), floor((b+1) n/B)). */
static double adaptive_ece(const mx_metrics_acc *acc)
{
    size_t n = acc->n, bins = acc->bins;
    if (acc->sample_oom || !acc->sample_conf) return NAN;
    ranked_sample *order = malloc(n * sizeof *order);
    if (!order) return NAN;
    for (size_t i = 0; i < n; i++) order[i] = (ranked_sample){acc->sample_conf[i], i};
    qsort(order, n, sizeof *order, compare_ranked);
    double ece = 0.0;
    size_t start = 0;
    for (size_t b = 0; b < bins; b++) {
        /* (b+1) n / B without overflowing: n = q B + r. */
        size_t q = n / bins, r = n % bins;
        size_t end = (b + 1) * q + ((b + 1) * r) / bins;
        double conf_sum = 0.0, correct_sum = 0.0;
        for (size_t i = start; i < end; i++) {
            conf_sum += order[i].conf;
            correct_sum += acc->sample_correct[order[i].index];
        }
        ece += fabs(correct_sum - conf_sum);
        start = end;
    }
    free(order);
    return ece / (double)n;
}

void mx_metrics_finish(const mx_metrics_acc *acc, mx_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->n = acc->n;
    out->top5 = acc->num_classes <= TOP_K ? -1.0 : 0.0;
    /* No samples: every metric is reported as 0 rather than 0/0 (top-5 as
     * -1 all the same when it is not meaningful). */
    if (acc->n == 0) return;
    double n = (double)acc->n;
    out->accuracy = (double)acc->correct / n;
    if (acc->num_classes > TOP_K) out->top5 = (double)acc->top5_correct / n;
    out->ece_adaptive = adaptive_ece(acc);
    out->nll = acc->nll_sum / n;
    out->brier = acc->brier_sum / n;
    for (size_t b = 0; b < acc->bins; b++) {
        if (acc->bin_count[b] == 0) continue;
        /* (|b|/n) |acc(b) - conf(b)| = |correct(b) - sum conf(b)| / n */
        double gap_sum = fabs(acc->bin_correct[b] - acc->bin_conf[b]);
        out->ece += gap_sum / n;
        double gap = gap_sum / (double)acc->bin_count[b];
        if (gap > out->mce) out->mce = gap;
    }
}

void mx_metrics_reliability(const mx_metrics_acc *acc, double *conf, double *accuracy, size_t *count)
{
    for (size_t b = 0; b < acc->bins; b++) {
        size_t k = acc->bin_count[b];
        if (conf) conf[b] = k ? acc->bin_conf[b] / (double)k : ((double)b + 0.5) / (double)acc->bins;
        if (accuracy) accuracy[b] = k ? acc->bin_correct[b] / (double)k : 0.0;
        if (count) count[b] = k;
    }
}
