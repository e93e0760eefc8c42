/* The run's settings as TensorBoard hyperparameters. */
#ifndef MIXREG_TRAIN_HPARAMS_H
#define MIXREG_TRAIN_HPARAMS_H

#include "mixreg/config.h"
#include "mixreg/tfevents.h"

/* Every stored setting of cfg under its config.json key (numbers, switches,
 * texts; the hidden widths as "512,512"), except where the run is written
 * (out), plus the number of processes, as one hparams summary. */
mx_status mx_train_events_hparams(mx_tfevents *w, const mx_train_config *cfg, int processes, double wall_time);

#endif
