/* What oneDNN can do on this CPU, each answered once by one tiny plan made
 * exactly as the real plans will be:
 *  - whether it can run --precision bf16: oneDNN 2.x has bfloat16
 *    convolution kernels only on AVX-512 CPUs (native BF16 instructions or
 *    their avx512_core emulation); on an AVX2-only CPU it answers
 *    "unimplemented" when the first plan is made, which would surface as an
 *    obscure planning error deep inside model creation;
 *  - the channel block of its float32 convolution kernels: what layout it
 *    picks for a convolution's activations when left to choose (nChw16c on
 *    AVX-512, nChw8c on AVX2);
 *  - what layout its bfloat16 convolutions pick for their activations (NHWC
 *    with AMX, nChw16c on AVX-512 BF16 without);
 *  - whether a float32 convolution between blocked activations can take the
 *    residual add as a post-op: only in the kernels' own block. In another
 *    (nChw16c on AVX2) the output is reordered, and the add (which reads the
 *    other input in the kernel's layout) cannot be fused: the backend then
 *    runs the add on its own and keeps the other fusions. */
#include <pthread.h>

#include "nn/dnnl/dnnl_internal.h"

static int g_bf16, g_bf16_nhwc, g_fused_add8, g_fused_add16;
static size_t g_block = 16;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int plan_ok(mx_dnnl_context *ctx, const mx_dnnl_conv2d_options *opt)
{
    mx_conv2d_desc d = {.in_channels = 16, .out_channels = 16, .in_h = 8, .in_w = 8, .kernel_h = 3, .kernel_w = 3,
                        .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
    mx_dnnl_conv2d_plan *p = NULL;
    int ok = mx_conv2d_setup(&d) == MX_OK && mx_dnnl_conv2d_plan_create(ctx, &d, 2, opt, &p) == MX_OK;
    mx_dnnl_conv2d_plan_free(p);
    return ok;
}

/* Whether oneDNN's forward convolution of type t picks the source layout
 * `tag` for a 64-channel 3x3 layer when asked for "any". */
static int picks(mx_dnnl_context *ctx, dnnl_data_type_t t, dnnl_format_tag_t tag)
{
    dnnl_dims_t src = {2, 64, 8, 8}, wei = {64, 64, 3, 3}, dst = {2, 64, 8, 8}, strides = {1, 1}, pad = {1, 1};
    dnnl_memory_desc_t q_src, q_wei, q_dst, want;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    int yes = dnnl_memory_desc_init_by_tag(&q_src, 4, src, t, dnnl_format_tag_any) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&q_wei, 4, wei, t, dnnl_format_tag_any) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&q_dst, 4, dst, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&want, 4, src, t, tag) == dnnl_success &&
              dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &q_src, &q_wei,
                                                 NULL, &q_dst, strides, pad, pad) == dnnl_success &&
              dnnl_primitive_desc_create(&pd, &cd, NULL, ctx->engine, NULL) == dnnl_success &&
              dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), &want);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return yes;
}

static void probe(void)
{
    mx_dnnl_context *ctx = NULL;
    if (mx_dnnl_context_create(&ctx) != MX_OK) return;
    mx_dnnl_conv2d_options bf16 = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16};
    mx_dnnl_conv2d_options add = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_F32, .has_bias = 1,
                                  .src_layout = MX_DNNL_ACT_NCHW16C, .dst_layout = MX_DNNL_ACT_NCHW16C,
                                  .inference_only = 1, .post_add = 1};
    g_bf16 = plan_ok(ctx, &bf16);
    g_fused_add16 = plan_ok(ctx, &add);
    add.src_layout = add.dst_layout = MX_DNNL_ACT_NCHW8C;
    g_fused_add8 = plan_ok(ctx, &add);
    /* The float32 kernels' block: 16 unless they pick nChw8c (16 too when
     * it cannot be told: what the AVX-512 kernels use). */
    g_block = picks(ctx, dnnl_f32, dnnl_nChw8c) ? 8 : 16;
    g_bf16_nhwc = g_bf16 && picks(ctx, dnnl_bf16, dnnl_nhwc);
    mx_dnnl_context_free(ctx);
    mx_error_clear(); /* a probe's failure is an answer, not an error to report */
}

int mx_dnnl_bf16_available(void)
{
    pthread_once(&g_once, probe);
    return g_bf16;
}

size_t mx_dnnl_channel_block(void)
{
    pthread_once(&g_once, probe);
    return g_block;
}

int mx_dnnl_fused_add_available(size_t block)
{
    pthread_once(&g_once, probe);
    return block == 8 ? g_fused_add8 : block == 16 ? g_fused_add16 : 0;
}

int mx_dnnl_bf16_prefers_nhwc(void)
{
    pthread_once(&g_once, probe);
    return g_bf16_nhwc;
}
