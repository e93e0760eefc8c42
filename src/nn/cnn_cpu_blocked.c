/* The cpu backend's batch-norm kernels on blocked (nChw16c, nChw8c, NHWC)
 * tensors: training and eval, forward (ReLU and the residual add fused) and
 * backward, the sums the residual add's backward takes for it, and
 * recomputing a batch norm's output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_cpu_simd.h"
#include "nn/cnn_cpu.h"

/* ---- blocked kernels --------------------------------------------------------
 * Element (s, c, p) of a tensor of C channels (a multiple of the block B, 8
 * or 16) and hw per sample at ((s * C/B + c/B) * hw + p) * B + c % B
 * (nChw<B>c), or at (s * hw + p) * C + c (NHWC, the layout's CNN_NHWC flag):
 * either way a pixel's B channels of a block are one vector (AVX2: 8 floats,
 * AVX-512: 16), its rows cnn_row_stride floats apart. The kernels walk a
 * (sample, block)'s rows in runs (row_walk): in nChw<B>c one run of all hw
 * rows; in NHWC runs over a tile of pixels (NHWC_TILE_FLOATS), every block
 * of the tile in turn. Walking an NHWC block's rows down the whole plane
 * left the prefetchers behind where rows are kilobytes apart (resnet50's
 * bf16 training step: 14.1 img/s in nChw16c, 13.0 in NHWC), and one row a
 * run paid the sums' loads and stores per row (resnet20's: 1,223-1,265
 * img/s against 1,484-1,531 down the plane). Tiles of 512, 1,024 and 4,096
 * floats, two rounds: resnet50 16.1/16.7, 15.5/16.2, 15.4/15.4 img/s,
 * resnet20 1,432/1,488, 1,452/1,486, 1,388/1,455. Each
 * kernel's parallel loop runs one (sample, block) at a time through a
 * per-block function called with B a constant (8 or 16), so the lanes'
 * loops are unrolled and vectorised for either. Batch norm's sums are taken
 * per sample and block (split across threads by sample), kept in `partial`
 * ([n][2][C] doubles, then 3 C more), and added over the samples in order on
 * one thread: the same bits for any thread count. */
#define MAX_BLOCK 16

/* Whether the fused ReLU zeroed this output, from the batch norm's input x
 * and the forward's constants rk (mean, scale, shift per channel) with the
 * forward's own arithmetic (blocked_affine): its output was <= 0. */
static inline int relu_zeroed(float x, float mean, float scale, float shift)
{
    return (x - mean) * scale + shift <= 0.0f;
}

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

/* A (sample, block)'s rows as `runs` runs of `rows` rows (the last one
 * what is left): see above. */
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

/* Per-sample sums of a and a^2 (b NULL), or of g and g b with g = a masked by
 * mask > 0 (mask NULL: unmasked, or by relu_zeroed from b and rk when rk is
 * not NULL), into partial[s][0][c], partial[s][1][c]. a and b are bfloat16
 * where the layout says so (a: x, CNN_X_BF16, without b; dy, CNN_DY_BF16,
 * with it; b: x). With `add` (16 lanes on AVX-512 only), a float32 and the
 * residual add's part added (sums_add). */
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
#if defined(__AVX512F__) && defined(__AVX512DQ__)
                if (add) {
                    sums_block16(0, b16, rows, rs, pa, add->bits ? NULL : pm, rk3, pb, s1, s2,
                                 add->extra ? add->extra + base : NULL, add->bits ? add->bits + base / 16 : NULL,
                                 add->g + base);
                    continue;
                }
#else
                (void)add; /* cnn_cpu_add_bn_sums passes none here */
#endif
                if (B == 8) sums_block(8, 0, 0, rows, rs, pa, pm, rk3, pb, s1, s2);
                else if (a16 && b16) sums_block(16, 1, 1, rows, rs, pa, pm, rk3, pb, s1, s2);
                else if (a16) sums_block(16, 1, 0, rows, rs, pa, pm, rk3, pb, s1, s2);
                else if (b16) sums_block(16, 0, 1, rows, rs, pa, pm, rk3, pb, s1, s2);
                else sums_block(16, 0, 0, rows, rs, pa, pm, rk3, pb, s1, s2);
            }
    }
}

int cnn_cpu_add_bn_sums_available(size_t layout)
{
#if defined(__AVX512F__) && defined(__AVX512DQ__)
    return cnn_block(layout) == 16;
#else
    (void)layout;
    return 0;
#endif
}

/* The residual add's backward writing the batch norm's dy with that batch
 * norm's sums: blocked_sums over dy and x with the add's part, walking and
 * adding as the batch norm's own backward does, so the same bits. Where the
 * fused walk is not available, the add's pass and then the sums over what
 * it wrote: the same results in two passes. */
void cnn_cpu_add_bn_sums(size_t n, size_t channels, size_t hw, size_t layout, const uint16_t *relu_bits,
                         const float *y, const float *dy, const float *extra, const void *x, float *g, double *partial)
{
    layout &= ~CNN_DY_BF16;
    if (cnn_cpu_add_bn_sums_available(layout)) {
        const sums_add add = {extra, relu_bits, g};
        blocked_sums(n, channels, hw, layout, dy, relu_bits ? NULL : y, NULL, x, partial, &add);
        return;
    }
    const size_t count = n * channels * hw;
    if (relu_bits) cnn_cpu_add_backward_bits(count, relu_bits, dy, extra, g, 0, NULL, 0);
    else cnn_cpu_add_backward(count, y, dy, extra, g, 0, NULL, 0);
    blocked_sums(n, channels, hw, layout, g, NULL, NULL, x, partial, NULL);
}

/* The two sums of channel c over the samples, in order. */
static void blocked_total(size_t n, size_t channels, const double *partial, size_t c, double *t1, double *t2)
{
    double a = 0, b = 0;
    for (size_t s = 0; s < n; s++) a += partial[s * 2 * channels + c], b += partial[s * 2 * channels + channels + c];
    *t1 = a, *t2 = b;
}

/* One (sample, block) of blocked_affine: hw rows rs elements apart, x as
 * float32 or (x16) bfloat16, the addend's rows (float32) added when `add`,
 * the rows' ReLU masks into bits when not NULL (block 16). */
static inline __attribute__((always_inline)) void affine_block(const size_t B, const int x16, const int add, size_t hw,
                                                               size_t rs, const void *x, const float *mean,
                                                               const float *a, const float *b, const float *addend,
                                                               int relu, float *y, uint16_t *y16, uint16_t *bits)
{
    for (size_t q = 0; q < hw; q++) {
        float row[MAX_BLOCK], *py = y ? y + q * rs : row;
#pragma omp simd
        for (size_t l = 0; l < B; l++) {
            float v = (load_f32(x, q * rs + l, x16) - mean[l]) * a[l] + b[l];
            if (add) v += addend[q * rs + l];
            py[l] = relu && !(v > 0.0f || v != v) ? 0.0f : v;
        }
        if (y16) store_bf16x16(py, y16 + q * rs);
        if (bits) bits[q * rs / 16] = relu_bits16(py);
    }
}

#if defined(__AVX512F__)
/* affine_block for 16 lanes, each row computed in one register and stored
 * from it (affine_block's row buffer, written as two 256-bit halves and read
 * back whole, stalled on store forwarding: half of the pass). The same
 * operations in the same order, so the same bits. */
static inline __attribute__((always_inline)) void affine_block16(const int x16, const int add, size_t hw, size_t rs,
                                                                 const void *x, const float *mean, const float *a,
                                                                 const float *b, const float *addend, int relu,
                                                                 float *y, uint16_t *y16, uint16_t *bits)
{
    const __m512 m = _mm512_loadu_ps(mean), av = _mm512_loadu_ps(a), bv = _mm512_loadu_ps(b), zero = _mm512_setzero_ps();
    for (size_t q = 0; q < hw; q++) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(load_f32x16(x, q * rs, x16), m), av), bv);
        if (add) v = _mm512_add_ps(v, _mm512_loadu_ps(addend + q * rs));
        const __mmask16 pass = _mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ); /* v > 0 or NaN */
        if (relu) v = _mm512_maskz_mov_ps(pass, v);
        if (y) _mm512_storeu_ps(y + q * rs, v);
        if (y16) store_bf16x16_reg(v, y16 + q * rs);
        if (bits) bits[q * rs / 16] = (uint16_t)pass;
    }
}
#endif

/* y = relu?((x - mean) a + b (+ add->addend)) with k = {mean, a, b} per
 * channel, as float32 into y and as bfloat16 into y16 (block 16 only:
 * bfloat16 models are blocked by 16), each when not NULL; x bfloat16 with
 * CNN_X_BF16; the ReLU's mask into add->relu_bits unless NULL. */
static void blocked_affine(size_t n, size_t channels, size_t hw, size_t layout, const void *x, const float *k,
                           const cnn_bn_add *add, int relu, float *y, uint16_t *y16)
{
    const float *addend = add ? add->addend : NULL;
    uint16_t *bits = add ? add->relu_bits : NULL;
    const size_t B = cnn_block(layout), CB = channels / B, rs = cnn_row_stride(layout, channels);
    const int x16 = (layout & CNN_X_BF16) != 0;
    const row_walk w = walk_of(layout, channels, hw);
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t r = 0; r < w.runs; r++)
            for (size_t cb = 0; cb < CB; cb++) {
                const size_t base = run_at(layout, channels, w, s, r, cb), rows = run_rows(w, r);
                const float *mean = k + cb * B, *a = k + channels + cb * B, *b = k + 2 * channels + cb * B;
                float *py = y ? y + base : NULL;
                uint16_t *p16 = y16 ? y16 + base : NULL;
                const void *px = element_at(x, base, x16);
                const float *pa = addend ? addend + base : NULL;
                uint16_t *pk = bits && B == 16 ? bits + base / 16 : NULL;
                if (B == 8 && pa) affine_block(8, 0, 1, rows, rs, px, mean, a, b, pa, relu, py, NULL, NULL);
                else if (B == 8) affine_block(8, 0, 0, rows, rs, px, mean, a, b, pa, relu, py, NULL, NULL);
#if defined(__AVX512F__)
                else if (x16 && pa) affine_block16(1, 1, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else if (x16) affine_block16(1, 0, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else if (pa) affine_block16(0, 1, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else affine_block16(0, 0, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
#else
                else if (x16 && pa) affine_block(16, 1, 1, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else if (x16) affine_block(16, 1, 0, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else if (pa) affine_block(16, 0, 1, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
                else affine_block(16, 0, 0, rows, rs, px, mean, a, b, pa, relu, py, p16, pk);
#endif
            }
}

/* One (sample, block) of blocked_grad, hw rows rs elements apart: k0..k2 and
 * mean the block's constants, rk3 the forward's (rk3[0] NULL: none); x and
 * dy float32 or (x16, g16) bfloat16. */
static inline __attribute__((always_inline)) void grad_block(const size_t B, const int x16, const int g16, size_t hw,
                                                             size_t rs, const void *px, const float *py,
                                                             const float *const rk3[3], const void *pg,
                                                             const float *const k4[4], float *pd, uint16_t *p16)
{
    const float *k0 = k4[0], *k1 = k4[1], *k2 = k4[2], *mean = k4[3];
    const float *rm = rk3[0], *ra = rk3[1], *rb = rk3[2];
    for (size_t q = 0; q < hw * rs; q += rs) {
        float row[MAX_BLOCK], *out = p16 ? row : pd + q;
        if (!py && rm) {
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                const float xv = load_f32(px, q + l, x16);
                float g = relu_zeroed(xv, rm[l], ra[l], rb[l]) ? 0.0f : load_f32(pg, q + l, g16);
                out[l] = k1[l] * g - k0[l] - (xv - mean[l]) * k2[l];
            }
        } else if (py) {
#pragma omp simd
            for (size_t l = 0; l < B; l++) {
                float v = load_f32(pg, q + l, g16), g = py[q + l] <= 0.0f ? 0.0f : v;
                out[l] = k1[l] * g - k0[l] - (load_f32(px, q + l, x16) - mean[l]) * k2[l];
            }
        } else {
#pragma omp simd
            for (size_t l = 0; l < B; l++)
                out[l] = k1[l] * load_f32(pg, q + l, g16) - k0[l] - (load_f32(px, q + l, x16) - mean[l]) * k2[l];
        }
        if (p16) store_bf16x16(row, p16 + q);
    }
}

#if defined(__AVX512F__)
/* grad_block for 16 lanes in registers, stored from them (see
 * affine_block16); the same operations in the same order. */
static inline __attribute__((always_inline)) void grad_block16(const int x16, const int g16, size_t hw, size_t rs,
                                                               const void *px, const float *py,
                                                               const float *const rk3[3], const void *pg,
                                                               const float *const k4[4], float *pd, uint16_t *p16)
{
    const __m512 k0 = _mm512_loadu_ps(k4[0]), k1 = _mm512_loadu_ps(k4[1]), k2 = _mm512_loadu_ps(k4[2]),
                 mean = _mm512_loadu_ps(k4[3]), zero = _mm512_setzero_ps();
    const int from_x = !py && rk3[0];
    const __m512 rm = from_x ? _mm512_loadu_ps(rk3[0]) : zero, ra = from_x ? _mm512_loadu_ps(rk3[1]) : zero,
                 rb = from_x ? _mm512_loadu_ps(rk3[2]) : zero;
    for (size_t q = 0; q < hw * rs; q += rs) {
        const __m512 xv = load_f32x16(px, q, x16);
        __m512 g = load_f32x16(pg, q, g16);
        if (from_x) { /* relu_zeroed: (x - mean) scale + shift <= 0 */
            const __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(xv, rm), ra), rb);
            g = _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), zero);
        } else if (py) {
            g = _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(_mm512_loadu_ps(py + q), zero, _CMP_LE_OQ), zero);
        }
        const __m512 out = _mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(k1, g), k0), _mm512_mul_ps(_mm512_sub_ps(xv, mean), k2));
        if (p16) store_bf16x16_reg(out, p16 + q);
        else _mm512_storeu_ps(pd + q, out);
    }
}
#endif

/* dx = k[1][c] g - k[0][c] - (x - k[3][c]) k[2][c], g = dy masked by the
 * fused ReLU: by its output y > 0 when y is not NULL, else by relu_zeroed from
 * rk when that is not NULL. As float32, or with dx_bf16 (block 16 only) as
 * bfloat16 in dx's first half (the next consumer, a bfloat16 convolution's
 * backward, reads it so). */
static void blocked_grad(size_t n, size_t channels, size_t hw, size_t layout, const void *x, const float *y,
                         const float *rk, const void *dy, const float *k, float *dx, int dx_bf16)
{
    const size_t B = cnn_block(layout), CB = channels / B, rs = cnn_row_stride(layout, channels);
    const int x16 = (layout & CNN_X_BF16) != 0, g16 = (layout & CNN_DY_BF16) != 0;
    const row_walk w = walk_of(layout, channels, hw);
#pragma omp parallel for schedule(static) if (n * channels * hw >= CNN_CPU_PARALLEL_MIN)
    for (size_t s = 0; s < n; s++)
        for (size_t r = 0; r < w.runs; r++)
            for (size_t cb = 0; cb < CB; cb++) {
                const size_t base = run_at(layout, channels, w, s, r, cb), rows = run_rows(w, r);
                const float *k4[4] = {k + cb * B, k + channels + cb * B, k + 2 * channels + cb * B,
                                      k + 3 * channels + cb * B};
                const float *rk3[3] = {rk ? rk + cb * B : NULL, rk ? rk + channels + cb * B : NULL,
                                       rk ? rk + 2 * channels + cb * B : NULL};
                const float *py = y ? y + base : NULL;
                uint16_t *p16 = dx_bf16 ? (uint16_t *)(void *)dx + base : NULL;
                const void *px = element_at(x, base, x16), *pg = element_at(dy, base, g16);
                if (B == 8) grad_block(8, 0, 0, rows, rs, px, py, rk3, pg, k4, dx + base, NULL);
#if defined(__AVX512F__)
                else if (x16 && g16) grad_block16(1, 1, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else if (x16) grad_block16(1, 0, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else if (g16) grad_block16(0, 1, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else grad_block16(0, 0, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
#else
                else if (x16 && g16) grad_block(16, 1, 1, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else if (x16) grad_block(16, 1, 0, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else if (g16) grad_block(16, 0, 1, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
                else grad_block(16, 0, 0, rows, rs, px, py, rk3, pg, k4, dx + base, p16);
#endif
            }
}

/* partial has room for 4 C floats after its 2 n C doubles. */
static float *blocked_consts(size_t n, size_t channels, double *partial)
{
    return (float *)(partial + 2 * n * channels);
}

void cnn_cpu_bn_forward_train_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                      const float *beta, float momentum, float eps, float *running_mean,
                                      float *running_var, float *y, float *save_mean, float *save_invstd, int relu,
                                      double *partial, float *affine, uint16_t *y16)
{
    cnn_cpu_bn_forward_train_blocked_synced(n, channels, hw, layout, x, gamma, beta, momentum, eps, running_mean, running_var,
                                            y, save_mean, save_invstd, relu, partial, affine, y16, NULL, NULL);
}

void cnn_cpu_bn_forward_train_blocked_synced(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                             const float *beta, float momentum, float eps, float *running_mean,
                                             float *running_var, float *y, float *save_mean, float *save_invstd,
                                             int relu, double *partial, float *affine, uint16_t *y16,
                                             const cnn_bn_sync *sync, const cnn_bn_add *add)
{
    size_t m = n * hw;
    blocked_sums(n, channels, hw, layout, x, NULL, NULL, NULL, partial, NULL);
    float *k = blocked_consts(n, channels, partial);
    if (sync) {
        /* This rank's totals, then every rank's, in sync->sums. */
        double *t = sync->sums;
        for (size_t c = 0; c < channels; c++) blocked_total(n, channels, partial, c, &t[c], &t[channels + c]);
        t[2 * channels] = (double)m;
        sync->reduce(sync->ctx, t, 2 * channels + 1);
        m = (size_t)t[2 * channels];
        *sync->count = t[2 * channels];
    }
    for (size_t c = 0; c < channels; c++) {
        double sum, sumsq;
        if (sync) sum = sync->sums[c], sumsq = sync->sums[channels + c];
        else blocked_total(n, channels, partial, c, &sum, &sumsq);
        float kc[3];
        bn_train_channel(c, m, sum, sumsq, gamma, beta, momentum, eps, running_mean, running_var, save_mean,
                         save_invstd, kc);
        k[c] = kc[0], k[channels + c] = kc[1], k[2 * channels + c] = kc[2];
    }
    blocked_affine(n, channels, hw, layout, x, k, add, relu, y, y16);
    if (affine) memcpy(affine, k, 3 * channels * sizeof(float));
}

void cnn_cpu_bn_forward_eval_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *gamma,
                                     const float *beta, const float *running_mean, const float *running_var, float eps,
                                     float *y, int relu, double *partial, float *affine, uint16_t *y16,
                                     const cnn_bn_add *add)
{
    float *k = blocked_consts(n, channels, partial);
    for (size_t c = 0; c < channels; c++) {
        k[c] = running_mean[c];
        k[channels + c] = (float)((gamma ? gamma[c] : 1.0) / sqrt((double)running_var[c] + eps));
        k[2 * channels + c] = beta ? beta[c] : 0.0f;
    }
    blocked_affine(n, channels, hw, layout, x, k, add, relu, y, y16);
    if (affine) memcpy(affine, k, 3 * channels * sizeof(float));
}

void cnn_cpu_bn_backward_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                 const float *relu_k, const float *dy, const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                 int dx_bf16, float *dgamma, float *dbeta, double *partial)
{
    cnn_cpu_bn_backward_blocked_synced(n, channels, hw, layout, x, y, relu_k, dy, gamma, save_mean, save_invstd, dx, dx_bf16,
                                       dgamma, dbeta, partial, NULL, 0);
}

void cnn_cpu_bn_backward_blocked_synced(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                        const float *relu_k, const float *dy, const float *gamma,
                                        const float *save_mean, const float *save_invstd, float *dx, int dx_bf16,
                                        float *dgamma, float *dbeta, double *partial, const cnn_bn_sync *sync,
                                        int sums_ready)
{
    const size_t local_m = n * hw;
    double m = (double)local_m;
    if (!sums_ready) blocked_sums(n, channels, hw, layout, dy, y, relu_k, x, partial, NULL);
    float *k = blocked_consts(n, channels, partial);
    if (sync) {
        /* gamma's and beta's gradients from this rank's samples (the gradient
         * all-reduce adds them up); the input gradient from every rank's sums. */
        double *t = sync->sums;
        for (size_t c = 0; c < channels; c++) {
            blocked_total(n, channels, partial, c, &t[c], &t[channels + c]);
            const double sum_dy_xhat = (t[channels + c] - (double)save_mean[c] * t[c]) * (double)save_invstd[c];
            if (dgamma) dgamma[c] = (float)sum_dy_xhat;
            if (dbeta) dbeta[c] = (float)t[c];
        }
        sync->reduce(sync->ctx, t, 2 * channels);
        m = *sync->count;
    }
    for (size_t c = 0; c < channels; c++) {
        double sum_dy, sum_dy_x;
        if (sync) sum_dy = sync->sums[c], sum_dy_x = sync->sums[channels + c];
        else blocked_total(n, channels, partial, c, &sum_dy, &sum_dy_x);
        const double mean = save_mean[c], invstd = save_invstd[c];
        const double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
        if (dgamma && !sync) dgamma[c] = (float)sum_dy_xhat;
        if (dbeta && !sync) dbeta[c] = (float)sum_dy;
        const double scale = (gamma ? gamma[c] : 1.0) * invstd;
        const double mean_dy = m > 0 ? sum_dy / m : 0.0, mean_dy_xhat = m > 0 ? sum_dy_xhat / m : 0.0;
        k[c] = (float)(scale * mean_dy);
        k[channels + c] = (float)scale;
        k[2 * channels + c] = (float)(scale * invstd * mean_dy_xhat);
        k[3 * channels + c] = (float)mean;
    }
    if (dx && local_m) blocked_grad(n, channels, hw, layout, x, y, relu_k, dy, k, dx, dx_bf16);
}

void cnn_cpu_bn_backward_eval_blocked(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *y,
                                      const float *relu_k, const float *dy, const float *gamma, const float *running_mean,
                                      const float *running_var, float eps, float *dx, int dx_bf16, float *dgamma,
                                      float *dbeta, double *partial)
{
    blocked_sums(n, channels, hw, layout, dy, y, relu_k, x, partial, NULL);
    float *k = blocked_consts(n, channels, partial);
    for (size_t c = 0; c < channels; c++) {
        double sum_dy, sum_dy_x;
        blocked_total(n, channels, partial, c, &sum_dy, &sum_dy_x);
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps), mean = running_mean[c];
        if (dgamma) dgamma[c] = (float)((sum_dy_x - mean * sum_dy) * invstd);
        if (dbeta) dbeta[c] = (float)sum_dy;
        k[c] = 0.0f;
        k[channels + c] = (float)((gamma ? gamma[c] : 1.0) * invstd);
        k[2 * channels + c] = 0.0f;
        k[3 * channels + c] = 0.0f;
    }
    if (dx) blocked_grad(n, channels, hw, layout, x, y, relu_k, dy, k, dx, dx_bf16);
}

void cnn_cpu_bn_apply_bf16(size_t n, size_t channels, size_t hw, size_t layout, const void *x, const float *affine,
                           int relu, uint16_t *y16)
{
    blocked_affine(n, channels, hw, layout, x, affine, NULL, relu, NULL, y16);
}

void cnn_cpu_bn_apply(size_t n, size_t channels, size_t hw, size_t layout, const float *x, const float *affine, int relu,
                      float *y)
{
    if (layout) {
        blocked_affine(n, channels, hw, layout, x, affine, NULL, relu, y, NULL);
        return;
    }
    const size_t stride = channels * hw;
#pragma omp parallel for schedule(static) if (n * hw * channels >= CNN_CPU_PARALLEL_MIN)
    for (size_t c = 0; c < channels; c++)
        channel_affine(n, hw, stride, x + c * hw, affine[c], affine[channels + c], affine[2 * channels + c], relu,
                       y + c * hw);
}
