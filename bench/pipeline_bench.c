/* Input-pipeline throughput on one core, the figures BENCHMARKS.md compares
 * with torchvision (bench/pipeline.sh runs both):
 * - folder: read + decode JPEG + RandomResizedCrop(side) + flip + normalise
 *   to float, per image, from DIR/train;
 * - cifar: pad-4 crop + flip + normalise of 3x32x32 uint8 images in memory.
 * usage: pipeline_bench DIR [side]   (prints one JSON line per pipeline) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mixreg/augment.h"
#include "mixreg/folder.h"
#include "mixreg/resized_crop.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_folder(const char *dir, size_t side)
{
    mx_folder_index index;
    if (mx_folder_index_load(dir, "train", &index) != MX_OK) {
        fprintf(stderr, "pipeline_bench: %s\n", mx_error_message());
        return 1;
    }
    uint8_t *img = malloc(3 * side * side);
    float *x = malloc(3 * side * side * sizeof(float));
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double start = now();
        for (size_t i = 0; i < index.n; i++) {
            if (mx_folder_load_sample_train(&index, i, side, 1, (uint64_t)rep + 1, img) != MX_OK) {
                fprintf(stderr, "pipeline_bench: %s\n", mx_error_message());
                return 1;
            }
            /* vectorised as the library's loops are (omp simd): at -O2 GCC
             * leaves this loop scalar otherwise, and it then costs more
             * than the resize */
            for (size_t c = 0; c < 3; c++) {
                const uint8_t *restrict src = img + c * side * side;
                float *restrict dst = x + c * side * side;
#pragma omp simd
                for (size_t k = 0; k < side * side; k++) dst[k] = ((float)src[k] / 255.0f - mean[c]) / std[c];
            }
        }
        double rate = (double)index.n / (now() - start);
        if (rate > best) best = rate;
    }
    printf("{\"pipeline\": \"folder-jpeg-rrc%zu-flip-normalise\", \"images\": %zu, \"img_per_s_one_core\": %.1f}\n", side,
           index.n, best);
    free(img);
    free(x);
    mx_folder_index_free(&index);
    return 0;
}

static int bench_cifar(void)
{
    enum { N = 50000, B = 128, D = 3 * 32 * 32 };
    uint8_t *pixels = malloc((size_t)N * D);
    int32_t *labels = malloc(N * sizeof(int32_t)), y[B];
    uint32_t idx[B];
    float *x = malloc((size_t)B * D * sizeof(float));
    for (size_t k = 0; k < (size_t)N * D; k++) pixels[k] = (uint8_t)(k * 2654435761u >> 24);
    for (size_t i = 0; i < N; i++) labels[i] = (int32_t)(i % 10);
    mx_dataset ds = {.n = N, .channels = 3, .height = 32, .width = 32, .num_classes = 10, .pixels = pixels, .labels = labels};
    mx_normalizer nz;
    mx_normalizer_init(&nz, 3, (const float[]){0.49f, 0.48f, 0.45f}, (const float[]){0.25f, 0.24f, 0.26f});
    mx_augment_config aug;
    mx_augment_parse("crop:4,flip", &aug);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double start = now();
        for (size_t first = 0; first + B <= N; first += B) {
            for (size_t i = 0; i < B; i++) idx[i] = (uint32_t)((first + i) * 7919 % N);
            mx_augment_gather(&aug, 1, (uint64_t)rep + 1, &ds, &nz, idx, B, x, y);
        }
        double rate = (double)(N / B * B) / (now() - start);
        if (rate > best) best = rate;
    }
    printf("{\"pipeline\": \"cifar-pad4crop-flip-normalise\", \"images\": %d, \"img_per_s_one_core\": %.1f}\n", N, best);
    free(pixels);
    free(labels);
    free(x);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pipeline_bench DIR [side]\n");
        return 2;
    }
    omp_set_num_threads(1);  /* per-core figures */
    size_t side = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 224;
    return bench_folder(argv[1], side) || bench_cifar();
}
