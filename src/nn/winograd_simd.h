/* The vector type and the tile transforms shared by the Winograd kernels
 * (winograd.c: forward; winograd_dw.c: weights' gradient; winograd_gemm.c:
 * both for wide layers), one channel block
 * (WB lanes: nChw16c with AVX-512, nChw8c with AVX2) per vector. Private to
 * those two files: every function is static inline, so each keeps its
 * constant tile sizes after inlining. */
#ifndef MIXREG_NN_WINOGRAD_SIMD_H
#define MIXREG_NN_WINOGRAD_SIMD_H

#include <stddef.h>

#include "nn/winograd.h"

#include <immintrin.h>

/* The vector the kernels work on: one channel block. */
#if defined(__AVX512F__)
#define WB 16
typedef __m512 vec;
#define v_load _mm512_load_ps
#define v_loadu _mm512_loadu_ps
#define v_store _mm512_store_ps
#define v_storeu _mm512_storeu_ps
#define v_zero _mm512_setzero_ps
#define v_set1 _mm512_set1_ps
#define v_add _mm512_add_ps
#define v_sub _mm512_sub_ps
#define v_fmadd _mm512_fmadd_ps
#define v_fnmadd _mm512_fnmadd_ps
#define v_fmsub _mm512_fmsub_ps
#define v_mul _mm512_mul_ps
/* max(v, 0) with NaN passing through, as the other ReLUs */
static inline vec v_relu(vec v)
{
    const __mmask16 keep =
        _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(keep, _mm512_setzero_ps(), v);
}
#elif defined(__AVX2__) && defined(__FMA__)
#define WB 8
typedef __m256 vec;
#define v_load _mm256_load_ps
#define v_loadu _mm256_loadu_ps
#define v_store _mm256_store_ps
#define v_storeu _mm256_storeu_ps
#define v_zero _mm256_setzero_ps
#define v_set1 _mm256_set1_ps
#define v_add _mm256_add_ps
#define v_sub _mm256_sub_ps
#define v_fmadd _mm256_fmadd_ps
#define v_fnmadd _mm256_fnmadd_ps
#define v_fmsub _mm256_fmsub_ps
#define v_mul _mm256_mul_ps
static inline vec v_relu(vec v)
{
    const __m256 keep =
        _mm256_or_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    return _mm256_blendv_ps(_mm256_setzero_ps(), v, keep);
}
#else
#define WB 16 /* no kernel (mx_wino_available is 0); the layout helpers below still compile */
#endif

/* G for each tile size: a x 3 (Lavin and Gray's, points 0, 1, -1 (, 2, -2), infinity). */
static const float G2[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
static const float G4[6][3] = {{1.0f / 4, 0, 0},
                               {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                               {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                               {1.0f / 24, 1.0f / 12, 1.0f / 6},
                               {1.0f / 24, -1.0f / 12, 1.0f / 6},
                               {0, 0, 1}};
/* F(5x5, 3x3) (AVX2 builds' 14x14 planes: mx_wino_tile): points 0, 1, -1,
 * 1/2, -1/2, 2, infinity, the Toom-Cook construction with each row of G
 * divided by what makes bt5's row of B^T integral (4, 4, 4, 2, 2, 4, 4).
 * Of the 7-point sets tried (numpy, float32 against float64, 256 channels
 * of post-ReLU inputs), its rounding error was the lowest, about F4's: two
 * points of +-2 (A^T's 16s) are worse than 2 and +-1/2. */
static const float G5[7][3] = {{-1.0f / 2, 0, 0},
                               {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                               {-1.0f / 18, 1.0f / 18, -1.0f / 18},
                               {8.0f / 9, 4.0f / 9, 2.0f / 9},
                               {8.0f / 15, -4.0f / 15, 2.0f / 15},
                               {1.0f / 90, 1.0f / 45, 2.0f / 45},
                               {0, 0, 1.0f / 4}};

/* The largest tile side a = tile + 2 (F5's 7), the side of the kernels'
 * per-tile arrays. */
#define WINO_MAX_SIDE 7

/* Winograd points of a tile: (tile + 2)^2 (16 for F2, 36 for F4, 49 for F5). */
static inline size_t wino_points(int tile) { return (size_t)(tile + 2) * (size_t)(tile + 2); }

/* G (a x 3) for the tile side a. */
static inline const float (*wino_g(int a))[3] { return a == 7 ? G5 : a == 6 ? G4 : G2; }

/* Floats between two points in a point-major buffer of `tiles` tiles of
 * `channels`, plus a cache line, so that a tile's points, stored one after
 * the other, do not all fall in one L1 set when tiles x channels is a
 * multiple of 1024 (measured on the weights' gradient: 16@32 at batch 128
 * took 5.0 ms with 64 tiles a group and 3.5 with 56 before the padding). */
static inline size_t wino_point_stride(size_t tiles, size_t channels) { return tiles * channels + 16; }

/* The output tiles of n samples, and where batch tile `index` (row-major
 * within a sample, sample after sample) lies: its sample and its first
 * output row and column. */
static inline size_t wino_batch_tiles(const mx_conv2d_desc *d, int tile, size_t n)
{
    const size_t T = (size_t)tile;
    return n * ((d->out_h + T - 1) / T) * ((d->out_w + T - 1) / T);
}

typedef struct {
    size_t s, row, col;
} wino_tile_at;

static inline wino_tile_at wino_locate(const mx_conv2d_desc *d, int tile, size_t index)
{
    const size_t T = (size_t)tile, tiles_x = (d->out_w + T - 1) / T, per_sample = (d->out_h + T - 1) / T * tiles_x;
    const size_t at = index % per_sample;
    return (wino_tile_at){index / per_sample, at / tiles_x * T, at % tiles_x * T};
}

/* Where dU[point][k][c] lives: [point][k / WB][c][k % WB], as winograd.c's u. */
static inline size_t dw_index(size_t C, size_t K, size_t point, size_t k, size_t c)
{
    return ((point * (K / WB) + k / WB) * C + c) * WB + k % WB;
}

/* Floats between two points of a plain [point][c][k] dU (winograd_gemm.c):
 * padded by a cache line, as wino_point_stride, or a layer's points (1 MiB
 * apart at 512 channels) would all fall in one L1 and L2 set. */
static inline size_t dw_plain_stride(size_t C, size_t K) { return wino_point_stride(C, K); }

/* dw [K][C][3][3] = G^T dU G for the filters of output channels [k0, k0 +
 * kn), dU being the sum of `nparts` parts (points x K x C floats each,
 * `part` floats apart, added in order), laid out as dw_index says (k0 0, kn
 * K), or with `plain` as [point][c][k - k0], dw_plain_stride(C, kn) floats a
 * point. */
static inline void dw_from_domain(const mx_conv2d_desc *d, const float *parts, int nparts, size_t part, int plain,
                                  size_t k0, size_t kn, float *dw)
{
    const size_t C = d->in_channels, K = d->out_channels;
    const int a = mx_wino_tile(d) + 2;
    const float(*G)[3] = wino_g(a);
    const size_t KB = kn / WB, ps = dw_plain_stride(C, kn);
    const long work = (long)(C * KB);
#pragma omp parallel for schedule(static) if (work >= 64)
    for (long job = 0; job < work; job++) {
        /* Consecutive jobs read consecutive WB-float rows of each point:
         * the input channels of dw_index's layout, the blocks of output
         * channels of the plain one. */
        const size_t c = plain ? (size_t)job / KB : (size_t)job % C, kb = plain ? (size_t)job % KB : (size_t)job / C;
        float du[WINO_MAX_SIDE][WINO_MAX_SIDE][WB], t[3][WINO_MAX_SIDE][WB];
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++) {
                const size_t point = (size_t)(i * a + j);
                const float *at = parts + (plain ? point * ps + c * kn + kb * WB : dw_index(C, K, point, k0 + kb * WB, c));
#pragma omp simd
                for (int l = 0; l < WB; l++) du[i][j][l] = at[l];
                for (int p = 1; p < nparts; p++)
#pragma omp simd
                    for (int l = 0; l < WB; l++) du[i][j][l] += at[(size_t)p * part + (size_t)l];
            }
        for (int r = 0; r < 3; r++) /* G^T dU */
            for (int j = 0; j < a; j++) {
#pragma omp simd
                for (int l = 0; l < WB; l++) {
                    float s = 0;
                    for (int i = 0; i < a; i++) s += G[i][r] * du[i][j][l];
                    t[r][j][l] = s;
                }
            }
        for (int r = 0; r < 3; r++) /* (G^T dU) G */
            for (int q = 0; q < 3; q++)
#pragma omp simd
                for (int l = 0; l < WB; l++) {
                    float s = 0;
                    for (int j = 0; j < a; j++) s += t[r][j][l] * G[j][q];
                    dw[((k0 + kb * WB + (size_t)l) * C + c) * 9 + (size_t)(r * 3 + q)] = s;
                }
    }
}

/* db[k] = the sum of dy over samples and pixels (blocked dy). */
static inline void bias_gradient(const mx_conv2d_desc *d, size_t n, const float *dy, float *db)
{
    const size_t K = d->out_channels, KB = K / WB, hw = d->out_h * d->out_w;
#pragma omp parallel for schedule(static)
    for (long kb = 0; kb < (long)KB; kb++) {
        float sum[WB] = {0};
        for (size_t s = 0; s < n; s++) {
            const float *p = dy + (s * KB + (size_t)kb) * hw * WB;
            for (size_t i = 0; i < hw; i++)
#pragma omp simd
                for (int l = 0; l < WB; l++) sum[l] += p[i * WB + (size_t)l];
        }
        for (int l = 0; l < WB; l++) db[(size_t)kb * WB + (size_t)l] = sum[l];
    }
}

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))

/* One tile's a x a patch of one channel block at input (row0, col0), which may
 * start at -1 or run past the edge (zero padding). */
static inline __attribute__((always_inline)) void load_patch(int a, const float *xb, long H, long W, long row0,
                                                              long col0, vec d[WINO_MAX_SIDE][WINO_MAX_SIDE])
{
    if (row0 >= 0 && col0 >= 0 && row0 + a <= H && col0 + a <= W) {
        const float *p = xb + ((size_t)row0 * (size_t)W + (size_t)col0) * WB;
#pragma GCC unroll 7
        for (int i = 0; i < a; i++)
#pragma GCC unroll 7
            for (int j = 0; j < a; j++) d[i][j] = v_loadu(p + ((size_t)i * (size_t)W + (size_t)j) * WB);
        return;
    }
#pragma GCC unroll 7
    for (int i = 0; i < a; i++) {
        const long r = row0 + i;
#pragma GCC unroll 7
        for (int j = 0; j < a; j++) {
            const long c = col0 + j;
            d[i][j] = (r >= 0 && r < H && c >= 0 && c < W) ? v_loadu(xb + ((size_t)r * (size_t)W + (size_t)c) * WB)
                                                           : v_zero();
        }
    }
}

/* B^T x for F2 (rows x0-x2, x1+x2, x2-x1, x1-x3), on 4 vectors in place. */
static inline __attribute__((always_inline)) void bt2(vec *x0, vec *x1, vec *x2, vec *x3)
{
    const vec a = v_sub(*x0, *x2), b = v_add(*x1, *x2), c = v_sub(*x2, *x1),
                 e = v_sub(*x1, *x3);
    *x0 = a, *x1 = b, *x2 = c, *x3 = e;
}

/* B^T x for F4 on 6 vectors in place:
 *   4x0 - 5x2 + x4, (x3 + x4) - 4(x1 + x2), (x4 - x3) + 4(x1 - x2),
 *   (x4 - x2) + 2(x3 - x1), (x4 - x2) - 2(x3 - x1), 4x1 - 5x3 + x5. */
static inline __attribute__((always_inline)) void bt4(vec x[6])
{
    const vec four = v_set1(4.0f), five = v_set1(5.0f), two = v_set1(2.0f);
    const vec r0 = v_fnmadd(five, x[2], v_fmadd(four, x[0], x[4]));
    const vec r1 = v_fnmadd(four, v_add(x[1], x[2]), v_add(x[3], x[4]));
    const vec r2 = v_fmadd(four, v_sub(x[1], x[2]), v_sub(x[4], x[3]));
    const vec q = v_sub(x[4], x[2]), e = v_sub(x[3], x[1]);
    const vec r3 = v_fmadd(two, e, q), r4 = v_fnmadd(two, e, q);
    const vec r5 = v_fnmadd(five, x[3], v_fmadd(four, x[1], x[5]));
    x[0] = r0, x[1] = r1, x[2] = r2, x[3] = r3, x[4] = r4, x[5] = r5;
}

/* B^T x for F5 on 7 vectors in place, B^T's rows
 *   -2 1 10 -5 -8 4 0,  0 2 1 -9 -4 4 0,  0 -2 3 7 -12 4 0,  0 2 3 -4 -3 2 0,
 *   0 -2 5 0 -5 2 0,  0 1 0 -5 0 4 0,  0 -2 1 10 -5 -8 4:
 * the rows of each pair of points +-p are e + o and e - o, where e applies
 * to x2..x5 the pattern o applies to x1..x4 (for +-1/2, twice that
 * pattern); the first and last rows are one pattern on x0..x5 and x1..x6.
 * 28 operations. */
static inline __attribute__((always_inline)) void bt5(vec x[7])
{
    const vec two = v_set1(2.0f), four = v_set1(4.0f), five = v_set1(5.0f), eight = v_set1(8.0f), ten = v_set1(10.0f);
    /* 2a - b - 8c + 4d and 2a - b - 2c + d */
#define BT5_P1(a, b, c, d) v_fmadd(four, d, v_fnmadd(eight, c, v_fmsub(two, a, b)))
#define BT5_P2(a, b, c, d) v_add(d, v_fnmadd(two, c, v_fmsub(two, a, b)))
    /* -2a + b + 10c - 5d - 8e + 4f */
#define BT5_END(a, b, c, d, e, f) v_fmadd(four, f, v_fnmadd(eight, e, v_fnmadd(five, d, v_fmadd(ten, c, v_fnmadd(two, a, b)))))
    const vec r0 = BT5_END(x[0], x[1], x[2], x[3], x[4], x[5]);
    const vec r6 = BT5_END(x[1], x[2], x[3], x[4], x[5], x[6]);
    const vec e1 = BT5_P1(x[2], x[3], x[4], x[5]), o1 = BT5_P1(x[1], x[2], x[3], x[4]);
    const vec p3 = BT5_P2(x[2], x[3], x[4], x[5]), e3 = v_add(p3, p3), o3 = BT5_P2(x[1], x[2], x[3], x[4]);
    const vec r5 = v_fmadd(four, x[5], v_fnmadd(five, x[3], x[1]));
#undef BT5_P1
#undef BT5_P2
#undef BT5_END
    x[0] = r0, x[1] = v_add(e1, o1), x[2] = v_sub(e1, o1), x[3] = v_add(e3, o3), x[4] = v_sub(e3, o3), x[5] = r5;
    x[6] = r6;
}

/* B^T x in place for the tile side a of F4 (6) or F5 (7). */
static inline __attribute__((always_inline)) void bt_apply(int a, vec *x)
{
    if (a == 7) bt5(x);
    else bt4(x);
}

/* V = B^T d B for one tile, written to v[point * v_stride]. */
static inline __attribute__((always_inline)) void input_tile(int tile, const float *xb, long H, long W, long row0,
                                                              long col0, float *v, size_t v_stride)
{
    const int a = tile + 2;
    vec d[WINO_MAX_SIDE][WINO_MAX_SIDE];
    load_patch(a, xb, H, W, row0, col0, d);
    if (a == 4) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) bt2(&d[0][j], &d[1][j], &d[2][j], &d[3][j]); /* B^T d, column by column */
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) bt2(&d[i][0], &d[i][1], &d[i][2], &d[i][3]); /* (B^T d) B, row by row */
    } else { /* F4, F5: B^T d column by column, then (B^T d) B row by row */
#pragma GCC unroll 7
        for (int j = 0; j < a; j++) {
            vec col[WINO_MAX_SIDE];
#pragma GCC unroll 7
            for (int i = 0; i < a; i++) col[i] = d[i][j];
            bt_apply(a, col);
#pragma GCC unroll 7
            for (int i = 0; i < a; i++) d[i][j] = col[i];
        }
#pragma GCC unroll 7
        for (int i = 0; i < a; i++) bt_apply(a, d[i]);
    }
#pragma GCC unroll 7
    for (int i = 0; i < a; i++)
#pragma GCC unroll 7
        for (int j = 0; j < a; j++) v_store(v + (size_t)(i * a + j) * v_stride, d[i][j]);
}

/* A^T x: F2 (rows 1 1 1 0, 0 1 -1 -1) from 4 vectors to 2, F4 (rows
 * 1 1 1 1 1 0, 0 1 -1 2 -2 0, 0 1 1 4 4 0, 0 1 -1 8 -8 1) from 6 to 4, F5
 * (rows 1 1 1 1 1 1 0, then p^i for the points 1 -1 1/2 -1/2 2, i = 1..4,
 * and the last row's 1 at infinity) from 7 to 5. */
static inline __attribute__((always_inline)) void at_apply(int tile, const vec *x, vec *y)
{
    if (tile == 2) {
        y[0] = v_add(v_add(x[0], x[1]), x[2]);
        y[1] = v_sub(v_sub(x[1], x[2]), x[3]);
        return;
    }
    if (tile == 5) {
        const vec s12 = v_add(x[1], x[2]), d12 = v_sub(x[1], x[2]);
        const vec s34 = v_add(x[3], x[4]), d34 = v_sub(x[3], x[4]);
        y[0] = v_add(v_add(v_add(x[0], s12), s34), x[5]);
        y[1] = v_fmadd(v_set1(2.0f), x[5], v_fmadd(v_set1(0.5f), d34, d12));
        y[2] = v_fmadd(v_set1(4.0f), x[5], v_fmadd(v_set1(0.25f), s34, s12));
        y[3] = v_fmadd(v_set1(8.0f), x[5], v_fmadd(v_set1(0.125f), d34, d12));
        y[4] = v_add(v_fmadd(v_set1(16.0f), x[5], v_fmadd(v_set1(0.0625f), s34, s12)), x[6]);
        return;
    }
    const vec s12 = v_add(x[1], x[2]), d12 = v_sub(x[1], x[2]);
    const vec s34 = v_add(x[3], x[4]), d34 = v_sub(x[3], x[4]);
    y[0] = v_add(v_add(x[0], s12), s34);
    y[1] = v_fmadd(v_set1(2.0f), d34, d12);
    y[2] = v_fmadd(v_set1(4.0f), s34, s12);
    y[3] = v_add(v_fmadd(v_set1(8.0f), d34, d12), x[5]);
}

static inline vec epilogue(vec v, vec bias, const float *addend, int relu)
{
    v = v_add(v, bias);
    if (addend) v = v_add(v, v_loadu(addend));
    return relu ? v_relu(v) : v;
}


/* Y = A^T M A for one tile's points m (WB floats each, m_stride floats
 * apart), then the epilogue, stored where the tile falls inside the output. */
static inline __attribute__((always_inline)) void output_tile(int tile, const float *m, size_t m_stride, vec bias,
                                                               const float *addend, int relu, float *yb, size_t OH,
                                                               size_t OW, size_t row0, size_t col0)
{
    const int a = tile + 2;
    vec t[WINO_MAX_SIDE - 2][WINO_MAX_SIDE]; /* A^T M: tile rows x a columns */
#pragma GCC unroll 7
    for (int j = 0; j < a; j++) {
        vec col[WINO_MAX_SIDE], out[WINO_MAX_SIDE - 2];
#pragma GCC unroll 7
        for (int i = 0; i < a; i++) col[i] = v_load(m + (size_t)(i * a + j) * m_stride);
        at_apply(tile, col, out);
#pragma GCC unroll 5
        for (int i = 0; i < tile; i++) t[i][j] = out[i];
    }
#pragma GCC unroll 5
    for (int i = 0; i < tile; i++) {
        const size_t r = row0 + (size_t)i;
        if (r >= OH) break;
        vec y[WINO_MAX_SIDE - 2];
        at_apply(tile, t[i], y);
        const size_t at = (r * OW + col0) * WB;
#pragma GCC unroll 5
        for (int j = 0; j < tile; j++)
            if (col0 + (size_t)j < OW)
                v_storeu(yb + at + (size_t)j * WB,
                                 epilogue(y[j], bias, addend ? addend + at + (size_t)j * WB : NULL, relu));
    }
}

/* A y: F2 (A's rows 1 0, 1 1, 1 -1, 0 -1) from 2 vectors to 4, F4 (rows
 * 1 0 0 0, 1 1 1 1, 1 -1 1 -1, 1 2 4 8, 1 -2 4 -8, 0 0 0 1) from 4 to 6:
 * the transpose of winograd_simd.h's at_apply. */
static inline __attribute__((always_inline)) void a_apply(int tile, const vec *y, vec *x)
{
    if (tile == 2) {
        x[0] = y[0], x[1] = v_add(y[0], y[1]), x[2] = v_sub(y[0], y[1]), x[3] = v_sub(v_zero(), y[1]);
        return;
    }
    if (tile == 5) { /* F5: A's rows 1 0 0 0 0, then p^0..p^4 for 1 -1 1/2 -1/2 2, then 0 0 0 0 1 */
        const vec e = v_add(v_add(y[0], y[2]), y[4]), o = v_add(y[1], y[3]);
        const vec eh = v_fmadd(v_set1(0.0625f), y[4], v_fmadd(v_set1(0.25f), y[2], y[0]));
        const vec oh = v_fmadd(v_set1(0.125f), y[3], v_mul(v_set1(0.5f), y[1]));
        const vec x5 = v_fmadd(v_set1(16.0f), y[4],
                               v_fmadd(v_set1(8.0f), y[3], v_fmadd(v_set1(4.0f), y[2], v_fmadd(v_set1(2.0f), y[1], y[0]))));
        x[0] = y[0], x[1] = v_add(e, o), x[2] = v_sub(e, o), x[3] = v_add(eh, oh), x[4] = v_sub(eh, oh), x[5] = x5;
        x[6] = y[4];
        return;
    }
    const vec e = v_add(y[0], y[2]), o = v_add(y[1], y[3]);
    const vec e4 = v_fmadd(v_set1(4.0f), y[2], y[0]), o4 = v_fmadd(v_set1(8.0f), y[3], v_add(y[1], y[1]));
    x[0] = y[0], x[1] = v_add(e, o), x[2] = v_sub(e, o), x[3] = v_add(e4, o4), x[4] = v_sub(e4, o4), x[5] = y[3];
}

/* M = A dY A^T for one tile: its outputs at (row0, col0) of one block of
 * output channels (zero past the plane's edges), written to
 * mo[point * stride]. */
static inline __attribute__((always_inline)) void grad_tile(int tile, const float *dyb, size_t OH, size_t OW,
                                                             size_t row0, size_t col0, float *mo, size_t stride)
{
    const int a = tile + 2;
    vec y[WINO_MAX_SIDE - 2][WINO_MAX_SIDE - 2], t[WINO_MAX_SIDE][WINO_MAX_SIDE - 2];
    if (row0 + (size_t)tile <= OH && col0 + (size_t)tile <= OW) { /* inside: no test per output */
        const float *p = dyb + (row0 * OW + col0) * WB;
#pragma GCC unroll 5
        for (int i = 0; i < tile; i++)
#pragma GCC unroll 5
            for (int j = 0; j < tile; j++) y[i][j] = v_loadu(p + ((size_t)i * OW + (size_t)j) * WB);
    } else {
#pragma GCC unroll 5
        for (int i = 0; i < tile; i++)
#pragma GCC unroll 5
            for (int j = 0; j < tile; j++)
                y[i][j] = row0 + (size_t)i < OH && col0 + (size_t)j < OW
                              ? v_loadu(dyb + ((row0 + (size_t)i) * OW + col0 + (size_t)j) * WB)
                              : v_zero();
    }
#pragma GCC unroll 5
    for (int j = 0; j < tile; j++) { /* A dY, column by column */
        vec col[WINO_MAX_SIDE - 2], out[WINO_MAX_SIDE];
#pragma GCC unroll 5
        for (int i = 0; i < tile; i++) col[i] = y[i][j];
        a_apply(tile, col, out);
#pragma GCC unroll 7
        for (int i = 0; i < a; i++) t[i][j] = out[i];
    }
#pragma GCC unroll 7
    for (int i = 0; i < a; i++) { /* (A dY) A^T, row by row */
        vec out[WINO_MAX_SIDE];
        a_apply(tile, t[i], out);
#pragma GCC unroll 7
        for (int j = 0; j < a; j++) v_store(mo + (size_t)(i * a + j) * stride, out[j]);
    }
}

#endif

#endif
