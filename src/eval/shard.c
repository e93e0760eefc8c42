/* Evaluation sharded over the ranks of a job (mixreg/eval_shard.h): each rank
 * runs the batches of its shard exactly as mx_evaluate_logits runs them
 * (same batch cuts, same calls), rank 0 gathers the logits in sample order. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/dist.h"
#include "mixreg/eval_shard.h"
#include "mixreg/evaluate.h"

void mx_eval_shard(size_t n, size_t batch, int rank, int size, size_t *start, size_t *count)
{
    if (batch == 0) batch = 1;
    size_t batches = n / batch + (n % batch != 0), first, taken;
    mx_dist_split(batches, rank, size, &first, &taken);
    size_t lo = first * batch, hi = (first + taken) * batch;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    *start = lo;
    *count = hi - lo;
}

mx_status mx_eval_agree(mx_status st)
{
    if (mx_dist_size() == 1) return st;
    int failed = st != MX_OK;
    mx_status agreed = mx_dist_allreduce_max_int(&failed, 1);
    if (agreed != MX_OK) return st != MX_OK ? st : agreed;
    if (st == MX_OK && failed) return mx_error_set(MX_ERR_IO, "evaluation: another process of the job failed");
    return st;
}

mx_status mx_eval_gather_records(const void *send, size_t count, size_t record_bytes, void *recv, size_t recv_cap)
{
    if (record_bytes == 0 || record_bytes % sizeof(int32_t))
        return mx_error_set(MX_ERR_ARG, "gather: records of %zu bytes (a multiple of 4 needed)", record_bytes);
    /* Sent as int32 words: MPI moves them untouched, so doubles arrive with
     * every bit (the ranks of one job share the byte order). */
    size_t words = record_bytes / sizeof(int32_t), total = 0;
    mx_status st = mx_dist_gather_int((const int32_t *)send, count * words, (int32_t *)recv,
                                      mx_dist_is_root() ? recv_cap * words : 0, &total);
    if (st == MX_OK && mx_dist_is_root() && total % words)
        st = mx_error_set(MX_ERR_FORMAT, "gather: %zu words are not whole records of %zu", total, words);
    return st;
}

/* The same checks and messages as mx_evaluate, before any rank starts. */
static mx_status check_fits(mx_model *model, const mx_dataset *ds)
{
    const mx_model_spec *spec = mx_model_get_spec(model);
    if (ds->channels * ds->height * ds->width != mx_model_input_size(model))
        return mx_error_set(MX_ERR_ARG, "data is %zux%zux%zu but the model expects %zux%zux%zu", ds->channels, ds->height,
                            ds->width, spec->in_channels, spec->in_height, spec->in_width);
    if (ds->num_classes > spec->num_classes)
        return mx_error_set(MX_ERR_ARG, "data has %zu classes but the model predicts %zu", ds->num_classes,
                            spec->num_classes);
    return MX_OK;
}

/* The batch every rank cuts the samples at: the smallest of the ranks'
 * models' batches. In `mixreg eval` every rank plans the same batch, so this
 * is the one a single process uses and the logits are its logits bit for
 * bit. In training a rank's model is planned for its slice of the global
 * batch, and an uneven split gives ranks different batches (43, 43, 42 of
 * 128 over 3): the shards must still be cut at one size on every rank, or
 * two ranks would evaluate the same samples and others none. */
static mx_status agreed_batch(mx_model *model, size_t *batch)
{
    size_t mine = mx_model_max_batch(model);
    int negated = mine > (size_t)INT_MAX ? -INT_MAX : -(int)mine; /* the minimum as a maximum */
    mx_status st = mx_dist_allreduce_max_int(&negated, 1);
    if (st == MX_OK) *batch = (size_t)-negated;
    return st;
}

/* The logits of samples [start, start + count) in batches of `batch` cut
 * from sample 0: plain (stats NULL) into `plain` and rescaled into
 * `rescaled`, either may be NULL; labels too. */
static mx_status shard_logits(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                              const mx_rescale_stats *stats, size_t batch, size_t start, size_t count, float *plain,
                              float *rescaled, int32_t *labels, const mx_eval_progress *progress)
{
    size_t dim = mx_model_input_size(model), classes = mx_model_get_spec(model)->num_classes;
    mx_model_set_training(model, 0);
    float *x = malloc(batch * dim * sizeof(float)), *scratch = malloc(batch * dim * sizeof(float));
    uint32_t *index = malloc(batch * sizeof(uint32_t));
    mx_status st = (x && scratch && index) ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory for evaluation");
    /* This shard's share of the way, as samples of the whole. */
    const double scale = count ? (double)ds->n / (double)count : 0;
    if (st == MX_OK && progress) progress->report(progress->ctx, 0, ds->n);
    mx_model_hold_weights(model, 1);
    for (size_t done = 0; st == MX_OK && done < count; done += batch) {
        size_t n = count - done < batch ? count - done : batch;
        if (done && progress) progress->report(progress->ctx, (size_t)((double)done * scale), ds->n);
        for (size_t i = 0; i < n; i++) index[i] = (uint32_t)(start + done + i);
        if ((st = mx_dataset_gather(ds, nz, index, n, x, labels + done)) != MX_OK) break;
        if (plain) mx_predict_logits(model, NULL, x, n, scratch, plain + done * classes);
        if (rescaled) mx_predict_logits(model, stats, x, n, scratch, rescaled + done * classes);
    }
    mx_model_hold_weights(model, 0);
    if (st == MX_OK && progress) progress->report(progress->ctx, ds->n, ds->n);
    free(x);
    free(scratch);
    free(index);
    return st;
}

/* This rank's shard: its logits (one array per non-NULL request) and labels,
 * computed, then every rank's gathered in sample order into rank 0's full
 * arrays. want_plain / want_rescaled pick the predictions. */
static mx_status sharded_logits(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                                const mx_rescale_stats *stats, int want_plain, int want_rescaled, float *plain_all,
                                float *rescaled_all, int32_t *labels_all, const mx_eval_progress *progress)
{
    size_t classes = mx_model_get_spec(model)->num_classes, start, count, batch = 0;
    mx_status st = agreed_batch(model, &batch);
    if (st != MX_OK) return st;
    mx_eval_shard(ds->n, batch, mx_dist_rank(), mx_dist_size(), &start, &count);
    float *plain = want_plain ? malloc(count * classes * sizeof(float) + 1) : NULL;
    float *rescaled = want_rescaled ? malloc(count * classes * sizeof(float) + 1) : NULL;
    int32_t *labels = malloc(count * sizeof(int32_t) + 1);
    st = ((plain || !want_plain) && (rescaled || !want_rescaled) && labels)
             ? MX_OK
             : mx_error_set(MX_ERR_NOMEM, "out of memory for %zu samples' logits", count);
    if (st == MX_OK) st = shard_logits(model, ds, nz, stats, batch, start, count, plain, rescaled, labels, progress);
    st = mx_eval_agree(st);
    const int root = mx_dist_is_root();
    const size_t cap = root ? ds->n * classes : 0;
    if (st == MX_OK && want_plain) st = mx_dist_gather_float(plain, count * classes, plain_all, cap, NULL);
    if (st == MX_OK && want_rescaled) st = mx_dist_gather_float(rescaled, count * classes, rescaled_all, cap, NULL);
    if (st == MX_OK) st = mx_dist_gather_int(labels, count, labels_all, root ? ds->n : 0, NULL);
    free(plain);
    free(rescaled);
    free(labels);
    return st;
}

mx_status mx_evaluate_logits_sharded(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                                     const mx_rescale_stats *stats, float *logits, int32_t *labels)
{
    if (mx_dist_size() == 1) return mx_evaluate_logits(model, ds, nz, stats, logits, labels);
    mx_status st = check_fits(model, ds);
    if (st != MX_OK) return st;
    return stats ? sharded_logits(model, ds, nz, stats, 0, 1, NULL, logits, labels, NULL)
                 : sharded_logits(model, ds, nz, NULL, 1, 0, logits, NULL, labels, NULL);
}

/* Rank 0's metrics from the gathered logits, as mx_evaluate accumulates them
 * (sums in sample order: adding all at once is adding batch by batch). */
static mx_status metrics_of(const float *logits, const int32_t *labels, size_t n, size_t classes, size_t bins,
                            mx_metrics *out)
{
    mx_metrics_acc acc;
    mx_status st = mx_metrics_init(&acc, bins, classes);
    if (st == MX_OK) st = mx_metrics_reserve(&acc, n);
    if (st == MX_OK) {
        mx_metrics_add_logits(&acc, logits, labels, n);
        mx_metrics_finish(&acc, out);
    }
    mx_metrics_free(&acc);
    return st;
}

mx_status mx_evaluate_sharded(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                              const mx_rescale_stats *stats, size_t bins, mx_metrics *plain, mx_metrics *rescaled)
{
    return mx_evaluate_sharded_reporting(model, ds, nz, stats, bins, plain, rescaled, NULL);
}

mx_status mx_evaluate_sharded_reporting(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz,
                                        const mx_rescale_stats *stats, size_t bins, mx_metrics *plain,
                                        mx_metrics *rescaled, const mx_eval_progress *progress)
{
    if (mx_dist_size() == 1) return mx_evaluate_reporting(model, ds, nz, stats, bins, plain, rescaled, progress);
    mx_status st = check_fits(model, ds);
    if (st == MX_OK && rescaled && !stats) st = mx_error_set(MX_ERR_ARG, "rescaled evaluation needs rescale statistics");
    if (st != MX_OK) return st;
    const size_t classes = mx_model_get_spec(model)->num_classes;
    const int root = mx_dist_is_root();
    float *plain_all = NULL, *rescaled_all = NULL;
    int32_t *labels_all = NULL;
    if (root) {
        plain_all = plain ? malloc(ds->n * classes * sizeof(float) + 1) : NULL;
        rescaled_all = rescaled ? malloc(ds->n * classes * sizeof(float) + 1) : NULL;
        labels_all = malloc(ds->n * sizeof(int32_t) + 1);
        if ((plain && !plain_all) || (rescaled && !rescaled_all) || !labels_all)
            st = mx_error_set(MX_ERR_NOMEM, "out of memory for %zu samples' logits", ds->n);
    }
    st = mx_eval_agree(st);
    if (st == MX_OK)
        st = sharded_logits(model, ds, nz, stats, plain != NULL, rescaled != NULL, plain_all, rescaled_all, labels_all,
                            progress);
    if (st == MX_OK && root && plain) st = metrics_of(plain_all, labels_all, ds->n, classes, bins, plain);
    if (st == MX_OK && root && rescaled) st = metrics_of(rescaled_all, labels_all, ds->n, classes, bins, rescaled);
    free(plain_all);
    free(rescaled_all);
    free(labels_all);
    st = mx_eval_agree(st);
    if (st == MX_OK && plain) st = mx_dist_broadcast(plain, sizeof *plain);
    if (st == MX_OK && rescaled) st = mx_dist_broadcast(rescaled, sizeof *rescaled);
    return st;
}
