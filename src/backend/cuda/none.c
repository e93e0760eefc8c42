/* The cuda backend's entry points in a build without CUDA (MIXREG_CUDA=OFF, or
 * AUTO without the toolkit): every one reports that, so `--backend cuda`
 * fails with one clear line instead of at a missing symbol. */
#ifndef MIXREG_WITH_CUDA
#include "backend/cuda/cuda_backend.h"

static mx_status not_built(void)
{
    return mx_error_set(MX_ERR_UNSUPPORTED, "cuda: this mixreg was built without CUDA (rebuild with -DMIXREG_CUDA=ON "
                        "where the CUDA toolkit is installed); use --backend cpu");
}

int mx_cuda_built(void) { return 0; }

mx_status mx_cuda_require_device(void)
{
    return mx_error_set(MX_ERR_UNSUPPORTED, "this mixreg was built without CUDA (rebuild with -DMIXREG_CUDA=ON)");
}

int mx_cuda_device_count(void)
{
    not_built();
    return 0;
}

mx_status mx_cuda_check_device(int index)
{
    (void)index;
    return not_built();
}

size_t mx_cuda_arena_reserve(mx_cuda_arena *a, size_t bytes)
{
    size_t offset = a->planned;
    a->planned += bytes;
    return offset;
}

mx_status mx_cuda_arena_commit(mx_cuda_arena *a)
{
    (void)a;
    return not_built();
}

void *mx_cuda_arena_at(const mx_cuda_arena *a, size_t offset)
{
    (void)a, (void)offset;
    return NULL;
}

void mx_cuda_arena_free(mx_cuda_arena *a) { a->planned = 0; }

mx_status mx_cuda_upload(void *device, const void *host, size_t bytes)
{
    (void)device, (void)host, (void)bytes;
    return not_built();
}

mx_status mx_cuda_download(void *host, const void *device, size_t bytes)
{
    (void)host, (void)device, (void)bytes;
    return not_built();
}

mx_status mx_cuda_sgd_step(float *params, const float *grads, float *velocity, size_t count, float lr,
                           float momentum, float weight_decay, int nesterov, void *stream)
{
    (void)params, (void)grads, (void)velocity, (void)count, (void)lr, (void)momentum, (void)weight_decay,
        (void)nesterov, (void)stream;
    return not_built();
}

mx_status mx_cuda_mixup_blend(const float *x, const uint32_t *partner, const float *lam, size_t n, size_t size,
                              float *out, void *stream)
{
    (void)x, (void)partner, (void)lam, (void)n, (void)size, (void)out, (void)stream;
    return not_built();
}

mx_status mx_cuda_softmax_xent(const float *logits, const float *targets, size_t n, size_t classes, float *row_loss,
                               float *dlogits, void *stream)
{
    (void)logits, (void)targets, (void)n, (void)classes, (void)row_loss, (void)dlogits, (void)stream;
    return not_built();
}

mx_status mx_cuda_add(const float *a, const float *b, size_t count, float *y, void *stream)
{
    (void)a, (void)b, (void)count, (void)y, (void)stream;
    return not_built();
}

mx_status mx_cuda_sync(void *stream)
{
    (void)stream;
    return not_built();
}

#endif
