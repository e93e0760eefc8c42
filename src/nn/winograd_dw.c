/* The weights' gradient of a 3x3 stride-1 convolution in the Winograd
 * domain (winograd.h mx_wino_backward_weights).
 *
 * The forward is Y = A^T [U .* V] A per tile, with U = G g G^T and
 * V = B^T d B, so the gradient of one filter g (output channel k, input
 * channel c) is
 *   dg = G^T [ sum over samples and tiles of (A dY_k A^T) .* V_c ] G.
 * The sum is inside the transforms: per Winograd point, a GEMM of the
 * tiles' transformed output gradients (K per tile) against their
 * transformed inputs (C per tile), 36 multiply-adds per tile, output and
 * input channel for F(4x4, 3x3) against the direct kernel's 144 (16 outputs
 * x 9 taps). The two transforms are additions and small multiples, and the
 * G^T . G at the end runs once per call, not per tile.
 *
 * Work per thread: a contiguous run of the batch's tiles, in groups of up
 * to DW_GROUP_TILES:
 *   1. transform every tile's input patch and output gradient, block by
 *      block, into points x tiles x channels;
 *   2. per point, the GEMM over the group's tiles into registers (two
 *      blocks of output channels x up to 6 input channels), added to the
 *      thread's own sum (points x K x C floats, the layout of winograd.c's
 *      transformed weights);
 * then the threads' sums are added in thread order and taken back through
 * G^T . G, so a run's result does not depend on scheduling, only on the
 * thread count (as oneDNN's). */
#include <omp.h>
#include <string.h>

#include "mixreg/error.h"
#include "nn/winograd.h"
#include "nn/winograd_simd.h"

/* Floats of one group's transformed inputs and gradients together (at most
 * 1 MiB), and at most this many tiles: each group ends in a pass over the
 * thread's whole sum (points x K x C floats), so groups must be long. At
 * batch 128 (ms, this against 32 Ki floats and 32 tiles): 64@8 1.57 / 1.97,
 * 128@16 20.9 / 44.3, 256@8 25.0 / 99.6. */
#define DW_GROUP_FLOATS 262144
#define DW_GROUP_TILES 64
/* Input channels per micro-kernel call: 2 x 6 accumulators, the two
 * gradient vectors and the broadcast fill 15 of AVX2's 16 registers. */
#define DW_MICRO_CHANNELS 6

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))

/* For m (a constant after inlining) input channels c0.. and nb (1 or 2)
 * blocks of output channels: sum over the group's g tiles of
 * v[t][c] * mk[t][block], added to out (the thread's dU at block 0's
 * (point, c0); block 1's is `next` floats further). */
static inline __attribute__((always_inline)) void dw_micro(int m, int nb, size_t g, const float *v, size_t C,
                                                            const float *mk, size_t K, float *out, size_t next)
{
    vec a0[DW_MICRO_CHANNELS], a1[DW_MICRO_CHANNELS];
#pragma GCC unroll 6
    for (int j = 0; j < m; j++) a0[j] = a1[j] = v_zero();
    for (size_t t = 0; t < g; t++) {
        const vec m0 = v_load(mk + t * K), m1 = nb == 2 ? v_load(mk + t * K + WB) : v_zero();
#pragma GCC unroll 6
        for (int j = 0; j < m; j++) {
            const vec b = v_set1(v[t * C + (size_t)j]);
            a0[j] = v_fmadd(b, m0, a0[j]);
            if (nb == 2) a1[j] = v_fmadd(b, m1, a1[j]);
        }
    }
#pragma GCC unroll 6
    for (int j = 0; j < m; j++) {
        float *o = out + (size_t)j * WB;
        v_store(o, v_add(v_load(o), a0[j]));
        if (nb == 2) v_store(o + next, v_add(v_load(o + next), a1[j]));
    }
}

static void dw_channels(int m, int nb, size_t g, const float *v, size_t C, const float *mk, size_t K, float *out,
                        size_t next)
{
    switch (m * 2 + nb - 1) {
#define DW_CASE(M)                                                                                                     \
    case M * 2: dw_micro(M, 1, g, v, C, mk, K, out, next); break;                                                      \
    case M * 2 + 1: dw_micro(M, 2, g, v, C, mk, K, out, next); break;
        DW_CASE(1) DW_CASE(2) DW_CASE(3) DW_CASE(4) DW_CASE(5) DW_CASE(6)
#undef DW_CASE
    default: break;
    }
}

/* Towards L2: the input and gradient rows of tiles [first, first + g) of
 * the batch, the next group's, fetched while this group computes (a whole
 * group's rows are more than L1 holds). Without it, a third of the
 * 16-channel 32x32 layer's time went to the tile loads waiting on memory. */
static void prefetch_group(const mx_conv2d_desc *d, int tile, size_t first, size_t g, size_t tiles, const float *x,
                           const float *dy)
{
    const size_t C = d->in_channels, K = d->out_channels, H = d->in_h, W = d->in_w, OH = d->out_h, OW = d->out_w;
    const size_t T = (size_t)tile, tiles_x = (OW + T - 1) / T, per_sample = (OH + T - 1) / T * tiles_x;
    if (first >= tiles) return;
    const size_t last = (first + g < tiles ? first + g : tiles) - 1;
    for (size_t s = first / per_sample; s <= last / per_sample; s++) {
        const size_t a = s == first / per_sample ? first % per_sample : 0;
        const size_t b = s == last / per_sample ? last % per_sample : per_sample - 1;
        const size_t r0 = a / tiles_x * T, r1 = b / tiles_x * T + T; /* output rows [r0, r1) */
        for (size_t cb = 0; cb < C / WB; cb++) { /* input rows [r0 - 1, r1 + 1) */
            const size_t from = r0 > 0 ? r0 - 1 : 0, to = r1 + 1 < H ? r1 + 1 : H;
            const char *p = (const char *)(x + ((s * (C / WB) + cb) * H + from) * W * WB);
            for (size_t off = 0; off < (to - from) * W * WB * sizeof(float); off += 64) __builtin_prefetch(p + off, 0, 2);
        }
        for (size_t kb = 0; kb < K / WB; kb++) {
            const size_t to = r1 < OH ? r1 : OH;
            const char *p = (const char *)(dy + ((s * (K / WB) + kb) * OH + r0) * OW * WB);
            for (size_t off = 0; off < (to - r0) * OW * WB * sizeof(float); off += 64) __builtin_prefetch(p + off, 0, 2);
        }
    }
}

/* Tiles [first, first + g) of the batch (row-major within a sample,
 * sample after sample) into the thread's sum du. */
static inline __attribute__((always_inline)) void dw_group(int tile, const mx_conv2d_desc *d, size_t first, size_t g,
                                                            const float *x, const float *dy, float *vbuf, float *mbuf,
                                                            float *du)
{
    const size_t C = d->in_channels, K = d->out_channels, H = d->in_h, W = d->in_w, OH = d->out_h, OW = d->out_w;
    const size_t CB = C / WB, KB = K / WB, P = wino_points(tile);
    const size_t vs = wino_point_stride(g, C), ms = wino_point_stride(g, K);
    for (size_t t = 0; t < g; t++) {
        const wino_tile_at at = wino_locate(d, tile, first + t);
        for (size_t cb = 0; cb < CB; cb++)
            input_tile(tile, x + (at.s * CB + cb) * H * W * WB, (long)H, (long)W, (long)at.row - 1, (long)at.col - 1,
                       vbuf + t * C + cb * WB, vs);
        for (size_t kb = 0; kb < KB; kb++)
            grad_tile(tile, dy + (at.s * KB + kb) * OH * OW * WB, OH, OW, at.row, at.col, mbuf + t * K + kb * WB, ms);
    }
    for (size_t p = 0; p < P; p++) {
        const float *vp = vbuf + p * vs, *mp = mbuf + p * ms;
        for (size_t kb = 0; kb < KB; kb += 2) {
            const int nb = kb + 1 < KB ? 2 : 1;
            for (size_t c0 = 0; c0 < C; c0 += DW_MICRO_CHANNELS) {
                const int m = (int)(C - c0 < DW_MICRO_CHANNELS ? C - c0 : DW_MICRO_CHANNELS);
                dw_channels(m, nb, g, vp + c0, C, mp + kb * WB, K, du + dw_index(C, K, p, kb * WB, c0), C * WB);
            }
        }
    }
}

/* The group size in tiles for d, and the floats of one thread's sum and
 * of its group buffers (both multiples of 16: 64-byte aligned). */
static size_t group_tiles(const mx_conv2d_desc *d)
{
    const size_t g = DW_GROUP_FLOATS / (wino_points(mx_wino_tile(d)) * (d->in_channels + d->out_channels));
    return g > DW_GROUP_TILES ? DW_GROUP_TILES : g < 1 ? 1 : g;
}

static size_t part_floats(const mx_conv2d_desc *d)
{
    return (wino_points(mx_wino_tile(d)) * d->in_channels * d->out_channels + 15) / 16 * 16;
}

static size_t group_floats(const mx_conv2d_desc *d)
{
    const size_t g = group_tiles(d);
    return wino_points(mx_wino_tile(d)) * (wino_point_stride(g, d->in_channels) + wino_point_stride(g, d->out_channels));
}

size_t mx_wino_dw_scratch_floats(const mx_conv2d_desc *d, int threads)
{
    return (size_t)threads * (part_floats(d) + group_floats(d));
}

mx_status mx_wino_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                   float *db, float *scratch, int threads)
{
    if (db) bias_gradient(d, n, dy, db);
    if (!dw) return MX_OK;
    const int tile = mx_wino_tile(d);
    const size_t C = d->in_channels, K = d->out_channels, P = wino_points(tile);
    const size_t tiles = wino_batch_tiles(d, tile, n);
    const size_t g = group_tiles(d), part = part_floats(d), group = group_floats(d);
    if (threads > omp_get_max_threads()) threads = omp_get_max_threads();
    if (threads < 1) threads = 1;
    /* Each thread's sum, then each one's group buffers. */
    int used = threads;
#pragma omp parallel num_threads(threads)
    {
        const int th = omp_get_thread_num(), nth = omp_get_num_threads();
#pragma omp single
        used = nth;
        float *du = scratch + (size_t)th * part;
        float *vbuf = scratch + (size_t)threads * part + (size_t)th * group, *mbuf = vbuf + P * wino_point_stride(g, C);
        memset(du, 0, P * K * C * sizeof(float));
        const size_t begin = tiles * (size_t)th / (size_t)nth, end = tiles * (size_t)(th + 1) / (size_t)nth;
        for (size_t first = begin; first < end; first += g) {
            const size_t take = end - first < g ? end - first : g;
            if (first + take < end) prefetch_group(d, tile, first + take, g, end, x, dy);
            if (tile == 4) dw_group(4, d, first, take, x, dy, vbuf, mbuf, du);
            else if (tile == 5) dw_group(5, d, first, take, x, dy, vbuf, mbuf, du);
            else dw_group(2, d, first, take, x, dy, vbuf, mbuf, du);
        }
    }
    dw_from_domain(d, scratch, used, part, 0, 0, d->out_channels, dw);
    return MX_OK;
}

#else /* no AVX-512 nor AVX2: callers use their direct convolution */

size_t mx_wino_dw_scratch_floats(const mx_conv2d_desc *d, int threads)
{
    (void)d, (void)threads;
    return 0;
}

mx_status mx_wino_backward_weights(const mx_conv2d_desc *d, size_t n, const float *x, const float *dy, float *dw,
                                   float *db, float *scratch, int threads)
{
    (void)d, (void)n, (void)x, (void)dy, (void)dw, (void)db, (void)scratch, (void)threads, (void)dw_from_domain,
        (void)bias_gradient;
    return mx_error_set(MX_ERR_UNSUPPORTED, "this build has no Winograd kernels");
}

#endif
