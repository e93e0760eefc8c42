/* The cuda backend's table for the CNN executor (cnn_backend.h). Its layer
 * kernels (cuDNN convolution, batch norm and pooling, cuBLAS linear layers)
 * are not written yet: what exists is the device layer (device.c, or none.c
 * without CUDA) and the element-wise kernels of kernels.cu. So a model on
 * this backend is refused when it is created (mx_cuda_backend_check, from
 * mx_model_create) with the reason, and prepare refuses again should any
 * other path reach it; no kernel entry of the table is ever called, and none
 * is filled in, so nothing here claims to run. */
#include "backend/cuda/cuda_backend.h"
#include "nn/cnn_internal.h"

mx_status mx_cuda_backend_check(void)
{
    mx_status st = mx_cuda_require_device();
    if (st != MX_OK) return mx_error_wrap(st, "--backend cuda");
    return mx_error_set(MX_ERR_UNSUPPORTED, "--backend cuda: a CUDA device is visible, but this mixreg's cuda backend "
                        "has no layer kernels yet (only its device layer); use --backend cpu");
}

static mx_status prepare(cnn_graph *g)
{
    (void)g;
    return mx_cuda_backend_check();
}

const cnn_backend cnn_backend_cuda = {
    .name = "cuda",
    .prepare = prepare,
};
