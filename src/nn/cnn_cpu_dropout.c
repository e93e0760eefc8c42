/* Dropout on blocked tensors (cnn_cpu.h cnn_cpu_dropout_*_blocked): the
 * reference's rule and draws (mx_dropout_forward) in its NCHW order, each
 * element found through the layout's index map, so a blocked model drops
 * the same elements as the reference backend. */
#include <stdint.h>

#include "nn/cnn_cpu.h"

void cnn_cpu_dropout_forward_blocked(size_t n, size_t channels, size_t hw, size_t layout, float p, mx_rng *rng, const float *x,
                                     float *y, uint8_t *mask)
{
    /* mx_dropout_forward's rule and draws, in its (NCHW) order, applied through the index map. */
    const double cut = (double)p * 4294967296.0;
    const int drop_all = p >= 1.0f;
    const uint64_t threshold = p <= 0.0f ? 0 : drop_all ? UINT64_C(4294967296) : (uint64_t)cut;
    const float scale = drop_all ? 0.0f : 1.0f / (1.0f - p);
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < channels; c++)
            for (size_t q = 0; q < hw; q++) {
                const size_t i = (s * channels + c) * hw + q, j = cnn_index(layout, channels, hw, s, c, q);
                uint8_t keep = (uint64_t)mx_rng_u32(rng) >= threshold;
                mask[i] = keep;
                y[j] = keep ? x[j] * scale : 0.0f;
            }
}

void cnn_cpu_dropout_backward_blocked(size_t n, size_t channels, size_t hw, size_t layout, float p, const uint8_t *mask,
                                      const float *dy, float *dx)
{
    const float scale = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < channels; c++)
            for (size_t q = 0; q < hw; q++) {
                const size_t i = (s * channels + c) * hw + q, j = cnn_index(layout, channels, hw, s, c, q);
                dx[j] = mask[i] ? dy[j] * scale : 0.0f;
            }
}
