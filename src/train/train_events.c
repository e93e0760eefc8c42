/* The training run's TensorBoard events (train_events.h). */
#include "train/train_events.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

#include "mixreg/run_dir.h"

double train_wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

mx_status train_events_open(const mx_train_config *cfg, mx_tfevents **events)
{
    *events = NULL;
    if (!cfg->tensorboard) return MX_OK;
    char dir[MX_PATH_MAX + 32];
    mx_status st = mx_run_dir_subdir(cfg->out, "tensorboard", dir, sizeof dir);
    return st == MX_OK ? mx_tfevents_open(dir, events) : st;
}

mx_status train_events_step(mx_tfevents *events, size_t step, double loss, double lr, double accuracy,
                            double img_per_s)
{
    const double now = train_wall_clock();
    mx_status st = mx_tfevents_scalar(events, "train/loss", (int64_t)step, now, loss);
    if (st == MX_OK) st = mx_tfevents_scalar(events, "train/lr", (int64_t)step, now, lr);
    if (st == MX_OK) st = mx_tfevents_scalar(events, "train/accuracy", (int64_t)step, now, accuracy);
    if (st == MX_OK && img_per_s > 0) st = mx_tfevents_scalar(events, "train/img_per_s", (int64_t)step, now, img_per_s);
    return st;
}

/* Scalars "<prefix>/accuracy" etc. for one evaluation mode: those log.jsonl
 * has, top5 only with more than 5 classes (where it says something) and the
 * adaptive ECE only when it was computed. */
static mx_status metrics(mx_tfevents *events, size_t step, const char *prefix, const mx_metrics *m)
{
    const char *names[7] = {"accuracy", "nll", "ece", "mce", "brier", "top5", "ece_adaptive"};
    double values[7] = {m->accuracy, m->nll, m->ece, m->mce, m->brier, m->top5, m->ece_adaptive};
    const double now = train_wall_clock();
    char tag[128];
    mx_status st = MX_OK;
    for (int k = 0; k < 7 && st == MX_OK; k++) {
        if ((k == 5 && m->top5 < 0) || (k == 6 && !isfinite(m->ece_adaptive))) continue;
        snprintf(tag, sizeof tag, "%s/%s", prefix, names[k]);
        st = mx_tfevents_scalar(events, tag, (int64_t)step, now, values[k]);
    }
    return st;
}

static mx_status histograms_of(mx_tfevents *events, size_t step, mx_model *model)
{
    const mx_param_info *table;
    const size_t count = mx_model_param_tensors(model, &table);
    const float *params = mx_model_params(model);
    char tag[128];
    mx_status st = MX_OK;
    for (size_t i = 0; i < count && st == MX_OK; i++) {
        snprintf(tag, sizeof tag, "weights/%s", table[i].name);
        st = mx_tfevents_histogram(events, tag, (int64_t)step, train_wall_clock(), params + table[i].offset,
                                   table[i].numel);
    }
    return st;
}

mx_status train_events_epoch(mx_tfevents *events, size_t step, double mean_loss, const mx_metrics *test_plain,
                             const mx_metrics *test_rescaled, const mx_metrics *val_plain,
                             const mx_metrics *val_rescaled, mx_model *histograms)
{
    mx_status st = mx_tfevents_scalar(events, "train/epoch_loss", (int64_t)step, train_wall_clock(), mean_loss);
    if (st == MX_OK) st = metrics(events, step, "test/plain", test_plain);
    if (st == MX_OK) st = metrics(events, step, "test/rescaled", test_rescaled);
    if (st == MX_OK && val_plain) st = metrics(events, step, "val/plain", val_plain);
    if (st == MX_OK && val_plain) st = metrics(events, step, "val/rescaled", val_rescaled);
    if (st == MX_OK && histograms) st = histograms_of(events, step, histograms);
    if (st == MX_OK) st = mx_tfevents_flush(events);
    return st;
}
