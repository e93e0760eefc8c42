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
 * Wide layers go a block of output channels at a time (block_channels):
 * F(4x4, 3x3)'s transformed weights take four times the weights' memory, a
 * 512 x 512 layer's 36 MiB, and the weights' gradient sums as much; a
 * quarter of the output channels at a time keeps 9 MiB of them (preact18
 * at batch 128: 52 MiB of kernel scratch down to about 25), and the GEMMs
 * are still hundreds wide: 512@4 at batch 128 ran faster by blocks
 * (conv_bench wide, forward + backward: 70-75 -> 66 ms; 512@7 at batch 32
 * 73 -> 65-67).
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

/* At most this many floats of transformed weights, or of their gradient's
 * sums, at a time: a 256 x 256 layer's for F(5x5, 3x3), 12 MiB. Blocking
 * the 256-channel layers too (at 9 MiB) cost resnet50's 256@14 on F5 9% at
 * batch 128 (conv_bench wide: 181 -> 198 ms a forward + backward). */
#define GEMM_BLOCK_FLOATS ((size_t)256 * 256 * 49)
static size_t block_floats = GEMM_BLOCK_FLOATS;

void mx_wino_gemm_block_floats_set(size_t floats) { block_floats = floats ? floats : GEMM_BLOCK_FLOATS; }

size_t mx_wino_gemm_block_channels(const mx_conv2d_desc *d)
{
    const size_t PC = wino_points(mx_wino_tile(d)) * d->in_channels;
    size_t kn = d->out_channels;
    while (PC * kn > block_floats && kn % 2 == 0 && (kn / 2) % WB == 0) kn /= 2;
    return kn;
}

/* Tiles per chunk for d when kn output channels go at a time. */
static size_t chunk_tiles(const mx_conv2d_desc *d, size_t kn)
{
    const size_t per = wino_points(mx_wino_tile(d)) * (d->in_channels + kn);
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
static size_t even_chunk_tiles(const mx_conv2d_desc *d, size_t kn, size_t tiles)
{
    const size_t most = chunk_tiles(d, kn), chunks = (tiles + most - 1) / most;
    return chunks ? (tiles + chunks - 1) / chunks : most;
}

/* Floats of a block's transformed weights (kn output channels), rounded to
 * whole cache lines. */
static size_t block_u_floats(const mx_conv2d_desc *d, size_t kn)
{
    return (wino_points(mx_wino_tile(d)) * d->in_channels * kn + 15) / 16 * 16;
}

size_t mx_wino_gemm_scratch_floats(const mx_conv2d_desc *d, mx_wino_gemm_use use)
{
    const size_t P = wino_points(mx_wino_tile(d)), C = d->in_channels;
    const size_t kn = use == MX_WINO_GEMM_HELD_U ? d->out_channels : mx_wino_gemm_block_channels(d);
    const size_t tc = chunk_tiles(d, kn), tiles = P * (wino_point_stride(tc, C) + wino_point_stride(tc, kn));
    if (use == MX_WINO_GEMM_DW) return tiles + P * dw_plain_stride(C, kn);
    return tiles + (use == MX_WINO_GEMM_FROM_W ? block_u_floats(d, kn) : 0);
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

mx_status mx_wino_gemm_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *w,
                               int transposed, const float *bias, const float *addend, int relu, float *y,
                               float *scratch)
{
    const int tile = mx_wino_tile(d);
    const size_t C = d->in_channels, K = d->out_channels, KB = K / WB, OH = d->out_h, OW = d->out_w;
    const size_t kn = u ? K : mx_wino_gemm_block_channels(d), KNB = kn / WB;
    const size_t P = wino_points(tile), tiles = wino_batch_tiles(d, tile, n), tc_max = even_chunk_tiles(d, kn, tiles);
    const size_t vs = wino_point_stride(tc_max, C), ys = wino_point_stride(tc_max, kn);
    float *ub = u ? NULL : scratch, *v = scratch + (u ? 0 : block_u_floats(d, kn)), *m = v + P * vs;
    if (!u && kn == K) mx_wino_gemm_transform_block(d, w, transposed, 0, K, ub); /* once for every chunk */
    for (size_t first = 0; first < tiles; first += tc_max) {
        const size_t tc = tiles - first < tc_max ? tiles - first : tc_max;
        transform_inputs(d, tile, first, tc, x, v, vs);
        for (size_t k0 = 0; k0 < K; k0 += kn) {
            if (!u && kn < K) mx_wino_gemm_transform_block(d, w, transposed, k0, kn, ub);
            const mx_status st = point_gemms(P, 'N', tc, kn, C, v, vs, C, u ? u : ub, C * kn, kn, 0.0f, m, ys, kn);
            if (st != MX_OK) return st;
#pragma omp parallel for schedule(static)
            for (long job = 0; job < (long)(tc * KNB); job++) {
                const size_t t = (size_t)job / KNB, kb = k0 / WB + (size_t)job % KNB;
                const wino_tile_at at = wino_locate(d, tile, first + t);
                const size_t plane = (at.s * KB + kb) * OH * OW * WB;
                const vec bv = bias ? v_loadu(bias + kb * WB) : v_zero();
                const float *mt = m + t * kn + (kb * WB - k0), *add = addend ? addend + plane : NULL;
                if (tile == 4) output_tile(4, mt, ys, bv, add, relu, y + plane, OH, OW, at.row, at.col);
                else if (tile == 5) output_tile(5, mt, ys, bv, add, relu, y + plane, OH, OW, at.row, at.col);
                else output_tile(2, mt, ys, bv, add, relu, y + plane, OH, OW, at.row, at.col);
            }
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
    const size_t kn = mx_wino_gemm_block_channels(d), KNB = kn / WB;
    const size_t P = wino_points(tile), tiles = wino_batch_tiles(d, tile, n), tc_max = even_chunk_tiles(d, kn, tiles);
    const size_t vs = wino_point_stride(tc_max, C), ms = wino_point_stride(tc_max, kn);
    float *v = scratch, *m = scratch + P * vs, *du = m + P * ms;
    if (tiles == 0) {
        for (size_t i = 0; i < K * C * 9; i++) dw[i] = 0;
        return MX_OK;
    }
    /* Block by block of output channels, each summed over every chunk;
     * one chunk's transformed inputs serve every block. */
    for (size_t k0 = 0; k0 < K; k0 += kn) {
        for (size_t first = 0; first < tiles; first += tc_max) {
            const size_t tc = tiles - first < tc_max ? tiles - first : tc_max;
            if (k0 == 0 || tc < tiles) transform_inputs(d, tile, first, tc, x, v, vs);
#pragma omp parallel for schedule(static)
            for (long job = 0; job < (long)(tc * KNB); job++) {
                const size_t t = (size_t)job / KNB, kb = k0 / WB + (size_t)job % KNB;
                const wino_tile_at at = wino_locate(d, tile, first + t);
                const float *dyb = dy + (at.s * KB + kb) * OH * OW * WB;
                float *mt = m + t * kn + (kb * WB - k0);
                if (tile == 4) grad_tile(4, dyb, OH, OW, at.row, at.col, mt, ms);
                else if (tile == 5) grad_tile(5, dyb, OH, OW, at.row, at.col, mt, ms);
                else grad_tile(2, dyb, OH, OW, at.row, at.col, mt, ms);
            }
            /* dU[p], as C x kn, += V[p]^T M[p]: dw_from_domain then reads
             * each input channel's block of output channels as one vector
             * (stored K x C, it gathered them a row apart and took a fifth
             * of conv_bench's wide layers). */
            const mx_status st = point_gemms(P, 'T', C, kn, tc, v, vs, C, m, ms, kn, first ? 1.0f : 0.0f, du,
                                             dw_plain_stride(C, kn), kn);
            if (st != MX_OK) return st;
        }
        dw_from_domain(d, du, 1, 0, 1, k0, kn, dw);
    }
    return MX_OK;
}

#else /* no AVX-512 nor AVX2: callers use oneDNN's direct convolution */

mx_status mx_wino_gemm_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *w,
                               int transposed, const float *bias, const float *addend, int relu, float *y,
                               float *scratch)
{
    (void)d, (void)n, (void)x, (void)u, (void)w, (void)transposed, (void)bias, (void)addend, (void)relu, (void)y,
        (void)scratch;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no Winograd kernels");
}

mx_status mx_wino_gemm_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                        float *db, float *scratch)
{
    (void)d, (void)n, (void)x, (void)dy, (void)dw, (void)db, (void)scratch, (void)dw_from_domain,
        (void)bias_gradient, (void)even_chunk_tiles;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no Winograd kernels");
}

#endif
