/* The cpu backend's own kernels, apart from any model: batch norm (both
 * modes, its backwards, the ReLU's mask), global average pooling and dropout
 * in each activation layout (nChw8c, nChw16c, NHWC by 16 channels) give the
 * same bits, and the NCHW kernels' within RTOL; the bf16 data flow's kernels
 * give their float32 forms' bits; the residual add's fused and masked
 * backwards equal the separate passes. The models built on them are
 * compared in test_cnn_backends. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cnn_test_data.h"
#include "mixreg/rng.h"
#include "mixreg/threads.h"
#include "nn/cnn_cpu.h"

/* The NCHW kernels sum in another order than the blocked ones: every entry
 * within RTOL of theirs, relative to FLOOR times the largest. */
#define RTOL 1e-4
#define FLOOR 1e-2

static void to_layout(size_t block, size_t n, size_t C, size_t hw, const float *nchw, float *out, int back)
{
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < C; c++)
            for (size_t q = 0; q < hw; q++) {
                const size_t i = cnn_index(0, C, hw, s, c, q), j = cnn_index(block, C, hw, s, c, q);
                if (back) out[i] = nchw[j];
                else out[j] = nchw[i];
            }
}

/* What one block's kernels give, mapped back to NCHW. */
typedef struct {
    float *y, *ye, *dx, *dx_masked, *dxe, *gap, *gap_dx, *drop, *drop_dx;
    float mean[48], invstd[48], rm[48], rv[48], dg[48], db[48], dge[48], dbe[48];
    uint8_t *mask;
} blocked_results;

/* The blocked kernels (batch norm training with its ReLU, eval, both
 * backwards, the ReLU's mask from the output and from the input; global
 * average pooling; dropout) in blocks of 8 and 16 channels: channel c's sums
 * run over the same values in the same order whatever the block (its
 * pixels, then the samples), so both give the same bits once mapped back to
 * NCHW; the NCHW kernels add in another order and agree within RTOL;
 * dropout takes the reference's draws, bit for bit. */
static void run_blocked(size_t block, size_t n, size_t C, size_t hw, const float *x, const float *dy,
                        const float *gamma, const float *beta, blocked_results *r)
{
    const size_t count = n * C * hw;
    float *xb = malloc(count * sizeof *xb), *dyb = malloc(count * sizeof *dyb), *out = malloc(count * sizeof *out);
    float *yb = malloc(count * sizeof *yb), affine[3 * 48], gy[3 * 48];
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    to_layout(block, n, C, hw, x, xb, 0);
    to_layout(block, n, C, hw, dy, dyb, 0);
    for (size_t c = 0; c < C; c++) r->rm[c] = 0.1f * (float)c, r->rv[c] = 1.0f + 0.05f * (float)c;
    cnn_cpu_bn_forward_train_blocked(n, C, hw, block, xb, gamma, beta, 0.1f, 1e-5f, r->rm, r->rv, yb, r->mean,
                                     r->invstd, 1, partial, affine, NULL);
    to_layout(block, n, C, hw, yb, r->y, 1);
    cnn_cpu_bn_backward_blocked(n, C, hw, block, xb, yb, NULL, dyb, gamma, r->mean, r->invstd, out, 0, r->dg, r->db,
                                partial);
    to_layout(block, n, C, hw, out, r->dx, 1);
    cnn_cpu_bn_backward_blocked(n, C, hw, block, xb, NULL, affine, dyb, gamma, r->mean, r->invstd, out, 0, NULL, NULL,
                                partial);
    to_layout(block, n, C, hw, out, r->dx_masked, 1);
    cnn_cpu_bn_forward_eval_blocked(n, C, hw, block, xb, gamma, beta, r->rm, r->rv, 1e-5f, out, 1, partial, NULL, NULL, NULL);
    to_layout(block, n, C, hw, out, r->ye, 1);
    cnn_cpu_bn_backward_eval_blocked(n, C, hw, block, xb, NULL, NULL, dyb, gamma, r->rm, r->rv, 1e-5f, out, 0, r->dge,
                                     r->dbe, partial);
    to_layout(block, n, C, hw, out, r->dxe, 1);
    cnn_cpu_gap_forward_blocked(n, C, hw, block, xb, r->gap);
    for (size_t i = 0; i < n * C; i++) gy[i] = dy[i];
    cnn_cpu_gap_backward_blocked(n, C, hw, block, gy, out);
    to_layout(block, n, C, hw, out, r->gap_dx, 1);
    mx_rng rng;
    mx_rng_init(&rng, 5, MX_STREAM_DROPOUT);
    cnn_cpu_dropout_forward_blocked(n, C, hw, block, 0.3f, &rng, xb, out, r->mask);
    to_layout(block, n, C, hw, out, r->drop, 1);
    cnn_cpu_dropout_backward_blocked(n, C, hw, block, 0.3f, r->mask, dyb, out);
    to_layout(block, n, C, hw, out, r->drop_dx, 1);
    free(xb), free(dyb), free(out), free(yb), free(partial);
}

static void test_blocked_kernels(void)
{
    /* 190 pixels: NHWC walks them in tiles of 10 rows (cnn_cpu_blocked.c NHWC_TILE_FLOATS). */
    enum { n = 3, C = 48, hw = 190, count = n * C * hw };
    mx_rng rng;
    mx_rng_init(&rng, 91, 0);
    float *x = malloc(count * sizeof *x), *dy = malloc(count * sizeof *dy), gamma[C], beta[C];
    random_fill(&rng, x, count);
    random_fill(&rng, dy, count);
    for (size_t c = 0; c < C; c++)
        gamma[c] = 1.0f + 0.3f * (float)mx_rng_normal(&rng), beta[c] = 0.3f * (float)mx_rng_normal(&rng);
    /* nChw8c, nChw16c and NHWC walked by 16 channels. */
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    blocked_results r[3];
    for (int b = 0; b < 3; b++) {
        float **bufs[] = {&r[b].y, &r[b].ye, &r[b].dx, &r[b].dx_masked, &r[b].dxe, &r[b].gap_dx, &r[b].drop,
                          &r[b].drop_dx};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) *bufs[i] = malloc(count * sizeof(float));
        r[b].gap = malloc(n * C * sizeof(float));
        r[b].mask = malloc(count);
        run_blocked(layouts[b], n, C, hw, x, dy, gamma, beta, &r[b]);
    }
    /* Every layout: the same bits. */
    const size_t bytes = count * sizeof(float);
    for (int b = 1; b < 3; b++) {
        CHECK(memcmp(r[0].y, r[b].y, bytes) == 0 && memcmp(r[0].ye, r[b].ye, bytes) == 0);
        CHECK(memcmp(r[0].dx, r[b].dx, bytes) == 0 && memcmp(r[0].dxe, r[b].dxe, bytes) == 0);
        CHECK(memcmp(r[b].dx_masked, r[b].dx, bytes) == 0);
        CHECK(memcmp(r[0].mean, r[b].mean, sizeof r[0].mean) == 0 &&
              memcmp(r[0].invstd, r[b].invstd, sizeof r[0].invstd) == 0);
        CHECK(memcmp(r[0].rm, r[b].rm, sizeof r[0].rm) == 0 && memcmp(r[0].rv, r[b].rv, sizeof r[0].rv) == 0);
        CHECK(memcmp(r[0].dg, r[b].dg, sizeof r[0].dg) == 0 && memcmp(r[0].db, r[b].db, sizeof r[0].db) == 0);
        CHECK(memcmp(r[0].dge, r[b].dge, sizeof r[0].dge) == 0 && memcmp(r[0].dbe, r[b].dbe, sizeof r[0].dbe) == 0);
        CHECK(memcmp(r[0].gap, r[b].gap, n * C * sizeof(float)) == 0 && memcmp(r[0].gap_dx, r[b].gap_dx, bytes) == 0);
        CHECK(memcmp(r[0].drop, r[b].drop, bytes) == 0 && memcmp(r[0].drop_dx, r[b].drop_dx, bytes) == 0);
        CHECK(memcmp(r[0].mask, r[b].mask, count) == 0);
    }
    CHECK(memcmp(r[0].dx_masked, r[0].dx, bytes) == 0);
    /* The NCHW kernels and the reference's dropout. */
    float *y = malloc(bytes), *out = malloc(bytes), mean[C], invstd[C], rm[C], rv[C], dg[C], db[C], gap[n * C];
    uint8_t *mask = malloc(count);
    for (size_t c = 0; c < C; c++) rm[c] = 0.1f * (float)c, rv[c] = 1.0f + 0.05f * (float)c;
    cnn_cpu_bn_forward_train(n, C, hw, x, gamma, beta, 0.1f, 1e-5f, rm, rv, y, mean, invstd, 1, NULL);
    double worst = check_rel_floor(r[0].y, y, count, FLOOR);
    check_note_worst(&worst, check_rel_floor(r[0].rv, rv, C, FLOOR));
    cnn_cpu_bn_backward(n, C, hw, x, y, dy, gamma, mean, invstd, out, dg, db);
    check_note_worst(&worst, check_rel_floor(r[0].dx, out, count, FLOOR));
    check_note_worst(&worst, check_rel_floor(r[0].dg, dg, C, FLOOR));
    check_note_worst(&worst, check_rel_floor(r[0].db, db, C, FLOOR));
    cnn_cpu_bn_forward_eval(n, C, hw, x, gamma, beta, rm, rv, 1e-5f, out, 1, NULL);
    check_note_worst(&worst, check_rel_floor(r[0].ye, out, count, FLOOR));
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < C; c++) {
            double sum = 0;
            for (size_t q = 0; q < hw; q++) sum += x[(s * C + c) * hw + q];
            gap[s * C + c] = (float)(sum / hw);
        }
    check_note_worst(&worst, check_rel_floor(r[0].gap, gap, n * C, FLOOR));
    mx_rng drop;
    mx_rng_init(&drop, 5, MX_STREAM_DROPOUT);
    mx_dropout_forward(count, 0.3f, &drop, x, out, mask);
    CHECK(memcmp(out, r[0].drop, bytes) == 0 && memcmp(mask, r[0].mask, count) == 0);
    CHECK(worst <= RTOL);
    size_t zeroed = 0;
    for (size_t i = 0; i < count; i++) zeroed += r[0].y[i] == 0.0f;
    CHECK(zeroed > count / 4 && zeroed < 3 * count / 4);
    printf("  nChw8c, nChw16c and NHWC: the same bits (batch norm both modes, its backwards, pooling, dropout); "
           "%.1e from the NCHW kernels\n", worst);
    for (int b = 0; b < 3; b++) {
        free(r[b].y), free(r[b].ye), free(r[b].dx), free(r[b].dx_masked), free(r[b].dxe), free(r[b].gap);
        free(r[b].gap_dx), free(r[b].drop), free(r[b].drop_dx), free(r[b].mask);
    }
    free(x), free(dy), free(y), free(out), free(mask);
}

/* The bf16 data flow's kernels (cnn_cpu_exec.c hands bfloat16 on between
 * layers) against their float32 forms, bit for bit: batch norm's output
 * written in bfloat16 (alone or beside float32) is the float32 output rounded
 * to nearest even; its backward with the ReLU's mask from the input and the
 * forward's constants equals the one masking by the output; its input
 * gradient in bfloat16 is the float32 one rounded; the residual add's
 * bfloat16 copy is its output rounded. */
static uint16_t rne_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static int rounds_to(const float *f32, const uint16_t *b16, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (b16[i] != rne_bf16(f32[i])) return 0;
    return 1;
}

static float widen_bf16(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Batch norm reading its input and its dy in bfloat16 (CNN_X_BF16,
 * CNN_DY_BF16: a convolution wrote them so) gives the float32 kernels' bits
 * on the values they hold, in both layouts of block 16: forward (training and
 * eval), backward (the ReLU's mask from the output and from the input) and
 * the recomputed output. */
static void test_bf16_operands(size_t n, size_t C, size_t hw, const float *x, const float *dy, const float *gamma,
                               const float *beta, double *partial)
{
    const size_t count = n * C * hw;
    uint16_t *x16 = malloc(count * sizeof *x16), *g16 = malloc(count * sizeof *g16);
    float *xr = malloc(count * sizeof *xr), *gr = malloc(count * sizeof *gr), *y[2], *dx[2], *ya[2];
    for (int k = 0; k < 2; k++) {
        y[k] = malloc(count * sizeof *y[k]), dx[k] = malloc(count * sizeof *dx[k]);
        ya[k] = malloc(count * sizeof *ya[k]);
    }
    for (size_t i = 0; i < count; i++) {
        x16[i] = rne_bf16(x[i]), xr[i] = widen_bf16(x16[i]);
        g16[i] = rne_bf16(dy[i]), gr[i] = widen_bf16(g16[i]);
    }
    const float *xb = (const float *)(const void *)x16, *gb = (const float *)(const void *)g16;
    static const size_t layouts[2] = {16, 16 | CNN_NHWC};
    for (size_t l = 0; l < 2; l++) {
        const size_t L = layouts[l], LB = L | CNN_X_BF16 | CNN_DY_BF16;
        float rm[2][32], rv[2][32], sm[2][32], si[2][32], affine[2][96], dg[2][32], db[2][32];
        for (int k = 0; k < 2; k++)
            for (size_t c = 0; c < C; c++) rm[k][c] = 0.1f * (float)c, rv[k][c] = 1.0f + 0.01f * (float)c;
        cnn_cpu_bn_forward_train_blocked(n, C, hw, L, xr, gamma, beta, 0.1f, 1e-5f, rm[0], rv[0], y[0], sm[0], si[0], 1,
                                         partial, affine[0], NULL);
        cnn_cpu_bn_forward_train_blocked(n, C, hw, LB, xb, gamma, beta, 0.1f, 1e-5f, rm[1], rv[1], y[1], sm[1], si[1],
                                         1, partial, affine[1], NULL);
        CHECK(memcmp(y[0], y[1], count * sizeof *y[0]) == 0);
        CHECK(memcmp(rm[0], rm[1], sizeof rm[0]) == 0 && memcmp(rv[0], rv[1], sizeof rv[0]) == 0);
        CHECK(memcmp(sm[0], sm[1], sizeof sm[0]) == 0 && memcmp(si[0], si[1], sizeof si[0]) == 0);
        /* The recomputed output, and the eval forward. */
        cnn_cpu_bn_apply(n, C, hw, LB, xb, affine[1], 1, ya[1]);
        CHECK(memcmp(y[0], ya[1], count * sizeof *y[0]) == 0);
        cnn_cpu_bn_forward_eval_blocked(n, C, hw, L, xr, gamma, beta, rm[0], rv[0], 1e-5f, ya[0], 0, partial, NULL,
                                        NULL, NULL);
        cnn_cpu_bn_forward_eval_blocked(n, C, hw, LB, xb, gamma, beta, rm[0], rv[0], 1e-5f, ya[1], 0, partial, NULL,
                                        NULL, NULL);
        CHECK(memcmp(ya[0], ya[1], count * sizeof *ya[0]) == 0);
        /* Backward, masked by the output, then by the input and the constants. */
        for (int from_input = 0; from_input < 2; from_input++) {
            const float *mask = from_input ? NULL : y[0], *rk = from_input ? affine[0] : NULL;
            cnn_cpu_bn_backward_blocked(n, C, hw, L, xr, mask, rk, gr, gamma, sm[0], si[0], dx[0], 0, dg[0], db[0],
                                        partial);
            cnn_cpu_bn_backward_blocked(n, C, hw, LB, xb, mask, rk, gb, gamma, sm[0], si[0], dx[1], 0, dg[1], db[1],
                                        partial);
            CHECK(memcmp(dx[0], dx[1], count * sizeof *dx[0]) == 0);
            CHECK(memcmp(dg[0], dg[1], C * sizeof dg[0][0]) == 0 && memcmp(db[0], db[1], C * sizeof db[0][0]) == 0);
        }
        /* Only x in bfloat16, then only dy (eval-mode backward). */
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, L, xr, NULL, NULL, dy, gamma, rm[0], rv[0], 1e-5f, dx[0], 0, dg[0],
                                         db[0], partial);
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, L | CNN_X_BF16, xb, NULL, NULL, dy, gamma, rm[0], rv[0], 1e-5f,
                                         dx[1], 0, dg[1], db[1], partial);
        CHECK(memcmp(dx[0], dx[1], count * sizeof *dx[0]) == 0 && memcmp(dg[0], dg[1], C * sizeof dg[0][0]) == 0);
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, L, x, NULL, NULL, gr, gamma, rm[0], rv[0], 1e-5f, dx[0], 0, dg[0],
                                         db[0], partial);
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, L | CNN_DY_BF16, x, NULL, NULL, gb, gamma, rm[0], rv[0], 1e-5f,
                                         dx[1], 0, dg[1], db[1], partial);
        CHECK(memcmp(dx[0], dx[1], count * sizeof *dx[0]) == 0 && memcmp(db[0], db[1], C * sizeof db[0][0]) == 0);
    }
    printf("bf16 kernels: batch norm reading x and dy in bfloat16: the float32 kernels' bits on the values they hold, "
           "nChw16c and NHWC\n");
    free(x16), free(g16), free(xr), free(gr);
    for (int k = 0; k < 2; k++) free(y[k]), free(dx[k]), free(ya[k]);
}

/* A batch norm writing the residual add after it (the addend added before
 * the add's ReLU, cnn_cpu_exec.c bn_add_fused): the bits of the batch norm's
 * output added by cnn_cpu_add_forward, training and eval, in every blocked
 * layout, with the add's bfloat16 copy. */
static void test_bn_add_fused(void)
{
    const size_t n = 3, C = 32, hw = 40, count = n * C * hw;
    mx_rng rng;
    mx_rng_init(&rng, 78, 0);
    float *x = malloc(count * sizeof *x), *other = malloc(count * sizeof *other), *y = malloc(count * sizeof *y);
    float *two = malloc(count * sizeof *two), *one = malloc(count * sizeof *one);
    uint16_t *c16 = malloc(count * sizeof *c16), *bits[2] = {malloc(count / 16 * 2), malloc(count / 16 * 2)};
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    float gamma[32], beta[32], rm[2][32], rv[2][32], sm[32], si[32];
    random_fill(&rng, x, count);
    random_fill(&rng, other, count);
    for (size_t c = 0; c < C; c++) gamma[c] = 1.0f + 0.2f * (float)c / 32, beta[c] = 0.1f * (float)c / 32 - 0.05f;
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    size_t zeroed = 0;
    for (size_t l = 0; l < 3; l++)
        for (int eval = 0; eval < 2; eval++) {
            const size_t L = layouts[l];
            const cnn_bn_add add = {other, L == 16 ? bits[0] : NULL};
            for (int k = 0; k < 2; k++)
                for (size_t c = 0; c < C; c++) rm[k][c] = 0.0f, rv[k][c] = 1.0f;
            if (eval) {
                cnn_cpu_bn_forward_eval_blocked(n, C, hw, L, x, gamma, beta, rm[0], rv[0], 1e-5f, y, 0, partial, NULL,
                                                NULL, NULL);
                cnn_cpu_bn_forward_eval_blocked(n, C, hw, L, x, gamma, beta, rm[1], rv[1], 1e-5f, one, 1, partial,
                                                NULL, L == 16 ? c16 : NULL, &add);
            } else {
                cnn_cpu_bn_forward_train_blocked_synced(n, C, hw, L, x, gamma, beta, 0.1f, 1e-5f, rm[0], rv[0], y, sm, si,
                                                        0, partial, NULL, NULL, NULL, NULL);
                cnn_cpu_bn_forward_train_blocked_synced(n, C, hw, L, x, gamma, beta, 0.1f, 1e-5f, rm[1], rv[1], one, sm,
                                                        si, 1, partial, NULL, L == 16 ? c16 : NULL, NULL, &add);
                CHECK(memcmp(rm[0], rm[1], sizeof rm[0]) == 0 && memcmp(rv[0], rv[1], sizeof rv[0]) == 0);
            }
            cnn_cpu_add_forward_bf16_copy(count, other, y, two, 1, NULL, bits[1]);
            CHECK(memcmp(one, two, count * sizeof *one) == 0);
            if (L == 16) CHECK(rounds_to(two, c16, count) && memcmp(bits[0], bits[1], count / 16 * 2) == 0);
            for (size_t i = 0; i < count; i++) zeroed += two[i] == 0.0f;
        }
    CHECK(zeroed > count && zeroed < 5 * count); /* the ReLU mattered (6 runs) */
    /* The add's backward from its ReLU's mask as bits (the last output's): the
     * bits of the one masking by the output, fresh and added to. */
    float *d[4];
    for (int k = 0; k < 4; k++) d[k] = malloc(count * sizeof *d[k]);
    memcpy(d[0], x, count * sizeof *x), memcpy(d[2], x, count * sizeof *x);
    cnn_cpu_add_backward(count, two, other, NULL, d[0], 1, d[1], 0);
    cnn_cpu_add_backward_bits(count, bits[1], other, NULL, d[2], 1, d[3], 0);
    CHECK(memcmp(d[0], d[2], count * sizeof *x) == 0 && memcmp(d[1], d[3], count * sizeof *x) == 0);
    /* A gradient the executor left to add into dy (dy_extra): the bits of
     * adding it first, also where it is the buffer of a gradient written
     * fresh; by the output and by the bits. */
    float *sum = malloc(count * sizeof *sum), *want = malloc(count * sizeof *want);
    for (int by_bits = 0; by_bits < 2; by_bits++) {
        memcpy(sum, other, count * sizeof *sum);
        cnn_cpu_grad_pass(count, sum, x, 1);
        if (by_bits) cnn_cpu_add_backward_bits(count, bits[1], sum, NULL, want, 0, NULL, 0);
        else cnn_cpu_add_backward(count, two, sum, NULL, want, 0, NULL, 0);
        memcpy(d[0], x, count * sizeof *x);
        memcpy(d[1], x, count * sizeof *x);
        memcpy(d[2], y, count * sizeof *y), memcpy(d[3], y, count * sizeof *y);
        if (by_bits) { /* d[0] aliases the extra; d[2] is added to */
            cnn_cpu_add_backward_bits(count, bits[1], other, d[0], d[0], 0, d[2], 1);
            cnn_cpu_add_backward_bits(count, bits[1], other, d[1], d[3], 0, NULL, 0);
        } else {
            cnn_cpu_add_backward(count, two, other, d[0], d[0], 0, d[2], 1);
            cnn_cpu_add_backward(count, two, other, d[1], d[3], 0, NULL, 0);
        }
        cnn_cpu_grad_pass(count, sum, y, 0);
        cnn_cpu_grad_pass(count, sum, want, 1);
        CHECK(memcmp(d[0], want, count * sizeof *x) == 0 && memcmp(d[3], want, count * sizeof *x) == 0);
        CHECK(memcmp(d[2], sum, count * sizeof *x) == 0);
    }
    free(sum), free(want);
    printf("batch norm writing the residual add after it: the two nodes' bits (nChw8c, nChw16c, NHWC; training, eval), "
           "the ReLU's mask as bits\n");
    for (int k = 0; k < 4; k++) free(d[k]);
    free(x), free(other), free(y), free(two), free(one), free(c16), free(bits[0]), free(bits[1]), free(partial);
}

/* The residual add's masked backward with a gradient to add (dy_extra)
 * against the scalar formula d = (or +=) (dy + extra) where y > 0 (y NaN
 * passes), on a count that is no multiple of the kernel's 16-element blocks:
 * written fresh, added to, and with the extra in the buffer written. */
static void test_add_backward_extra(void)
{
    const size_t count = 16 * 5 + 7;
    float y[16 * 5 + 7], dy[16 * 5 + 7], extra[16 * 5 + 7], d[16 * 5 + 7], want[16 * 5 + 7];
    mx_rng rng;
    mx_rng_init(&rng, 21, MX_STREAM_INIT);
    for (size_t i = 0; i < count; i++) {
        y[i] = (float)mx_rng_uniform(&rng) - 0.5f;
        dy[i] = (float)mx_rng_uniform(&rng) - 0.5f;
        extra[i] = (float)mx_rng_uniform(&rng) - 0.5f;
    }
    y[3] = NAN, y[count - 1] = 0.0f, y[count - 2] = 1.0f;
    size_t masked = 0;
    for (int acc = 0; acc < 2; acc++)
        for (int alias = 0; alias < 2; alias++) {
            if (acc && alias) continue; /* the executor never adds into the extra's own buffer */
            for (size_t i = 0; i < count; i++) {
                const float base = acc ? 0.25f * (float)i : 0.0f, g = y[i] <= 0.0f ? 0.0f : dy[i] + extra[i];
                want[i] = acc ? base + g : g;
                d[i] = alias ? extra[i] : base;
                masked += !acc && !alias && y[i] <= 0.0f;
            }
            cnn_cpu_add_backward(count, y, dy, alias ? d : extra, d, acc, NULL, 0);
            CHECK(memcmp(d, want, sizeof want) == 0);
        }
    CHECK(masked > 10 && masked < count - 10); /* both sides of the mask */
    printf("the residual add's masked backward with a gradient to add: the scalar formula's bits (%zu elements)\n",
           count);
}

/* The residual add's backward taking the batch norm's backward sums
 * (cnn_cpu_add_bn_sums, one pass): the masked gradient and the batch norm's backward
 * (dx, dgamma, dbeta) are the bits of the add's pass followed by the batch
 * norm's own sums; masks by bits and by the output, with a gradient to add
 * (also aliasing the output), x float32 and bfloat16, nChw16c and NHWC. */
static void test_add_bn_sums(void)
{
    const size_t n = 3, C = 48, hw = 37, count = n * C * hw;
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    mx_rng rng;
    mx_rng_init(&rng, 79, 0);
    float *x = malloc(count * sizeof *x), *dy = malloc(count * sizeof *dy), *extra = malloc(count * sizeof *extra);
    float *y = malloc(count * sizeof *y), *g[2] = {malloc(count * sizeof(float)), malloc(count * sizeof(float))};
    float *dx[2] = {malloc(count * sizeof(float)), malloc(count * sizeof(float))};
    uint16_t *x16 = malloc(count * sizeof *x16), *bits = malloc(count / 16 * sizeof *bits);
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    float gamma[48], sm[48], si[48], dg[2][48], db[2][48];
    random_fill(&rng, x, count), random_fill(&rng, dy, count), random_fill(&rng, extra, count), random_fill(&rng, y, count);
    for (size_t i = 0; i < count; i++) x16[i] = rne_bf16(x[i]);
    cnn_cpu_add_forward_bf16_copy(count, y, dy, y, 1, NULL, bits); /* y: an add's output, the bits its mask */
    for (size_t c = 0; c < C; c++) gamma[c] = 1.0f + 0.01f * (float)c, sm[c] = 0.02f * (float)c, si[c] = 1.5f;
    size_t cases = 0;
    for (size_t l = 0; l < 3; l++)
        for (int mask = 0; mask < 2; mask++)
            for (int ex = 0; ex < 3; ex++)
                for (int half = 0; half < 2 - (layouts[l] == 8); half++) { /* nChw8c: float32 only (AVX2) */
                    const size_t L = layouts[l] | (half ? CNN_X_BF16 : 0);
                    const void *xs = half ? (const void *)x16 : (const void *)x;
                    const uint16_t *b = mask ? bits : NULL;
                    const float *yv = mask ? NULL : y;
                    /* ex 2: the gradient to add is the output's own buffer */
                    if (ex == 2) memcpy(g[1], extra, count * sizeof *extra);
                    const float *e = ex == 0 ? NULL : ex == 1 ? extra : g[1];
                    if (b) cnn_cpu_add_backward_bits(count, b, dy, ex ? extra : NULL, g[0], 0, NULL, 0);
                    else cnn_cpu_add_backward(count, yv, dy, ex ? extra : NULL, g[0], 0, NULL, 0);
                    cnn_cpu_bn_backward_blocked_synced(n, C, hw, L, xs, NULL, NULL, g[0], gamma, sm, si, dx[0], 0,
                                                       dg[0], db[0], partial, NULL, 0);
                    cnn_cpu_add_bn_sums(n, C, hw, L, b, yv, dy, e, xs, g[1], partial);
                    cnn_cpu_bn_backward_blocked_synced(n, C, hw, L, xs, NULL, NULL, g[1], gamma, sm, si, dx[1], 0,
                                                       dg[1], db[1], partial, NULL, 1);
                    CHECK(memcmp(g[0], g[1], count * sizeof(float)) == 0);
                    CHECK(memcmp(dx[0], dx[1], count * sizeof(float)) == 0);
                    CHECK(memcmp(dg[0], dg[1], sizeof dg[0]) == 0 && memcmp(db[0], db[1], sizeof db[0]) == 0);
                    cases++;
                }
    printf("add backward with batch norm sums in one pass: the bits of the two passes in %zu cases "
           "(nChw8c, nChw16c, NHWC)\n", cases);
    free(x), free(dy), free(extra), free(y), free(g[0]), free(g[1]), free(dx[0]), free(dx[1]), free(x16), free(bits);
    free(partial);
}

static void test_bf16_kernels(void)
{
    const size_t n = 3, C = 32, hw = 20, count = n * C * hw;
    mx_rng rng;
    mx_rng_init(&rng, 77, 0);
    float *x = malloc(count * sizeof *x), *y = malloc(count * sizeof *y), *y2 = malloc(count * sizeof *y2);
    float *dy = malloc(count * sizeof *dy), *dx = malloc(count * sizeof *dx), *dx2 = malloc(count * sizeof *dx2);
    uint16_t *y16 = malloc(count * sizeof *y16), *b16 = malloc(count * sizeof *b16);
    float gamma[32], beta[32], rm[2][32], rv[2][32], sm[32], si[32], affine[3 * 32], dg[2][32], db[2][32];
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    random_fill(&rng, x, count);
    random_fill(&rng, dy, count);
    for (size_t c = 0; c < C; c++) {
        gamma[c] = 1.0f + 0.3f * (float)mx_rng_normal(&rng), beta[c] = 0.3f * (float)mx_rng_normal(&rng);
        rm[0][c] = rm[1][c] = 0.0f, rv[0][c] = rv[1][c] = 1.0f;
    }
    /* Forward: float32, then bfloat16 alone, then both. */
    cnn_cpu_bn_forward_train_blocked(n, C, hw, 16, x, gamma, beta, 0.1f, 1e-5f, rm[0], rv[0], y, sm, si, 1, partial,
                                     affine, NULL);
    cnn_cpu_bn_forward_train_blocked(n, C, hw, 16, x, gamma, beta, 0.1f, 1e-5f, rm[1], rv[1], NULL, sm, si, 1, partial,
                                     NULL, y16);
    CHECK(rounds_to(y, y16, count));
    CHECK(memcmp(rm[0], rm[1], sizeof rm[0]) == 0 && memcmp(rv[0], rv[1], sizeof rv[0]) == 0);
    memset(b16, 0, count * sizeof *b16);
    cnn_cpu_bn_forward_eval_blocked(n, C, hw, 16, x, gamma, beta, rm[0], rv[0], 1e-5f, y2, 1, partial, NULL, b16, NULL);
    CHECK(rounds_to(y2, b16, count));
    /* Backward: the mask from the output y, then from the input and the constants. */
    cnn_cpu_bn_backward_blocked(n, C, hw, 16, x, y, NULL, dy, gamma, sm, si, dx, 0, dg[0], db[0], partial);
    cnn_cpu_bn_backward_blocked(n, C, hw, 16, x, NULL, affine, dy, gamma, sm, si, dx2, 0, dg[1], db[1], partial);
    CHECK(memcmp(dx, dx2, count * sizeof *dx) == 0);
    CHECK(memcmp(dg[0], dg[1], sizeof dg[0]) == 0 && memcmp(db[0], db[1], sizeof db[0]) == 0);
    size_t zeroed = 0; /* the mask must matter for the comparison to mean anything */
    for (size_t i = 0; i < count; i++) zeroed += y[i] == 0.0f;
    CHECK(zeroed > count / 4 && zeroed < 3 * count / 4);
    /* Its input gradient in bfloat16, into dx2's first half. */
    cnn_cpu_bn_backward_blocked(n, C, hw, 16, x, NULL, affine, dy, gamma, sm, si, dx2, 1, NULL, NULL, partial);
    CHECK(rounds_to(dx, (const uint16_t *)(const void *)dx2, count));
    /* The residual add's copy. */
    cnn_cpu_add_forward(count, x, dy, y, 1);
    cnn_cpu_add_forward_bf16_copy(count, x, dy, y2, 1, y16, NULL);
    CHECK(memcmp(y, y2, count * sizeof *y) == 0);
    CHECK(rounds_to(y, y16, count));
    printf("bf16 kernels: batch norm and add outputs, the ReLU mask from the input, the bfloat16 gradient: "
           "the float32 forms' bits (%zu of %zu outputs zeroed by the ReLU)\n", zeroed, count);
    test_bf16_operands(n, C, hw, x, dy, gamma, beta, partial);
    free(x), free(y), free(y2), free(dy), free(dx), free(dx2), free(y16), free(b16), free(partial);
}

int main(void)
{
    mx_set_threads(2);
    printf("blocked kernels\n");
    test_blocked_kernels();
    test_bf16_kernels();
    test_bn_add_fused();
    test_add_backward_extra();
    test_add_bn_sums();
    CHECK_DONE();
}
