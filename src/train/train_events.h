/* The training run's TensorBoard events (RUN_DIR/tensorboard, mixreg/tfevents.h):
 * each logged step's scalars and each epoch's, under tags named as
 * log.jsonl's keys, and with --tb-histograms the weights' histograms. */
#ifndef MIXREG_TRAIN_EVENTS_H
#define MIXREG_TRAIN_EVENTS_H

#include "mixreg/config.h"
#include "mixreg/metrics.h"
#include "mixreg/model.h"
#include "mixreg/tfevents.h"

/* Seconds since the epoch: the events' wall time. */
double train_wall_clock(void);

/* *events = the run directory's event file (cfg->out), or NULL when
 * cfg->tensorboard is off. */
mx_status train_events_open(const mx_train_config *cfg, mx_tfevents **events);

/* train/loss, train/lr, train/accuracy and, when img_per_s > 0,
 * train/img_per_s at step. */
mx_status train_events_step(mx_tfevents *events, size_t step, double loss, double lr, double accuracy,
                            double img_per_s);

/* One epoch's events at step: train/epoch_loss, the test metrics plain and
 * rescaled, the validation's when val_plain is not NULL, the weights'
 * histograms when histograms is not NULL; then flushed. */
mx_status train_events_epoch(mx_tfevents *events, size_t step, double mean_loss, const mx_metrics *test_plain,
                             const mx_metrics *test_rescaled, const mx_metrics *val_plain,
                             const mx_metrics *val_rescaled, mx_model *histograms);

#endif
