/* The AMX weight gradient (src/nn/conv_wgrad_amx.c) against the reference
 * direct convolution's (double accumulators) on the same bfloat16 values:
 * 3x3 and 1x1 kernels, stride 1 and 2, channel counts of one, two and three 16-channel tiles (the
 * tile loops' four block shapes), sides odd and even, grids that end inside
 * a step, batches that split unevenly between 1, 2 and 3 threads; the
 * result overwritten, the same on every run, and what it refuses. Without
 * AMX (build or CPU) it checks that it says so. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/layers.h"
#include "nn/conv_wgrad_amx.h"

static float uniform(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) / 16777216.0 * 2.0 - 1.0);
}

/* v rounded to bfloat16 (truncation: any bfloat16 values do), and its float. */
static uint16_t to_bf16(float v, float *back)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u &= 0xffff0000u;
    memcpy(back, &u, sizeof u);
    return (uint16_t)(u >> 16);
}

static void compare_k(size_t n, size_t C, size_t K, size_t H, size_t W, size_t kernel, size_t stride, unsigned seed)
{
    const size_t pad = kernel / 2;
    mx_conv2d_desc d = {.in_channels = C, .out_channels = K, .in_h = H, .in_w = W, .kernel_h = kernel,
                        .kernel_w = kernel, .stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad};
    CHECK_OK(mx_conv2d_setup(&d));
    CHECK(mx_wgrad_amx_suits(&d));
    const size_t OH = d.out_h, OW = d.out_w, xn = n * C * H * W, yn = n * K * OH * OW, wn = K * C * kernel * kernel;
    uint16_t *x = malloc(xn * sizeof *x), *dy = malloc(yn * sizeof *dy);
    float *xf = malloc(xn * sizeof *xf), *dyf = malloc(yn * sizeof *dyf);
    float *ref = malloc(wn * sizeof *ref), *dw = malloc(wn * sizeof *dw), *again = malloc(wn * sizeof *again);
    unsigned s = seed;
    /* x NHWC for the kernel, NCHW for the reference; the same for dy */
    for (size_t b = 0; b < n; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t w = 0; w < W; w++)
                for (size_t c = 0; c < C; c++)
                    x[((b * H + h) * W + w) * C + c] = to_bf16(uniform(&s), &xf[((b * C + c) * H + h) * W + w]);
    for (size_t b = 0; b < n; b++)
        for (size_t h = 0; h < OH; h++)
            for (size_t w = 0; w < OW; w++)
                for (size_t k = 0; k < K; k++)
                    dy[((b * OH + h) * OW + w) * K + k] =
                        to_bf16(uniform(&s), &dyf[((b * K + k) * OH + h) * OW + w]);
    mx_conv2d_backward_direct(&d, n, xf, NULL, dyf, NULL, ref, NULL);
    for (int threads = 1; threads <= 3; threads++) {
        void *scratch = aligned_alloc(64, mx_wgrad_amx_scratch_bytes(&d, n, threads));
        for (size_t i = 0; i < wn; i++) dw[i] = NAN;
        /* garbage in the scratch: the kernel must write every byte it reads */
        memset(scratch, 0xff, mx_wgrad_amx_scratch_bytes(&d, n, threads));
        CHECK_OK(mx_wgrad_amx(&d, n, x, dy, dw, scratch, threads));
        const double e = check_relative(dw, ref, wn);
        CHECK(e < 2e-6);
        if (!(e < 2e-6))
            fprintf(stderr, "  n %zu, %zu -> %zu, %zux%zu, %zux%zu kernel, stride %zu, %d threads: relative error %.3g\n",
                    n, C, K, H, W, kernel, kernel, stride, threads, e);
        CHECK_OK(mx_wgrad_amx(&d, n, x, dy, again, scratch, threads));
        CHECK(memcmp(dw, again, wn * sizeof *dw) == 0);
        free(scratch);
    }
    free(x), free(dy), free(xf), free(dyf), free(ref), free(dw), free(again);
}

static void compare(size_t n, size_t C, size_t K, size_t H, size_t W, size_t stride, unsigned seed)
{
    compare_k(n, C, K, H, W, 3, stride, seed);
}

static mx_conv2d_desc desc(size_t C, size_t K, size_t H, size_t W, size_t kernel, size_t sh, size_t sw, size_t pad)
{
    return (mx_conv2d_desc){.in_channels = C, .out_channels = K, .in_h = H, .in_w = W, .kernel_h = kernel,
                            .kernel_w = kernel, .stride_h = sh, .stride_w = sw, .pad_h = pad, .pad_w = pad};
}

int main(void)
{
    /* what it refuses: 5x5, 3x3 unpadded, channels not multiples of 16, stride 2
     * on an odd side, unequal strides, a padded 1x1, stride 3 */
    mx_conv2d_desc bad[] = {desc(16, 16, 8, 8, 5, 1, 1, 2),  desc(16, 16, 8, 8, 3, 1, 1, 0), desc(8, 16, 8, 8, 3, 1, 1, 1),
                            desc(16, 24, 8, 8, 3, 1, 1, 1),  desc(16, 16, 7, 8, 3, 2, 2, 1), desc(16, 16, 8, 8, 3, 1, 2, 1),
                            desc(16, 16, 8, 8, 1, 1, 1, 1),  desc(16, 16, 8, 8, 1, 3, 3, 0)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_OK(mx_conv2d_setup(&bad[i]));
        CHECK(!mx_wgrad_amx_suits(&bad[i]));
    }
    if (!mx_wgrad_amx_available()) {
        mx_conv2d_desc d = {.in_channels = 16, .out_channels = 16, .in_h = 4, .in_w = 4, .kernel_h = 3,
                            .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
        CHECK_OK(mx_conv2d_setup(&d));
        uint16_t x[256] = {0};
        float dw[16 * 16 * 9];
        char scratch[64];
        CHECK(mx_wgrad_amx(&d, 1, x, x, dw, scratch, 1) != MX_OK);
        printf("no AMX in this build or on this CPU: the kernel says so\n");
        CHECK_DONE();
    }
    compare(3, 16, 16, 8, 8, 1, 1u);    /* one tile each way; 243 positions: a step's end inside the grid */
    compare(2, 32, 32, 16, 16, 1, 2u);  /* two by two */
    compare(2, 64, 64, 8, 8, 1, 3u);    /* resnet20's last stage */
    compare(1, 48, 16, 7, 5, 1, 4u);    /* two tiles and one of A, odd sides */
    compare(2, 16, 48, 5, 9, 1, 5u);    /* one tile of A, two and one of B */
    compare(4, 16, 32, 16, 16, 2, 6u);  /* resnet20's first downsampling */
    compare(3, 32, 64, 6, 10, 2, 7u);   /* the second, on a non-square side */
    compare(5, 48, 48, 4, 4, 2, 8u);
    /* 1x1: resnet50's projections and bottleneck ends, one tap on the output's grid */
    compare_k(2, 64, 32, 7, 5, 1, 1, 9u);    /* two by two tiles */
    compare_k(3, 16, 48, 6, 6, 1, 1, 10u);   /* one by two and one */
    compare_k(2, 48, 16, 5, 7, 1, 1, 11u);   /* two and one by one */
    compare_k(1, 16, 16, 9, 9, 1, 1, 12u);   /* one tile: 81 positions */
    compare_k(2, 32, 64, 8, 8, 1, 2, 13u);   /* stride 2, even sides */
    compare_k(3, 16, 32, 7, 9, 1, 2, 14u);   /* stride 2, odd sides */
    CHECK_DONE();
}
