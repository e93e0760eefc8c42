/* The cuda backend's host side (cuda_backend.h): devices, the arena, copies.
 * Compiled in every build; without CUDA, none.c provides the entry points. */
#ifdef MIXREG_WITH_CUDA
#include <cuda_runtime.h>

#include "backend/cuda/cuda_backend.h"

#define ARENA_ALIGN 256 /* cudaMalloc's own alignment, kept for every region */

int mx_cuda_built(void) { return 1; }

static mx_status cuda_error(cudaError_t e, const char *what)
{
    /* A driver older than the toolkit, or none, is the usual cause on a
     * machine that has a GPU: say so rather than only the code. */
    const char *hint = e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice
                           ? " (no usable NVIDIA driver/device; use --backend cpu)"
                           : "";
    return mx_error_set(e == cudaErrorMemoryAllocation ? MX_ERR_NOMEM : MX_ERR_UNSUPPORTED, "cuda: %s: %s%s", what,
                        cudaGetErrorString(e), hint);
}

int mx_cuda_device_count(void)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cuda_error(e, "looking for devices");
        (void)cudaGetLastError(); /* clear it: later calls must not see this one */
        return 0;
    }
    if (count == 0) mx_error_set(MX_ERR_UNSUPPORTED, "cuda: no CUDA device is visible; use --backend cpu");
    return count;
}

mx_status mx_cuda_require_device(void)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear it: later calls must not see this one */
        return mx_error_set(MX_ERR_UNSUPPORTED, "no CUDA device visible (%s); use --backend cpu", cudaGetErrorString(e));
    }
    if (count == 0)
        return mx_error_set(MX_ERR_UNSUPPORTED, "no CUDA device visible (the driver lists none); use --backend cpu");
    return MX_OK;
}

mx_status mx_cuda_check_device(int index)
{
    int count = mx_cuda_device_count();
    if (count == 0) return MX_ERR_UNSUPPORTED;
    if (index < 0 || index >= count)
        return mx_error_set(MX_ERR_UNSUPPORTED, "cuda: device %d asked for, %d visible; use --backend cpu", index, count);
    cudaError_t e = cudaSetDevice(index);
    return e == cudaSuccess ? MX_OK : cuda_error(e, "selecting the device");
}

size_t mx_cuda_arena_reserve(mx_cuda_arena *a, size_t bytes)
{
    size_t offset = a->planned;
    a->planned += (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    return offset;
}

mx_status mx_cuda_arena_commit(mx_cuda_arena *a)
{
    if (a->base || !a->planned) return MX_OK;
    cudaError_t e = cudaMalloc(&a->base, a->planned);
    if (e != cudaSuccess) {
        a->base = NULL;
        (void)cudaGetLastError();
        return mx_error_set(MX_ERR_NOMEM, "cuda: out of device memory for %zu MiB of buffers (%s)",
                            a->planned >> 20, cudaGetErrorString(e));
    }
    return MX_OK;
}

void *mx_cuda_arena_at(const mx_cuda_arena *a, size_t offset) { return (unsigned char *)a->base + offset; }

void mx_cuda_arena_free(mx_cuda_arena *a)
{
    if (a->base) cudaFree(a->base);
    a->base = NULL;
    a->planned = 0;
}

mx_status mx_cuda_upload(void *device, const void *host, size_t bytes)
{
    cudaError_t e = cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice);
    return e == cudaSuccess ? MX_OK : cuda_error(e, "copying to the device");
}

mx_status mx_cuda_download(void *host, const void *device, size_t bytes)
{
    cudaError_t e = cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost);
    return e == cudaSuccess ? MX_OK : cuda_error(e, "copying from the device");
}

mx_status mx_cuda_sync(void *stream)
{
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)stream);
    return e == cudaSuccess ? MX_OK : cuda_error(e, "running kernels");
}

#endif
