#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "args.h"
#include "commands.h"
#include "mixreg/calibration.h"
#include "mixreg/dist.h"
#include "mixreg/eval_modes.h"
#include "mixreg/fileio.h"
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
    "theta_bar, shrinkage undone on the logits). That prediction is not defined for a\n"
    "run trained with CutMix, --mixup-only-inputs or --mixup-only-labels (docs/method.md\n"
    "section 4): eval then reports the plain modes and says so.\n"
    "Under mpirun each process evaluates a share of the batches and rank 0 reports: the\n"
    "same numbers as one process (docs/distributed.md).\n"
    "\n"
    "  --data SOURCE            dataset (default: the one the run trained on), one of\n"
    "                           " CLI_DATA_FORMS "\n"
    "  --rescale off|on|both    which predictions to report (default both; plain only where the\n"
    "                           rescaled prediction is not defined, and on/both are an error there)\n"
    "  --theta-bar T            the rescaled prediction with shrinkage T in (0, 1] instead of\n"
    "                           the run's theta_bar (1 = plain; a sweep shows which shrinkage\n"
    "                           the model prefers, for an ERM run too)\n"
    "  --bins N                 ECE/MCE bins (default 15)\n"
    "  --temperature off|fit    also report temperature-scaled modes, one T fitted by NLL on\n"
    "                           a held-out split of the training data (default off)\n"
    "  --val-split F            that split when the run had none (default 0.1; the samples\n"
    "                           were then seen in training, which the output states)\n"
    "  --reliability FILE       reliability diagram + confidence histogram (.png or .svg)\n"
    "  --class-map FILE         the dataset's classes map onto the model's (ObjectNet on ImageNet;\n"
    "                           format in docs/formats.md): only mapped classes are scored,\n"
    "                           accuracy by the ObjectNet rule (needs --data folder:DIR)\n"
    "  --predictions FILE       per-sample probabilities (.csv or .npy: index, label, p0..)\n"
    "                           of the rescaled prediction if reported, else the plain one;\n"
    "                           with both, then rescaled_logit0.., plain_p0.., plain_logit0..\n"
    "  --batch-size B           evaluation batch: at most B samples at once (default 500), fewer\n"
    "                           when $MIXREG_INFERENCE_MEMORY bytes (default 512 MiB) hold fewer\n"
    "  --threads T              (default: all cores)\n"
    "  --json                   one JSON object, one entry per mode\n";

typedef struct {
    const char *data, *reliability, *predictions, *class_map;
    int want_plain, want_rescaled, rescale_given, fit_temperature, json, threads;
    size_t batch, bins;
    double val_split;
    double theta_bar; /* --theta-bar, 0 when not given */
} eval_options;

/* An output file's format is its name's: a wrong one is a bad flag, refused
 * before the evaluation rather than after it. */
static void check_extension(const char *flag, const char *path, const char *a, const char *b)
{
    size_t len = strlen(path);
    for (int k = 0; k < 2; k++) {
        const char *ext = k ? b : a;
        size_t n = strlen(ext);
        if (len > n && !strcasecmp(path + len - n, ext)) return;
    }
    cli_usage_error("eval: %s %s: the name must end in %s or %s", flag, path, a, b);
}

static void parse_eval_flags(int argc, char **argv, eval_options *o, const char **run_dir)
{
    cli_args a;
    cli_args_init(&a, "eval", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            cli_print_help(eval_help);
            exit(0);
        } else if (cli_flag_value(&a, "--data")) {
            o->data = a.value;
        } else if (cli_flag_value(&a, "--rescale")) {
            o->rescale_given = 1;
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
        } else if (cli_flag_value(&a, "--theta-bar")) {
            o->theta_bar = cli_parse_double(&a, "--theta-bar", 1e-3, 1.0);
        } else if (cli_flag_value(&a, "--bins")) {
            o->bins = cli_parse_size(&a, "--bins", 1, 1000);
        } else if (cli_flag_value(&a, "--reliability")) {
            o->reliability = a.value;
            check_extension("--reliability", a.value, ".png", ".svg");
        } else if (cli_flag_value(&a, "--class-map")) {
            o->class_map = a.value;
        } else if (cli_flag_value(&a, "--predictions")) {
            o->predictions = a.value;
            check_extension("--predictions", a.value, ".csv", ".npy");
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

/* undefined: why the run has no rescaled prediction (NULL: it has one). */
static void print_json(const mx_eval_mode *modes, size_t count, double theta_bar, const char *undefined,
                       const char *fit_note)
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
    if (undefined)
        printf("%s\"rescaled\": \"not defined for this run (%s)\", \"theta_bar\": null%s}\n", count ? ", " : "",
               undefined, fit_note);
    else
        printf("%s\"theta_bar\": %.10g%s}\n", count ? ", " : "", theta_bar, fit_note);
}

static const mx_eval_mode *find_mode(const mx_eval_mode *modes, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (!strcmp(modes[i].name, name)) return &modes[i];
    return NULL;
}

/* The rescaled prediction's probabilities (the one a mixup model should be
 * used with) if reported, else the plain one's, as columns p0..; with both
 * reported, then the rescaled logits and the plain probabilities and logits,
 * each block named by its mode (rescaled_logit, plain_p, plain_logit), so a
 * reader of p0.. finds what it always found. */
static mx_status write_predictions(const mx_eval_mode *modes, size_t count, const int32_t *labels, size_t n,
                                   size_t classes, const char *path)
{
    const mx_eval_mode *rescaled = find_mode(modes, count, "rescaled"), *plain = find_mode(modes, count, "plain");
    const mx_eval_mode *first = rescaled ? rescaled : plain ? plain : &modes[0];
    int both = rescaled && plain;
    float *probs = malloc((both ? 2 : 1) * n * classes * sizeof(float) + 1);
    if (!probs) return mx_error_set(MX_ERR_NOMEM, "out of memory for predictions");
    float *plain_probs = probs + n * classes;
    mx_softmax_temperature(first->logits, n, classes, 1.0, probs);
    mx_prediction_block blocks[4] = {{"p", probs}};
    size_t used = 1;
    if (both) {
        mx_softmax_temperature(plain->logits, n, classes, 1.0, plain_probs);
        blocks[used++] = (mx_prediction_block){"rescaled_logit", rescaled->logits};
        blocks[used++] = (mx_prediction_block){"plain_p", plain_probs};
        blocks[used++] = (mx_prediction_block){"plain_logit", plain->logits};
    }
    mx_status st = mx_predictions_write_blocks(path, blocks, used, labels, n, classes);
    free(probs);
    return st;
}

static mx_status write_outputs(const mx_eval_mode *modes, size_t count, const int32_t *labels, size_t n, size_t classes,
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
    if (st == MX_OK && o->predictions) st = write_predictions(modes, count, labels, n, classes, o->predictions);
    return st;
}

int cmd_eval(int argc, char **argv)
{
    eval_options o = {.want_plain = 1, .want_rescaled = 1, .batch = 500, .bins = MX_DEFAULT_ECE_BINS, .val_split = 0.1};
    const char *run_dir = NULL;
    parse_eval_flags(argc, argv, &o, &run_dir);
    cli_check_data("eval", o.data);
    mx_set_threads(o.threads);

    mx_run run;
    mx_status st = mx_run_load(run_dir, 0, &run);  /* the weights; buffers once the batch is known */
    if (st != MX_OK) return cli_report(st);
    /* Decided from the run's settings, so a run trained before mixreg knew
     * (which stored a theta_bar for it) is read the same way. */
    const char *undefined = mx_train_config_rescale_undefined(&run.config);
    if (undefined && (o.want_rescaled || o.theta_bar > 0)) {
        if (o.rescale_given || o.theta_bar > 0) {
            mx_run_free(&run);
            return cli_report(mx_error_set(MX_ERR_ARG,
                                           "%s: the rescaled prediction is not defined for %s (%s; "
                                           "docs/method.md section 4); use --rescale off",
                                           o.theta_bar > 0 ? "--theta-bar" : "--rescale", run_dir, undefined));
        }
        o.want_rescaled = 0;
    }
    const double run_theta_bar = run.rescale.theta_bar;
    if (o.theta_bar > 0) run.rescale.theta_bar = o.theta_bar;
    const char *data = o.data ? o.data : run.config.data;
    if (o.class_map && strncmp(data, "folder:", 7))
        cli_usage_error("eval: --class-map needs an image folder (--data folder:DIR), not '%s'", data);
    mx_dataset test = {0};
    mx_eval_report report = {0};
    char fit_note[160] = "";
    st = mx_train_data_load(&run.config, data, "test", &test);
    /* A class map relates the data's classes to the model's; otherwise they are matched by name. */
    if (st == MX_OK && !o.class_map)
        st = cli_match_classes(&test, data, "test", run.class_names, mx_model_get_spec(run.model)->num_classes);
    /* Inference buffers for batches of --batch-size, or of the whole test split if smaller. */
    if (st == MX_OK) st = mx_evaluate_plan(run.model, test.n && test.n < o.batch ? test.n : o.batch);
    mx_eval_request request = {o.want_plain, o.want_rescaled, o.fit_temperature, o.bins, o.val_split, NULL};
    mx_class_map map = {0};
    if (st == MX_OK && o.class_map) {
        char **names = NULL;
        size_t count = 0;
        st = mx_data_class_names(data, &names, &count);
        if (st == MX_OK)
            st = mx_class_map_load(o.class_map, names, count, mx_model_get_spec(run.model)->num_classes, &map);
        mx_free_names(names, count);
        request.class_map = &map;
    }
    if (st == MX_OK) st = mx_eval_report_compute(&run, &test, NULL, data, &request, &report);
    mx_train_data_report(data, "test", &test);
    if (report.fit_n)
        snprintf(fit_note, sizeof fit_note, ", \"temperature_fit\": {\"n\": %zu, \"seen_in_training\": %s}", report.fit_n,
                 report.fit_seen_in_training ? "true" : "false");
    const mx_eval_mode *modes = report.modes;
    size_t count = report.count;
    /* Under mpirun every rank evaluated a shard; rank 0 alone holds the
     * logits, writes the files and prints. */
    const int root = mx_dist_is_root();
    if (st == MX_OK && root) st = write_outputs(modes, count, report.labels, test.n, report.classes, &o, run_dir);
    if (st == MX_OK && root) {
        if (o.json) {
            print_json(modes, count, run.rescale.theta_bar, undefined, fit_note);
        } else {
            if (undefined) printf("%s\n", run_dir);
            else if (o.theta_bar > 0)
                printf("%s (theta_bar %.4f as given; the run's is %.4f)\n", run_dir, o.theta_bar, run_theta_bar);
            else printf("%s (theta_bar %.4f)\n", run_dir, run.rescale.theta_bar);
            print_metrics_header();
            for (size_t i = 0; i < count; i++) print_metrics_row(modes[i].name, &modes[i].metrics);
            if (undefined) printf("rescaled: not defined for this run (%s)\n", undefined);
            for (size_t i = 0; i < count; i++)
                if (modes[i].temperature != 1.0) printf("%s: T = %.4f\n", modes[i].name, modes[i].temperature);
            if (report.fit_n && report.fit_seen_in_training)
                printf("note: no validation split in this run; T was fitted on %.0f%% of the training set, which the "
                       "model saw in training\n", 100 * o.val_split);
        }
    }
    mx_eval_report_free(&report);
    mx_class_map_free(&map);
    mx_dataset_free(&test);
    mx_run_free(&run);
    return st == MX_OK ? 0 : cli_report(st);
}
