#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "commands.h"
#include "mixreg/theta.h"

static const char theta_help[] =
    "usage: mixreg theta --alpha A [--json]\n"
    "\n"
    "The paper's statistics of theta = max(lambda, 1 - lambda), lambda ~ Beta(A, A):\n"
    "theta_bar = E[theta] (the shrinkage of inputs and labels), Var(theta),\n"
    "gamma^2 = E[(1 - theta)^2] and the implied label smoothing 1 - theta_bar.\n";

int cmd_theta(int argc, char **argv)
{
    double alpha = -1;
    int json = 0;
    cli_args a;
    cli_args_init(&a, "theta", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            fputs(theta_help, stdout);
            return 0;
        } else if (cli_flag_value(&a, "--alpha")) {
            alpha = cli_parse_double(&a, "--alpha", 0, 1e6);
        } else if (cli_flag_switch(&a, "--json")) {
            json = 1;
        } else {
            cli_unknown_argument(&a);
        }
    }
    if (alpha < 0) cli_usage_error("theta: --alpha is required (see mixreg theta --help)");
    mx_theta_stats s;
    mx_status st = mx_theta_stats_compute(alpha, &s);
    if (st != MX_OK) return cli_report(st);
    if (json)
        printf("{\"alpha\": %.17g, \"theta_bar\": %.17g, \"theta_var\": %.17g, \"gamma2\": %.17g, "
               "\"label_smoothing\": %.17g}\n",
               s.alpha, s.theta_bar, s.theta_var, s.gamma2, s.label_smoothing);
    else
        printf("alpha            %g\n"
               "theta_bar        %.10f   (E[max(lambda, 1 - lambda)]: inputs and labels shrink by this)\n"
               "Var(theta)       %.10f\n"
               "gamma^2          %.10f   (E[(1 - theta)^2])\n"
               "label smoothing  %.10f   (1 - theta_bar, for balanced classes)\n",
               s.alpha, s.theta_bar, s.theta_var, s.gamma2, s.label_smoothing);
    return 0;
}
