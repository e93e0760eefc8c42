/* The cuda backend's own kernels (cuda_backend.h): elementwise and per-row
 * work over flat arrays, one thread per element or one block per row. The
 * elementwise ones do the host functions' float operations in the same
 * order, so they give the same bits. That takes __fmul_rn / __fadd_rn /
 * __fsub_rn: nvcc contracts a * b + c into one fused multiply-add by default
 * (one rounding instead of two), while the host is built as ISO C11, which
 * never contracts; these intrinsics are never merged into an FMA. On an H200
 * the plain expressions differed from the host's SGD step and blend in the last
 * bit; the cross-entropy sums a row's terms in
 * a tree instead of left to right (in double, as the host), which moves the
 * loss by a double rounding only. */
#include <cuda_runtime.h>
#include <math.h>

#include "backend/cuda/cuda_backend.h"

#define THREADS 256
/* Row-wise kernels: one block of ROW_THREADS per row (classes are few). */
#define ROW_THREADS 128

static mx_status launched(const char *what)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return MX_OK;
    return mx_error_set(MX_ERR_UNSUPPORTED, "cuda: %s: %s", what, cudaGetErrorString(e));
}

static unsigned blocks_for(size_t count) { return (unsigned)((count + THREADS - 1) / THREADS); }

__global__ void sgd_kernel(float *p, const float *grad, float *v, size_t count, float lr, float m, float wd,
                           int nesterov)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    float g = __fadd_rn(grad[i], __fmul_rn(wd, p[i]));
    float vi = __fadd_rn(__fmul_rn(m, v[i]), g);
    v[i] = vi;
    p[i] = __fsub_rn(p[i], __fmul_rn(lr, nesterov ? __fadd_rn(g, __fmul_rn(m, vi)) : vi));
}

extern "C" mx_status mx_cuda_sgd_step(float *params, const float *grads, float *velocity, size_t count, float lr,
                                      float momentum, float weight_decay, int nesterov, void *stream)
{
    if (!count) return MX_OK;
    sgd_kernel<<<blocks_for(count), THREADS, 0, (cudaStream_t)stream>>>(params, grads, velocity, count, lr, momentum,
                                                                       weight_decay, nesterov);
    return launched("SGD step");
}

__global__ void blend_kernel(const float *x, const uint32_t *partner, const float *lam, size_t n, size_t size,
                             float *out)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * size) return;
    size_t row = i / size, col = i % size;
    float l = lam[row];
    out[i] = __fadd_rn(__fmul_rn(l, x[i]), __fmul_rn(1.0f - l, x[(size_t)partner[row] * size + col]));
}

extern "C" mx_status mx_cuda_mixup_blend(const float *x, const uint32_t *partner, const float *lam, size_t n,
                                         size_t size, float *out, void *stream)
{
    if (!n || !size) return MX_OK;
    blend_kernel<<<blocks_for(n * size), THREADS, 0, (cudaStream_t)stream>>>(x, partner, lam, n, size, out);
    return launched("Mixup blend");
}

/* One block per row: the row's max, then the sum of exponentials in double
 * (as the host does), reduced in shared memory; then each class's term. */
__global__ void xent_kernel(const float *logits, const float *targets, size_t classes, double inv_n, float *row_loss,
                            float *dlogits)
{
    __shared__ float zmax_s[ROW_THREADS];
    __shared__ double sum_s[ROW_THREADS];
    const size_t row = blockIdx.x;
    const float *z = logits + row * classes;
    const float *y = targets + row * classes;
    float zmax = -INFINITY;
    for (size_t c = threadIdx.x; c < classes; c += blockDim.x) zmax = fmaxf(zmax, z[c]);
    zmax_s[threadIdx.x] = zmax;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) zmax_s[threadIdx.x] = fmaxf(zmax_s[threadIdx.x], zmax_s[threadIdx.x + s]);
        __syncthreads();
    }
    zmax = zmax_s[0];
    double sum = 0.0;
    for (size_t c = threadIdx.x; c < classes; c += blockDim.x) sum += exp((double)z[c] - zmax);
    sum_s[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sum_s[threadIdx.x] += sum_s[threadIdx.x + s];
        __syncthreads();
    }
    const double log_sum = log(sum_s[0]) + zmax;
    double loss = 0.0;
    for (size_t c = threadIdx.x; c < classes; c += blockDim.x) {
        double log_p = (double)z[c] - log_sum;
        loss -= (double)y[c] * log_p;
        if (dlogits) dlogits[row * classes + c] = (float)((exp(log_p) - y[c]) * inv_n);
    }
    __syncthreads(); /* sum_s is reused for the loss */
    sum_s[threadIdx.x] = loss;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sum_s[threadIdx.x] += sum_s[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) row_loss[row] = (float)sum_s[0];
}

extern "C" mx_status mx_cuda_softmax_xent(const float *logits, const float *targets, size_t n, size_t classes,
                                          float *row_loss, float *dlogits, void *stream)
{
    if (!n || !classes) return MX_OK;
    xent_kernel<<<(unsigned)n, ROW_THREADS, 0, (cudaStream_t)stream>>>(logits, targets, classes, 1.0 / (double)n,
                                                                      row_loss, dlogits);
    return launched("softmax cross-entropy");
}

__global__ void add_kernel(const float *a, const float *b, size_t count, float *y)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) y[i] = a[i] + b[i];
}

extern "C" mx_status mx_cuda_add(const float *a, const float *b, size_t count, float *y, void *stream)
{
    if (!count) return MX_OK;
    add_kernel<<<blocks_for(count), THREADS, 0, (cudaStream_t)stream>>>(a, b, count, y);
    return launched("add");
}
