/* The Winograd inference kernel (src/nn/winograd.c), F(4x4, 3x3) and
 * F(2x2, 3x3), against the reference direct convolution (double
 * accumulators), on tensors in its block (nChw16c with AVX-512, nChw8c with
 * AVX2): sizes that are and are not multiples of
 * the tile (edge tiles clipped), several channel counts and tile groupings,
 * with and without bias, residual addend and ReLU. Builds without
 * AVX-512 or AVX2 have no kernel; the test then checks that it says so. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/layers.h"
#include "nn/winograd.h"

static float uniform(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) / 16777216.0 * 2.0 - 1.0);
}

/* NCHW [n, c, hw] to the kernel's block (B = mx_wino_block) and back. */
static void to_blocked(size_t n, size_t c, size_t hw, const float *x, float *b)
{
    const size_t B = mx_wino_block();
    for (size_t s = 0; s < n; s++)
        for (size_t ch = 0; ch < c; ch++)
            for (size_t p = 0; p < hw; p++) b[((s * (c / B) + ch / B) * hw + p) * B + ch % B] = x[(s * c + ch) * hw + p];
}

static void from_blocked(size_t n, size_t c, size_t hw, const float *b, float *x)
{
    const size_t B = mx_wino_block();
    for (size_t s = 0; s < n; s++)
        for (size_t ch = 0; ch < c; ch++)
            for (size_t p = 0; p < hw; p++) x[(s * c + ch) * hw + p] = b[((s * (c / B) + ch / B) * hw + p) * B + ch % B];
}

/* Largest |winograd - direct| over the output, relative to the largest |direct|. */
/* Scratch for the wide layers' kernels (winograd_gemm.c). */
static float *gemm_scratch(const mx_conv2d_desc *d, mx_wino_gemm_use use)
{
    return aligned_alloc(64, (mx_wino_gemm_scratch_floats(d, use) * sizeof(float) + 63) / 64 * 64);
}

/* gemm: through the wide layers' kernels (mx_wino_gemm_*): 1 on weights
 * transformed beforehand, 2 on weights they transform by blocks; 0: the
 * per-tile ones. */
static double compare(size_t n, size_t C, size_t K, size_t H, size_t W, int with_bias, int with_addend, int relu,
                      int gemm)
{
    mx_conv2d_desc d = {.in_channels = C, .out_channels = K, .in_h = H, .in_w = W, .kernel_h = 3, .kernel_w = 3,
                        .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
    if (mx_conv2d_setup(&d) != MX_OK || !(gemm ? mx_wino_gemm_suits(&d) : mx_wino_suits(&d))) return 1e30;
    const size_t in = n * C * H * W, out = n * K * H * W, wn = K * C * 9;
    float *x = malloc(in * sizeof *x), *xb = malloc(in * sizeof *xb), *w = malloc(wn * sizeof *w);
    float *bias = malloc(K * sizeof *bias), *add = malloc(out * sizeof *add), *addb = malloc(out * sizeof *addb);
    float *ref = malloc(out * sizeof *ref), *yb = malloc(out * sizeof *yb), *y = malloc(out * sizeof *y);
    float *u = aligned_alloc(64, (mx_wino_weight_floats(&d) * sizeof(float) + 63) / 64 * 64);
    unsigned state = (unsigned)(C * 131 + K * 17 + H * 7 + W);
    for (size_t i = 0; i < in; i++) x[i] = uniform(&state);
    for (size_t i = 0; i < wn; i++) w[i] = 0.3f * uniform(&state);
    for (size_t i = 0; i < K; i++) bias[i] = uniform(&state);
    for (size_t i = 0; i < out; i++) add[i] = uniform(&state);
    mx_conv2d_forward_direct(&d, n, x, w, with_bias ? bias : NULL, ref);
    double peak = 0;
    for (size_t i = 0; i < out; i++) {
        if (with_addend) ref[i] += add[i];
        if (relu && !(ref[i] > 0)) ref[i] = 0;
        if (fabs(ref[i]) > peak) peak = fabs(ref[i]);
    }
    to_blocked(n, C, H * W, x, xb);
    to_blocked(n, K, H * W, add, addb);
    for (size_t i = 0; i < out; i++) yb[i] = NAN; /* every output must be written */
    if (gemm) {
        float *scratch = gemm_scratch(&d, gemm == 1 ? MX_WINO_GEMM_HELD_U : MX_WINO_GEMM_FROM_W);
        if (gemm == 1) mx_wino_gemm_transform_weights(&d, w, 0, u);
        CHECK(mx_wino_gemm_forward(&d, n, xb, gemm == 1 ? u : NULL, w, 0, with_bias ? bias : NULL,
                                   with_addend ? addb : NULL, relu, yb, scratch) == MX_OK);
        free(scratch);
    } else {
        mx_wino_transform_weights(&d, w, u);
        mx_wino_forward(&d, n, xb, u, with_bias ? bias : NULL, with_addend ? addb : NULL, relu, yb);
    }
    from_blocked(n, K, H * W, yb, y);
    double worst = 0;
    for (size_t i = 0; i < out; i++) {
        const double e = fabs((double)y[i] - ref[i]);
        if (!(e <= worst)) worst = e; /* NaN (an output left unwritten) wins */
    }
    free(x), free(xb), free(w), free(bias), free(add), free(addb), free(ref), free(yb), free(y), free(u);
    return worst / (peak > 0 ? peak : 1);
}

/* The input gradient through mx_wino_transposed and
 * mx_wino_transform_weights_dx against the direct backward's: relative to
 * its largest entry. */
static double compare_dx(size_t n, size_t C, size_t K, size_t H, size_t W, int gemm)
{
    mx_conv2d_desc d = {.in_channels = C, .out_channels = K, .in_h = H, .in_w = W, .kernel_h = 3, .kernel_w = 3,
                        .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
    if (mx_conv2d_setup(&d) != MX_OK) return 1e30;
    const mx_conv2d_desc t = mx_wino_transposed(&d);
    if (!(gemm ? mx_wino_gemm_suits(&t) : mx_wino_suits(&t)) || t.in_channels != K || t.out_channels != C || t.out_h != H || t.out_w != W) return 1e30;
    const size_t in = n * C * H * W, out = n * K * H * W, wn = K * C * 9;
    float *x = malloc(in * sizeof *x), *w = malloc(wn * sizeof *w), *dy = malloc(out * sizeof *dy);
    float *dyb = malloc(out * sizeof *dyb), *ref = malloc(in * sizeof *ref), *dxb = malloc(in * sizeof *dxb);
    float *dx = malloc(in * sizeof *dx);
    float *u = aligned_alloc(64, (mx_wino_weight_floats(&t) * sizeof(float) + 63) / 64 * 64);
    CHECK(mx_wino_weight_floats(&t) == mx_wino_weight_floats(&d));
    unsigned state = (unsigned)(C * 31 + K * 7 + H);
    for (size_t i = 0; i < in; i++) x[i] = uniform(&state);
    for (size_t i = 0; i < wn; i++) w[i] = 0.3f * uniform(&state);
    for (size_t i = 0; i < out; i++) dy[i] = uniform(&state);
    mx_conv2d_backward_direct(&d, n, x, w, dy, ref, NULL, NULL);
    to_blocked(n, K, H * W, dy, dyb);
    for (size_t i = 0; i < in; i++) dxb[i] = NAN;
    if (gemm) {
        float *scratch = gemm_scratch(&t, gemm == 1 ? MX_WINO_GEMM_HELD_U : MX_WINO_GEMM_FROM_W);
        if (gemm == 1) mx_wino_gemm_transform_weights(&t, w, 1, u);
        CHECK(mx_wino_gemm_forward(&t, n, dyb, gemm == 1 ? u : NULL, w, 1, NULL, NULL, 0, dxb, scratch) == MX_OK);
        free(scratch);
    } else {
        mx_wino_transform_weights_dx(&d, w, u);
        mx_wino_forward(&t, n, dyb, u, NULL, NULL, 0, dxb);
    }
    from_blocked(n, C, H * W, dxb, dx);
    double worst = 0, peak = 0;
    for (size_t i = 0; i < in; i++) {
        const double e = fabs((double)dx[i] - ref[i]);
        if (!(e <= worst)) worst = e;
        if (fabs(ref[i]) > peak) peak = fabs(ref[i]);
    }
    free(x), free(w), free(dy), free(dyb), free(ref), free(dxb), free(dx), free(u);
    return worst / (peak > 0 ? peak : 1);
}

/* The weights' and bias's gradients (mx_wino_backward_weights) against the
 * direct backward's: the largest error relative to the largest entry, of
 * both. */
static double compare_dw(size_t n, size_t C, size_t K, size_t H, size_t W, int gemm)
{
    mx_conv2d_desc d = {.in_channels = C, .out_channels = K, .in_h = H, .in_w = W, .kernel_h = 3, .kernel_w = 3,
                        .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
    if (mx_conv2d_setup(&d) != MX_OK || !(gemm ? mx_wino_gemm_suits(&d) : mx_wino_suits(&d))) return 1e30;
    const size_t in = n * C * H * W, out = n * K * H * W, wn = K * C * 9;
    float *x = malloc(in * sizeof *x), *xb = malloc(in * sizeof *xb), *w = malloc(wn * sizeof *w);
    float *dy = malloc(out * sizeof *dy), *dyb = malloc(out * sizeof *dyb);
    float *ref = malloc(wn * sizeof *ref), *dw = malloc(wn * sizeof *dw), *rdb = malloc(K * sizeof *rdb),
          *db = malloc(K * sizeof *db);
    unsigned state = (unsigned)(C * 37 + K * 11 + H * 3 + W);
    for (size_t i = 0; i < in; i++) x[i] = uniform(&state);
    for (size_t i = 0; i < wn; i++) w[i] = 0.3f * uniform(&state);
    for (size_t i = 0; i < out; i++) dy[i] = uniform(&state);
    mx_conv2d_backward_direct(&d, n, x, w, dy, NULL, ref, rdb);
    to_blocked(n, C, H * W, x, xb);
    to_blocked(n, K, H * W, dy, dyb);
    for (size_t i = 0; i < wn; i++) dw[i] = NAN; /* every entry must be written */
    for (size_t i = 0; i < K; i++) db[i] = NAN;
    double worst = 1e30;
    const int threads = omp_get_max_threads();
    float *scratch = gemm ? gemm_scratch(&d, MX_WINO_GEMM_DW)
                          : aligned_alloc(64, (mx_wino_dw_scratch_floats(&d, threads) * sizeof(float) + 63) / 64 * 64);
    /* the per-tile kernel on one thread first (its scratch is for more), then on all */
    if (!gemm) CHECK(mx_wino_backward_weights(&d, n, xb, dyb, dw, db, scratch, 1) == MX_OK);
    float *one = malloc(wn * sizeof *one);
    memcpy(one, dw, wn * sizeof *one);
    for (size_t i = 0; i < wn; i++) dw[i] = NAN;
    const mx_status st = gemm ? mx_wino_gemm_backward_weights(&d, n, xb, dyb, dw, db, scratch)
                              : mx_wino_backward_weights(&d, n, xb, dyb, dw, db, scratch, threads);
    if (!gemm) {
        double apart = 0, scale = 0;
        for (size_t i = 0; i < wn; i++) {
            const double e = fabs((double)one[i] - dw[i]);
            if (!(e <= apart)) apart = e;
            if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
        }
        CHECK(apart <= 1e-5 * (scale > 0 ? scale : 1)); /* one thread and all: the same sums, added in another order */
    }
    free(one);
    free(scratch);
    if (st == MX_OK) {
        double peak = 0, bpeak = 0, bworst = 0;
        worst = 0;
        for (size_t i = 0; i < wn; i++) {
            const double e = fabs((double)dw[i] - ref[i]);
            if (!(e <= worst)) worst = e;
            if (fabs(ref[i]) > peak) peak = fabs(ref[i]);
        }
        for (size_t i = 0; i < K; i++) {
            const double e = fabs((double)db[i] - rdb[i]);
            if (!(e <= bworst)) bworst = e;
            if (fabs(rdb[i]) > bpeak) bpeak = fabs(rdb[i]);
        }
        worst /= peak > 0 ? peak : 1;
        bworst /= bpeak > 0 ? bpeak : 1;
        if (!(bworst <= worst)) worst = bworst;
    }
    free(x), free(xb), free(w), free(dy), free(dyb), free(ref), free(dw), free(rdb), free(db);
    return worst;
}

/* F4's transforms scale by up to 8 and 1/24: ten times F2's rounding; F5's
 * by up to 16 and 1/90, about twice F4's at the widest shapes (256 -> 128
 * on 14x14: input gradient 1.5e-5 against 7e-6). */
static double tolerance(const mx_conv2d_desc *d)
{
    const int tile = mx_wino_tile(d);
    return tile == 2 ? 2e-6 : tile == 4 ? 1.5e-5 : 3e-5;
}

/* Whether an h x w output takes the same tile with the largest tile cap as
 * with the build's: a shape the first pass of check_kernels checked. */
static int same_as_default(size_t h, size_t w, int cap)
{
    const mx_conv2d_desc d = {.out_h = h, .out_w = w};
    const int capped = mx_wino_tile(&d);
    mx_wino_largest_tile_set(0);
    const int built = mx_wino_tile(&d);
    mx_wino_largest_tile_set(cap);
    return capped == built;
}

/* Every kernel against the direct convolution on shapes that take each
 * tile the largest allowed tile leaves: the build's (cap 0), or cap
 * (mx_wino_largest_tile_set), then only on the shapes whose tile it
 * changes. */
static void check_kernels(int cap)
{
    /* n, C, K, H, W: resnet20's widths at Fashion-MNIST's and CIFAR's sizes,
     * odd sizes (clipped edge tiles), more tiles than a micro-kernel takes,
     * and in/out channel counts that differ. */
    const size_t shapes[][5] = {{3, 16, 16, 28, 28}, {2, 32, 32, 14, 14}, {2, 64, 64, 7, 7}, {2, 16, 32, 9, 5},
                                {1, 48, 16, 5, 11},  {2, 32, 16, 32, 32}, {1, 16, 16, 1, 1}, {1, 128, 32, 6, 3},
                                {2, 128, 128, 16, 16}, {2, 32, 32, 10, 10}, {1, 16, 32, 14, 9}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const size_t *s = shapes[i];
        if (cap && same_as_default(s[3], s[4], cap)) continue;
        for (int variant = 0; variant < 4; variant++) {
            const int with_bias = variant & 1, with_addend = variant >= 2, relu = variant == 3 || variant == 1;
            const double e = compare(s[0], s[1], s[2], s[3], s[4], with_bias, with_addend, relu, 0);
            const mx_conv2d_desc d = {.out_h = s[3], .out_w = s[4]};
            const double tol = tolerance(&d);
            if (!(e < tol))
                fprintf(stderr, "shape %zu (%zu %zu %zu %zu %zu) variant %d: relative error %.3g\n", i, s[0], s[1],
                        s[2], s[3], s[4], variant, e);
            CHECK(e < tol);
        }
    }
    /* The input gradient: channels in and out that differ, every tile, clipped edges (13x13: F5 tiles past the edge). */
    const size_t dx_shapes[][5] = {{2, 16, 32, 28, 28}, {2, 64, 32, 7, 7}, {3, 32, 16, 6, 5}, {1, 48, 16, 9, 11},
                                   {2, 128, 128, 16, 16}, {2, 32, 16, 13, 13}};
    for (size_t i = 0; i < sizeof dx_shapes / sizeof dx_shapes[0]; i++) {
        const size_t *s = dx_shapes[i];
        if (cap && same_as_default(s[3], s[4], cap)) continue;
        const double e = compare_dx(s[0], s[1], s[2], s[3], s[4], 0);
        const mx_conv2d_desc d = {.out_h = s[3], .out_w = s[4]};
        const double tol = tolerance(&d);
        if (!(e < tol)) fprintf(stderr, "input gradient, shape %zu: relative error %.3g\n", i, e);
        CHECK(e < tol);
    }
    /* The weights' gradient: every tile, clipped edges, channel counts with
     * an odd number of blocks and not a multiple of the micro-kernel's 6, a
     * batch whose tiles split unevenly between threads and groups. */
    const size_t dw_shapes[][5] = {{3, 16, 16, 32, 32}, {2, 32, 64, 7, 7}, {3, 24, 40, 6, 5},
                                   {1, 48, 16, 9, 11},  {5, 64, 32, 8, 8}, {2, 16, 16, 1, 1}, {2, 128, 128, 16, 16},
                                   {2, 16, 32, 13, 13}};
    for (size_t i = 0; i < sizeof dw_shapes / sizeof dw_shapes[0]; i++) {
        const size_t *s = dw_shapes[i];
        if (s[1] % mx_wino_block() || s[2] % mx_wino_block()) continue;
        if (cap && same_as_default(s[3], s[4], cap)) continue;
        const double e = compare_dw(s[0], s[1], s[2], s[3], s[4], 0);
        const mx_conv2d_desc d = {.out_h = s[3], .out_w = s[4]};
        const double tol = tolerance(&d);
        printf("weights' gradient, shape %zu: relative error %.3g\n", i, e);
        CHECK(e < tol);
    }
    if (mx_wino_block() == 8 && !(cap && same_as_default(9, 9, cap))) { /* 24 and 40 channels: blocks of 8, not 16 */
        const double e = compare(2, 24, 40, 9, 9, 1, 1, 1, 0);
        CHECK(e < 1.5e-5);
    }
    /* The wide layers' kernels: more channels than the per-tile kernels
     * take, a batch of several chunks (16 channels in and out: at most
     * 3,640 tiles a chunk, so 3,700 go as two of 1,850), every tile, clipped
     * edges, channels in and out that differ; forward with every epilogue,
     * input gradient, weights' and bias's gradients; on weights transformed
     * beforehand and by blocks of output channels (512 -> 256 at 4x4 goes
     * by 128; a second pass by the smallest blocks). */
    const size_t gemm_shapes[][5] = {{3, 512, 256, 4, 4}, {3, 256, 128, 7, 7}, {2, 64, 320, 6, 5},
                                        {925, 16, 16, 8, 8}, {2, 256, 128, 14, 14}};
    for (int pass = 0; pass < 2; pass++) {
        mx_wino_gemm_block_floats_set(pass ? 1 : 0);
        for (size_t i = 0; i < sizeof gemm_shapes / sizeof gemm_shapes[0]; i++) {
            const size_t *s = gemm_shapes[i];
            if (s[1] % mx_wino_block() || s[2] % mx_wino_block()) continue;
            if (cap && same_as_default(s[3], s[4], cap)) continue;
            mx_conv2d_desc d = {.in_channels = s[1], .out_channels = s[2], .in_h = s[3], .in_w = s[4], .kernel_h = 3,
                                .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
            CHECK(mx_conv2d_setup(&d) == MX_OK);
            const double tol = tolerance(&d);
            for (int variant = 0; variant < 8; variant++) {
                const int with_bias = variant & 1, with_addend = variant & 2, relu = (variant & 3) == 3 || variant == 1;
                const double e = compare(s[0], s[1], s[2], s[3], s[4], with_bias, with_addend, relu, 1 + variant / 4);
                if (!(e < tol)) fprintf(stderr, "wide, shape %zu variant %d: relative error %.3g\n", i, variant, e);
                CHECK(e < tol);
            }
            const double edx = compare_dx(s[0], s[1], s[2], s[3], s[4], 1), edw = compare_dw(s[0], s[1], s[2], s[3], s[4], 1);
            const double bdx = compare_dx(s[0], s[1], s[2], s[3], s[4], 2);
            printf("wide, shape %zu, blocks of %zu output channels: input gradient %.3g (by blocks %.3g), weights' "
                   "gradient %.3g\n", i, mx_wino_gemm_block_channels(&d), edx, bdx, edw);
            CHECK(edx < tol && bdx < tol);
            CHECK(edw < tol);
        }
    }
    mx_wino_gemm_block_floats_set(0);
}

int main(void)
{
    mx_conv2d_desc no = {.in_channels = 16, .out_channels = 16, .in_h = 8, .in_w = 8, .kernel_h = 3, .kernel_w = 3,
                         .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
    CHECK(!mx_wino_suits(&no)); /* stride 2 */
    no.stride_h = no.stride_w = 1;
    no.in_channels = 4;
    CHECK(!mx_wino_suits(&no)); /* channels not a multiple of the block */
    no.in_channels = 16, no.pad_h = no.pad_w = 0;
    CHECK(!mx_wino_suits(&no));
    no.pad_h = no.pad_w = 1;
    CHECK(mx_wino_suits(&no));
    no.in_h = no.in_w = 6; /* a 6x6 output: as many points either way, F2 */
    CHECK(mx_conv2d_setup(&no) == MX_OK && mx_wino_tile(&no) == 2 && mx_wino_weight_floats(&no) == 16 * 16 * 16);
    no.in_h = no.in_w = 8;
    CHECK(mx_conv2d_setup(&no) == MX_OK && mx_wino_tile(&no) == 4 && mx_wino_weight_floats(&no) == 36 * 16 * 16);
    /* F5 on AVX2 builds where its 7x7 tiles take at most four fifths of the
     * points, two or more a side: 14x14 (9 x 49 against F4's 16 x 36),
     * 10x10, 30x30; not 28x28 (a tie), 20x20 (784 against 900), 7x7, or 5x5
     * (one tile: F2's 144 points). */
    const int f5 = mx_wino_block() == 8;
    const size_t sides[] = {14, 10, 30, 28, 20, 7, 5};
    const int want_f5[] = {5, 5, 5, 4, 4, 4, 2}, want_f4[] = {4, 4, 4, 4, 4, 4, 2};
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        no.in_h = no.in_w = sides[i];
        const int want = f5 ? want_f5[i] : want_f4[i];
        CHECK(mx_conv2d_setup(&no) == MX_OK && mx_wino_tile(&no) == want);
        CHECK(mx_wino_weight_floats(&no) == (size_t)(want + 2) * (size_t)(want + 2) * 16 * 16);
    }
    no.in_h = no.in_w = 14;
    CHECK(mx_conv2d_setup(&no) == MX_OK);
    mx_wino_largest_tile_set(4);
    CHECK(mx_wino_tile(&no) == 4);
    mx_wino_largest_tile_set(5);
    CHECK(mx_wino_tile(&no) == 5);
    mx_wino_largest_tile_set(0);
    CHECK(mx_wino_tile(&no) == (f5 ? 5 : 4));
    if (!mx_wino_available()) {
        CHECK(mx_wino_block() == 0);
        printf("no AVX-512 or AVX2 in this build: the Winograd kernel is absent, callers use the direct convolution\n");
        CHECK_DONE();
    }
    CHECK(mx_wino_block() == 8 || mx_wino_block() == 16);
    /* The per-tile kernels take the layers of up to MX_WINO_TILES_BEST_CHANNELS
     * (128 on AVX2, 64 on AVX-512), the GEMM ones the wider. */
    mx_conv2d_desc best = {.in_channels = MX_WINO_TILES_BEST_CHANNELS, .out_channels = MX_WINO_TILES_BEST_CHANNELS};
    CHECK(mx_wino_tiles_best(&best));
    best.out_channels *= 2;
    CHECK(!mx_wino_tiles_best(&best));
    CHECK(MX_WINO_TILES_BEST_CHANNELS == (mx_wino_block() == 8 ? 128 : 64));
    printf("Winograd kernel on blocks of %zu channels\n", mx_wino_block());
    /* The build's tiles, then the other largest tile (F4 where F5 is the
     * default, F5 where it is not) on the shapes whose tile it changes, so
     * that both cover them. */
    const int largest = mx_wino_block() == 8 ? 5 : 4;
    const int other = largest == 5 ? 4 : 5;
    printf("Winograd kernels with tiles up to F%d\n", largest);
    check_kernels(0);
    mx_wino_largest_tile_set(other);
    printf("Winograd kernels with tiles up to F%d, on the shapes it changes\n", other);
    check_kernels(other);
    mx_wino_largest_tile_set(0);
    CHECK_DONE();
}
