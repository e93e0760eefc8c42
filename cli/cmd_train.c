#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "mixreg/dist.h"
#include "mixreg/run.h"
#include "mixreg/run_dir.h"
#include "mixreg/source.h"
#include "mixreg/theta.h"
#include "mixreg/train.h"

static const char train_help[] =
    "usage: mixreg train [options]\n"
    "\n"
    "Trains a classifier with Mixup, evaluates it on the test set after every epoch\n"
    "(plain and with the paper's rescaled prediction) and writes a run directory.\n"
    "\n"
    "data and model:\n"
    "  --data " CLI_DATA_FORMS "  (default fashion-mnist)\n"
    "  --label fine|coarse      CIFAR-100 labels: 100 fine or 20 coarse classes (default fine)\n"
    "  --image-size S           image folders: shorter side to S*256/224, centre S x S crop (default 224)\n"
    "  --skip-bad-images        image folders: leave out files that fail to decode (streamed: replace\n"
    "                           each by the next image of its class), count them\n"
    "  --stream auto|on|off     image folders: decode samples from disk as batches need them (on) or\n"
    "                           all into memory first (off); auto streams a split larger than a quarter\n"
    "                           of memory, and the training set with --augment rrc (default auto)\n"
    "  --normalize computed|imagenet|M,M,M/S,S,S  input normalisation: per-channel mean/std computed\n"
    "                           from the training data (default), torchvision's ImageNet values, or given\n"
    "  --model M                architecture (default mlp): mlp, logreg, lenet5, resnet20, resnet32,\n"
    "                           resnet56, resnet110, preact18, wrn-D-K (e.g. wrn-28-10), resnet50\n"
    "  --hidden W1,W2,...       MLP hidden widths (default 512,512)\n"
    "  --backend ref|cpu|cuda   CNN kernels: cpu = oneDNN (default), ref = the reference loops; both\n"
    "                           give the same model to ~1e-5, each repeatable bit for bit; cuda\n"
    "                           (NVIDIA GPUs) is refused with the reason: not runnable yet\n"
    "  --precision fp32|bf16    CNNs on the cpu backend: bf16 convolutions (bfloat16 inputs, float32\n"
    "                           sums, float32 weights and the rest), as PyTorch's autocast (default fp32)\n"
    "mixup:\n"
    "  --mixup-alpha A          lambda ~ Beta(A, A); 0 = plain ERM (default 1)\n"
    "  --mixup-mode batch|pair|elem  one lambda per batch, per pair or per sample (default batch)\n"
    "  --mixup-partner perm|flip|roll  random permutation, reversed or rolled batch (default perm)\n"
    "  --mixup-theta            fold lambda to theta = max(lambda, 1 - lambda) (the paper's form)\n"
    "  --label-smoothing E      smooth the one-hot targets before mixing (default 0)\n"
    "  --mixup-only-inputs      ablation: mix the inputs, keep each sample's own label\n"
    "  --mixup-only-labels      ablation: mix the labels, keep each sample's own input\n"
    "  --cutmix-alpha A         CutMix with lambda ~ Beta(A, A), lambda corrected to the clipped box (default 0: off)\n"
    "  --cutmix-switch-prob P   with both Mixup and CutMix on, the chance a batch uses CutMix (default 0.5)\n"
    "  --mix-prob P             the chance a batch is mixed at all (default 1)\n"
    "  --cutmix-minmax MIN,MAX  CutMix boxes with sides drawn in [MIN, MAX] of the image's (timm's;\n"
    "                           turns CutMix on, lambda = the box's area share; default off)\n"
    "  --mixup-off-epoch N      mix (Mixup and CutMix) in the first N epochs only (default 0: all)\n"
    "augmentation:\n"
    "  --augment SPEC           none | flip | crop:PAD | crop:PAD,flip | rrc | rrc,flip: per sample, seeded\n"
    "                           (default none; CIFAR recipe crop:4,flip; ImageNet recipe rrc,flip: random\n"
    "                           resized crop of the original image to --image-size, image folders only)\n"
    "  --workers N              threads preparing the next batches while the model trains (default 0:\n"
    "                           in the training thread); results do not depend on N\n"
    "optimisation:\n"
    "  --epochs N               (default 20)\n"
    "  --batch-size B           (default 128)\n"
    "  --lr LR                  peak learning rate (default 0.05)\n"
    "  --momentum M             (default 0.9)\n"
    "  --nesterov               Nesterov momentum\n"
    "  --weight-decay WD        L2 penalty added to the gradient, as PyTorch's SGD (default 5e-4)\n"
    "  --schedule constant|cosine|step:E1,E2,...  (default cosine; step multiplies by 0.1)\n"
    "  --warmup-epochs W        linear warm-up (default 1)\n"
    "run:\n"
    "  --seed S                 (default 0); same seed + same threads = same bits\n"
    "  --threads T              (default: all cores)\n"
    "  --out RUN_DIR            (default runs/<date>-<time>)\n"
    "  --max-steps N            stop after N steps in all (for quick looks)\n"
    "  --resume RUN_DIR         continue an interrupted run exactly (only --threads may be given too)\n"
    "checkpoints and logs:\n"
    "  --save-every N|Nsteps    checkpoint every N epochs (default 1) or N steps\n"
    "  --keep K                 keep the K newest checkpoints in RUN_DIR/checkpoints (default 2)\n"
    "  --val-split F            hold out F of the training set; best.safetensors = best validation accuracy\n"
    "  --log-every N            a JSONL/TensorBoard point every N steps (default 50, 0 = none)\n"
    "  --no-tensorboard         do not write RUN_DIR/tensorboard event files\n"
    "  --tb-histograms          also log weight histograms to TensorBoard at each epoch end\n"
    "processes (mpirun -np N mixreg train ...; --batch-size is the global batch, --threads per process):\n"
    "  --sync-bn                batch norm statistics over the global batch, not each process's share\n"
    "rescaled prediction:\n"
    "  --rescale-stats augmented|clean  the pass computing x_bar and y_bar after training uses the\n"
    "                           training pipeline without mixing (augmented, the default, as the\n"
    "                           paper's reference implementation) or clean images\n"
    "\n"
    "Numbers are decimal (0.5, 1e-3), with no spaces around them; a value outside a\n"
    "setting's range is refused, here, in experiment files and in a run's stored\n"
    "config alike (docs/formats.md lists the ranges).\n";

/* The help text, then timm's names for the same settings from the settings
 * table (its alias column), so the list cannot fall behind the table. */
static void print_train_help(void)
{
    cli_print_help(train_help);
    printf("\ntimm's names for the same settings (train.py's flags, accepted as aliases):\n");
    const mx_setting *table;
    size_t count = mx_settings(&table);
    for (size_t i = 0; i < count; i++) {
        if (!table[i].alias) continue;
        char alias[CLI_FLAG_CAP];
        snprintf(alias, sizeof alias, "%s%s", strlen(table[i].alias) == 1 ? "-" : "--", table[i].alias);
        printf("  %-24s = --%s\n", alias, table[i].flag);
    }
    printf("  (two differ from timm's in where they apply: -b is the global batch under mpirun, not each\n"
           "  process's; --output is the run directory itself, not a folder that gets one per run)\n");
}

/* The table's flags and aliases, for the "did you mean" of an unknown flag. */
static void know_train_flags(cli_args *a)
{
    const mx_setting *table;
    size_t count = mx_settings(&table);
    char flag[CLI_FLAG_CAP];
    for (size_t i = 0; i < count; i++)
        for (int k = 0; k < 2; k++) {
            const char *name = k ? table[i].alias : table[i].flag;
            if (!name) continue;
            snprintf(flag, sizeof flag, "%s%s", strlen(name) == 1 ? "-" : "--", name);
            cli_known_flag(a, flag);
        }
}

/* The flag's name without its dashes into name ("--mixup-alpha=1" ->
 * "mixup-alpha"; "-b" -> "b": one letter takes one dash, a longer name two),
 * 0 if arg is not written as a flag. */
static int train_flag_name(const char *arg, char *name, size_t cap)
{
    size_t dashes = !strncmp(arg, "--", 2) ? 2 : arg[0] == '-' ? 1 : 0;
    size_t len = strcspn(arg, "=") - dashes;
    if (!dashes || !len || len >= cap || (dashes == 1) != (len == 1)) return 0;
    memcpy(name, arg + dashes, len);
    name[len] = '\0';
    return 1;
}

/* Parses the flags into cfg through the shared flag table; returns the
 * --resume directory (or NULL) and counts the flags other than --resume and
 * --threads in *others. */
static const char *parse_train_flags(int argc, char **argv, mx_train_config *cfg, int *others)
{
    const char *resume = NULL;
    *others = 0;
    cli_args a;
    cli_args_init(&a, "train", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        const char *arg = cli_current(&a);
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            print_train_help();
            exit(0);
        }
        if (cli_flag_value(&a, "--resume")) {
            resume = a.value;
            continue;
        }
        /* "--name", "--name=value" or "--name value": the name decides which. */
        char name[64];
        mx_flag_kind kind = train_flag_name(arg, name, sizeof name) ? mx_train_flag_kind(name) : MX_FLAG_UNKNOWN;
        if (kind == MX_FLAG_UNKNOWN) {
            know_train_flags(&a);
            cli_unknown_argument(&a);
        }
        char flag[80];
        snprintf(flag, sizeof flag, "%s%s", strlen(name) == 1 ? "-" : "--", name);
        const char *value = NULL;
        if (kind == MX_FLAG_VALUE && cli_flag_value(&a, flag)) value = a.value;
        if (kind == MX_FLAG_SWITCH) cli_flag_switch(&a, flag); /* rejects "--switch=value" */
        if (mx_train_config_set(cfg, name, value) != MX_OK) cli_usage_error("train: %s", mx_error_message());
        if (strcmp(mx_train_flag_canonical(name), "threads")) (*others)++;
    }
    return resume;
}

/* --threads is per process. Without it, the processes of a job on one
 * machine share its cores instead of each taking all of them. */
static void set_threads_per_process(int requested)
{
    int local = mx_dist_local_size();
    if (!requested && local > 1) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        requested = online > local ? (int)(online / local) : 1;
    }
    mx_set_threads(requested);
}

static int finish_training(mx_status st, const mx_train_result *result, const char *out)
{
    if (st == MX_ERR_INTERRUPTED) {
        if (mx_dist_is_root()) fprintf(stderr, "mixreg: %s\n", mx_error_message());
        return 130;
    }
    if (st != MX_OK) return cli_report(st);
    if (!mx_dist_is_root()) return 0; /* rank 0 reports for the job */
    /* A resumed run that had nothing left to train has no speed to report. */
    char speed[48] = "";
    if (result->train_img_per_s > 0) snprintf(speed, sizeof speed, ", %.0f img/s", result->train_img_per_s);
    printf("test set after %zu epoch%s (%zu step%s%s), run directory %s\n", result->epochs_done,
           result->epochs_done == 1 ? "" : "s", result->steps_done, result->steps_done == 1 ? "" : "s", speed, out);
    print_metrics_table(&result->plain, &result->rescaled);
    return 0;
}

/* Another process writing to `dir` is reported before the data is loaded
 * (training takes the lock itself, and keeps it, once the data is there). */
static mx_status check_not_in_use(const char *dir)
{
    /* Under mpirun rank 0 is the one writer: the others taking the lock
     * even for a moment would find each other holding it. */
    if (!mx_dist_is_root()) return MX_OK;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return MX_OK;
    int lock_fd;
    mx_status st = mx_run_dir_lock(dir, &lock_fd);
    mx_run_dir_unlock(lock_fd);
    return st;
}

static int resume_training(const char *dir, int threads)
{
    mx_run saved;
    mx_status st = mx_run_load(dir, 1, &saved);
    if (st != MX_OK) return cli_report(st);
    mx_train_config cfg = saved.config;
    size_t step = saved.step;
    set_threads_per_process(threads ? threads : saved.config.threads);
    if ((st = check_not_in_use(dir)) != MX_OK) {
        mx_run_free(&saved);
        return cli_report(st);
    }
    mx_dataset train = {0}, test = {0};
    st = mx_train_data_load(&cfg, NULL, "train", &train);
    if (st == MX_OK) st = mx_train_data_load(&cfg, NULL, "test", &test);
    /* Both splits by name against the classes the run was trained with. */
    size_t classes = mx_model_get_spec(saved.model)->num_classes;
    if (st == MX_OK) st = cli_match_classes(&train, cfg.data, "train", saved.class_names, classes);
    if (st == MX_OK) st = cli_match_classes(&test, cfg.data, "test", saved.class_names, classes);
    mx_run_free(&saved);
    if (st != MX_OK) {
        mx_dataset_free(&train);
        mx_dataset_free(&test);
        return cli_report(st);
    }
    if (mx_dist_is_root()) printf("mixreg: resuming %s from step %zu\n", dir, step);
    fflush(stdout);
    mx_train_result result;
    st = mx_train_resume(dir, threads, &train, &test, &result);
    if (mx_dist_is_root()) {
        mx_train_data_report(cfg.data, "train", &train);
        mx_train_data_report(cfg.data, "test", &test);
    }
    mx_dataset_free(&train);
    mx_dataset_free(&test);
    return finish_training(st, &result, dir);
}

/* What the run mixes, as the training line's middle part: ERM only when
 * nothing is mixed at all (a CutMix-only run is not ERM). */
static void print_mixing(const mx_train_config *cfg, const mx_theta_stats *theta)
{
    const int mixup = cfg->mixup.alpha > 0, cutmix = mx_cutmix_on(&cfg->cutmix);
    const char *undefined = mx_train_config_rescale_undefined(cfg);
    if (!mixup && !cutmix) {
        printf("ERM (no mixup), ");
        return;
    }
    if (mixup) printf("mixup alpha %g%s", cfg->mixup.alpha, !cfg->mixup.mix_labels  ? " (inputs only)"
                                                            : !cfg->mixup.mix_inputs ? " (labels only)"
                                                                                     : "");
    if (mixup && cutmix) printf(" switched with ");
    if (cutmix && cfg->cutmix.minmax_hi > 0)
        printf("CutMix (box sides %g-%g of the image)", cfg->cutmix.minmax_lo, cfg->cutmix.minmax_hi);
    else if (cutmix)
        printf("CutMix alpha %g", cfg->cutmix.alpha);
    if (cfg->cutmix.prob < 1) printf(", mix prob %g", cfg->cutmix.prob);
    if (mx_train_config_mixed_epoch_share(cfg) < 1) printf(", mixing in epochs 1-%zu", cfg->mixup_off_epoch);
    if (undefined) printf(" (no rescaled prediction), ");
    else printf(" (theta_bar %.4f), ", theta->theta_bar);
}

static void print_training_line(const mx_train_config *cfg, const mx_dataset *train, const mx_dataset *test,
                                const mx_theta_stats *theta)
{
    printf("mixreg: training %s on %s (%zu train / %zu test, %zux%zux%zu, %zu classes%s), ", cfg->model.arch,
            cfg->data, train->n, test->n, train->channels, train->height, train->width, train->num_classes,
            train->stream && test->stream ? ", streamed from disk"
            : train->stream               ? ", training set streamed from disk"
            : test->stream                ? ", test set streamed from disk"
                                          : "");
    print_mixing(cfg, theta);
    printf("%zu epoch%s, batch %zu", cfg->epochs, cfg->epochs == 1 ? "" : "s", cfg->batch_size);
    if (mx_dist_size() > 1) printf(" over %d processes%s", mx_dist_size(), cfg->sync_bn ? " (sync batch norm)" : "");
    printf(" -> %s\n", cfg->out);
}

/* runs/YYYYmmdd-HHMMSS, with a numeric suffix if that exists already. */
static void default_run_dir(char *out, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    struct stat sb;
    snprintf(out, cap, "runs/%s", stamp);
    for (int k = 2; stat(out, &sb) == 0 && k < 1000; k++) snprintf(out, cap, "runs/%s-%d", stamp, k);
}

int cmd_train(int argc, char **argv)
{
    mx_train_config cfg;
    mx_train_config_default(&cfg);
    int others;
    const char *resume = parse_train_flags(argc, argv, &cfg, &others);
    if (resume) {
        if (others) cli_usage_error("train: --resume continues the saved configuration; only --threads may be given with it");
        /* Stopped before training resumes: the checkpoint is as it was. */
        char remains[MX_PATH_MAX + 96];
        snprintf(remains, sizeof remains, "the checkpoint is unchanged; continue with mixreg train --resume %s", resume);
        mx_train_catch_signals(remains);
        return resume_training(resume, cfg.threads);
    }
    /* Before loading data, which can take a while: a stop now has nothing to save. */
    mx_train_catch_signals("nothing was trained or saved");
    mx_status st = mx_train_config_validate(&cfg);
    if (st != MX_OK) return cli_report_usage(st);
    /* A backend this machine cannot run (--backend cuda without CUDA or a
     * device) is refused before the data is loaded, exit 1. */
    if ((st = mx_backend_available(cfg.model.backend)) != MX_OK) return cli_report(st);
    cli_check_data("train", cfg.data);
    if (!cfg.out[0]) default_run_dir(cfg.out, sizeof cfg.out);
    set_threads_per_process(cfg.threads);
    if ((st = check_not_in_use(cfg.out)) != MX_OK) return cli_report(st);

    mx_dataset train = {0}, test = {0};
    st = mx_train_data_load(&cfg, NULL, "train", &train);
    if (st == MX_OK) st = mx_train_data_load(&cfg, NULL, "test", &test);
    /* An image folder's val classes are the training classes of the same names. */
    if (st == MX_OK) st = cli_match_classes(&test, cfg.data, "test", train.class_names, train.num_classes);
    if (st != MX_OK) {
        mx_dataset_free(&train);
        mx_dataset_free(&test);
        return cli_report(st);
    }
    mx_theta_stats theta;
    if ((st = mx_train_config_theta(&cfg, &theta)) != MX_OK) return cli_report(st);
    if (mx_dist_is_root()) print_training_line(&cfg, &train, &test, &theta);
    fflush(stdout);

    mx_train_result result;
    st = mx_train_run(&cfg, &train, &test, &result);
    if (mx_dist_is_root()) {
        mx_train_data_report(cfg.data, "train", &train);
        mx_train_data_report(cfg.data, "test", &test);
    }
    mx_dataset_free(&train);
    mx_dataset_free(&test);
    return finish_training(st, &result, cfg.out);
}
