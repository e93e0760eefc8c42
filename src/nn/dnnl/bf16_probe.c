/* Whether this machine can run --precision bf16: oneDNN 2.x has bfloat16
 * convolution kernels only on AVX-512 CPUs (native BF16 instructions or
 * their avx512_core emulation); on an AVX2-only CPU it answers
 * "unimplemented" when the first plan is made, which would surface as an
 * obscure planning error deep inside model creation. One tiny blocked bf16
 * plan made once answers the question exactly as the real plans will. */
#include <pthread.h>

#include "nn/dnnl/dnnl_internal.h"

static int g_available;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
    mx_dnnl_context *ctx = NULL;
    if (mx_dnnl_context_create(&ctx) != MX_OK) return;
    mx_conv2d_desc d = {.in_channels = 16, .out_channels = 16, .in_h = 8, .in_w = 8, .kernel_h = 3, .kernel_w = 3,
                        .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1};
    mx_dnnl_conv2d_options opt = {.layout = MX_DNNL_LAYOUT_BLOCKED, .precision = MX_DNNL_BF16};
    mx_dnnl_conv2d_plan *p = NULL;
    if (mx_conv2d_setup(&d) == MX_OK && mx_dnnl_conv2d_plan_create(ctx, &d, 2, &opt, &p) == MX_OK) g_available = 1;
    mx_dnnl_conv2d_plan_free(p);
    mx_dnnl_context_free(ctx);
    mx_error_clear(); /* the probe's failure is an answer, not an error to report */
}

int mx_dnnl_bf16_available(void)
{
    pthread_once(&g_once, probe);
    return g_available;
}
