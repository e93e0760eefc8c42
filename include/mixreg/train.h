/* Training: the full configuration of a run (every CLI flag), and the loop
 * that trains a model with Mixup, logs, checkpoints and evaluates it. */
#ifndef MIXREG_TRAIN_H
#define MIXREG_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/cutmix.h"
#include "mixreg/data.h"
#include "mixreg/error.h"
#include "mixreg/metrics.h"
#include "mixreg/mixup.h"
#include "mixreg/model.h"
#include "mixreg/source.h"

#define MX_PATH_MAX 1024

/* Which training pipeline the rescale statistics' pass uses: the training
 * augmentation without mixing (as the paper's reference implementation), or
 * clean images. */
typedef enum { MX_RESCALE_AUGMENTED, MX_RESCALE_CLEAN } mx_rescale_source;

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
    size_t save_every;           /* checkpoint interval (default 1) ... */
    int save_every_steps;        /* ... counted in steps when 1, in epochs when 0 */
    size_t keep;                 /* rolling checkpoints kept in RUN_DIR/checkpoints (0 = none) */
    double val_split;            /* fraction of the training set held out for validation (0 = none) */
    size_t log_every;            /* per-step JSONL / TensorBoard line every N steps (0 = none) */
    int tensorboard;             /* write TensorBoard events to RUN_DIR/tensorboard */
    int tb_histograms;           /* also weight histograms at each epoch end */
    mx_rescale_source rescale_stats;
    mx_label_kind labels;        /* CIFAR-100: fine (default) or coarse labels */
    size_t image_size;           /* image folders: the side images are brought to (default 224) */
    int skip_bad_images;         /* image folders: leave out (and count) files that fail to decode */
    size_t workers;              /* loader threads preparing the next batches (0: in the training thread) */
    char augment[64];            /* per-sample augmentation spec (augment.h): none | flip | crop:P[,flip] | rrc[,flip] */
    mx_streaming stream;         /* image folders: auto | on | off (source.h); rrc streams the training set */
    char normalize[128];         /* "computed" (from the training data) or given: imagenet | M,../S,.. */
    mx_cutmix_config cutmix;     /* CutMix and its switch with Mixup (alpha 0 = off) */
    int sync_bn;                 /* data-parallel: batch norm statistics over the global batch (--sync-bn) */
} mx_train_config;

void mx_train_config_default(mx_train_config *cfg);
mx_status mx_train_config_validate(const mx_train_config *cfg);

/* The configuration as a JSON object (malloc'd string) and back. Unknown keys
 * are an error when reading, so a config never silently loses a setting. */
char *mx_train_config_to_json(const mx_train_config *cfg);
mx_status mx_train_config_from_json(const char *json, mx_train_config *cfg);

/* The training flags by name without the dashes ("mixup-alpha"), shared by
 * the command line and experiment files. A switch takes value NULL (on) or
 * true/false, yes/no, on/off, 1/0; every value is checked as on the command
 * line, with the same message. */
typedef enum { MX_FLAG_UNKNOWN = -1, MX_FLAG_SWITCH = 0, MX_FLAG_VALUE = 1 } mx_flag_kind;
mx_flag_kind mx_train_flag_kind(const char *name);
mx_status mx_train_config_set(mx_train_config *cfg, const char *name, const char *value);

const char *mx_rescale_source_name(mx_rescale_source source);
mx_status mx_rescale_source_parse(const char *what, const char *text, mx_rescale_source *out);
mx_status mx_label_kind_parse(const char *what, const char *text, mx_label_kind *out);

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

/* Trains on `train` (less the validation split), evaluates on `test` after each
 * epoch, writes the run directory cfg->out: config.json, model.safetensors (the
 * latest checkpoint: weights, optimizer and RNG state, rescale statistics),
 * checkpoints/, best.safetensors (with a validation split), log.jsonl,
 * tensorboard/, result.json. Progress goes to stderr (a bar on a terminal).
 * A NaN or infinite loss stops with MX_ERR_NUMERIC and leaves the last good
 * checkpoint; SIGINT/SIGTERM save a checkpoint and stop with MX_ERR_INTERRUPTED. */
mx_status mx_train_run(const mx_train_config *cfg, const mx_dataset *train, const mx_dataset *test,
                       mx_train_result *result);

/* Continues the run in `dir` from its latest checkpoint (model.safetensors),
 * with the configuration saved there (threads may be overridden: 0 keeps the
 * saved value). Ends with bit-identical weights to an uninterrupted run with
 * the same seed and thread count. */
mx_status mx_train_resume(const char *dir, int threads, const mx_dataset *train, const mx_dataset *test,
                          mx_train_result *result);

/* Parses "--save-every" values: "N" or "Nepochs" (epochs), "Nsteps" (steps). */
mx_status mx_save_every_parse(const char *text, size_t *every, int *in_steps);

/* Loads split "train" or "test" of `spec` (NULL: cfg->data) as the run's
 * settings say (labels, image size, bad images, streaming: an image folder's
 * training split is streamed for --augment rrc, which needs the originals);
 * the number of images left out is reported on stderr. */
mx_status mx_train_data_load(const mx_train_config *cfg, const char *spec, const char *split, mx_dataset *out);

/* Reports on stderr how many files of a streamed dataset failed to decode
 * and were replaced (nothing when none was, or in memory). */
void mx_train_data_report(const char *spec, const char *split, const mx_dataset *ds);

/* The normaliser a new run uses: statistics computed from the training data
 * (cfg->normalize "computed"), or the given ones, whose channel count must
 * match the data's. */
mx_status mx_train_normalizer(const mx_train_config *cfg, const mx_dataset *train, mx_normalizer *nz);

/* Uses `threads` threads for BLAS and OpenMP work (0 = all online CPUs). */
void mx_set_threads(int threads);

#endif
