/* Reference 2-D batch normalisation, PyTorch's semantics: batch statistics
 * (biased variance) in training, running statistics updated with the unbiased
 * variance, running statistics in eval. Per-channel sums in double. */
#include <math.h>

#include "mixreg/layers.h"

void mx_batchnorm2d_forward_train(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                  const float *beta, float momentum, float eps, float *running_mean,
                                  float *running_var, float *y, float *save_mean, float *save_invstd)
{
    const size_t m = n * hw;
    for (size_t c = 0; c < channels; c++) {
        double sum = 0;
        for (size_t s = 0; s < n; s++) {
            const float *xc = x + (s * channels + c) * hw;
            for (size_t i = 0; i < hw; i++) sum += xc[i];
        }
        const double mean = m ? sum / (double)m : 0.0;
        double ss = 0;
        for (size_t s = 0; s < n; s++) {
            const float *xc = x + (s * channels + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                double t = xc[i] - mean;
                ss += t * t;
            }
        }
        const double var = m ? ss / (double)m : 0.0;
        const double invstd = 1.0 / sqrt(var + eps);
        const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
        for (size_t s = 0; s < n; s++) {
            const float *xc = x + (s * channels + c) * hw;
            float *yc = y + (s * channels + c) * hw;
            for (size_t i = 0; i < hw; i++) yc[i] = (float)((xc[i] - mean) * invstd * g + b);
        }
        if (save_mean) save_mean[c] = (float)mean;
        if (save_invstd) save_invstd[c] = (float)invstd;
        if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + (double)momentum * mean);
        if (running_var) {
            double unbiased = m > 1 ? ss / (double)(m - 1) : var;
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + (double)momentum * unbiased);
        }
    }
}

void mx_batchnorm2d_forward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *gamma,
                                 const float *beta, const float *running_mean, const float *running_var, float eps,
                                 float *y)
{
    for (size_t c = 0; c < channels; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps);
        const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0, mean = running_mean[c];
        for (size_t s = 0; s < n; s++) {
            const float *xc = x + (s * channels + c) * hw;
            float *yc = y + (s * channels + c) * hw;
            for (size_t i = 0; i < hw; i++) yc[i] = (float)((xc[i] - mean) * invstd * g + b);
        }
    }
}

void mx_batchnorm2d_backward(size_t n, size_t channels, size_t hw, const float *x, const float *dy,
                             const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                             float *dgamma, float *dbeta)
{
    const size_t m = n * hw;
    for (size_t c = 0; c < channels; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy = 0, sum_dy_xhat = 0;
        for (size_t s = 0; s < n; s++) {
            const float *xc = x + (s * channels + c) * hw, *gc = dy + (s * channels + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                sum_dy += gc[i];
                sum_dy_xhat += gc[i] * ((xc[i] - mean) * invstd);
            }
        }
        if (dgamma) dgamma[c] = (float)sum_dy_xhat;
        if (dbeta) dbeta[c] = (float)sum_dy;
        if (!dx || !m) continue;
        const double scale = (gamma ? gamma[c] : 1.0) * invstd;
        const double mean_dy = sum_dy / (double)m, mean_dy_xhat = sum_dy_xhat / (double)m;
        for (size_t s = 0; s < n; s++) {
            const float *xc = x + (s * channels + c) * hw, *gc = dy + (s * channels + c) * hw;
            float *dxc = dx + (s * channels + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                double xhat = (xc[i] - mean) * invstd;
                dxc[i] = (float)(scale * (gc[i] - mean_dy - xhat * mean_dy_xhat));
            }
        }
    }
}

void mx_batchnorm2d_backward_eval(size_t n, size_t channels, size_t hw, const float *x, const float *dy,
                                  const float *gamma, const float *running_mean, const float *running_var, float eps,
                                  float *dx, float *dgamma, float *dbeta)
{
    for (size_t c = 0; c < channels; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps), mean = running_mean[c];
        const double scale = (gamma ? gamma[c] : 1.0) * invstd;
        double sum_dy = 0, sum_dy_xhat = 0;
        for (size_t s = 0; s < n; s++) {
            const float *xc = x + (s * channels + c) * hw, *gc = dy + (s * channels + c) * hw;
            float *dxc = dx ? dx + (s * channels + c) * hw : NULL;
            for (size_t i = 0; i < hw; i++) {
                double g = gc[i];
                sum_dy += g;
                sum_dy_xhat += g * ((xc[i] - mean) * invstd);
                if (dxc) dxc[i] = (float)(scale * g);
            }
        }
        if (dgamma) dgamma[c] = (float)sum_dy_xhat;
        if (dbeta) dbeta[c] = (float)sum_dy;
    }
}
