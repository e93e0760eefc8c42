/* Models planned for prediction only (mx_model_plan with MX_MODEL_PREDICT)
 * and evaluation within a memory budget: the inference plan keeps far less
 * than the training one, batches are fitted to a budget, a weights-only
 * model (max batch 0) is refused until planned, and predicting in chunks at
 * boundaries that do not divide the batch gives the whole batch's logits
 * and metrics, on both backends. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/data.h"
#include "mixreg/evaluate.h"
#include "mixreg/model.h"
#include "mixreg/rng.h"

enum { C = 3, H = 16, W = 16, CLASSES = 5, N = 40 };

static mx_model_spec spec_of(const char *arch, mx_backend backend)
{
    mx_model_spec spec = {.in_channels = C, .in_height = H, .in_width = W, .num_classes = CLASSES,
                          .backend = backend};
    snprintf(spec.arch, sizeof spec.arch, "%s", arch);
    if (!strcmp(arch, "mlp")) spec.num_hidden = 1, spec.hidden[0] = 32;
    return spec;
}

/* A trained-looking model: initialised, then batch norm's running statistics
 * away from (0, 1) so that evaluation depends on them. */
static mx_model *make_trained(const mx_model_spec *spec, size_t batch)
{
    mx_model *m = NULL;
    CHECK_OK(mx_model_create(spec, batch, &m));
    if (!m) return NULL;
    mx_model_init_params(m, 5);
    const mx_buffer_info *buffers;
    size_t count = mx_model_buffer_tensors(m, &buffers);
    mx_rng rng;
    mx_rng_init(&rng, 9, MX_STREAM_INIT);
    for (size_t i = 0; i < count; i++) {
        if (buffers[i].dtype != MX_BUFFER_F32) continue;
        float *v = buffers[i].data;
        int var = strstr(buffers[i].name, "running_var") != NULL;
        for (size_t k = 0; k < buffers[i].numel; k++)
            v[k] = var ? (float)(0.5 + mx_rng_uniform(&rng)) : (float)(0.2 * mx_rng_uniform(&rng) - 0.1);
    }
    return m;
}

static float *random_inputs(size_t n, uint64_t seed)
{
    float *x = malloc(n * C * H * W * sizeof *x);
    mx_rng rng;
    mx_rng_init(&rng, seed, MX_STREAM_INIT);
    for (size_t i = 0; x && i < n * C * H * W; i++) x[i] = (float)(2.0 * mx_rng_uniform(&rng) - 1.0);
    return x;
}

static double max_abs_diff(const float *a, const float *b, size_t count)
{
    double most = 0;
    for (size_t i = 0; i < count; i++) {
        double d = a[i] > b[i] ? (double)a[i] - b[i] : (double)b[i] - a[i];
        if (d > most) most = d;
    }
    return most;
}

/* The inference plan keeps a fraction of the training one; the bytes grow
 * with the batch; mx_model_fit_batch returns the largest batch that fits. */
static void test_plan_sizes(void)
{
    mx_model_spec spec = spec_of("resnet20", MX_BACKEND_REF);
    mx_model *m = NULL;
    CHECK_OK(mx_model_create(&spec, 0, &m));
    if (!m) return;
    const size_t train = mx_model_plan_bytes(m, 16, MX_MODEL_TRAIN);
    const size_t predict = mx_model_plan_bytes(m, 16, MX_MODEL_PREDICT);
    printf("  resnet20 %dx%dx%d batch 16: %zu bytes to train, %zu to predict\n", C, H, W, train, predict);
    CHECK(predict > 0 && predict * 3 < train);
    CHECK(mx_model_plan_bytes(m, 32, MX_MODEL_PREDICT) > predict);
    CHECK(mx_model_plan_bytes(m, 8, MX_MODEL_PREDICT) < predict);
    const size_t extra = 1000, fit5 = mx_model_plan_bytes(m, 5, MX_MODEL_PREDICT) + 5 * extra;
    CHECK(mx_model_fit_batch(m, 100, MX_MODEL_PREDICT, extra, fit5) == 5);
    CHECK(mx_model_fit_batch(m, 100, MX_MODEL_PREDICT, extra, fit5 - 1) == 4);
    CHECK(mx_model_fit_batch(m, 3, MX_MODEL_PREDICT, extra, fit5) == 3);
    CHECK(mx_model_fit_batch(m, 100, MX_MODEL_PREDICT, extra, 1) == 1);  /* never below one sample */
    /* A huge batch measures as too large instead of wrapping round. */
    CHECK(mx_model_plan_bytes(m, SIZE_MAX / 2, MX_MODEL_TRAIN) == SIZE_MAX);
    /* Planning for what was measured allocates no more than that. */
    CHECK_OK(mx_model_plan(m, 16, MX_MODEL_PREDICT));
    CHECK(mx_model_max_batch(m) == 16);
    mx_model_free(m);
}

/* On the cpu backend too, whose training plans keep prediction weights in
 * idle activation buffers (cnn_backend.pred_keeps_output): a prediction-only
 * plan keeps no buffer through its predictions, so it stays a fraction of
 * the training one (at batch 16: resnet20 1.2 MiB against 9.1, preact18 4.8
 * against 8.5, resnet50 2.2 against 7.3; with its fused convolutions' shared
 * outputs kept through every prediction, 4.0, 7.5 and 5.9). */
static void test_cpu_plan_sizes(void)
{
    static const struct {
        const char *arch;
        size_t most_percent; /* of the training plan */
    } runs[3] = {{"resnet20", 33}, {"preact18", 70}, {"resnet50", 50}};
    for (size_t r = 0; r < 3; r++) {
        mx_model_spec spec = spec_of(runs[r].arch, MX_BACKEND_CPU);
        mx_model *m = NULL;
        CHECK_OK(mx_model_create(&spec, 0, &m));
        if (!m) continue;
        const size_t train = mx_model_plan_bytes(m, 16, MX_MODEL_TRAIN);
        const size_t predict = mx_model_plan_bytes(m, 16, MX_MODEL_PREDICT);
        printf("  %s cpu %dx%dx%d batch 16: %zu bytes to train, %zu to predict\n", runs[r].arch, C, H, W, train,
               predict);
        CHECK(predict > 0 && predict * 100 < train * runs[r].most_percent);
        mx_model_free(m);
    }
}

/* max batch 0: the weights alone; evaluation refuses it until planned. */
static void test_weights_only(void)
{
    mx_model_spec spec = spec_of("resnet20", MX_BACKEND_REF);
    mx_model *m = NULL;
    CHECK_OK(mx_model_create(&spec, 0, &m));
    if (!m) return;
    CHECK(mx_model_max_batch(m) == 0 && mx_model_param_count(m) > 200000);
    uint8_t pixels[C * H * W] = {0};
    int32_t label = 0;
    mx_dataset ds = {.n = 1, .channels = C, .height = H, .width = W, .num_classes = CLASSES, .pixels = pixels,
                     .labels = &label};
    mx_normalizer nz;
    CHECK_OK(mx_normalizer_init(&nz, C, (const float[]){0.5f, 0.5f, 0.5f}, (const float[]){0.25f, 0.25f, 0.25f}));
    mx_metrics plain;
    CHECK(mx_evaluate(m, &ds, &nz, NULL, 15, &plain, NULL) == MX_ERR_ARG);
    CHECK(mx_model_plan(m, 0, MX_MODEL_PREDICT) == MX_ERR_ARG);
    CHECK_OK(mx_evaluate_plan(m, 7));
    CHECK(mx_model_max_batch(m) == 7);  /* 7 samples fit the default budget many times over */
    CHECK_OK(mx_evaluate(m, &ds, &nz, NULL, 15, &plain, NULL));
    CHECK(plain.n == 1);
    mx_model_free(m);
}

/* $MIXREG_INFERENCE_MEMORY: whole bytes in [1 MiB, 2^48]; else the default. */
static void test_budget(void)
{
    size_t bytes = 0;
    unsetenv("MIXREG_INFERENCE_MEMORY");
    CHECK_OK(mx_model_inference_budget(&bytes));
    CHECK(bytes > 0 && bytes <= MX_INFERENCE_MEMORY_DEFAULT);
    setenv("MIXREG_INFERENCE_MEMORY", "2097152", 1);
    CHECK_OK(mx_model_inference_budget(&bytes));
    CHECK(bytes == 2097152);
    static const char *const bad[] = {"abc", "12k", "-1", "1000", "99999999999999999999", "300000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("MIXREG_INFERENCE_MEMORY", bad[i], 1);
        CHECK(mx_model_inference_budget(&bytes) == MX_ERR_ARG);
    }
    unsetenv("MIXREG_INFERENCE_MEMORY");
}

/* N samples predicted whole by a training model and in chunks of `chunk`
 * (not dividing N) by a prediction-only copy: the same logits to float
 * rounding, and evaluation over a data set gives the same metrics. */
static void check_chunked(const char *arch, mx_backend backend, size_t chunk)
{
    mx_model_spec spec = spec_of(arch, backend);
    mx_model *whole = make_trained(&spec, N), *chunked = NULL;
    CHECK_OK(mx_model_create(&spec, 0, &chunked));
    if (!whole || !chunked) return;
    CHECK_OK(mx_model_copy_state(chunked, whole));
    CHECK_OK(mx_model_plan(chunked, chunk, MX_MODEL_PREDICT));
    float *x = random_inputs(N, 17), *ref = malloc(N * CLASSES * sizeof *ref), *got = malloc(N * CLASSES * sizeof *got);
    float *fwd = malloc(N * CLASSES * sizeof *fwd);
    mx_model_set_training(whole, 0);
    memcpy(ref, mx_model_predict(whole, x, N), N * CLASSES * sizeof *ref);
    memcpy(fwd, mx_model_forward(whole, x, N), N * CLASSES * sizeof *fwd);
    for (size_t start = 0; start < N; start += chunk) {
        size_t n = N - start < chunk ? N - start : chunk;
        memcpy(got + start * CLASSES, mx_model_predict(chunked, x + start * C * H * W, n), n * CLASSES * sizeof *got);
    }
    double scale = 0;
    for (size_t i = 0; i < N * CLASSES; i++) scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    const double diff = max_abs_diff(ref, got, N * CLASSES), fdiff = max_abs_diff(fwd, got, N * CLASSES);
    printf("  %-8s %s backend, %d samples in chunks of %zu: max |logit difference| %.2g (whole batch), %.2g (eval "
           "forward), logits up to %.3g\n", arch, mx_backend_name(backend), N, chunk, diff, fdiff, scale);
    CHECK(scale > 0.1 && diff <= 1e-5 * scale && fdiff <= 1e-5 * scale);
    /* The reference CNN layers work sample by sample, but for the dense
     * layer's OpenBLAS sgemm, whose small-matrix kernels on AVX-512 sum in
     * another order at another batch size (3e-8 on logits of 0.12 on a Xeon;
     * the same bits on AVX2): within float rounding of one product. */
    if (backend == MX_BACKEND_REF && strcmp(arch, "mlp")) CHECK(diff <= 1e-6 * scale);

    /* mx_evaluate batches by the model's max batch: N / chunk full batches and a partial one. */
    uint8_t *pixels = malloc(N * C * H * W);
    int32_t labels[N];
    mx_rng rng;
    mx_rng_init(&rng, 23, MX_STREAM_INIT);
    for (size_t i = 0; i < N * C * H * W; i++) pixels[i] = (uint8_t)(mx_rng_uniform(&rng) * 256);
    for (size_t i = 0; i < N; i++) labels[i] = (int32_t)(i % CLASSES);
    mx_dataset ds = {.n = N, .channels = C, .height = H, .width = W, .num_classes = CLASSES, .pixels = pixels,
                     .labels = labels};
    mx_normalizer nz;
    CHECK_OK(mx_normalizer_init(&nz, C, (const float[]){0.5f, 0.4f, 0.3f}, (const float[]){0.2f, 0.25f, 0.3f}));
    mx_metrics a, b;
    CHECK_OK(mx_evaluate(whole, &ds, &nz, NULL, 15, &a, NULL));
    CHECK_OK(mx_evaluate(chunked, &ds, &nz, NULL, 15, &b, NULL));
    CHECK(a.n == N && b.n == N && a.accuracy == b.accuracy);
    CHECK_NEAR(a.nll, b.nll, 1e-6);
    CHECK_NEAR(a.ece, b.ece, 1e-6);
    CHECK_NEAR(a.brier, b.brier, 1e-6);

    /* Planned again for training, the copy runs forward and backward like the original. */
    CHECK_OK(mx_model_plan(chunked, N, MX_MODEL_TRAIN));
    mx_model_set_training(chunked, 0);
    CHECK(memcmp(mx_model_forward(chunked, x, N), fwd, N * CLASSES * sizeof *fwd) == 0);
    free(pixels);
    free(x), free(ref), free(got), free(fwd);
    mx_model_free(whole);
    mx_model_free(chunked);
}

int main(void)
{
    printf("plan sizes\n");
    test_plan_sizes();
    test_cpu_plan_sizes();
    printf("weights only\n");
    test_weights_only();
    printf("budget\n");
    test_budget();
    printf("chunked prediction\n");
    check_chunked("resnet20", MX_BACKEND_REF, 7);
    check_chunked("resnet20", MX_BACKEND_CPU, 7);
    check_chunked("resnet20", MX_BACKEND_CPU, N);  /* above CNN_PREDICT_CHUNK: cnn_predict's own chunks */
    check_chunked("lenet5", MX_BACKEND_CPU, 6);
    check_chunked("mlp", MX_BACKEND_REF, 9);
    CHECK_DONE();
}
