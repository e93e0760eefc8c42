/* The training loop: shuffle, gather, mix, forward, loss, backward, SGD step;
 * per-step and per-epoch logs, evaluation, checkpoints, resume and clean
 * stops on SIGINT/SIGTERM. Every buffer is allocated before the first step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixreg/dist.h"
#include "mixreg/eval_shard.h"
#include "mixreg/evaluate.h"
#include "mixreg/fileio.h"
#include "mixreg/optim.h"
#include "mixreg/augment.h"
#include "mixreg/loader.h"
#include "mixreg/rescale.h"
#include "mixreg/rng.h"
#include "mixreg/run.h"
#include "mixreg/run_dir.h"
#include "mixreg/run_files.h"
#include "mixreg/step.h"
#include "mixreg/tfevents.h"
#include "mixreg/theta.h"
#include "mixreg/train.h"
#include "train/dist_state.h"
#include "train/hparams.h"
#include "train/progress.h"
#include "train/run_io.h"
#include "train/stop_signal.h"
#include "train/train_events.h"


typedef struct {
    mx_run run;               /* model, normaliser, rescale stats, config, counters */
    mx_schedule schedule;
    mx_stepper stepper;
    mx_loader *loader;        /* gathers and augments batches, in worker threads with --workers */
    mx_dataset_fill fill;     /* what the loader fills batches from */
    mx_dataset train, val;    /* train less the hold-out, and the hold-out */
    const mx_dataset *test;
    size_t batch, steps_per_epoch, total_steps;  /* batch: the global batch, over all processes */
    size_t share_max;         /* the largest share of a batch one process takes */
    int root, ranks;          /* rank 0 alone writes the run directory and draws progress */
    size_t stats_synced_step; /* running statistics last averaged over the processes at this step (+1) */
    uint32_t *order;
    mx_progress progress;
    double train_time;
    size_t images;
    int saved_any;            /* a checkpoint exists in the run directory */
    mx_tfevents *events;      /* RUN_DIR/tensorboard, NULL with --no-tensorboard */
    size_t fault_nan_step;    /* test hook: MIXREG_FAULT_NAN_STEP=N makes step N's loss NaN */
    char log_path[MX_PATH_MAX + 32];
    int lock_fd;              /* the run directory's writer lock, -1 when not held */
} trainer;

static void trainer_free(trainer *t)
{
    mx_loader_destroy(t->loader);
    mx_stepper_free(&t->stepper);
    mx_run_free(&t->run);
    mx_dataset_free(&t->train);
    mx_dataset_free(&t->val);
    free(t->order);
    mx_tfevents_close(t->events);
    mx_run_dir_unlock(t->lock_fd);
    t->lock_fd = -1;
}

static mx_status split_data(trainer *t, const mx_dataset *full)
{
    return mx_dataset_split(full, t->run.config.seed, t->run.config.val_split, &t->train, &t->val);
}

static mx_status setup_schedule(trainer *t)
{
    const mx_train_config *cfg = &t->run.config;
    mx_status st = mx_schedule_parse(cfg->schedule, &t->schedule);
    if (st != MX_OK) return st;
    t->batch = cfg->batch_size < t->train.n ? cfg->batch_size : t->train.n;
    t->share_max = (t->batch + (size_t)t->ranks - 1) / (size_t)t->ranks;
    t->steps_per_epoch = (t->train.n + t->batch - 1) / t->batch;
    t->schedule.base_lr = cfg->lr;
    t->schedule.warmup_epochs = cfg->warmup_epochs;
    t->schedule.epochs = cfg->epochs;
    t->schedule.steps_per_epoch = t->steps_per_epoch;
    t->total_steps = cfg->epochs * t->steps_per_epoch;
    if (cfg->max_steps && cfg->max_steps < t->total_steps) t->total_steps = cfg->max_steps;
    return MX_OK;
}

/* A new model, normalisation and rescale statistics from the training data. */
static mx_status build_fresh(trainer *t)
{
    const mx_train_config *cfg = &t->run.config;
    mx_status st = mx_train_normalizer(cfg, &t->train, &t->run.normalizer);
    if (st != MX_OK) return st;
    mx_model_spec spec = cfg->model;
    spec.in_channels = t->train.channels;
    spec.in_height = t->train.height;
    spec.in_width = t->train.width;
    spec.num_classes = t->train.num_classes;
    st = mx_model_create(&spec, t->share_max, &t->run.model);
    if (st != MX_OK) return st;
    /* Rank 0's initial model on every process (the same seed draws the same
     * one everywhere; the broadcast makes that a fact, not an assumption). */
    mx_model_init_params(t->run.model, cfg->seed);
    st = mx_train_dist_broadcast_state(t->run.model);
    if (st != MX_OK) return st;
    /* --mix-prob and --mixup-off-epoch leave a share of the samples unmixed
     * (theta = 1), which the stored theta_bar must count; a run the rescaling
     * does not apply to stores 1 (config/mixing.c). */
    mx_theta_stats theta;
    st = mx_train_config_theta(cfg, &theta);
    /* The statistics' pass: the training pipeline without mixing (its
     * augmentation drawn as for an epoch 0 that training never uses), or clean
     * images with --rescale-stats clean. */
    mx_augment_config augment = mx_augment_config_none();
    if (st == MX_OK && cfg->rescale_stats == MX_RESCALE_AUGMENTED) st = mx_augment_parse(cfg->augment, &augment);
    if (st == MX_OK) st = mx_rescale_stats_alloc(&t->run.rescale, mx_model_input_size(t->run.model), spec.num_classes);
    if (st == MX_OK)
        st = mx_rescale_stats_compute_augmented(&t->run.rescale, &t->train, &t->run.normalizer, theta.theta_bar, &augment,
                                                cfg->seed, 0);
    t->run.best_score = -1;
    return st;
}

static mx_status setup_buffers(trainer *t)
{
    const mx_train_config *cfg = &t->run.config;
    mx_sgd_config sgd = {cfg->momentum, cfg->nesterov, cfg->weight_decay};
    mx_status st = mx_stepper_init_shared(&t->stepper, t->run.model, &t->run.normalizer, &cfg->mixup, &sgd, t->batch);
    if (st != MX_OK) return st;
    /* --sync-bn: statistics over the global batch. One process has the
     * global batch already and keeps the plain kernels (the same bits as
     * without the flag); the backend check still applies. */
    if (cfg->sync_bn) st = mx_model_set_bn_sync(t->run.model, mx_train_dist_bn_reduce, NULL);
    if (st == MX_OK && cfg->sync_bn && t->ranks == 1) st = mx_model_set_bn_sync(t->run.model, NULL, NULL);
    if (st != MX_OK) return st;
    t->stepper.cutmix = cfg->cutmix;
    t->fill = (mx_dataset_fill){&t->train, &t->run.normalizer, mx_augment_config_none(), cfg->seed};
    st = mx_augment_parse(cfg->augment, &t->fill.augment);
    if (st == MX_OK) st = mx_augment_config_validate(&t->fill.augment, t->train.height, t->train.width);
    /* Two batches in flight per worker keep every worker busy while one is consumed. */
    if (st == MX_OK)
        st = mx_loader_create(mx_dataset_fill_batch, &t->fill, mx_model_input_size(t->run.model), t->share_max,
                              cfg->workers, 2 * cfg->workers + 1, &t->loader);
    if (st == MX_OK) st = mx_loader_set_share(t->loader, mx_dist_rank(), t->ranks);
    if (st != MX_OK) return st;
    if (t->run.momentum) {
        memcpy(t->stepper.velocity, t->run.momentum, mx_model_param_count(t->run.model) * sizeof(float));
        free(t->run.momentum);
        t->run.momentum = NULL;
    }
    t->order = malloc(t->train.n * sizeof(uint32_t));
    if (!t->order) return mx_error_set(MX_ERR_NOMEM, "out of memory for the epoch order");
    snprintf(t->log_path, sizeof t->log_path, "%s/log.jsonl", cfg->out);
    const char *fault = getenv("MIXREG_FAULT_NAN_STEP");
    t->fault_nan_step = fault ? strtoull(fault, NULL, 10) : 0;
    return MX_OK;
}

/* A fresh run's directory: created, locked against other writers, and
 * cleared of what a run that was stopped before its first checkpoint left. */
static mx_status claim_fresh_run_dir(trainer *t)
{
    const mx_train_config *cfg = &t->run.config;
    if (!cfg->out[0]) return mx_error_set(MX_ERR_ARG, "no run directory given (--out)");
    mx_status st = mx_train_check_no_run_yet(cfg);
    if (st == MX_OK) st = mx_make_dirs(cfg->out);
    if (st == MX_OK) st = mx_run_dir_lock(cfg->out, &t->lock_fd);
    if (st == MX_OK) st = mx_train_check_no_run_yet(cfg);  /* again, now that no other writer can be saving one */
    if (st != MX_OK) return st;
    mx_run_dir_remove_stale_temporaries(cfg->out);
    return mx_run_dir_start_over(cfg->out);
}

/* ---- checkpoints ---- */

/* Batch norm's running statistics made the same on every process (their
 * mean) before anything reads them for evaluation or a checkpoint; with
 * --sync-bn they are the same already. Once per step, on every process. */
static mx_status sync_running_stats(trainer *t)
{
    if (t->ranks == 1 || t->run.config.sync_bn || t->stats_synced_step == t->run.step + 1) return MX_OK;
    t->stats_synced_step = t->run.step + 1;
    return mx_train_dist_average_running_stats(t->run.model);
}

/* Saves the full training state: RUN_DIR/model.safetensors (the latest) and,
 * with --keep, RUN_DIR/checkpoints/step-NNNNNNNNNN.safetensors; rank 0 alone
 * writes, every process takes part in making the statistics agree. */
static mx_status save_checkpoint(trainer *t, const mx_rng *mix_rng, double epoch_loss_sum)
{
    const mx_train_config *cfg = &t->run.config;
    mx_status synced = sync_running_stats(t);
    if (synced != MX_OK || !t->root) return synced;
    t->run.momentum = t->stepper.velocity;
    t->run.mix_rng = *mix_rng;
    t->run.epoch_loss_sum = epoch_loss_sum;
    t->run.epoch = t->run.step / t->steps_per_epoch;
    mx_status st = mx_run_save(cfg->out, &t->run);
    if (st == MX_OK && cfg->keep) {
        char dir[MX_PATH_MAX + 32], path[MX_PATH_MAX + 96];
        st = mx_run_dir_subdir(cfg->out, "checkpoints", dir, sizeof dir);
        snprintf(path, sizeof path, "%s/step-%010zu.safetensors", dir, t->run.step);
        if (st == MX_OK) st = mx_run_save_file(path, &t->run);
        if (st == MX_OK) mx_train_remove_old_checkpoints(dir, cfg->keep);
    }
    t->run.momentum = NULL;
    if (st == MX_OK) t->saved_any = 1;
    return st;
}

/* ---- logs ---- */

static mx_status log_step(trainer *t, size_t epoch, double loss, double lr)
{
    char line[512];
    snprintf(line, sizeof line,
             "{\"type\": \"step\", \"epoch\": %zu, \"step\": %zu, \"loss\": %.6f, \"accuracy\": %.6f, \"lr\": %.6g, "
             "\"img_per_s\": %.1f}",
             epoch, t->run.step, loss, t->stepper.last_accuracy, lr, t->train_time > 0 ? (double)t->images / t->train_time : 0.0);
    mx_status st = mx_file_append_line(t->log_path, line);
    if (st == MX_OK && t->events)
        st = train_events_step(t->events, t->run.step, loss, lr, t->stepper.last_accuracy,
                               t->train_time > 0 ? (double)t->images / t->train_time : 0.0);
    return st;
}

/* The evaluation's progress on the bar's line (mx_progress_eval). */
typedef struct {
    mx_progress *progress;
    const char *what;
} eval_line;

static void report_eval(void *ctx, size_t done, size_t total)
{
    eval_line *line = ctx;
    mx_progress_eval(line->progress, line->what, done, total);
}

static mx_status end_of_epoch(trainer *t, size_t epoch, double mean_loss, double lr, mx_train_result *result)
{
    const mx_train_config *cfg = &t->run.config;
    /* Every process holds the same model; each evaluates a shard of the test
     * (and validation) samples and rank 0 computes the metrics from all of
     * them (mixreg/eval_shard.h), so N processes take about 1/N of the time. */
    mx_status st = sync_running_stats(t);
    if (st != MX_OK) return st;
    eval_line test_line = {&t->progress, "test"}, val_line = {&t->progress, "val"};
    const mx_eval_progress test_progress = {report_eval, &test_line}, val_progress = {report_eval, &val_line};
    st = mx_evaluate_sharded_reporting(t->run.model, t->test, &t->run.normalizer, &t->run.rescale, MX_DEFAULT_ECE_BINS,
                                       &result->plain, &result->rescaled, &test_progress);
    if (st != MX_OK) return mx_error_wrap(st, "evaluating the test set");
    char plain[256], rescaled[256], val[600] = "", line[2048];
    mx_metrics_format_json(&result->plain, plain, sizeof plain);
    mx_metrics_format_json(&result->rescaled, rescaled, sizeof rescaled);
    mx_metrics val_plain, val_rescaled;
    if (t->val.n) {
        st = mx_evaluate_sharded_reporting(t->run.model, &t->val, &t->run.normalizer, &t->run.rescale,
                                           MX_DEFAULT_ECE_BINS, &val_plain, &val_rescaled, &val_progress);
        if (st != MX_OK) return mx_error_wrap(st, "evaluating the validation split");
        char vp[256], vr[256];
        mx_metrics_format_json(&val_plain, vp, sizeof vp);
        mx_metrics_format_json(&val_rescaled, vr, sizeof vr);
        snprintf(val, sizeof val, ", \"val\": {\"plain\": %s, \"rescaled\": %s}", vp, vr);
    }
    if (!t->root) return MX_OK; /* rank 0 writes the logs and best.safetensors */
    double img_per_s = t->train_time > 0 ? (double)t->images / t->train_time : 0;
    snprintf(line, sizeof line,
             "{\"type\": \"epoch\", \"epoch\": %zu, \"step\": %zu, \"lr\": %.6g, \"train_loss\": %.6f, \"img_per_s\": %.1f, "
             "\"time_s\": %.2f, \"processes\": %d, \"test\": {\"plain\": %s, \"rescaled\": %s}%s}",
             epoch, t->run.step, lr, mean_loss, img_per_s, mx_now_seconds() - t->progress.start, t->ranks, plain, rescaled,
             val);
    st = mx_file_append_line(t->log_path, line);
    if (st == MX_OK && t->events)
        st = train_events_epoch(t->events, t->run.step, mean_loss, &result->plain, &result->rescaled,
                                t->val.n ? &val_plain : NULL, &val_rescaled, cfg->tb_histograms ? t->run.model : NULL);
    if (st != MX_OK) return st;
    if (t->val.n && val_plain.accuracy > t->run.best_score) {
        /* best.safetensors: the model with the best validation accuracy so far. */
        t->run.best_score = val_plain.accuracy;
        char path[MX_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/best.safetensors", cfg->out);
        t->run.epoch = epoch;
        st = mx_run_save_file(path, &t->run);
        if (st != MX_OK) return st;
    }
    snprintf(line, sizeof line, "epoch %zu/%zu  loss %.4f  test acc %.2f%% (rescaled %.2f%%)  NLL %.4f (%.4f)  %.0f img/s",
             epoch, cfg->epochs, mean_loss, 100 * result->plain.accuracy, 100 * result->rescaled.accuracy,
             result->plain.nll, result->rescaled.nll, img_per_s);
    mx_progress_line(&t->progress, line);
    return MX_OK;
}

/* ---- the loop ---- */

static int checkpoint_due(const trainer *t, int epoch_done)
{
    const mx_train_config *cfg = &t->run.config;
    if (t->run.step == t->total_steps) return 1;
    if (cfg->save_every_steps) return t->run.step % cfg->save_every == 0;
    return epoch_done && (t->run.step / t->steps_per_epoch) % cfg->save_every == 0;
}

static mx_status train_loop(trainer *t, mx_train_result *result)
{
    const mx_train_config *cfg = &t->run.config;
    mx_progress_begin(&t->progress, cfg->epochs, t->steps_per_epoch, t->total_steps);
    t->progress.start_step = t->run.step;
    mx_rng mix = t->run.mix_rng;
    double loss_sum = t->run.epoch_loss_sum, lr = 0;
    int resumed_mid_epoch = t->run.step % t->steps_per_epoch != 0;
    while (t->run.step < t->total_steps) {
        size_t epoch = t->run.step / t->steps_per_epoch + 1, pos = t->run.step % t->steps_per_epoch;
        if (pos == 0 || resumed_mid_epoch) {
            /* Per-epoch streams: the shuffle and the mixing of epoch e depend only on (seed, e). */
            mx_rng shuffle;
            mx_rng_init(&shuffle, cfg->seed, ((uint64_t)epoch << 32) | MX_STREAM_SHUFFLE);
            mx_rng_permutation(&shuffle, t->order, t->train.n);
            mx_status st = mx_loader_start_epoch(t->loader, t->order, t->train.n, t->batch, pos, epoch);
            if (st != MX_OK) return st;
            if (!resumed_mid_epoch) {
                mx_rng_init(&mix, cfg->seed, ((uint64_t)epoch << 32) | MX_STREAM_MIXUP);
                loss_sum = 0;
            }
            resumed_mid_epoch = 0;
            if (!mx_train_config_mixes_in_epoch(cfg, epoch)) mx_stepper_stop_mixing(&t->stepper);
        }
        lr = mx_schedule_lr(&t->schedule, t->run.step);
        double start = mx_now_seconds();
        mx_loader_batch batch;
        mx_status fill_st = mx_loader_next(t->loader, &batch);
        /* Every process takes the step, even one whose share failed: the
         * step tells the others, so none is left waiting. */
        mx_step_share share = {batch.x, batch.labels, batch.n, batch.first, batch.total, t->order + pos * t->batch,
                               mx_dataset_fill_batch, &t->fill, epoch};
        mx_step_result stepped;
        mx_status step_st = mx_stepper_step_share(&t->stepper, &share, fill_st != MX_OK, train_stop_signal() != 0, &mix, lr,
                                                  &stepped);
        if (step_st != MX_OK) {
            /* A streamed file that fails to decode is met here, mid-run; in a
             * job of several processes also another process's failure. */
            mx_progress_clear(&t->progress);
            char message[1024];
            snprintf(message, sizeof message, "%s", mx_error_message());
            return mx_error_set(step_st, "%s (epoch %zu step %zu; %s)", message, epoch, pos + 1,
                                t->saved_any ? "the last checkpoint is kept in the run directory"
                                             : "no checkpoint had been saved yet");
        }
        size_t n = batch.total;
        double loss = stepped.loss;
        /* One process stops when it is signalled; a job when any process was
         * (agreed in the step, so all stop after the same step). */
        int stop = t->ranks > 1 ? stepped.stop : train_stop_signal() != 0;
        if (t->run.step + 1 == t->fault_nan_step) loss = NAN;
        if (!isfinite(loss)) {
            mx_progress_clear(&t->progress);
            return mx_error_set(MX_ERR_NUMERIC, "loss became %s at epoch %zu step %zu (try a lower --lr); %s",
                                isnan(loss) ? "NaN" : "infinite", epoch, pos + 1,
                                t->saved_any ? "the last good checkpoint is kept in the run directory"
                                             : "no checkpoint had been saved yet");
        }
        t->train_time += mx_now_seconds() - start;
        t->images += n;
        loss_sum += loss;
        t->run.step++;
        int epoch_done = pos + 1 == t->steps_per_epoch || t->run.step == t->total_steps;
        mx_progress_step(&t->progress, epoch, pos + 1, t->run.step, loss, (double)t->images / t->train_time);
        mx_status st = MX_OK;
        if (t->root && cfg->log_every && t->run.step % cfg->log_every == 0) st = log_step(t, epoch, loss, lr);
        result->epochs_done = epoch;
        result->steps_done = t->run.step;
        result->final_loss = loss_sum / (double)(pos + 1);
        result->train_img_per_s = (double)t->images / t->train_time;
        if (st == MX_OK && epoch_done) st = end_of_epoch(t, epoch, result->final_loss, lr, result);
        if (st == MX_OK && (checkpoint_due(t, epoch_done) || stop))
            st = save_checkpoint(t, &mix, epoch_done ? 0.0 : loss_sum);
        if (st != MX_OK) return st;
        if (stop) {
            mx_progress_clear(&t->progress);
            if (!train_stop_signal())
                return mx_error_set(MX_ERR_INTERRUPTED, "another process of the job was interrupted at step %zu; "
                                    "checkpoint saved, continue with mixreg train --resume %s", t->run.step, cfg->out);
            return mx_error_set(MX_ERR_INTERRUPTED, "interrupted by signal %d at step %zu; checkpoint saved, continue with "
                                "mixreg train --resume %s", train_stop_signal(), t->run.step, cfg->out);
        }
    }
    return MX_OK;
}

static mx_status finish(trainer *t, mx_train_result *result)
{
    if (result->plain.n == 0) {
        /* Resumed at the very end: evaluate so the result is complete. */
        mx_status st = mx_evaluate_sharded(t->run.model, t->test, &t->run.normalizer, &t->run.rescale, MX_DEFAULT_ECE_BINS,
                                   &result->plain, &result->rescaled);
        if (st != MX_OK) return st;
        result->steps_done = t->run.step;
        result->epochs_done = (t->run.step + t->steps_per_epoch - 1) / t->steps_per_epoch;
    }
    if (!t->root) return MX_OK;
    char plain[256], rescaled[256], json[1024], path[MX_PATH_MAX + 32];
    mx_metrics_format_json(&result->plain, plain, sizeof plain);
    mx_metrics_format_json(&result->rescaled, rescaled, sizeof rescaled);
    /* Stopped by --max-steps before the last epoch's end: a result, not the
     * configured run's (mixreg runs shows it as stopped). */
    const mx_train_config *cfg = &t->run.config;
    int complete = t->run.step >= cfg->epochs * t->steps_per_epoch;
    int len = snprintf(json, sizeof json,
                       "{\"plain\": %s, \"rescaled\": %s, \"processes\": %d, \"steps\": %zu, \"complete\": %s%s}\n",
                       plain, rescaled, t->ranks, t->run.step, complete ? "true" : "false",
                       complete ? "" : ", \"stopped_by\": \"max_steps\"");
    snprintf(path, sizeof path, "%s/result.json", t->run.config.out);
    return mx_file_write_atomic(path, json, (size_t)len);
}

static mx_status run_with_signals(trainer *t, mx_train_result *result)
{
    char note[MX_PATH_MAX * 2 + 256];
    note[0] = 0;
    if (t->root && t->ranks > 1)
        snprintf(note, sizeof note,
                 "mixreg: rank 0 of %d got a stop signal (the job was interrupted, or another process "
                 "ended): stopping; the last checkpoint in %s is kept, continue with mixreg train --resume %s\n",
                 t->ranks, t->run.config.out, t->run.config.out);
    t->progress.quiet = !t->root;
    train_stop_guard guard;
    train_stop_begin(&guard, note[0] ? note : NULL);
    mx_status st = train_loop(t, result);
    train_stop_end(&guard);
    return st == MX_OK ? finish(t, result) : st;
}

/* A split against the model it is to train or test (the model's input
 * shape, classes and class names, or the training set's for a model not yet
 * made), before the first step: a test set that does not fit must not be
 * found an epoch later. Named classes on both sides must be the same list
 * (mx_dataset_match_classes makes a test set's so). */
static mx_status check_split(const char *which, const mx_dataset *ds, const mx_dataset *model_shape, char *const *names)
{
    const mx_dataset *m = model_shape;
    if (ds->channels != m->channels || ds->height != m->height || ds->width != m->width)
        return mx_error_set(MX_ERR_FORMAT, "%s images are %zux%zux%zu but the model takes %zux%zux%zu", which,
                            ds->channels, ds->height, ds->width, m->channels, m->height, m->width);
    for (size_t i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || (size_t)ds->labels[i] >= m->num_classes)
            return mx_error_set(MX_ERR_FORMAT, "%s sample %zu has label %d but the model has %zu classes", which, i,
                                (int)ds->labels[i], m->num_classes);
    for (size_t c = 0; names && ds->class_names && c < m->num_classes; c++)
        if (c >= ds->num_classes || strcmp(ds->class_names[c], names[c]))
            return mx_error_set(MX_ERR_FORMAT, "%s classes are not the model's (class %zu is '%s', not '%s'): match "
                                "them by name first", which, c, c < ds->num_classes ? ds->class_names[c] : "", names[c]);
    return MX_OK;
}

static mx_status check_shapes(const mx_dataset *train, const mx_dataset *test)
{
    if (train->n == 0) return mx_error_set(MX_ERR_ARG, "the training set is empty");
    return check_split("test", test, train, train->class_names);
}

mx_status mx_train_run(const mx_train_config *cfg, const mx_dataset *train, const mx_dataset *test,
                       mx_train_result *result)
{
    memset(result, 0, sizeof *result);
    mx_status st = mx_train_config_validate(cfg);
    if (st == MX_OK) st = check_shapes(train, test);
    if (st != MX_OK) return st;
    trainer t;
    memset(&t, 0, sizeof t);
    t.lock_fd = -1;
    t.run.config = *cfg;
    t.test = test;
    t.root = mx_dist_is_root();
    t.ranks = mx_dist_size();
    st = mx_train_dist_check_config(cfg);
    if (st == MX_OK) st = mx_class_names_copy(train->class_names, train->num_classes, &t.run.class_names); /* kept with the model */
    if (st == MX_OK) st = split_data(&t, train);
    if (st == MX_OK) st = setup_schedule(&t);
    if (st == MX_OK) st = build_fresh(&t);
    if (st == MX_OK) st = setup_buffers(&t);
    /* Only now, with everything that can be refused checked, is anything
     * written, and by rank 0 alone (it alone holds the lock); every process
     * learns whether it could. */
    if (st == MX_OK && t.root) st = claim_fresh_run_dir(&t);
    if (st == MX_OK && t.root) st = mx_train_write_config(cfg);
    if (st == MX_OK && t.root) st = train_events_open(&t.run.config, &t.events);
    /* Once, at the start: a resume continues the same session. */
    if (st == MX_OK && t.events) st = mx_train_events_hparams(t.events, cfg, t.ranks, train_wall_clock());
    st = mx_train_dist_agree(st);
    if (st == MX_OK) st = run_with_signals(&t, result);
    trainer_free(&t);
    return st;
}

mx_status mx_train_resume(const char *dir, int threads, const mx_dataset *train, const mx_dataset *test,
                          mx_train_result *result)
{
    memset(result, 0, sizeof *result);
    trainer t;
    memset(&t, 0, sizeof t);
    t.root = mx_dist_is_root();
    t.ranks = mx_dist_size();
    /* Locked before reading, so the checkpoint read is the one continued; by
     * rank 0 alone, the one writer. */
    int lock_fd = -1;
    mx_status st = t.root ? mx_run_dir_lock(dir, &lock_fd) : MX_OK;
    if (st != MX_OK) return st;
    if (t.root) mx_run_dir_remove_stale_temporaries(dir);
    st = mx_run_load(dir, 1, &t.run);
    t.lock_fd = lock_fd;
    if (st != MX_OK) {
        mx_run_dir_unlock(lock_fd);
        return st;
    }
    if (!t.run.has_train_state) {
        mx_run_free(&t.run);
        mx_run_dir_unlock(lock_fd);
        return mx_error_set(MX_ERR_FORMAT, "%s/%s holds no training state to resume from", dir, MX_RUN_MODEL_FILE);
    }
    snprintf(t.run.config.out, sizeof t.run.config.out, "%s", dir);
    if (threads) t.run.config.threads = threads;
    t.test = test;
    st = train->n ? MX_OK : mx_error_set(MX_ERR_ARG, "the training set is empty");
    if (st == MX_OK) st = split_data(&t, train);
    if (st == MX_OK) st = setup_schedule(&t);
    /* The model was loaded for batch 1: recreate it at the training batch size with the saved weights. */
    mx_model *loaded = t.run.model;
    if (st == MX_OK) st = mx_model_create(mx_model_get_spec(loaded), t.share_max, &t.run.model);
    if (st == MX_OK) {
        st = mx_model_copy_state(t.run.model, loaded);  /* parameters and buffers (running statistics) */
        mx_model_free(loaded);
    } else {
        t.run.model = loaded;
    }
    const mx_model_spec *spec = mx_model_get_spec(t.run.model);
    mx_dataset model_shape = {.channels = spec->in_channels, .height = spec->in_height, .width = spec->in_width,
                              .num_classes = spec->num_classes};
    if (st == MX_OK) st = check_split("training", train, &model_shape, t.run.class_names);
    if (st == MX_OK) st = check_split("test", test, &model_shape, t.run.class_names);
    if (st == MX_OK && t.run.step > t.total_steps)
        st = mx_error_set(MX_ERR_FORMAT, "%s: checkpoint step %zu is beyond the run's %zu steps", dir, t.run.step, t.total_steps);
    if (st == MX_OK) st = setup_buffers(&t);
    t.saved_any = 1;
    if (st == MX_OK && t.root) st = mx_train_write_config(&t.run.config);
    if (st == MX_OK && t.root) st = mx_train_trim_log(t.log_path, t.run.step);
    if (st == MX_OK && t.root) st = train_events_open(&t.run.config, &t.events);
    st = mx_train_dist_agree(st);
    if (st == MX_OK) st = run_with_signals(&t, result);
    trainer_free(&t);
    return st;
}
