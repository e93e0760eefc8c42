/* The reference CNN layers (include/mixreg/layers.h): every backward against
 * central finite differences of a scalar loss L = sum(r * y) (r fixed and
 * random, so dL/dy = r), the im2col convolution against the direct loops,
 * batch-norm statistics by hand, the max-pool tie rule, dropout masks,
 * overwrite semantics and determinism across thread counts. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/layers.h"
#include "mixreg/rng.h"

static mx_rng g_rng;

static float *alloc_floats(size_t count)
{
    float *p = malloc((count ? count : 1) * sizeof(float));
    if (!p) abort();
    return p;
}

static float *normals(size_t count)
{
    float *p = alloc_floats(count);
    for (size_t i = 0; i < count; i++) p[i] = (float)mx_rng_normal(&g_rng);
    return p;
}

static void fill_nan(float *p, size_t count)
{
    for (size_t i = 0; i < count; i++) p[i] = NAN;
}

static double dot(const float *a, const float *b, size_t count)
{
    double s = 0;
    for (size_t i = 0; i < count; i++) s += (double)a[i] * b[i];
    return s;
}

/* max |a - b| / max |b|: a norm-wise relative error, so entries that cancel to
 * nearly zero do not dominate. */
static double rel_err(const float *a, const float *b, size_t count)
{
    double diff = 0, scale = 1e-30;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > diff || d != d) diff = d != d ? INFINITY : d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return diff / scale;
}

static int bitwise_equal(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

/* ---- finite differences ----------------------------------------------------- */

typedef double (*loss_fn)(void *ctx);

/* Worst error (relative to the largest analytic entry) of `analytic` against
 * central differences of f in vars[0..count). five_point: the 4th-order stencil,
 * for smooth nonlinear layers; for (piecewise) linear ones the 2-point
 * difference is exact up to rounding with any step that stays off the kinks. */
static double fd_check(const char *what, loss_fn f, void *ctx, float *vars, const float *analytic, size_t count,
                       float eps, int five_point)
{
    double worst = 0, scale = 1e-12;
    for (size_t i = 0; i < count; i++)
        if (fabs(analytic[i]) > scale) scale = fabs(analytic[i]);
    for (size_t i = 0; i < count; i++) {
        float saved = vars[i];
        double fd;
        vars[i] = saved + eps;
        double up = f(ctx);
        vars[i] = saved - eps;
        double down = f(ctx);
        if (five_point) {
            vars[i] = saved + 2 * eps;
            double up2 = f(ctx);
            vars[i] = saved - 2 * eps;
            double down2 = f(ctx);
            fd = (8 * (up - down) - (up2 - down2)) / (12.0 * eps);
        } else {
            fd = (up - down) / (2.0 * eps);
        }
        vars[i] = saved;
        double err = fabs(fd - analytic[i]) / scale;
        if (err > worst) worst = err;
    }
    printf("  %-40s %4zu entries, worst error %.2e\n", what, count, worst);
    return worst;
}

/* ---- conv2d ------------------------------------------------------------------ */

typedef struct {
    mx_conv2d_desc d;
    size_t n;
    float *x, *w, *b, *y, *r, *ws;
} conv_case;

static double conv_loss(void *ctx)
{
    conv_case *c = ctx;
    mx_conv2d_forward(&c->d, c->n, c->x, c->w, c->b, c->y, c->ws);
    return dot(c->y, c->r, c->n * c->d.out_channels * c->d.out_h * c->d.out_w);
}

static mx_conv2d_desc conv_desc(size_t cin, size_t cout, size_t h, size_t w, size_t kh, size_t kw, size_t sh,
                                size_t sw, size_t ph, size_t pw)
{
    mx_conv2d_desc d = {.in_channels = cin, .out_channels = cout, .in_h = h, .in_w = w, .kernel_h = kh,
                        .kernel_w = kw, .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw};
    CHECK_OK(mx_conv2d_setup(&d));
    return d;
}

static const struct {
    size_t cin, cout, h, w, kh, kw, sh, sw, ph, pw;
    int bias;
} conv_configs[] = {
    {2, 3, 5, 4, 3, 3, 1, 1, 1, 1, 1},  /* 3x3 same, odd/even sizes */
    {3, 2, 7, 6, 3, 3, 2, 2, 1, 1, 0},  /* stride 2 pad 1 (ResNet downsampling) */
    {2, 2, 6, 5, 2, 3, 2, 1, 0, 0, 1},  /* rectangular kernel, mixed strides, pad 0 */
    {3, 4, 5, 5, 1, 1, 2, 2, 0, 0, 0},  /* 1x1 stride 2 (projection shortcut) */
    {4, 3, 4, 3, 1, 1, 1, 1, 0, 0, 1},  /* 1x1 stride 1: the no-workspace path */
    {1, 2, 6, 6, 5, 5, 1, 1, 2, 2, 1},  /* 5x5 pad 2 (LeNet) */
    {2, 2, 5, 7, 3, 3, 3, 2, 0, 1, 1},  /* stride 3, windows that miss the last rows */
    {2, 3, 3, 3, 3, 3, 1, 1, 2, 2, 1},  /* padding larger than half the kernel */
};
#define NUM_CONV_CONFIGS (sizeof conv_configs / sizeof conv_configs[0])

static void test_conv_finite_differences(void)
{
    printf("conv2d backward vs finite differences\n");
    for (size_t k = 0; k < NUM_CONV_CONFIGS; k++) {
        conv_case c;
        c.d = conv_desc(conv_configs[k].cin, conv_configs[k].cout, conv_configs[k].h, conv_configs[k].w,
                        conv_configs[k].kh, conv_configs[k].kw, conv_configs[k].sh, conv_configs[k].sw,
                        conv_configs[k].ph, conv_configs[k].pw);
        c.n = 2;
        size_t nx = c.n * c.d.in_channels * c.d.in_h * c.d.in_w;
        size_t nw = c.d.out_channels * c.d.in_channels * c.d.kernel_h * c.d.kernel_w;
        size_t ny = c.n * c.d.out_channels * c.d.out_h * c.d.out_w;
        c.x = normals(nx);
        c.w = normals(nw);
        c.b = conv_configs[k].bias ? normals(c.d.out_channels) : NULL;
        c.y = alloc_floats(ny);
        c.r = normals(ny);
        c.ws = alloc_floats(mx_conv2d_workspace_bytes(&c.d) / sizeof(float));
        float *dx = alloc_floats(nx), *dw = alloc_floats(nw), *db = alloc_floats(c.d.out_channels);
        fill_nan(dx, nx);
        fill_nan(dw, nw);
        fill_nan(db, c.d.out_channels);
        mx_conv2d_forward(&c.d, c.n, c.x, c.w, c.b, c.y, c.ws);
        mx_conv2d_backward(&c.d, c.n, c.x, c.w, c.r, dx, dw, c.b ? db : NULL, c.ws);
        char what[64];
        /* The loss is linear in each of x, w, b: a large step is exact. */
        snprintf(what, sizeof what, "config %zu dx", k);
        CHECK(fd_check(what, conv_loss, &c, c.x, dx, nx, 0.5f, 0) < 1e-5);
        snprintf(what, sizeof what, "config %zu dweight", k);
        CHECK(fd_check(what, conv_loss, &c, c.w, dw, nw, 0.5f, 0) < 1e-5);
        if (c.b) {
            snprintf(what, sizeof what, "config %zu dbias", k);
            CHECK(fd_check(what, conv_loss, &c, c.b, db, c.d.out_channels, 0.5f, 0) < 1e-5);
        }
        free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(c.ws), free(dx), free(dw), free(db);
    }
}

/* The im2col + sgemm path against the direct loops, forward and backward, on
 * the configurations above and a few larger ones; also determinism. */
static void test_conv_im2col_vs_direct(void)
{
    static const struct {
        size_t cin, cout, h, w, kh, kw, s, p, n;
    } big[] = {
        {16, 8, 11, 11, 3, 3, 2, 1, 3},
        {8, 16, 14, 14, 3, 3, 1, 1, 2},
        {16, 32, 9, 9, 1, 1, 2, 0, 2},
        {6, 16, 14, 14, 5, 5, 1, 0, 2},
        {3, 5, 32, 32, 3, 3, 1, 1, 1},
    };
    size_t total = NUM_CONV_CONFIGS + sizeof big / sizeof big[0];
    double worst[4] = {0, 0, 0, 0};
    int deterministic = 1;
    for (size_t k = 0; k < total; k++) {
        mx_conv2d_desc d;
        size_t n;
        int has_bias = 1;
        if (k < NUM_CONV_CONFIGS) {
            d = conv_desc(conv_configs[k].cin, conv_configs[k].cout, conv_configs[k].h, conv_configs[k].w,
                          conv_configs[k].kh, conv_configs[k].kw, conv_configs[k].sh, conv_configs[k].sw,
                          conv_configs[k].ph, conv_configs[k].pw);
            n = 3;
            has_bias = conv_configs[k].bias;
        } else {
            size_t j = k - NUM_CONV_CONFIGS;
            d = conv_desc(big[j].cin, big[j].cout, big[j].h, big[j].w, big[j].kh, big[j].kw, big[j].s, big[j].s,
                          big[j].p, big[j].p);
            n = big[j].n;
        }
        size_t nx = n * d.in_channels * d.in_h * d.in_w, nw = d.out_channels * d.in_channels * d.kernel_h * d.kernel_w;
        size_t ny = n * d.out_channels * d.out_h * d.out_w, nb = d.out_channels;
        float *x = normals(nx), *w = normals(nw), *b = has_bias ? normals(nb) : NULL, *dy = normals(ny);
        float *ws = alloc_floats(mx_conv2d_workspace_bytes(&d) / sizeof(float));
        float *y1 = alloc_floats(ny), *y2 = alloc_floats(ny), *y3 = alloc_floats(ny);
        float *dx1 = alloc_floats(nx), *dx2 = alloc_floats(nx), *dx3 = alloc_floats(nx);
        float *dw1 = alloc_floats(nw), *dw2 = alloc_floats(nw), *dw3 = alloc_floats(nw);
        float *db1 = alloc_floats(nb), *db2 = alloc_floats(nb), *db3 = alloc_floats(nb);
        fill_nan(y1, ny), fill_nan(dx1, nx), fill_nan(dw1, nw), fill_nan(db1, nb);
        mx_conv2d_forward(&d, n, x, w, b, y1, ws);
        mx_conv2d_backward(&d, n, x, w, dy, dx1, dw1, db1, ws);
        mx_conv2d_forward_direct(&d, n, x, w, b, y2);
        mx_conv2d_backward_direct(&d, n, x, w, dy, dx2, dw2, db2);
        double e[4] = {rel_err(y1, y2, ny), rel_err(dx1, dx2, nx), rel_err(dw1, dw2, nw), rel_err(db1, db2, nb)};
        for (int i = 0; i < 4; i++) {
            if (e[i] > worst[i]) worst[i] = e[i];
            if (!(e[i] < 1e-5)) fprintf(stderr, "conv case %zu: output %d differs by %.3g\n", k, i, e[i]);
            CHECK(e[i] < 1e-5);
        }
        /* The same call again gives the same bits. */
        mx_conv2d_forward(&d, n, x, w, b, y3, ws);
        mx_conv2d_backward(&d, n, x, w, dy, dx3, dw3, db3, ws);
        deterministic &= bitwise_equal(y1, y3, ny * 4) && bitwise_equal(dx1, dx3, nx * 4) &&
                         bitwise_equal(dw1, dw3, nw * 4) && bitwise_equal(db1, db3, nb * 4);
        /* NULL gradient outputs are skipped, the others unchanged. */
        fill_nan(dx3, nx);
        mx_conv2d_backward(&d, n, x, w, dy, dx3, NULL, NULL, ws);
        CHECK(bitwise_equal(dx1, dx3, nx * 4));
        fill_nan(dw3, nw);
        mx_conv2d_backward(&d, n, x, w, dy, NULL, dw3, NULL, ws);
        CHECK(bitwise_equal(dw1, dw3, nw * 4));
        free(x), free(w), free(b), free(dy), free(ws), free(y1), free(y2), free(y3), free(dx1), free(dx2), free(dx3);
        free(dw1), free(dw2), free(dw3), free(db1), free(db2), free(db3);
    }
    printf("conv2d im2col vs direct over %zu shapes: worst y %.2e, dx %.2e, dw %.2e, db %.2e\n", total, worst[0],
           worst[1], worst[2], worst[3]);
    CHECK(deterministic);
}

static void test_conv_setup(void)
{
    mx_conv2d_desc d = {.in_channels = 1, .out_channels = 6, .in_h = 28, .in_w = 28, .kernel_h = 5, .kernel_w = 5,
                        .stride_h = 1, .stride_w = 1, .pad_h = 2, .pad_w = 2};
    CHECK_OK(mx_conv2d_setup(&d));
    CHECK(d.out_h == 28 && d.out_w == 28);
    CHECK(mx_conv2d_workspace_bytes(&d) == 25 * 28 * 28 * sizeof(float));
    d.pad_h = d.pad_w = 0;
    CHECK_OK(mx_conv2d_setup(&d));
    CHECK(d.out_h == 24 && d.out_w == 24);
    mx_conv2d_desc s2 = {.in_channels = 16, .out_channels = 32, .in_h = 28, .in_w = 28, .kernel_h = 3,
                         .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
    CHECK_OK(mx_conv2d_setup(&s2));
    CHECK(s2.out_h == 14 && s2.out_w == 14);
    s2.kernel_h = s2.kernel_w = 1, s2.pad_h = s2.pad_w = 0;
    CHECK_OK(mx_conv2d_setup(&s2));
    CHECK(s2.out_h == 14 && mx_conv2d_workspace_bytes(&s2) == 16 * 14 * 14 * sizeof(float));
    s2.stride_h = s2.stride_w = 1;
    CHECK_OK(mx_conv2d_setup(&s2));
    CHECK(mx_conv2d_workspace_bytes(&s2) == 0);
    mx_conv2d_desc bad = d;
    bad.kernel_h = 29;
    CHECK(mx_conv2d_setup(&bad) == MX_ERR_ARG);
    bad = d, bad.stride_w = 0;
    CHECK(mx_conv2d_setup(&bad) == MX_ERR_ARG);
    bad = d, bad.in_channels = 0;
    CHECK(mx_conv2d_setup(&bad) == MX_ERR_ARG);
    bad = d, bad.in_w = 2, bad.pad_w = 1;  /* 2 + 2 < 5 */
    CHECK(mx_conv2d_setup(&bad) == MX_ERR_ARG);
}

/* ---- batchnorm2d ------------------------------------------------------------ */

typedef struct {
    size_t n, c, hw;
    int eval;
    float *x, *gamma, *beta, *rm, *rv, *y, *r, *mean, *invstd;
} bn_case;

static double bn_loss(void *ctx)
{
    bn_case *b = ctx;
    if (b->eval)
        mx_batchnorm2d_forward_eval(b->n, b->c, b->hw, b->x, b->gamma, b->beta, b->rm, b->rv, MX_BN_EPS, b->y);
    else /* no running statistics: repeated forwards must not drift */
        mx_batchnorm2d_forward_train(b->n, b->c, b->hw, b->x, b->gamma, b->beta, MX_BN_MOMENTUM, MX_BN_EPS, NULL,
                                     NULL, b->y, b->mean, b->invstd);
    return dot(b->y, b->r, b->n * b->c * b->hw);
}

static void test_batchnorm_finite_differences(void)
{
    printf("batchnorm2d backward vs finite differences\n");
    static const size_t shapes[][3] = {{3, 2, 5}, {2, 3, 9}, {5, 1, 1}};
    for (size_t k = 0; k < 3; k++)
        for (int eval = 0; eval < 2; eval++) {
            bn_case b = {.n = shapes[k][0], .c = shapes[k][1], .hw = shapes[k][2], .eval = eval};
            size_t count = b.n * b.c * b.hw;
            b.x = normals(count);
            for (size_t i = 0; i < count; i++) b.x[i] = 2.0f * b.x[i] + 0.5f;
            b.gamma = normals(b.c), b.beta = normals(b.c), b.rm = normals(b.c), b.rv = alloc_floats(b.c);
            for (size_t i = 0; i < b.c; i++) b.rv[i] = 0.5f + (float)mx_rng_uniform(&g_rng);
            b.y = alloc_floats(count), b.r = normals(count);
            b.mean = alloc_floats(b.c), b.invstd = alloc_floats(b.c);
            float *dx = alloc_floats(count), *dg = alloc_floats(b.c), *dbeta = alloc_floats(b.c);
            fill_nan(dx, count), fill_nan(dg, b.c), fill_nan(dbeta, b.c);
            bn_loss(&b);
            if (eval)
                mx_batchnorm2d_backward_eval(b.n, b.c, b.hw, b.x, b.r, b.gamma, b.rm, b.rv, MX_BN_EPS, dx, dg, dbeta);
            else
                mx_batchnorm2d_backward(b.n, b.c, b.hw, b.x, b.r, b.gamma, b.mean, b.invstd, dx, dg, dbeta);
            char what[64];
            snprintf(what, sizeof what, "%s %zux%zux%zu dx", eval ? "eval" : "train", b.n, b.c, b.hw);
            CHECK(fd_check(what, bn_loss, &b, b.x, dx, count, 1e-2f, 1) < 1e-3);
            snprintf(what, sizeof what, "%s %zux%zux%zu dgamma", eval ? "eval" : "train", b.n, b.c, b.hw);
            CHECK(fd_check(what, bn_loss, &b, b.gamma, dg, b.c, 0.25f, 0) < 1e-5);
            snprintf(what, sizeof what, "%s %zux%zux%zu dbeta", eval ? "eval" : "train", b.n, b.c, b.hw);
            CHECK(fd_check(what, bn_loss, &b, b.beta, dbeta, b.c, 0.25f, 0) < 1e-5);
            free(b.x), free(b.gamma), free(b.beta), free(b.rm), free(b.rv), free(b.y), free(b.r), free(b.mean);
            free(b.invstd), free(dx), free(dg), free(dbeta);
        }
}

static void test_batchnorm_statistics(void)
{
    /* Two channels, n = 2, hw = 2: channel 0 holds {1, 2, 3, 6}, channel 1 {0, 0, 4, 4}. */
    const float x[8] = {1, 2, 0, 0, 3, 6, 4, 4};
    const float gamma[2] = {2.0f, 1.0f}, beta[2] = {0.5f, -1.0f};
    float rm[2] = {1.0f, -2.0f}, rv[2] = {2.0f, 0.5f}, y[8], mean[2], invstd[2];
    mx_batchnorm2d_forward_train(2, 2, 2, x, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rm, rv, y, mean, invstd);
    /* Channel 0: mean 3, biased var (4 + 1 + 0 + 9) / 4 = 3.5, unbiased 14 / 3. */
    CHECK_NEAR(mean[0], 3.0, 1e-7);
    CHECK_NEAR(invstd[0], 1.0 / sqrt(3.5 + 1e-5), 1e-7);
    CHECK_NEAR(rm[0], 0.9 * 1.0 + 0.1 * 3.0, 1e-7);
    CHECK_NEAR(rv[0], 0.9 * 2.0 + 0.1 * 14.0 / 3.0, 1e-6);
    CHECK_NEAR(y[0], (1 - 3) / sqrt(3.5 + 1e-5) * 2 + 0.5, 1e-6);
    CHECK_NEAR(y[5], (6 - 3) / sqrt(3.5 + 1e-5) * 2 + 0.5, 1e-6);
    /* Channel 1: mean 2, biased var 4, unbiased 16 / 3. */
    CHECK_NEAR(mean[1], 2.0, 1e-7);
    CHECK_NEAR(rm[1], 0.9 * -2.0 + 0.1 * 2.0, 1e-7);
    CHECK_NEAR(rv[1], 0.9 * 0.5 + 0.1 * 16.0 / 3.0, 1e-6);
    CHECK_NEAR(y[2], (0 - 2) / sqrt(4 + 1e-5) - 1, 1e-6);
    /* Eval uses the (updated) running statistics. */
    float ye[8];
    mx_batchnorm2d_forward_eval(2, 2, 2, x, gamma, beta, rm, rv, MX_BN_EPS, ye);
    CHECK_NEAR(ye[1], (2 - rm[0]) / sqrt(rv[0] + 1e-5) * 2 + 0.5, 1e-6);
    CHECK_NEAR(ye[7], (4 - rm[1]) / sqrt(rv[1] + 1e-5) * 1 - 1, 1e-6);
    /* affine=False (NULL gamma/beta): zero mean and unit (biased) variance. */
    mx_batchnorm2d_forward_train(2, 2, 2, x, NULL, NULL, MX_BN_MOMENTUM, 0.0f, NULL, NULL, y, NULL, NULL);
    for (size_t c = 0; c < 2; c++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < 4; i++) {
            float v = y[(i / 2) * 4 + c * 2 + i % 2];
            s += v, ss += (double)v * v;
        }
        CHECK_NEAR(s / 4, 0.0, 1e-7);
        CHECK_NEAR(ss / 4, 1.0, 1e-6);
    }
    /* In place, and repeated steps' running averages converge on the batch statistics. */
    float xi[8], rm2[2] = {0, 1}, rv2[2] = {1, 1};
    for (int step = 0; step < 200; step++) {
        memcpy(xi, x, sizeof xi);
        mx_batchnorm2d_forward_train(2, 2, 2, xi, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rm2, rv2, xi, mean, invstd);
    }
    CHECK_NEAR(rm2[0], 3.0, 1e-5);
    CHECK_NEAR(rv2[0], 14.0 / 3.0, 1e-5);
    CHECK_NEAR(xi[0], (1 - 3) / sqrt(3.5 + 1e-5) * 2 + 0.5, 1e-6);
}

/* ---- relu --------------------------------------------------------------------- */

typedef struct {
    size_t count;
    float *x, *y, *r;
} ew_case;

static double relu_loss(void *ctx)
{
    ew_case *e = ctx;
    mx_relu_forward(e->count, e->x, e->y);
    return dot(e->y, e->r, e->count);
}

static void test_relu(void)
{
    ew_case e = {.count = 37};
    e.x = normals(e.count), e.y = alloc_floats(e.count), e.r = normals(e.count);
    /* Keep every input at least 0.1 from the kink. */
    for (size_t i = 0; i < e.count; i++) e.x[i] += e.x[i] < 0 ? -0.1f : 0.1f;
    float *dx = alloc_floats(e.count);
    relu_loss(&e);
    mx_relu_backward(e.count, e.y, e.r, dx);
    printf("relu backward vs finite differences\n");
    CHECK(fd_check("dx", relu_loss, &e, e.x, dx, e.count, 0.05f, 0) < 1e-6);
    /* In place, and NaN passes through (PyTorch's clamp_min). */
    float v[4] = {-1.0f, 2.0f, NAN, 0.0f}, g[4] = {1, 1, 1, 1};
    mx_relu_forward(4, v, v);
    CHECK(v[0] == 0.0f && v[1] == 2.0f && isnan(v[2]) && v[3] == 0.0f);
    mx_relu_backward(4, v, g, g);
    CHECK(g[0] == 0.0f && g[1] == 1.0f && g[2] == 1.0f && g[3] == 0.0f);
    free(e.x), free(e.y), free(e.r), free(dx);
}

/* ---- pooling ---------------------------------------------------------------- */

typedef struct {
    mx_pool2d_desc d;
    size_t n;
    int max;
    float *x, *y, *r;
    uint32_t *arg;
} pool_case;

static double pool_loss(void *ctx)
{
    pool_case *p = ctx;
    if (p->max)
        mx_maxpool2d_forward(&p->d, p->n, p->x, p->y, p->arg);
    else
        mx_avgpool2d_forward(&p->d, p->n, p->x, p->y);
    return dot(p->y, p->r, p->n * p->d.channels * p->d.out_h * p->d.out_w);
}

static mx_pool2d_desc pool_desc(size_t c, size_t h, size_t w, size_t k, size_t s, size_t p, int exclude_pad)
{
    mx_pool2d_desc d = {.channels = c, .in_h = h, .in_w = w, .kernel_h = k, .kernel_w = k, .stride_h = s,
                        .stride_w = s, .pad_h = p, .pad_w = p, .exclude_pad = exclude_pad};
    CHECK_OK(mx_pool2d_setup(&d));
    return d;
}

static void test_pool_finite_differences(void)
{
    static const size_t configs[][6] = {
        /* c, h, w, k, s, pad */
        {2, 4, 6, 2, 2, 0}, {2, 7, 5, 3, 2, 1}, {1, 5, 5, 3, 1, 1}, {3, 5, 7, 2, 2, 1}, {2, 6, 6, 3, 3, 0},
    };
    printf("pooling backward vs finite differences\n");
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++)
        for (int mode = 0; mode < 3; mode++) { /* max, avg, avg excluding the padding */
            pool_case p = {.n = 2, .max = mode == 0};
            p.d = pool_desc(configs[k][0], configs[k][1], configs[k][2], configs[k][3], configs[k][4], configs[k][5],
                            mode == 2);
            size_t nx = p.n * p.d.channels * p.d.in_h * p.d.in_w, ny = p.n * p.d.channels * p.d.out_h * p.d.out_w;
            p.x = alloc_floats(nx), p.y = alloc_floats(ny), p.r = normals(ny);
            p.arg = malloc(ny * sizeof *p.arg);
            /* Distinct values 1/8 apart (a shuffled ramp) keep the max's FD off the ties;
             * they and the step 1/32 are exact in float, so the differences are too. */
            uint32_t *perm = malloc(nx * sizeof *perm);
            mx_rng_permutation(&g_rng, perm, nx);
            for (size_t i = 0; i < nx; i++) p.x[i] = 0.125f * (float)perm[i] - 1.0f;
            float *dx = alloc_floats(nx);
            fill_nan(dx, nx);
            pool_loss(&p);
            if (p.max)
                mx_maxpool2d_backward(&p.d, p.n, p.arg, p.r, dx);
            else
                mx_avgpool2d_backward(&p.d, p.n, p.r, dx);
            char what[64];
            static const char *const names[3] = {"maxpool", "avgpool", "avgpool excl-pad"};
            snprintf(what, sizeof what, "%s k%zu s%zu p%zu on %zux%zu", names[mode], p.d.kernel_h, p.d.stride_h,
                     p.d.pad_h, p.d.in_h, p.d.in_w);
            CHECK(fd_check(what, pool_loss, &p, p.x, dx, nx, mode == 0 ? 0.03125f : 0.5f, 0) < 1e-5);
            free(p.x), free(p.y), free(p.r), free(p.arg), free(perm), free(dx);
        }
}

static void test_maxpool_ties(void)
{
    /* A constant plane: every window ties, so each argmax is its window's first
     * in-bounds element, and the backward sends each dy there. */
    mx_pool2d_desc d = pool_desc(1, 4, 4, 2, 2, 0, 0);
    float x[16], y[4], dy[4] = {1, 2, 3, 4}, dx[16];
    uint32_t arg[4];
    for (int i = 0; i < 16; i++) x[i] = 1.5f;
    mx_maxpool2d_forward(&d, 1, x, y, arg);
    CHECK(arg[0] == 0 && arg[1] == 2 && arg[2] == 8 && arg[3] == 10);
    mx_maxpool2d_backward(&d, 1, arg, dy, dx);
    CHECK(dx[0] == 1 && dx[2] == 2 && dx[8] == 3 && dx[10] == 4 && dx[1] == 0 && dx[5] == 0 && dx[15] == 0);
    /* Padded, overlapping windows (k3 s2 p1): windows start in the padding, the
     * first in-bounds element wins; a shared maximum collects both gradients. */
    mx_pool2d_desc dp = pool_desc(1, 4, 4, 3, 2, 1, 0);
    mx_maxpool2d_forward(&dp, 1, x, y, arg);
    CHECK(arg[0] == 0 && arg[1] == 1 && arg[2] == 4 && arg[3] == 5);
    float xs[16] = {0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    mx_maxpool2d_forward(&dp, 1, xs, y, arg);
    CHECK(arg[0] == 5 && arg[1] == 5 && arg[2] == 5 && arg[3] == 5 && y[3] == 9.0f);
    mx_maxpool2d_backward(&dp, 1, arg, dy, dx);
    CHECK(dx[5] == 10.0f && dx[0] == 0.0f);
    /* Ties after a smaller value: the first of the two maxima. */
    float xt[16] = {0, 7, 0, 0, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    mx_maxpool2d_forward(&d, 1, xt, y, arg);
    CHECK(arg[0] == 1 && y[0] == 7.0f);
    /* All -inf: -inf out, index the first in-bounds; a NaN beats everything. */
    float xn[16];
    for (int i = 0; i < 16; i++) xn[i] = -INFINITY;
    xn[10] = NAN, xn[15] = NAN;
    mx_maxpool2d_forward(&d, 1, xn, y, arg);
    CHECK(isinf(y[0]) && y[0] < 0 && arg[0] == 0 && isnan(y[3]) && arg[3] == 15);
}

/* The 2x2 stride-2 window has its own vectorised, threaded loop: it must give
 * the general rule's outputs and arg-max exactly, on odd sizes (a row and a
 * column left over), ties, -inf and NaNs, and over enough planes to run on
 * the thread team. */
static void test_maxpool_2x2_matches_rule(void)
{
    const size_t n = 64, c = 6, h = 15, w = 17, oh = 7, ow = 8, in_plane = h * w, out_plane = oh * ow;
    mx_pool2d_desc d = pool_desc(c, h, w, 2, 2, 0, 0);
    float *x = malloc(n * c * in_plane * sizeof(float)), *y = malloc(n * c * out_plane * sizeof(float));
    uint32_t *arg = malloc(n * c * out_plane * sizeof(uint32_t));
    uint64_t state = 12345;
    for (size_t i = 0; i < n * c * in_plane; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(state >> 33) % 16;
        x[i] = r == 0 ? NAN : r == 1 ? -INFINITY : (float)(r % 4); /* few values: many ties */
    }
    mx_maxpool2d_forward(&d, n, x, y, arg);
    size_t bad = 0;
    for (size_t p = 0; p < n * c; p++)
        for (size_t i = 0; i < oh; i++)
            for (size_t j = 0; j < ow; j++) {
                const float *xp = x + p * in_plane;
                float best = -INFINITY;
                uint32_t at = (uint32_t)(2 * i * w + 2 * j);
                for (size_t a = 0; a < 2; a++)
                    for (size_t b = 0; b < 2; b++) {
                        float v = xp[(2 * i + a) * w + 2 * j + b];
                        if (v > best || isnan(v)) best = v, at = (uint32_t)((2 * i + a) * w + 2 * j + b);
                    }
                float got = y[p * out_plane + i * ow + j];
                int same = isnan(best) ? isnan(got) : got == best;
                bad += !same || arg[p * out_plane + i * ow + j] != at;
            }
    CHECK(bad == 0);
    free(x), free(y), free(arg);
}

static void test_pool_setup_and_global(void)
{
    mx_pool2d_desc d = {.channels = 6, .in_h = 28, .in_w = 28, .kernel_h = 2, .kernel_w = 2, .stride_h = 2,
                        .stride_w = 2};
    CHECK_OK(mx_pool2d_setup(&d));
    CHECK(d.out_h == 14 && d.out_w == 14);
    d.in_h = d.in_w = 5;
    CHECK_OK(mx_pool2d_setup(&d));
    CHECK(d.out_h == 2);
    mx_pool2d_desc bad = d;
    bad.pad_h = 2;  /* more than half the kernel */
    CHECK(mx_pool2d_setup(&bad) == MX_ERR_ARG);
    bad = d, bad.kernel_w = 6;
    CHECK(mx_pool2d_setup(&bad) == MX_ERR_ARG);
    bad = d, bad.stride_h = 0;
    CHECK(mx_pool2d_setup(&bad) == MX_ERR_ARG);

    /* Avg pool divisors at a padded corner: 4 of 9 in bounds. */
    mx_pool2d_desc a = pool_desc(1, 3, 3, 3, 2, 1, 0), ae = pool_desc(1, 3, 3, 3, 2, 1, 1);
    float x[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, y[4], ye[4];
    mx_avgpool2d_forward(&a, 1, x, y);
    mx_avgpool2d_forward(&ae, 1, x, ye);
    CHECK_NEAR(y[0], 4.0 / 9.0, 1e-7);
    CHECK_NEAR(ye[0], 1.0, 1e-7);

    /* Global average pool: forward a mean, backward dy / hw everywhere (linear, so exact). */
    float gx[2 * 3 * 5], gy[6], gdy[6] = {1, 2, 3, 4, 5, 10}, gdx[30];
    for (int i = 0; i < 30; i++) gx[i] = (float)i;
    mx_global_avgpool_forward(2, 3, 5, gx, gy);
    CHECK_NEAR(gy[0], 2.0, 1e-7);
    CHECK_NEAR(gy[5], 27.0, 1e-6);
    mx_global_avgpool_backward(2, 3, 5, gdy, gdx);
    CHECK_NEAR(gdx[0], 0.2, 1e-7);
    CHECK_NEAR(gdx[29], 2.0, 1e-7);
}

/* ---- linear ----------------------------------------------------------------- */

typedef struct {
    size_t n, in, out;
    float *x, *w, *b, *y, *r;
} lin_case;

static double linear_loss(void *ctx)
{
    lin_case *l = ctx;
    mx_linear_forward(l->n, l->in, l->out, l->x, l->w, l->b, l->y);
    return dot(l->y, l->r, l->n * l->out);
}

static void test_linear(void)
{
    printf("linear backward vs finite differences\n");
    lin_case l = {.n = 5, .in = 7, .out = 4};
    l.x = normals(l.n * l.in), l.w = normals(l.out * l.in), l.b = normals(l.out);
    l.y = alloc_floats(l.n * l.out), l.r = normals(l.n * l.out);
    float *dx = alloc_floats(l.n * l.in), *dw = alloc_floats(l.out * l.in), *db = alloc_floats(l.out);
    fill_nan(dx, l.n * l.in), fill_nan(dw, l.out * l.in), fill_nan(db, l.out);
    linear_loss(&l);
    mx_linear_backward(l.n, l.in, l.out, l.x, l.w, l.r, dx, dw, db);
    CHECK(fd_check("dx", linear_loss, &l, l.x, dx, l.n * l.in, 0.5f, 0) < 1e-5);
    CHECK(fd_check("dweight", linear_loss, &l, l.w, dw, l.out * l.in, 0.5f, 0) < 1e-5);
    CHECK(fd_check("dbias", linear_loss, &l, l.b, db, l.out, 0.5f, 0) < 1e-5);
    free(l.x), free(l.w), free(l.b), free(l.y), free(l.r), free(dx), free(dw), free(db);
}

/* ---- residual add, dropout ------------------------------------------------ */

static void test_add(void)
{
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, y[3], dy[3] = {0.5f, -1, 2}, da[3], db[3];
    mx_add_forward(3, a, b, y);
    CHECK(y[0] == 11 && y[2] == 33);
    mx_add_forward(3, a, b, a);  /* in place */
    CHECK(a[1] == 22);
    mx_add_backward(3, dy, da, db);
    CHECK(da[0] == 0.5f && db[1] == -1 && db[2] == 2);
    mx_add_backward(3, dy, (float *)dy, NULL);  /* aliasing dy is a no-op */
    CHECK(dy[2] == 2);
    /* Fan-out: a tensor feeding the branch and the shortcut gets both gradients. */
    mx_grad_accumulate(3, da, db);
    CHECK(da[0] == 1.0f && da[1] == -2 && da[2] == 4);
}

typedef struct {
    size_t count;
    float p;
    mx_rng start;
    float *x, *y, *r;
    uint8_t *mask;
} drop_case;

static double dropout_loss(void *ctx)
{
    drop_case *c = ctx;
    mx_rng rng = c->start;  /* the same mask every evaluation */
    mx_dropout_forward(c->count, c->p, &rng, c->x, c->y, c->mask);
    return dot(c->y, c->r, c->count);
}

static void test_dropout(void)
{
    drop_case c = {.count = 40, .p = 0.3f};
    mx_rng_init(&c.start, 42, MX_STREAM_DROPOUT);
    c.x = normals(c.count), c.y = alloc_floats(c.count), c.r = normals(c.count);
    c.mask = malloc(c.count);
    float *dx = alloc_floats(c.count);
    dropout_loss(&c);
    mx_dropout_backward(c.count, c.p, c.mask, c.r, dx);
    printf("dropout backward vs finite differences\n");
    CHECK(fd_check("dx", dropout_loss, &c, c.x, dx, c.count, 0.5f, 0) < 1e-6);

    /* The mask: about p dropped, survivors scaled by 1 / (1 - p), a function of the stream state. */
    const size_t big = 200000;
    float *x = alloc_floats(big), *y = alloc_floats(big), *y2 = alloc_floats(big);
    uint8_t *m1 = malloc(big), *m2 = malloc(big);
    for (size_t i = 0; i < big; i++) x[i] = 2.0f;
    mx_rng a, b;
    mx_rng_init(&a, 7, MX_STREAM_DROPOUT);
    mx_rng_init(&b, 7, MX_STREAM_DROPOUT);
    mx_dropout_forward(big, 0.25f, &a, x, y, m1);
    mx_dropout_forward(big, 0.25f, &b, x, y2, m2);
    CHECK(bitwise_equal(m1, m2, big) && bitwise_equal(y, y2, big * 4));
    CHECK(a.ctr[0] == b.ctr[0] && a.used == b.used);
    size_t kept = 0;
    int values_ok = 1;
    for (size_t i = 0; i < big; i++) {
        kept += m1[i];
        values_ok &= m1[i] ? y[i] == 2.0f / 0.75f : y[i] == 0.0f;
    }
    CHECK(values_ok);
    CHECK_NEAR((double)kept / big, 0.75, 0.005);
    /* The generator moved on: the next call draws a different mask. */
    mx_dropout_forward(big, 0.25f, &a, x, y2, m2);
    CHECK(!bitwise_equal(m1, m2, big));
    /* p = 0 is the identity, p = 1 zeroes everything (gradients too). */
    mx_dropout_forward(big, 0.0f, &a, x, y, m1);
    CHECK(bitwise_equal(x, y, big * 4));
    mx_dropout_forward(16, 1.0f, &a, x, y, m1);
    mx_dropout_backward(16, 1.0f, m1, x, y2);
    int zero = 1;
    for (size_t i = 0; i < 16; i++) zero &= y[i] == 0.0f && y2[i] == 0.0f && !m1[i];
    CHECK(zero);
    free(x), free(y), free(y2), free(m1), free(m2);
    free(c.x), free(c.y), free(c.r), free(c.mask), free(dx);
}

/* ---- determinism across thread counts ------------------------------------------- */

/* The loops are serial today; this keeps any later OpenMP version honest
 * (sizes well above any sensible parallel threshold). */
static void test_thread_independence(void)
{
    const size_t n = 8, c = 16, h = 48, w = 48, hw = h * w, count = n * c * hw;
    float *x = normals(count), *dy = normals(count), *gamma = normals(c), *beta = normals(c);
    float *out[2][5];
    uint32_t *arg = malloc(count * sizeof *arg);
    mx_pool2d_desc pd = pool_desc(c, h, w, 3, 2, 1, 0);
    size_t ny = n * c * pd.out_h * pd.out_w;
    float *dyp = normals(ny);
    float *mean = alloc_floats(c), *invstd = alloc_floats(c), *rm = alloc_floats(c), *rv = alloc_floats(c);
    int max_threads = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t ? 2 : 1);
        for (int k = 0; k < 5; k++) out[t][k] = alloc_floats(count + 2 * c);
        memset(rm, 0, c * sizeof(float));
        for (size_t i = 0; i < c; i++) rv[i] = 1.0f;
        mx_batchnorm2d_forward_train(n, c, hw, x, gamma, beta, MX_BN_MOMENTUM, MX_BN_EPS, rm, rv, out[t][0], mean,
                                     invstd);
        memcpy(out[t][0] + count, rm, c * sizeof(float));
        memcpy(out[t][0] + count + c, rv, c * sizeof(float));
        mx_batchnorm2d_backward(n, c, hw, x, dy, gamma, mean, invstd, out[t][1], out[t][1] + count,
                                out[t][1] + count + c);
        mx_maxpool2d_forward(&pd, n, x, out[t][2], arg);
        mx_maxpool2d_backward(&pd, n, arg, dyp, out[t][3]);
        mx_avgpool2d_backward(&pd, n, dyp, out[t][4]);
    }
    omp_set_num_threads(max_threads);
    CHECK(bitwise_equal(out[0][0], out[1][0], (count + 2 * c) * 4));
    CHECK(bitwise_equal(out[0][1], out[1][1], (count + 2 * c) * 4));
    CHECK(bitwise_equal(out[0][2], out[1][2], ny * 4));
    CHECK(bitwise_equal(out[0][3], out[1][3], count * 4));
    CHECK(bitwise_equal(out[0][4], out[1][4], count * 4));
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 5; k++) free(out[t][k]);
    free(x), free(dy), free(gamma), free(beta), free(arg), free(dyp), free(mean), free(invstd), free(rm), free(rv);
}

int main(void)
{
    mx_rng_init(&g_rng, 2024, 0);
    test_conv_setup();
    test_conv_finite_differences();
    test_conv_im2col_vs_direct();
    test_batchnorm_finite_differences();
    test_batchnorm_statistics();
    test_relu();
    test_pool_finite_differences();
    test_maxpool_ties();
    test_maxpool_2x2_matches_rule();
    test_pool_setup_and_global();
    test_linear();
    test_add();
    test_dropout();
    test_thread_independence();
    CHECK_DONE();
}
