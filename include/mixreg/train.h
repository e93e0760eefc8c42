/* Training: the loop that trains a model with Mixup, logs, checkpoints and
 * evaluates it. The run configuration it follows and the settings table are
 * mixreg/config.h (included here, as is mx_set_threads). */
#ifndef MIXREG_TRAIN_H
#define MIXREG_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/config.h"
#include "mixreg/error.h"
#include "mixreg/metrics.h"
#include "mixreg/threads.h"

typedef struct {
    size_t epochs_done, steps_done;
    double final_loss;
    double train_img_per_s;
    mx_metrics plain, rescaled;   /* on the test set after the last epoch */
} mx_train_result;

/* Trains on `train` (less the validation split), evaluates on `test` after each
 * epoch, writes the run directory cfg->out: config.json, model.safetensors (the
 * latest checkpoint: weights, optimizer and RNG state, rescale statistics),
 * checkpoints/, best.safetensors (with a validation split), log.jsonl,
 * tensorboard/, result.json. Progress goes to stderr (a bar on a terminal).
 * A NaN or infinite loss stops with MX_ERR_NUMERIC and leaves the last good
 * checkpoint; SIGINT/SIGTERM save a checkpoint and stop with MX_ERR_INTERRUPTED.
 * Holds the run directory's lock (run_dir.h) throughout: another writer gets
 * MX_ERR_IO naming this process. A directory without model.safetensors that
 * an earlier run left is started over (docs/formats.md). */
mx_status mx_train_run(const mx_train_config *cfg, const mx_dataset *train, const mx_dataset *test,
                       mx_train_result *result);

/* For a program about to load data and call mx_train_run/mx_train_resume:
 * SIGINT/SIGTERM from now until training starts print "mixreg: interrupted
 * by signal N before training started; <what_remains>" and exit with status
 * 130 at once (nothing has been trained, so nothing is saved); once training
 * runs they save a checkpoint after the step in progress as always. */
void mx_train_catch_signals(const char *what_remains);

/* Continues the run in `dir` from its latest checkpoint (model.safetensors),
 * with the configuration saved there (threads may be overridden: 0 keeps the
 * saved value). Ends with bit-identical weights to an uninterrupted run with
 * the same seed and thread count. The saved configuration is validated as
 * its flags would be (mx_train_config_from_json) before anything is written. */
mx_status mx_train_resume(const char *dir, int threads, const mx_dataset *train, const mx_dataset *test,
                          mx_train_result *result);

#endif
