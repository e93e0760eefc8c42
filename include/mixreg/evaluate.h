/* Evaluating a model on a dataset, plain and with the paper's rescaled
 * prediction, in one pass over the data. */
#ifndef MIXREG_EVALUATE_H
#define MIXREG_EVALUATE_H

#include "mixreg/data.h"
#include "mixreg/metrics.h"
#include "mixreg/model.h"
#include "mixreg/rescale.h"

/* Fills *plain when plain is not NULL and *rescaled (using stats) when
 * rescaled is not NULL. Batches of the model's max batch size. */
mx_status mx_evaluate(mx_model *model, const mx_dataset *ds, const mx_normalizer *nz, const mx_rescale_stats *stats,
                      size_t bins, mx_metrics *plain, mx_metrics *rescaled);

#endif

#ifndef MIXREG_EVALUATE_JSON
#define MIXREG_EVALUATE_JSON
/* {"accuracy": ..., "nll": ..., "ece": ..., "mce": ..., "brier": ..., "n": ...} */
void mx_metrics_format_json(const mx_metrics *m, char *buf, size_t cap);
#endif
