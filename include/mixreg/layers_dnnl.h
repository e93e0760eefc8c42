/* The "cpu" backend's layer kernels: oneDNN (libdnnl 2.x, CPU engine) as
 * drop-in alternatives to the reference layers of mixreg/layers.h.
 *
 * Model:
 *  - One context (engine + in-order stream + one scratch arena) per thread of
 *    use, created once. It is not thread-safe: every plan made from it runs
 *    on its stream and shares its scratch, one call at a time.
 *  - A "plan" is made once per layer shape (batch size included): it builds
 *    the oneDNN primitive descriptors and primitives (JIT code), the reorders
 *    between the caller's layout and the primitive's, and queries their
 *    scratchpad sizes; the context's scratch grows then, at plan creation, to
 *    the largest plan's need. Executing a plan allocates nothing.
 *  - Every tensor the caller passes is dense float32 NCHW (weights OIHW,
 *    linear [out, in]), exactly as in layers.h, and the semantics (overwrite,
 *    NULL gradients not wanted, PyTorch's batch-norm statistics) are those of
 *    layers.h unless a function says otherwise. Blocked or bf16 layouts are
 *    internal: inputs are reordered into them and outputs back at each call.
 *  - Execute functions return MX_ERR_ARG (with a message) when the batch size
 *    or the set of optional tensors disagrees with the plan, MX_ERR_NOMEM /
 *    MX_ERR_ARG when oneDNN fails.
 *  - oneDNN threads with OpenMP (omp_set_num_threads / OMP_NUM_THREADS),
 *    unlike the reference layers (OpenBLAS's pthreads): results repeat bit for
 *    bit for a fixed thread count, not across thread counts. On cores shared
 *    with other busy processes, libgomp's default spin-waiting makes every
 *    OpenMP barrier wait for a descheduled thread while its partner spins
 *    (measured with 2 threads on 2 cores, one busy with another process:
 *    batch norm 40x slower than one thread, convolution medians 5-10x their
 *    best). OMP_WAIT_POLICY=passive in the environment (libgomp reads it
 *    when it loads: not settable from main) removed the worst of it there;
 *    the mixreg CLI sets GOMP_SPINCOUNT=1000 instead (cli/main.c).
 *  - A plan keeps a pointer to its context: free plans before the context.
 */
#ifndef MIXREG_LAYERS_DNNL_H
#define MIXREG_LAYERS_DNNL_H

#include <stddef.h>

#include "mixreg/error.h"
#include "mixreg/layers.h"

typedef struct mx_dnnl_context mx_dnnl_context;

/* The CPU engine and its stream. */
mx_status mx_dnnl_context_create(mx_dnnl_context **out);
/* Frees the context (NULL is fine); its plans must be freed first. */
void mx_dnnl_context_free(mx_dnnl_context *ctx);
/* Bytes of scratch the context holds now (the largest plan's need). */
size_t mx_dnnl_context_scratch_bytes(const mx_dnnl_context *ctx);
/* The caller's own kernels may use the scratch between plan calls, so that
 * their buffers and the plans' take the same memory: reserve grows it to at
 * least `bytes` (64-byte aligned, contents undefined), and scratch gives its
 * address now. What the caller leaves there is gone at its next plan call,
 * and the address moves when a new plan (or reserve) grows it: ask again
 * after making plans. */
mx_status mx_dnnl_context_reserve(mx_dnnl_context *ctx, size_t bytes);
void *mx_dnnl_context_scratch(const mx_dnnl_context *ctx);

/* 1 when oneDNN has bfloat16 convolution kernels on this CPU (AVX-512 ones;
 * none on AVX2-only machines), asked once per process with a tiny plan. */
int mx_dnnl_bf16_available(void);

/* The channel block of oneDNN's float32 convolution kernels on this CPU: 16
 * where they are AVX-512 code (nChw16c activations), 8 on AVX2 (nChw8c).
 * Asked once per process with a tiny plan. The CNN engine stores its
 * activations in this block so the convolutions read and write them without
 * reorders. */
size_t mx_dnnl_channel_block(void);

/* 1 when a float32 convolution between activations blocked by `block` (8 or
 * 16) channels can take a residual add as a post-op on this CPU: only where
 * that is the kernels' own block (the add is read in the layout the kernel
 * writes); elsewhere the add stays a node of its own. */
int mx_dnnl_fused_add_available(size_t block);

/* 1 when oneDNN's bfloat16 convolutions read and write NHWC activations on
 * this CPU (what they pick when left to choose: its AMX kernels do), 0 when
 * they pick nChw16c (AVX-512 BF16 without AMX) or have none. Asked once. */
int mx_dnnl_bf16_prefers_nhwc(void);

/* Internal layout of a convolution's tensors. NCHW: the caller's layout, no
 * reorders (oneDNN's gemm-based convolution, little faster than the
 * reference). BLOCKED: oneDNN picks (format "any": nChw16c or nChw8c activations and
 * OIhw16i16o-like weights, its direct AVX-512 JIT kernels; a 1-3 channel
 * input stays plain), and every call reorders x, weight, dy into it and y,
 * dx, dweight back out. The one to use: on ResNet-20's 3x3 layers (batch
 * 128, fwd + bwd) BLOCKED was 2-11x faster than NCHW and 3-12x faster than
 * the reference even with its reorders, which took 8-30% of its time
 * (bench/conv_bench.c; the larger planes pay more). */
typedef enum { MX_DNNL_LAYOUT_NCHW = 0, MX_DNNL_LAYOUT_BLOCKED = 1 } mx_dnnl_layout;

/* Arithmetic of a convolution. BF16: x, weight and dy are rounded to
 * bfloat16 on their way in (the reorders), products accumulate in float32,
 * and y, dx, dweight, dbias come out float32 (relative error ~1e-2, not 1e-4). */
typedef enum { MX_DNNL_F32 = 0, MX_DNNL_BF16 = 1 } mx_dnnl_precision;

/* The caller's layout of an activation (x and dx, or y and dy). NCHW16C and
 * NCHW8C are oneDNN's nChw16c ([n, c / 16, h, w, 16]) and nChw8c ([n, c / 8,
 * h, w, 8]), for channel counts that are a multiple of the block (no
 * padding); a BLOCKED plan's primitives use the one of the CPU's kernels
 * (mx_dnnl_channel_block) for such tensors, so passing it avoids the
 * reorders. */
typedef enum {
    MX_DNNL_ACT_NCHW = 0,
    MX_DNNL_ACT_NCHW16C = 1,
    MX_DNNL_ACT_NCHW8C = 2,
    MX_DNNL_ACT_NHWC_BF16 = 3,
    MX_DNNL_ACT_NHWC = 4
} mx_dnnl_act_layout;
/* NHWC_BF16: bfloat16 [n, h, w, c] (oneDNN's nhwc), what its AMX kernels
 * read and write, for bfloat16 inference-only plans (x and y both, or an
 * NCHW float32 x reordered on the way in): mx_dnnl_conv2d_forward_nhwc.
 * NHWC: float32 [n, h, w, c], any plan; a BLOCKED plan with an NHWC side
 * asks its primitives for nhwc activations too (for bfloat16 ones, the
 * layout of the kernels mx_dnnl_bf16_prefers_nhwc finds). */

/* The blocked layout of `block` channels (8 or 16), NCHW for 0. */
static inline mx_dnnl_act_layout mx_dnnl_act_blocked(size_t block)
{
    return block == 16 ? MX_DNNL_ACT_NCHW16C : block == 8 ? MX_DNNL_ACT_NCHW8C : MX_DNNL_ACT_NCHW;
}
/* Its channel block (0 for NCHW). */
static inline size_t mx_dnnl_act_block(mx_dnnl_act_layout layout)
{
    return layout == MX_DNNL_ACT_NCHW16C ? 16 : layout == MX_DNNL_ACT_NCHW8C ? 8 : 0;
}

/* ---- conv2d ------------------------------------------------------------------ */
/* A convolution pass's algorithm. WINOGRAD: oneDNN's F(4x4, 3x3) Winograd
 * kernels (AVX-512, float32, 3x3 stride-1 kernels on multiples of 16
 * channels in the BLOCKED layout) where oneDNN implements them for the shape,
 * else the direct convolution (mx_dnnl_conv2d_plan_impl says which ran:
 * "jit_wino_4x3..."). Fewer multiplications, 1.5-2.4x faster from 64
 * channels up (slower below: the CNN engine's rule is in cnn_cpu_plan.c), for more
 * rounding: 2.6e-6 norm-wise relative error against 1.1e-6 for the direct
 * kernels (tests/test_layers_dnnl.c). */
typedef enum { MX_DNNL_CONV_DIRECT = 0, MX_DNNL_CONV_WINOGRAD = 1 } mx_dnnl_conv_algorithm;

typedef struct {
    int has_bias;                 /* forward takes a bias, backward may give dbias */
    int inference_only;           /* no backward primitives (the forward still asks for forward_training: see conv2d.c) */
    mx_dnnl_layout layout;
    mx_dnnl_precision precision;
    mx_dnnl_act_layout src_layout, dst_layout;  /* the caller's x / dx and y / dy */
    mx_dnnl_conv_algorithm fwd_algorithm, bwd_data_algorithm, bwd_weights_algorithm;
    /* y = relu?(conv(x) + bias + (post_add ? addend : 0)), oneDNN's
     * binary-add and eltwise post-ops, so a residual add and a ReLU cost no
     * pass of their own (mx_dnnl_conv2d_forward_add). The add needs an
     * inference-only plan; the ReLU may also be a training plan's (its
     * backward is the caller's, from y). The addend is read in y's layout,
     * which must be the one the primitive writes (the kernels' block,
     * mx_dnnl_channel_block, for a blocked plan): MX_ERR_ARG otherwise. */
    int post_add, post_relu;
    /* A BF16 training plan's activations in bfloat16 rather than float32,
     * in the caller's layout (nChw16c or NHWC): y_bf16, the forward writes
     * y so; dx_bf16, the backward writes dx so (rounded to nearest even from
     * the float32 sums, as autocast's bfloat16 convolutions do). The caller
     * passes those buffers (float pointers holding bfloat16) where y and dx go. */
    int y_bf16, dx_bf16;
    /* A BF16 training plan on NHWC activations, given dy in bfloat16, forms
     * the input gradient of a stride-1 convolution that keeps the size, a
     * 1x1 stride-2 or a 3x3 stride-2 one from forward convolutions of dy
     * (oneDNN's AMX forward kernels; src/nn/dnnl/conv2d_dx.c), and given x
     * (kept) too, a 3x3 or 1x1 convolution's weights' gradient with
     * mixreg's own AMX kernel where the CPU has one
     * (src/nn/conv_wgrad_amx.c): the same products, summed in another
     * order. 1 keeps oneDNN's backward primitives (the benchmarks' and the
     * tests' comparison). */
    int onednn_backward;
    /* An inference-only plan's forward may take its weights with a scale per
     * output channel, applied by the reorder that converts them for the
     * primitive (mx_dnnl_conv2d_forward_nhwc_scaled): a batch norm folded in
     * without a pass of its own over the weights. Where oneDNN has no such
     * reorder (or none is needed: float32 in oneDNN's own layout) the plan
     * says so (mx_dnnl_conv2d_scales_weights) and takes scaled weights as
     * before. */
    int weight_scales;
} mx_dnnl_conv2d_options;         /* zero-initialised: no bias, training, NCHW inside and out, f32, direct */

typedef struct mx_dnnl_conv2d_plan mx_dnnl_conv2d_plan;

/* d as for mx_conv2d_setup (checked again here), n the batch size. */
mx_status mx_dnnl_conv2d_plan_create(mx_dnnl_context *ctx, const mx_conv2d_desc *d, size_t n,
                                     const mx_dnnl_conv2d_options *opt, mx_dnnl_conv2d_plan **out);
void mx_dnnl_conv2d_plan_free(mx_dnnl_conv2d_plan *p);
/* oneDNN's implementation name for the forward (which = 0), backward data (1)
 * or backward weights (2) primitive; "" when the plan has none. For the
 * weights' gradient "mixreg:amx_bf16" where mixreg's own kernel forms it from
 * bfloat16 x and dy, and for the input gradient oneDNN's forward kernel's name
 * where dy in bfloat16 goes through it (onednn_backward). */
const char *mx_dnnl_conv2d_plan_impl(const mx_dnnl_conv2d_plan *p, int which);

/* y = conv(x, weight) + bias: bias non-NULL exactly when the plan has_bias. */
mx_status mx_dnnl_conv2d_forward(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight,
                                 const float *bias, float *y);
/* The same for a plan with post_add: y = relu?(conv(x, weight) + bias + addend),
 * addend in y's layout; NULL exactly when the plan has no post_add. */
mx_status mx_dnnl_conv2d_forward_add(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight,
                                     const float *bias, const float *addend, float *y);
/* Weights kept in the forward primitive's own layout, for a caller that runs
 * many forwards on unchanged weights (a held prediction): the reorder a
 * forward makes of the caller's [out, in, kh, kw] weights on each call
 * (resnet50 at 224x224, batch 32: 6 ms of a 1.1 s prediction on 2 AVX2
 * cores) is then made once.
 * - mx_dnnl_conv2d_prepared_bytes: the bytes of that layout; 0 where the
 *   forward reads the caller's layout as it is or its reorder applies
 *   scales (mx_dnnl_conv2d_scales_weights), so there is nothing to keep.
 * - mx_dnnl_conv2d_prepare_weights: weight into prepared (that many bytes;
 *   prepared may be weight itself when it has that room).
 * - mx_dnnl_conv2d_forward_prepared: mx_dnnl_conv2d_forward_add on them, the
 *   same bits. They suit this plan and any plan made with its descriptor,
 *   batch and options (oneDNN picks the same kernel for the same request). */
size_t mx_dnnl_conv2d_prepared_bytes(const mx_dnnl_conv2d_plan *p);
mx_status mx_dnnl_conv2d_prepare_weights(mx_dnnl_conv2d_plan *p, const float *weight, void *prepared);
mx_status mx_dnnl_conv2d_forward_prepared(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const void *prepared,
                                          const float *bias, const float *addend, float *y);
/* dx (backward data) and dweight, dbias (backward weights) from dy; each may
 * be NULL; dbias only for a plan with has_bias. */
mx_status mx_dnnl_conv2d_backward(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight,
                                  const float *dy, float *dx, float *dweight, float *dbias);
/* Two passes a bfloat16 plan can skip when the caller holds its operands as
 * the primitives read them.
 * - dy: whether the backward primitives read it as bfloat16 in the caller's
 *   y layout (a BF16 plan whose y is nChw16c or NHWC, when oneDNN's kernels
 *   read that layout;
 *   mx_dnnl_conv2d_takes_bf16_dy): the caller may then give dy already so,
 *   rounded to nearest even as the plan's reorder rounds.
 * - x: when the forward and backward-weights primitives read it in one
 *   reordered layout (BF16 plans), mx_dnnl_conv2d_kept_x_bytes is its size
 *   (else 0): mx_dnnl_conv2d_forward_keep_x leaves that copy in the caller's
 *   buffer, and the backward reads it there instead of reordering x again.
 * Either way the results are the float32 path's bits, except where dy is
 * given in bfloat16 on NHWC: then the input gradient may come from a
 * forward kernel, and given x kept too, the weights' from mixreg's AMX
 * kernel (onednn_backward). */
int mx_dnnl_conv2d_takes_bf16_dy(const mx_dnnl_conv2d_plan *p);
size_t mx_dnnl_conv2d_kept_x_bytes(const mx_dnnl_conv2d_plan *p);
mx_status mx_dnnl_conv2d_forward_keep_x(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const float *weight,
                                        const float *bias, float *y, void *x_keep);
/* Whether that kept layout is the caller's x layout (nChw16c or NHWC) in
 * bfloat16: then a producer may write x so itself, rounded to nearest even,
 * and mx_dnnl_conv2d_forward_bf16_x reads it without a reorder; the caller's
 * x_kept for the backward is then that same buffer. */
int mx_dnnl_conv2d_takes_bf16_x(const mx_dnnl_conv2d_plan *p);
/* Room for that bfloat16 x inside the plan's scratch (NULL where the plan
 * takes no bfloat16 x): a caller that can write x again for the backward
 * need not keep it. Fill it, then pass it as x to mx_dnnl_conv2d_forward_bf16_x
 * or as x_kept to mx_dnnl_conv2d_backward_bf16, before any other call on a
 * plan of the same context (they share the scratch, and a new plan may move
 * it). */
void *mx_dnnl_conv2d_x_room(const mx_dnnl_conv2d_plan *p);
mx_status mx_dnnl_conv2d_forward_bf16_x(mx_dnnl_conv2d_plan *p, size_t n, const uint16_t *x, const float *weight,
                                        const float *bias, float *y);
/* The forward of a plan with an NHWC_BF16 side: x, addend and y in the
 * plan's layouts (bfloat16 nhwc, or float32 NCHW where the plan says NCHW),
 * the addend NULL without the add post-op. */
mx_status mx_dnnl_conv2d_forward_nhwc(mx_dnnl_conv2d_plan *p, size_t n, const void *x, const float *weight,
                                      const float *bias, const void *addend, void *y);
/* The same with weight_scales: bfloat16(scale[o] x weight[o]...) for output
 * channel o, rounded once (the reorder's float32 product, to nearest even),
 * for a plan that scales weights (mx_dnnl_conv2d_scales_weights); MX_ERR_ARG
 * for one that does not. */
int mx_dnnl_conv2d_scales_weights(const mx_dnnl_conv2d_plan *p);
mx_status mx_dnnl_conv2d_forward_nhwc_scaled(mx_dnnl_conv2d_plan *p, size_t n, const void *x, const float *weight,
                                             const float *weight_scales, const float *bias, const void *addend,
                                             void *y);
/* The backward with x_kept (NULL: x is reordered) and exactly one of dy
 * (float32) and dy_bf16. */
mx_status mx_dnnl_conv2d_backward_bf16(mx_dnnl_conv2d_plan *p, size_t n, const float *x, const void *x_kept,
                                       const float *weight, const float *dy, const uint16_t *dy_bf16, float *dx,
                                       float *dweight, float *dbias);

/* Batch norm and pooling have no oneDNN plans: on the layouts the CNN graph
 * gives them, oneDNN 2.x runs generic reference code that measured slower than
 * the cpu backend's own kernels (batch norm: src/nn/cnn_cpu_kernels.c,
 * cnn_cpu_blocked.c; max pooling 2-8x: src/nn/layers/pool.c). */

/* ---- linear (inner product) ------------------------------------------------------
 * y [n, out] = x [n, in] weight^T + bias, weight [out, in] (nn.Linear). */
typedef struct mx_dnnl_linear_plan mx_dnnl_linear_plan;

/* What a linear plan does, or'd together: add a bias; forward only (no
 * backward primitives); apply a ReLU to the forward's output inside the
 * product (the backward still gives the linear layer's own gradients: the
 * caller masks dy). */
enum { MX_DNNL_LINEAR_BIAS = 1, MX_DNNL_LINEAR_INFERENCE = 2, MX_DNNL_LINEAR_RELU = 4 };

mx_status mx_dnnl_linear_plan_create(mx_dnnl_context *ctx, size_t n, size_t in, size_t out, unsigned flags,
                                     mx_dnnl_linear_plan **out_plan);
void mx_dnnl_linear_plan_free(mx_dnnl_linear_plan *p);

mx_status mx_dnnl_linear_forward(mx_dnnl_linear_plan *p, size_t n, const float *x, const float *weight,
                                 const float *bias, float *y);
/* dx, dweight, dbias each may be NULL; dbias only for a plan with has_bias. */
mx_status mx_dnnl_linear_backward(mx_dnnl_linear_plan *p, size_t n, const float *x, const float *weight,
                                  const float *dy, float *dx, float *dweight, float *dbias);

#endif
