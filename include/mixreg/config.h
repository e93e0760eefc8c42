/* The run configuration (every `mixreg train` setting) and the one table of
 * settings that reads it from all its sources: command-line flags, experiment
 * files, config.json and the config stored in a checkpoint. Each setting has
 * one name, one range and one parser, so a value refused on the command line
 * is refused, with the same message, from a file too.
 *
 * This module sits below train/, io/ and eval/: they all use the config, it
 * uses only the modules whose settings it holds (data, nn, mixup). */
#ifndef MIXREG_CONFIG_H
#define MIXREG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/cutmix.h"
#include "mixreg/data.h"
#include "mixreg/error.h"
#include "mixreg/mixup.h"
#include "mixreg/model.h"
#include "mixreg/source.h"
#include "mixreg/theta.h"

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
    int sync_bn;                 /* data-parallel: batch norm statistics over the global batch (--sync-bn) */
    double weight_decay;         /* L2, added to the gradient (PyTorch SGD's weight_decay) */
    char schedule[256];          /* constant | cosine | step:E1,E2,... */
    double warmup_epochs;
    uint64_t seed;
    int threads;                 /* 0 = all online CPUs */
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
    size_t mixup_off_epoch;      /* mix (Mixup and CutMix) in epochs 1..N only, none after (timm's
                                    --mixup-off-epoch N; 0 = mix in every epoch) */
} mx_train_config;

void mx_train_config_default(mx_train_config *cfg);

/* Every setting against its range in the table (as its flag would check it),
 * then the checks across settings (--nesterov needs --momentum > 0, the two
 * --mixup-only-* switches exclude each other, CutMix's, the data's, ...).
 * MX_ERR_ARG with the flag's message. */
mx_status mx_train_config_validate(const mx_train_config *cfg);

/* The configuration as a JSON object (malloc'd string) and back. Reading
 * takes every key through the settings table and then validates the whole:
 * an unknown key, a wrong type or a value out of its flag's range is
 * MX_ERR_FORMAT "config: KEY: <the flag's message>", so a config never
 * silently loses a setting and never carries one the flag would refuse. */
char *mx_train_config_to_json(const mx_train_config *cfg);
mx_status mx_train_config_from_json(const char *json, mx_train_config *cfg);

/* ---- The settings table ---- */

typedef enum {
    MX_SETTING_COUNT,    /* a whole number in [min, max] (size_t, int or uint64_t field) */
    MX_SETTING_NUMBER,   /* a finite double in [min, max] */
    MX_SETTING_SWITCH,   /* on/off */
    MX_SETTING_TEXT      /* a name or a spec with its own parser (model, schedule, augment, ...) */
} mx_setting_type;

typedef struct mx_setting mx_setting;

struct mx_setting {
    const char *flag;        /* command line and experiment files, without "--"; NULL: JSON only */
    const char *alias;       /* another name for the flag (timm's), or NULL; never stored */
    const char *key;         /* config.json / checkpoint key */
    mx_setting_type type;
    double min, max;         /* COUNT and NUMBER: the accepted range, inclusive */
    int unset_ok;            /* 0 (COUNT) or "" (TEXT), the default, stands for "not given" (threads:
                              * all cores, max_steps: no limit, out: chosen at start): accepted in a
                              * stored config, never as a flag's value */
    int inverted;            /* SWITCH: the flag turns the stored value off (--no-tensorboard: tensorboard) */
    size_t offset, width;    /* the field in mx_train_config */
    /* TEXT, or a flag with its own syntax (--save-every 5steps): reads `text`
     * into cfg; errors name `what`. */
    mx_status (*parse)(const mx_setting *s, mx_train_config *cfg, const char *what, const char *text);
    /* TEXT: the stored value as text (the JSON form), NULL: a fixed string field at offset. */
    void (*format)(const mx_train_config *cfg, char *out, size_t cap);
    int json_list;           /* TEXT: a comma list, an array of numbers in JSON (hidden) */
};

/* The table, in the order config.json lists the keys. */
size_t mx_settings(const mx_setting **table);
/* By flag or alias (without dashes). */
const mx_setting *mx_setting_by_flag(const char *flag);
const mx_setting *mx_setting_by_key(const char *key);

/* The training flags by name without the dashes ("mixup-alpha"), shared by
 * the command line and experiment files. A switch takes value NULL (on) or
 * true/false, yes/no, on/off, 1/0; every value is checked as on the command
 * line, with the same message. */
typedef enum { MX_FLAG_UNKNOWN = -1, MX_FLAG_SWITCH = 0, MX_FLAG_VALUE = 1 } mx_flag_kind;
mx_flag_kind mx_train_flag_kind(const char *name);
/* The setting's own flag for a flag or an alias ("mixup" -> "mixup-alpha"), NULL if unknown. */
const char *mx_train_flag_canonical(const char *name);
mx_status mx_train_config_set(mx_train_config *cfg, const char *name, const char *value);

const char *mx_rescale_source_name(mx_rescale_source source);
mx_status mx_rescale_source_parse(const char *what, const char *text, mx_rescale_source *out);
mx_status mx_label_kind_parse(const char *what, const char *text, mx_label_kind *out);

const char *mx_mix_mode_name(mx_mix_mode mode);
const char *mx_partner_name(mx_partner partner);
mx_status mx_mix_mode_parse(const char *text, mx_mix_mode *out);
mx_status mx_partner_parse(const char *text, mx_partner *out);

/* Parses "--save-every" values: "N" or "Nepochs" (epochs), "Nsteps" (steps),
 * N in the setting's range. */
mx_status mx_save_every_parse(const char *text, size_t *every, int *in_steps);

/* ---- The mixing a configuration describes (config/mixing.c) ---- */

/* Whether the run mixes in epoch `epoch` (counted from 1): every epoch, or
 * with --mixup-off-epoch N the first N only. */
int mx_train_config_mixes_in_epoch(const mx_train_config *cfg, size_t epoch);

/* The share of the run's epochs that mix: min(N, epochs) / epochs, 1 without
 * --mixup-off-epoch. */
double mx_train_config_mixed_epoch_share(const mx_train_config *cfg);

/* NULL when the paper's rescaled prediction applies to the run (plain Mixup,
 * or nothing mixed at all); else why not, as a phrase ("trained with
 * CutMix"): CutMix (alone or switched with Mixup), --mixup-only-inputs and
 * --mixup-only-labels, where the derivation of method.md section 2 does not
 * hold (section 4). */
const char *mx_train_config_rescale_undefined(const mx_train_config *cfg);

/* The statistics of theta the run carries: theta = 1 for the samples left
 * unmixed by --mix-prob P and by --mixup-off-epoch (share q of the epochs
 * mixing), the folded Beta(alpha, alpha) on the rest, so
 * mx_theta_stats_mixed(alpha, P q). A run whose rescaling is not defined
 * carries theta_bar = 1 (no rescaling). */
mx_status mx_train_config_theta(const mx_train_config *cfg, mx_theta_stats *out);

/* ---- The data a configuration describes ---- */

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

#endif
