/* The cuda backend's device layer (docs/backends.md, "CUDA"): finding a
 * device, one device arena planned once, and the small kernels of the
 * training step that are not cuDNN's or cuBLAS's: the SGD update over the
 * flat parameter array, the Mixup blend, the soft-target cross-entropy and the
 * residual add. Built with -DMIXREG_CUDA=ON (or AUTO when CMake finds the
 * toolkit); without it every entry point reports "built without CUDA".
 *
 * All kernel entry points take device pointers and run on `stream` (NULL: the
 * default stream); they return MX_ERR_UNSUPPORTED when the launch fails. The
 * arithmetic matches the host functions they mirror (mx_sgd_step,
 * mx_softmax_xent, mx_mixup_batch's blend) operation for operation, so results
 * agree with the CPU to float rounding (tests/test_cuda.c, label gpu). */
#ifndef MIXREG_BACKEND_CUDA_H
#define MIXREG_BACKEND_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "mixreg/error.h" /* inside: the .cu files are C++ and call it */

/* 1 when this build has the cuda backend. */
int mx_cuda_built(void);

/* The number of visible CUDA devices. 0 with a message (mx_error_message)
 * saying why: built without CUDA, no device, or a driver/toolkit mismatch. */
int mx_cuda_device_count(void);

/* MX_OK when a CUDA device is visible; else MX_ERR_UNSUPPORTED with "no
 * CUDA device visible (<why>); use --backend cpu", or in a build without
 * CUDA "this mixreg was built without CUDA (rebuild with -DMIXREG_CUDA=ON)".
 * Returns at once without a device (never waits for one). */
mx_status mx_cuda_require_device(void);

/* --backend cuda for a model (mx_model_create): mx_cuda_require_device's
 * answer prefixed "--backend cuda: ", or, with a device, that the cuda
 * backend's layer kernels are not written yet (src/backend/cuda/cnn_cuda.c). */
mx_status mx_cuda_backend_check(void);

/* MX_OK when device `index` can be used, else MX_ERR_UNSUPPORTED with one
 * line naming the reason and suggesting --backend cpu. */
mx_status mx_cuda_check_device(int index);

/* One device allocation carved into aligned regions, planned once (as the
 * CPU's arena): regions are offsets handed out before mx_cuda_arena_commit. */
typedef struct {
    size_t planned;   /* bytes reserved so far */
    void *base;       /* device memory after commit, NULL before */
} mx_cuda_arena;

size_t mx_cuda_arena_reserve(mx_cuda_arena *a, size_t bytes);
/* MX_ERR_NOMEM naming the size when the device has not that much free. */
mx_status mx_cuda_arena_commit(mx_cuda_arena *a);
void *mx_cuda_arena_at(const mx_cuda_arena *a, size_t offset);
void mx_cuda_arena_free(mx_cuda_arena *a);

/* Host <-> device copies (synchronous). */
mx_status mx_cuda_upload(void *device, const void *host, size_t bytes);
mx_status mx_cuda_download(void *host, const void *device, size_t bytes);

/* mx_sgd_step on the device: g = grad + wd p; v = m v + g;
 * d = nesterov ? g + m v : v; p -= lr d. */
mx_status mx_cuda_sgd_step(float *params, const float *grads, float *velocity, size_t count, float lr,
                           float momentum, float weight_decay, int nesterov, void *stream);

/* The Mixup blend of a batch of n rows of `size` floats:
 * out[i] = lam[i] x[i] + (1 - lam[i]) x[partner[i]] (out must not alias x). */
mx_status mx_cuda_mixup_blend(const float *x, const uint32_t *partner, const float *lam, size_t n, size_t size,
                              float *out, void *stream);

/* Soft-target cross-entropy averaged over n rows: per-row losses into
 * row_loss (the caller sums them, in double, on the host) and, when dlogits
 * is not NULL, (softmax - target) / n. */
mx_status mx_cuda_softmax_xent(const float *logits, const float *targets, size_t n, size_t classes, float *row_loss,
                               float *dlogits, void *stream);

/* y = a + b (the residual add), count floats. */
mx_status mx_cuda_add(const float *a, const float *b, size_t count, float *y, void *stream);

/* Waits for the stream's work; reports an error raised by an earlier kernel. */
mx_status mx_cuda_sync(void *stream);

#ifdef __cplusplus
}
#endif

#endif
