#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mixreg/evaluate.h"

typedef struct {
    float *x, *scratch, *logits;
    uint32_t *index;
    int32_t *labels;
    mx_metrics_acc plain, rescaled;
} eval_buffers;

static void free_buffers(eval_buffers *b)
{
    free(b->x);
    free(b->scratch);
    free(b->logits);
    free(b->index);
    free(b->labels);
    mx_metrics_free(&b->plain);
    mx_metrics_free(&b->rescaled);
}

size_t mx_evaluate_bytes_per_sample(const mx_model *model)
{
    /* x and scratch (the rescaled input), the logits, an index and a label. */
    return (2 * mx_model_input_size(model) + mx_model_get_spec(model)->num_classes) * sizeof(float) +
           sizeof(uint32_t) + sizeof(int32_t);
}

mx_status mx_evaluate_plan(mx_model *model, size_t batch)
{
    size_t budget;
    mx_status st = mx_model_inference_budget(&budget);
    if (st != MX_OK) return st;
    size_t fit = mx_model_fit_batch(model, batch, MX_MODEL_PREDICT, mx_evaluate_bytes_per_sample(model), budget);
    st = mx_model_plan(model, fit, MX_MODEL_PREDICT);
    return st == MX_OK ? MX_OK : mx_error_wrap(st, "planning evaluation in batches of %zu", fit);
}

/* Evaluation batches of the model's max batch: a model without buffers has none. */
static mx_status check_planned(const mx_model *model)
{
    if (mx_model_max_batch(model)) return MX_OK;
    return mx_error_set(MX_ERR_ARG, "evaluation: the model has no buffers planned (mx_evaluate_plan)");
}

mx_status mx_evaluate(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz, const mx_rescale_stats *stats,
                      size_t bins, mx_metrics *plain, mx_metrics *rescaled)
{
    return mx_evaluate_reporting(model, ds, nz, stats, bins, plain, rescaled, NULL);
}

mx_status mx_evaluate_reporting(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                                const mx_rescale_stats *stats, size_t bins, mx_metrics *plain, mx_metrics *rescaled,
                                const mx_eval_progress *progress)
{
    const mx_model_spec *spec = mx_model_get_spec(model);
    size_t dim = mx_model_input_size(model), classes = spec->num_classes, batch = mx_model_max_batch(model);
    if (ds->channels * ds->height * ds->width != dim)
        return mx_error_set(MX_ERR_ARG, "data is %zux%zux%zu but the model expects %zux%zux%zu", ds->channels, ds->height,
                            ds->width, spec->in_channels, spec->in_height, spec->in_width);
    if (ds->num_classes > classes)
        return mx_error_set(MX_ERR_ARG, "data has %zu classes but the model predicts %zu", ds->num_classes, classes);
    if (rescaled && !stats) return mx_error_set(MX_ERR_ARG, "rescaled evaluation needs rescale statistics");
    if (check_planned(model) != MX_OK) return MX_ERR_ARG;
    mx_model_set_training(model, 0);
    eval_buffers b = {0};
    b.x = malloc(batch * dim * sizeof(float));
    b.scratch = malloc(batch * dim * sizeof(float));
    b.logits = malloc(batch * classes * sizeof(float));
    b.index = malloc(batch * sizeof(uint32_t));
    b.labels = malloc(batch * sizeof(int32_t));
    mx_status st = (b.x && b.scratch && b.logits && b.index && b.labels) ? MX_OK
                                                                      : mx_error_set(MX_ERR_NOMEM, "out of memory for evaluation");
    if (st == MX_OK) st = mx_metrics_init(&b.plain, bins, classes);
    if (st == MX_OK) st = mx_metrics_init(&b.rescaled, bins, classes);
    if (st == MX_OK) st = mx_metrics_reserve(&b.plain, plain ? ds->n : 0);
    if (st == MX_OK) st = mx_metrics_reserve(&b.rescaled, rescaled ? ds->n : 0);
    if (st == MX_OK && progress) progress->report(progress->ctx, 0, ds->n);
    mx_model_hold_weights(model, 1); /* the inference weights prepared once for every batch */
    for (size_t start = 0; st == MX_OK && start < ds->n; start += batch) {
        size_t n = ds->n - start < batch ? ds->n - start : batch;
        if (start && progress) progress->report(progress->ctx, start, ds->n);
        for (size_t i = 0; i < n; i++) b.index[i] = (uint32_t)(start + i);
        if ((st = mx_dataset_gather(ds, nz, b.index, n, b.x, b.labels)) != MX_OK) break;
        if (plain) {
            mx_predict_logits(model, NULL, b.x, n, b.scratch, b.logits);
            mx_metrics_add_logits(&b.plain, b.logits, b.labels, n);
        }
        if (rescaled) {
            mx_predict_logits(model, stats, b.x, n, b.scratch, b.logits);
            mx_metrics_add_logits(&b.rescaled, b.logits, b.labels, n);
        }
    }
    mx_model_hold_weights(model, 0);
    if (st == MX_OK && progress) progress->report(progress->ctx, ds->n, ds->n);
    if (st == MX_OK && plain) mx_metrics_finish(&b.plain, plain);
    if (st == MX_OK && rescaled) mx_metrics_finish(&b.rescaled, rescaled);
    free_buffers(&b);
    return st;
}

void mx_metrics_format_json(const mx_metrics *m, char *buf, size_t cap)
{
    char top5[48] = "", adaptive[48] = "null";
    if (m->top5 >= 0) snprintf(top5, sizeof top5, "\"top5\": %.6f, ", m->top5);
    if (isfinite(m->ece_adaptive)) snprintf(adaptive, sizeof adaptive, "%.6f", m->ece_adaptive);
    snprintf(buf, cap,
             "{\"accuracy\": %.6f, %s\"nll\": %.6f, \"ece\": %.6f, \"ece_adaptive\": %s, \"mce\": %.6f, \"brier\": %.6f, "
             "\"n\": %zu}",
             m->accuracy, top5, m->nll, m->ece, adaptive, m->mce, m->brier, m->n);
}

mx_status mx_evaluate_logits(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                             const mx_rescale_stats *stats, float *logits, int32_t *labels)
{
    size_t dim = mx_model_input_size(model), classes = mx_model_get_spec(model)->num_classes;
    size_t batch = mx_model_max_batch(model);
    if (ds->channels * ds->height * ds->width != dim || ds->num_classes > classes)
        return mx_error_set(MX_ERR_ARG, "data does not fit the model (%zux%zux%zu, %zu classes)", ds->channels, ds->height,
                            ds->width, ds->num_classes);
    if (check_planned(model) != MX_OK) return MX_ERR_ARG;
    mx_model_set_training(model, 0);
    float *x = malloc(batch * dim * sizeof(float)), *scratch = malloc(batch * dim * sizeof(float));
    uint32_t *index = malloc(batch * sizeof(uint32_t));
    mx_status st = (x && scratch && index) ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory for evaluation");
    mx_model_hold_weights(model, 1);
    for (size_t start = 0; st == MX_OK && start < ds->n; start += batch) {
        size_t n = ds->n - start < batch ? ds->n - start : batch;
        for (size_t i = 0; i < n; i++) index[i] = (uint32_t)(start + i);
        if ((st = mx_dataset_gather(ds, nz, index, n, x, labels + start)) != MX_OK) break;
        mx_predict_logits(model, stats, x, n, scratch, logits + start * classes);
    }
    mx_model_hold_weights(model, 0);
    free(x);
    free(scratch);
    free(index);
    return st;
}

/* One pass of an accumulator over whole arrays, of logits (is_probs 0) or probabilities. */
static mx_status metrics_from_scores(const float *scores, int is_probs, const int32_t *labels, size_t n,
                                     size_t num_classes, size_t bins, mx_metrics *out, double *rel_conf,
                                     double *rel_acc, size_t *rel_count)
{
    mx_metrics_acc acc;
    mx_status st = mx_metrics_init(&acc, bins, num_classes);
    if (st == MX_OK) st = mx_metrics_reserve(&acc, n);
    if (st == MX_OK) {
        if (is_probs) mx_metrics_add_probs(&acc, scores, labels, n);
        else mx_metrics_add_logits(&acc, scores, labels, n);
        mx_metrics_finish(&acc, out);
        if (rel_conf || rel_acc || rel_count) mx_metrics_reliability(&acc, rel_conf, rel_acc, rel_count);
    }
    mx_metrics_free(&acc);
    return st;
}

mx_status mx_metrics_from_logits(const float *logits, const int32_t *labels, size_t n, size_t num_classes,
                                 size_t bins, mx_metrics *out, double *rel_conf, double *rel_acc, size_t *rel_count)
{
    return metrics_from_scores(logits, 0, labels, n, num_classes, bins, out, rel_conf, rel_acc, rel_count);
}

mx_status mx_metrics_from_probs(const float *probs, const int32_t *labels, size_t n, size_t num_classes, size_t bins,
                                mx_metrics *out, double *rel_conf, double *rel_acc, size_t *rel_count)
{
    return metrics_from_scores(probs, 1, labels, n, num_classes, bins, out, rel_conf, rel_acc, rel_count);
}
