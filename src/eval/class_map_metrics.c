/* Metrics on a dataset whose classes map onto the model's (ObjectNet on an
 * ImageNet model): the model's probabilities are pooled per dataset class,
 * and accuracy follows the ObjectNet protocol. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/class_map_metrics.h"
#include "mixreg/evaluate.h"

/* log sum_{m in map[d]} exp(logits[m]), in double with the max subtracted. */
static float pooled_logit(const mx_class_map *map, size_t d, const float *logits)
{
    double top = -INFINITY, sum = 0;
    for (size_t k = map->first[d]; k < map->first[d + 1]; k++)
        if (logits[map->model_class[k]] > top) top = logits[map->model_class[k]];
    for (size_t k = map->first[d]; k < map->first[d + 1]; k++) sum += exp(logits[map->model_class[k]] - top);
    return (float)(top + log(sum));
}

/* 1 if one of the 5 highest-scoring mapped model classes belongs to `label`
 * (ties to the lower index, as for the arg-max). */
static int top5_correct(const mx_class_map *map, const float *logits, int32_t label, const unsigned char *mapped)
{
    int32_t chosen[5];
    size_t count = 0;
    for (; count < 5; count++) {
        int32_t best = -1;
        for (size_t m = 0; m < map->num_model_classes; m++) {
            if (!mapped[m]) continue;
            int taken = 0;
            for (size_t c = 0; c < count; c++) taken |= chosen[c] == (int32_t)m;
            if (!taken && (best < 0 || logits[m] > logits[best])) best = (int32_t)m;
        }
        if (best < 0) break;
        chosen[count] = best;
    }
    for (size_t c = 0; c < count; c++)
        if (mx_class_map_correct(map, label, chosen[c])) return 1;
    return 0;
}

mx_status mx_metrics_class_mapped(const mx_class_map *map, const float *logits, const int32_t *labels, size_t n,
                                  size_t bins, mx_metrics *out, double *rel_conf, double *rel_acc, size_t *rel_count)
{
    size_t dataset_classes = map->num_dataset_classes, model_classes = map->num_model_classes;
    /* The mapped dataset classes, renumbered 0..D'-1; the model classes any of them uses. */
    int32_t *compact = malloc(dataset_classes * sizeof(int32_t) + 1);
    unsigned char *mapped = calloc(model_classes + 1, 1);
    size_t classes = 0, scored = 0;
    for (size_t d = 0; compact && d < dataset_classes; d++) {
        compact[d] = map->first[d + 1] > map->first[d] ? (int32_t)classes++ : -1;
        for (size_t k = map->first[d]; mapped && k < map->first[d + 1]; k++) mapped[map->model_class[k]] = 1;
    }
    float *pooled = malloc(n * (classes ? classes : 1) * sizeof(float) + 1);
    int32_t *pooled_labels = malloc(n * sizeof(int32_t) + 1);
    mx_status st = compact && mapped && pooled && pooled_labels ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory");
    size_t correct = 0, correct5 = 0;
    for (size_t i = 0; st == MX_OK && i < n; i++) {
        if (labels[i] < 0 || (size_t)labels[i] >= dataset_classes || compact[labels[i]] < 0) continue;
        const float *row = logits + i * model_classes;
        for (size_t d = 0; d < dataset_classes; d++)
            if (compact[d] >= 0) pooled[scored * classes + (size_t)compact[d]] = pooled_logit(map, d, row);
        pooled_labels[scored] = compact[labels[i]];
        correct += mx_class_map_correct(map, labels[i], mx_class_map_predict(map, row));
        correct5 += top5_correct(map, row, labels[i], mapped);
        scored++;
    }
    if (st == MX_OK && scored == 0) st = mx_error_set(MX_ERR_ARG, "class map: no sample belongs to a mapped class");
    if (st == MX_OK)
        st = mx_metrics_from_logits(pooled, pooled_labels, scored, classes, bins, out, rel_conf, rel_acc, rel_count);
    if (st == MX_OK) {
        out->accuracy = (double)correct / (double)scored;
        out->top5 = classes > 5 ? (double)correct5 / (double)scored : -1;
    }
    free(compact);
    free(mapped);
    free(pooled);
    free(pooled_labels);
    return st;
}
