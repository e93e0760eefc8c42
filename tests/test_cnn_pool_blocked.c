/* Max pooling on blocked tensors (src/nn/cnn_cpu_pool.c) against the
 * reference on NCHW (src/nn/layers/pool.c), bit for bit: outputs, arg-max
 * (each the input's index within its plane) and the backward's input
 * gradient, in nChw8c, nChw16c and NHWC (rows of 16), on resnet50's stem pooling
 * (3x3, stride 2, padding 1), LeNet's 2x2, odd sizes with clipped windows,
 * overlapping windows whose gradients add up, ties and NaNs; and the 2x2
 * kernel on NCHW planes (cnn_cpu_maxpool_2x2_*) the same way, with odd
 * sizes, rows of 4 windows and more, signed zeros. Both backwards also with
 * the ReLU's backward folded in, against the reference's two passes; the
 * blocked kernels also with an NCHW output, and without the arg-max (a
 * prediction's). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/layers.h"
#include "nn/cnn_cpu.h"

static void to_blocked(size_t n, size_t c, size_t hw, size_t layout, const float *x, float *b)
{
    for (size_t s = 0; s < n; s++)
        for (size_t ch = 0; ch < c; ch++)
            for (size_t p = 0; p < hw; p++) b[cnn_index(layout, c, hw, s, ch, p)] = x[(s * c + ch) * hw + p];
}

static size_t blocked_at(size_t c, size_t hw, size_t layout, size_t s, size_t ch, size_t p)
{
    return cnn_index(layout, c, hw, s, ch, p);
}

static int same_float(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void compare(size_t layout, size_t n, size_t C, size_t H, size_t W, size_t k, size_t stride, size_t pad)
{
    mx_pool2d_desc d = {.channels = C, .in_h = H, .in_w = W, .kernel_h = k, .kernel_w = k, .stride_h = stride,
                        .stride_w = stride, .pad_h = pad, .pad_w = pad};
    CHECK(mx_pool2d_setup(&d) == MX_OK);
    const size_t hw = H * W, ohw = d.out_h * d.out_w, in = n * C * hw, out = n * C * ohw;
    float *x = malloc(in * sizeof *x), *xb = malloc(in * sizeof *xb), *y = malloc(out * sizeof *y),
          *yb = malloc(out * sizeof *yb), *dy = malloc(out * sizeof *dy), *dyb = malloc(out * sizeof *dyb),
          *dx = malloc(in * sizeof *dx), *dxb = malloc(in * sizeof *dxb);
    uint32_t *a = malloc(out * sizeof *a), *ab = malloc(out * sizeof *ab);
    const size_t B = cnn_block(layout);
    unsigned state = (unsigned)(B * 7 + C * 13 + H * 3 + W + k);
    for (size_t i = 0; i < in; i++) {
        state = state * 1664525u + 1013904223u;
        /* few distinct values, so windows hold ties; now and then a NaN, and both zeros */
        const unsigned r = state >> 24;
        x[i] = r < 3 ? NAN : r < 30 ? -0.0f : (float)(int)(r % 7) - 3.0f;
    }
    for (size_t i = 0; i < out; i++) {
        state = state * 1664525u + 1013904223u;
        dy[i] = (float)((state >> 8) / 16777216.0) - 0.5f;
    }
    mx_maxpool2d_forward(&d, n, x, y, a);
    mx_maxpool2d_backward(&d, n, a, dy, dx);
    to_blocked(n, C, hw, layout, x, xb);
    to_blocked(n, C, ohw, layout, dy, dyb);
    cnn_cpu_maxpool_forward_blocked(&d, n, layout, xb, yb, 0, ab);
    cnn_cpu_maxpool_backward_blocked(&d, n, layout, ab, NULL, dyb, 0, dxb);
    size_t bad = 0;
    for (size_t s = 0; s < n; s++)
        for (size_t ch = 0; ch < C; ch++) {
            for (size_t p = 0; p < ohw; p++) {
                /* the arg-max is nChw<B>c whatever the layout */
                const size_t r = (s * C + ch) * ohw + p, b = blocked_at(C, ohw, layout, s, ch, p);
                bad += !same_float(y[r], yb[b]) || a[r] != ab[blocked_at(C, ohw, B, s, ch, p)];
            }
            for (size_t p = 0; p < hw; p++)
                bad += !same_float(dx[(s * C + ch) * hw + p], dxb[blocked_at(C, hw, layout, s, ch, p)]);
        }
    /* The output NCHW (y and dy as the reference has them). */
    float *y2 = malloc(out * sizeof *y2), *dxb2 = malloc(in * sizeof *dxb2);
    cnn_cpu_maxpool_forward_blocked(&d, n, layout, xb, y2, 1, ab);
    cnn_cpu_maxpool_backward_blocked(&d, n, layout, ab, NULL, dy, 1, dxb2);
    for (size_t i = 0; i < out; i++) bad += !same_float(y[i], y2[i]);
    for (size_t i = 0; i < in; i++) bad += !same_float(dxb[i], dxb2[i]);
    /* With the backward of the ReLU that made x: the reference's two passes. */
    mx_relu_backward(in, x, dx, dx);
    cnn_cpu_maxpool_backward_blocked(&d, n, layout, ab, xb, dyb, 0, dxb);
    cnn_cpu_maxpool_backward_blocked(&d, n, layout, ab, xb, dy, 1, dxb2);
    for (size_t s = 0; s < n; s++)
        for (size_t ch = 0; ch < C; ch++)
            for (size_t p = 0; p < hw; p++) {
                const float r = dx[(s * C + ch) * hw + p];
                bad += !same_float(r, dxb[blocked_at(C, hw, layout, s, ch, p)]) ||
                       !same_float(r, dxb2[blocked_at(C, hw, layout, s, ch, p)]);
            }
    /* A prediction's, without the arg-max (the stem's windows have a kernel of their own there). */
    for (size_t i = 0; i < out; i++) yb[i] = 7.0f, y2[i] = 7.0f;
    cnn_cpu_maxpool_forward_blocked(&d, n, layout, xb, yb, 0, NULL);
    cnn_cpu_maxpool_forward_blocked(&d, n, layout, xb, y2, 1, NULL);
    for (size_t s = 0; s < n; s++)
        for (size_t ch = 0; ch < C; ch++)
            for (size_t p = 0; p < ohw; p++) {
                const size_t r = (s * C + ch) * ohw + p;
                bad += !same_float(y[r], yb[blocked_at(C, ohw, layout, s, ch, p)]) || !same_float(y[r], y2[r]);
            }
    free(y2), free(dxb2);
    printf("  block %zu%s, %zu x %zu@%zux%zu, %zux%zu window, stride %zu, padding %zu: %zu mismatches\n", B,
           layout & CNN_NHWC ? " (NHWC)" : "", n, C, H, W,
           k, k, stride, pad, bad);
    CHECK(bad == 0);
    free(x), free(xb), free(y), free(yb), free(dy), free(dyb), free(dx), free(dxb), free(a), free(ab);
}

/* The NCHW 2x2 kernel against the reference, bit for bit. */
static void compare_2x2(size_t n, size_t C, size_t H, size_t W)
{
    mx_pool2d_desc d = {.channels = C, .in_h = H, .in_w = W, .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    CHECK(mx_pool2d_setup(&d) == MX_OK);
    const size_t ohw = d.out_h * d.out_w, in = n * C * H * W, out = n * C * ohw;
    float *x = malloc(in * sizeof *x), *y = malloc(out * sizeof *y), *y2 = malloc(out * sizeof *y2),
          *dy = malloc(out * sizeof *dy), *dx = malloc(in * sizeof *dx), *dx2 = malloc(in * sizeof *dx2);
    uint32_t *a = malloc(out * sizeof *a), *a2 = malloc(out * sizeof *a2);
    unsigned state = (unsigned)(C * 13 + H * 3 + W);
    for (size_t i = 0; i < in; i++) {
        state = state * 1664525u + 1013904223u;
        const unsigned r = state >> 24; /* ties, NaNs and both zeros */
        x[i] = r < 3 ? NAN : r < 40 ? -0.0f : (float)(int)(r % 7) - 3.0f;
    }
    for (size_t i = 0; i < out; i++) {
        state = state * 1664525u + 1013904223u;
        dy[i] = (float)((state >> 8) / 16777216.0) - 0.5f;
    }
    mx_maxpool2d_forward(&d, n, x, y, a);
    mx_maxpool2d_backward(&d, n, a, dy, dx);
    CHECK(!cnn_cpu_maxpool_2x2_suits(&d) || d.out_w >= 4);
    for (size_t i = 0; i < in; i++) dx2[i] = NAN; /* every element must be written */
    cnn_cpu_maxpool_2x2_forward(&d, n, x, y2, a2);
    cnn_cpu_maxpool_2x2_backward(&d, n, a2, NULL, dy, dx2);
    size_t bad = 0;
    for (size_t i = 0; i < out; i++) bad += !same_float(y[i], y2[i]) || a[i] != a2[i];
    for (size_t i = 0; i < in; i++) bad += !same_float(dx[i], dx2[i]);
    /* With the backward of the ReLU that made x (x holds values <= 0, -0 and NaN). */
    mx_relu_backward(in, x, dx, dx);
    for (size_t i = 0; i < in; i++) dx2[i] = NAN;
    cnn_cpu_maxpool_2x2_backward(&d, n, a2, x, dy, dx2);
    for (size_t i = 0; i < in; i++) bad += !same_float(dx[i], dx2[i]);
    for (size_t i = 0; i < out; i++) y2[i] = 7.0f;
    cnn_cpu_maxpool_2x2_forward(&d, n, x, y2, NULL); /* without the arg-max */
    for (size_t i = 0; i < out; i++) bad += !same_float(y[i], y2[i]);
    printf("  NCHW 2x2 (%s), %zu x %zu@%zux%zu: %zu mismatches\n",
           cnn_cpu_maxpool_2x2_suits(&d) ? "own kernel" : "the reference", n, C, H, W, bad);
    CHECK(bad == 0);
    free(x), free(y), free(y2), free(dy), free(dx), free(dx2), free(a), free(a2);
}

int main(void)
{
    compare_2x2(3, 6, 28, 28);  /* lenet5's first pooling */
    compare_2x2(2, 5, 17, 33);  /* odd sides: a row and a column no window covers */
    compare_2x2(2, 3, 6, 16);   /* exactly 8 windows a row */
    compare_2x2(1, 4, 9, 45);   /* 22 windows: two blocks and an overlapping third */
    compare_2x2(2, 16, 10, 10); /* lenet5's second: 5 windows, two overlapping vectors of 4 */
    compare_2x2(2, 3, 8, 9);    /* 4 windows and a column left over */
    compare_2x2(2, 3, 6, 7);    /* 3 windows: the reference's loop */
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    for (int k = 0; k < 3; k++) {
        const size_t L = layouts[k];
        compare(L, 2, 64, 20, 20, 3, 2, 1); /* resnet50's stem pooling, smaller */
        compare(L, 1, 16, 21, 19, 3, 2, 1); /* the same windows on odd sides: the last row and column clipped */
        compare(L, 3, 16, 10, 10, 2, 2, 0); /* LeNet's */
        compare(L, 1, 32, 7, 9, 3, 2, 1);   /* odd sizes: clipped windows */
        compare(L, 2, 16, 5, 6, 3, 1, 1);   /* stride 1: overlapping windows add their gradients */
        compare(L, 1, 16, 6, 6, 3, 3, 0);
    }
    CHECK_DONE();
}
