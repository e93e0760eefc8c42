/* The oneDNN ("cpu" backend) layers (include/mixreg/layers_dnnl.h) against the
 * reference layers of layers.h: conv2d (NCHW and blocked, f32; blocked bf16
 * loosely), batch norm (training with the running-statistics update, eval,
 * both backwards, in place), max/avg pooling, linear; on odd sizes, strides
 * 1/2/3, padding 0/1/2, batch 1 and 7; convolutions on nChw16c activations.
 * Also: executing a plan again repeats
 * bit for bit, plans survive the context's scratch growing (by a plan or the
 * caller's own reserve) and what the caller leaves there, and shape or
 * argument mismatches are MX_ERR_ARG. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/layers.h"
#include "mixreg/layers_dnnl.h"
#include "mixreg/rng.h"
#include "nn/conv_wgrad_amx.h"

#define TOL 1e-4       /* fp32: norm-wise relative error */
#define TOL_BF16 2e-2  /* bf16 inputs, fp32 accumulation */
#define TOL_WINOGRAD 1e-4  /* F(4x4, 3x3) transforms: more rounding than the direct sums */
static size_t g_winograd_ran;

static mx_rng g_rng;
static mx_dnnl_context *g_ctx;

static float *alloc_floats(size_t count)
{
    float *p = malloc((count ? count : 1) * sizeof(float));
    if (!p) abort();
    return p;
}

static float *normals(size_t count, double scale, double offset)
{
    float *p = alloc_floats(count);
    for (size_t i = 0; i < count; i++) p[i] = (float)(offset + scale * mx_rng_normal(&g_rng));
    return p;
}

static void fill_nan(float *p, size_t count)
{
    for (size_t i = 0; i < count; i++) p[i] = NAN;
}

/* max |a - b| / max |b| (NaN anywhere: infinite). */
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

static int same(const float *a, const float *b, size_t count) { return memcmp(a, b, count * sizeof(float)) == 0; }

/* Records the worst error of a group of comparisons for one summary line. */
static double g_worst;
static void expect_close(const char *what, const float *got, const float *want, size_t count, double tol)
{
    double e = rel_err(got, want, count);
    if (e > g_worst) g_worst = e;
    check_count_++;
    if (!(e <= tol)) {
        check_failures_++;
        fprintf(stderr, "  MISMATCH %s: relative error %.3g > %.1g\n", what, e, tol);
    }
}

/* ---- conv2d ------------------------------------------------------------------ */

static const struct {
    size_t cin, cout, h, w, kh, kw, sh, sw, ph, pw;
    int bias;
} conv_configs[] = {
    {2, 3, 5, 4, 3, 3, 1, 1, 1, 1, 1},    /* 3x3 same, odd/even sizes */
    {3, 2, 7, 6, 3, 3, 2, 2, 1, 1, 0},    /* stride 2 pad 1 (ResNet downsampling) */
    {2, 2, 6, 5, 2, 3, 2, 1, 0, 0, 1},    /* rectangular kernel, mixed strides, pad 0 */
    {3, 4, 5, 5, 1, 1, 2, 2, 0, 0, 0},    /* 1x1 stride 2 (projection shortcut) */
    {4, 3, 4, 3, 1, 1, 1, 1, 0, 0, 1},    /* 1x1 stride 1 */
    {1, 6, 28, 28, 5, 5, 1, 1, 2, 2, 1},  /* LeNet's first layer */
    {2, 2, 5, 7, 3, 3, 3, 2, 0, 1, 1},    /* stride 3, windows that miss the last rows */
    {2, 3, 3, 3, 3, 3, 1, 1, 2, 2, 1},    /* padding larger than half the kernel */
    {16, 16, 9, 9, 3, 3, 1, 1, 1, 1, 0},  /* ResNet block, odd plane */
    {16, 32, 15, 15, 3, 3, 2, 2, 1, 1, 0}, /* ResNet downsampling, odd plane */
    {16, 32, 15, 15, 1, 1, 2, 2, 0, 0, 0}, /* its 1x1 projection */
    {3, 17, 13, 11, 3, 3, 1, 1, 1, 1, 1},  /* channel counts off the 16-block */
    {64, 64, 9, 9, 3, 3, 1, 1, 1, 1, 0},   /* Winograd-sized (cnn_cpu_choice.c), odd plane */
    {64, 80, 8, 6, 3, 3, 1, 1, 1, 1, 1},   /* Winograd-sized, rectangular, bias */
};
#define NUM_CONV (sizeof conv_configs / sizeof conv_configs[0])

static mx_conv2d_desc conv_desc_of(size_t k)
{
    mx_conv2d_desc d = {.in_channels = conv_configs[k].cin, .out_channels = conv_configs[k].cout,
                        .in_h = conv_configs[k].h, .in_w = conv_configs[k].w, .kernel_h = conv_configs[k].kh,
                        .kernel_w = conv_configs[k].kw, .stride_h = conv_configs[k].sh,
                        .stride_w = conv_configs[k].sw, .pad_h = conv_configs[k].ph, .pad_w = conv_configs[k].pw};
    CHECK_OK(mx_conv2d_setup(&d));
    return d;
}

/* One configuration, batch, layout and precision: forward and every backward
 * combination against the im2col reference; repeat runs bit for bit. */
static void conv_case_with(size_t k, size_t n, mx_dnnl_layout layout, mx_dnnl_precision prec,
                           mx_dnnl_conv_algorithm algorithm, double tol)
{
    mx_conv2d_desc d = conv_desc_of(k);
    const int has_bias = conv_configs[k].bias;
    const size_t nx = n * d.in_channels * d.in_h * d.in_w, nw = d.out_channels * d.in_channels * d.kernel_h * d.kernel_w;
    const size_t ny = n * d.out_channels * d.out_h * d.out_w, nb = d.out_channels;
    float *x = normals(nx, 1, 0), *w = normals(nw, 0.5, 0), *b = has_bias ? normals(nb, 1, 0) : NULL;
    float *dy = normals(ny, 1, 0);
    float *ws = alloc_floats(mx_conv2d_workspace_bytes(&d) / sizeof(float));
    float *y_ref = alloc_floats(ny), *dx_ref = alloc_floats(nx), *dw_ref = alloc_floats(nw), *db_ref = alloc_floats(nb);
    mx_conv2d_forward(&d, n, x, w, b, y_ref, ws);
    mx_conv2d_backward(&d, n, x, w, dy, dx_ref, dw_ref, has_bias ? db_ref : NULL, ws);

    mx_dnnl_conv2d_options opt = {.has_bias = has_bias, .layout = layout, .precision = prec,
                                  .fwd_algorithm = algorithm, .bwd_data_algorithm = algorithm,
                                  .bwd_weights_algorithm = algorithm};
    mx_dnnl_conv2d_plan *plan = NULL;
    mx_status st = mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &opt, &plan);
    if (prec == MX_DNNL_BF16 && !mx_dnnl_bf16_available()) {
        CHECK(st != MX_OK && plan == NULL);
        printf("  bf16 conv not available on this CPU, skipped: %s\n", mx_error_message());
        goto done;
    }
    CHECK(st == MX_OK);
    if (st != MX_OK) {
        fprintf(stderr, "  %s\n", mx_error_message());
        goto done;
    }
    char what[160];
    snprintf(what, sizeof what, "conv config %zu batch %zu layout %d prec %d algorithm %d [%s | %s | %s]", k, n,
             (int)layout, (int)prec, (int)algorithm, mx_dnnl_conv2d_plan_impl(plan, 0),
             mx_dnnl_conv2d_plan_impl(plan, 1), mx_dnnl_conv2d_plan_impl(plan, 2));
    if (algorithm == MX_DNNL_CONV_WINOGRAD) {
        int wino = strstr(mx_dnnl_conv2d_plan_impl(plan, 0), "wino") != NULL;
        g_winograd_ran += wino;
        /* Where oneDNN has no Winograd kernel (no AVX-512), the plan falls back to the direct one. */
        if (!wino) CHECK(strstr(mx_dnnl_conv2d_plan_impl(plan, 0), "jit") || strstr(mx_dnnl_conv2d_plan_impl(plan, 0), "gemm"));
    }
    float *y = alloc_floats(ny), *y2 = alloc_floats(ny), *dx = alloc_floats(nx), *dw = alloc_floats(nw),
          *db = alloc_floats(nb), *dx2 = alloc_floats(nx), *dw2 = alloc_floats(nw), *db2 = alloc_floats(nb);
    fill_nan(y, ny);
    fill_nan(dx, nx);
    fill_nan(dw, nw);
    fill_nan(db, nb);
    CHECK_OK(mx_dnnl_conv2d_forward(plan, n, x, w, b, y));
    CHECK_OK(mx_dnnl_conv2d_backward(plan, n, x, w, dy, dx, dw, has_bias ? db : NULL));
    expect_close(what, y, y_ref, ny, tol);
    expect_close(what, dx, dx_ref, nx, tol);
    expect_close(what, dw, dw_ref, nw, tol);
    if (has_bias) expect_close(what, db, db_ref, nb, tol);
    /* Again: bit for bit, forward and backward. */
    for (int rep = 0; rep < 2; rep++) {
        CHECK_OK(mx_dnnl_conv2d_forward(plan, n, x, w, b, y2));
        CHECK(same(y, y2, ny));
        CHECK_OK(mx_dnnl_conv2d_backward(plan, n, x, w, dy, dx2, dw2, has_bias ? db2 : NULL));
        CHECK(same(dx, dx2, nx));
        CHECK(same(dw, dw2, nw));
        if (has_bias) CHECK(same(db, db2, nb));
    }
    /* Each gradient alone (the other outputs NULL) gives the same numbers. */
    fill_nan(dx2, nx);
    CHECK_OK(mx_dnnl_conv2d_backward(plan, n, NULL, w, dy, dx2, NULL, NULL));
    CHECK(same(dx, dx2, nx));
    fill_nan(dw2, nw);
    CHECK_OK(mx_dnnl_conv2d_backward(plan, n, x, NULL, dy, NULL, dw2, NULL));
    CHECK(same(dw, dw2, nw));
    if (has_bias) {
        fill_nan(db2, nb);
        CHECK_OK(mx_dnnl_conv2d_backward(plan, n, x, NULL, dy, NULL, NULL, db2));
        CHECK(same(db, db2, nb));
    }
    mx_dnnl_conv2d_plan_free(plan);
    free(y), free(y2), free(dx), free(dw), free(db), free(dx2), free(dw2), free(db2);
done:
    free(x), free(w), free(b), free(dy), free(ws), free(y_ref), free(dx_ref), free(dw_ref), free(db_ref);
}

static void conv_case(size_t k, size_t n, mx_dnnl_layout layout, mx_dnnl_precision prec, double tol)
{
    conv_case_with(k, n, layout, prec, MX_DNNL_CONV_DIRECT, tol);
}

static void test_conv(void)
{
    static const size_t batches[] = {1, 7};
    g_worst = 0;
    for (size_t k = 0; k < NUM_CONV; k++)
        for (size_t bi = 0; bi < 2; bi++) {
            conv_case(k, batches[bi], MX_DNNL_LAYOUT_NCHW, MX_DNNL_F32, TOL);
            conv_case(k, batches[bi], MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_F32, TOL);
        }
    printf("conv2d f32 (NCHW and blocked, %zu configs x batch 1, 7): worst relative error %.2e\n", NUM_CONV, g_worst);
    g_worst = 0;
    static const size_t bf16_configs[] = {0, 1, 8, 9, 10, 11};
    for (size_t i = 0; i < sizeof bf16_configs / sizeof bf16_configs[0]; i++) {
        conv_case(bf16_configs[i], 7, MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_BF16, TOL_BF16);
        conv_case(bf16_configs[i], 1, MX_DNNL_LAYOUT_NCHW, MX_DNNL_BF16, TOL_BF16);
    }
    printf("conv2d bf16: worst relative error %.2e\n", g_worst);
    /* Winograd (asked for every layer; oneDNN takes it where it has a kernel:
     * blocked, f32, 3x3 stride 1, 16-multiples of channels), else direct. */
    g_worst = 0;
    for (size_t k = 0; k < NUM_CONV; k++)
        for (size_t bi = 0; bi < 2; bi++)
            conv_case_with(k, batches[bi], MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_F32, MX_DNNL_CONV_WINOGRAD, TOL_WINOGRAD);
    printf("conv2d f32 Winograd where available (%zu of %zu cases ran Winograd kernels): worst relative error %.2e\n",
           g_winograd_ran, 2 * NUM_CONV, g_worst);
    if (!g_winograd_ran) printf("  no Winograd kernel on this CPU: every case ran the direct fallback\n");
}

static void test_conv_errors(void)
{
    mx_conv2d_desc d = conv_desc_of(0), bad = d;
    mx_dnnl_conv2d_plan *plan = NULL;
    bad.stride_h = 0;
    CHECK(mx_dnnl_conv2d_plan_create(g_ctx, &bad, 2, NULL, &plan) == MX_ERR_ARG && !plan);
    bad = d;
    bad.out_h++;
    CHECK(mx_dnnl_conv2d_plan_create(g_ctx, &bad, 2, NULL, &plan) == MX_ERR_ARG && !plan);
    CHECK(mx_dnnl_conv2d_plan_create(g_ctx, &d, 0, NULL, &plan) == MX_ERR_ARG && !plan);

    const size_t n = 2, nx = n * d.in_channels * d.in_h * d.in_w;
    const size_t nw = d.out_channels * d.in_channels * d.kernel_h * d.kernel_w, ny = n * d.out_channels * d.out_h * d.out_w;
    float *x = normals(nx, 1, 0), *w = normals(nw, 1, 0), *b = normals(d.out_channels, 1, 0), *y = alloc_floats(ny);
    float *dx = alloc_floats(nx), *dw = alloc_floats(nw), *db = alloc_floats(d.out_channels);
    /* Without bias (options NULL: the defaults). */
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, NULL, &plan));
    CHECK(mx_dnnl_conv2d_forward(plan, n + 1, x, w, NULL, y) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "batch size 3") != NULL);
    CHECK(mx_dnnl_conv2d_forward(plan, 1, x, w, NULL, y) == MX_ERR_ARG);
    CHECK(mx_dnnl_conv2d_forward(plan, n, x, w, b, y) == MX_ERR_ARG);
    CHECK(mx_dnnl_conv2d_forward(plan, n, NULL, w, NULL, y) == MX_ERR_ARG);
    CHECK(mx_dnnl_conv2d_backward(plan, n + 1, x, w, y, dx, dw, NULL) == MX_ERR_ARG);
    CHECK(mx_dnnl_conv2d_backward(plan, n, x, w, y, dx, dw, db) == MX_ERR_ARG);
    CHECK(mx_dnnl_conv2d_backward(plan, n, x, NULL, y, dx, NULL, NULL) == MX_ERR_ARG);
    CHECK_OK(mx_dnnl_conv2d_forward(plan, n, x, w, NULL, y));
    mx_dnnl_conv2d_plan_free(plan);
    /* With bias, inference only. */
    mx_dnnl_conv2d_options opt = {.has_bias = 1, .inference_only = 1, .layout = MX_DNNL_LAYOUT_BLOCKED};
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &opt, &plan));
    CHECK(mx_dnnl_conv2d_forward(plan, n, x, w, NULL, y) == MX_ERR_ARG);
    CHECK_OK(mx_dnnl_conv2d_forward(plan, n, x, w, b, y));
    float *y_ref = alloc_floats(ny);
    mx_conv2d_forward_direct(&d, n, x, w, b, y_ref);
    CHECK(rel_err(y, y_ref, ny) < TOL);
    CHECK(mx_dnnl_conv2d_backward(plan, n, x, w, y, dx, dw, db) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "inference-only") != NULL);
    mx_dnnl_conv2d_plan_free(plan);
    mx_dnnl_conv2d_plan_free(NULL);
    free(x), free(w), free(b), free(y), free(dx), free(dw), free(db), free(y_ref);
    printf("conv2d argument errors\n");
}

/* NCHW <-> nChw<block>c ([n, c / block, h, w, block]), or NHWC for block 0. */
static float *to_blocked(const float *x, size_t n, size_t c, size_t hw, size_t block, int back)
{
    float *y = alloc_floats(n * c * hw);
    for (size_t s = 0; s < n; s++)
        for (size_t k = 0; k < c; k++)
            for (size_t p = 0; p < hw; p++) {
                size_t plain = (s * c + k) * hw + p,
                       blocked = block ? ((s * (c / block) + k / block) * hw + p) * block + k % block : (s * hw + p) * c + k;
                if (back) y[plain] = x[blocked];
                else y[blocked] = x[plain];
            }
    return y;
}

/* The caller's activations as nChw16c and as nChw8c: the same bits as the
 * NCHW plan's, laid out blocked (whichever block the CPU's kernels use, the
 * other reorders). */
static void test_conv_user_layouts(void)
{
    mx_conv2d_desc d = {.in_channels = 16, .out_channels = 32, .in_h = 9, .in_w = 7, .kernel_h = 3, .kernel_w = 3,
                        .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
    CHECK_OK(mx_conv2d_setup(&d));
    const size_t n = 3, hw_in = d.in_h * d.in_w, hw_out = d.out_h * d.out_w;
    const size_t nx = n * d.in_channels * hw_in, ny = n * d.out_channels * hw_out;
    const size_t nw = d.out_channels * d.in_channels * d.kernel_h * d.kernel_w;
    float *x = normals(nx, 1, 0), *w = normals(nw, 1, 0), *dy = normals(ny, 1, 0);
    float *y = alloc_floats(ny), *dx = alloc_floats(nx), *dw = alloc_floats(nw);
    float *yb = alloc_floats(ny), *dxb = alloc_floats(nx), *dwb = alloc_floats(nw);
    mx_dnnl_conv2d_options plain = {.layout = MX_DNNL_LAYOUT_BLOCKED};
    mx_dnnl_conv2d_plan *a = NULL;
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &plain, &a));
    if (a) {
        CHECK_OK(mx_dnnl_conv2d_forward(a, n, x, w, NULL, y));
        CHECK_OK(mx_dnnl_conv2d_backward(a, n, x, w, dy, dx, dw, NULL));
    }
    static const size_t blocks[2] = {16, 8};
    for (int k = 0; k < 2; k++) {
        const size_t block = blocks[k];
        float *xb = to_blocked(x, n, d.in_channels, hw_in, block, 0);
        float *dyb = to_blocked(dy, n, d.out_channels, hw_out, block, 0);
        mx_dnnl_conv2d_options blocked = {.layout = MX_DNNL_LAYOUT_BLOCKED, .src_layout = mx_dnnl_act_blocked(block),
                                          .dst_layout = mx_dnnl_act_blocked(block)};
        CHECK(mx_dnnl_act_block(blocked.src_layout) == block);
        mx_dnnl_conv2d_plan *b = NULL;
        CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &blocked, &b));
        if (a && b) {
            CHECK_OK(mx_dnnl_conv2d_forward(b, n, xb, w, NULL, yb));
            CHECK_OK(mx_dnnl_conv2d_backward(b, n, xb, w, dyb, dxb, dwb, NULL));
            float *y_back = to_blocked(yb, n, d.out_channels, hw_out, block, 1);
            float *dx_back = to_blocked(dxb, n, d.in_channels, hw_in, block, 1);
            CHECK(same(y, y_back, ny) && same(dx, dx_back, nx) && same(dw, dwb, nw));
            free(y_back), free(dx_back);
        }
        mx_dnnl_conv2d_plan_free(b);
        /* A blocked layout needs a multiple of its block of channels. */
        mx_conv2d_desc odd = conv_desc_of(1);
        mx_dnnl_conv2d_plan *bad = NULL;
        CHECK(mx_dnnl_conv2d_plan_create(g_ctx, &odd, n, &blocked, &bad) == MX_ERR_ARG && bad == NULL);
        CHECK(strstr(mx_error_message(), "multiple of its block") != NULL);
        free(xb), free(dyb);
    }
    /* 24 channels: a multiple of 8, not of 16. */
    mx_conv2d_desc d24 = d;
    d24.in_channels = 24;
    CHECK_OK(mx_conv2d_setup(&d24));
    mx_dnnl_conv2d_options in8 = {.layout = MX_DNNL_LAYOUT_BLOCKED, .src_layout = MX_DNNL_ACT_NCHW8C};
    mx_dnnl_conv2d_options in16 = {.layout = MX_DNNL_LAYOUT_BLOCKED, .src_layout = MX_DNNL_ACT_NCHW16C};
    mx_dnnl_conv2d_plan *p8 = NULL, *p16 = NULL;
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d24, n, &in8, &p8));
    CHECK(mx_dnnl_conv2d_plan_create(g_ctx, &d24, n, &in16, &p16) == MX_ERR_ARG && p16 == NULL);
    mx_dnnl_conv2d_plan_free(p8);
    /* float32 NHWC on both sides: oneDNN's nhwc kernels, which sum in their
     * own order. */
    mx_dnnl_conv2d_options nhwc = {.layout = MX_DNNL_LAYOUT_BLOCKED, .src_layout = MX_DNNL_ACT_NHWC,
                                   .dst_layout = MX_DNNL_ACT_NHWC};
    mx_dnnl_conv2d_plan *pn = NULL;
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &nhwc, &pn));
    if (a && pn) {
        float *xn = to_blocked(x, n, d.in_channels, hw_in, 0, 0), *dyn = to_blocked(dy, n, d.out_channels, hw_out, 0, 0);
        CHECK_OK(mx_dnnl_conv2d_forward(pn, n, xn, w, NULL, yb));
        CHECK_OK(mx_dnnl_conv2d_backward(pn, n, xn, w, dyn, dxb, dwb, NULL));
        float *y_back = to_blocked(yb, n, d.out_channels, hw_out, 0, 1);
        float *dx_back = to_blocked(dxb, n, d.in_channels, hw_in, 0, 1);
        expect_close("conv2d on NHWC: y", y_back, y, ny, 1e-5);
        expect_close("conv2d on NHWC: dx", dx_back, dx, nx, 1e-5);
        expect_close("conv2d on NHWC: dw", dwb, dw, nw, 1e-5);
        free(xn), free(dyn), free(y_back), free(dx_back);
    }
    mx_dnnl_conv2d_plan_free(pn);
    mx_dnnl_conv2d_plan_free(a);
    /* The kernels' own block, as oneDNN picks it. */
    CHECK(mx_dnnl_channel_block() == 8 || mx_dnnl_channel_block() == 16);
    free(x), free(w), free(dy), free(y), free(dx), free(dw), free(yb), free(dxb), free(dwb);
    printf("conv2d on nChw16c and nChw8c activations: the NCHW plan's bits, on NHWC within 1e-5 (this CPU's kernels "
           "block by %zu)\n",
           mx_dnnl_channel_block());
}

/* A plan made when the context's scratch was small still runs after a larger
 * plan has grown it (the scratch is looked up at each call). */
/* A bfloat16 plan on nChw16c activations takes dy already in bfloat16
 * and x as its forward kept it (mx_dnnl_conv2d_backward_bf16): dy rounded to
 * nearest even as its own reorder rounds, the gradients are the float32
 * path's bits. */
static uint16_t round_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* The bfloat16 tests' convolution: 32 -> 32 channels, 3x3, pad 1, batch 3,
 * on in_h x 7 with stride stride_h down, a bfloat16 plan on `layout`. */
typedef struct {
    mx_conv2d_desc d;
    size_t n, nx, nw, ny;
    mx_dnnl_conv2d_options opt;
} bf16_case;

static bf16_case bf16_case_of(mx_dnnl_act_layout layout, size_t in_h, size_t stride_h)
{
    bf16_case c = {.d = {.in_channels = 32, .out_channels = 32, .in_h = in_h, .in_w = 7, .kernel_h = 3, .kernel_w = 3,
                         .stride_h = stride_h, .stride_w = 1, .pad_h = 1, .pad_w = 1},
                   .n = 3,
                   .opt = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16, .src_layout = layout,
                           .dst_layout = layout}};
    CHECK_OK(mx_conv2d_setup(&c.d));
    c.nx = c.n * c.d.in_channels * c.d.in_h * c.d.in_w, c.nw = c.d.out_channels * c.d.in_channels * 9;
    c.ny = c.n * c.d.out_channels * c.d.out_h * c.d.out_w;
    return c;
}

static void conv_bf16_dy_in(mx_dnnl_act_layout layout)
{
    bf16_case c = bf16_case_of(layout, 9, 1);
    const mx_conv2d_desc d = c.d;
    const size_t n = c.n, nx = c.nx, nw = c.nw, ny = c.ny;
    mx_dnnl_conv2d_options opt = c.opt;
    mx_dnnl_conv2d_plan *plan = NULL;
    mx_status st = mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &opt, &plan);
    if (!mx_dnnl_bf16_available()) {
        CHECK(st != MX_OK);
        printf("  bf16 conv not available on this CPU, skipped: %s\n", mx_error_message());
        CHECK(plan == NULL);
        return;
    }
    CHECK_OK(st);
    if (st != MX_OK) return;
    float *x = normals(nx, 1, 0), *w = normals(nw, 0.3, 0), *dy = normals(ny, 1, 0);
    float *dx1 = alloc_floats(nx), *dw1 = alloc_floats(nw), *dx2 = alloc_floats(nx), *dw2 = alloc_floats(nw);
    uint16_t *dy16 = malloc(ny * sizeof *dy16);
    for (size_t i = 0; i < ny; i++) dy16[i] = round_bf16(dy[i]);
    if (!mx_dnnl_conv2d_takes_bf16_dy(plan)) {
        printf("  %s: this oneDNN reads dy in another layout: the bfloat16 dy path is off\n",
               layout == MX_DNNL_ACT_NHWC ? "NHWC" : "nChw16c");
        /* AMX kernels work in NHWC: there it must be on (what the bfloat16
         * training's layout is chosen by). */
        CHECK(!(layout == MX_DNNL_ACT_NHWC && mx_dnnl_bf16_prefers_nhwc()));
        CHECK(mx_dnnl_conv2d_backward_bf16(plan, n, x, NULL, w, NULL, dy16, dx2, dw2, NULL) == MX_ERR_ARG);
    } else {
        float *y1 = alloc_floats(ny), *y2 = alloc_floats(ny);
        CHECK_OK(mx_dnnl_conv2d_forward(plan, n, x, w, NULL, y1));
        CHECK_OK(mx_dnnl_conv2d_backward(plan, n, x, w, dy, dx1, dw1, NULL));
        CHECK_OK(mx_dnnl_conv2d_backward_bf16(plan, n, x, NULL, w, NULL, dy16, dx2, dw2, NULL));
        /* On NHWC with AMX the input gradient from dy in bfloat16 is a
         * forward convolution (oneDNN's brgconv kernels): the same products,
         * summed in another order. */
        const int dx_forward = strstr(mx_dnnl_conv2d_plan_impl(plan, 1), "brgconv") != NULL;
        CHECK(!dx_forward || layout == MX_DNNL_ACT_NHWC);
        if (dx_forward) expect_close("conv2d bf16: the input gradient as a forward convolution", dx2, dx1, nx, 1e-5);
        else CHECK(same(dx1, dx2, nx));
        CHECK(same(dw1, dw2, nw));
        CHECK(mx_dnnl_conv2d_backward_bf16(plan, n, x, NULL, w, dy, dy16, dx2, dw2, NULL) == MX_ERR_ARG);
        const size_t kept = mx_dnnl_conv2d_kept_x_bytes(plan);
        CHECK(kept == nx * sizeof(uint16_t));
        if (kept) {
            void *xk = malloc(kept);
            CHECK_OK(mx_dnnl_conv2d_forward_keep_x(plan, n, x, w, NULL, y2, xk));
            CHECK(same(y1, y2, ny));
            memset(dw2, 0, nw * sizeof *dw2);
            CHECK_OK(mx_dnnl_conv2d_backward_bf16(plan, n, NULL, xk, w, dy, NULL, NULL, dw2, NULL));
            CHECK(same(dw1, dw2, nw));
            /* Both in bfloat16: on NHWC with AMX, mixreg's own kernel (the
             * same products, summed in another order); oneDNN's when asked. */
            for (size_t i = 0; i < nw; i++) dw2[i] = NAN;
            CHECK_OK(mx_dnnl_conv2d_backward_bf16(plan, n, NULL, xk, w, NULL, dy16, NULL, dw2, NULL));
            const int own = strcmp(mx_dnnl_conv2d_plan_impl(plan, 2), "mixreg:amx_bf16") == 0;
            CHECK(own == (layout == MX_DNNL_ACT_NHWC && mx_wgrad_amx_available()));
            if (own) expect_close("conv2d bf16: the AMX weights' gradient", dw2, dw1, nw, 1e-5);
            else CHECK(same(dw1, dw2, nw));
            mx_dnnl_conv2d_options theirs = opt;
            theirs.onednn_backward = 1;
            mx_dnnl_conv2d_plan *other = NULL;
            CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &theirs, &other));
            if (other) {
                CHECK(strcmp(mx_dnnl_conv2d_plan_impl(other, 2), "mixreg:amx_bf16") != 0);
                CHECK_OK(mx_dnnl_conv2d_forward_keep_x(other, n, x, w, NULL, y2, xk));
                CHECK_OK(mx_dnnl_conv2d_backward_bf16(other, n, NULL, xk, w, NULL, dy16, dx2, dw2, NULL));
                CHECK(same(dw1, dw2, nw));
                CHECK(same(dx1, dx2, nx));
                CHECK(!strstr(mx_dnnl_conv2d_plan_impl(other, 1), "brgconv"));
                mx_dnnl_conv2d_plan_free(other);
            }
            /* x in the plan's own room, written there before each call (as
             * a caller that keeps no copy does): the kept copy's bits, the
             * room not overwritten by the input gradient before the
             * weights' gradient reads it. */
            void *room = mx_dnnl_conv2d_x_room(plan);
            CHECK(room != NULL);
            if (room) {
                float *dx3 = alloc_floats(nx), *dw3 = alloc_floats(nw);
                CHECK_OK(mx_dnnl_conv2d_backward_bf16(plan, n, NULL, xk, w, NULL, dy16, dx2, dw2, NULL));
                memcpy(room, xk, kept);
                CHECK_OK(mx_dnnl_conv2d_forward_bf16_x(plan, n, room, w, NULL, y2));
                CHECK(same(y1, y2, ny));
                memcpy(room, xk, kept);
                CHECK_OK(mx_dnnl_conv2d_backward_bf16(plan, n, NULL, room, w, NULL, dy16, dx3, dw3, NULL));
                CHECK(same(dx2, dx3, nx) && same(dw2, dw3, nw));
                free(dx3), free(dw3);
            }
            free(xk);
        }
        CHECK(mx_dnnl_conv2d_takes_bf16_x(plan));
        printf("conv2d bf16 on %s with dy given in bfloat16 and x kept by the forward: the float32 path's bits%s%s\n",
               layout == MX_DNNL_ACT_NHWC ? "NHWC" : "nChw16c",
               dx_forward ? "; the input gradient as a forward convolution within 1e-5" : "",
               strcmp(mx_dnnl_conv2d_plan_impl(plan, 2), "mixreg:amx_bf16") == 0
                   ? "; with both, the weights' gradient on AMX within 1e-5"
                   : "");
        free(y1), free(y2);
    }
    mx_dnnl_conv2d_plan_free(plan);
    /* A float32 plan takes none. */
    opt.precision = MX_DNNL_F32;
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &opt, &plan));
    CHECK(!mx_dnnl_conv2d_takes_bf16_dy(plan));
    CHECK(mx_dnnl_conv2d_backward_bf16(plan, n, x, NULL, w, NULL, dy16, dx2, dw2, NULL) == MX_ERR_ARG);
    CHECK(mx_dnnl_conv2d_kept_x_bytes(plan) == 0);
    CHECK(mx_dnnl_conv2d_x_room(plan) == NULL);
    mx_dnnl_conv2d_plan_free(plan);
    free(x), free(w), free(dy), free(dx1), free(dw1), free(dx2), free(dw2), free(dy16);
}

/* The same bfloat16 plan with y_bf16 and dx_bf16 writes y and dx in
 * bfloat16: the float32-output plan's values rounded to nearest even, bit for
 * bit; the weights' gradient is unchanged. Plans that cannot do it say so. */
static size_t rounded_misses(const float *f32, const uint16_t *b16, size_t count)
{
    size_t misses = 0;
    for (size_t i = 0; i < count; i++) misses += b16[i] != round_bf16(f32[i]);
    return misses;
}

static void conv_bf16_activations_in(mx_dnnl_act_layout layout)
{
    bf16_case c = bf16_case_of(layout, 10, 2);
    const mx_conv2d_desc d = c.d;
    const size_t n = c.n, nx = c.nx, nw = c.nw, ny = c.ny;
    const mx_dnnl_conv2d_options opt = c.opt;
    mx_dnnl_conv2d_options half = opt;
    half.y_bf16 = half.dx_bf16 = 1;
    mx_dnnl_conv2d_plan *full = NULL, *plan = NULL;
    if (!mx_dnnl_bf16_available()) {
        CHECK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &half, &plan) != MX_OK && plan == NULL);
        return;
    }
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &opt, &full));
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &half, &plan));
    if (!full || !plan) {
        mx_dnnl_conv2d_plan_free(full), mx_dnnl_conv2d_plan_free(plan);
        return;
    }
    float *x = normals(nx, 1, 0), *w = normals(nw, 0.3, 0), *dy = normals(ny, 1, 0), *b = normals(32, 1, 0);
    float *y = alloc_floats(ny), *dx = alloc_floats(nx), *dw = alloc_floats(nw), *dw2 = alloc_floats(nw);
    float *y16 = alloc_floats(ny), *dx16 = alloc_floats(nx); /* bfloat16 in their first halves */
    CHECK_OK(mx_dnnl_conv2d_forward(full, n, x, w, NULL, y));
    CHECK_OK(mx_dnnl_conv2d_backward(full, n, x, w, dy, dx, dw, NULL));
    CHECK_OK(mx_dnnl_conv2d_forward(plan, n, x, w, NULL, y16));
    CHECK_OK(mx_dnnl_conv2d_backward(plan, n, x, w, dy, dx16, dw2, NULL));
    const size_t y_miss = rounded_misses(y, (const uint16_t *)(const void *)y16, ny);
    const size_t dx_miss = rounded_misses(dx, (const uint16_t *)(const void *)dx16, nx);
    CHECK(y_miss == 0 && dx_miss == 0);
    CHECK(same(dw, dw2, nw));
    printf("conv2d bf16 on %s writing y and dx in bfloat16: the float32 outputs rounded (%zu of %zu, %zu of %zu "
           "differ), the weights' gradient's bits\n", layout == MX_DNNL_ACT_NHWC ? "NHWC" : "nChw16c", y_miss, ny,
           dx_miss, nx);
    mx_dnnl_conv2d_plan_free(full), mx_dnnl_conv2d_plan_free(plan);
    /* Not for float32 plans, inference-only ones, NCHW activations or the add post-op. */
    mx_dnnl_conv2d_options bad[4] = {half, half, half, half};
    bad[0].precision = MX_DNNL_F32;
    bad[1].inference_only = 1;
    bad[2].src_layout = bad[2].dst_layout = MX_DNNL_ACT_NCHW;
    bad[3].inference_only = 1, bad[3].post_add = 1;
    for (size_t k = 0; k < 4; k++) {
        plan = NULL;
        CHECK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &bad[k], &plan) == MX_ERR_ARG && plan == NULL);
        CHECK(strstr(mx_error_message(), "bfloat16 y or dx") != NULL || k == 3);
    }
    free(x), free(w), free(dy), free(b), free(y), free(dx), free(dw), free(dw2), free(y16), free(dx16);
}

/* Stride-2 convolutions, bfloat16 on NHWC, with dy given in bfloat16: on
 * AMX their input gradient comes from forward convolutions (a 1x1
 * projection, resnet50's: one on the output's grid, placed at even pixels,
 * zeros between; a 3x3 one: one per parity of dx's rows and columns),
 * within 1e-5 of oneDNN's backward-data primitive (onednn_backward) in
 * float32 dx and 1e-2 in bfloat16 (a rounding apart); odd sides for the
 * 1x1, so its last row and column are read. */
static void conv_bf16_stride2(size_t kernel, size_t H, size_t W, int dx_bf16)
{
    mx_conv2d_desc d = {.in_channels = 32, .out_channels = 64, .in_h = H, .in_w = W, .kernel_h = kernel,
                        .kernel_w = kernel, .stride_h = 2, .stride_w = 2, .pad_h = kernel / 2, .pad_w = kernel / 2};
    CHECK_OK(mx_conv2d_setup(&d));
    const size_t n = 3, nx = n * 32 * H * W, ny = n * 64 * d.out_h * d.out_w, nw = 64 * 32 * kernel * kernel;
    mx_dnnl_conv2d_options opt = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16,
                                  .src_layout = MX_DNNL_ACT_NHWC, .dst_layout = MX_DNNL_ACT_NHWC, .dx_bf16 = dx_bf16};
    mx_dnnl_conv2d_options theirs = opt;
    theirs.onednn_backward = 1;
    mx_dnnl_conv2d_plan *plan = NULL, *other = NULL;
    if (!mx_dnnl_bf16_available()) return;
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &opt, &plan));
    CHECK_OK(mx_dnnl_conv2d_plan_create(g_ctx, &d, n, &theirs, &other));
    if (!plan || !other || !mx_dnnl_conv2d_takes_bf16_dy(plan)) {
        mx_dnnl_conv2d_plan_free(plan), mx_dnnl_conv2d_plan_free(other);
        return;
    }
    float *w = normals(nw, 0.3, 0), *dy = normals(ny, 1, 0);
    float *dx1 = alloc_floats(nx), *dx2 = alloc_floats(nx);
    uint16_t *dy16 = malloc(ny * sizeof *dy16);
    for (size_t i = 0; i < ny; i++) dy16[i] = round_bf16(dy[i]);
    for (size_t i = 0; i < nx; i++) dx1[i] = dx2[i] = NAN;
    CHECK_OK(mx_dnnl_conv2d_backward_bf16(other, n, NULL, NULL, w, NULL, dy16, dx1, NULL, NULL));
    CHECK_OK(mx_dnnl_conv2d_backward_bf16(plan, n, NULL, NULL, w, NULL, dy16, dx2, NULL, NULL));
    const int forward = strstr(mx_dnnl_conv2d_plan_impl(plan, 1), "brgconv") != NULL;
    CHECK(!strstr(mx_dnnl_conv2d_plan_impl(other, 1), "brgconv"));
    if (dx_bf16) { /* bfloat16 in the buffers' first halves: widen both */
        for (size_t i = nx; i-- > 0;) {
            uint32_t u1 = (uint32_t)((uint16_t *)(void *)dx1)[i] << 16, u2 = (uint32_t)((uint16_t *)(void *)dx2)[i] << 16;
            memcpy(&dx1[i], &u1, sizeof u1), memcpy(&dx2[i], &u2, sizeof u2);
        }
    }
    expect_close("conv2d bf16 stride 2: the input gradient", dx2, dx1, nx, dx_bf16 ? 1e-2 : 1e-5);
    if (kernel == 1) { /* the pixels a 1x1 stride-2 convolution skips get zeros */
        size_t zeros = 0, skipped = 0;
        for (size_t b = 0; b < n; b++)
            for (size_t h = 0; h < H; h++)
                for (size_t x = 0; x < W; x++)
                    if (h % 2 || x % 2)
                        for (size_t c = 0; c < 32; c++) skipped++, zeros += dx2[((b * H + h) * W + x) * 32 + c] == 0.0f;
        CHECK(zeros == skipped);
    }
    printf("conv2d bf16 %zux%zu stride 2, dx in %s: %s, within %s of oneDNN's backward-data primitive\n", kernel,
           kernel, dx_bf16 ? "bfloat16" : "float32", forward ? "from forward convolutions" : "oneDNN's backward data",
           dx_bf16 ? "1e-2" : "1e-5");
    free(w), free(dy), free(dx1), free(dx2), free(dy16);
    mx_dnnl_conv2d_plan_free(plan), mx_dnnl_conv2d_plan_free(other);
}

static void test_conv_bf16_dy(void)
{
    conv_bf16_stride2(1, 9, 7, 0);
    conv_bf16_stride2(1, 9, 7, 1);
    conv_bf16_stride2(3, 10, 6, 0);
    conv_bf16_stride2(3, 10, 6, 1);
    conv_bf16_dy_in(MX_DNNL_ACT_NCHW16C);
    conv_bf16_dy_in(MX_DNNL_ACT_NHWC);
    conv_bf16_activations_in(MX_DNNL_ACT_NCHW16C);
    conv_bf16_activations_in(MX_DNNL_ACT_NHWC);
}

static void test_scratch_growth(void)
{
    mx_conv2d_desc d = conv_desc_of(1);
    const size_t n = 3, nx = n * d.in_channels * d.in_h * d.in_w;
    const size_t nw = d.out_channels * d.in_channels * d.kernel_h * d.kernel_w, ny = n * d.out_channels * d.out_h * d.out_w;
    float *x = normals(nx, 1, 0), *w = normals(nw, 1, 0), *y = alloc_floats(ny), *y2 = alloc_floats(ny);
    mx_dnnl_context *ctx = NULL;
    CHECK_OK(mx_dnnl_context_create(&ctx));
    mx_dnnl_conv2d_options opt = {.layout = MX_DNNL_LAYOUT_BLOCKED};
    mx_dnnl_conv2d_plan *small = NULL, *big = NULL;
    CHECK_OK(mx_dnnl_conv2d_plan_create(ctx, &d, n, &opt, &small));
    size_t before = mx_dnnl_context_scratch_bytes(ctx);
    CHECK_OK(mx_dnnl_conv2d_forward(small, n, x, w, NULL, y));
    mx_conv2d_desc bigd = conv_desc_of(9);
    CHECK_OK(mx_dnnl_conv2d_plan_create(ctx, &bigd, 7, &opt, &big));
    CHECK(mx_dnnl_context_scratch_bytes(ctx) > before);
    CHECK_OK(mx_dnnl_conv2d_forward(small, n, x, w, NULL, y2));
    CHECK(same(y, y2, ny));
    printf("scratch: %zu bytes for the small plan, %zu after the big one\n", before, mx_dnnl_context_scratch_bytes(ctx));
    /* The caller's own kernels' share (mx_dnnl_context_reserve): no smaller
     * than asked, 64-byte aligned, never shrunk, and the plans still run
     * alike from the moved scratch, over whatever the caller left there. */
    const size_t grown = mx_dnnl_context_scratch_bytes(ctx);
    CHECK_OK(mx_dnnl_context_reserve(ctx, grown / 2));
    CHECK(mx_dnnl_context_scratch_bytes(ctx) == grown);
    CHECK_OK(mx_dnnl_context_reserve(ctx, 3 * grown + 5));
    CHECK(mx_dnnl_context_scratch_bytes(ctx) >= 3 * grown + 5);
    CHECK((uintptr_t)mx_dnnl_context_scratch(ctx) % 64 == 0);
    memset(mx_dnnl_context_scratch(ctx), 0xff, mx_dnnl_context_scratch_bytes(ctx)); /* NaNs as floats */
    CHECK_OK(mx_dnnl_conv2d_forward(small, n, x, w, NULL, y2));
    CHECK(same(y, y2, ny));
    mx_dnnl_conv2d_plan_free(small);
    mx_dnnl_conv2d_plan_free(big);
    mx_dnnl_context_free(ctx);
    free(x), free(w), free(y), free(y2);
}

/* ---- linear ------------------------------------------------------------------------ */

static void test_linear(void)
{
    static const size_t shapes[][3] = {{1, 5, 3}, {7, 33, 10}, {7, 400, 120}, {1, 84, 10}, {7, 1, 1}};
    g_worst = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int has_bias = 1; has_bias >= 0; has_bias--) {
            const size_t n = shapes[i][0], in = shapes[i][1], out = shapes[i][2];
            float *x = normals(n * in, 1, 0), *w = normals(out * in, 0.3, 0), *b = has_bias ? normals(out, 1, 0) : NULL;
            float *dy = normals(n * out, 1, 0), *y_ref = alloc_floats(n * out), *y = alloc_floats(n * out);
            float *dx_ref = alloc_floats(n * in), *dw_ref = alloc_floats(out * in), *db_ref = alloc_floats(out);
            float *dx = alloc_floats(n * in), *dw = alloc_floats(out * in), *db = alloc_floats(out);
            float *y2 = alloc_floats(n * out), *dw2 = alloc_floats(out * in), *db2 = alloc_floats(out);
            mx_linear_forward(n, in, out, x, w, b, y_ref);
            mx_linear_backward(n, in, out, x, w, dy, dx_ref, dw_ref, has_bias ? db_ref : NULL);
            mx_dnnl_linear_plan *plan = NULL;
            CHECK_OK(mx_dnnl_linear_plan_create(g_ctx, n, in, out, has_bias ? MX_DNNL_LINEAR_BIAS : 0u, &plan));
            if (plan) {
                char what[64];
                snprintf(what, sizeof what, "linear %zu: %zu -> %zu bias %d", n, in, out, has_bias);
                fill_nan(dx, n * in);
                fill_nan(dw, out * in);
                fill_nan(db, out);
                CHECK_OK(mx_dnnl_linear_forward(plan, n, x, w, b, y));
                CHECK_OK(mx_dnnl_linear_backward(plan, n, x, w, dy, dx, dw, has_bias ? db : NULL));
                expect_close(what, y, y_ref, n * out, TOL);
                expect_close(what, dx, dx_ref, n * in, TOL);
                expect_close(what, dw, dw_ref, out * in, TOL);
                if (has_bias) expect_close(what, db, db_ref, out, TOL);
                CHECK_OK(mx_dnnl_linear_forward(plan, n, x, w, b, y2));
                CHECK(same(y, y2, n * out));
                CHECK_OK(mx_dnnl_linear_backward(plan, n, x, w, dy, NULL, dw2, NULL));
                CHECK(same(dw, dw2, out * in));
                if (has_bias) {
                    CHECK_OK(mx_dnnl_linear_backward(plan, n, x, w, dy, NULL, NULL, db2));
                    CHECK(same(db, db2, out));
                }
                CHECK(mx_dnnl_linear_forward(plan, n + 1, x, w, b, y) == MX_ERR_ARG);
                CHECK(mx_dnnl_linear_forward(plan, n, x, w, has_bias ? NULL : w, y) == MX_ERR_ARG);
                CHECK(mx_dnnl_linear_backward(plan, n + 1, x, w, dy, dx, dw, NULL) == MX_ERR_ARG);
                if (!has_bias) CHECK(mx_dnnl_linear_backward(plan, n, x, w, dy, dx, dw, db) == MX_ERR_ARG);
                mx_dnnl_linear_plan_free(plan);
                plan = NULL;
            }
            /* The ReLU post-op: exactly the plain product's output clamped at 0. */
            CHECK_OK(mx_dnnl_linear_plan_create(g_ctx, n, in, out,
                                                MX_DNNL_LINEAR_INFERENCE | MX_DNNL_LINEAR_RELU |
                                                    (has_bias ? MX_DNNL_LINEAR_BIAS : 0u),
                                                &plan));
            if (plan) {
                CHECK_OK(mx_dnnl_linear_forward(plan, n, x, w, b, y2));
                size_t clamped = 0;
                for (size_t j = 0; j < n * out; j++) {
                    CHECK(y2[j] == (y[j] > 0.0f ? y[j] : 0.0f));
                    clamped += y[j] < 0.0f;
                }
                CHECK(n * out < 8 || clamped > 0);
                mx_dnnl_linear_plan_free(plan);
            }
            free(x), free(w), free(b), free(dy), free(y_ref), free(y), free(dx_ref), free(dw_ref), free(db_ref);
            free(dx), free(dw), free(db), free(y2), free(dw2), free(db2);
        }
    mx_dnnl_linear_plan *plan = NULL;
    CHECK(mx_dnnl_linear_plan_create(g_ctx, 4, 0, 3, MX_DNNL_LINEAR_BIAS, &plan) == MX_ERR_ARG && !plan);
    CHECK_OK(mx_dnnl_linear_plan_create(g_ctx, 4, 6, 3, MX_DNNL_LINEAR_BIAS | MX_DNNL_LINEAR_INFERENCE, &plan));
    float buf[64] = {0};
    CHECK(mx_dnnl_linear_backward(plan, 4, buf, buf, buf, buf, NULL, NULL) == MX_ERR_ARG);
    mx_dnnl_linear_plan_free(plan);
    printf("linear: worst relative error %.2e\n", g_worst);
}

int main(void)
{
    mx_rng_init(&g_rng, 20240611, 0);
    CHECK_OK(mx_dnnl_context_create(&g_ctx));
    if (!g_ctx) CHECK_DONE();
    test_conv();
    test_conv_errors();
    test_scratch_growth();
    test_conv_user_layouts();
    test_conv_bf16_dy();
    test_linear();
    mx_dnnl_context_free(g_ctx);
    CHECK_DONE();
}
