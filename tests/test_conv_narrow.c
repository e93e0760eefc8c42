/* The narrow first-layer convolution (src/nn/conv_narrow.c) against the
 * reference direct convolution (double accumulators): forward with and
 * without bias, weights' and bias's gradients, on lenet5's first layers
 * (Fashion-MNIST's 1x28x28 and CIFAR's 3x32x32), output widths that are not
 * a multiple of the vector (masked last columns), kernels 1 to 7, padding
 * and none, batches that split unevenly between threads; and its forward
 * into nChw8c and weights' gradient from there (lenet5's second layer,
 * resnet20's first, odd widths, odd block counts, a 7-wide kernel), the
 * forward with and without the ReLU. Builds without AVX2 have no
 * kernel; the test then checks that it says so. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "check.h"
#include "mixreg/layers.h"
#include "nn/conv_narrow.h"

static float uniform(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) / 16777216.0 * 2.0 - 1.0);
}

/* A weights' gradient kernel (plain or nChw8c dy) against the reference's
 * rdw, rdb: dw and db overwritten (NaN first), then dw alone with db NULL.
 * *ew, *eb: the relative errors. */
typedef mx_status (*weights_grad_fn)(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                     float *db, float *scratch);

static void check_weights_grad(weights_grad_fn fn, const mx_conv2d_desc *d, size_t n, const float *x, const float *dy,
                               const float *rdw, const float *rdb, float *dw, float *db, float *scratch, double *ew,
                               double *eb)
{
    const size_t K = d->out_channels, wn = K * d->in_channels * d->kernel_h * d->kernel_w;
    for (size_t i = 0; i < wn; i++) dw[i] = NAN;
    for (size_t i = 0; i < K; i++) db[i] = NAN;
    CHECK(fn(d, n, x, dy, dw, db, scratch) == MX_OK);
    *ew = check_relative(dw, rdw, wn), *eb = check_relative(db, rdb, K);
    CHECK(*ew < 1e-5 && *eb < 1e-5);
    for (size_t i = 0; i < wn; i++) dw[i] = NAN;
    CHECK(fn(d, n, x, dy, dw, NULL, scratch) == MX_OK);
    CHECK(check_relative(dw, rdw, wn) < 1e-5);
}

static void compare(size_t n, size_t C, size_t K, size_t H, size_t W, size_t kh, size_t kw, size_t pad)
{
    mx_conv2d_desc d = {.in_channels = C, .out_channels = K, .in_h = H, .in_w = W, .kernel_h = kh, .kernel_w = kw,
                        .stride_h = 1, .stride_w = 1, .pad_h = pad, .pad_w = pad};
    CHECK(mx_conv2d_setup(&d) == MX_OK && mx_conv_narrow_suits(&d));
    const size_t in = n * C * H * W, out = n * K * d.out_h * d.out_w, wn = K * C * kh * kw;
    float *x = malloc(in * sizeof *x), *w = malloc(wn * sizeof *w), *bias = malloc(K * sizeof *bias);
    float *dy = malloc(out * sizeof *dy), *ref = malloc(out * sizeof *ref), *y = malloc(out * sizeof *y);
    float *rdw = malloc(wn * sizeof *rdw), *dw = malloc(wn * sizeof *dw), *rdb = malloc(K * sizeof *rdb),
          *db = malloc(K * sizeof *db);
    float *scratch = malloc(mx_conv_narrow_scratch_floats(&d, omp_get_max_threads()) * sizeof(float));
    unsigned state = (unsigned)(n * 7 + C * 131 + K * 17 + H * 5 + W + kh * 3);
    for (size_t i = 0; i < in; i++) x[i] = uniform(&state);
    for (size_t i = 0; i < wn; i++) w[i] = 0.3f * uniform(&state);
    for (size_t i = 0; i < K; i++) bias[i] = uniform(&state);
    for (size_t i = 0; i < out; i++) dy[i] = uniform(&state);
    double worst = 0;
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        mx_conv2d_forward_direct(&d, n, x, w, with_bias ? bias : NULL, ref);
        for (size_t i = 0; i < out; i++) y[i] = NAN; /* every output must be written */
        CHECK(mx_conv_narrow_forward(&d, n, x, w, with_bias ? bias : NULL, 0, y, scratch) == MX_OK);
        const double e = check_relative(y, ref, out);
        if (e > worst) worst = e;
        CHECK(e < 1e-6);
        /* With the ReLU: the same values where positive, +0 elsewhere. */
        for (size_t i = 0; i < out; i++) y[i] = NAN;
        CHECK(mx_conv_narrow_forward(&d, n, x, w, with_bias ? bias : NULL, 1, y, scratch) == MX_OK);
        size_t clipped = 0, wrong = 0;
        for (size_t i = 0; i < out; i++) {
            if (ref[i] < -1e-4f) clipped++, wrong += !(y[i] == 0 && !signbit(y[i]));
            else if (ref[i] > 1e-4f) wrong += fabsf(y[i] - ref[i]) > 1e-5f * (1 + fabsf(ref[i]));
            else wrong += !(y[i] >= 0 && y[i] <= 2e-4f); /* near 0, either side of the cut */
        }
        CHECK(wrong == 0 && clipped > 0 && clipped < out);
    }
    mx_conv2d_backward_direct(&d, n, x, w, dy, NULL, rdw, rdb);
    double ew, eb;
    check_weights_grad(mx_conv_narrow_backward_weights, &d, n, x, dy, rdw, rdb, dw, db, scratch, &ew, &eb);
    printf("  %zu x %zux%zux%zu -> %zu, %zux%zu pad %zu: forward %.2g, weights' gradient %.2g, bias's %.2g\n", n, C,
           H, W, K, kh, kw, pad, worst, ew, eb);
    free(x), free(w), free(bias), free(dy), free(ref), free(y), free(rdw), free(dw), free(rdb), free(db), free(scratch);
}

/* The weights' gradient of the block compare_blocked tests, in
 * check_weights_grad's form. */
static size_t g_block;
static mx_status weights_blocked(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                 float *db, float *scratch)
{
    return mx_conv_narrow_backward_weights_blocked(d, g_block, n, x, dy, dw, db, scratch);
}

/* The nChw<B>c forward (B 8 or 16) against the reference's NCHW output. */
static void compare_blocked(size_t B, size_t n, size_t C, size_t K, size_t H, size_t W, size_t kh, size_t kw,
                            size_t pad)
{
    mx_conv2d_desc d = {.in_channels = C, .out_channels = K, .in_h = H, .in_w = W, .kernel_h = kh, .kernel_w = kw,
                        .stride_h = 1, .stride_w = 1, .pad_h = pad, .pad_w = pad};
    CHECK(mx_conv2d_setup(&d) == MX_OK && mx_conv_narrow_blocked_suits(&d, B));
    const size_t hw = d.out_h * d.out_w, in = n * C * H * W, out = n * K * hw, wn = K * C * kh * kw;
    float *x = malloc(in * sizeof *x), *w = malloc(wn * sizeof *w), *bias = malloc(K * sizeof *bias);
    float *ref = malloc(out * sizeof *ref), *y = malloc(out * sizeof *y);
    float *scratch = malloc(mx_conv_narrow_blocked_scratch_floats(&d, omp_get_max_threads()) * sizeof(float));
    unsigned state = (unsigned)(n * 5 + C * 31 + K * 7 + H + W * 3 + kh);
    for (size_t i = 0; i < in; i++) x[i] = uniform(&state);
    for (size_t i = 0; i < wn; i++) w[i] = 0.3f * uniform(&state);
    for (size_t i = 0; i < K; i++) bias[i] = uniform(&state);
    mx_conv2d_forward_direct(&d, n, x, w, bias, ref);
    double worst = 0;
    for (int relu = 0; relu < 2; relu++) {
        for (size_t i = 0; i < out; i++) y[i] = NAN; /* every output must be written */
        CHECK(mx_conv_narrow_forward_blocked(&d, B, n, x, w, bias, relu, y, scratch) == MX_OK);
        size_t wrong = 0;
        for (size_t s = 0; s < n; s++)
            for (size_t k = 0; k < K; k++)
                for (size_t p = 0; p < hw; p++) {
                    const float r = ref[(s * K + k) * hw + p], got = y[((s * (K / B) + k / B) * hw + p) * B + k % B];
                    const double e = fabs((double)got - (relu && r < 0 ? 0.0 : r));
                    if (!(e <= worst)) worst = e;
                    if (relu && r < -1e-4f) wrong += !(got == 0 && !signbit(got));
                }
        CHECK(wrong == 0);
    }
    CHECK(worst < 1e-5);
    /* The weights' and bias's gradients from an nChw8c dy. */
    float *dy = malloc(out * sizeof *dy), *dyb = malloc(out * sizeof *dyb), *rdw = malloc(wn * sizeof *rdw),
          *dw = malloc(wn * sizeof *dw), *rdb = malloc(K * sizeof *rdb), *db = malloc(K * sizeof *db);
    for (size_t i = 0; i < out; i++) dy[i] = uniform(&state);
    for (size_t s = 0; s < n; s++)
        for (size_t k = 0; k < K; k++)
            for (size_t p = 0; p < hw; p++) dyb[((s * (K / B) + k / B) * hw + p) * B + k % B] = dy[(s * K + k) * hw + p];
    mx_conv2d_backward_direct(&d, n, x, w, dy, NULL, rdw, rdb);
    double ew, eb;
    g_block = B;
    check_weights_grad(weights_blocked, &d, n, x, dyb, rdw, rdb, dw, db, scratch, &ew, &eb);
    printf("  nChw%zuc: %zu x %zux%zux%zu -> %zu, %zux%zu pad %zu: forward %.2g, weights' gradient %.2g, bias's %.2g\n",
           B, n, C, H, W, K, kh, kw, pad, worst, ew, eb);
    free(x), free(w), free(bias), free(ref), free(y), free(scratch);
    free(dy), free(dyb), free(rdw), free(dw), free(rdb), free(db);
}

int main(void)
{
    mx_conv2d_desc no = {.in_channels = 6, .out_channels = 16, .in_h = 14, .in_w = 14, .kernel_h = 5, .kernel_w = 5,
                         .stride_h = 1, .stride_w = 1};
    CHECK(mx_conv2d_setup(&no) == MX_OK && !mx_conv_narrow_suits(&no)); /* 6 input channels: oneDNN's */
    no.in_channels = 1, no.stride_h = no.stride_w = 2;
    CHECK(mx_conv2d_setup(&no) == MX_OK && !mx_conv_narrow_suits(&no)); /* stride 2 */
    if (!mx_conv_narrow_available()) {
        printf("no AVX2 in this build: the narrow convolution is absent, callers use oneDNN\n");
        CHECK_DONE();
    }
    compare(5, 1, 6, 28, 28, 5, 5, 2); /* lenet5 on Fashion-MNIST */
    compare(3, 3, 6, 32, 32, 5, 5, 0); /* on CIFAR: 28 columns */
    compare(4, 2, 5, 9, 13, 3, 3, 1);
    compare(1, 1, 1, 5, 5, 7, 7, 3);
    compare(2, 4, 3, 40, 37, 1, 1, 0); /* 37 columns: five vectors, two passes of a row */
    compare(3, 1, 64, 6, 6, 3, 7, 2);
    compare_blocked(8, 5, 6, 16, 14, 14, 5, 5, 0); /* lenet5's second layer: 10-wide rows, 5 + 5 */
    compare_blocked(8, 3, 3, 16, 32, 32, 3, 3, 1); /* resnet20's first */
    compare_blocked(8, 2, 8, 24, 9, 23, 3, 5, 2);  /* three groups: a pair and one alone; 23 = 6 + 6 + 6 + 5 */
    compare_blocked(8, 3, 1, 8, 5, 4, 7, 7, 3);
    compare_blocked(8, 3, 2, 16, 8, 8, 7, 7, 3);   /* 7 wide: one group at a time */
    /* nChw16c (AVX-512's block): two groups of 8 side by side in a block. */
    compare_blocked(16, 5, 6, 16, 14, 14, 5, 5, 0);
    compare_blocked(16, 2, 8, 32, 9, 23, 3, 5, 2);
    compare_blocked(16, 3, 2, 16, 8, 8, 7, 7, 3);
    mx_conv2d_desc odd = {.in_channels = 2, .out_channels = 24, .in_h = 9, .in_w = 9, .kernel_h = 3, .kernel_w = 3,
                          .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
    CHECK(mx_conv2d_setup(&odd) == MX_OK && mx_conv_narrow_blocked_suits(&odd, 8));
    CHECK(!mx_conv_narrow_blocked_suits(&odd, 16) && !mx_conv_narrow_blocked_suits(&odd, 4)); /* 24 = 1.5 blocks of 16 */
    CHECK_DONE();
}
