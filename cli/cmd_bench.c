/* The training step timed the way bench/torch_peer.py times
 * PyTorch's: random batches, Mixup (one lambda per batch, permutation
 * partner), SGD with Nesterov momentum; then eval throughput over 8 batches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "args.h"
#include "bench_support.h"
#include "commands.h"
#include "mixreg/source.h"
#include "mixreg/step.h"
#include "mixreg/theta.h"

/* Distinct batches the evaluation goes round (the PyTorch peer's too,
 * bench/torch_peer.py): a longer evaluation holds no more images. */
#define BENCH_EVAL_DISTINCT 64
#include "mixreg/train.h"
#include "train/progress.h"

static const char bench_help[] =
    "usage: mixreg bench [options]\n"
    "\n"
    "Times the training step like the PyTorch peer (bench/run.sh runs both) and\n"
    "prints one JSON line with training and evaluation images per second.\n"
    "\n"
    "  --model M        mlp, logreg, lenet5, resnet20, preact18, wrn-D-K, resnet50...\n"
    "                   (default mlp)\n"
    "  --backend B      CNN kernels: cpu (oneDNN, default) or ref (cuda: refused with the\n"
    "                   reason, not runnable yet)\n"
    "  --precision P    fp32 (default) or bf16 convolutions (cpu backend)\n"
    "  --data D         " CLI_DATA_FORMS " (default fashion-mnist),\n"
    "                   or synthetic:CxHxW: 1,024 images of random bytes of that shape\n"
    "                   (e.g. synthetic:3x224x224)\n"
    "  --classes K      with synthetic data: the label count (default 10)\n"
    "  --threads T      (default 2)\n"
    "  --batch B        (default 128)\n"
    "  --steps N        timed steps (default 60)\n"
    "  --warmup N       untimed steps first (default 10)\n"
    "  --eval-batches N evaluation batches timed (default 8), going round at most 64 distinct ones\n"
    "  --alpha A        mixup alpha (default 1)\n"
    "  --sgemm          also time the machine's peak rates at the same thread count:\n"
    "                   OpenBLAS SGEMM (2048^3, \"sgemm_gflops\") and oneDNN's bfloat16\n"
    "                   kernels (\"bf16_gflops\", null where this CPU has none)\n"
    "\n"
    "The line also gives the model's GFLOP per image, 2 per multiply-add of its\n"
    "convolutions and dense layers counted layer by layer: \"gflop_per_image_eval\"\n"
    "(one forward) and \"gflop_per_image_train\" (forward, backward weights and\n"
    "backward data but the first layer's), and the rates they imply.\n";

typedef struct {
    char model[32];
    const char *data;
    int threads;
    size_t batch, steps, warmup, eval_batches, classes;
    double alpha;
    mx_backend backend;
    mx_precision precision;
    int sgemm;
} bench_options;

static void parse_bench_flags(int argc, char **argv, bench_options *o)
{
    cli_args a;
    cli_args_init(&a, "bench", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            cli_print_help(bench_help);
            exit(0);
        } else if (cli_flag_value(&a, "--model")) {
            if (strlen(a.value) >= sizeof o->model) cli_usage_error("bench: --model: unknown '%s'", a.value);
            strcpy(o->model, a.value);
        } else if (cli_flag_value(&a, "--backend")) {
            if (mx_backend_parse("bench: --backend", a.value, &o->backend) != MX_OK)
                cli_usage_error("%s", mx_error_message());
        } else if (cli_flag_value(&a, "--precision")) {
            if (mx_precision_parse("bench: --precision", a.value, &o->precision) != MX_OK)
                cli_usage_error("%s", mx_error_message());
        } else if (cli_flag_value(&a, "--data")) {
            o->data = a.value;
        } else if (cli_flag_value(&a, "--threads")) {
            o->threads = (int)cli_parse_size(&a, "--threads", 1, 1024);
        } else if (cli_flag_value(&a, "--batch")) {
            o->batch = cli_parse_size(&a, "--batch", 1, 65536);
        } else if (cli_flag_value(&a, "--steps")) {
            o->steps = cli_parse_size(&a, "--steps", 1, 1000000);
        } else if (cli_flag_value(&a, "--warmup")) {
            o->warmup = cli_parse_size(&a, "--warmup", 0, 1000000);
        } else if (cli_flag_value(&a, "--eval-batches")) {
            o->eval_batches = cli_parse_size(&a, "--eval-batches", 1, 10000);
        } else if (cli_flag_value(&a, "--classes")) {
            o->classes = cli_parse_size(&a, "--classes", 2, 100000);
        } else if (cli_flag_switch(&a, "--sgemm")) {
            o->sgemm = 1;
        } else if (cli_flag_value(&a, "--alpha")) {
            o->alpha = cli_parse_double(&a, "--alpha", 0, MX_MAX_ALPHA);
        } else {
            cli_unknown_argument(&a);
        }
    }
}

static double time_training(mx_stepper *stepper, const mx_dataset *train, const bench_options *o, double *final_loss)
{
    mx_rng pick, mix;
    mx_rng_init(&pick, 0, MX_STREAM_SHUFFLE);
    mx_rng_init(&mix, 0, MX_STREAM_MIXUP);
    uint32_t *idx = malloc(o->batch * sizeof *idx);
    if (!idx) return 0;
    double start = 0;
    for (size_t it = 0; it < o->warmup + o->steps; it++) {
        if (it == o->warmup) start = mx_now_seconds();
        for (size_t i = 0; i < o->batch; i++) idx[i] = mx_rng_below(&pick, (uint32_t)train->n);
        *final_loss = mx_stepper_step(stepper, train, idx, o->batch, &mix, 0.05);
    }
    double seconds = mx_now_seconds() - start;
    free(idx);
    return (double)(o->steps * o->batch) / seconds;
}

/* Evaluation images/s: the forward passes alone, each batch gathered (bytes
 * to normalised floats) into one buffer before its timed pass, so that the
 * process holds one batch of floats, not all of them; the batches go round
 * the first BENCH_EVAL_DISTINCT. */
static double time_eval(mx_model *model, const mx_dataset *train, const mx_normalizer *nz, size_t batch,
                        size_t batches)
{
    size_t dim = mx_model_input_size(model);
    float *x = malloc(batch * dim * sizeof(float));
    int32_t *labels = malloc(batch * sizeof(int32_t));
    uint32_t *idx = malloc(batch * sizeof(uint32_t));
    double rate = 0;
    if (x && labels && idx) {
        mx_model_set_training(model, 0);
        mx_model_hold_weights(model, 1); /* as an evaluation does (mx_evaluate) */
        double seconds = 0;
        for (size_t k = 0; k <= batches; k++) {  /* batch 0 warms up, untimed */
            const size_t round = k ? (k - 1) % BENCH_EVAL_DISTINCT : 0;
            for (size_t i = 0; i < batch; i++) idx[i] = (uint32_t)((round * batch + i) % train->n);
            mx_dataset_gather(train, nz, idx, batch, x, labels);
            double start = mx_now_seconds();
            mx_model_predict(model, x, batch);
            if (k) seconds += mx_now_seconds() - start;
        }
        mx_model_hold_weights(model, 0);
        rate = (double)(batches * batch) / seconds;
    }
    free(x);
    free(labels);
    free(idx);
    return rate;
}

int cmd_bench(int argc, char **argv)
{
    bench_options o = {"mlp", "fashion-mnist", 2, 128, 60, 10, 8, 0, 1.0, MX_BACKEND_CPU, MX_PRECISION_FP32, 0};
    parse_bench_flags(argc, argv, &o);
    const int synthetic = bench_is_synthetic(o.data);
    size_t sc = 0, sh = 0, sw = 0;
    if (synthetic && bench_parse_synthetic(o.data, &sc, &sh, &sw) != MX_OK)
        cli_usage_error("bench: %s", mx_error_message());
    if (!synthetic && o.classes) cli_usage_error("bench: --classes: only with --data synthetic:CxHxW");
    if (!synthetic) cli_check_data("bench", o.data);
    mx_set_threads(o.threads);
    mx_dataset train = {0};
    mx_status st;
    if (synthetic) {
        /* As many images as the PyTorch peer draws its batches from: the
         * evaluation goes round at most BENCH_EVAL_DISTINCT of them. */
        const size_t distinct = o.eval_batches < BENCH_EVAL_DISTINCT ? o.eval_batches : BENCH_EVAL_DISTINCT;
        const size_t pool = o.batch * (distinct > 4 ? distinct : 4);
        st = bench_synthetic_dataset(sc, sh, sw, o.classes ? o.classes : 10, pool > 1024 ? pool : 1024, &train);
        if (st == MX_ERR_ARG) return cli_report_usage(st);
    } else {
        /* In memory: the benchmark times the model, not decoding. */
        mx_data_options opts = mx_data_options_default();
        opts.stream = MX_STREAMING_OFF;
        st = mx_data_load_with(o.data, "train", &opts, &train);
    }
    if (st != MX_OK) return cli_report(st);
    float mean[MX_MAX_CHANNELS], std[MX_MAX_CHANNELS];
    mx_dataset_channel_stats(&train, mean, std);
    mx_normalizer nz;
    mx_model_spec spec = {.in_channels = train.channels, .in_height = train.height, .in_width = train.width,
                          .num_classes = train.num_classes, .num_hidden = 2, .hidden = {512, 512},
                          .backend = o.backend, .precision = o.precision};
    snprintf(spec.arch, sizeof spec.arch, "%s", o.model);
    mx_model *model = NULL;
    st = mx_normalizer_init(&nz, train.channels, mean, std);
    if (st == MX_OK) st = mx_model_create(&spec, o.batch, &model);
    mx_stepper stepper;
    mx_mixup_config mixup = mx_mixup_config_default();
    mixup.alpha = o.alpha;
    mx_sgd_config sgd = {0.9, 1, 5e-4};
    if (st == MX_OK) {
        mx_model_init_params(model, 0);
        st = mx_stepper_init(&stepper, model, &nz, &mixup, &sgd);
    }
    if (st != MX_OK) {
        mx_model_free(model);
        mx_dataset_free(&train);
        /* --model, --backend, --precision and --data alone decide the model. */
        return cli_report_usage(st);
    }
    double loss = 0;
    double train_rate = time_training(&stepper, &train, &o, &loss);
    double eval_rate = time_eval(model, &train, &nz, o.batch, o.eval_batches);
    const mx_model_flops flops = mx_model_count_flops(model);
    const double gflop_train = flops.train_step / 1e9, gflop_eval = flops.forward / 1e9;
    printf("{\"peer\": \"mixreg\", \"version\": \"%s\", \"model\": \"%s\", \"backend\": \"%s\", \"precision\": \"%s\", "
           "\"threads\": %d, \"batch\": %zu, \"train_img_per_s\": %.1f, \"eval_img_per_s\": %.1f, "
           "\"final_loss\": %.4f, \"gflop_per_image_train\": %.9g, \"gflop_per_image_eval\": %.9g, "
           "\"forward_gflop_per_img\": %.9g, \"train_gflops\": %.1f, \"eval_gflops\": %.1f",
           MIXREG_VERSION, o.model, mx_backend_name(o.backend), mx_precision_name(o.precision),
           o.threads, o.batch, train_rate, eval_rate, loss, gflop_train, gflop_eval,
           gflop_eval, gflop_train * train_rate, gflop_eval * eval_rate);
    if (o.sgemm) {
        const double bf16 = bench_bf16_gflops();
        printf(", \"sgemm_gflops\": %.1f", bench_sgemm_gflops());
        if (bf16 > 0) printf(", \"bf16_gflops\": %.1f", bf16);
        else printf(", \"bf16_gflops\": null");
    }
    /* The OpenMP wait the run had (main.c chooses the spin unless the user
     * set either variable): it moves the rates by up to a third, so a record
     * carries it; null where unset or not a plain value. */
    const char *spin = getenv("GOMP_SPINCOUNT"), *wait = getenv("OMP_WAIT_POLICY");
    char *end = NULL;
    const long long rounds = spin ? strtoll(spin, &end, 10) : -1;
    if (spin && end != spin && *end == '\0' && rounds >= 0) printf(", \"gomp_spincount\": %lld", rounds);
    else printf(", \"gomp_spincount\": null");
    if (wait && (!strcasecmp(wait, "active") || !strcasecmp(wait, "passive")))
        printf(", \"omp_wait_policy\": \"%s\"", !strcasecmp(wait, "active") ? "active" : "passive");
    else printf(", \"omp_wait_policy\": null");
    printf("}\n");
    mx_stepper_free(&stepper);
    mx_model_free(model);
    mx_dataset_free(&train);
    return 0;
}
