/* The training's files in the run directory besides the checkpoint
 * (run_io.c): its configuration, the check that no run is there yet, old
 * checkpoints, and the step log after a resume. */
#ifndef MIXREG_TRAIN_RUN_IO_H
#define MIXREG_TRAIN_RUN_IO_H

#include <stddef.h>

#include "mixreg/train.h"

/* RUN_DIR/config.json, written atomically. */
mx_status mx_train_write_config(const mx_train_config *cfg);
/* MX_ERR_ARG if cfg->out already holds a run's model file. */
mx_status mx_train_check_no_run_yet(const mx_train_config *cfg);
/* Every step-* file of dir but the newest `keep` (temporaries of an
 * interrupted save too). */
void mx_train_remove_old_checkpoints(const char *dir, size_t keep);
/* After a resume, drops the log lines of steps after `step` (written by the
 * interrupted process, and to be written again). */
mx_status mx_train_trim_log(const char *path, size_t step);

#endif
