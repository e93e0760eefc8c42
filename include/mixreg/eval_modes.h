/* The evaluation modes a user compares side by side (method.md sections 4 and
 * 6): plain, rescaled, temperature-scaled and rescaled + temperature-scaled,
 * each with its metrics and reliability data, computed in one call that
 * `mixreg eval` and the experiment runner share. */
#ifndef MIXREG_EVAL_MODES_H
#define MIXREG_EVAL_MODES_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/data.h"
#include "mixreg/folder.h"
#include "mixreg/metrics.h"
#include "mixreg/run.h"

#define MX_EVAL_MAX_MODES 4

typedef struct {
    int plain, rescaled;      /* which base predictions */
    int temperature;          /* also each one temperature-scaled */
    size_t bins;              /* ECE / reliability bins */
    double val_split;         /* hold-out for T when the run had none (its samples were seen in training) */
    const mx_class_map *class_map; /* test labels are dataset classes scored through this map (NULL: none) */
} mx_eval_request;

typedef struct {
    const char *name;         /* "plain", "rescaled", "temperature", "rescaled+temperature" */
    int rescaled;
    double temperature;       /* 1 = none */
    mx_metrics metrics;
    float *logits;            /* n x classes, temperature applied */
    double *rel_conf, *rel_acc;
    size_t *rel_count;        /* bins each */
} mx_eval_mode;

typedef struct {
    size_t count, n, classes, bins;
    mx_eval_mode modes[MX_EVAL_MAX_MODES];
    int32_t *labels;          /* n */
    size_t fit_n;             /* samples T was fitted on (0: no temperature modes) */
    int fit_seen_in_training; /* 1 when the run had no validation split */
} mx_eval_report;

/* Evaluates run on test in the modes asked for. T is fitted by NLL on the
 * run's validation hold-out (the same seeded split training made), taken from
 * train when given, else loaded from data_spec. In a job of several processes
 * every rank calls it and evaluates a shard (mixreg/eval_shard.h): every rank
 * gets the metrics, temperatures and reliability data, equal to one
 * process's; only rank 0 gets the logits and labels (elsewhere unfilled). */
mx_status mx_eval_report_compute(mx_run *run, const mx_dataset *test, const mx_dataset *train, const char *data_spec,
                                 const mx_eval_request *request, mx_eval_report *out);
void mx_eval_report_free(mx_eval_report *report);

/* The report as one JSON object: {"bins", "n", "theta_bar", "modes": {name:
 * metrics + "temperature" + "reliability": {confidence, accuracy, count}},
 * "temperature_fit": {"n", "seen_in_training"}} (malloc'd string). With
 * rescale_undefined (why the run has no rescaled prediction, from
 * mx_train_config_rescale_undefined) theta_bar is null and "rescaled" says
 * "not defined for this run (WHY)". */
char *mx_eval_report_to_json(const mx_eval_report *report, double theta_bar, const char *rescale_undefined);

#endif
