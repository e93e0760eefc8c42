/* Evaluation through a class map (folder.h): a dataset whose classes are a
 * subset, or a merging, of the model's (ObjectNet's 113 classes on an
 * ImageNet model). Only samples of mapped dataset classes are scored.
 * - accuracy by the ObjectNet protocol: the arg-max over the model classes
 *   some dataset class maps to must be one of the sample's class's (top-5:
 *   one of the 5 highest such classes);
 * - NLL, ECE, MCE, Brier and the reliability data from the model's
 *   probabilities pooled per dataset class, p(d) = sum over map[d] of
 *   softmax(logits), renormalised over the mapped dataset classes (the
 *   arg-max of p(d) can differ from the protocol's prediction when a class
 *   maps to several model classes; for one-to-one maps they agree). */
#ifndef MIXREG_CLASS_MAP_METRICS_H
#define MIXREG_CLASS_MAP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/folder.h"
#include "mixreg/metrics.h"

/* logits: n x map->num_model_classes; labels: dataset classes. out->n is the
 * number of samples scored. MX_ERR_ARG when none is. */
mx_status mx_metrics_class_mapped(const mx_class_map *map, const float *logits, const int32_t *labels, size_t n,
                                  size_t bins, mx_metrics *out, double *rel_conf, double *rel_acc, size_t *rel_count);

#endif
