/* Synthetic data and peak rates for `mixreg bench` (bench_support.h). */
#include "bench_support.h"

#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/layers_dnnl.h"
#include "mixreg/rng.h"
#include "train/progress.h"

static const char synthetic_prefix[] = "synthetic:";

int bench_is_synthetic(const char *spec) { return !strncmp(spec, synthetic_prefix, sizeof synthetic_prefix - 1); }

/* A decimal in [1, max] at *p (no sign, no leading zero), advancing *p. */
static int parse_dimension(const char **p, size_t max, size_t *out)
{
    const char *s = *p;
    size_t v = 0, digits = 0;
    if (*s == '0') return 0;
    while (*s >= '0' && *s <= '9' && digits < 5) v = 10 * v + (size_t)(*s++ - '0'), digits++;
    if (!digits || v > max) return 0;
    *out = v;
    *p = s;
    return 1;
}

mx_status bench_parse_synthetic(const char *spec, size_t *channels, size_t *height, size_t *width)
{
    const char *p = spec + sizeof synthetic_prefix - 1;
    if (!bench_is_synthetic(spec) || !parse_dimension(&p, MX_MAX_CHANNELS, channels) || *p++ != 'x' ||
        !parse_dimension(&p, 4096, height) || *p++ != 'x' || !parse_dimension(&p, 4096, width) || *p)
        return mx_error_set(MX_ERR_ARG,
                            "--data: '%s' is not synthetic:CxHxW (C 1 to %d channels, H and W 1 to 4096 pixels)",
                            spec, MX_MAX_CHANNELS);
    return MX_OK;
}

mx_status bench_synthetic_dataset(size_t channels, size_t height, size_t width, size_t classes, size_t n,
                                  mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    const size_t sample = channels * height * width;
    if (n == 0 || classes == 0 || sample > ((size_t)1 << 31) / n)
        return mx_error_set(MX_ERR_ARG, "--data: %zu synthetic images of %zux%zux%zu take over 2 GiB", n, channels,
                            height, width);
    out->pixels = malloc(n * sample);
    out->labels = malloc(n * sizeof *out->labels);
    if (!out->pixels || !out->labels) {
        mx_dataset_free(out);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for %zu synthetic images", n);
    }
    mx_rng rng;
    mx_rng_init(&rng, 0, MX_STREAM_AUGMENT);
    for (size_t i = 0; i < n * sample; i++) out->pixels[i] = (uint8_t)mx_rng_u32(&rng);
    for (size_t i = 0; i < n; i++) out->labels[i] = (int32_t)mx_rng_below(&rng, (uint32_t)classes);
    out->n = n;
    out->channels = channels;
    out->height = height;
    out->width = width;
    out->num_classes = classes;
    return MX_OK;
}

double bench_sgemm_gflops(void)
{
    const int n = 2048;
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b),
          *c = malloc((size_t)n * n * sizeof *c);
    double best = 0;
    if (a && b && c) {
        for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
        for (int rep = 0; rep < 6; rep++) {
            double start = mx_now_seconds();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double rate = 2.0 * n * n * (double)n / (mx_now_seconds() - start) / 1e9;
            if (rep > 0 && rate > best) best = rate;  /* the first warms OpenBLAS's threads up */
        }
    }
    free(a), free(b), free(c);
    return best;
}

double bench_bf16_gflops(void)
{
    if (!mx_dnnl_bf16_available()) return 0;
    /* A 1x1 convolution is a plain matrix product (pixels x in -> out) that
     * oneDNN runs on its bfloat16 kernels (AMX where the CPU has it), with x
     * and y in bfloat16 nhwc, the layout those kernels read and write, so
     * that no reorder is timed, only the weights' small one. */
    const size_t batch = 8, side = 28, channels = 512;
    mx_conv2d_desc d = {.in_channels = channels, .out_channels = channels, .in_h = side, .in_w = side,
                        .kernel_h = 1, .kernel_w = 1, .stride_h = 1, .stride_w = 1};
    mx_dnnl_conv2d_options opt = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16,
                                  .inference_only = 1, .src_layout = MX_DNNL_ACT_NHWC_BF16,
                                  .dst_layout = MX_DNNL_ACT_NHWC_BF16};
    const size_t count = batch * channels * side * side;
    mx_dnnl_context *ctx = NULL;
    mx_dnnl_conv2d_plan *plan = NULL;
    uint16_t *x = calloc(count, sizeof *x), *y = malloc(count * sizeof *y);
    float *w = malloc(channels * channels * sizeof *w);
    double best = 0;
    if (x && w && y && mx_conv2d_setup(&d) == MX_OK && mx_dnnl_context_create(&ctx) == MX_OK &&
        mx_dnnl_conv2d_plan_create(ctx, &d, batch, &opt, &plan) == MX_OK) {
        for (size_t i = 0; i < count; i++) x[i] = 0x3f80;  /* 1.0 */
        for (size_t i = 0; i < channels * channels; i++) w[i] = (float)(i % 7) * 0.01f;
        const double flops = 2.0 * (double)(batch * side * side) * (double)(channels * channels);
        for (int rep = 0; rep < 6; rep++) {
            double start = mx_now_seconds();
            if (mx_dnnl_conv2d_forward_nhwc(plan, batch, x, w, NULL, NULL, y) != MX_OK) break;
            double rate = flops / (mx_now_seconds() - start) / 1e9;
            if (rep > 0 && rate > best) best = rate;
        }
    }
    mx_dnnl_conv2d_plan_free(plan);
    mx_dnnl_context_free(ctx);
    free(x), free(w), free(y);
    mx_error_clear();  /* no rate is an answer here, not an error to report */
    return best;
}
