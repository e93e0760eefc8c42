/* Plain / rescaled / temperature-scaled evaluation of a run, shared by the
 * eval command and the experiment runner. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/calibration.h"
#include "mixreg/class_map_metrics.h"
#include "mixreg/dist.h"
#include "mixreg/eval_modes.h"
#include "mixreg/eval_shard.h"
#include "mixreg/evaluate.h"
#include "mixreg/source.h"

/* T fitted on the validation hold-out of the run's training data: the
 * logits sharded over the job's ranks, the fit on rank 0, T sent to all. */
static mx_status fit_temperature(mx_run *run, const mx_dataset *train, const char *data_spec, double fallback_split,
                                 int rescaled, double *t, size_t *n_fit, int *seen)
{
    mx_dataset loaded = {0}, rest = {0}, val = {0};
    double fraction = run->config.val_split > 0 ? run->config.val_split : fallback_split;
    *seen = !(run->config.val_split > 0);
    mx_status st = MX_OK;
    if (!train) {
        st = mx_train_data_load(&run->config, data_spec, "train", &loaded);
        /* An image folder's classes by name, as the test split's (mx_dataset_match_classes). */
        if (st == MX_OK)
            st = mx_dataset_match_classes(&loaded, data_spec, run->class_names,
                                          mx_model_get_spec(run->model)->num_classes, NULL, 0);
        train = &loaded;
    }
    if (st == MX_OK) st = mx_dataset_split(train, run->config.seed, fraction, &rest, &val);
    mx_dataset_free(&loaded);
    mx_dataset_free(&rest);
    size_t classes = mx_model_get_spec(run->model)->num_classes;
    const size_t held = mx_dist_is_root() ? val.n : 0;  /* only rank 0 receives the logits */
    float *logits = st == MX_OK ? malloc(held * classes * sizeof(float) + 1) : NULL;
    int32_t *labels = st == MX_OK ? malloc(held * sizeof(int32_t) + 1) : NULL;
    if (st == MX_OK && (!logits || !labels)) st = mx_error_set(MX_ERR_NOMEM, "out of memory fitting the temperature");
    st = mx_eval_agree(st);
    if (st == MX_OK)
        st = mx_evaluate_logits_sharded(run->model, &val, &run->normalizer, rescaled ? &run->rescale : NULL, logits,
                                        labels);
    if (st == MX_OK && mx_dist_is_root()) st = mx_temperature_fit(logits, labels, val.n, classes, t);
    st = mx_eval_agree(st);
    if (st == MX_OK) st = mx_dist_broadcast(t, sizeof *t);
    *n_fit = val.n;
    free(logits);
    free(labels);
    mx_dataset_free(&val);
    return st;
}

/* Rank 0's metrics and reliability data of mode m on every rank (a no-op in
 * a one-process job). */
static mx_status share_mode(mx_eval_mode *m, size_t bins)
{
    mx_status st = mx_dist_broadcast(&m->metrics, sizeof m->metrics);
    if (st == MX_OK) st = mx_dist_broadcast(m->rel_conf, bins * sizeof *m->rel_conf);
    if (st == MX_OK) st = mx_dist_broadcast(m->rel_acc, bins * sizeof *m->rel_acc);
    if (st == MX_OK) st = mx_dist_broadcast(m->rel_count, bins * sizeof *m->rel_count);
    return st;
}

mx_status mx_eval_report_compute(mx_run *run, const mx_dataset *test, const mx_dataset *train, const char *data_spec,
                                 const mx_eval_request *request, mx_eval_report *out)
{
    static const char *const names[2][2] = {{"plain", "temperature"}, {"rescaled", "rescaled+temperature"}};
    memset(out, 0, sizeof *out);
    out->n = test->n;
    out->classes = mx_model_get_spec(run->model)->num_classes;
    out->bins = request->bins;
    const int root = mx_dist_is_root();
    const size_t held = root ? test->n : 0;  /* only rank 0 receives the logits and labels */
    out->labels = malloc(held * sizeof(int32_t) + 1);
    if (!out->labels) return mx_error_set(MX_ERR_NOMEM, "out of memory for evaluation");
    mx_status st = MX_OK;
    /* With a class map the labels are the dataset's classes, not the model's:
     * the map, not the model's class count, bounds them. */
    mx_dataset view = *test;
    if (request->class_map) {
        if (request->class_map->num_model_classes != out->classes)
            return mx_error_set(MX_ERR_ARG, "class map: made for %zu model classes, the model has %zu",
                                request->class_map->num_model_classes, out->classes);
        view.num_classes = 0;
    }
    for (int r = 0; r < 2 && st == MX_OK; r++) {
        if (!(r ? request->rescaled : request->plain)) continue;
        for (int temp = 0; temp <= (request->temperature != 0) && st == MX_OK; temp++) {
            mx_eval_mode *m = &out->modes[out->count++];
            m->name = names[r][temp];
            m->rescaled = r;
            m->temperature = 1.0;
            m->logits = malloc(held * out->classes * sizeof(float) + 1);
            m->rel_conf = calloc(request->bins, sizeof(double));
            m->rel_acc = calloc(request->bins, sizeof(double));
            m->rel_count = calloc(request->bins, sizeof(size_t));
            if (!m->logits || !m->rel_conf || !m->rel_acc || !m->rel_count)
                st = mx_error_set(MX_ERR_NOMEM, "out of memory for evaluation");
            st = mx_eval_agree(st);  /* a rank short of memory must not leave the others waiting */
            if (st == MX_OK)
                st = mx_evaluate_logits_sharded(run->model, &view, &run->normalizer, r ? &run->rescale : NULL,
                                                m->logits, out->labels);
            if (st == MX_OK && temp) {
                st = fit_temperature(run, train, data_spec, request->val_split, r, &m->temperature, &out->fit_n,
                                     &out->fit_seen_in_training);
                if (st == MX_OK && root) mx_logits_scale(m->logits, test->n * out->classes, m->temperature);
            }
            /* The metrics on rank 0, which alone holds every logit, then sent to all. */
            if (st == MX_OK && root && request->class_map)
                st = mx_metrics_class_mapped(request->class_map, m->logits, out->labels, test->n, request->bins,
                                             &m->metrics, m->rel_conf, m->rel_acc, m->rel_count);
            else if (st == MX_OK && root)
                st = mx_metrics_from_logits(m->logits, out->labels, test->n, out->classes, request->bins, &m->metrics,
                                            m->rel_conf, m->rel_acc, m->rel_count);
            st = mx_eval_agree(st);
            if (st == MX_OK) st = share_mode(m, request->bins);
        }
    }
    return st;
}

void mx_eval_report_free(mx_eval_report *report)
{
    for (size_t i = 0; i < report->count; i++) {
        free(report->modes[i].logits);
        free(report->modes[i].rel_conf);
        free(report->modes[i].rel_acc);
        free(report->modes[i].rel_count);
    }
    free(report->labels);
    memset(report, 0, sizeof *report);
}

static void add_finite(cJSON *o, const char *key, double v)
{
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

char *mx_eval_report_to_json(const mx_eval_report *report, double theta_bar, const char *rescale_undefined)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddNumberToObject(root, "bins", (double)report->bins);
    cJSON_AddNumberToObject(root, "n", (double)report->n);
    if (rescale_undefined) {
        char why[256];
        snprintf(why, sizeof why, "not defined for this run (%s)", rescale_undefined);
        cJSON_AddNullToObject(root, "theta_bar");
        cJSON_AddStringToObject(root, "rescaled", why);
    } else {
        cJSON_AddNumberToObject(root, "theta_bar", theta_bar);
    }
    cJSON *modes = cJSON_AddObjectToObject(root, "modes");
    for (size_t i = 0; modes && i < report->count; i++) {
        const mx_eval_mode *m = &report->modes[i];
        cJSON *o = cJSON_AddObjectToObject(modes, m->name);
        if (!o) break;
        add_finite(o, "accuracy", m->metrics.accuracy);
        if (m->metrics.top5 >= 0) add_finite(o, "top5", m->metrics.top5);
        add_finite(o, "nll", m->metrics.nll);
        add_finite(o, "ece", m->metrics.ece);
        add_finite(o, "ece_adaptive", m->metrics.ece_adaptive);
        add_finite(o, "mce", m->metrics.mce);
        add_finite(o, "brier", m->metrics.brier);
        cJSON_AddNumberToObject(o, "n", (double)m->metrics.n);
        cJSON_AddNumberToObject(o, "temperature", m->temperature);
        cJSON *rel = cJSON_AddObjectToObject(o, "reliability");
        if (!rel) break;
        cJSON *conf = cJSON_AddArrayToObject(rel, "confidence"), *acc = cJSON_AddArrayToObject(rel, "accuracy"),
              *count = cJSON_AddArrayToObject(rel, "count");
        for (size_t b = 0; conf && acc && count && b < report->bins; b++) {
            cJSON_AddItemToArray(conf, cJSON_CreateNumber(m->rel_conf[b]));
            cJSON_AddItemToArray(acc, cJSON_CreateNumber(m->rel_acc[b]));
            cJSON_AddItemToArray(count, cJSON_CreateNumber((double)m->rel_count[b]));
        }
    }
    if (report->fit_n) {
        cJSON *fit = cJSON_AddObjectToObject(root, "temperature_fit");
        if (fit) {
            cJSON_AddNumberToObject(fit, "n", (double)report->fit_n);
            cJSON_AddBoolToObject(fit, "seen_in_training", report->fit_seen_in_training);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
