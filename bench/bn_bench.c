/* Batch-norm micro-benchmark: the cpu backend's blocked batch norm, training
 * forward (sums, then the output with its ReLU, in bfloat16 for the next
 * convolution) and backward (sums, then the input gradient in bfloat16), on
 * bfloat16 NHWC activations as bf16 training holds them (x bfloat16, dy
 * bfloat16 from the convolution after it). Prints milliseconds a call
 * (best of the rounds) and the GB/s of the bytes the passes must move
 * (forward: x twice and y once; backward: x and dy twice, dx once).
 *   bn_bench [THREADS=2] [REPS=50] [N C H ...]: shapes as triples after the
 *   count (default: resnet20's 128x16x32, 128x32x16, 128x64x8 and resnet50's
 *   32x64x56, 32x256x56, 32x512x28), W = H. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/threads.h"
#include "nn/cnn_cpu.h"

static void run(size_t n, size_t C, size_t H, int reps)
{
    const size_t hw = H * H, count = n * C * hw;
    const size_t layout = 16 | CNN_NHWC | CNN_X_BF16;
    uint16_t *x16 = aligned_alloc(64, count * 2), *y16 = aligned_alloc(64, count * 2), *dy16 = aligned_alloc(64, count * 2);
    float *dx = aligned_alloc(64, count * 4);
    float *gamma = malloc(C * 4), *beta = malloc(C * 4), *rm = malloc(C * 4), *rv = malloc(C * 4), *sm = malloc(C * 4),
          *si = malloc(C * 4), *aff = malloc(3 * C * 4), *dg = malloc(C * 4), *db = malloc(C * 4);
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    for (size_t i = 0; i < count; i++) {
        float f = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
        uint32_t u;
        memcpy(&u, &f, 4);
        x16[i] = (uint16_t)(u >> 16), dy16[i] = (uint16_t)((u >> 16) ^ 0x0100);
    }
    for (size_t c = 0; c < C; c++) gamma[c] = 1, beta[c] = 0.1f, rm[c] = 0, rv[c] = 1;
    double best_f = 1e9, best_b = 1e9;
    for (int round = 0; round < 3; round++) {
        double t0 = omp_get_wtime();
        for (int r = 0; r < reps; r++)
            cnn_cpu_bn_forward_train_blocked_synced(n, C, hw, layout, (const float *)(void *)x16, gamma, beta, 0.1f,
                                                    1e-5f, rm, rv, NULL, sm, si, 1, partial, aff, y16, NULL, NULL);
        double t1 = omp_get_wtime();
        for (int r = 0; r < reps; r++)
            cnn_cpu_bn_backward_blocked_synced(n, C, hw, layout | CNN_DY_BF16, (const float *)(void *)x16, NULL, aff,
                                               (const float *)(void *)dy16, gamma, sm, si, dx, 1, dg, db, partial, NULL,
                                               0);
        double t2 = omp_get_wtime();
        if ((t1 - t0) / reps < best_f) best_f = (t1 - t0) / reps;
        if ((t2 - t1) / reps < best_b) best_b = (t2 - t1) / reps;
    }
    printf("%4zu x %4zu x %3zu x %3zu: forward %7.3f ms (%5.1f GB/s), backward %7.3f ms (%5.1f GB/s)\n", n, C, H, H,
           best_f * 1e3, 3.0 * (double)count * 2 / best_f / 1e9, best_b * 1e3, 5.0 * (double)count * 2 / best_b / 1e9);
    free(x16), free(y16), free(dy16), free(dx), free(gamma), free(beta), free(rm), free(rv), free(sm), free(si);
    free(aff), free(dg), free(db), free(partial);
}

int main(int argc, char **argv)
{
    const int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 50;
    if (threads < 1 || reps < 1 || (argc > 3 && (argc - 3) % 3)) {
        fprintf(stderr, "usage: bn_bench [THREADS] [REPS] [N C H ...] (C a multiple of 16)\n");
        return 2;
    }
    mx_set_threads(threads);
    static const size_t shapes[][3] = {{128, 16, 32}, {128, 32, 16}, {128, 64, 8}, {32, 64, 56}, {32, 256, 56}, {32, 512, 28}};
    if (argc > 3) {
        for (int a = 3; a + 2 < argc; a += 3) {
            const long n = atol(argv[a]), C = atol(argv[a + 1]), H = atol(argv[a + 2]);
            if (n < 1 || C < 16 || C % 16 || H < 1 || C > 4096 || H > 1024) {
                fprintf(stderr, "bn_bench: N C H out of range (C a multiple of 16)\n");
                return 2;
            }
            run((size_t)n, (size_t)C, (size_t)H, reps);
        }
    } else {
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) run(shapes[k][0], shapes[k][1], shapes[k][2], reps);
    }
    return 0;
}
