/* Winograd convolutions of wide layers over a whole batch (winograd.h
 * mx_wino_gemm_*).
 *
 * winograd.c's kernel works a few tiles at a time and keeps their
 * transformed inputs in L1; each group then streams all the transformed
 * weights, points x in x out floats: at 256 channels 9 MiB for F(4x4, 3x3),
 * so it loses to oneDNN's direct kernel there (conv_bench: 256@8 70.7 ms
 * against 56.7 at batch 128 on AVX2). Here the batch's tiles go through in
 * chunks of hundreds:
 *   1. every tile of the chunk transformed (V = B^T d B, and for the
 *      weights' gradient M = A dY A^T), stored point-major, each point a
 *      tiles x channels matrix;
 *   2. per point one GEMM (oneDNN's sgemm, single-threaded inside the
 *      team, the points shared among the threads): Y = V U for the forward,
 *      dU^T += V^T M for the weights' gradient;
 *   3. the forward's output transform with bias, addend and ReLU; the
 *      weights' G^T dU G once after the last chunk.
 * The GEMMs are large enough (hundreds by hundreds by hundreds) to run near
 * the machine's SGEMM peak (dnnl_sgemm measured 140-170 GFLOP/s of 169 on
 * 2 AVX2 cores for 113-512 tiles x 512 x 512), and F(4x4, 3x3) needs a
 * quarter of the direct kernel's multiplies. */
#include <oneapi/dnnl/dnnl.h>

#include "mixreg/error.h"
#include "nn/winograd.h"
#include "nn/winograd_simd.h"

/* A chunk's transformed tiles, at most this many floats (16 MiB) but at
 * least GEMM_MIN_TILES tiles: below ~100 rows the GEMMs lose a tenth of
 * their speed (113 tiles: 139 GFLOP/s, 512: 167). */
#define GEMM_CHUNK_FLOATS ((size_t)1 << 22)
#define GEMM_MIN_TILES 64

/* Tiles per chunk for d. */
static size_t chunk_tiles(const mx_conv2d_desc *d)
{
    const size_t per = wino_points(mx_wino_tile(d)) * (d->in_channels + d->out_channels);
    const size_t t = GEMM_CHUNK_FLOATS / per;
    return t < GEMM_MIN_TILES ? GEMM_MIN_TILES : t;
}

/* The tiles of each chunk when n tiles go through in chunks of at most
 * chunk_tiles(d): as many chunks as that needs, of near-equal size. With
 * full chunks and the remainder last, resnet50's 512@7 layers at batch 32
 * (128 tiles, chunks of 113) ran a chunk of 15 tiles, whose GEMMs (15 rows,
 * or for the weights' gradient a sum of 15) streamed all 36 MiB of the
 * transformed weights again for an eighth of the work; so did preact18's
 * 512@4 at batch 128. bench/conv_bench on AVX2, forward + backward ms, 2
 * alternations: 512@7 at batch 32 76.4-78.7 -> 72.8-74.4, 512@4 at batch
 * 128 76.2-79.1 -> 71.0-72.7. */
static size_t even_chunk_tiles(const mx_conv2d_desc *d, size_t tiles)
{
    const size_t most = chunk_tiles(d), chunks = (tiles + most - 1) / most;
    return chunks ? (tiles + chunks - 1) / chunks : most;
}

size_t mx_wino_gemm_scratch_floats(const mx_conv2d_desc *d, int weights_grad)
{
    const size_t P = wino_points(mx_wino_tile(d)), tc = chunk_tiles(d);
    const size_t tiles = P * (wino_point_stride(tc, d->in_channels) + wino_point_stride(tc, d->out_channels));
    return tiles + (weights_grad ? P * dw_plain_stride(d->in_channels, d->out_channels) : 0);
}

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))

/* V for tiles [first, first + tc): tile t's channel c of point p at
 * v[p * vs + t * C + c]. */
static void transform_inputs(const mx_conv2d_desc *d, int tile, size_t first, size_t tc, const float *x, float *v,
                             size_t vs)
{
    const size_t C = d->in_channels, CB = C / WB, H = d->in_h, W = d->in_w;
#pragma omp parallel for schedule(static)
    for (long job = 0; job < (long)(tc * CB); job++) {
        const size_t t = (size_t)job / CB, cb = (size_t)job % CB;
        const wino_tile_at at = wino_locate(d, tile, first + t);
        const float *xb = x + (at.s * CB + cb) * H * W * WB;
        float *out = v + t * C + cb * WB;
        if (tile == 4) input_tile(4, xb, (long)H, (long)W, (long)at.row - 1, (long)at.col - 1, out, vs);
        else if (tile == 5) input_tile(5, xb, (long)H, (long)W, (long)at.row - 1, (long)at.col - 1, out, vs);
        else input_tile(2, xb, (long)H, (long)W, (long)at.row - 1, (long)at.col - 1, out, vs);
    }
}

/* One sgemm per point, shared among the threads: c[p] = beta c[p] +
 * op(a[p]) b[p] (row-major, op transposing a with trans_a 'T'). */
static mx_status point_gemms(size_t P, char trans_a, size_t m, size_t n, size_t k, const float *a, size_t as,
                             size_t lda, const float *b, size_t bs, size_t ldb, float beta, float *c, size_t cs,
                             size_t ldc)
{
    int failed = 0;
#pragma omp parallel for schedule(static) reduction(| : failed)
    for (long p = 0; p < (long)P; p++)
        failed |= dnnl_sgemm(trans_a, 'N', (dnnl_dim_t)m, (dnnl_dim_t)n, (dnnl_dim_t)k, 1.0f, a + (size_t)p * as,
                             (dnnl_dim_t)lda, b + (size_t)p * bs, (dnnl_dim_t)ldb, beta, c + (size_t)p * cs,
                             (dnnl_dim_t)ldc) != dnnl_success;
    return failed ? mx_error_set(MX_ERR_UNSUPPORTED, "oneDNN's sgemm failed in a Winograd convolution") : MX_OK;
}

mx_status mx_wino_gemm_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *bias,
                               const float *addend, int relu, float *y, float *scratch)
{
    const int tile = mx_wino_tile(d);
    const size_t C = d->in_channels, K = d->out_channels, KB = K / WB, OH = d->out_h, OW = d->out_w;
    const size_t P = wino_points(tile), tiles = wino_batch_tiles(d, tile, n), tc_max = even_chunk_tiles(d, tiles);
    const size_t vs = wino_point_stride(tc_max, C), ys = wino_point_stride(tc_max, K);
    float *v = scratch, *m = scratch + P * vs;
    for (size_t first = 0; first < tiles; first += tc_max) {
        const size_t tc = tiles - first < tc_max ? tiles - first : tc_max;
        transform_inputs(d, tile, first, tc, x, v, vs);
        const mx_status st = point_gemms(P, 'N', tc, K, C, v, vs, C, u, C * K, K, 0.0f, m, ys, K);
        if (st != MX_OK) return st;
#pragma omp parallel for schedule(static)
        for (long job = 0; job < (long)(tc * KB); job++) {
            const size_t t = (size_t)job / KB, kb = (size_t)job % KB;
            const wino_tile_at at = wino_locate(d, tile, first + t);
            const size_t plane = (at.s * KB + kb) * OH * OW * WB;
            const vec bv = bias ? v_loadu(bias + kb * WB) : v_zero();
            const float *mt = m + t * K + kb * WB, *add = addend ? addend + plane : NULL;
            if (tile == 4) output_tile(4, mt, ys, bv, add, relu, y + plane, OH, OW, at.row, at.col);
            else if (tile == 5) output_tile(5, mt, ys, bv, add, relu, y + plane, OH, OW, at.row, at.col);
            else output_tile(2, mt, ys, bv, add, relu, y + plane, OH, OW, at.row, at.col);
        }
    }
    return MX_OK;
}

mx_status mx_wino_gemm_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                        float *db, float *scratch)
{
    if (db) bias_gradient(d, n, dy, db);
    if (!dw) return MX_OK;
    const int tile = mx_wino_tile(d);
    const size_t C = d->in_channels, K = d->out_channels, KB = K / WB, OH = d->out_h, OW = d->out_w;
    const size_t P = wino_points(tile), tiles = wino_batch_tiles(d, tile, n), tc_max = even_chunk_tiles(d, tiles);
    const size_t vs = wino_point_stride(tc_max, C), ms = wino_point_stride(tc_max, K);
    float *v = scratch, *m = scratch + P * vs, *du = m + P * ms;
    for (size_t first = 0; first < tiles; first += tc_max) {
        const size_t tc = tiles - first < tc_max ? tiles - first : tc_max;
        transform_inputs(d, tile, first, tc, x, v, vs);
#pragma omp parallel for schedule(static)
        for (long job = 0; job < (long)(tc * KB); job++) {
            const size_t t = (size_t)job / KB, kb = (size_t)job % KB;
            const wino_tile_at at = wino_locate(d, tile, first + t);
            const float *dyb = dy + (at.s * KB + kb) * OH * OW * WB;
            if (tile == 4) grad_tile(4, dyb, OH, OW, at.row, at.col, m + t * K + kb * WB, ms);
            else if (tile == 5) grad_tile(5, dyb, OH, OW, at.row, at.col, m + t * K + kb * WB, ms);
            else grad_tile(2, dyb, OH, OW, at.row, at.col, m + t * K + kb * WB, ms);
        }
        /* dU[p], as C x K, += V[p]^T M[p]: dw_from_domain then reads each
         * input channel's block of output channels as one vector (stored
         * K x C, it gathered them a row apart and took a fifth of
         * conv_bench's wide layers). */
        const mx_status st = point_gemms(P, 'T', C, K, tc, v, vs, C, m, ms, K, first ? 1.0f : 0.0f, du,
                                         dw_plain_stride(C, K), K);
        if (st != MX_OK) return st;
    }
    if (tiles == 0) {
        for (size_t i = 0; i < K * C * 9; i++) dw[i] = 0;
        return MX_OK;
    }
    dw_from_domain(d, du, 1, 0, 1, dw);
    return MX_OK;
}

#else /* no AVX-512 nor AVX2: callers use oneDNN's direct convolution */

mx_status mx_wino_gemm_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *bias,
                               const float *addend, int relu, float *y, float *scratch)
{
    (void)d, (void)n, (void)x, (void)u, (void)bias, (void)addend, (void)relu, (void)y, (void)scratch;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no Winograd kernels");
}

mx_status mx_wino_gemm_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                        float *db, float *scratch)
{
    (void)d, (void)n, (void)x, (void)dy, (void)dw, (void)db, (void)scratch, (void)dw_from_domain,
        (void)bias_gradient;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no Winograd kernels");
}

#endif
