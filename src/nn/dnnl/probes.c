/* What oneDNN can do on this CPU, each answered once by one tiny plan made
 * exactly as the real plans will be:
 *  - whether it can run --precision bf16: oneDNN 2.x has bfloat16
 *    convolution kernels only on AVX-512 CPUs (native BF16 instructions or
 *    their avx512_core emulation); on an AVX2-only CPU it answers
 *    "unimplemented" when the first plan is made, which would surface as an
 *    obscure planning error deep inside model creation;
 *  - whether a float32 convolution between nChw16c tensors can take the
 *    residual add as a post-op: only where its kernel works in nChw16c
 *    itself (AVX-512). On AVX2 the kernels block by 8, the output is
 *    reordered, and the add (which reads the other input in the kernel's
 *    layout) cannot be fused: the backend then runs the add on its own and
 *    keeps the other fusions. */
#include <pthread.h>

#include "nn/dnnl/dnnl_internal.h"

static int g_bf16, g_fused_add;
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

static void probe(void)
{
    mx_dnnl_context *ctx = NULL;
    if (mx_dnnl_context_create(&ctx) != MX_OK) return;
    mx_dnnl_conv2d_options bf16 = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16};
    mx_dnnl_conv2d_options add = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_F32, .has_bias = 1,
                                  .src_layout = MX_DNNL_ACT_NCHW16C, .dst_layout = MX_DNNL_ACT_NCHW16C,
                                  .inference_only = 1, .post_add = 1};
    g_bf16 = plan_ok(ctx, &bf16);
    g_fused_add = plan_ok(ctx, &add);
    mx_dnnl_context_free(ctx);
    mx_error_clear(); /* a probe's failure is an answer, not an error to report */
}

int mx_dnnl_bf16_available(void)
{
    pthread_once(&g_once, probe);
    return g_bf16;
}

int mx_dnnl_fused_add_available(void)
{
    pthread_once(&g_once, probe);
    return g_fused_add;
}
