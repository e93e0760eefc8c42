/* Experiments: a grid of training runs (methods x settings x seeds) declared
 * in a small file, run resumably, each run evaluated plain, rescaled and
 * temperature-scaled. The file format (docs/experiments.md):
 *
 *   # comment
 *   epochs = 15                 shared settings: any `mixreg train` flag without
 *   seeds = 0, 1, 2             its dashes, plus seeds, bins, temperature
 *   [mixup]                     a method; its settings override the shared ones
 *   mixup-alpha = 0.2, 0.5, 1   a comma list is a grid axis
 *   analyze-seeds = all         also `mixreg analyze` these runs (none, all or
 *                               a list of seeds; default none), shared part only
 *
 * Values of hidden, schedule and data are single values (they hold commas or
 * paths); switches take true/false. Everything is checked before anything
 * runs: an unknown key, a bad value, a repeated section or key, two runs with
 * the same settings are errors naming the file and line. */
#ifndef MIXREG_EXPERIMENT_H
#define MIXREG_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/train.h"

typedef struct {
    char name[512];          /* directory under OUT/runs: method, varying settings, seed */
    char method[64];         /* the section */
    char group[512];         /* method and varying settings except the seed (runs aggregated over seeds) */
    size_t line;             /* the section's line in the file */
    mx_train_config config;  /* out is set by the runner */
    int analyze;             /* `analyze-seeds` names this run's seed (or all): the runner analyses it */
} mx_experiment_run;

typedef struct {
    char name[256];          /* the file's stem, e.g. "paper-fmnist" */
    char *source;            /* the file's text */
    size_t bins;             /* ECE bins (default 15) */
    int temperature;         /* fit and report temperature-scaled modes (default on) */
    mx_experiment_run *runs;
    size_t count;
} mx_experiment;

/* Parses `text` (error messages say "<path>:<line>: ..."). */
mx_status mx_experiment_parse(const char *path, const char *text, mx_experiment *out);
mx_status mx_experiment_load(const char *path, mx_experiment *out);
void mx_experiment_free(mx_experiment *e);

/* Whether `name` can be one directory name under the output directory: not
 * empty, ".", "..", holding no '/', not starting with '-'. Every run name is
 * checked when the file is parsed. */
int mx_experiment_name_is_safe(const char *name);
/* The output directory when --out is not given: runs/<the file's stem>; an
 * error (give --out) when the stem cannot name a directory, e.g. "...conf". */
mx_status mx_experiment_default_out(const char *path, const mx_experiment *e, char *out, size_t cap);

/* Writes the analysis of the run in run_dir (`mixreg analyze --json`) to
 * json_path; called on every rank of an mpirun job (rank 0 writes). */
typedef mx_status (*mx_experiment_analyzer)(const char *run_dir, const char *json_path, void *ctx);

typedef struct {
    int threads;             /* 0: as each run's config says */
    int report_only;         /* write the report from what is there, train nothing */
    mx_experiment_analyzer analyze; /* for runs `analyze-seeds` names (NULL: such a file is refused) */
    void *analyze_ctx;
} mx_experiment_options;

/* Runs every run not finished yet under out_dir/runs/<name> (a finished run
 * has eval.json, and analysis.json when `analyze-seeds` names it: a finished
 * run lacking only that is analysed; an interrupted one resumes from its checkpoint; a run
 * directory made with other settings is an error, never overwritten), writes
 * out_dir/manifest.json first and the report (table, figures, HTML) after
 * each run. SIGINT/SIGTERM stop after saving: MX_ERR_INTERRUPTED. */
mx_status mx_experiment_run_all(const mx_experiment *e, const char *out_dir, const mx_experiment_options *options);

#endif
