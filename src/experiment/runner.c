/* Running an experiment: each run trained (or resumed) in its own run
 * directory, evaluated in every mode into eval.json, and the report redrawn
 * after each so that an interrupted experiment still has one.
 *
 * Under mpirun every rank walks the same grid: each run trains data-parallel
 * and is evaluated sharded over the ranks. Rank 0 alone reads the state of
 * the run directories (the others follow its decisions: they may not share
 * its file system, or look a moment after it wrote) and alone writes files
 * and prints. */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mixreg/augment.h"
#include "mixreg/dist.h"
#include "mixreg/eval_shard.h"
#include "mixreg/eval_modes.h"
#include "mixreg/experiment.h"
#include "mixreg/experiment_report.h"
#include "mixreg/fileio.h"
#include "mixreg/evaluate.h"
#include "mixreg/run.h"
#include "mixreg/run_dir.h"
#include "mixreg/source.h"
#include "train/progress.h"
#include "train/stop_signal.h"

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Rank 0's value on every rank (the value itself in one process). */
static int from_root(int value)
{
    return mx_dist_broadcast(&value, sizeof value) == MX_OK ? value : -1;
}

/* Rank 0's status on every rank: its error where it failed. */
static mx_status status_from_root(mx_status st)
{
    int shared = from_root(mx_dist_is_root() ? (int)st : 0);
    if (shared < 0) return MX_ERR_IO;  /* the broadcast failed; its error is set */
    if (!mx_dist_is_root() && shared != MX_OK)
        return mx_error_set((mx_status)shared, "rank 0 stopped the experiment (its error is on its output)");
    return st;
}

static mx_status write_json(const char *path, cJSON *json)
{
    char *text = json ? cJSON_Print(json) : NULL;
    mx_status st = text ? mx_file_write_atomic(path, text, strlen(text)) : mx_error_set(MX_ERR_NOMEM, "out of memory");
    free(text);
    return st;
}

static mx_status write_manifest(const mx_experiment *e, const char *out_dir)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "experiment", e->name);
    cJSON_AddStringToObject(root, "source", e->source);
    cJSON_AddNumberToObject(root, "bins", (double)e->bins);
    cJSON *runs = cJSON_AddArrayToObject(root, "runs");
    for (size_t i = 0; runs && i < e->count; i++) {
        const mx_experiment_run *r = &e->runs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "method", r->method);
        cJSON_AddStringToObject(o, "group", r->group);
        cJSON_AddNumberToObject(o, "alpha", r->config.mixup.alpha);
        cJSON_AddNumberToObject(o, "seed", (double)r->config.seed);
        cJSON_AddItemToArray(runs, o);
    }
    char path[MX_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/manifest.json", out_dir);
    mx_status st = write_json(path, root);
    cJSON_Delete(root);
    return st;
}

/* The first setting whose stored form differs between a and b (NULL: none),
 * with both values as JSON text in va and vb. */
static const char *first_difference(const char *a, const char *b, char *va, char *vb, size_t cap)
{
    static char key[128];
    cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
    const char *found = NULL;
    for (const cJSON *x = ja ? ja->child : NULL; x && !found; x = x->next) {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(jb, x->string);
        if (y && cJSON_Compare(x, y, 1)) continue;
        char *ta = cJSON_PrintUnformatted(x), *tb = y ? cJSON_PrintUnformatted(y) : NULL;
        snprintf(key, sizeof key, "%s", x->string);
        snprintf(va, cap, "%s", ta ? ta : "?");
        snprintf(vb, cap, "%s", tb ? tb : "(none)");
        free(ta);
        free(tb);
        found = key;
    }
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return found;
}

/* A run directory already there must hold this very run (the experiment file
 * may have changed since): compared setting by setting through the settings
 * table, the thread count and the run's own directory aside (an experiment's
 * folder may have been moved, as into docs/results). A key the stored config
 * lacks (a setting added to the table since the run was trained) reads as
 * its default, which is the setting the run was trained with: the same
 * setting whenever the experiment asks for that default. */
static mx_status check_existing(const mx_train_config *cfg)
{
    char path[MX_PATH_MAX + 32], *text;
    size_t size;
    snprintf(path, sizeof path, "%s/config.json", cfg->out);
    if (!file_exists(path)) return MX_OK;
    mx_status st = mx_file_read_all(path, 1 << 20, &text, &size);
    mx_train_config saved;
    if (st == MX_OK) st = mx_train_config_from_json(text, &saved);
    free(text);
    if (st != MX_OK) return mx_error_wrap(st, "%s", path);
    saved.threads = cfg->threads;
    memcpy(saved.out, cfg->out, sizeof saved.out);
    char *a = mx_train_config_to_json(&saved), *b = mx_train_config_to_json(cfg);
    if (!a || !b) {
        free(a);
        free(b);
        return mx_error_set(MX_ERR_NOMEM, "out of memory comparing %s", path);
    }
    char there[256], here[256];
    const char *key = strcmp(a, b) ? first_difference(a, b, there, here, sizeof there) : NULL;
    int differs = strcmp(a, b) != 0;
    free(a);
    free(b);
    if (differs)
        return mx_error_set(MX_ERR_ARG, "%s was trained with other settings than the experiment file now gives "
                            "(%s: %s there, %s here); remove it (or rename the method) to train it again",
                            cfg->out, key ? key : "?", key ? there : "?", key ? here : "?");
    return MX_OK;
}

typedef struct {
    char key[MX_PATH_MAX + 64];   /* the settings the data was loaded with */
    mx_dataset train, test;
} data_cache;

static mx_status load_data(data_cache *cache, const mx_train_config *cfg)
{
    char key[sizeof cache->key];
    /* Streaming, and --augment rrc (which streams the training set), change what is loaded. */
    mx_augment_config augment;
    int rrc = mx_augment_parse(cfg->augment, &augment) == MX_OK && augment.resized_crop;
    snprintf(key, sizeof key, "%s|%d|%zu|%d|%d|%d", cfg->data, (int)cfg->labels, cfg->image_size, cfg->skip_bad_images,
             (int)cfg->stream, rrc);
    if (!strcmp(cache->key, key)) return MX_OK;
    mx_dataset_free(&cache->train);
    mx_dataset_free(&cache->test);
    cache->key[0] = '\0';
    mx_status st = mx_train_data_load(cfg, NULL, "train", &cache->train);
    if (st == MX_OK) st = mx_train_data_load(cfg, NULL, "test", &cache->test);
    /* An image folder's val classes are the training classes of the same names. */
    char note[1024];
    if (st == MX_OK)
        st = mx_dataset_match_classes(&cache->test, cfg->data, cache->train.class_names, cache->train.num_classes, note,
                                      sizeof note);
    if (st == MX_OK && note[0]) fprintf(stderr, "mixreg: %s\n", note);
    if (st == MX_OK) snprintf(cache->key, sizeof cache->key, "%s", key);
    return st;
}

static mx_status evaluate_run(const mx_experiment *e, const mx_train_config *cfg, data_cache *data, double *summary)
{
    /* eval.json is the run's last file: written under the run directory's
     * lock, as training's files are, so two experiments never both write it
     * (rank 0's, the one writer, under mpirun). */
    int lock_fd = -1;
    mx_status st = mx_dist_is_root() ? mx_run_dir_lock(cfg->out, &lock_fd) : MX_OK;
    if (st != MX_OK) return st;
    /* The run's thread count, also when its training was done by an earlier
     * call: logits depend on it in the last bits, and a resumed grid (or one
     * resumed with another number of processes) must evaluate as it would have. */
    mx_set_threads(cfg->threads);
    mx_run run;
    st = mx_run_load(cfg->out, 0, &run);
    if (st == MX_OK && (st = mx_evaluate_plan(run.model, 500)) != MX_OK) mx_run_free(&run);
    if (st != MX_OK) {
        mx_run_dir_unlock(lock_fd);
        return st;
    }
    /* No rescaled modes where the rescaled prediction is not defined (CutMix, one-sided ablations). */
    const char *undefined = mx_train_config_rescale_undefined(&run.config);
    mx_eval_request request = {1, !undefined, e->temperature, e->bins, 0.1, NULL};
    mx_eval_report report;
    st = mx_eval_report_compute(&run, &data->test, &data->train, cfg->data, &request, &report);
    char *json = st == MX_OK ? mx_eval_report_to_json(&report, run.rescale.theta_bar, undefined) : NULL;
    if (st == MX_OK && !json) st = mx_error_set(MX_ERR_NOMEM, "out of memory");
    if (st == MX_OK) {
        char path[MX_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/eval.json", cfg->out);
        if (mx_dist_is_root()) st = mx_file_write_atomic(path, json, strlen(json));
        st = status_from_root(st);
        summary[0] = report.modes[0].metrics.accuracy, summary[1] = report.modes[0].metrics.ece;
        summary[2] = summary[3] = NAN; /* no rescaled mode */
        for (size_t k = 0; k < report.count; k++)
            if (!strcmp(report.modes[k].name, "rescaled"))
                summary[2] = report.modes[k].metrics.accuracy, summary[3] = report.modes[k].metrics.ece;
    }
    free(json);
    mx_eval_report_free(&report);
    mx_run_free(&run);
    mx_run_dir_unlock(lock_fd);
    return st;
}

/* RUN_DIR/analysis.json, written under the run directory's lock as eval.json is. */
static mx_status analyze_run(const mx_train_config *cfg, const mx_experiment_options *options)
{
    if (!options->analyze)
        return mx_error_set(MX_ERR_ARG, "analyze-seeds: no analyzer was given to the experiment runner");
    int lock_fd = -1;
    mx_status st = mx_dist_is_root() ? mx_run_dir_lock(cfg->out, &lock_fd) : MX_OK;
    st = status_from_root(st);
    if (st != MX_OK) return st;
    mx_set_threads(cfg->threads); /* as its evaluation: the numbers depend on it in the last bits */
    char path[MX_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/analysis.json", cfg->out);
    st = options->analyze(cfg->out, path, options->analyze_ctx);
    mx_run_dir_unlock(lock_fd);
    return st;
}

static mx_status train_run(const mx_train_config *cfg, data_cache *data)
{
    char path[MX_PATH_MAX + 32];
    mx_train_result result;
    snprintf(path, sizeof path, "%s/result.json", cfg->out);
    int trained = from_root(file_exists(path));
    if (trained == 1) return MX_OK;  /* trained; the evaluation was cut short */
    snprintf(path, sizeof path, "%s/%s", cfg->out, MX_RUN_MODEL_FILE);
    if (from_root(file_exists(path)) == 1) return mx_train_resume(cfg->out, cfg->threads, &data->train, &data->test, &result);
    return mx_train_run(cfg, &data->train, &data->test, &result);
}

/* A stop asked for outside training (which handles it itself, saving a
 * checkpoint) ends the experiment after the step in progress. */
static volatile sig_atomic_t g_experiment_stop = 0;
static void on_experiment_stop(int sig) { g_experiment_stop = sig; }

static mx_status run_grid(const mx_experiment *e, const char *out_dir, const mx_experiment_options *options);

mx_status mx_experiment_run_all(const mx_experiment *e, const char *out_dir, const mx_experiment_options *options)
{
    struct sigaction old_int, old_term;
    g_experiment_stop = 0;
    train_catch_stop(on_experiment_stop, &old_int, &old_term);
    mx_status st = run_grid(e, out_dir, options);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return st;
}

static mx_status run_grid(const mx_experiment *e, const char *out_dir, const mx_experiment_options *options)
{
    char path[MX_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/runs", out_dir);
    const int root = mx_dist_is_root();
    /* OUT itself may be a link the user made; OUT/runs is ours and must be a real directory. */
    mx_status st = root ? mx_make_dirs(out_dir) : MX_OK;
    if (st == MX_OK && root) st = mx_run_dir_subdir(out_dir, "runs", path, sizeof path);
    if (st == MX_OK && root) st = write_manifest(e, out_dir);
    st = status_from_root(st);
    data_cache data = {0};
    size_t done = 0, trained_now = 0;
    double start = mx_now_seconds();
    for (size_t i = 0; st == MX_OK && i < e->count; i++) {
        mx_train_config cfg = e->runs[i].config;
        if (options->threads) cfg.threads = options->threads;
        if ((size_t)snprintf(cfg.out, sizeof cfg.out, "%s/runs/%s", out_dir, e->runs[i].name) >= sizeof cfg.out)
            return mx_error_set(MX_ERR_ARG, "%s/runs/%s: path too long", out_dir, e->runs[i].name);
        snprintf(path, sizeof path, "%s/eval.json", cfg.out);
        st = status_from_root(root ? check_existing(&cfg) : MX_OK);
        if (st != MX_OK) break;
        const int evaluated = from_root(file_exists(path)) == 1;
        snprintf(path, sizeof path, "%s/analysis.json", cfg.out);
        /* A finished run the file (now) asks to analyse is analysed, not retrained. */
        const int analysis_due = e->runs[i].analyze && from_root(file_exists(path)) != 1;
        if (options->report_only || (evaluated && !analysis_due)) {
            done += evaluated;
            continue;
        }
        if (root)
            fprintf(stderr, "mixreg: experiment %s: run %zu/%zu %s%s\n", e->name, i + 1, e->count, e->runs[i].name,
                    evaluated ? " (analysis)" : "");
        double run_start = mx_now_seconds(), summary[4] = {NAN, NAN, NAN, NAN};
        if (!evaluated) {
            st = load_data(&data, &cfg);
            if (st == MX_OK) st = train_run(&cfg, &data);
            st = mx_eval_agree(st);  /* and every rank waits for rank 0 to have written the model */
            if (st == MX_OK) st = evaluate_run(e, &cfg, &data, summary);
        }
        if (st == MX_OK && analysis_due) st = analyze_run(&cfg, options);
        if (st != MX_OK) {
            if (st != MX_ERR_INTERRUPTED) st = mx_error_wrap(st, "%s", e->runs[i].name);
            break;
        }
        done++, trained_now++;
        double per_run = (mx_now_seconds() - start) / (double)trained_now;
        if (root && evaluated)
            printf("[%zu/%zu] %-48s analysed  %.0f s\n", done, e->count, e->runs[i].name, mx_now_seconds() - run_start);
        else if (root && isnan(summary[2]))
            printf("[%zu/%zu] %-48s acc %.2f%% (rescaled: not defined)  ECE %.2f%%  %.0f s, about %.0f min left\n",
                   done, e->count, e->runs[i].name, 100 * summary[0], 100 * summary[1], mx_now_seconds() - run_start,
                   per_run * (double)(e->count - done) / 60);
        else if (root)
            printf("[%zu/%zu] %-48s acc %.2f%% (rescaled %.2f%%)  ECE %.2f%% (%.2f%%)  %.0f s, about %.0f min left\n",
                   done, e->count, e->runs[i].name, 100 * summary[0], 100 * summary[2], 100 * summary[1],
                   100 * summary[3], mx_now_seconds() - run_start, per_run * (double)(e->count - done) / 60);
        fflush(stdout);
        st = status_from_root(root ? mx_experiment_report(out_dir) : MX_OK);
        /* A stop seen by any rank stops them all after the same run. */
        int stop = (int)g_experiment_stop;
        if (st == MX_OK) st = mx_dist_allreduce_max_int(&stop, 1);
        if (st == MX_OK && stop)
            st = mx_error_set(MX_ERR_INTERRUPTED, "interrupted by signal %d after %zu of %zu runs", stop, done, e->count);
    }
    mx_dataset_free(&data.train);
    mx_dataset_free(&data.test);
    if (st == MX_OK && (options->report_only || trained_now == 0))
        st = status_from_root(root ? mx_experiment_report(out_dir) : MX_OK);
    return st;
}
