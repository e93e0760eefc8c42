/* The per-sample sums the cpu backend's blocked batch norms take (of x and
 * x^2 forward, of dy and dy x backward; cnn_cpu_blocked.h), and the
 * residual add's backward taking them for the batch norm before it while it
 * writes that batch norm's dy (cnn_cpu_add_bn_sums). Summed in double, per
 * lane in row order, so every path gives the same bits. */
#include <string.h>

#include "nn/cnn_cpu_blocked.h"
#include "nn/cnn_cpu_simd.h"

/* The residual add's part when its backward takes the sums
 * (cnn_cpu_add_bn_sums): a gradient added to a before the mask (NULL: none),
 * the mask as bits (NULL: by `mask`), and where the masked a is written. */
typedef struct {
    const float *extra;
    const uint16_t *bits;
    float *g;
} sums_add;

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

/* sums_block for 16 lanes with the sums in registers (the portable loop
 * kept them on the stack: 6% of a bf16 resnet20 step); the same operations
 * in the same order, so the same bits. pe, pk, pg: the run's sums_add
 * pointers (extra, bits, g), NULL without. */
static inline __attribute__((always_inline)) void sums_block16(const int a16, const int b16, size_t hw, size_t rs,
                                                               const void *pa, const float *pm,
                                                               const float *const rk3[3], const void *pb, double *s1,
                                                               double *s2, const float *pe, const uint16_t *pk,
                                                               float *pg)
{
    __m512d s[4] = {_mm512_loadu_pd(s1), _mm512_loadu_pd(s1 + 8), _mm512_loadu_pd(s2), _mm512_loadu_pd(s2 + 8)};
    const __m512 zero = _mm512_setzero_ps();
    for (size_t o = 0; o < hw * rs; o += rs) {
        __m512 g = load_f32x16(pa, o, a16), bv = pb ? load_f32x16(pb, o, b16) : zero;
        if (pe) g = _mm512_add_ps(g, _mm512_loadu_ps(pe + o));
        if (pk) {
            g = _mm512_maskz_mov_ps((__mmask16)pk[o / 16], g);
        } else if (pm) {
            g = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(_mm512_loadu_ps(pm + o), zero, _CMP_NLE_UQ), g);
        } else if (rk3[0]) {
            const __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(bv, _mm512_loadu_ps(rk3[0])), _mm512_loadu_ps(rk3[1])),
                                           _mm512_loadu_ps(rk3[2]));
            g = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ), g);
        }
        if (pg) _mm512_storeu_ps(pg + o, g);
        sums_row(g, pb != NULL, bv, s);
    }
    _mm512_storeu_pd(s1, s[0]);
    _mm512_storeu_pd(s1 + 8, s[1]);
    _mm512_storeu_pd(s2, s[2]);
    _mm512_storeu_pd(s2 + 8, s[3]);
}
#endif

/* The portable loops of sums_block: rows of B values rs elements apart up to
 * end, a (and b) as float32 or (a16, b16) bfloat16. */
static inline __attribute__((always_inline)) void sums_rows(const size_t B, const int a16, const int b16, size_t end,
                                                            size_t rs, const void *pa, const float *pm,
                                                            const float *const rk3[3], const void *pb, double *s1,
                                                            double *s2)
{
    if (!pb) {
        for (size_t o = 0; o < end; o += rs) {
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                double v = load_f32(pa, o + l, a16);
                s1[l] += v;
                s2[l] += v * v;
            }
        }
    } else if (!pm && rk3[0]) { /* the mask from b = x and the forward's constants (relu_zeroed) */
        const float *rm = rk3[0], *ra = rk3[1], *rb = rk3[2];
        for (size_t o = 0; o < end; o += rs) {
            float gm[MAX_BLOCK];
#pragma omp simd
            for (size_t l = 0; l < B; l++)
                gm[l] = relu_zeroed(load_f32(pb, o + l, b16), rm[l], ra[l], rb[l]) ? 0.0f : load_f32(pa, o + l, a16);
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                double g = gm[l];
                s1[l] += g;
                s2[l] += g * load_f32(pb, o + l, b16);
            }
        }
    } else if (pm) {
        for (size_t o = 0; o < end; o += rs) {
            float gm[MAX_BLOCK]; /* the select in its own loop: GCC vectorises neither otherwise */
#pragma omp simd
            for (size_t l = 0; l < B; l++) gm[l] = pm[o + l] <= 0.0f ? 0.0f : load_f32(pa, o + l, a16);
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                double g = gm[l];
                s1[l] += g;
                s2[l] += g * load_f32(pb, o + l, b16);
            }
        }
    } else {
        for (size_t o = 0; o < end; o += rs) {
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                double g = load_f32(pa, o + l, a16);
                s1[l] += g;
                s2[l] += g * load_f32(pb, o + l, b16);
            }
        }
    }
}

/* One run of blocked_sums: hw rows of B values, rs floats apart, from pa
 * (and pb, pm), the lanes' sums added to s1 and s2. rk3: the forward's mean,
 * scale and shift of the block's channels (rk3[0] NULL: no mask from them). */
static inline __attribute__((always_inline)) void sums_block(const size_t B, const int a16, const int b16, size_t hw,
                                                             size_t rs, const void *pa, const float *pm,
                                                             const float *const rk3[3], const void *pb, double *sum1,
                                                             double *sum2)
{
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    if (B == 16) {
        sums_block16(a16, b16, hw, rs, pa, pm, rk3, pb, sum1, sum2, NULL, NULL, NULL);
        return;
    }
#endif
    double s1[MAX_BLOCK], s2[MAX_BLOCK]; /* on the stack: s1 and s2 may alias, the caller's sums could not stay in registers */
    for (size_t l = 0; l < B; l++) s1[l] = sum1[l], s2[l] = sum2[l];
    sums_rows(B, a16, b16, hw * rs, rs, pa, pm, rk3, pb, s1, s2);
    for (size_t l = 0; l < B; l++) sum1[l] = s1[l], sum2[l] = s2[l];
}

/* sums_block's rows with the residual add's part (sums_add) in any build:
 * g = dy (+ extra, pe) masked by the ReLU's bits (element `at` + i's bit)
 * or else by y > 0 (pm), written to pg, and its sums with x (pb); the
 * add's pass (cnn_cpu_add_backward) and then sums_rows over what it wrote
 * make the same operations in the same order, so the same bits in one pass:
 * dy goes in and g comes out, where two passes wrote g and read it back
 * (a pass fewer over the gradient; on AVX2 resnet20's and resnet50's
 * training rates moved within the noise, alternated, with the same bits). */
static inline __attribute__((always_inline)) void sums_add_rows(const size_t B, const int b16, size_t hw, size_t rs,
                                                                const float *pa, const float *pm, const void *pb,
                                                                double *sum1, double *sum2, const float *pe,
                                                                const uint16_t *bits, size_t at, float *pg)
{
    double s1[MAX_BLOCK], s2[MAX_BLOCK];
    for (size_t l = 0; l < B; l++) s1[l] = sum1[l], s2[l] = sum2[l];
    for (size_t o = 0; o < hw * rs; o += rs) {
        float gm[MAX_BLOCK]; /* the sum before the mask, each in its own loop: cnn_cpu_kernels.c says why */
        if (pe) {
#pragma omp simd
            for (size_t l = 0; l < B; l++) gm[l] = pa[o + l] + pe[o + l];
        } else {
#pragma omp simd
            for (size_t l = 0; l < B; l++) gm[l] = pa[o + l];
        }
        if (bits) {
            for (size_t l = 0; l < B; l++) {
                const size_t j = at + o + l;
                gm[l] = (bits[j / 16] >> (j % 16)) & 1u ? gm[l] : 0.0f;
            }
        } else if (pm) {
#pragma omp simd
            for (size_t l = 0; l < B; l++) gm[l] = pm[o + l] <= 0.0f ? 0.0f : gm[l];
        }
#pragma omp simd
        for (size_t l = 0; l < B; l++) {
            pg[o + l] = gm[l];
            double g = gm[l];
            s1[l] += g;
            s2[l] += g * load_f32(pb, o + l, b16);
        }
    }
    for (size_t l = 0; l < B; l++) sum1[l] = s1[l], sum2[l] = s2[l];
}

/* Per-sample sums of a and a^2 (b NULL), or of g and g b with g = a masked by
 * mask > 0 (mask NULL: unmasked, or by relu_zeroed from b and rk when rk is
 * not NULL), into partial[s][0][c], partial[s][1][c]. a and b are bfloat16
 * where the layout says so (a: x, CNN_X_BF16, without b; dy, CNN_DY_BF16,
 * with it; b: x). With `add`, a float32 and the residual add's part added
 * (sums_add). */
static void blocked_sums(size_t n, size_t channels, size_t hw, size_t layout, const void *a, const float *mask,
                         const float *rk, const void *b, double *partial, const sums_add *add)
{
    const size_t B = cnn_block(layout), CB = channels / B, rs = cnn_row_stride(layout, channels);
    const int a16 = (layout & (b ? CNN_DY_BF16 : CNN_X_BF16)) != 0, b16 = b && (layout & CNN_X_BF16);
    const row_walk w = walk_of(layout, channels, hw);
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++) {
        double *out = partial + s * 2 * channels;
        memset(out, 0, 2 * channels * sizeof *out);
        for (size_t r = 0; r < w.runs; r++)
            for (size_t cb = 0; cb < CB; cb++) {
                const size_t base = run_at(layout, channels, w, s, r, cb), rows = run_rows(w, r);
                const float *rk3[3] = {b && rk && !mask ? rk + cb * B : NULL, rk ? rk + channels + cb * B : NULL,
                                       rk ? rk + 2 * channels + cb * B : NULL};
                const float *pm = b && mask ? mask + base : NULL;
                const void *pa = element_at(a, base, a16), *pb = b ? element_at(b, base, b16) : NULL;
                double *s1 = out + cb * B, *s2 = out + channels + cb * B;
                if (add) {
                    const float *pe = add->extra ? add->extra + base : NULL, *py = add->bits ? NULL : pm;
#if defined(__AVX512F__) && defined(__AVX512DQ__)
                    if (B == 16) {
                        sums_block16(0, b16, rows, rs, pa, py, rk3, pb, s1, s2, pe,
                                     add->bits ? add->bits + base / 16 : NULL, add->g + base);
                        continue;
                    }
#endif
                    /* Blocks of 8 are AVX2's, float32 only (as sums_block's below). */
                    if (B == 8) sums_add_rows(8, 0, rows, rs, pa, py, pb, s1, s2, pe, add->bits, base, add->g + base);
                    else if (b16) sums_add_rows(16, 1, rows, rs, pa, py, pb, s1, s2, pe, add->bits, base, add->g + base);
                    else sums_add_rows(16, 0, rows, rs, pa, py, pb, s1, s2, pe, add->bits, base, add->g + base);
                    continue;
                }
                if (B == 8) sums_block(8, 0, 0, rows, rs, pa, pm, rk3, pb, s1, s2);
                else if (a16 && b16) sums_block(16, 1, 1, rows, rs, pa, pm, rk3, pb, s1, s2);
                else if (a16) sums_block(16, 1, 0, rows, rs, pa, pm, rk3, pb, s1, s2);
                else if (b16) sums_block(16, 0, 1, rows, rs, pa, pm, rk3, pb, s1, s2);
                else sums_block(16, 0, 0, rows, rs, pa, pm, rk3, pb, s1, s2);
            }
    }
}

void cnn_cpu_blocked_sums(size_t n, size_t channels, size_t hw, size_t layout, const void *a, const float *mask,
                          const float *rk, const void *b, double *partial)
{
    blocked_sums(n, channels, hw, layout, a, mask, rk, b, partial, NULL);
}

/* The residual add's backward writing the batch norm's dy with that batch
 * norm's sums: blocked_sums over dy and x with the add's part, walking and
 * adding as the batch norm's own backward does, so the same bits. */
void cnn_cpu_add_bn_sums(size_t n, size_t channels, size_t hw, size_t layout, const uint16_t *relu_bits,
                         const float *y, const float *dy, const float *extra, const void *x, float *g, double *partial)
{
    const sums_add add = {extra, relu_bits, g};
    blocked_sums(n, channels, hw, layout & ~CNN_DY_BF16, dy, relu_bits ? NULL : y, NULL, x, partial, &add);
}
