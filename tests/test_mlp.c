/* The MLP and the soft-target cross-entropy: gradients against central finite
 * differences, and a whole step (logits, loss, gradients, two SGD updates)
 * against PyTorch reference values in tests/fixtures/mlp_step.safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/model.h"
#include "mixreg/optim.h"
#include "mixreg/rng.h"
#include "mixreg/safetensors.h"

static mx_model_spec small_spec(void)
{
    mx_model_spec spec = {.arch = "mlp", .in_channels = 1, .in_height = 4, .in_width = 3, .num_classes = 3,
                          .num_hidden = 2, .hidden = {5, 4}};
    return spec;
}

static double loss_at(mx_model *m, const float *x, const float *y, size_t n)
{
    return mx_softmax_xent(mx_model_forward(m, x, n), y, n, 3, NULL);
}

/* Worst relative error of `analytic` against central differences of the loss
 * in each of vars[0..count). eps small enough not to cross ReLU kinks, large
 * enough for float32 losses; hence the mixed absolute/relative tolerance. */
static double worst_fd_error(mx_model *m, float *x, const float *y, size_t n, float *vars, const float *analytic,
                             size_t count)
{
    const float eps = 1e-3f;
    double worst = 0;
    for (size_t i = 0; i < count; i++) {
        float saved = vars[i];
        vars[i] = saved + eps;
        double up = loss_at(m, x, y, n);
        vars[i] = saved - eps;
        double down = loss_at(m, x, y, n);
        vars[i] = saved;
        double fd = (up - down) / (2 * eps);
        double err = fabs(fd - analytic[i]) / (5e-3 + fabs(fd));
        if (err > worst) worst = err;
        if (err > 2e-2) fprintf(stderr, "entry %zu: backward %.6g, finite difference %.6g\n", i, analytic[i], fd);
    }
    return worst;
}

static void test_finite_differences(void)
{
    mx_model_spec spec = small_spec();
    mx_model *m;
    CHECK_OK(mx_model_create(&spec, 8, &m));
    mx_model_init_params(m, 7);
    mx_rng rng;
    mx_rng_init(&rng, 99, 0);
    size_t n = 7;
    float x[7 * 12], y[7 * 3], dlogits[7 * 3];
    for (size_t i = 0; i < n * 12; i++) x[i] = (float)mx_rng_normal(&rng);
    for (size_t i = 0; i < n; i++) {
        double a = mx_rng_uniform(&rng), b = mx_rng_uniform(&rng) * (1 - a);
        y[3 * i] = (float)a, y[3 * i + 1] = (float)b, y[3 * i + 2] = (float)(1 - a - b);
    }
    double loss = mx_softmax_xent(mx_model_forward(m, x, n), y, n, 3, dlogits);
    CHECK(loss > 0);
    mx_model_backward(m, dlogits, n);
    size_t count = mx_model_param_count(m);
    float *grads = malloc(count * sizeof(float));
    memcpy(grads, mx_model_grads(m), count * sizeof(float));
    double worst = worst_fd_error(m, x, y, n, mx_model_params(m), grads, count);
    printf("worst relative gradient error vs finite differences: %.2e over %zu parameters\n", worst, count);
    CHECK(worst < 2e-2);

    /* The input gradient (vector-Jacobian product) against finite differences on x. */
    float dx[7 * 12];
    mx_softmax_xent(mx_model_forward(m, x, n), y, n, 3, dlogits);
    mx_model_backward_input(m, dlogits, n, dx);
    worst = worst_fd_error(m, x, y, n, x, dx, n * 12);
    printf("worst relative input-gradient error vs finite differences: %.2e\n", worst);
    CHECK(worst < 2e-2);
    free(grads);
    mx_model_free(m);
}

static void test_xent_gradient_is_softmax_minus_target(void)
{
    float logits[2] = {0.0f, 0.0f}, y[2] = {1.0f, 0.0f}, d[2];
    double loss = mx_softmax_xent(logits, y, 1, 2, d);
    CHECK_NEAR(loss, log(2.0), 1e-7);
    CHECK_NEAR(d[0], -0.5, 1e-7);
    CHECK_NEAR(d[1], 0.5, 1e-7);
    /* Large logits stay finite (max subtracted). */
    float big[2] = {1000.0f, -1000.0f};
    CHECK_NEAR(mx_softmax_xent(big, y, 1, 2, d), 0.0, 1e-9);
}

static const float *fixture(const mx_safetensors *st, const char *name, size_t numel)
{
    const mx_st_tensor *t = mx_safetensors_find(st, name);
    CHECK(t != NULL);
    if (!t) return NULL;
    CHECK(t->nbytes == numel * sizeof(float));
    return t->data;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float bv;
        memcpy(&bv, &b[i], sizeof bv);
        double d = fabs((double)a[i] - bv);
        if (d > worst) worst = d;
    }
    return worst;
}

static void test_against_pytorch(void)
{
    char path[4096];
    const char *src = getenv("MIXREG_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/fixtures/mlp_step.safetensors", src ? src : ".");
    mx_safetensors st;
    CHECK_OK(mx_safetensors_read(path, &st));
    if (!st.file) return;
    mx_model_spec spec = small_spec();
    mx_model *m;
    CHECK_OK(mx_model_create(&spec, 6, &m));
    const mx_param_info *table;
    size_t nt = mx_model_param_tensors(m, &table);
    CHECK(nt == 6);
    char name[128];
    for (size_t i = 0; i < nt; i++) {
        snprintf(name, sizeof name, "param.%s", table[i].name);
        const float *v = fixture(&st, name, table[i].numel);
        if (v) memcpy(mx_model_params(m) + table[i].offset, v, table[i].numel * sizeof(float));
    }
    float x[6 * 12], y[6 * 3], dlogits[6 * 3];
    memcpy(x, fixture(&st, "x", 72), sizeof x);
    memcpy(y, fixture(&st, "y", 18), sizeof y);
    const float *logits = mx_model_forward(m, x, 6);
    CHECK(max_abs_diff(logits, fixture(&st, "logits", 18), 18) < 1e-5);
    float ref_loss;
    memcpy(&ref_loss, fixture(&st, "loss", 1), sizeof ref_loss);
    CHECK_NEAR(mx_softmax_xent(logits, y, 6, 3, dlogits), ref_loss, 1e-6);
    mx_model_backward(m, dlogits, 6);
    for (size_t i = 0; i < nt; i++) {
        snprintf(name, sizeof name, "grad.%s", table[i].name);
        double d = max_abs_diff(mx_model_grads(m) + table[i].offset, fixture(&st, name, table[i].numel), table[i].numel);
        if (d >= 1e-6) fprintf(stderr, "%s differs by %g\n", name, d);
        CHECK(d < 1e-6);
    }
    mx_sgd_config sgd = {0.9, 1, 5e-4};
    size_t count = mx_model_param_count(m);
    float *velocity = calloc(count, sizeof(float));
    mx_sgd_step(&sgd, 0.1, mx_model_params(m), mx_model_grads(m), velocity, count);
    mx_sgd_step(&sgd, 0.1, mx_model_params(m), mx_model_grads(m), velocity, count);
    for (size_t i = 0; i < nt; i++) {
        snprintf(name, sizeof name, "after2.%s", table[i].name);
        double d = max_abs_diff(mx_model_params(m) + table[i].offset, fixture(&st, name, table[i].numel), table[i].numel);
        CHECK(d < 1e-6);
    }
    free(velocity);
    mx_model_free(m);
    mx_safetensors_free(&st);
}

/* A forward over the planned batch (oneDNN inner products, the bias and
 * ReLU inside the product) gives the bits of the product and a pass after it
 * (any other batch size): a model planned for 6 samples against one planned
 * for 7, both forwarding 6, then the same gradients from the same dlogits. */
static void test_planned_batch_same_bits(void)
{
    mx_model_spec spec = small_spec();
    mx_model *planned, *other;
    CHECK_OK(mx_model_create(&spec, 6, &planned));
    CHECK_OK(mx_model_create(&spec, 7, &other));
    mx_model_init_params(planned, 5);
    mx_model_init_params(other, 5);
    mx_rng rng;
    mx_rng_init(&rng, 17, 0);
    float x[6 * 12], dlogits[6 * 3], logits[6 * 3];
    for (size_t i = 0; i < 6 * 12; i++) x[i] = (float)mx_rng_normal(&rng);
    for (size_t i = 0; i < 6 * 3; i++) dlogits[i] = (float)mx_rng_normal(&rng);
    memcpy(logits, mx_model_forward(planned, x, 6), sizeof logits);
    CHECK(memcmp(logits, mx_model_forward(other, x, 6), sizeof logits) == 0);
    mx_model_forward(planned, x, 6);
    mx_model_backward(planned, dlogits, 6);
    mx_model_backward(other, dlogits, 6);
    CHECK(memcmp(mx_model_grads(planned), mx_model_grads(other), mx_model_param_count(planned) * sizeof(float)) == 0);
    mx_model_free(planned);
    mx_model_free(other);
}

/* Prediction (each thread its rows through every layer) gives the eval
 * forward's logits: the default 784-512-512-10 MLP and logistic
 * regression, at the planned batch, at an odd one, and at one sample (a
 * thread with no rows). */
static void test_predict_is_forward(void)
{
    /* Two hidden layers (the default), one, three of odd widths, none (logreg). */
    static const char *const archs[] = {"mlp", "mlp", "mlp", "logreg"};
    static const size_t hidden_layers[] = {2, 1, 3, 0}, hidden[][3] = {{512, 512}, {300}, {37, 5, 64}, {0}};
    for (size_t a = 0; a < 4; a++) {
        mx_model_spec spec = {.in_channels = 1, .in_height = 28, .in_width = 28, .num_classes = 10,
                              .num_hidden = hidden_layers[a]};
        for (size_t l = 0; l < hidden_layers[a]; l++) spec.hidden[l] = hidden[a][l];
        snprintf(spec.arch, sizeof spec.arch, "%s", archs[a]);
        mx_model *m;
        CHECK_OK(mx_model_create(&spec, 128, &m));
        mx_model_init_params(m, 9);
        mx_model_set_training(m, 0);
        float *x = malloc(128 * 784 * sizeof *x), *want = malloc(128 * 10 * sizeof *want);
        mx_rng rng;
        mx_rng_init(&rng, 21, 0);
        for (size_t i = 0; i < 128 * 784; i++) x[i] = (float)mx_rng_normal(&rng);
        static const size_t sizes[] = {128, 37, 1};
        for (size_t k = 0; k < 3; k++) {
            const size_t n = sizes[k];
            memcpy(want, mx_model_forward(m, x, n), n * 10 * sizeof *want);
            const float *got = mx_model_predict(m, x, n);
            double scale = 0;
            for (size_t i = 0; i < n * 10; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
            const double d = max_abs_diff(got, want, n * 10);
            printf("  %s, %zu hidden layers, %zu samples: max |predict - forward| %.2g, logits up to %.3g\n",
                   archs[a], hidden_layers[a], n, d, scale);
            CHECK(scale > 0.05 && d <= 1e-6 * scale);
        }
        free(x), free(want);
        mx_model_free(m);
    }
}

static void test_bad_specs(void)
{
    mx_model_spec spec = small_spec();
    mx_model *m;
    spec.num_classes = 1;
    CHECK(mx_model_create(&spec, 4, &m) == MX_ERR_ARG);
    spec = small_spec();
    snprintf(spec.arch, sizeof spec.arch, "resnet9000");
    CHECK(mx_model_create(&spec, 4, &m) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "mlp") != NULL);
    spec = small_spec();
    CHECK(mx_model_spec_set_hidden(&spec, "") == MX_ERR_ARG);
    CHECK(mx_model_spec_set_hidden(&spec, "12,,3") == MX_ERR_ARG);
    CHECK(mx_model_spec_set_hidden(&spec, "12,0") == MX_ERR_ARG);
    CHECK(mx_model_spec_set_hidden(&spec, "12,") == MX_ERR_ARG);
    CHECK_OK(mx_model_spec_set_hidden(&spec, "7,3,2"));
    CHECK(spec.num_hidden == 3 && spec.hidden[2] == 2);
    /* logreg: one linear layer, 12*3 + 3 parameters. */
    spec = small_spec();
    snprintf(spec.arch, sizeof spec.arch, "logreg");
    CHECK_OK(mx_model_create(&spec, 4, &m));
    CHECK(mx_model_param_count(m) == 39);
    mx_model_free(m);
    /* The default MLP has PyTorch's parameter count for 784-512-512-10. */
    mx_model_spec big = {.arch = "mlp", .in_channels = 1, .in_height = 28, .in_width = 28, .num_classes = 10,
                         .num_hidden = 2, .hidden = {512, 512}};
    CHECK_OK(mx_model_create(&big, 2, &m));
    CHECK(mx_model_param_count(m) == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10);
    mx_model_free(m);
}

int main(void)
{
    test_xent_gradient_is_softmax_minus_target();
    test_finite_differences();
    test_against_pytorch();
    test_planned_batch_same_bits();
    test_predict_is_forward();
    test_bad_specs();
    CHECK_DONE();
}
