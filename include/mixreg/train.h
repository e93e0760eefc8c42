/* Training: the full configuration of a run (every CLI flag), and the loop
 * that trains a model with Mixup, logs, checkpoints and evaluates it. */
#ifndef MIXREG_TRAIN_H
#define MIXREG_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/data.h"
#include "mixreg/error.h"
#include "mixreg/metrics.h"
#include "mixreg/mixup.h"
#include "mixreg/model.h"

#define MX_PATH_MAX 1024

typedef struct {
    char data[MX_PATH_MAX];      /* "fashion-mnist", "idx:DIR" or DIR */
    mx_model_spec model;         /* arch and hidden widths; input shape and classes come from the data */
    size_t epochs;
    size_t batch_size;
    mx_mixup_config mixup;
    double lr;
    double momentum;
    int nesterov;
    double weight_decay;         /* L2, added to the gradient (PyTorch SGD's weight_decay) */
    char schedule[256];          /* constant | cosine | step:E1,E2,... */
    double warmup_epochs;
    uint64_t seed;
    int threads;
    char out[MX_PATH_MAX];       /* run directory */
    size_t max_steps;            /* stop after this many steps in all (0 = no limit); for tests and quick looks */
} mx_train_config;

void mx_train_config_default(mx_train_config *cfg);
mx_status mx_train_config_validate(const mx_train_config *cfg);

/* The configuration as a JSON object (malloc'd string) and back. Unknown keys
 * are an error when reading, so a config never silently loses a setting. */
char *mx_train_config_to_json(const mx_train_config *cfg);
mx_status mx_train_config_from_json(const char *json, mx_train_config *cfg);

const char *mx_mix_mode_name(mx_mix_mode mode);
const char *mx_partner_name(mx_partner partner);
mx_status mx_mix_mode_parse(const char *text, mx_mix_mode *out);
mx_status mx_partner_parse(const char *text, mx_partner *out);

typedef struct {
    size_t epochs_done, steps_done;
    double final_loss;
    double train_img_per_s;
    mx_metrics plain, rescaled;   /* on the test set after the last epoch */
} mx_train_result;

/* Trains on `train`, evaluates on `test` after each epoch, writes the run
 * directory cfg->out (config.json, model.safetensors after every epoch,
 * log.jsonl). Progress goes to stderr (a bar on a terminal). A NaN or infinite
 * loss stops with MX_ERR_NUMERIC and leaves the last good checkpoint. */
mx_status mx_train_run(const mx_train_config *cfg, const mx_dataset *train, const mx_dataset *test,
                       mx_train_result *result);

/* Uses `threads` threads for BLAS and OpenMP work (0 = all online CPUs). */
void mx_set_threads(int threads);

#endif
