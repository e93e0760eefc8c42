/* How the cpu backend's blocked kernels walk a tensor (cnn_cpu_blocked.c,
 * cnn_cpu_add_bn.c): a (sample, channel block)'s rows in runs, and one row's
 * 16 lanes into batch norm's double sums. Static inline, so the kernels'
 * loops inline them. Any kernel producing batch norm's per-sample sums walks
 * the same way and adds in the same order: the same bits. */
#ifndef MIXREG_NN_CNN_CPU_WALK_H
#define MIXREG_NN_CNN_CPU_WALK_H

#include <immintrin.h>
#include <stddef.h>

#include "nn/cnn_internal.h"

/* A (sample, block)'s rows as `runs` runs of `rows` rows (the last one
 * what is left): see cnn_cpu_blocked.c. */
#define NHWC_TILE_FLOATS 512
typedef struct {
    size_t runs, rows, hw;
} row_walk;

static inline row_walk walk_of(size_t layout, size_t channels, size_t hw)
{
    if (!(layout & CNN_NHWC) || !hw) return (row_walk){1, hw, hw};
    size_t rows = NHWC_TILE_FLOATS / channels;
    rows = rows < 1 ? 1 : rows > hw ? hw : rows;
    return (row_walk){(hw + rows - 1) / rows, rows, hw};
}

/* Where run r of channel block cb of sample s starts (nChw<B>c has run 0
 * alone), and its rows. */
static inline size_t run_at(size_t layout, size_t channels, row_walk w, size_t s, size_t r, size_t cb)
{
    return cnn_block_at(layout, channels, w.hw, s, cb) + r * w.rows * cnn_row_stride(layout, channels);
}
static inline size_t run_rows(row_walk w, size_t r) { return r + 1 < w.runs ? w.rows : w.hw - r * w.rows; }

#if defined(__AVX512F__) && defined(__AVX512DQ__)
/* One row of 16 lanes into the double sums: s1 += g, s2 += g * b (b NULL:
 * g * g), each product rounded before its add, as the scalar loop. */
static inline __attribute__((always_inline)) void sums_row(__m512 g, int has_b, __m512 bv, __m512d s[4])
{
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(g)), hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(g, 1));
    __m512d blo = lo, bhi = hi;
    if (has_b) {
        blo = _mm512_cvtps_pd(_mm512_castps512_ps256(bv)), bhi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(bv, 1));
    }
    s[0] = _mm512_add_pd(s[0], lo);
    s[1] = _mm512_add_pd(s[1], hi);
    s[2] = _mm512_add_pd(s[2], _mm512_mul_pd(lo, blo));
    s[3] = _mm512_add_pd(s[3], _mm512_mul_pd(hi, bhi));
}

#endif

#endif
