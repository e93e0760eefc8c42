/* The residual add's backward fused with the batch norm's before it (the
 * cpu backend, AVX-512): where the add's gradient into the batch norm's
 * output is the batch norm's dy (cnn_cpu_exec.c add_backward aliases them),
 * the pass that writes that masked gradient also takes batch norm's
 * per-sample sums of dy and dy x, which the batch norm's backward then does
 * not read dy again for. It walks the tensor as blocked_sums does
 * (cnn_cpu_walk.h) and adds in the same order: the same bits. */
#include <string.h>

#include "nn/cnn_cpu.h"
#include "nn/cnn_cpu_simd.h"
#include "nn/cnn_cpu_walk.h"

int cnn_cpu_add_bn_sums_available(size_t layout)
{
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    return cnn_block(layout) == 16;
#else
    (void)layout;
    return 0;
#endif
}

void cnn_cpu_add_bn_sums(size_t n, size_t channels, size_t hw, size_t layout, const uint16_t *relu_bits,
                         const float *y, const float *dy, const float *extra, const void *x, float *g, double *partial)
{
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    const size_t CB = channels / 16, rs = cnn_row_stride(layout, channels);
    const int x16 = (layout & CNN_X_BF16) != 0;
    const row_walk w = walk_of(layout, channels, hw);
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++) {
        double *out = partial + s * 2 * channels;
        memset(out, 0, 2 * channels * sizeof *out);
        for (size_t r = 0; r < w.runs; r++)
            for (size_t cb = 0; cb < CB; cb++) {
                const size_t base = run_at(layout, channels, w, s, r, cb), rows = run_rows(w, r);
                double *s1 = out + cb * 16, *s2 = out + channels + cb * 16;
                __m512d acc[4] = {_mm512_loadu_pd(s1), _mm512_loadu_pd(s1 + 8), _mm512_loadu_pd(s2),
                                  _mm512_loadu_pd(s2 + 8)};
                for (size_t o = base; o < base + rows * rs; o += rs) {
                    __m512 v = _mm512_loadu_ps(dy + o);
                    if (extra) v = _mm512_add_ps(v, _mm512_loadu_ps(extra + o));
                    /* The ReLU's mask: y > 0 or NaN, as y <= 0 ? 0 : dy. */
                    const __mmask16 pass = relu_bits ? (__mmask16)relu_bits[o / 16]
                                           : y       ? _mm512_cmp_ps_mask(_mm512_loadu_ps(y + o), _mm512_setzero_ps(),
                                                                          _CMP_NLE_UQ)
                                                     : (__mmask16)0xffff;
                    v = _mm512_maskz_mov_ps(pass, v);
                    _mm512_storeu_ps(g + o, v);
                    sums_row(v, 1, load_f32x16(x, o, x16), acc);
                }
                _mm512_storeu_pd(s1, acc[0]);
                _mm512_storeu_pd(s1 + 8, acc[1]);
                _mm512_storeu_pd(s2, acc[2]);
                _mm512_storeu_pd(s2 + 8, acc[3]);
            }
    }
#else
    (void)n, (void)channels, (void)hw, (void)layout, (void)relu_bits, (void)y, (void)dy, (void)extra, (void)x, (void)g,
        (void)partial;
#endif
}
