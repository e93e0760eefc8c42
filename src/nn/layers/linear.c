/* Reference fully connected layer, nn.Linear's layout: y = x weight^T + bias. */
#include <cblas.h>
#include <string.h>

#include "mixreg/layers.h"

void mx_linear_forward(size_t n, size_t in, size_t out, const float *x, const float *weight, const float *bias,
                       float *y)
{
    if (!n) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, 1.0f, x, (int)in, weight, (int)in,
                0.0f, y, (int)out);
    if (bias)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < out; j++) y[i * out + j] += bias[j];
}

void mx_linear_backward(size_t n, size_t in, size_t out, const float *x, const float *weight, const float *dy,
                        float *dx, float *dweight, float *dbias)
{
    if (dbias)
        for (size_t j = 0; j < out; j++) {
            double sum = 0;
            for (size_t i = 0; i < n; i++) sum += dy[i * out + j];
            dbias[j] = (float)sum;
        }
    if (!n) {
        if (dweight) memset(dweight, 0, out * in * sizeof(float));
        return;
    }
    /* dweight [out, in] = dy^T [out, n] x [n, in] */
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n, 1.0f, dy, (int)out, x,
                    (int)in, 0.0f, dweight, (int)in);
    /* dx [n, in] = dy [n, out] weight [out, in] */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)out, 1.0f, dy, (int)out, weight,
                    (int)in, 0.0f, dx, (int)in);
}
