/* Evaluating a model on a dataset, plain and with the paper's rescaled
 * prediction, in one pass over the data. */
#ifndef MIXREG_EVALUATE_H
#define MIXREG_EVALUATE_H

#include "mixreg/data.h"
#include "mixreg/metrics.h"
#include "mixreg/model.h"
#include "mixreg/rescale.h"

/* Told how far an evaluation has gone: report(ctx, 0, total) before the
 * first batch, then after each batch with the samples done so far (a shard's
 * progress scaled to the whole, sharded). For a progress line; called on the
 * evaluating thread. */
typedef struct {
    void (*report)(void *ctx, size_t done, size_t total);
    void *ctx;
} mx_eval_progress;

/* mx_evaluate with progress reports (progress NULL: none). */
mx_status mx_evaluate_reporting(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                                const mx_rescale_stats *stats, size_t bins, mx_metrics *plain, mx_metrics *rescaled,
                                const mx_eval_progress *progress);

/* Fills *plain when plain is not NULL and *rescaled (using stats) when
 * rescaled is not NULL. Batches of the model's max batch size (a model
 * without buffers: MX_ERR_ARG). */
mx_status mx_evaluate(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz, const mx_rescale_stats *stats,
                      size_t bins, mx_metrics *plain, mx_metrics *rescaled);

#endif

/* Logits for every sample of ds (ds->n x num_classes, caller-allocated) and
 * the labels (ds->n), rescaled when stats is not NULL. */
mx_status mx_evaluate_logits(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                             const mx_rescale_stats *stats, float *logits, int32_t *labels);

/* Plans a model (e.g. mx_run_load's with max batch 0) for evaluation and
 * prediction: MX_MODEL_PREDICT buffers (nothing kept for a backward) for
 * batches of up to `batch` samples, fewer when the inference memory budget
 * (mx_model_inference_budget) holds fewer: the activation buffers plus the
 * evaluation's own per-sample buffers (the input batch twice: normalised and
 * rescaled, mx_evaluate_bytes_per_sample) stay within it, so evaluation
 * needs a bounded amount of memory whatever `batch` says (the data set and
 * the per-sample results aside). */
mx_status mx_evaluate_plan(mx_model *model, size_t batch);
/* The bytes mx_evaluate and mx_evaluate_logits keep per sample of a batch. */
size_t mx_evaluate_bytes_per_sample(const mx_model *model);

/* Metrics from logits already computed (bins equal-width bins); reliability
 * arrays (bins entries each) are filled when not NULL. */
mx_status mx_metrics_from_logits(const float *logits, const int32_t *labels, size_t n, size_t num_classes,
                                 size_t bins, mx_metrics *out, double *rel_conf, double *rel_acc, size_t *rel_count);
/* The same from probabilities already computed (rows summing to 1, as
 * mx_metrics_add_probs takes them): for callers that hold predictions rather
 * than logits (a predictions file, another framework's softmax output). */
mx_status mx_metrics_from_probs(const float *probs, const int32_t *labels, size_t n, size_t num_classes, size_t bins,
                                mx_metrics *out, double *rel_conf, double *rel_acc, size_t *rel_count);

#ifndef MIXREG_EVALUATE_JSON
#define MIXREG_EVALUATE_JSON
/* {"accuracy": ..., "nll": ..., "ece": ..., "mce": ..., "brier": ..., "n": ...} */
void mx_metrics_format_json(const mx_metrics *m, char *buf, size_t cap);
#endif
