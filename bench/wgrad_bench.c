/* Weight-gradient micro-benchmark: a bfloat16 3x3 or 1x1 convolution's weights'
 * gradient from bfloat16 NHWC x and dy, as the training holds them with
 * AMX, by oneDNN's backward-weights primitive (a plan as the cpu backend
 * makes it: blocked, NHWC on both sides, x kept and dy given in bfloat16)
 * and by mixreg's own (src/nn/conv_wgrad_amx.c); the forward for scale (from
 * float32 x, its reorder to bfloat16 included).
 * Prints per layer the best and median milliseconds of each, GFLOP/s, and
 * the largest difference between the two results relative to the largest
 * weight gradient.
 *   wgrad_bench [THREADS=2] [BATCH=128] [REPS=20] [SHAPES=cifar] [INDEX: that shape alone]
 * SHAPES: cifar (resnet20's 16@32, 32@16, 64@8 and its two stride-2
 * layers), resnet50 (its 3x3 layers at 224, batch 32 typical) or
 * resnet50-1x1 (its 1x1 layers). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixreg/layers_dnnl.h"
#include "nn/conv_wgrad_amx.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { size_t c, k, hw, stride, kernel; } shape;

#define CHECKED(expr) do { if ((expr) != MX_OK) { fprintf(stderr, "%s: %s\n", #expr, mx_error_message()); exit(1); } } while (0)

static void run(mx_dnnl_context *ctx, shape s, size_t n, int reps, int threads)
{
    const size_t kernel = s.kernel;
    mx_conv2d_desc d = {.in_channels = s.c, .out_channels = s.k, .in_h = s.hw, .in_w = s.hw, .kernel_h = kernel,
                        .kernel_w = kernel, .stride_h = s.stride, .stride_w = s.stride, .pad_h = kernel / 2,
                        .pad_w = kernel / 2};
    CHECKED(mx_conv2d_setup(&d));
    mx_dnnl_conv2d_options opt = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16,
                                  .src_layout = MX_DNNL_ACT_NHWC, .dst_layout = MX_DNNL_ACT_NHWC,
                                  .onednn_backward = 1};
    mx_dnnl_conv2d_plan *p;
    CHECKED(mx_dnnl_conv2d_plan_create(ctx, &d, n, &opt, &p));
    const size_t xn = n * s.c * s.hw * s.hw, yn = n * s.k * d.out_h * d.out_w, wn = s.k * s.c * kernel * kernel;
    float *x = malloc(xn * 4), *w = malloc(wn * 4), *y = malloc(yn * 4);
    float *dw_dnnl = malloc(wn * 4), *dw_amx = malloc(wn * 4);
    uint16_t *dy = malloc(yn * 2), *xk = aligned_alloc(64, (mx_dnnl_conv2d_kept_x_bytes(p) + 63) / 64 * 64);
    unsigned st = 1;
    for (size_t i = 0; i < xn; i++) st = st * 1664525u + 1013904223u, x[i] = (float)(st >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < wn; i++) st = st * 1664525u + 1013904223u, w[i] = (float)(st >> 8) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < yn; i++) st = st * 1664525u + 1013904223u, dy[i] = (uint16_t)(0x3c00u + (st >> 24));
    if (!mx_dnnl_conv2d_kept_x_bytes(p) || !mx_dnnl_conv2d_takes_bf16_dy(p)) {
        fprintf(stderr, "the plan keeps no bfloat16 x or takes no bfloat16 dy\n");
        exit(1);
    }
    const size_t scratch_bytes = mx_wgrad_amx_scratch_bytes(&d, n, threads);
    void *scratch = aligned_alloc(64, (scratch_bytes + 63) / 64 * 64);
    double *t[3];
    for (int v = 0; v < 3; v++) t[v] = malloc(sizeof(double) * (size_t)reps);
    for (int r = -3; r < reps; r++) {
        double t0 = now_s();
        CHECKED(mx_dnnl_conv2d_forward_keep_x(p, n, x, w, NULL, y, xk));
        double t1 = now_s();
        CHECKED(mx_dnnl_conv2d_backward_bf16(p, n, NULL, xk, w, NULL, dy, NULL, dw_dnnl, NULL));
        double t2 = now_s();
        CHECKED(mx_wgrad_amx(&d, n, xk, dy, dw_amx, scratch, threads));
        double t3 = now_s();
        if (r >= 0) t[0][r] = t1 - t0, t[1][r] = t2 - t1, t[2][r] = t3 - t2;
    }
    double worst = 0, peak = 0;
    for (size_t i = 0; i < wn; i++) {
        worst = fmax(worst, fabs((double)dw_amx[i] - dw_dnnl[i]));
        peak = fmax(peak, fabs((double)dw_dnnl[i]));
    }
    const double gflop = 2.0 * (double)n * s.k * d.out_h * d.out_w * s.c * kernel * kernel * 1e-9;
    const char *names[3] = {"forward (oneDNN)", "weights (oneDNN)", "weights (mixreg AMX)"};
    for (int v = 0; v < 3; v++) {
        qsort(t[v], (size_t)reps, sizeof(double), cmp_double);
        printf("%4zu -> %4zu @%3zu %zux%zu s%zu  %-22s best %7.3f ms  median %7.3f ms  %7.1f GFLOP/s\n", s.c, s.k, s.hw,
               kernel, kernel, s.stride, names[v], t[v][0] * 1e3, t[v][reps / 2] * 1e3, gflop / t[v][reps / 2]);
    }
    printf("%4zu -> %4zu @%3zu %zux%zu s%zu  oneDNN: %s; largest difference %.2g of the largest gradient\n", s.c, s.k,
           s.hw, kernel, kernel, s.stride, mx_dnnl_conv2d_plan_impl(p, 2), worst / (peak > 0 ? peak : 1));
    for (int v = 0; v < 3; v++) free(t[v]);
    free(x), free(w), free(y), free(dw_dnnl), free(dw_amx), free(dy), free(xk), free(scratch);
    mx_dnnl_conv2d_plan_free(p);
}

int main(int argc, char **argv)
{
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const size_t n = argc > 2 ? (size_t)atol(argv[2]) : 128;
    const int reps = argc > 3 ? atoi(argv[3]) : 20;
    const char *which = argc > 4 ? argv[4] : "cifar";
    if (threads < 1 || !n || reps < 1) {
        fprintf(stderr, "usage: wgrad_bench [THREADS] [BATCH] [REPS] [cifar|resnet50|resnet50-1x1] [INDEX]\n");
        return 2;
    }
    if (!mx_wgrad_amx_available()) {
        fprintf(stderr, "wgrad_bench: no AMX in this build or on this CPU\n");
        return 1;
    }
    omp_set_num_threads(threads);
    static const shape cifar[] = {{16, 16, 32, 1, 3}, {32, 32, 16, 1, 3}, {64, 64, 8, 1, 3}, {16, 32, 32, 2, 3}, {32, 64, 16, 2, 3}};
    static const shape r50[] = {{64, 64, 56, 1, 3}, {128, 128, 28, 1, 3}, {256, 256, 14, 1, 3}, {512, 512, 7, 1, 3}};
    static const shape r50_1x1[] = {{64, 256, 56, 1, 1},   {256, 64, 56, 1, 1},    {128, 512, 28, 1, 1},
                                    {512, 128, 28, 1, 1},  {256, 1024, 14, 1, 1},  {1024, 256, 14, 1, 1},
                                    {512, 2048, 7, 1, 1},  {2048, 512, 7, 1, 1},   {256, 512, 56, 2, 1},
                                    {1024, 2048, 14, 2, 1}};
    const int big = strcmp(which, "resnet50") == 0, pointwise = strcmp(which, "resnet50-1x1") == 0;
    const shape *shapes = big ? r50 : pointwise ? r50_1x1 : cifar;
    const size_t count = big ? sizeof r50 / sizeof r50[0]
                         : pointwise ? sizeof r50_1x1 / sizeof r50_1x1[0]
                                     : sizeof cifar / sizeof cifar[0];
    mx_dnnl_context *ctx;
    CHECKED(mx_dnnl_context_create(&ctx));
    const long only = argc > 5 ? atol(argv[5]) : -1; /* one shape's index, else all */
    for (size_t i = 0; i < count; i++)
        if (only < 0 || (size_t)only == i) run(ctx, shapes[i], n, reps, threads);
    mx_dnnl_context_free(ctx);
    return 0;
}
