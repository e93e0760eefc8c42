#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "commands.h"
#include "mixreg/analysis.h"
#include "mixreg/dist.h"
#include "mixreg/fileio.h"
#include "mixreg/run.h"
#include "mixreg/source.h"
#include "mixreg/theta.h"
#include "mixreg/train.h"

static const char analyze_help[] =
    "usage: mixreg analyze RUN_DIR [options]\n"
    "\n"
    "How smooth a trained model is, and the regularisation terms Mixup adds to its loss\n"
    "(method.md section 3), over the first N test samples:\n"
    "  - the input-Jacobian J = df/dx of the logits (computed exactly, C backward passes)\n"
    "    and of the softmax output (H J, H = diag(S) - S S^T): mean and max Frobenius norm;\n"
    "  - the local Lipschitz constant ||J||_2 by power iteration: mean and max;\n"
    "  - mean confidence (max softmax) and mean predictive entropy (nats);\n"
    "  these at the plain test inputs x, and\n"
    "  - the Taylor-expansion terms of the paper at x~ = x_bar + theta_bar (x - x_bar):\n"
    "    the Jacobian penalty 1/2 <E[delta delta^T], J^T H J> and the cross term\n"
    "    -<E[eps delta^T], J>, with the run's theta_bar, x_bar, y_bar, sigma^2 = Var(theta)\n"
    "    and gamma^2 = E[(1 - theta)^2] for its alpha, and the training covariances\n"
    "    Sigma_xx, Sigma_yx (one-hot labels). Both are 0 for an ERM model (alpha 0).\n"
    "Under mpirun each process takes a share of the Jacobian batches and rank 0 reports:\n"
    "the same numbers as one process (docs/distributed.md).\n"
    "\n"
    "  --data SOURCE            dataset (default: the one the run trained on), one of\n"
    "                           " CLI_DATA_FORMS "\n"
    "  --samples N              the first N test samples (default 1000)\n"
    "  --seed S                 the power iteration's start vector (default 0)\n"
    "  --batch-size B           samples per Jacobian batch (default 250; fewer when the inference\n"
    "                           memory budget, $MIXREG_INFERENCE_MEMORY bytes, holds fewer)\n"
    "  --threads T              (default: all cores)\n"
    "  --json                   one JSON object\n";

typedef struct {
    const char *data;
    size_t samples, batch;
    uint64_t seed;
    int json, threads;
} analyze_options;

static void parse_analyze_flags(int argc, char **argv, analyze_options *o, const char **run_dir)
{
    cli_args a;
    cli_args_init(&a, "analyze", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            cli_print_help(analyze_help);
            exit(0);
        } else if (cli_flag_value(&a, "--data")) {
            o->data = a.value;
        } else if (cli_flag_value(&a, "--samples")) {
            o->samples = cli_parse_size(&a, "--samples", 1, (size_t)1 << 31);
        } else if (cli_flag_value(&a, "--seed")) {
            o->seed = (uint64_t)cli_parse_size(&a, "--seed", 0, SIZE_MAX);
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
    if (!*run_dir) cli_usage_error("analyze: missing RUN_DIR (see mixreg analyze --help)");
}

/* The first n test samples, normalised as the model was trained. */
static mx_status load_samples(const mx_run *run, const char *data, size_t want, float **x, int32_t **labels, size_t *n)
{
    mx_dataset test = {0};
    mx_status st = mx_train_data_load(&run->config, data, "test", &test);
    const mx_model_spec *spec = mx_model_get_spec(run->model);
    if (st == MX_OK) st = cli_match_classes(&test, data, "test", run->class_names, spec->num_classes);
    if (st != MX_OK) {
        mx_dataset_free(&test);
        return st;
    }
    size_t d = mx_model_input_size(run->model);
    if (test.channels * test.height * test.width != d || test.num_classes > spec->num_classes) {
        st = mx_error_set(MX_ERR_ARG, "analyze: the test data (%zux%zux%zu, %zu classes) does not fit the model", test.channels,
                          test.height, test.width, test.num_classes);
    } else {
        *n = want < test.n ? want : test.n;
        *x = malloc(*n * d * sizeof(float) + 1);
        *labels = malloc(*n * sizeof(int32_t) + 1);
        uint32_t *idx = malloc(*n * sizeof(uint32_t) + 1);
        if (!*x || !*labels || !idx) {
            st = mx_error_set(MX_ERR_NOMEM, "out of memory for %zu test samples", *n);
        } else {
            for (size_t i = 0; i < *n; i++) idx[i] = (uint32_t)i;
            st = mx_dataset_gather(&test, &run->normalizer, idx, *n, *x, *labels);
        }
        free(idx);
    }
    mx_dataset_free(&test);
    return st;
}

/* Sigma_xx, Sigma_yx from the run's training split (less its validation hold-out, as trained). */
static mx_status load_moments(const mx_run *run, const char *data, mx_data_moments *mo)
{
    mx_dataset full = {0}, train = {0}, val = {0};
    mx_status st = mx_train_data_load(&run->config, data, "train", &full);
    if (st == MX_OK)
        st = cli_match_classes(&full, data, "train", run->class_names, mx_model_get_spec(run->model)->num_classes);
    if (st == MX_OK) st = mx_dataset_split(&full, run->config.seed, run->config.val_split, &train, &val);
    mx_dataset_free(&full);
    mx_dataset_free(&val);
    if (st == MX_OK)
        st = mx_data_moments_alloc(mo, mx_model_input_size(run->model), mx_model_get_spec(run->model)->num_classes);
    if (st == MX_OK) st = mx_data_moments_compute(mo, &train, &run->normalizer);
    mx_dataset_free(&train);
    return st;
}

/* The analysis within the inference memory budget (mx_model_inference_budget):
 * the test samples and, for the Taylor terms, the training covariances are
 * held whole, so they must fit first; the model is then planned for
 * Jacobian batches (a backward to the input: MX_MODEL_TRAIN buffers) of as
 * many samples as the rest holds, at most `want`. */
static mx_status plan_analysis(mx_run *run, size_t want, size_t n, int moments)
{
    size_t budget;
    mx_status st = mx_model_inference_budget(&budget);
    if (st != MX_OK) return st;
    const double d = (double)mx_model_input_size(run->model), C = (double)mx_model_get_spec(run->model)->num_classes;
    const double MiB = 1048576.0, samples = (double)n * d * 4, covariance = (d * d + C * d + C * C + d + C) * 4;
    if (moments && covariance > (double)budget)
        return mx_error_set(MX_ERR_NOMEM, "analyze: the Taylor terms need the %.0f x %.0f input covariance (%.0f MiB), "
                            "over the inference memory budget of %.0f MiB ($MIXREG_INFERENCE_MEMORY)", d, d,
                            covariance / MiB, (double)budget / MiB);
    const double fixed = samples + (moments ? covariance : 0);
    if (fixed > (double)budget)
        return mx_error_set(MX_ERR_NOMEM, "analyze: %zu samples of %.0f inputs%s take %.0f MiB, over the inference "
                            "memory budget of %.0f MiB ($MIXREG_INFERENCE_MEMORY): ask for fewer --samples", n, d,
                            moments ? " and the input covariance" : "", fixed / MiB, (double)budget / MiB);
    const size_t per_sample = mx_analysis_bytes_per_sample((size_t)C, (size_t)d);
    const size_t batch = mx_model_fit_batch(run->model, want < n ? want : (n ? n : 1), MX_MODEL_TRAIN, per_sample,
                                            budget - (size_t)fixed);
    st = mx_model_plan(run->model, batch, MX_MODEL_TRAIN);
    return st == MX_OK ? MX_OK : mx_error_wrap(st, "analyze: Jacobian batches of %zu", batch);
}

static void json_number(FILE *f, const char *key, double v, int last)
{
    if (isfinite(v)) fprintf(f, "\"%s\": %.10g%s", key, v, last ? "" : ", ");
    else fprintf(f, "\"%s\": null%s", key, last ? "" : ", ");
}

static void json_smoothness(FILE *f, const mx_smoothness *m)
{
    json_number(f, "jacobian_fro_mean", m->jacobian_fro_mean, 0);
    json_number(f, "jacobian_fro_max", m->jacobian_fro_max, 0);
    json_number(f, "softmax_jacobian_fro_mean", m->softmax_jacobian_fro_mean, 0);
    json_number(f, "softmax_jacobian_fro_max", m->softmax_jacobian_fro_max, 0);
    json_number(f, "lipschitz_mean", m->lipschitz_mean, 0);
    json_number(f, "lipschitz_max", m->lipschitz_max, 0);
    fprintf(f, "\"power_iterations_max\": %zu, ", m->power_iters_max);
    json_number(f, "confidence_mean", m->confidence_mean, 0);
    json_number(f, "entropy_mean", m->entropy_mean, 0);
}

/* The plain model's estimates at the top level, the rescaled prediction's in "rescaled". */
static void print_json(FILE *f, const mx_analysis *r, double alpha)
{
    fprintf(f, "{\"samples\": %zu, ", r->samples);
    json_smoothness(f, &r->plain);
    fprintf(f, "\"rescaled\": {");
    json_smoothness(f, &r->rescaled);
    fprintf(f, "\"at\": \"x_bar + theta_bar (x - x_bar)\"}, ");
    json_number(f, "jacobian_term", r->jacobian_term, 0);
    json_number(f, "jacobian_term_sigma2", r->jacobian_term_sigma2, 0);
    json_number(f, "jacobian_term_gamma2", r->jacobian_term_gamma2, 0);
    json_number(f, "cross_term", r->cross_term, 0);
    json_number(f, "cross_term_sigma2", r->cross_term_sigma2, 0);
    json_number(f, "cross_term_gamma2", r->cross_term_gamma2, 0);
    json_number(f, "alpha", alpha, 0);
    json_number(f, "theta_bar", r->theta_bar, 0);
    json_number(f, "sigma2", r->sigma2, 0);
    json_number(f, "gamma2", r->gamma2, 1);
    fprintf(f, "}\n");
}

static void print_table(const char *run_dir, const mx_analysis *r, const mx_train_config *cfg, double secs)
{
    const mx_smoothness *p = &r->plain, *q = &r->rescaled;
    printf("%s: %zu test samples, mixup alpha %g (theta_bar %.4f, sigma^2 %.6f, gamma^2 %.6f), %.1f s\n", run_dir,
           r->samples, cfg->mixup.alpha, r->theta_bar, r->sigma2, r->gamma2, secs);
    printf("%-38s %21s   %21s\n", "", "plain f(x)", "rescaled prediction");
    printf("%-38s %10s %10s   %10s %10s\n", "", "mean", "max", "mean", "max");
    printf("%-38s %10.4f %10.4f   %10.4f %10.4f\n", "  input-Jacobian ||J||_F", p->jacobian_fro_mean,
           p->jacobian_fro_max, q->jacobian_fro_mean, q->jacobian_fro_max);
    printf("%-38s %10.4f %10.4f   %10.4f %10.4f\n", "  softmax Jacobian ||H J||_F", p->softmax_jacobian_fro_mean,
           p->softmax_jacobian_fro_max, q->softmax_jacobian_fro_mean, q->softmax_jacobian_fro_max);
    printf("%-38s %10.4f %10.4f   %10.4f %10.4f\n", "  Lipschitz ||J||_2 (power iteration)", p->lipschitz_mean,
           p->lipschitz_max, q->lipschitz_mean, q->lipschitz_max);
    printf("%-38s %10.4f %10s   %10.4f\n", "  confidence (max softmax)", p->confidence_mean, "", q->confidence_mean);
    printf("%-38s %10.4f %10s   %10.4f\n", "  predictive entropy (nats)", p->entropy_mean, "", q->entropy_mean);
    printf("(the rescaled prediction's Jacobian is J at x~ = x_bar + theta_bar (x - x_bar))\n");
    printf("Taylor terms at x~, mean over the samples\n");
    printf("%-38s %14s %14s %14s\n", "", "total", "sigma^2 part", "gamma^2 part");
    printf("%-38s %14.6g %14.6g %14.6g\n", "  Jacobian penalty 1/2<E[dd^T],J^THJ>", r->jacobian_term,
           r->jacobian_term_sigma2, r->jacobian_term_gamma2);
    printf("%-38s %14.6g %14.6g %14.6g\n", "  cross term -<E[eps d^T], J>", r->cross_term, r->cross_term_sigma2,
           r->cross_term_gamma2);
    const char *undefined = mx_train_config_rescale_undefined(cfg);
    if (undefined)
        printf("note: %s: the paper's expansion (and its theta statistics) does not apply; both terms are left at 0 "
               "(docs/method.md section 4)\n", undefined);
    else if (r->sigma2 == 0 && r->gamma2 == 0)
        printf("note: an ERM model (alpha 0): sigma^2 = gamma^2 = 0, there is no perturbation and both terms are 0\n");
    else if (!cfg->mixup.mix_inputs || !cfg->mixup.mix_labels)
        printf("note: this run mixed only its %s; the expansion assumes inputs and labels are mixed together\n",
               cfg->mixup.mix_inputs ? "inputs" : "labels");
}

/* The analysis of the run in run_dir (every rank of an mpirun job takes a
 * share; rank 0 holds the result). run is loaded here, freed by the caller. */
static mx_status analyze_run(const char *run_dir, const analyze_options *o, mx_run *run, mx_analysis *r)
{
    mx_status st = mx_run_load(run_dir, 0, run);  /* the weights; buffers by plan_analysis */
    if (st != MX_OK) return st;
    const char *data = o->data ? o->data : run->config.data;
    mx_theta_stats theta;
    float *x = NULL;
    int32_t *labels = NULL;
    size_t n = 0;
    mx_data_moments mo;
    memset(&mo, 0, sizeof mo);
    /* The run's own theta statistics (--mix-prob and --mixup-off-epoch
     * counted); none where the paper's derivation does not apply (CutMix,
     * one-sided ablations): those are analysed as ERM models. */
    st = mx_train_config_theta(&run->config, &theta);
    const double theta_bar = mx_train_config_rescale_undefined(&run->config) ? 1.0 : run->rescale.theta_bar;
    if (st == MX_OK) st = load_samples(run, data, o->samples, &x, &labels, &n);
    const int erm = theta.theta_var == 0 && theta.gamma2 == 0;
    if (st == MX_OK) st = plan_analysis(run, o->batch, n, !erm);
    if (st == MX_OK && !erm) st = load_moments(run, data, &mo);
    if (st == MX_OK) {
        mx_analysis_config cfg = {.theta_bar = theta_bar, .sigma2 = theta.theta_var, .gamma2 = theta.gamma2,
                                  .x_bar = run->rescale.x_bar, .y_bar = run->rescale.y_bar, .moments = erm ? NULL : &mo,
                                  .batch = o->batch, .seed = o->seed};
        st = mx_analyze(run->model, x, labels, n, &cfg, r);
    }
    mx_data_moments_free(&mo);
    free(x);
    free(labels);
    return st;
}

mx_status cli_analyze_to_file(const char *run_dir, const char *json_path, void *ctx)
{
    (void)ctx;
    analyze_options o = {.samples = 1000, .batch = 250};
    mx_run run;
    mx_analysis r;
    mx_status st = analyze_run(run_dir, &o, &run, &r);
    if (st == MX_OK && mx_dist_is_root()) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (f) {
            print_json(f, &r, run.config.mixup.alpha);
            fclose(f);
        }
        st = text ? mx_file_write_atomic(json_path, text, len) : mx_error_set(MX_ERR_NOMEM, "out of memory");
        free(text);
    }
    mx_run_free(&run);
    return st;
}

int cmd_analyze(int argc, char **argv)
{
    analyze_options o = {.samples = 1000, .batch = 250};
    const char *run_dir = NULL;
    parse_analyze_flags(argc, argv, &o, &run_dir);
    cli_check_data("analyze", o.data);
    mx_set_threads(o.threads);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mx_run run;
    mx_analysis r;
    mx_status st = analyze_run(run_dir, &o, &run, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st == MX_OK && mx_dist_is_root()) {  /* under mpirun every rank took a shard; rank 0 reports */
        if (o.json) print_json(stdout, &r, run.config.mixup.alpha);
        else print_table(run_dir, &r, &run.config, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }
    mx_run_free(&run);
    return st == MX_OK ? 0 : cli_report(st);
}
