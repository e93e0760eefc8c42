/* Soft-target softmax cross-entropy, the loss Mixup trains with. */
#include <math.h>

#include "mixreg/model.h"

double mx_softmax_xent(const float *logits, const float *targets, size_t n, size_t num_classes, float *dlogits)
{
    return mx_softmax_xent_share(logits, targets, n, n, num_classes, dlogits);
}

double mx_softmax_xent_share(const float *logits, const float *targets, size_t n, size_t batch, size_t num_classes,
                             float *dlogits)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * num_classes;
        const float *y = targets + i * num_classes;
        float zmax = z[0];
        for (size_t c = 1; c < num_classes; c++) zmax = z[c] > zmax ? z[c] : zmax;
        double sum = 0.0;
        for (size_t c = 0; c < num_classes; c++) sum += exp((double)z[c] - zmax);
        double log_sum = log(sum) + zmax;
        for (size_t c = 0; c < num_classes; c++) {
            double log_p = (double)z[c] - log_sum;
            total -= (double)y[c] * log_p;
            if (dlogits) dlogits[i * num_classes + c] = (float)((exp(log_p) - y[c]) / (double)batch);
        }
    }
    return total / (double)batch;
}
