/* The row blends of Mixup and CutMix (blend.h). */
#include "mixup/blend.h"

void mx_blend_row(float *restrict out, const float *restrict own, const float *restrict other, float lam, size_t dim)
{
    const float rest = 1.0f - lam;
    for (size_t d = 0; d < dim; d++) out[d] = lam * own[d] + rest * other[d];
}

void mx_blend_targets(float *row, size_t num_classes, double smoothing, int32_t own, int32_t other, double lam)
{
    const double off = smoothing / (double)num_classes;
    const double peak = 1.0 - smoothing;
    for (size_t c = 0; c < num_classes; c++) row[c] = (float)off;
    /* One label (a sample mixed with itself, or lam 1) takes the whole peak. */
    if (own == other || lam == 1.0) {
        row[own] = (float)(off + peak);
        return;
    }
    row[own] = (float)(off + lam * peak);
    row[other] = (float)(off + (1.0 - lam) * peak);
}
