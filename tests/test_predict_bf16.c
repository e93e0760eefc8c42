/* bfloat16 prediction on NHWC activations (cnn_cpu_predict.c predict_nhwc,
 * cnn_cpu_nhwc.c): its kernels give, bit for bit, the float32 arithmetic on
 * the widened inputs rounded to nearest even (NaN propagated by the max
 * pooling, padding never its maximum); resnet20, preact18 (batch norms that
 * stay nodes) and resnet50 (max pooling, bottlenecks) take the path and
 * predict within bfloat16's precision of the float32 reference's eval
 * forward, the same bits on every call, at every batch size and when
 * planned for prediction alone, the mode left as it was; lenet5 (a pooling that leaves the blocked layout) keeps
 * the float32-activation path and still agrees. Skipped where the CPU has no
 * oneDNN bfloat16 kernels (bf16 models are refused there: test_cnn_backends).
 * Plans with a bfloat16 NHWC side are bfloat16 inference-only plans writing
 * NHWC; other combinations are refused. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cnn_test_data.h"
#include "mixreg/error.h"
#include "mixreg/layers_dnnl.h"
#include "mixreg/model.h"
#include "mixreg/rng.h"
#include "mixreg/threads.h"
#include "nn/cnn_cpu.h"

/* bfloat16's 8-bit mantissa carried through the network, as test_cnn_backends' bf16 eval bound. */
#define TOL_BF16 3e-2

static float widen(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint16_t rne(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static void fill_bf16(mx_rng *rng, uint16_t *x, size_t count)
{
    for (size_t i = 0; i < count; i++) x[i] = rne((float)mx_rng_normal(rng));
}

static void test_kernels(void)
{
    enum { N = 3, C = 80, H = 7, W = 6 }; /* 80 channels: a full and a partial pass of the pooling's 64 lanes */
    const size_t count = (size_t)N * C * H * W;
    mx_rng rng;
    mx_rng_init(&rng, 5, 0);
    uint16_t *x = malloc(count * sizeof *x), *b = malloc(count * sizeof *b), *y = malloc(count * sizeof *y);
    float mean[C], scale[C], shift[C], gap[N * C];
    fill_bf16(&rng, x, count);
    fill_bf16(&rng, b, count);
    for (size_t c = 0; c < C; c++)
        mean[c] = (float)mx_rng_normal(&rng), scale[c] = 1.0f + 0.5f * (float)mx_rng_normal(&rng),
        shift[c] = (float)mx_rng_normal(&rng);
    x[17] = 0x7fc0; /* a NaN: kept by the ReLUs, propagated by the pooling */
    for (int relu = 0; relu < 2; relu++) {
        size_t bad = 0;
        cnn_cpu_nhwc_affine(N, C, H * W, x, mean, scale, shift, relu, y);
        for (size_t i = 0; i < count; i++) {
            const size_t c = i % C;
            float v = (widen(x[i]) - mean[c]) * scale[c] + shift[c];
            if (relu && v <= 0.0f) v = 0.0f;
            bad += y[i] != rne(v);
        }
        CHECK(bad == 0);
        bad = 0;
        cnn_cpu_nhwc_add(count, x, b, relu, y);
        for (size_t i = 0; i < count; i++) {
            float v = widen(x[i]) + widen(b[i]);
            if (relu && v <= 0.0f) v = 0.0f;
            bad += y[i] != rne(v);
        }
        CHECK(bad == 0);
        CHECK(isnan(widen(y[17])));
    }
    cnn_cpu_nhwc_gap(N, C, H * W, b, gap);
    double worst = 0;
    for (size_t s = 0; s < N; s++)
        for (size_t c = 0; c < C; c++) {
            double sum = 0;
            for (size_t p = 0; p < H * W; p++) sum += widen(b[(s * H * W + p) * C + c]);
            const double e = fabs(gap[s * C + c] - sum / (H * W));
            if (e > worst) worst = e;
        }
    CHECK(worst < 1e-5);
    /* PyTorch's stem pooling: 3x3, stride 2, padding 1. */
    mx_pool2d_desc d = {.channels = C, .in_h = H, .in_w = W, .kernel_h = 3, .kernel_w = 3, .stride_h = 2,
                        .stride_w = 2, .pad_h = 1, .pad_w = 1};
    CHECK_OK(mx_pool2d_setup(&d));
    for (size_t i = 0; i < count; i++) x[i] = rne(-1000.0f - (float)mx_rng_uniform(&rng)); /* below any padding 0 */
    x[(1 * W + 1) * C + 5] = 0x7fc0;
    cnn_cpu_nhwc_maxpool(N, &d, x, y);
    size_t bad = 0, nans = 0;
    for (size_t s = 0; s < N; s++)
        for (size_t oh = 0; oh < d.out_h; oh++)
            for (size_t ow = 0; ow < d.out_w; ow++)
                for (size_t c = 0; c < C; c++) {
                    float best = -INFINITY;
                    int nan = 0;
                    for (size_t kh = 0; kh < 3; kh++)
                        for (size_t kw = 0; kw < 3; kw++) {
                            const long ih = (long)(oh * 2 + kh) - 1, iw = (long)(ow * 2 + kw) - 1;
                            if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
                            const float v = widen(x[((s * H + (size_t)ih) * W + (size_t)iw) * C + c]);
                            nan |= isnan(v);
                            if (v > best) best = v;
                        }
                    const uint16_t got = y[((s * d.out_h + oh) * d.out_w + ow) * C + c];
                    if (nan) nans += isnan(widen(got));
                    else bad += got != rne(best);
                }
    CHECK(bad == 0);
    CHECK(nans == 4); /* the NaN's pixel (1, 1) lies in four windows of the first sample */
    printf("  kernels: affine, add (with and without ReLU) and max pooling exact, pooling mean within %.1e\n", worst);
    free(x), free(b), free(y);
}

static mx_model *make(const char *arch, size_t c, size_t h, size_t classes, size_t batch, mx_precision precision)
{
    mx_model_spec spec = {.in_channels = c, .in_height = h, .in_width = h, .num_classes = classes,
                          .backend = MX_BACKEND_CPU, .precision = precision};
    snprintf(spec.arch, sizeof spec.arch, "%s", arch);
    mx_model *m = NULL;
    mx_status st = mx_model_create(&spec, batch, &m);
    if (st != MX_OK) fprintf(stderr, "creating %s: %s\n", arch, mx_error_message());
    CHECK(st == MX_OK);
    return m;
}

/* A bf16 model's predictions against the float32 model's eval forward on
 * the same state (batch-norm affines moved off 1 and 0, running statistics
 * from two training steps). */
static void predict_case(const char *arch, size_t c, size_t h, size_t B, int nhwc, unsigned seed)
{
    const size_t C = 10, d = c * h * h;
    mx_model *m = make(arch, c, h, C, B, MX_PRECISION_BF16), *f = make(arch, c, h, C, B, MX_PRECISION_FP32);
    float *x = malloc(B * d * sizeof *x), *y = malloc(B * C * sizeof *y), *dl = malloc(B * C * sizeof *dl);
    float *want = malloc(B * C * sizeof *want), *pred = malloc(B * C * sizeof *pred);
    if (!m || !f || !x || !y || !dl || !want || !pred) {
        CHECK(0);
        goto done;
    }
    mx_model_init_params(m, seed);
    mx_rng rng;
    mx_rng_init(&rng, seed + 100, 0);
    settle_model(m, &rng, B, d, C, x, y, dl);
    CHECK_OK(mx_model_copy_state(f, m));
    const cnn_graph *g = ((const struct mx_model *)m)->impl;
    CHECK(cnn_cpu_of(g)->pred_nhwc == nhwc);
    /* Every residual add right after a convolution's batch norm runs inside
     * that convolution (the sum post-op), in NHWC too. */
    size_t adds = 0, fused = 0;
    for (size_t k = 2; k < g->num_nodes; k++) {
        const cnn_node *add = &g->nodes[k], *bn = &g->nodes[k - 1];
        if (add->op != CNN_ADD || bn->op != CNN_BN || bn->relu || g->nodes[k - 2].op != CNN_CONV ||
            (add->in != bn->out && add->in2 != bn->out))
            continue;
        adds++;
        fused += cnn_cpu_node_of(g, k)->fused && cnn_cpu_node_of(g, k - 2)->fold_add == (int)k;
    }
    CHECK(fused == (nhwc ? adds : fused));
    for (size_t k = 0; !nhwc && k < g->num_nodes; k++)
        CHECK(!(cnn_cpu_node_of(g, k)->fold_add >= 0 && (g->tensors[g->nodes[k].out].blocked & CNN_NHWC)));
    random_fill(&rng, x, B * d);
    double worst = 0;
    for (size_t n = B; n >= B - 1; n--) {
        mx_model_set_training(f, 0);
        memcpy(want, mx_model_forward(f, x, n), n * C * sizeof *want);
        memcpy(pred, mx_model_predict(m, x, n), n * C * sizeof *pred);
        CHECK(mx_model_is_training(m) == 1);
        const double e = norm_error(pred, want, n * C);
        if (e > worst) worst = e;
        CHECK(e < TOL_BF16);
        CHECK(memcmp(pred, mx_model_predict(m, x, n), n * C * sizeof *pred) == 0);
    }
    CHECK(!cnn_cpu_of(g)->plan_warned); /* no batch fell back to the unfused forward */
    /* Planned for prediction alone (buffers shared by forward liveness, as
     * `mixreg eval` plans): the same logits. */
    memcpy(want, mx_model_predict(m, x, B), B * C * sizeof *want);
    CHECK_OK(mx_model_plan(m, B, MX_MODEL_PREDICT));
    g = ((const struct mx_model *)m)->impl;
    CHECK(cnn_cpu_of(g)->pred_nhwc == nhwc);
    CHECK(memcmp(want, mx_model_predict(m, x, B), B * C * sizeof *want) == 0);
    printf("  %-9s %zux%zux%zu: %s (%zu of %zu residual adds fused), logits %.1e from float32's eval forward "
           "(norm-wise)\n", arch, c, h, h, cnn_cpu_of(g)->pred_nhwc ? "bfloat16 NHWC activations" : "float32 activations",
           fused, adds, worst);
done:
    mx_model_free(m), mx_model_free(f);
    free(x), free(y), free(dl), free(want), free(pred);
}

/* A plan with a bfloat16 NHWC side is a bfloat16 inference-only plan that
 * writes NHWC: the other combinations are refused, not run in a layout the
 * caller does not hold. */
static void test_plan_options(void)
{
    mx_dnnl_context *ctx = NULL;
    CHECK_OK(mx_dnnl_context_create(&ctx));
    mx_conv2d_desc d = {.in_channels = 16, .out_channels = 16, .in_h = 6, .in_w = 6, .kernel_h = 3, .kernel_w = 3,
                        .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
    CHECK_OK(mx_conv2d_setup(&d));
    const mx_dnnl_conv2d_options good = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16,
                                         .inference_only = 1, .src_layout = MX_DNNL_ACT_NHWC_BF16,
                                         .dst_layout = MX_DNNL_ACT_NHWC_BF16};
    mx_dnnl_conv2d_options bad[4] = {good, good, good, good};
    bad[0].precision = MX_DNNL_F32;
    bad[1].inference_only = 0;
    bad[2].dst_layout = MX_DNNL_ACT_NCHW;
    bad[3].src_layout = MX_DNNL_ACT_NCHW16C;
    for (int i = 0; i < 4; i++) {
        mx_dnnl_conv2d_plan *p = NULL;
        CHECK(mx_dnnl_conv2d_plan_create(ctx, &d, 2, &bad[i], &p) == MX_ERR_ARG && p == NULL);
    }
    mx_dnnl_conv2d_plan *p = NULL;
    if (mx_dnnl_bf16_available()) {
        CHECK_OK(mx_dnnl_conv2d_plan_create(ctx, &d, 2, &good, &p));
        float w[16 * 16 * 9] = {0}, y32[2 * 16 * 36];
        uint16_t x[2 * 16 * 36] = {0}, y[2 * 16 * 36];
        /* The NHWC entry point runs such a plan and refuses one that writes float32. */
        CHECK(p && mx_dnnl_conv2d_forward_nhwc(p, 2, x, w, NULL, NULL, y) == MX_OK);
        mx_dnnl_conv2d_plan *f = NULL;
        mx_dnnl_conv2d_options plain = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16,
                                        .inference_only = 1};
        CHECK_OK(mx_dnnl_conv2d_plan_create(ctx, &d, 2, &plain, &f));
        CHECK(f && mx_dnnl_conv2d_forward_nhwc(f, 2, x, w, NULL, NULL, y32) == MX_ERR_ARG);
        mx_dnnl_conv2d_plan_free(f);
    }
    mx_dnnl_conv2d_plan_free(p);
    mx_dnnl_context_free(ctx);
    mx_error_clear();
}

/* A plan with weight_scales (prediction's folded batch norm): the reorder of
 * the weights multiplies each output channel's by its scale, the float32
 * product rounded to bfloat16, so the output is that of the weights scaled
 * so beforehand, bit for bit; each entry point refuses the other kind of
 * plan. */
static void test_weight_scales(void)
{
    if (!mx_dnnl_bf16_available()) return;
    mx_dnnl_context *ctx = NULL;
    CHECK_OK(mx_dnnl_context_create(&ctx));
    mx_conv2d_desc d = {.in_channels = 32, .out_channels = 48, .in_h = 7, .in_w = 7, .kernel_h = 3, .kernel_w = 3,
                        .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
    CHECK_OK(mx_conv2d_setup(&d));
    const size_t n = 2, nx = n * 32 * 49, nw = 48 * 32 * 9, ny = n * 48 * 49;
    mx_dnnl_conv2d_options opt = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16, .has_bias = 1,
                                  .inference_only = 1, .src_layout = MX_DNNL_ACT_NHWC_BF16,
                                  .dst_layout = MX_DNNL_ACT_NHWC_BF16, .weight_scales = 1};
    mx_dnnl_conv2d_plan *scaled = NULL, *plain = NULL;
    CHECK_OK(mx_dnnl_conv2d_plan_create(ctx, &d, n, &opt, &scaled));
    opt.weight_scales = 0;
    CHECK_OK(mx_dnnl_conv2d_plan_create(ctx, &d, n, &opt, &plain));
    uint16_t *x = malloc(nx * sizeof *x), *y1 = malloc(ny * sizeof *y1), *y2 = malloc(ny * sizeof *y2);
    float *w = malloc(nw * sizeof *w), *ws = malloc(nw * sizeof *ws), scales[48], bias[48];
    mx_rng rng;
    mx_rng_init(&rng, 91, 0);
    for (size_t i = 0; i < nx; i++) x[i] = rne((float)mx_rng_normal(&rng));
    for (size_t i = 0; i < nw; i++) w[i] = (float)(0.2 * mx_rng_normal(&rng));
    for (size_t o = 0; o < 48; o++) scales[o] = (float)(0.5 + mx_rng_uniform(&rng)), bias[o] = (float)(0.1 * o);
    for (size_t i = 0; i < nw; i++) ws[i] = scales[i / (32 * 9)] * w[i];
    if (scaled && plain) {
        CHECK(mx_dnnl_conv2d_scales_weights(scaled) && !mx_dnnl_conv2d_scales_weights(plain));
        CHECK_OK(mx_dnnl_conv2d_forward_nhwc_scaled(scaled, n, x, w, scales, bias, NULL, y1));
        CHECK_OK(mx_dnnl_conv2d_forward_nhwc(plain, n, x, ws, bias, NULL, y2));
        CHECK(memcmp(y1, y2, ny * sizeof *y1) == 0);
        CHECK(mx_dnnl_conv2d_forward_nhwc(scaled, n, x, ws, bias, NULL, y2) == MX_ERR_ARG);
        CHECK(mx_dnnl_conv2d_forward_nhwc_scaled(plain, n, x, w, scales, bias, NULL, y2) == MX_ERR_ARG);
        CHECK(mx_dnnl_conv2d_forward_nhwc_scaled(scaled, n, x, w, NULL, bias, NULL, y2) == MX_ERR_ARG);
        printf("  weight scales in the weights' reorder: the pre-scaled weights' bits\n");
    }
    free(x), free(y1), free(y2), free(w), free(ws);
    mx_dnnl_conv2d_plan_free(scaled), mx_dnnl_conv2d_plan_free(plain);
    mx_dnnl_context_free(ctx);
    mx_error_clear();
}

int main(void)
{
    mx_set_threads(2);
    printf("NHWC kernels\n");
    test_kernels();
    test_plan_options();
    test_weight_scales();
    if (!mx_dnnl_bf16_available()) {
        printf("this CPU has no oneDNN bfloat16 convolutions: bf16 prediction is not tested here\n");
        CHECK_DONE();
    }
    printf("bf16 prediction\n");
    predict_case("resnet20", 1, 16, 5, 1, 11);
    predict_case("preact18", 3, 12, 4, 1, 12);
    predict_case("resnet50", 3, 64, 3, 1, 13); /* at 32x32 its last stage is 1x1: float32 NCHW, not NHWC */
    predict_case("lenet5", 1, 28, 5, 0, 14);
    /* Without bfloat16 NHWC prediction the adds stay unfused where their
     * tensors are NHWC (plan_fusion undoes them) and run as nodes of their
     * own after the convolution that folded their batch norm: the add must
     * not count on that batch norm to write its output
     * (cnn_cpu_bn_add_fused; skipping it gave logits 0.66 off). */
    predict_case("resnet50", 3, 32, 4, 0, 15);
    CHECK_DONE();
}
