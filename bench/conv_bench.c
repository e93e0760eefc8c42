/* Convolution micro-benchmark: forward + backward (dx and dweight) of
 * ResNet-20's 3x3 convolutions (16->16 on 28x28, 32->32 on 14x14, 64->64 on
 * 7x7, stride 1, pad 1, no bias) at batch 128, for
 *   ref          the reference im2col + OpenBLAS sgemm path (layers.h)
 *   dnnl-nchw    oneDNN plans on NCHW buffers, NCHW inside (gemm convolution)
 *   dnnl-blocked oneDNN plans on NCHW buffers, blocked inside, reordering at
 *                every call (x, weight, y; dy, weight, dx, x, dweight)
 *   native-f32   raw oneDNN primitives on buffers already in the blocked
 *                layout: what the plan costs without its reorders
 *   blocked-16c  the plans on nChw16c buffers (as the CNN engine runs them on AVX-512)
 *   blocked-8c   the plans on nChw8c buffers (as the CNN engine runs them on AVX2)
 *   winograd-16c the same with oneDNN's Winograd kernels for all three passes
 *   mxwino       mixreg's own Winograd forward (src/nn/winograd.c, F(2x2), F(4x4) or F(5x5, 3x3),
 *                on the build's block, mx_wino_block: nChw16c with AVX-512, nChw8c with AVX2;
 *                the inference path's kernel, weights transformed every call):
 *                its bwd column is the input gradient (mx_wino_transposed) and the
 *                weights' (mx_wino_backward_weights)
 *   mxwino-gemm  the same on the wide layers' kernels (mx_wino_gemm_*: chunks of the batch's
 *                tiles, one sgemm per Winograd point); only when named
 *   dnnl-bf16 / bf16-16c / native-bf16: the same with bfloat16 inputs, fp32 accumulation
 * Prints one line per layer and variant: best and median milliseconds over
 * the timed repetitions of forward, backward and both, and GFLOP/s of both
 * (3 x 2 N O OH OW C KH KW flops: forward, backward data, backward weights).
 * On a shared machine the best is the better estimate of the uncontended
 * cost: an OpenMP team stalls at every barrier while one of its threads is
 * descheduled.
 *   conv_bench [THREADS=2] [BATCH=128] [REPS=15] [SHAPES=resnet20] [VARIANTS] [LARGEST_TILE]
 * SHAPES: resnet20 (the 28x28 Fashion-MNIST planes above), cifar (the same
 * widths on 32x32, 16x16, 8x8), preact18 (64@32, 128@16, 256@8) or wide
 * (preact18's 512@4, resnet50's 256@14 and 512@7) or resnet50 (its stride-1
 * 3x3 layers at 224x224 but 512@7: 64@56, 128@28, 256@14) or plane14 (64,
 * 128 and 256 channels on 14x14, where F5 tiles apply); VARIANTS:
 * a comma-separated list of the variant names to run (the ref one is then
 * skipped), e.g. blocked-16c,winograd-16c.
 * The ref variants run first, before any OpenMP team exists (libgomp's
 * spinning workers would slow OpenBLAS's pthreads down). */
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixreg/layers.h"
#include "mixreg/layers_dnnl.h"
#include "nn/winograd.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *randoms(size_t count)
{
    float *p = malloc(count * sizeof(float));
    if (!p) abort();
    unsigned s = 12345;
    for (size_t i = 0; i < count; i++) {
        s = s * 1103515245u + 12345u;
        p[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

typedef struct {
    const mx_conv2d_desc *d;
    size_t n;
    float *x, *w, *y, *dy, *dx, *dw, *ws;
    mx_dnnl_conv2d_plan *plan;
    /* native */
    dnnl_stream_t stream;
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    dnnl_memory_t m_src, m_wei, m_dst, m_ddst, m_wei_d, m_dsrc, m_src_w, m_ddst_w, m_dwei;
    float *wino_u;  /* mxwino: the transformed weights */
    float *wino_scratch; /* mxwino: the weights' gradient's sums; mxwino-gemm: the chunk buffers */
} bench_case;

typedef void (*step_fn)(bench_case *c, int backward);

static void step_ref(bench_case *c, int backward)
{
    if (!backward)
        mx_conv2d_forward(c->d, c->n, c->x, c->w, NULL, c->y, c->ws);
    else
        mx_conv2d_backward(c->d, c->n, c->x, c->w, c->dy, c->dx, c->dw, NULL, c->ws);
}

static void step_plan(bench_case *c, int backward)
{
    mx_status st = backward ? mx_dnnl_conv2d_backward(c->plan, c->n, c->x, c->w, c->dy, c->dx, c->dw, NULL)
                            : mx_dnnl_conv2d_forward(c->plan, c->n, c->x, c->w, NULL, c->y);
    if (st != MX_OK) {
        fprintf(stderr, "conv_bench: %s\n", mx_error_message());
        exit(1);
    }
}

/* Whether the comma-separated list names variant (NULL: every default one). */
static int listed(const char *only, const char *variant)
{
    if (!only) return 1;
    const size_t len = strlen(variant);
    for (const char *p = only; (p = strstr(p, variant)); p += len)
        if ((p == only || p[-1] == ',') && (p[len] == ',' || p[len] == 0)) return 1;
    return 0;
}

static void must(mx_status st)
{
    if (st != MX_OK) {
        fprintf(stderr, "conv_bench: %s\n", mx_error_message());
        exit(1);
    }
}

/* Forward, or the backward as the AVX2 training step runs it: the input
 * gradient through the transposed convolution, then the weights'. */
static void step_wino(bench_case *c, int backward)
{
    if (backward) {
        const mx_conv2d_desc t = mx_wino_transposed(c->d);
        mx_wino_transform_weights_dx(c->d, c->w, c->wino_u);
        mx_wino_forward(&t, c->n, c->dy, c->wino_u, NULL, NULL, 0, c->dx);
        must(mx_wino_backward_weights(c->d, c->n, c->x, c->dy, c->dw, NULL, c->wino_scratch, omp_get_max_threads()));
        return;
    }
    mx_wino_transform_weights(c->d, c->w, c->wino_u);
    mx_wino_forward(c->d, c->n, c->x, c->wino_u, NULL, NULL, 0, c->y);
}

/* The wide layers' kernels (mx_wino_gemm_*) as training runs them, the
 * weights transformed by blocks inside: forward, or input and weights'
 * gradients. */
static void step_wino_gemm(bench_case *c, int backward)
{
    if (backward) {
        const mx_conv2d_desc t = mx_wino_transposed(c->d);
        must(mx_wino_gemm_forward(&t, c->n, c->dy, NULL, c->w, 1, NULL, NULL, 0, c->dx, c->wino_scratch));
        must(mx_wino_gemm_backward_weights(c->d, c->n, c->x, c->dy, c->dw, NULL, c->wino_scratch));
        return;
    }
    must(mx_wino_gemm_forward(c->d, c->n, c->x, NULL, c->w, 0, NULL, NULL, 0, c->y, c->wino_scratch));
}

static void check(dnnl_status_t st)
{
    if (st != dnnl_success) {
        fprintf(stderr, "conv_bench: oneDNN status %d\n", (int)st);
        exit(1);
    }
}

static void step_native(bench_case *c, int backward)
{
    if (!backward) {
        dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, c->m_src}, {DNNL_ARG_WEIGHTS, c->m_wei}, {DNNL_ARG_DST, c->m_dst}};
        check(dnnl_primitive_execute(c->fwd, c->stream, 3, a));
    } else {
        dnnl_exec_arg_t a[] = {{DNNL_ARG_DIFF_DST, c->m_ddst}, {DNNL_ARG_WEIGHTS, c->m_wei_d},
                               {DNNL_ARG_DIFF_SRC, c->m_dsrc}};
        check(dnnl_primitive_execute(c->bwd_d, c->stream, 3, a));
        dnnl_exec_arg_t b[] = {{DNNL_ARG_SRC, c->m_src_w}, {DNNL_ARG_DIFF_DST, c->m_ddst_w},
                               {DNNL_ARG_DIFF_WEIGHTS, c->m_dwei}};
        check(dnnl_primitive_execute(c->bwd_w, c->stream, 3, b));
    }
    dnnl_stream_wait(c->stream);
}

static void run(const char *layer, const char *variant, bench_case *c, step_fn step, int reps, double flops)
{
    for (int i = 0; i < 3; i++) step(c, 0), step(c, 1);
    double *f = malloc(reps * sizeof(double)), *b = malloc(reps * sizeof(double)), *t = malloc(reps * sizeof(double));
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        step(c, 0);
        double t1 = now_ms();
        step(c, 1);
        double t2 = now_ms();
        f[r] = t1 - t0, b[r] = t2 - t1, t[r] = t2 - t0;
    }
    qsort(f, reps, sizeof(double), cmp_double);
    qsort(b, reps, sizeof(double), cmp_double);
    qsort(t, reps, sizeof(double), cmp_double);
    double med = t[reps / 2], best = f[0] + b[0];
    printf("%-18s %-12s fwd %6.2f / %6.2f  bwd %6.2f / %6.2f  fwd+bwd %6.2f / %6.2f ms  %6.1f / %6.1f GFLOP/s\n",
           layer, variant, f[0], f[reps / 2], b[0], b[reps / 2], best, med, flops / (best * 1e6),
           flops / (med * 1e6));
    fflush(stdout);
    free(f), free(b), free(t);
}

static dnnl_memory_t alloc_mem(dnnl_engine_t e, const dnnl_memory_desc_t *md)
{
    dnnl_memory_t m;
    if (dnnl_memory_create(&m, md, e, DNNL_MEMORY_ALLOCATE) != dnnl_success) abort();
    /* Fill with something finite (bf16 or f32 zeros are fine for timing, but avoid denormals). */
    void *h;
    dnnl_memory_get_data_handle(m, &h);
    memset(h, 0, dnnl_memory_desc_get_size(md));
    return m;
}

/* Raw primitives with blocked ("any") layouts, memories allocated in them. */
static void native_setup(bench_case *c, dnnl_engine_t e, dnnl_data_type_t in_t)
{
    const mx_conv2d_desc *d = c->d;
    dnnl_dims_t src = {(dnnl_dim_t)c->n, (dnnl_dim_t)d->in_channels, (dnnl_dim_t)d->in_h, (dnnl_dim_t)d->in_w};
    dnnl_dims_t wei = {(dnnl_dim_t)d->out_channels, (dnnl_dim_t)d->in_channels, (dnnl_dim_t)d->kernel_h,
                       (dnnl_dim_t)d->kernel_w};
    dnnl_dims_t dst = {(dnnl_dim_t)c->n, (dnnl_dim_t)d->out_channels, (dnnl_dim_t)d->out_h, (dnnl_dim_t)d->out_w};
    dnnl_dims_t st = {(dnnl_dim_t)d->stride_h, (dnnl_dim_t)d->stride_w}, pad = {(dnnl_dim_t)d->pad_h, (dnnl_dim_t)d->pad_w};
    dnnl_memory_desc_t q_src, q_wei, q_dst, f_src, f_wei, f_dst;
    dnnl_memory_desc_init_by_tag(&q_src, 4, src, in_t, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&q_wei, 4, wei, in_t, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&q_dst, 4, dst, in_t, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&f_src, 4, src, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&f_wei, 4, wei, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&f_dst, 4, dst, dnnl_f32, dnnl_format_tag_any);
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t fpd, dpd, wpd;
    /* Data types as in the plan: bf16 inputs, f32 outputs. */
    dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &q_src, &q_wei, NULL,
                                       &f_dst, st, pad, pad);
    if (dnnl_primitive_desc_create(&fpd, &cd, NULL, e, NULL) != dnnl_success) abort();
    dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &f_src, &q_wei,
                                             &q_dst, st, pad, pad);
    if (dnnl_primitive_desc_create(&dpd, &cd, NULL, e, fpd) != dnnl_success) abort();
    dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &q_src, &f_wei, NULL, &q_dst, st, pad,
                                                pad);
    if (dnnl_primitive_desc_create(&wpd, &cd, NULL, e, fpd) != dnnl_success) abort();
    dnnl_primitive_create(&c->fwd, fpd);
    dnnl_primitive_create(&c->bwd_d, dpd);
    dnnl_primitive_create(&c->bwd_w, wpd);
    c->m_src = alloc_mem(e, dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0));
    c->m_wei = alloc_mem(e, dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0));
    c->m_dst = alloc_mem(e, dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0));
    c->m_ddst = alloc_mem(e, dnnl_primitive_desc_query_md(dpd, dnnl_query_diff_dst_md, 0));
    c->m_wei_d = alloc_mem(e, dnnl_primitive_desc_query_md(dpd, dnnl_query_weights_md, 0));
    c->m_dsrc = alloc_mem(e, dnnl_primitive_desc_query_md(dpd, dnnl_query_diff_src_md, 0));
    c->m_src_w = alloc_mem(e, dnnl_primitive_desc_query_md(wpd, dnnl_query_src_md, 0));
    c->m_ddst_w = alloc_mem(e, dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_dst_md, 0));
    c->m_dwei = alloc_mem(e, dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0));
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
}

static void native_free(bench_case *c)
{
    dnnl_primitive_destroy(c->fwd);
    dnnl_primitive_destroy(c->bwd_d);
    dnnl_primitive_destroy(c->bwd_w);
    dnnl_memory_t m[] = {c->m_src, c->m_wei, c->m_dst, c->m_ddst, c->m_wei_d, c->m_dsrc, c->m_src_w, c->m_ddst_w, c->m_dwei};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) dnnl_memory_destroy(m[i]);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    size_t n = argc > 2 ? (size_t)atol(argv[2]) : 128;
    int reps = argc > 3 ? atoi(argv[3]) : 15;
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    const char *set = argc > 4 ? argv[4] : "resnet20";
    const char *only = argc > 5 ? argv[5] : NULL;
    /* The largest Winograd tile the mxwino variants may take (2, 4 or 5;
     * default the build's), to compare tile sizes on one shape. */
    if (argc > 6) mx_wino_largest_tile_set(atoi(argv[6]));
    static const size_t resnet20[3][2] = {{16, 28}, {32, 14}, {64, 7}};
    static const size_t cifar[3][2] = {{16, 32}, {32, 16}, {64, 8}};
    static const size_t preact18[3][2] = {{64, 32}, {128, 16}, {256, 8}};
    static const size_t wide[3][2] = {{512, 4}, {256, 14}, {512, 7}};
    static const size_t resnet50[3][2] = {{64, 56}, {128, 28}, {256, 14}};
    static const size_t plane14[3][2] = {{64, 14}, {128, 14}, {256, 14}};
    const size_t(*shapes)[2] = !strcmp(set, "cifar")      ? cifar
                               : !strcmp(set, "preact18") ? preact18
                               : !strcmp(set, "wide")     ? wide
                               : !strcmp(set, "resnet50") ? resnet50
                               : !strcmp(set, "plane14")  ? plane14
                                                          : resnet20;
    mx_conv2d_desc d[3];
    bench_case c[3];
    double flops[3];
    char name[3][32];
    for (int i = 0; i < 3; i++) {
        d[i] = (mx_conv2d_desc){.in_channels = shapes[i][0], .out_channels = shapes[i][0], .in_h = shapes[i][1],
                                .in_w = shapes[i][1], .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1,
                                .pad_h = 1, .pad_w = 1};
        if (mx_conv2d_setup(&d[i]) != MX_OK) return 1;
        memset(&c[i], 0, sizeof c[i]);
        c[i].d = &d[i];
        c[i].n = n;
        size_t nx = n * d[i].in_channels * d[i].in_h * d[i].in_w, ny = n * d[i].out_channels * d[i].out_h * d[i].out_w;
        size_t nw = d[i].out_channels * d[i].in_channels * 9;
        c[i].x = randoms(nx), c[i].w = randoms(nw), c[i].y = randoms(ny), c[i].dy = randoms(ny);
        c[i].dx = randoms(nx), c[i].dw = randoms(nw);
        c[i].ws = malloc(mx_conv2d_workspace_bytes(&d[i]));
        flops[i] = 3.0 * 2.0 * (double)n * d[i].out_channels * d[i].out_h * d[i].out_w * d[i].in_channels * 9;
        snprintf(name[i], sizeof name[i], "%zu->%zu 3x3 %zux%zu", shapes[i][0], shapes[i][0], shapes[i][1], shapes[i][1]);
    }
    printf("conv_bench: batch %zu, %d threads, %d timed reps after 3 warm-up; each figure best / median\n"
           "(fwd+bwd best = best fwd + best bwd; GFLOP/s of 3 x 2 N O OH OW C KH KW)\n", n, threads, reps);
    for (int i = 0; i < 3 && !only; i++) run(name[i], "ref", &c[i], step_ref, reps, flops[i]);

    mx_dnnl_context *ctx;
    if (mx_dnnl_context_create(&ctx) != MX_OK) return 1;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_engine_create(&engine, dnnl_cpu, 0);
    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    static const struct {
        const char *name;
        mx_dnnl_layout layout;
        mx_dnnl_precision prec;
        int native;
        size_t block; /* the caller's activations blocked by this many channels (0: NCHW) */
        mx_dnnl_conv_algorithm algorithm;
    } variants[] = {
        {"dnnl-nchw", MX_DNNL_LAYOUT_NCHW, MX_DNNL_F32, 0, 0, MX_DNNL_CONV_DIRECT},
        {"dnnl-blocked", MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_F32, 0, 0, MX_DNNL_CONV_DIRECT},
        {"blocked-16c", MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_F32, 0, 16, MX_DNNL_CONV_DIRECT},
        {"blocked-8c", MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_F32, 0, 8, MX_DNNL_CONV_DIRECT},
        {"winograd-16c", MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_F32, 0, 16, MX_DNNL_CONV_WINOGRAD},
        {"native-f32", MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_F32, 1, 0, MX_DNNL_CONV_DIRECT},
        {"dnnl-bf16", MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_BF16, 0, 0, MX_DNNL_CONV_DIRECT},
        {"bf16-16c", MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_BF16, 0, 16, MX_DNNL_CONV_DIRECT},
        {"native-bf16", MX_DNNL_LAYOUT_BLOCKED, MX_DNNL_BF16, 1, 0, MX_DNNL_CONV_DIRECT},
    };
    for (int i = 0; i < 3; i++) {
        if (mx_wino_available() && listed(only, "mxwino")) {
            c[i].wino_u = aligned_alloc(64, mx_wino_weight_floats(&d[i]) * sizeof(float));
            c[i].wino_scratch =
                aligned_alloc(64, (mx_wino_dw_scratch_floats(&d[i], omp_get_max_threads()) * sizeof(float) + 63) / 64 * 64);
            run(name[i], "mxwino", &c[i], step_wino, reps, flops[i]);
            free(c[i].wino_u), free(c[i].wino_scratch);
        }
        if (mx_wino_available() && only && listed(only, "mxwino-gemm")) {
            const mx_conv2d_desc t = mx_wino_transposed(&d[i]);
            size_t floats = mx_wino_gemm_scratch_floats(&d[i], MX_WINO_GEMM_DW);
            if (mx_wino_gemm_scratch_floats(&t, MX_WINO_GEMM_FROM_W) > floats)
                floats = mx_wino_gemm_scratch_floats(&t, MX_WINO_GEMM_FROM_W);
            if (mx_wino_gemm_scratch_floats(&d[i], MX_WINO_GEMM_FROM_W) > floats)
                floats = mx_wino_gemm_scratch_floats(&d[i], MX_WINO_GEMM_FROM_W);
            c[i].wino_scratch = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
            run(name[i], "mxwino-gemm", &c[i], step_wino_gemm, reps, flops[i]);
            free(c[i].wino_scratch);
        }
        for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
            if (!listed(only, variants[v].name)) continue;
            if (variants[v].native) {
                c[i].stream = stream;
                native_setup(&c[i], engine, variants[v].prec == MX_DNNL_BF16 ? dnnl_bf16 : dnnl_f32);
                run(name[i], variants[v].name, &c[i], step_native, reps, flops[i]);
                native_free(&c[i]);
                continue;
            }
            const mx_dnnl_act_layout act = mx_dnnl_act_blocked(variants[v].block);
            const mx_dnnl_conv_algorithm algo = variants[v].algorithm;
            mx_dnnl_conv2d_options opt = {.layout = variants[v].layout, .precision = variants[v].prec,
                                          .src_layout = act, .dst_layout = act, .fwd_algorithm = algo,
                                          .bwd_data_algorithm = algo, .bwd_weights_algorithm = algo};
            if (mx_dnnl_conv2d_plan_create(ctx, &d[i], n, &opt, &c[i].plan) != MX_OK) {
                printf("%-22s %-13s unavailable: %s\n", name[i], variants[v].name, mx_error_message());
                continue;
            }
            run(name[i], variants[v].name, &c[i], step_plan, reps, flops[i]);
            if (i == 0 || v == 0 || variants[v].algorithm)
                printf("    [%s | %s | %s]\n", mx_dnnl_conv2d_plan_impl(c[i].plan, 0),
                       mx_dnnl_conv2d_plan_impl(c[i].plan, 1), mx_dnnl_conv2d_plan_impl(c[i].plan, 2));
            mx_dnnl_conv2d_plan_free(c[i].plan);
        }
    }
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    mx_dnnl_context_free(ctx);
    for (int i = 0; i < 3; i++) free(c[i].x), free(c[i].w), free(c[i].y), free(c[i].dy), free(c[i].dx), free(c[i].dw), free(c[i].ws);
    return 0;
}
