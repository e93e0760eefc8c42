#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
 * runs on idle cores, the mean of 2 with one other busy process), on Zen 4:
 *                                  idle cores              one other busy process
 *                             resnet20     lenet5           resnet20     lenet5
 *   default spinning        1,834/5,343  35.2k/132k         545/1,723  12.3k/71k
 *   GOMP_SPINCOUNT=1000     1,769/5,630  32.0k/137k         628/2,605  12.0k/54k
 *   OMP_WAIT_POLICY=passive 1,554/4,820  22.8k/65k          648/3,129  15.0k/66k
 * (and while serial loops still ran between OpenMP regions, default spinning
 * on busy cores cost 6.6x: 51 against 339 img/s). On a Xeon with AMX (one
 * run each) 1,000 rounds gave away much of spinning's gain on idle cores:
 *                             resnet20     lenet5           resnet20     lenet5
 *   GOMP_SPINCOUNT=1000     1,145/5,974  41.1k/162k         588/3,015  23.6k/84k
 *   GOMP_SPINCOUNT=10000    1,179/6,791  47.8k/214k         523/2,094  12.5k/117k
 *   GOMP_SPINCOUNT=50000    1,245/6,858  50.5k/219k         435/2,262  15.0k/15k
 *   OMP_WAIT_POLICY=active  1,234/7,021  49.1k/205k         457/2,564  16.5k/64k
 * So the spin follows the machine as mixreg starts: with no other task
 * runnable (/proc/loadavg less this process's own runnable threads, the
 * fewest of five looks) the threads spin
 * 50,000 rounds, else 1,000.
 * With neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT set, main() sets
 * GOMP_SPINCOUNT so and executes itself again, once: libgomp reads its
 * environment in a constructor, before main runs (a setenv() here alone was
 * measured to change nothing). Either variable set by the user wins. */
/* This process's runnable threads (libraries start theirs before main:
 * OpenBLAS's). */
static long own_running(void)
{
    DIR *tasks = opendir("/proc/self/task");
    long count = 0;
    if (!tasks) return 1;
    for (struct dirent *e; (e = readdir(tasks)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        /* "pid (comm) S ...": the state follows the last ')'. */
        const char *close = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
        count += close && close[1] == ' ' && close[2] == 'R';
        fclose(f);
    }
    closedir(tasks);
    return count ? count : 1;
}

static long others_running(void)
{
    /* The fewest over five looks 2 ms apart: a task started beside this one
     * (the rest of a shell pipeline) is runnable for a moment only. */
    long fewest = -1;
    for (int look = 0; look < 5 && fewest != 0; look++) {
        if (look) nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
        FILE *f = fopen("/proc/loadavg", "r");
        long running = 0; /* its fourth field, "runnable/total", counts this process too */
        if (!f) return 0;
        if (fscanf(f, "%*s %*s %*s %ld/", &running) != 1) running = 1;
        fclose(f);
        long others = running - own_running();
        if (others < 0) others = 0; /* a thread of ours that stopped between the two reads */
        if (fewest < 0 || others < fewest) fewest = others;
    }
    return fewest;
}

static void set_omp_waiting(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", others_running() ? "1000" : "50000", 1) != 0) return;
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
