#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "mixreg/evaluate.h"
#include "mixreg/run.h"
#include "mixreg/source.h"
#include "mixreg/train.h"

static const char eval_help[] =
    "usage: mixreg eval RUN_DIR [options]\n"
    "\n"
    "Evaluates a trained model on the test split: accuracy, NLL, ECE and MCE (15\n"
    "equal-width bins), Brier score; plain and with the paper's rescaled prediction\n"
    "(input shrunk towards the training mean by theta_bar, shrinkage undone on the logits).\n"
    "\n"
    "  --data fashion-mnist|idx:DIR|DIR  dataset (default: the one the run trained on)\n"
    "  --rescale off|on|both    which predictions to report (default both)\n"
    "  --batch-size B           evaluation batch (default 500)\n"
    "  --threads T              (default: all cores)\n"
    "  --json                   one JSON object {\"plain\": {...}, \"rescaled\": {...}}\n";

int cmd_eval(int argc, char **argv)
{
    const char *run_dir = NULL, *data = NULL;
    int want_plain = 1, want_rescaled = 1, json = 0, threads = 0;
    size_t batch = 500;
    cli_args a;
    cli_args_init(&a, "eval", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            fputs(eval_help, stdout);
            return 0;
        } else if (cli_flag_value(&a, "--data")) {
            data = a.value;
        } else if (cli_flag_value(&a, "--rescale")) {
            if (!strcmp(a.value, "off")) want_plain = 1, want_rescaled = 0;
            else if (!strcmp(a.value, "on")) want_plain = 0, want_rescaled = 1;
            else if (!strcmp(a.value, "both")) want_plain = 1, want_rescaled = 1;
            else cli_usage_error("eval: --rescale: unknown '%s' (expected off, on or both)", a.value);
        } else if (cli_flag_value(&a, "--batch-size")) {
            batch = cli_parse_size(&a, "--batch-size", 1, 65536);
        } else if (cli_flag_value(&a, "--threads")) {
            threads = (int)cli_parse_size(&a, "--threads", 1, 1024);
        } else if (cli_flag_switch(&a, "--json")) {
            json = 1;
        } else if (cli_current(&a)[0] != '-' && !run_dir) {
            run_dir = cli_current(&a);
        } else {
            cli_unknown_argument(&a);
        }
    }
    if (!run_dir) cli_usage_error("eval: missing RUN_DIR (see mixreg eval --help)");
    mx_set_threads(threads);

    mx_run run;
    mx_status st = mx_run_load(run_dir, batch, &run);
    if (st != MX_OK) return cli_report(st);
    mx_dataset test = {0};
    st = mx_data_load(data ? data : run.config.data, "test", &test);
    mx_metrics plain, rescaled;
    if (st == MX_OK)
        st = mx_evaluate(run.model, &test, &run.normalizer, &run.rescale, MX_DEFAULT_ECE_BINS,
                         want_plain ? &plain : NULL, want_rescaled ? &rescaled : NULL);
    mx_dataset_free(&test);
    double theta_bar = run.rescale.theta_bar;
    mx_run_free(&run);
    if (st != MX_OK) return cli_report(st);

    if (json) {
        char text[512];
        printf("{");
        if (want_plain) {
            mx_metrics_format_json(&plain, text, sizeof text);
            printf("\"plain\": %s", text);
        }
        if (want_rescaled) {
            mx_metrics_format_json(&rescaled, text, sizeof text);
            printf("%s\"rescaled\": %s", want_plain ? ", " : "", text);
        }
        printf(", \"theta_bar\": %.10g}\n", theta_bar);
    } else {
        printf("%s (theta_bar %.4f)\n", run_dir, theta_bar);
        print_metrics_table(want_plain ? &plain : NULL, want_rescaled ? &rescaled : NULL);
    }
    return 0;
}
