#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "commands.h"
#include "mixreg/source.h"
#include "mixreg/theta.h"

static const char theta_help[] =
    "usage: mixreg theta --alpha A [--mix-prob P] [--data SPEC] [--json]\n"
    "\n"
    "The paper's statistics of theta = max(lambda, 1 - lambda), lambda ~ Beta(A, A):\n"
    "theta_bar = E[theta] (the shrinkage of inputs and labels), Var(theta),\n"
    "gamma^2 = E[(1 - theta)^2] and the implied label smoothing 1 - theta_bar.\n"
    "\n"
    "  --mix-prob P  a sample is mixed at all with probability P (train's --mix-prob):\n"
    "                theta is 1 for the others, so theta_bar = (1 - P) + P theta_bar(A)\n"
    "  --data SOURCE  also the implied targets on that training set (SOURCE is one of\n"
    "                " CLI_DATA_FORMS "):\n"
    "                mixup shrinks a one-hot label towards the class prior y_bar,\n"
    "                y~ = theta_bar y + (1 - theta_bar) y_bar, so class c's target is\n"
    "                theta_bar + (1 - theta_bar) y_bar[c] and every other class k gets\n"
    "                (1 - theta_bar) y_bar[k]\n"
    "  --json        one JSON object\n";

/* The class prior of a training set: label frequencies. */
static mx_status class_prior(const char *data, double **prior, size_t *classes)
{
    mx_dataset train = {0};
    mx_status st = mx_data_load(data, "train", &train);
    if (st != MX_OK) return st;
    *classes = train.num_classes;
    *prior = calloc(train.num_classes, sizeof(double));
    if (!*prior) st = mx_error_set(MX_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == MX_OK && i < train.n; i++) (*prior)[train.labels[i]] += 1.0 / (double)train.n;
    mx_dataset_free(&train);
    return st;
}

static void print_prior(const mx_theta_stats *s, const char *data, const double *prior, size_t classes, int json)
{
    double lo = 1, hi = 0;
    for (size_t c = 0; c < classes; c++) lo = prior[c] < lo ? prior[c] : lo, hi = prior[c] > hi ? prior[c] : hi;
    if (json) {
        printf(", \"data\": \"%s\", \"class_prior\": [", data);
        for (size_t c = 0; c < classes; c++) printf("%s%.10g", c ? ", " : "", prior[c]);
        printf("], \"target_true_class\": [");
        for (size_t c = 0; c < classes; c++) printf("%s%.10g", c ? ", " : "", s->theta_bar + (1 - s->theta_bar) * prior[c]);
        printf("], \"target_other_class\": [");
        for (size_t c = 0; c < classes; c++) printf("%s%.10g", c ? ", " : "", (1 - s->theta_bar) * prior[c]);
        printf("]");
        return;
    }
    printf("\nimplied targets on %s (%zu classes, prior %.4f..%.4f%s):\n", data, classes, lo, hi,
           hi - lo < 1e-9 ? ", balanced: plain label smoothing" : "");
    printf("  class  prior     target if true  target if other\n");
    for (size_t c = 0; c < classes; c++)
        printf("  %5zu  %.6f  %.6f        %.6f\n", c, prior[c], s->theta_bar + (1 - s->theta_bar) * prior[c],
               (1 - s->theta_bar) * prior[c]);
}

int cmd_theta(int argc, char **argv)
{
    double alpha = -1, mix_prob = 1;
    int json = 0;
    const char *data = NULL;
    cli_args a;
    cli_args_init(&a, "theta", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            cli_print_help(theta_help);
            return 0;
        } else if (cli_flag_value(&a, "--alpha")) {
            alpha = cli_parse_double(&a, "--alpha", 0, MX_MAX_ALPHA);
        } else if (cli_flag_value(&a, "--mix-prob")) {
            mix_prob = cli_parse_double(&a, "--mix-prob", 0, 1);
        } else if (cli_flag_value(&a, "--data")) {
            data = a.value;
        } else if (cli_flag_switch(&a, "--json")) {
            json = 1;
        } else {
            cli_unknown_argument(&a);
        }
    }
    if (alpha < 0) cli_usage_error("theta: --alpha is required (see mixreg theta --help)");
    cli_check_data("theta", data);
    mx_theta_stats s;
    mx_status st = mx_theta_stats_mixed(alpha, mix_prob, &s);
    if (st != MX_OK) return cli_report_usage(st);
    double *prior = NULL;
    size_t classes = 0;
    if (data && (st = class_prior(data, &prior, &classes)) != MX_OK) return cli_report(st);
    if (json)
        printf("{\"alpha\": %.17g, \"mix_prob\": %.17g, \"theta_bar\": %.17g, \"theta_var\": %.17g, "
               "\"gamma2\": %.17g, \"label_smoothing\": %.17g",
               s.alpha, mix_prob, s.theta_bar, s.theta_var, s.gamma2, s.label_smoothing);
    else
        printf("alpha            %g%s\n"
               "theta_bar        %.10f   (E[max(lambda, 1 - lambda)]: inputs and labels shrink by this)\n"
               "Var(theta)       %.10f\n"
               "gamma^2          %.10f   (E[(1 - theta)^2])\n"
               "label smoothing  %.10f   (1 - theta_bar, for balanced classes)\n",
               s.alpha, mix_prob < 1 ? " (mixed with probability --mix-prob)" : "", s.theta_bar, s.theta_var, s.gamma2,
               s.label_smoothing);
    if (prior) print_prior(&s, data, prior, classes, json);
    if (json) printf("}\n");
    free(prior);
    return 0;
}
