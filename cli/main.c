#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "mixreg/dist.h"

static const char usage[] =
    "mixreg " MIXREG_VERSION ": train and evaluate image classifiers with Mixup\n"
    "\n"
    "usage: mixreg <command> [options]\n"
    "\n"
    "commands:\n"
    "  train       train a model (default: an MLP on Fashion-MNIST with Mixup, alpha 1)\n"
    "  eval        evaluate a run directory: accuracy, NLL, ECE, MCE, Brier, plain and rescaled\n"
    "  predict     top-k classes for JPEG or PNG images or a test split (rescaled for mixup models)\n"
    "  analyze     Jacobian/Lipschitz estimates and the paper's Taylor regularisation terms for a run\n"
    "  experiment  a grid of runs from a file, with a table, figures and an HTML report\n"
    "  import      a PyTorch state dict (.safetensors or .pt; torchvision/timm names) as a run\n"
    "  theta       theta_bar, Var(theta), gamma^2 and the implied label smoothing for an alpha\n"
    "  runs        list run directories with their settings and final metrics\n"
    "  bench       time the training step (compare with the PyTorch peer)\n"
    "\n"
    "mixreg <command> --help shows a command's options; mixreg --version the version.\n";

/* OpenMP's wait policy. oneDNN and the cpu backend's kernels thread with
 * libgomp, whose default lets a thread that finished its share spin (300,000
 * rounds) before it sleeps. Measured with `mixreg bench` (batch 128, 2
 * threads, 2 cores; training / evaluation images per second, the median of 3
 * runs on idle cores, the mean of 2 with one other busy process):
 *                                  idle cores              one other busy process
 *                             resnet20     lenet5           resnet20     lenet5
 *   default spinning        1,834/5,343  35.2k/132k         545/1,723  12.3k/71k
 *   GOMP_SPINCOUNT=1000     1,769/5,630  32.0k/137k         628/2,605  12.0k/54k
 *   OMP_WAIT_POLICY=passive 1,554/4,820  22.8k/65k          648/3,129  15.0k/66k
 * (and while serial loops still ran between OpenMP regions, default spinning
 * on busy cores cost 6.6x: 51 against 339 img/s). A short spin keeps nearly
 * all of spinning's gain on idle cores, where back-to-back regions wake a
 * sleeping thread otherwise, and most of passive waiting's on shared ones, so
 * with neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT set, main() sets
 * GOMP_SPINCOUNT=1000 and executes itself again, once: libgomp reads its
 * environment in a constructor, before main runs (a setenv() here alone was
 * measured to change nothing). Either variable set by the user wins. */
static void set_omp_waiting(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* No /proc (not Linux): carry on with the default policy. */
}

static int run_command(int argc, char **argv)
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
        printf("mixreg %s%s\n", MIXREG_VERSION, mx_dist_built_with_mpi() ? " (MPI)" : "");
        return 0;
    }
    cli_check_environment();
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "theta")) return cmd_theta(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "runs")) return cmd_runs(argc - 2, argv + 2);
    if (!strcmp(cmd, "predict")) return cmd_predict(argc - 2, argv + 2);
    if (!strcmp(cmd, "analyze")) return cmd_analyze(argc - 2, argv + 2);
    if (!strcmp(cmd, "experiment")) return cmd_experiment(argc - 2, argv + 2);
    if (!strcmp(cmd, "import")) return cmd_import(argc - 2, argv + 2);
    cli_usage_error("unknown command '%s' (commands: train, eval, predict, analyze, experiment, import, theta, runs, bench; see mixreg --help)", cmd);
}

int main(int argc, char **argv)
{
    set_omp_waiting(argv);
    /* Under mpirun/srun: join the job (after the re-exec above, which keeps
     * the launcher's environment). Exits (usage errors, --help) leave it via
     * the atexit handler mx_dist_init registers. */
    if (mx_dist_init(&argc, &argv) != MX_OK) {
        /* One line for the job, not one per process, where the rank is known. */
        if (mx_dist_launcher_rank(NULL) <= 0) fprintf(stderr, "mixreg: error: %s\n", mx_error_message());
        mx_dist_finalize(1);
        return 1;
    }
    int rc = run_command(argc, argv);
    /* A runtime failure (exit 1) may be one rank's alone: stop the whole job
     * (MPI_Abort) rather than leave the others waiting in a collective. Usage
     * errors (2) and an agreed stop on a signal (130) are every rank's. */
    mx_dist_finalize(rc == 1);
    return rc;
}
