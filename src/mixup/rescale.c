#include <stdlib.h>
#include <string.h>

#include "data/stream.h"
#include "mixreg/rescale.h"

mx_status mx_rescale_stats_alloc(mx_rescale_stats *stats, size_t input_size, size_t num_classes)
{
    memset(stats, 0, sizeof *stats);
    stats->theta_bar = 1.0;
    stats->input_size = input_size;
    stats->num_classes = num_classes;
    stats->x_bar = calloc(input_size, sizeof(float));
    stats->y_bar = calloc(num_classes, sizeof(float));
    if (!stats->x_bar || !stats->y_bar) {
        mx_rescale_stats_free(stats);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for rescale statistics");
    }
    return MX_OK;
}

void mx_rescale_stats_free(mx_rescale_stats *stats)
{
    free(stats->x_bar);
    free(stats->y_bar);
    stats->x_bar = stats->y_bar = NULL;
}

mx_status mx_rescale_stats_compute(mx_rescale_stats *stats, const mx_dataset *train, const mx_normalizer *nz,
                                   double theta_bar)
{
    mx_augment_config none = mx_augment_config_none();
    return mx_rescale_stats_compute_augmented(stats, train, nz, theta_bar, &none, 0, 0);
}

mx_status mx_rescale_stats_compute_augmented(mx_rescale_stats *stats, const mx_dataset *train, const mx_normalizer *nz,
                                             double theta_bar, const mx_augment_config *augment, uint64_t seed,
                                             uint64_t epoch)
{
    size_t dim = train->channels * train->height * train->width;
    if (dim != stats->input_size || train->num_classes > stats->num_classes)
        return mx_error_set(MX_ERR_ARG, "rescale statistics do not fit the training data's shape");
    if (train->n == 0) return mx_error_set(MX_ERR_ARG, "rescale statistics need a non-empty training set");
    /* Sum the byte counts per coordinate exactly, then map through the
     * normaliser: the mean of an affine map is the map of the mean. Integer
     * sums do not depend on the order, so a streamed set (a subsample,
     * decoded) is summed in parallel, per thread, then added up. */
    const size_t count = mx_dataset_stats_count(train);
    const int streamed = train->stream != NULL;
    const int random = mx_augment_random(augment, train->height, train->width);
    uint64_t *byte_sum = calloc(dim, sizeof *byte_sum);
    if (!byte_sum) return mx_error_set(MX_ERR_NOMEM, "out of memory for rescale statistics");
    mx_first_error fe;
    mx_first_error_init(&fe);
#pragma omp parallel if (streamed)
    {
        uint64_t *mine = streamed ? calloc(dim, sizeof *mine) : byte_sum;
        uint8_t *scratch = streamed ? malloc(dim) : NULL, *image = malloc(dim);
        const int usable = mine && image && (!streamed || scratch);
        if (!usable) mx_first_error_note(&fe, 0, mx_error_set(MX_ERR_NOMEM, "out of memory for rescale statistics"));
#pragma omp for schedule(dynamic, 8)
        for (size_t k = 0; k < count; k++) {
            if (!usable) continue;
            size_t i = mx_dataset_stats_index(train, k);
            const uint8_t *px = image;
            mx_status st = random ? mx_augment_sample(augment, seed, epoch, train, i, scratch, image)
                                  : mx_dataset_sample(train, i, scratch, &px);
            if (st != MX_OK) {
                mx_first_error_note(&fe, k, st);
                continue;
            }
            for (size_t j = 0; j < dim; j++) mine[j] += px[j];
        }
        if (streamed && mine) {
#pragma omp critical(mx_rescale_sum)
            for (size_t j = 0; j < dim; j++) byte_sum[j] += mine[j];
            free(mine);
        }
        free(scratch);
        free(image);
    }
    if (fe.status != MX_OK) {
        free(byte_sum);
        return mx_first_error_raise(&fe);
    }
    size_t plane = train->height * train->width;
    for (size_t k = 0; k < dim; k++) {
        size_t c = k / plane;
        double mean_pixel = (double)byte_sum[k] / (double)count / 255.0;
        stats->x_bar[k] = (float)((mean_pixel - nz->mean[c]) / nz->std[c]);
    }
    free(byte_sum);
    memset(stats->y_bar, 0, stats->num_classes * sizeof(float));
    for (size_t i = 0; i < train->n; i++) stats->y_bar[train->labels[i]] += 1.0f;
    for (size_t c = 0; c < stats->num_classes; c++) stats->y_bar[c] /= (float)train->n;
    stats->theta_bar = theta_bar;
    return MX_OK;
}

void mx_rescale_inputs(const mx_rescale_stats *stats, const float *x, size_t n, float *out)
{
    const float theta = (float)stats->theta_bar;
    const size_t dim = stats->input_size;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < dim; k++)
            out[i * dim + k] = stats->x_bar[k] + theta * (x[i * dim + k] - stats->x_bar[k]);
}

void mx_rescale_logits(const mx_rescale_stats *stats, float *logits, size_t n)
{
    const double inv_theta = 1.0 / stats->theta_bar;
    const size_t classes = stats->num_classes;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < classes; c++) {
            float *h = &logits[i * classes + c];
            *h = (float)(stats->y_bar[c] + ((double)*h - stats->y_bar[c]) * inv_theta);
        }
}

void mx_predict_logits(mx_model *model, const mx_rescale_stats *stats, const float *x, size_t n, float *scratch,
                       float *logits)
{
    const float *input = x;
    if (stats) {
        mx_rescale_inputs(stats, x, n, scratch);
        input = scratch;
    }
    mx_model_set_training(model, 0);
    const float *out = mx_model_predict(model, input, n);
    size_t classes = mx_model_get_spec(model)->num_classes;
    memcpy(logits, out, n * classes * sizeof(float));
    if (stats) mx_rescale_logits(stats, logits, n);
}
