/* The reference ("ref") CNN layers: forward/backward pairs as plain C loops
 * (the convolution's matrix product through cblas_sgemm over an im2col
 * buffer), the oracle that faster backends are tested against.
 *
 * Conventions, for every function here:
 *  - Tensors are dense float32, NCHW, row-major; shapes are explicit arguments
 *    or a descriptor (nothing global, nothing allocated, no hidden state).
 *  - Backward functions OVERWRITE their outputs (dx, dweight, dbias), as one
 *    PyTorch backward pass into zeroed .grad would: no separate zero-grad step.
 *    Where a tensor feeds two consumers (a residual block's input), add the
 *    second gradient with mx_grad_accumulate. Any gradient output may be NULL
 *    when it is not wanted (the first layer's dx, a frozen weight).
 *  - Outputs never alias inputs unless a function says so.
 *  - Single-threaded loops; the only threads are OpenBLAS's, inside the
 *    conv2d and linear sgemm calls (no OpenMP regions between them: with the
 *    pthreads OpenBLAS, libgomp's spinning workers slow sgemm down badly).
 *  - Deterministic: every loop sum has a fixed order, and the sgemm calls
 *    repeat bit for bit for a fixed OpenBLAS thread count.
 *  - Element counts must fit an int (the cblas interface).
 *
 * Parameter counts of the python/mixreg/torch.py definitions (sum(p.numel()), Fashion-
 * MNIST input 1x28x28, 10 classes), for the model definitions to match:
 *    mlp       669,706   (6 tensors)
 *    lenet5     61,706   (10 tensors; conv5x5 pad 2 -> 6x28x28, pool -> 6x14x14,
 *                          conv5x5 -> 16x10x10, pool -> 16x5x5 = 400 -> 120 -> 84 -> 10)
 *    resnet20  272,186   (65 tensors; 1x1 conv + BN projection shortcuts, so not
 *                          the 269,434 of the paper's option-A shortcuts) + BN buffers:
 *                          1,568 running-stat floats (21 BN layers, 784 channels), 21 counters
 *    preact18 11,169,994 (54 tensors) + 6,784 running-stat floats (16 BN layers,
 *                          3,392 channels), 16 counters
 * (PyTorch's BN num_batches_tracked counters only matter with momentum=None.)
 */
#ifndef MIXREG_LAYERS_H
#define MIXREG_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/rng.h"

/* ---- conv2d: dilation 1, groups 1, optional bias --------------------------
 * weight [out_channels, in_channels, kernel_h, kernel_w], bias [out_channels],
 * x [n, in_channels, in_h, in_w], y [n, out_channels, out_h, out_w] with
 * out = (in + 2 pad - kernel) / stride + 1 (floor), zero padding. */
typedef struct {
    size_t in_channels, out_channels;
    size_t in_h, in_w;
    size_t kernel_h, kernel_w;
    size_t stride_h, stride_w;
    size_t pad_h, pad_w;
    size_t out_h, out_w;  /* filled in by mx_conv2d_setup */
} mx_conv2d_desc;

/* Checks the descriptor (no zero size or stride, the kernel fits the
 * padded input) and fills out_h, out_w. MX_ERR_ARG otherwise. */
mx_status mx_conv2d_setup(mx_conv2d_desc *d);

/* Bytes of scratch mx_conv2d_forward and mx_conv2d_backward need (the same for
 * both, whatever the batch size: one sample's im2col matrix; 0 for a 1x1,
 * stride 1, unpadded convolution, whose workspace may then be NULL). The
 * convolution is the only layer here that needs scratch: plan one buffer, the
 * largest over a net, once. Its contents need not survive between calls. */
size_t mx_conv2d_workspace_bytes(const mx_conv2d_desc *d);

/* y = conv(x, weight) + bias (bias may be NULL). */
void mx_conv2d_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *weight, const float *bias,
                       float *y, float *workspace);

/* Given dy, writes dx, dweight and dbias (each may be NULL); x is the forward's input. */
void mx_conv2d_backward(const mx_conv2d_desc *d, size_t n, const float *x, const float *weight, const float *dy,
                        float *dx, float *dweight, float *dbias, float *workspace);

/* The same two as direct loops over every output with double accumulators: no
 * workspace, slow, the oracle for the im2col path and other backends. */
void mx_conv2d_forward_direct(const mx_conv2d_desc *d, size_t n, const float *x, const float *weight,
                              const float *bias, float *y);
void mx_conv2d_backward_direct(const mx_conv2d_desc *d, size_t n, const float *x, const float *weight,
                               const float *dy, float *dx, float *dweight, float *dbias);

/* ---- batchnorm2d ----------------------------------------------------------
 * x, y [n, channels, hw] (hw = h * w); gamma, beta, running and saved stats
 * [channels]. gamma/beta may be NULL (affine=False: 1 and 0). */
#define MX_BN_EPS 1e-5f
#define MX_BN_MOMENTUM 0.1f

/* Training mode: normalises with the batch mean and biased variance over the
 * n * hw values of each channel; saves mean and 1/sqrt(var + eps) for the
 * backward; when running_mean/running_var are not NULL updates them as PyTorch
 * does: r = (1 - momentum) r + momentum * batch, with the UNBIASED variance
 * (var * m / (m - 1), m = n * hw; PyTorch refuses m = 1, here the biased
 * variance is used then). y may alias x. */
void mx_batchnorm2d_forward_train(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                  const float *beta, float momentum, float eps, float *running_mean,
                                  float *running_var, float *y, float *save_mean, float *save_invstd);

/* Eval mode: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
 * y may alias x. */
void mx_batchnorm2d_forward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                 const float *beta, const float *running_mean, const float *running_var, float eps,
                                 float *y);

/* Training-mode backward through the batch statistics, given the forward's
 * input and saved mean/invstd: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)),
 * dgamma = sum(dy xhat), dbeta = sum(dy). dx may alias dy. */
void mx_batchnorm2d_backward(size_t n, size_t channels, size_t hw, const float *x, const float *dy,
                             const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                             float *dgamma, float *dbeta);

/* Eval-mode backward (running stats are constants: an affine map per channel),
 * for input gradients of a model in eval mode. dx may alias dy. */
void mx_batchnorm2d_backward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *dy,
                                  const float *gamma, const float *running_mean, const float *running_var, float eps,
                                  float *dx, float *dgamma, float *dbeta);

/* ---- relu ------------------------------------------------------------------
 * y = max(x, 0), NaN passed through as PyTorch does. y may alias x.
 * Backward from the OUTPUT (so the forward can run in place):
 * dx = dy where y > 0 (or NaN), else 0. dx may alias dy. */
void mx_relu_forward(size_t count, const float *x, float *y);
void mx_relu_backward(size_t count, const float *y, const float *dy, float *dx);

/* ---- max / average pooling -------------------------------------------------
 * x [n, channels, in_h, in_w] -> y [n, channels, out_h, out_w],
 * out = (in + 2 pad - kernel) / stride + 1 (floor; ceil_mode=False). */
typedef struct {
    size_t channels;
    size_t in_h, in_w;
    size_t kernel_h, kernel_w;
    size_t stride_h, stride_w;
    size_t pad_h, pad_w;
    int exclude_pad;      /* avg pool: divide by the in-bounds count
                             (count_include_pad=False); 0 = PyTorch's default */
    size_t out_h, out_w;  /* filled in by mx_pool2d_setup */
} mx_pool2d_desc;

/* Checks (no zero size or stride, pad <= kernel / 2 as PyTorch requires, the
 * window fits the padded input) and fills out_h, out_w. MX_ERR_ARG otherwise. */
mx_status mx_pool2d_setup(mx_pool2d_desc *d);

/* Max over each window (padding counts as -inf); argmax [n, channels, out_h,
 * out_w] receives each maximum's index within its input plane (ih * in_w + iw),
 * the FIRST in row-major window order on ties, NaN beating everything (the
 * last NaN in the window), as PyTorch CPU.
 * argmax may be NULL (inference). */
void mx_maxpool2d_forward(const mx_pool2d_desc *d, size_t n, const float *x, float *y, uint32_t *argmax);
/* dx = 0, then each dy added at its argmax (overlapping windows add up). */
void mx_maxpool2d_backward(const mx_pool2d_desc *d, size_t n, const uint32_t *argmax, const float *dy, float *dx);

/* Mean over each window, padding counted as zeros unless d->exclude_pad. */
void mx_avgpool2d_forward(const mx_pool2d_desc *d, size_t n, const float *x, float *y);
void mx_avgpool2d_backward(const mx_pool2d_desc *d, size_t n, const float *dy, float *dx);

/* ---- global average pool ---------------------------------------------------
 * x [n, channels, hw] -> y [n, channels] (adaptive_avg_pool2d(x, 1).flatten(1)). */
void mx_global_avgpool_forward(size_t n, size_t channels, size_t hw, const float *x, float *y);
void mx_global_avgpool_backward(size_t n, size_t channels, size_t hw, const float *dy, float *dx);

/* ---- linear ----------------------------------------------------------------
 * y [n, out] = x [n, in] weight^T + bias, weight [out, in] (nn.Linear); bias
 * may be NULL. Backward: dx = dy weight, dweight = dy^T x, dbias = sum_n dy. */
void mx_linear_forward(size_t n, size_t in, size_t out, const float *x, const float *weight, const float *bias,
                       float *y);
void mx_linear_backward(size_t n, size_t in, size_t out, const float *x, const float *weight, const float *dy,
                        float *dx, float *dweight, float *dbias);

/* ---- residual add and gradient fan-out -------------------------------------
 * y = a + b (y may alias a or b). Its backward is da = db = dy: copies dy into
 * da and db where they are not NULL and not dy itself. A tensor read by two
 * layers gets the sum of both gradients: the second via mx_grad_accumulate. */
void mx_add_forward(size_t count, const float *a, const float *b, float *y);
void mx_add_backward(size_t count, const float *dy, float *da, float *db);
/* dst += src. */
void mx_grad_accumulate(size_t count, float *dst, const float *src);

/* ---- dropout ---------------------------------------------------------------
 * Training mode: each element is zeroed with probability p, the rest scaled
 * by 1 / (1 - p) (p = 1 zeroes everything); mask[i] = 1 where kept. Draws
 * exactly `count` mx_rng_u32 words from rng, element i from draw i, so the mask
 * is a function of the generator state: initialise it with
 * mx_rng_init(&rng, seed, MX_STREAM_DROPOUT) and keep it across steps (a
 * checkpoint stores the struct). Eval mode is the identity: no call. y may
 * alias x; dx may alias dy. */
void mx_dropout_forward(size_t count, float p, mx_rng *rng, const float *x, float *y, uint8_t *mask);
void mx_dropout_backward(size_t count, float p, const uint8_t *mask, const float *dy, float *dx);

#endif
