#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"

static const char usage[] =
    "mixreg " MIXREG_VERSION ": train and evaluate image classifiers with Mixup\n"
    "\n"
    "usage: mixreg <command> [options]\n"
    "\n"
    "commands:\n"
    "  train       train a model (default: an MLP on Fashion-MNIST with Mixup, alpha 1)\n"
    "  eval        evaluate a run directory: accuracy, NLL, ECE, MCE, Brier, plain and rescaled\n"
    "  predict     top-k classes for PNG images or a test split (rescaled for mixup models)\n"
    "  analyze     Jacobian/Lipschitz estimates and the paper's Taylor regularisation terms for a run\n"
    "  experiment  a grid of runs from a file, with a table, figures and an HTML report\n"
    "  theta       theta_bar, Var(theta), gamma^2 and the implied label smoothing for an alpha\n"
    "  runs        list run directories with their settings and final metrics\n"
    "  bench       time the training step (compare with the PyTorch peer)\n"
    "\n"
    "mixreg <command> --help shows a command's options; mixreg --version the version.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("mixreg %s\n", MIXREG_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "theta")) return cmd_theta(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "runs")) return cmd_runs(argc - 2, argv + 2);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc - 2, argv + 2);
    if (!strcmp(cmd, "analyze")) return cmd_analyze(argc - 2, argv + 2);
    if (!strcmp(cmd, "experiment")) return cmd_experiment(argc - 2, argv + 2);
    cli_usage_error("unknown command '%s' (commands: train, eval, predict, analyze, experiment, theta, runs, bench; see mixreg --help)", cmd);
}
