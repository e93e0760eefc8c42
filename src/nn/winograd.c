/* Winograd forward convolution on blocked tensors (winograd.h), F(2x2, 3x3),
 * F(4x4, 3x3) or F(5x5, 3x3) by the shape (mx_wino_tile): nChw16c with AVX-512, nChw8c
 * with AVX2 (the block is the vector: MX_WINO_BLOCK lanes).
 *
 * With V = B^T d B (d an a x a input patch, a = m + 2), U = G g G^T (g a 3x3
 * filter) and Y = A^T [sum over input channels of U .* V] A, one m x m output
 * tile takes a^2 multiply-adds per input channel instead of 9 m^2: 16 for 4
 * outputs (F2), 36 for 16 (F4) or 49 for 25 (F5); the transforms are additions and small
 * multiples. Work per thread: a group of one sample's tiles at a time, small
 * enough that the group's transformed input stays in cache:
 *   1. transform every tile's patch, channel block by channel block;
 *   2. per block of output channels, per Winograd point, a small GEMM:
 *      tiles x in-channels times in-channels x block, each transformed
 *      input broadcast from L1 (AVX-512: the block's 16 weight vectors held
 *      in registers; AVX2's 16 registers hold the tiles' accumulators and
 *      stream the weights);
 *   3. the output transform with bias, residual addend and ReLU fused, and
 *      the tile stored (clipped at the edges). */
#include "nn/winograd.h"

#include "nn/winograd_simd.h"

size_t mx_wino_block(void) { return mx_wino_available() ? WB : 0; }

static int shape_suits(const mx_conv2d_desc *d, size_t max_channels)
{
    return d->kernel_h == 3 && d->kernel_w == 3 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 1 &&
           d->pad_w == 1 && d->in_channels % WB == 0 && d->out_channels % WB == 0 && d->in_channels > 0 &&
           d->out_channels > 0 && d->in_channels <= max_channels && d->out_channels <= max_channels;
}

int mx_wino_suits(const mx_conv2d_desc *d)
{
    return shape_suits(d, MX_WINO_GEMM_MAX_CHANNELS) && d->in_channels <= MX_WINO_MAX_CHANNELS;
}

int mx_wino_gemm_suits(const mx_conv2d_desc *d) { return shape_suits(d, MX_WINO_GEMM_MAX_CHANNELS); }

int mx_wino_tiles_best(const mx_conv2d_desc *d)
{
    return d->in_channels <= MX_WINO_TILES_BEST_CHANNELS && d->out_channels <= MX_WINO_TILES_BEST_CHANNELS;
}

static size_t gemm_min_tiles = MX_WINO_GEMM_MIN_TILES;

void mx_wino_gemm_min_tiles_set(size_t tiles) { gemm_min_tiles = tiles ? tiles : MX_WINO_GEMM_MIN_TILES; }

int mx_wino_gemm_worth(const mx_conv2d_desc *d, size_t n)
{
    return wino_batch_tiles(d, mx_wino_tile(d), n) >= gemm_min_tiles;
}

/* F5 only where it was measured: AVX2 builds (winograd.h mx_wino_tile). */
#if WB == 8
#define LARGEST_TILE 5
#else
#define LARGEST_TILE 4
#endif

static int largest_tile = LARGEST_TILE;

void mx_wino_largest_tile_set(int tile) { largest_tile = tile == 2 || tile == 4 || tile == 5 ? tile : LARGEST_TILE; }

/* The points of d's output covered by m x m tiles. */
static size_t tiled_points(const mx_conv2d_desc *d, size_t m)
{
    return (d->out_h + m - 1) / m * ((d->out_w + m - 1) / m) * (m + 2) * (m + 2);
}

int mx_wino_tile(const mx_conv2d_desc *d)
{
    const size_t f2 = tiled_points(d, 2), f4 = tiled_points(d, 4);
    const int best = largest_tile >= 4 && f4 < f2 ? 4 : 2;
    /* F5's 7-point transforms cost about twice F4's per output, so it pays
     * where F4's edge tiles waste many points, not for a few fewer: forward
     * alone at batch 64-128, F4 -> F5, 32@14 1.52 -> 1.31 ms, 64@10 2.68 ->
     * 2.21, 32@30 2.77-2.91 -> 2.25-2.27 (a fifth or more fewer points), but
     * 64@20 3.64-3.67 -> 4.20-4.25 and 32@20 2.17 -> 2.37 (13% fewer); and
     * with one tile a side the per-tile kernel's jobs hold one tile each:
     * 64@5 1.01 -> 1.25-1.33 against F2. */
    const size_t f5 = tiled_points(d, 5), other = best == 4 ? f4 : f2;
    if (largest_tile >= 5 && d->out_h > 5 && d->out_w > 5 && 5 * f5 <= 4 * other) return 5;
    return best;
}

size_t mx_wino_weight_floats(const mx_conv2d_desc *d)
{
    return wino_points(mx_wino_tile(d)) * d->in_channels * d->out_channels;
}

/* Where U[point][k][c] lives: [point][k / WB][c][k % WB], so the GEMM loads
 * the block's output channels of one input channel as one vector. */
static size_t u_index(size_t C, size_t K, size_t point, size_t k, size_t c)
{
    return ((point * (K / WB) + k / WB) * C + c) * WB + k % WB;
}


/* Per input channel c and block of WB output channels: the WB filters'
 * G g G^T, lane by lane (vectorised over the block's output channels), stored
 * as one WB-float row per point. Threaded over the input channels: this runs
 * once per cnn_predict call and layer (and per training step), and scalar
 * code with the points scattered took 0.6 ms for a 64-channel layer.
 * transposed: d is the convolution run (mx_wino_transposed of w's), whose
 * filter from input channel c to output channel o is w's from o to c,
 * rotated by 180 degrees. */
static void transform(const mx_conv2d_desc *d, const float *w, int transposed, int plain, size_t k0, size_t kn,
                      float *u)
{
    const size_t C = d->in_channels, K = d->out_channels;
    const int a = mx_wino_tile(d) + 2;
    const float(*G)[3] = wino_g(a);
    const size_t KB = kn / WB;
    const long work = (long)(C * KB);
#pragma omp parallel for schedule(static) if (work >= 64)
    for (long job = 0; job < work; job++) {
        /* Consecutive jobs write consecutive rows of u: the input channels
         * for the blocked layout ([point][k / WB][c][WB]), the blocks of
         * output channels for the plain one ([point][c][k]), where the
         * other order filled each cache line half at a time, a layer's
         * worth apart (512 channels: 9 of the 29 ms of a forward at batch
         * 32). */
        const size_t c = plain ? (size_t)job / KB : (size_t)job % C, kb = plain ? (size_t)job % KB : (size_t)job / C;
        const size_t k = k0 + kb * WB; /* the block's first output channel */
        float g[9][WB], gg[WINO_MAX_SIDE][3][WB];
        if (transposed) {
            for (int j = 0; j < 9; j++)
#pragma omp simd
                for (int l = 0; l < WB; l++) g[j][l] = w[(c * K + k + (size_t)l) * 9 + (size_t)(8 - j)];
        } else {
            for (int j = 0; j < 9; j++)
#pragma omp simd
                for (int l = 0; l < WB; l++) g[j][l] = w[((k + (size_t)l) * C + c) * 9 + (size_t)j];
        }
        for (int i = 0; i < a; i++) /* G g */
            for (int j = 0; j < 3; j++)
#pragma omp simd
                for (int l = 0; l < WB; l++)
                    gg[i][j][l] = G[i][0] * g[j][l] + G[i][1] * g[3 + j][l] + G[i][2] * g[6 + j][l];
        for (int i = 0; i < a; i++) /* (G g) G^T */
            for (int j = 0; j < a; j++) {
                const size_t point = (size_t)(i * a + j);
                float *row = u + (plain ? (point * C + c) * kn + kb * WB : u_index(C, K, point, k, c));
#pragma omp simd
                for (int l = 0; l < WB; l++)
                    row[l] = gg[i][0][l] * G[j][0] + gg[i][1][l] * G[j][1] + gg[i][2][l] * G[j][2];
            }
    }
}

void mx_wino_transform_weights(const mx_conv2d_desc *d, const float *w, float *u)
{
    transform(d, w, 0, 0, 0, d->out_channels, u);
}

mx_conv2d_desc mx_wino_transposed(const mx_conv2d_desc *d)
{
    mx_conv2d_desc t = *d;
    t.in_channels = d->out_channels;
    t.out_channels = d->in_channels;
    t.in_h = d->out_h, t.in_w = d->out_w;
    (void)mx_conv2d_setup(&t);
    return t;
}

void mx_wino_transform_weights_dx(const mx_conv2d_desc *d, const float *w, float *u)
{
    const mx_conv2d_desc t = mx_wino_transposed(d);
    transform(&t, w, 1, 0, 0, t.out_channels, u);
}

void mx_wino_gemm_transform_weights(const mx_conv2d_desc *run, const float *w, int transposed, float *u)
{
    transform(run, w, transposed, 1, 0, run->out_channels, u);
}

void mx_wino_gemm_transform_block(const mx_conv2d_desc *run, const float *w, int transposed, size_t k0, size_t kn,
                                  float *u)
{
    transform(run, w, transposed, 1, k0, kn, u);
}

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))

int mx_wino_available(void) { return 1; }

/* A job's transformed inputs, points x tiles x channels floats, at most
 * GROUP_FLOATS (on the job's stack), and at most GROUP_TILES tiles. Each job
 * streams all the layer's transformed weights (36 x 64 x 64 floats, 576
 * KiB, at 64 channels: more than a Zen 2 core's 512 KiB L2), so the larger
 * the group the fewer times they come from L3. On AVX2 (2-core EPYC,
 * bench/conv_bench, forward ms, alternated) groups of up to 24 tiles (216
 * KiB) instead of 16 (64 KiB): 64@32 at batch 128 28.3-28.9 -> 22.5-22.6,
 * 64@56 at batch 32 21.8 -> 17.5, 128@28 21.2 -> 16.7, the 16-64 channel
 * layers of 8x8-32x32 planes unchanged; preact18's step 81.8-84.4 -> 85.8-88.5
 * img/s and its evaluation 271-277 -> 293-298. AVX-512 builds keep the
 * groups they were measured with (no such CPU here since). */
#if WB == 8
#define GROUP_FLOATS 55296
#define GROUP_TILES 24
#else
#define GROUP_FLOATS 16384
#define GROUP_TILES 16
#endif
#define MAX_POINTS (WINO_MAX_SIDE * WINO_MAX_SIDE)
/* Tiles per GEMM micro-kernel call: its accumulators and the weight
 * vectors fit the vector registers (AVX-512: 8 + 16 of 32; AVX2: 8 + 2 of 16). */
#define MICRO_TILES 8

#if WB == 16
/* acc[t] = sum over the input channels of v[t][c] * U[c] for m tiles (m a
 * constant after inlining, so the accumulators live in registers); tile t's
 * result goes to out + t * out_stride. AVX-512: the 16 weight vectors of 16
 * input channels in registers beside the 8 accumulators. */
static inline __attribute__((always_inline)) void gemm_micro(int m, size_t C, const float *v, size_t v_stride,
                                                              const float *uw, float *out, size_t out_stride)
{
    __m512 acc[MICRO_TILES];
#pragma GCC unroll 8
    for (int t = 0; t < m; t++) acc[t] = _mm512_setzero_ps();
    for (size_t cb = 0; cb < C; cb += 16) {
        __m512 w[16];
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++) w[c] = _mm512_loadu_ps(uw + (cb + (size_t)c) * 16);
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++) {
#pragma GCC unroll 8
            for (int t = 0; t < m; t++)
                acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(v[(size_t)t * v_stride + cb + (size_t)c]), w[c], acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < m; t++) _mm512_store_ps(out + (size_t)t * out_stride, acc[t]);
}

#else
/* AVX2: 16 registers hold the 8 accumulators, one weight vector and the
 * broadcast; the weights stream from L1, one load per input channel and 8
 * multiply-adds. */
static inline __attribute__((always_inline)) void gemm_micro(int m, size_t C, const float *v, size_t v_stride,
                                                              const float *uw, float *out, size_t out_stride)
{
    __m256 acc[MICRO_TILES];
#pragma GCC unroll 8
    for (int t = 0; t < m; t++) acc[t] = _mm256_setzero_ps();
    for (size_t c = 0; c < C; c++) {
        const __m256 w = _mm256_load_ps(uw + c * 8);
#pragma GCC unroll 8
        for (int t = 0; t < m; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_broadcast_ss(v + (size_t)t * v_stride + c), w, acc[t]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < m; t++) _mm256_store_ps(out + (size_t)t * out_stride, acc[t]);
}
#endif

/* The point's GEMM for m (1..MICRO_TILES) tiles. */
static void gemm_tiles(int m, size_t C, const float *v, size_t v_stride, const float *uw, float *out,
                       size_t out_stride)
{
    switch (m) {
#define GEMM_CASE(M)                                                                                                   \
    case M: gemm_micro(M, C, v, v_stride, uw, out, out_stride); break;
        GEMM_CASE(1) GEMM_CASE(2) GEMM_CASE(3) GEMM_CASE(4) GEMM_CASE(5) GEMM_CASE(6) GEMM_CASE(7)
#undef GEMM_CASE
    default: gemm_micro(MICRO_TILES, C, v, v_stride, uw, out, out_stride); break;
    }
}

#if WB == 8
/* AVX2, two blocks of output channels at once: 6 tiles x 2 vectors of
 * accumulators, the two blocks' weight vectors and the broadcast take 15 of
 * the 16 registers, and an input channel costs 8 loads for 12 multiply-adds
 * (one block at a time: 9 for 8). */
#define PAIR_TILES 6
#define MM_BLOCKS 2
static inline __attribute__((always_inline)) void gemm_pair_micro(int m, size_t C, const float *v, size_t v_stride,
                                                                   const float *uw0, const float *uw1, float *out0,
                                                                   float *out1, size_t out_stride)
{
    __m256 a0[PAIR_TILES], a1[PAIR_TILES];
#pragma GCC unroll 6
    for (int t = 0; t < m; t++) a0[t] = a1[t] = _mm256_setzero_ps();
    for (size_t c = 0; c < C; c++) {
        const __m256 w0 = _mm256_load_ps(uw0 + c * 8), w1 = _mm256_load_ps(uw1 + c * 8);
#pragma GCC unroll 6
        for (int t = 0; t < m; t++) {
            const __m256 b = _mm256_broadcast_ss(v + (size_t)t * v_stride + c);
            a0[t] = _mm256_fmadd_ps(b, w0, a0[t]);
            a1[t] = _mm256_fmadd_ps(b, w1, a1[t]);
        }
    }
#pragma GCC unroll 6
    for (int t = 0; t < m; t++) {
        _mm256_store_ps(out0 + (size_t)t * out_stride, a0[t]);
        _mm256_store_ps(out1 + (size_t)t * out_stride, a1[t]);
    }
}

static void gemm_pair(int m, size_t C, const float *v, size_t v_stride, const float *uw0, const float *uw1,
                      float *out0, float *out1, size_t out_stride)
{
    switch (m) {
#define PAIR_CASE(M)                                                                                                   \
    case M: gemm_pair_micro(M, C, v, v_stride, uw0, uw1, out0, out1, out_stride); break;
        PAIR_CASE(1) PAIR_CASE(2) PAIR_CASE(3) PAIR_CASE(4) PAIR_CASE(5)
#undef PAIR_CASE
    default: gemm_pair_micro(PAIR_TILES, C, v, v_stride, uw0, uw1, out0, out1, out_stride); break;
    }
}
#else
#define MM_BLOCKS 1
#endif


/* Rows [row0, row1) of sample s's channel blocks (plane_rows rows of
 * row_floats each per block) towards L1: the next job's new input and addend
 * rows, fetched while this job computes (without it the tile loads waited
 * on memory for a fifth of the kernel's time in the network). */
static void prefetch_rows(const float *base, size_t s, size_t blocks, size_t plane_rows, size_t row_floats, long row0,
                          long row1)
{
    if (row0 < 0) row0 = 0;
    if (row1 > (long)plane_rows) row1 = (long)plane_rows;
    if (row0 >= row1) return;
    for (size_t b = 0; b < blocks; b++) {
        const char *p = (const char *)(base + ((s * blocks + b) * plane_rows + (size_t)row0) * row_floats);
        const size_t bytes = (size_t)(row1 - row0) * row_floats * sizeof(float);
        for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    }
}

/* The output transforms of output-channel block kb's tiles, from their
 * points in mm. */
static inline __attribute__((always_inline)) void output_block(int tile, const mx_conv2d_desc *d, size_t s, size_t kb,
                                                                size_t t_begin, size_t nt, const float *mm,
                                                                const float *bias, const float *addend, int relu,
                                                                float *y)
{
    const size_t OH = d->out_h, OW = d->out_w, KB = d->out_channels / WB, P = wino_points(tile);
    const size_t tiles_x = (OW + (size_t)tile - 1) / (size_t)tile;
    const vec bv = bias ? v_loadu(bias + kb * WB) : v_zero();
    const size_t plane = (s * KB + kb) * OH * OW * WB;
    for (size_t t = 0; t < nt; t++) {
        const size_t ty = (t_begin + t) / tiles_x, tx = (t_begin + t) % tiles_x;
        output_tile(tile, mm + t * P * WB, WB, bv, addend ? addend + plane : NULL, relu, y + plane, OH, OW,
                    ty * (size_t)tile, tx * (size_t)tile);
    }
}

/* One job: tiles [t_begin, t_begin + nt) of sample s (tile a constant after inlining). */
static inline __attribute__((always_inline)) void run_job(int tile, const mx_conv2d_desc *d, size_t s,
                                                           size_t t_begin, size_t nt, size_t group, const float *x,
                                                           const float *u, const float *bias, const float *addend,
                                                           int relu, float *y)
{
    const size_t C = d->in_channels, K = d->out_channels, H = d->in_h, W = d->in_w;
    const size_t OW = d->out_w, CB = C / WB, KB = K / WB;
    const size_t tiles_x = (OW + (size_t)tile - 1) / (size_t)tile, P = wino_points(tile);
    /* points x group x C transformed inputs; then points x WB lanes per tile. */
    float v[GROUP_FLOATS] __attribute__((aligned(64)));
    float mm[MM_BLOCKS * GROUP_TILES * MAX_POINTS * WB] __attribute__((aligned(64)));
    const size_t v_stride = group * C; /* floats between two points of one tile */
    for (size_t cb = 0; cb < CB; cb++) {
        const float *xb = x + (s * CB + cb) * H * W * WB;
        for (size_t t = 0; t < nt; t++) {
            const size_t ty = (t_begin + t) / tiles_x, tx = (t_begin + t) % tiles_x;
            input_tile(tile, xb, (long)H, (long)W, (long)(ty * (size_t)tile) - 1, (long)(tx * (size_t)tile) - 1,
                       v + t * C + cb * WB, v_stride);
        }
    }
    for (size_t kb = 0; kb < KB; kb++) {
#if WB == 8
        if (kb + 1 < KB) { /* two blocks of output channels at once (gemm_pair) */
            float *mm1 = mm + GROUP_TILES * MAX_POINTS * WB;
            for (size_t p = 0; p < P; p++) {
                const float *uw = u + (p * KB + kb) * C * WB;
                for (size_t t0 = 0; t0 < nt; t0 += PAIR_TILES) {
                    const int m = (int)(nt - t0 < PAIR_TILES ? nt - t0 : PAIR_TILES);
                    gemm_pair(m, C, v + p * v_stride + t0 * C, C, uw, uw + C * WB, mm + (t0 * P + p) * WB,
                              mm1 + (t0 * P + p) * WB, P * WB);
                }
            }
            output_block(tile, d, s, kb, t_begin, nt, mm, bias, addend, relu, y);
            output_block(tile, d, s, kb + 1, t_begin, nt, mm1, bias, addend, relu, y);
            kb++;
            continue;
        }
#endif
        for (size_t p = 0; p < P; p++) {
            const float *uw = u + (p * KB + kb) * C * WB;
            for (size_t t0 = 0; t0 < nt; t0 += MICRO_TILES) {
                const int m = (int)(nt - t0 < MICRO_TILES ? nt - t0 : MICRO_TILES);
                gemm_tiles(m, C, v + p * v_stride + t0 * C, C, uw, mm + (t0 * P + p) * WB, P * WB);
            }
        }
        output_block(tile, d, s, kb, t_begin, nt, mm, bias, addend, relu, y);
    }
}

void mx_wino_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *bias,
                     const float *addend, int relu, float *y)
{
    const int tile = mx_wino_tile(d);
    const size_t C = d->in_channels, K = d->out_channels, H = d->in_h, W = d->in_w;
    const size_t OH = d->out_h, OW = d->out_w, CB = C / WB, KB = K / WB, T = (size_t)tile;
    const size_t tiles_x = (OW + T - 1) / T, tiles = (OH + T - 1) / T * tiles_x;
    /* A job: `group` consecutive tiles (row-major, rows may wrap) of one
     * sample, near-equal groups so none is a sliver. */
    size_t group = GROUP_FLOATS / (wino_points(tile) * C);
    if (group > GROUP_TILES) group = GROUP_TILES;
    if (group > tiles) group = tiles;
    if (group < 1) group = 1;
    const size_t per_sample = (tiles + group - 1) / group;
    group = (tiles + per_sample - 1) / per_sample;
    const long jobs = (long)(n * per_sample);
#pragma omp parallel for schedule(static)
    for (long job = 0; job < jobs; job++) {
        const size_t s = (size_t)job / per_sample, t_begin = (size_t)job % per_sample * group;
        const size_t nt = tiles - t_begin < group ? tiles - t_begin : group;
        /* The next job's input rows past this job's last (all of them in a new
         * sample), and its addend rows. */
        if (job + 1 < jobs) {
            const size_t ns = (size_t)(job + 1) / per_sample, nb = (size_t)(job + 1) % per_sample * group;
            const size_t ne = (nb + group < tiles ? nb + group : tiles) - 1;
            const long need = (long)(T * (nb / tiles_x)) - 1, last = (long)(T * (ne / tiles_x)) + (long)T + 1;
            const long done = ns == s ? (long)(T * ((t_begin + nt - 1) / tiles_x)) + (long)T + 1 : 0;
            prefetch_rows(x, ns, CB, H, W * WB, done > need ? done : need, last);
            if (addend)
                prefetch_rows(addend, ns, KB, OH, OW * WB, (long)(T * (nb / tiles_x)), (long)(T * (ne / tiles_x) + T));
        }
        if (tile == 4) run_job(4, d, s, t_begin, nt, group, x, u, bias, addend, relu, y);
        else if (tile == 5) run_job(5, d, s, t_begin, nt, group, x, u, bias, addend, relu, y);
        else run_job(2, d, s, t_begin, nt, group, x, u, bias, addend, relu, y);
    }
}

#else /* no AVX-512 nor AVX2: callers use their direct convolution */

int mx_wino_available(void) { return 0; }

void mx_wino_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *bias,
                     const float *addend, int relu, float *y)
{
    (void)d, (void)n, (void)x, (void)u, (void)bias, (void)addend, (void)relu, (void)y;
}

#endif
