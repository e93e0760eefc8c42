/* The reference CNN layers against PyTorch: tests/fixtures/layers.safetensors
 * (written by tests/make_layer_fixtures.py) holds inputs, parameters, outputs
 * and gradients for conv2d, batchnorm2d (train and eval), max/avg/global
 * pooling, linear and ReLU; every mixreg result must agree to ~1e-5 relative,
 * the max-pool arg-max indices exactly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/layers.h"
#include "mixreg/safetensors.h"

static mx_safetensors g_st;

/* A fixture tensor copied into aligned memory (the file's bytes need not be),
 * as float; its shape in shape[0..3] (missing dimensions 1). NULL if absent. */
static float *load(const char *prefix, const char *name, size_t shape[4], size_t *numel)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    const mx_st_tensor *t = mx_safetensors_find(&g_st, key);
    if (!t) {
        fprintf(stderr, "fixture tensor %s missing\n", key);
        CHECK(t != NULL);
        return NULL;
    }
    size_t count = 1;
    for (size_t i = 0; i < 4; i++) {
        size_t dim = i < t->ndim ? t->shape[i] : 1;
        if (shape) shape[i] = dim;
        count *= dim;
    }
    for (size_t i = 4; i < t->ndim; i++) count *= t->shape[i];
    float *out = malloc(count * sizeof(float) + 1);
    if (!out) abort();
    if (t->dtype == MX_DTYPE_F32) {
        CHECK(t->nbytes == count * sizeof(float));
        memcpy(out, t->data, count * sizeof(float));
    } else {
        CHECK(t->dtype == MX_DTYPE_I64 && t->nbytes == count * sizeof(int64_t));
        for (size_t i = 0; i < count; i++) {
            int64_t v;
            memcpy(&v, (const unsigned char *)t->data + i * sizeof v, sizeof v);
            out[i] = (float)v;  /* indices, exact below 2^24 */
        }
    }
    if (numel) *numel = count;
    return out;
}

static float *zeros(size_t count)
{
    float *p = calloc(count ? count : 1, sizeof(float));
    if (!p) abort();
    return p;
}

/* Every |got - ref| <= 1e-5 |ref| + 1e-6 max|ref|: relative, with a floor for
 * entries that cancel to nearly zero. */
static void compare(const char *prefix, const char *name, const float *got, size_t count)
{
    size_t ref_count;
    float *ref = load(prefix, name, NULL, &ref_count);
    if (!ref) return;
    CHECK(ref_count == count);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < count; i++)
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    int ok = 1;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - ref[i]);
        double tol = 1e-5 * fabs(ref[i]) + 1e-6 * scale;
        if (!(d <= tol)) ok = 0;
        if (d / (fabs(ref[i]) + 0.1 * scale + 1e-30) > worst) worst = d / (fabs(ref[i]) + 0.1 * scale + 1e-30);
    }
    printf("  %-28s %5zu values, worst relative difference %.2e\n", name, count, worst);
    if (!ok) fprintf(stderr, "%s.%s differs from PyTorch\n", prefix, name);
    CHECK(ok);
    free(ref);
}

static void test_conv(void)
{
    static const struct {
        const char *prefix;
        size_t stride, pad;
        int bias;
    } cases[] = {
        {"conv_s1p1", 1, 1, 1}, {"conv_s2p1", 2, 1, 0}, {"conv_1x1s2", 2, 0, 0}, {"conv_5x5p2", 1, 2, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *p = cases[k].prefix;
        printf("%s\n", p);
        size_t xs[4], wsh[4];
        float *x = load(p, "x", xs, NULL), *w = load(p, "w", wsh, NULL);
        float *b = cases[k].bias ? load(p, "b", NULL, NULL) : NULL;
        float *dy = load(p, "dy", NULL, NULL);
        if (!x || !w || !dy) return;
        mx_conv2d_desc d = {.in_channels = xs[1], .out_channels = wsh[0], .in_h = xs[2], .in_w = xs[3],
                            .kernel_h = wsh[2], .kernel_w = wsh[3], .stride_h = cases[k].stride,
                            .stride_w = cases[k].stride, .pad_h = cases[k].pad, .pad_w = cases[k].pad};
        CHECK_OK(mx_conv2d_setup(&d));
        CHECK(wsh[1] == xs[1]);
        size_t n = xs[0], nx = n * d.in_channels * d.in_h * d.in_w, nw = d.out_channels * xs[1] * wsh[2] * wsh[3];
        size_t ny = n * d.out_channels * d.out_h * d.out_w;
        float *ws = zeros(mx_conv2d_workspace_bytes(&d) / sizeof(float));
        float *y = zeros(ny), *dx = zeros(nx), *dw = zeros(nw), *db = zeros(d.out_channels);
        mx_conv2d_forward(&d, n, x, w, b, y, ws);
        compare(p, "y", y, ny);
        mx_conv2d_backward(&d, n, x, w, dy, dx, dw, b ? db : NULL, ws);
        compare(p, "dx", dx, nx);
        compare(p, "dw", dw, nw);
        if (b) compare(p, "db", db, d.out_channels);
        /* The direct loops agree with PyTorch too. */
        printf(" direct loops:\n");
        mx_conv2d_forward_direct(&d, n, x, w, b, y);
        mx_conv2d_backward_direct(&d, n, x, w, dy, dx, dw, b ? db : NULL);
        compare(p, "y", y, ny);
        compare(p, "dx", dx, nx);
        compare(p, "dw", dw, nw);
        free(x), free(w), free(b), free(dy), free(ws), free(y), free(dx), free(dw), free(db);
    }
}

static void test_batchnorm(void)
{
    printf("bn (training, then eval with the updated running statistics)\n");
    size_t xs[4];
    float *x = load("bn", "x", xs, NULL), *gamma = load("bn", "gamma", NULL, NULL);
    float *beta = load("bn", "beta", NULL, NULL);
    float *rm = load("bn", "running_mean0", NULL, NULL), *rv = load("bn", "running_var0", NULL, NULL);
    float *dy = load("bn", "dy", NULL, NULL);
    if (!x || !gamma || !beta || !rm || !rv || !dy) return;
    size_t n = xs[0], c = xs[1], hw = xs[2] * xs[3], count = n * c * hw;
    float *y = zeros(count), *mean = zeros(c), *invstd = zeros(c), *dx = zeros(count), *dg = zeros(c),
          *dbeta = zeros(c);
    mx_batchnorm2d_forward_train(n, c, hw, x, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rm, rv, y, mean, invstd);
    compare("bn", "y", y, count);
    compare("bn", "running_mean", rm, c);
    compare("bn", "running_var", rv, c);
    mx_batchnorm2d_backward(n, c, hw, x, dy, gamma, mean, invstd, dx, dg, dbeta);
    compare("bn", "dx", dx, count);
    compare("bn", "dgamma", dg, c);
    compare("bn", "dbeta", dbeta, c);
    free(x), free(dy);
    x = load("bn_eval", "x", NULL, NULL), dy = load("bn_eval", "dy", NULL, NULL);
    if (!x || !dy) return;
    mx_batchnorm2d_forward_eval(n, c, hw, x, gamma, beta, rm, rv, MX_BN_EPS, y);
    compare("bn_eval", "y", y, count);
    mx_batchnorm2d_backward_eval(n, c, hw, x, dy, gamma, rm, rv, MX_BN_EPS, dx, dg, dbeta);
    compare("bn_eval", "dx", dx, count);
    compare("bn_eval", "dgamma", dg, c);
    compare("bn_eval", "dbeta", dbeta, c);
    free(x), free(gamma), free(beta), free(rm), free(rv), free(dy), free(y), free(mean), free(invstd), free(dx);
    free(dg), free(dbeta);
}

static void test_pooling(void)
{
    static const struct {
        const char *prefix;
        size_t k, stride, pad;
        int max, exclude_pad;
    } cases[] = {
        {"maxpool_k3s2p1", 3, 2, 1, 1, 0}, {"maxpool_k2s2", 2, 2, 0, 1, 0},
        {"maxpool_ties", 3, 2, 1, 1, 0},   {"avgpool_k3s2p1", 3, 2, 1, 0, 0},
        {"avgpool_k3s2p1_excl", 3, 2, 1, 0, 1}, {"avgpool_k2s2", 2, 2, 0, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *p = cases[k].prefix;
        printf("%s\n", p);
        size_t xs[4];
        float *x = load(p, "x", xs, NULL), *dy = load(p, "dy", NULL, NULL);
        if (!x || !dy) return;
        mx_pool2d_desc d = {.channels = xs[1], .in_h = xs[2], .in_w = xs[3], .kernel_h = cases[k].k,
                            .kernel_w = cases[k].k, .stride_h = cases[k].stride, .stride_w = cases[k].stride,
                            .pad_h = cases[k].pad, .pad_w = cases[k].pad, .exclude_pad = cases[k].exclude_pad};
        CHECK_OK(mx_pool2d_setup(&d));
        size_t n = xs[0], nx = n * d.channels * d.in_h * d.in_w, ny = n * d.channels * d.out_h * d.out_w;
        float *y = zeros(ny), *dx = zeros(nx);
        if (cases[k].max) {
            uint32_t *arg = malloc(ny * sizeof *arg);
            float *argf = zeros(ny);
            mx_maxpool2d_forward(&d, n, x, y, arg);
            for (size_t i = 0; i < ny; i++) argf[i] = (float)arg[i];
            compare(p, "y", y, ny);
            /* Indices: the tolerance is far below 1, so this is exact equality. */
            compare(p, "argmax", argf, ny);
            mx_maxpool2d_backward(&d, n, arg, dy, dx);
            free(arg), free(argf);
        } else {
            mx_avgpool2d_forward(&d, n, x, y);
            compare(p, "y", y, ny);
            mx_avgpool2d_backward(&d, n, dy, dx);
        }
        compare(p, "dx", dx, nx);
        free(x), free(dy), free(y), free(dx);
    }
    printf("gap\n");
    size_t xs[4];
    float *x = load("gap", "x", xs, NULL), *dy = load("gap", "dy", NULL, NULL);
    if (!x || !dy) return;
    size_t n = xs[0], c = xs[1], hw = xs[2] * xs[3];
    float *y = zeros(n * c), *dx = zeros(n * c * hw);
    mx_global_avgpool_forward(n, c, hw, x, y);
    compare("gap", "y", y, n * c);
    mx_global_avgpool_backward(n, c, hw, dy, dx);
    compare("gap", "dx", dx, n * c * hw);
    free(x), free(dy), free(y), free(dx);
}

static void test_linear_relu(void)
{
    printf("linear\n");
    size_t xs[4], wsh[4];
    float *x = load("linear", "x", xs, NULL), *w = load("linear", "w", wsh, NULL), *b = load("linear", "b", NULL, NULL);
    float *dy = load("linear", "dy", NULL, NULL);
    if (!x || !w || !b || !dy) return;
    size_t n = xs[0], in = xs[1], out = wsh[0];
    CHECK(wsh[1] == in);
    float *y = zeros(n * out), *dx = zeros(n * in), *dw = zeros(out * in), *db = zeros(out);
    mx_linear_forward(n, in, out, x, w, b, y);
    compare("linear", "y", y, n * out);
    mx_linear_backward(n, in, out, x, w, dy, dx, dw, db);
    compare("linear", "dx", dx, n * in);
    compare("linear", "dw", dw, out * in);
    compare("linear", "db", db, out);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);

    printf("relu\n");
    size_t count;
    x = load("relu", "x", NULL, &count), dy = load("relu", "dy", NULL, NULL);
    if (!x || !dy) return;
    y = zeros(count), dx = zeros(count);
    mx_relu_forward(count, x, y);
    compare("relu", "y", y, count);
    mx_relu_backward(count, y, dy, dx);
    compare("relu", "dx", dx, count);
    free(x), free(dy), free(y), free(dx);
}

int main(void)
{
    char path[4096];
    const char *src = getenv("MIXREG_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/fixtures/layers.safetensors", src ? src : ".");
    CHECK_OK(mx_safetensors_read(path, &g_st));
    if (!g_st.file) CHECK_DONE();
    test_conv();
    test_batchnorm();
    test_pooling();
    test_linear_relu();
    mx_safetensors_free(&g_st);
    CHECK_DONE();
}
