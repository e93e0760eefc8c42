#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "mixreg/calibration.h"
#include "mixreg/evaluate.h"
#include "mixreg/plot.h"
#include "mixreg/predictions.h"
#include "mixreg/run.h"
#include "mixreg/source.h"
#include "mixreg/train.h"

static const char eval_help[] =
    "usage: mixreg eval RUN_DIR [options]\n"
    "\n"
    "Evaluates a trained model on the test split: accuracy (and top-5 with more than 5\n"
    "classes), NLL, ECE, adaptive (equal-mass) ECE and MCE, Brier score; plain and with\n"
    "the paper's rescaled prediction (input shrunk towards the training mean by\n"
    "theta_bar, shrinkage undone on the logits).\n"
    "\n"
    "  --data fashion-mnist|idx:DIR|DIR  dataset (default: the one the run trained on)\n"
    "  --rescale off|on|both    which predictions to report (default both)\n"
    "  --bins N                 ECE/MCE bins (default 15)\n"
    "  --temperature off|fit    also report temperature-scaled modes, one T fitted by NLL on\n"
    "                           a held-out split of the training data (default off)\n"
    "  --val-split F            that split when the run had none (default 0.1; the samples\n"
    "                           were then seen in training, which the output states)\n"
    "  --reliability FILE       reliability diagram + confidence histogram (.png or .svg)\n"
    "  --predictions FILE       per-sample probabilities (.csv or .npy: index, label, p0..)\n"
    "                           of the rescaled prediction if reported, else the plain one\n"
    "  --batch-size B           evaluation batch (default 500)\n"
    "  --threads T              (default: all cores)\n"
    "  --json                   one JSON object, one entry per mode\n";

typedef struct {
    const char *data, *reliability, *predictions;
    int want_plain, want_rescaled, fit_temperature, json, threads;
    size_t batch, bins;
    double val_split;
} eval_options;

typedef struct {
    const char *name;
    float *logits;        /* n x C, owned */
    double temperature;   /* 1 = none */
    mx_metrics metrics;
    double *rel_conf, *rel_acc;
    size_t *rel_count;
} eval_mode;

static void parse_eval_flags(int argc, char **argv, eval_options *o, const char **run_dir)
{
    cli_args a;
    cli_args_init(&a, "eval", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            fputs(eval_help, stdout);
            exit(0);
        } else if (cli_flag_value(&a, "--data")) {
            o->data = a.value;
        } else if (cli_flag_value(&a, "--rescale")) {
            if (!strcmp(a.value, "off")) o->want_plain = 1, o->want_rescaled = 0;
            else if (!strcmp(a.value, "on")) o->want_plain = 0, o->want_rescaled = 1;
            else if (!strcmp(a.value, "both")) o->want_plain = 1, o->want_rescaled = 1;
            else cli_usage_error("eval: --rescale: unknown '%s' (expected off, on or both)", a.value);
        } else if (cli_flag_value(&a, "--temperature")) {
            if (!strcmp(a.value, "fit")) o->fit_temperature = 1;
            else if (!strcmp(a.value, "off")) o->fit_temperature = 0;
            else cli_usage_error("eval: --temperature: unknown '%s' (expected off or fit)", a.value);
        } else if (cli_flag_value(&a, "--val-split")) {
            o->val_split = cli_parse_double(&a, "--val-split", 1e-6, 0.9);
        } else if (cli_flag_value(&a, "--bins")) {
            o->bins = cli_parse_size(&a, "--bins", 1, 1000);
        } else if (cli_flag_value(&a, "--reliability")) {
            o->reliability = a.value;
        } else if (cli_flag_value(&a, "--predictions")) {
            o->predictions = a.value;
        } else if (cli_flag_value(&a, "--batch-size")) {
            o->batch = cli_parse_size(&a, "--batch-size", 1, 65536);
        } else if (cli_flag_value(&a, "--threads")) {
            o->threads = (int)cli_parse_size(&a, "--threads", 1, 1024);
        } else if (cli_flag_switch(&a, "--json")) {
            o->json = 1;
        } else if (cli_current(&a)[0] != '-' && !*run_dir) {
            *run_dir = cli_current(&a);
        } else {
            cli_unknown_argument(&a);
        }
    }
    if (!*run_dir) cli_usage_error("eval: missing RUN_DIR (see mixreg eval --help)");
}

/* Fits T on the run's validation hold-out (or a fresh split of the training data). */
static mx_status fit_temperature(mx_run *run, const char *data, const eval_options *o, int rescaled, double *t,
                                 size_t *n_fit, int *seen_in_training)
{
    mx_dataset full = {0}, train = {0}, val = {0};
    double fraction = run->config.val_split > 0 ? run->config.val_split : o->val_split;
    *seen_in_training = !(run->config.val_split > 0);
    mx_status st = mx_data_load(data, "train", &full);
    if (st == MX_OK) st = mx_dataset_split(&full, run->config.seed, fraction, &train, &val);
    mx_dataset_free(&full);
    mx_dataset_free(&train);
    size_t classes = mx_model_get_spec(run->model)->num_classes;
    float *logits = st == MX_OK ? malloc(val.n * classes * sizeof(float) + 1) : NULL;
    int32_t *labels = st == MX_OK ? malloc(val.n * sizeof(int32_t) + 1) : NULL;
    if (st == MX_OK && (!logits || !labels)) st = mx_error_set(MX_ERR_NOMEM, "out of memory fitting the temperature");
    if (st == MX_OK) st = mx_evaluate_logits(run->model, &val, &run->normalizer, rescaled ? &run->rescale : NULL, logits, labels);
    if (st == MX_OK) st = mx_temperature_fit(logits, labels, val.n, classes, t);
    *n_fit = val.n;
    free(logits);
    free(labels);
    mx_dataset_free(&val);
    return st;
}

static void print_json(const eval_mode *modes, size_t count, double theta_bar, const char *fit_note)
{
    char text[512];
    printf("{");
    for (size_t i = 0; i < count; i++) {
        mx_metrics_format_json(&modes[i].metrics, text, sizeof text);
        if (modes[i].temperature != 1.0) {
            /* Insert the temperature into the object. */
            size_t len = strlen(text);
            snprintf(text + len - 1, sizeof text - len + 1, ", \"temperature\": %.6f}", modes[i].temperature);
        }
        printf("%s\"%s\": %s", i ? ", " : "", modes[i].name, text);
    }
    printf(", \"theta_bar\": %.10g%s}\n", theta_bar, fit_note);
}

static mx_status evaluate_modes(mx_run *run, const mx_dataset *test, const eval_options *o, const char *data,
                                eval_mode *modes, size_t *count, int32_t *labels, char *fit_note, size_t note_cap)
{
    size_t classes = mx_model_get_spec(run->model)->num_classes, n = test->n;
    const int base_rescaled[2] = {0, 1};
    const char *names[2][2] = {{"plain", "temperature"}, {"rescaled", "rescaled+temperature"}};
    mx_status st = MX_OK;
    *count = 0;
    for (int r = 0; r < 2 && st == MX_OK; r++) {
        if (!(r ? o->want_rescaled : o->want_plain)) continue;
        for (int temp = 0; temp <= o->fit_temperature && st == MX_OK; temp++) {
            eval_mode *m = &modes[(*count)++];
            m->name = names[r][temp];
            m->temperature = 1.0;
            m->logits = malloc(n * classes * sizeof(float) + 1);
            m->rel_conf = calloc(o->bins, sizeof(double));
            m->rel_acc = calloc(o->bins, sizeof(double));
            m->rel_count = calloc(o->bins, sizeof(size_t));
            if (!m->logits || !m->rel_conf || !m->rel_acc || !m->rel_count)
                return mx_error_set(MX_ERR_NOMEM, "out of memory for evaluation");
            st = mx_evaluate_logits(run->model, test, &run->normalizer, base_rescaled[r] ? &run->rescale : NULL, m->logits,
                                    labels);
            if (st == MX_OK && temp) {
                size_t n_fit;
                int seen;
                st = fit_temperature(run, data, o, r, &m->temperature, &n_fit, &seen);
                if (st == MX_OK) {
                    mx_logits_scale(m->logits, n * classes, m->temperature);
                    snprintf(fit_note, note_cap, ", \"temperature_fit\": {\"n\": %zu, \"seen_in_training\": %s}", n_fit,
                             seen ? "true" : "false");
                }
            }
            if (st == MX_OK)
                st = mx_metrics_from_logits(m->logits, labels, n, classes, o->bins, &m->metrics, m->rel_conf, m->rel_acc,
                                            m->rel_count);
        }
    }
    return st;
}

static mx_status write_outputs(const eval_mode *modes, size_t count, const int32_t *labels, size_t n, size_t classes,
                               const eval_options *o, const char *run_dir)
{
    mx_status st = MX_OK;
    if (o->reliability) {
        mx_reliability rel[4];
        for (size_t i = 0; i < count; i++)
            rel[i] = (mx_reliability){modes[i].name, o->bins, modes[i].rel_conf, modes[i].rel_acc, modes[i].rel_count};
        char title[512];
        snprintf(title, sizeof title, "Reliability: %s", run_dir);
        st = mx_plot_reliability(o->reliability, title, rel, count);
        mx_plot_release_caches();
    }
    if (st == MX_OK && o->predictions) {
        /* The rescaled prediction is the one a mixup model should be used with. */
        const eval_mode *m = &modes[0];
        for (size_t i = 0; i < count; i++)
            if (!strcmp(modes[i].name, "rescaled")) m = &modes[i];
        float *probs = malloc(n * classes * sizeof(float) + 1);
        if (!probs) return mx_error_set(MX_ERR_NOMEM, "out of memory for predictions");
        mx_softmax_temperature(m->logits, n, classes, 1.0, probs);
        st = mx_predictions_write(o->predictions, probs, labels, n, classes);
        free(probs);
    }
    return st;
}

int cmd_eval(int argc, char **argv)
{
    eval_options o = {.want_plain = 1, .want_rescaled = 1, .batch = 500, .bins = MX_DEFAULT_ECE_BINS, .val_split = 0.1};
    const char *run_dir = NULL;
    parse_eval_flags(argc, argv, &o, &run_dir);
    mx_set_threads(o.threads);

    mx_run run;
    mx_status st = mx_run_load(run_dir, o.batch, &run);
    if (st != MX_OK) return cli_report(st);
    const char *data = o.data ? o.data : run.config.data;
    mx_dataset test = {0};
    eval_mode modes[4];
    memset(modes, 0, sizeof modes);
    size_t count = 0;
    char fit_note[160] = "";
    int32_t *labels = NULL;
    st = mx_data_load(data, "test", &test);
    if (st == MX_OK) {
        labels = malloc(test.n * sizeof(int32_t) + 1);
        st = labels ? evaluate_modes(&run, &test, &o, data, modes, &count, labels, fit_note, sizeof fit_note)
                    : mx_error_set(MX_ERR_NOMEM, "out of memory for labels");
    }
    if (st == MX_OK)
        st = write_outputs(modes, count, labels, test.n, mx_model_get_spec(run.model)->num_classes, &o, run_dir);
    if (st == MX_OK) {
        if (o.json) {
            print_json(modes, count, run.rescale.theta_bar, fit_note);
        } else {
            printf("%s (theta_bar %.4f)\n", run_dir, run.rescale.theta_bar);
            print_metrics_header();
            for (size_t i = 0; i < count; i++) print_metrics_row(modes[i].name, &modes[i].metrics);
            for (size_t i = 0; i < count; i++)
                if (modes[i].temperature != 1.0) printf("%s: T = %.4f\n", modes[i].name, modes[i].temperature);
            if (strstr(fit_note, "true"))
                printf("note: no validation split in this run; T was fitted on %.0f%% of the training set, which the "
                       "model saw in training\n", 100 * o.val_split);
        }
    }
    for (size_t i = 0; i < count; i++) {
        free(modes[i].logits);
        free(modes[i].rel_conf);
        free(modes[i].rel_acc);
        free(modes[i].rel_count);
    }
    free(labels);
    mx_dataset_free(&test);
    mx_run_free(&run);
    return st == MX_OK ? 0 : cli_report(st);
}
