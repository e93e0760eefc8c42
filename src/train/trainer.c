/* The training loop: shuffle, gather, mix, forward, loss, backward, SGD step;
 * evaluate, log and checkpoint after every epoch. Every buffer is allocated
 * before the first step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mixreg/evaluate.h"
#include "mixreg/fileio.h"
#include "mixreg/optim.h"
#include "mixreg/rescale.h"
#include "mixreg/rng.h"
#include "mixreg/run.h"
#include "mixreg/step.h"
#include "mixreg/theta.h"
#include "mixreg/train.h"
#include "train/progress.h"

typedef struct {
    mx_run run;
    mx_schedule schedule;
    mx_stepper stepper;
    size_t batch;
    uint32_t *order;
    char log_path[MX_PATH_MAX + 32];
} trainer;

static void trainer_free(trainer *t)
{
    mx_stepper_free(&t->stepper);
    mx_run_free(&t->run);
    free(t->order);
}

static mx_status prepare_run_dir(const mx_train_config *cfg)
{
    if (!cfg->out[0]) return mx_error_set(MX_ERR_ARG, "no run directory given (--out)");
    char path[MX_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", cfg->out, MX_RUN_MODEL_FILE);
    struct stat sb;
    if (stat(path, &sb) == 0)
        return mx_error_set(MX_ERR_ARG, "%s already holds a trained model; choose another --out", cfg->out);
    mx_status st = mx_make_dirs(cfg->out);
    if (st != MX_OK) return st;
    char *json = mx_train_config_to_json(cfg);
    if (!json) return mx_error_set(MX_ERR_NOMEM, "out of memory writing the config");
    snprintf(path, sizeof path, "%s/config.json", cfg->out);
    st = mx_file_write_atomic(path, json, strlen(json));
    free(json);
    return st;
}

static mx_status trainer_init(trainer *t, const mx_train_config *cfg, const mx_dataset *train)
{
    t->run.config = *cfg;
    mx_status st = mx_schedule_parse(cfg->schedule, &t->schedule);
    if (st != MX_OK) return st;
    t->batch = cfg->batch_size < train->n ? cfg->batch_size : train->n;
    t->schedule.base_lr = cfg->lr;
    t->schedule.warmup_epochs = cfg->warmup_epochs;
    t->schedule.epochs = cfg->epochs;
    t->schedule.steps_per_epoch = (train->n + t->batch - 1) / t->batch;

    if (train->channels > MX_MAX_CHANNELS)
        return mx_error_set(MX_ERR_ARG, "data has %zu channels, at most %d are supported", train->channels, MX_MAX_CHANNELS);
    float mean[MX_MAX_CHANNELS], std[MX_MAX_CHANNELS];
    mx_dataset_channel_stats(train, mean, std);
    st = mx_normalizer_init(&t->run.normalizer, train->channels, mean, std);
    if (st != MX_OK) return mx_error_wrap(st, "training data");

    mx_model_spec spec = cfg->model;
    spec.in_channels = train->channels;
    spec.in_height = train->height;
    spec.in_width = train->width;
    spec.num_classes = train->num_classes;
    st = mx_model_create(&spec, t->batch, &t->run.model);
    if (st != MX_OK) return st;
    mx_model_init_params(t->run.model, cfg->seed);

    mx_theta_stats theta;
    st = mx_theta_stats_compute(cfg->mixup.alpha, &theta);
    if (st == MX_OK) st = mx_rescale_stats_alloc(&t->run.rescale, mx_model_input_size(t->run.model), spec.num_classes);
    if (st == MX_OK) st = mx_rescale_stats_compute(&t->run.rescale, train, &t->run.normalizer, theta.theta_bar);
    mx_sgd_config sgd = {cfg->momentum, cfg->nesterov, cfg->weight_decay};
    if (st == MX_OK) st = mx_stepper_init(&t->stepper, t->run.model, &t->run.normalizer, &cfg->mixup, &sgd);
    if (st != MX_OK) return st;
    t->order = malloc(train->n * sizeof(uint32_t));
    if (!t->order) return mx_error_set(MX_ERR_NOMEM, "out of memory for the epoch order");
    snprintf(t->log_path, sizeof t->log_path, "%s/log.jsonl", cfg->out);
    return MX_OK;
}

static mx_status end_of_epoch(trainer *t, const mx_dataset *test, size_t epoch, double mean_loss, double lr,
                              double img_per_s, double elapsed, mx_train_result *result, mx_progress *progress)
{
    mx_status st = mx_evaluate(t->run.model, test, &t->run.normalizer, &t->run.rescale, MX_DEFAULT_ECE_BINS,
                               &result->plain, &result->rescaled);
    if (st != MX_OK) return mx_error_wrap(st, "evaluating the test set");
    t->run.epoch = epoch;
    st = mx_run_save(t->run.config.out, &t->run);
    if (st != MX_OK) return st;
    char plain[256], rescaled[256], line[1024];
    mx_metrics_format_json(&result->plain, plain, sizeof plain);
    mx_metrics_format_json(&result->rescaled, rescaled, sizeof rescaled);
    snprintf(line, sizeof line,
             "{\"epoch\": %zu, \"step\": %zu, \"lr\": %.6g, \"train_loss\": %.6f, \"img_per_s\": %.1f, "
             "\"time_s\": %.2f, \"test\": {\"plain\": %s, \"rescaled\": %s}}",
             epoch, t->run.step, lr, mean_loss, img_per_s, elapsed, plain, rescaled);
    st = mx_file_append_line(t->log_path, line);
    if (st != MX_OK) return st;
    snprintf(line, sizeof line, "epoch %zu/%zu  loss %.4f  test acc %.2f%% (rescaled %.2f%%)  NLL %.4f (%.4f)  %.0f img/s",
             epoch, t->run.config.epochs, mean_loss, 100 * result->plain.accuracy, 100 * result->rescaled.accuracy,
             result->plain.nll, result->rescaled.nll, img_per_s);
    mx_progress_line(progress, line);
    return MX_OK;
}

static mx_status train_loop(trainer *t, const mx_dataset *train, const mx_dataset *test, mx_train_result *result)
{
    const mx_train_config *cfg = &t->run.config;
    size_t steps_per_epoch = t->schedule.steps_per_epoch;
    size_t total = cfg->epochs * steps_per_epoch;
    if (cfg->max_steps && cfg->max_steps < total) total = cfg->max_steps;
    mx_progress progress;
    mx_progress_begin(&progress, cfg->epochs, steps_per_epoch, total);
    double train_time = 0;
    size_t images = 0;
    for (size_t epoch = 1; epoch <= cfg->epochs && t->run.step < total; epoch++) {
        /* Per-epoch streams: the shuffle and the mixing of epoch e depend only on (seed, e). */
        mx_rng shuffle, mix;
        mx_rng_init(&shuffle, cfg->seed, ((uint64_t)epoch << 32) | MX_STREAM_SHUFFLE);
        mx_rng_init(&mix, cfg->seed, ((uint64_t)epoch << 32) | MX_STREAM_MIXUP);
        mx_rng_permutation(&shuffle, t->order, train->n);
        double loss_sum = 0, lr = 0, epoch_start = mx_now_seconds();
        size_t steps = 0;
        for (size_t s = 0; s < steps_per_epoch && t->run.step < total; s++) {
            size_t first = s * t->batch, n = train->n - first < t->batch ? train->n - first : t->batch;
            lr = mx_schedule_lr(&t->schedule, t->run.step);
            double loss = mx_stepper_step(&t->stepper, train, t->order + first, n, &mix, lr);
            if (!isfinite(loss)) {
                mx_progress_clear(&progress);
                return mx_error_set(MX_ERR_NUMERIC,
                                    "loss became %s at epoch %zu step %zu (try a lower --lr); %s", isnan(loss) ? "NaN" : "infinite",
                                    epoch, s + 1,
                                    t->run.epoch ? "the last good model (end of the previous epoch) is kept in the run directory"
                                                 : "no model was saved");
            }
            loss_sum += loss;
            steps++;
            t->run.step++;
            images += n;
            double now = mx_now_seconds();
            mx_progress_step(&progress, epoch, s + 1, t->run.step, loss,
                             (double)images / (train_time + now - epoch_start));
        }
        train_time += mx_now_seconds() - epoch_start;
        result->epochs_done = epoch;
        result->steps_done = t->run.step;
        result->final_loss = loss_sum / (double)steps;
        result->train_img_per_s = (double)images / train_time;
        mx_status st = end_of_epoch(t, test, epoch, result->final_loss, lr, result->train_img_per_s,
                                    mx_now_seconds() - progress.start, result, &progress);
        if (st != MX_OK) return st;
    }
    return MX_OK;
}

mx_status mx_train_run(const mx_train_config *cfg, const mx_dataset *train, const mx_dataset *test,
                       mx_train_result *result)
{
    memset(result, 0, sizeof *result);
    mx_status st = mx_train_config_validate(cfg);
    if (st != MX_OK) return st;
    if (train->n == 0) return mx_error_set(MX_ERR_ARG, "the training set is empty");
    if (test->channels != train->channels || test->height != train->height || test->width != train->width)
        return mx_error_set(MX_ERR_ARG, "test images are %zux%zux%zu but training images are %zux%zux%zu", test->channels,
                            test->height, test->width, train->channels, train->height, train->width);
    trainer t;
    memset(&t, 0, sizeof t);
    st = trainer_init(&t, cfg, train);
    if (st == MX_OK) st = prepare_run_dir(cfg);
    if (st == MX_OK) st = train_loop(&t, train, test, result);
    if (st == MX_OK) {
        char plain[256], rescaled[256], json[1024], path[MX_PATH_MAX + 32];
        mx_metrics_format_json(&result->plain, plain, sizeof plain);
        mx_metrics_format_json(&result->rescaled, rescaled, sizeof rescaled);
        int len = snprintf(json, sizeof json, "{\"plain\": %s, \"rescaled\": %s}\n", plain, rescaled);
        snprintf(path, sizeof path, "%s/result.json", cfg->out);
        st = mx_file_write_atomic(path, json, (size_t)len);
    }
    trainer_free(&t);
    return st;
}
