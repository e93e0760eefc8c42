/* The two blends Mixup and CutMix share (mixup.c, cutmix.c): one input row
 * lam * own + (1 - lam) * other, and one target row of smoothed one-hots. */
#ifndef MIXREG_MIXUP_BLEND_H
#define MIXREG_MIXUP_BLEND_H

#include <stddef.h>
#include <stdint.h>

/* out[d] = lam * own[d] + (1 - lam) * other[d], in float (as PyTorch blends). */
void mx_blend_row(float *restrict out, const float *restrict own, const float *restrict other, float lam, size_t dim);

/* row = lam * smooth(onehot(own)) + (1 - lam) * smooth(onehot(other)), in
 * double: every class gets smoothing / C, the remaining 1 - smoothing goes to
 * the two labels. */
void mx_blend_targets(float *row, size_t num_classes, double smoothing, int32_t own, int32_t other, double lam);

#endif
