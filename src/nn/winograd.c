/* Winograd F(2x2, 3x3) forward convolution on nChw16c tensors (winograd.h).
 *
 * With V = B^T d B (d a 4x4 input patch), U = G g G^T (g a 3x3 filter) and
 * Y = A^T [sum over input channels of U .* V] A, one 2x2 output tile takes
 * 16 multiply-adds per input channel; the transforms are additions (and
 * halvings for the weights). Work per thread: one sample's row of tiles at
 * a time, in groups small enough that the group's transformed input
 * (16 x tiles x channels floats) stays in L1:
 *   1. transform every tile's 4x4 patch, channel block by channel block;
 *   2. per block of 16 output channels, per Winograd point (16 of them), a
 *      small GEMM: tiles x in-channels times in-channels x 16, the 16 weight
 *      vectors in registers and each transformed input broadcast from L1;
 *   3. the output transform with bias, residual addend and ReLU fused, and
 *      the 2x2 tile stored (edges clipped for odd sizes). */
#include "nn/winograd.h"

int mx_wino_suits(const mx_conv2d_desc *d)
{
    return d->kernel_h == 3 && d->kernel_w == 3 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 1 &&
           d->pad_w == 1 && d->in_channels % 16 == 0 && d->out_channels % 16 == 0 && d->in_channels > 0 &&
           d->out_channels > 0 && d->in_channels <= MX_WINO_MAX_CHANNELS;
}

size_t mx_wino_weight_floats(const mx_conv2d_desc *d) { return 16 * d->in_channels * d->out_channels; }

/* Where U[point][k][c] lives: [point][k / 16][c][k % 16], so the GEMM loads
 * the 16 output channels of one input channel as one vector. */
static size_t u_index(size_t C, size_t K, size_t point, size_t k, size_t c)
{
    return ((point * (K / 16) + k / 16) * C + c) * 16 + k % 16;
}

void mx_wino_transform_weights(const mx_conv2d_desc *d, const float *w, float *u)
{
    const size_t C = d->in_channels, K = d->out_channels;
    for (size_t k = 0; k < K; k++)
        for (size_t c = 0; c < C; c++) {
            const float *g = w + (k * C + c) * 9;
            float gg[4][3]; /* G g: rows g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2 */
            for (int j = 0; j < 3; j++) {
                gg[0][j] = g[j];
                gg[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                gg[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                gg[3][j] = g[6 + j];
            }
            for (int i = 0; i < 4; i++) { /* (G g) G^T, the same combination across the row */
                const float a = gg[i][0], b = gg[i][1], e = gg[i][2];
                const float row[4] = {a, 0.5f * (a + b + e), 0.5f * (a - b + e), e};
                for (int j = 0; j < 4; j++) u[u_index(C, K, (size_t)(i * 4 + j), k, c)] = row[j];
            }
        }
}

#ifdef __AVX512F__
#include <immintrin.h>

int mx_wino_available(void) { return 1; }

/* A job's transformed inputs, 16 points x tiles x channels floats, at most
 * this many (64 KiB; the GEMM of one point reads a sixteenth of them), and at
 * most GROUP_TILES tiles, which keeps the wider layers' weights (streamed
 * from L2 once per job and output-channel block) in use for enough tiles. */
#define GROUP_FLOATS 16384
#define GROUP_TILES 16
/* Tiles per GEMM micro-kernel call: its accumulators and the 16 weight
 * vectors fit the 32 vector registers. */
#define MICRO_TILES 8

/* acc[t] = sum over the input channels of v[t][c] * U[c] for m tiles (m a
 * constant after inlining, so the accumulators live in registers). */
static inline __attribute__((always_inline)) void gemm_micro(int m, size_t C, const float *v, size_t v_stride,
                                                              const float *uw, float *out)
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
    for (int t = 0; t < m; t++) _mm512_store_ps(out + (size_t)t * 256, acc[t]);
}

/* The point's GEMM for m (1..MICRO_TILES) tiles; out rows 256 floats apart. */
static void gemm_tiles(int m, size_t C, const float *v, size_t v_stride, const float *uw, float *out)
{
    switch (m) {
#define GEMM_CASE(M)                                                                                                   \
    case M: gemm_micro(M, C, v, v_stride, uw, out); break;
        GEMM_CASE(1) GEMM_CASE(2) GEMM_CASE(3) GEMM_CASE(4) GEMM_CASE(5) GEMM_CASE(6) GEMM_CASE(7)
#undef GEMM_CASE
    default: gemm_micro(MICRO_TILES, C, v, v_stride, uw, out); break;
    }
}

/* V = B^T d B for one tile's 4x4 patch of 16 channels at input (row0, col0)
 * (which may start at -1 or run past the edge: zero padding), written to
 * v[point * v_stride]. */
static inline __attribute__((always_inline)) void input_tile(const float *xb, long H, long W, long row0, long col0,
                                                              float *v, size_t v_stride)
{
    __m512 d[4][4];
    if (row0 >= 0 && col0 >= 0 && row0 + 4 <= H && col0 + 4 <= W) {
        const float *p = xb + ((size_t)row0 * (size_t)W + (size_t)col0) * 16;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) d[i][j] = _mm512_loadu_ps(p + ((size_t)i * (size_t)W + (size_t)j) * 16);
    } else {
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const long r = row0 + i;
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const long c = col0 + j;
                d[i][j] = (r >= 0 && r < H && c >= 0 && c < W)
                              ? _mm512_loadu_ps(xb + ((size_t)r * (size_t)W + (size_t)c) * 16)
                              : _mm512_setzero_ps();
            }
        }
    }
    __m512 t[4][4]; /* B^T d: rows d0-d2, d1+d2, d2-d1, d1-d3 */
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
        t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
        t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
        t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* (B^T d) B: the same across each row */
        _mm512_store_ps(v + (size_t)(i * 4 + 0) * v_stride, _mm512_sub_ps(t[i][0], t[i][2]));
        _mm512_store_ps(v + (size_t)(i * 4 + 1) * v_stride, _mm512_add_ps(t[i][1], t[i][2]));
        _mm512_store_ps(v + (size_t)(i * 4 + 2) * v_stride, _mm512_sub_ps(t[i][2], t[i][1]));
        _mm512_store_ps(v + (size_t)(i * 4 + 3) * v_stride, _mm512_sub_ps(t[i][1], t[i][3]));
    }
}

static inline __m512 epilogue(__m512 v, __m512 bias, const float *addend, int relu)
{
    v = _mm512_add_ps(v, bias);
    if (addend) v = _mm512_add_ps(v, _mm512_loadu_ps(addend));
    /* max(v, 0) with NaN passing through, as the other ReLUs */
    return relu ? _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ) |
                                           _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q),
                                       _mm512_setzero_ps(), v)
                : v;
}

/* Y = A^T M A for one tile's 16 points m (A^T rows 1 1 1 0 and 0 1 -1 -1),
 * then the epilogue, stored where the 2x2 tile falls inside the output. */
static inline void output_tile(const float *m, __m512 bias, const float *addend, int relu, float *yb, size_t OH,
                               size_t OW, size_t row0, size_t col0)
{
    __m512 t[2][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m512 m0 = _mm512_load_ps(m + (0 * 4 + j) * 16), m1 = _mm512_load_ps(m + (1 * 4 + j) * 16);
        const __m512 m2 = _mm512_load_ps(m + (2 * 4 + j) * 16), m3 = _mm512_load_ps(m + (3 * 4 + j) * 16);
        t[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        t[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        const size_t r = row0 + (size_t)i;
        if (r >= OH) break;
        const __m512 y0 = _mm512_add_ps(_mm512_add_ps(t[i][0], t[i][1]), t[i][2]);
        const __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(t[i][1], t[i][2]), t[i][3]);
        const size_t at = (r * OW + col0) * 16;
        _mm512_storeu_ps(yb + at, epilogue(y0, bias, addend ? addend + at : NULL, relu));
        if (col0 + 1 < OW) _mm512_storeu_ps(yb + at + 16, epilogue(y1, bias, addend ? addend + at + 16 : NULL, relu));
    }
}

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

void mx_wino_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *bias,
                     const float *addend, int relu, float *y)
{
    const size_t C = d->in_channels, K = d->out_channels, H = d->in_h, W = d->in_w;
    const size_t OH = d->out_h, OW = d->out_w, CB = C / 16, KB = K / 16;
    const size_t tiles_x = (OW + 1) / 2, tiles = (OH + 1) / 2 * tiles_x;
    /* A job: `group` consecutive tiles (row-major, rows may wrap) of one
     * sample, near-equal groups so none is a sliver. */
    size_t group = GROUP_FLOATS / (16 * C);
    if (group > GROUP_TILES) group = GROUP_TILES;
    if (group > tiles) group = tiles;
    if (group < 1) group = 1;
    const size_t per_sample = (tiles + group - 1) / group;
    group = (tiles + per_sample - 1) / per_sample;
    const long jobs = (long)(n * per_sample);
#pragma omp parallel for schedule(static)
    for (long job = 0; job < jobs; job++) {
        /* 16 points x group x C transformed inputs; then 16 points x 16 lanes per tile. */
        float v[GROUP_FLOATS] __attribute__((aligned(64)));
        float mm[GROUP_TILES * 256] __attribute__((aligned(64)));
        const size_t s = (size_t)job / per_sample, t_begin = (size_t)job % per_sample * group;
        const size_t nt = tiles - t_begin < group ? tiles - t_begin : group;
        const size_t v_stride = group * C; /* floats between two points of one tile */
        /* The next job's input rows past this job's last (all of them in a new
         * sample), and its addend rows. */
        if (job + 1 < jobs) {
            const size_t ns = (size_t)(job + 1) / per_sample, nb = (size_t)(job + 1) % per_sample * group;
            const size_t ne = (nb + group < tiles ? nb + group : tiles) - 1;
            const long first = ns == s ? 2 * (long)((t_begin + nt - 1) / tiles_x) + 3 : 0;
            const long last = 2 * (long)(ne / tiles_x) + 3;
            prefetch_rows(x, ns, CB, H, W * 16, first > 2 * (long)(nb / tiles_x) - 1 ? first : 2 * (long)(nb / tiles_x) - 1,
                          last);
            if (addend) prefetch_rows(addend, ns, KB, OH, OW * 16, 2 * (long)(nb / tiles_x), 2 * (long)(ne / tiles_x) + 2);
        }
        for (size_t cb = 0; cb < CB; cb++) {
            const float *xb = x + (s * CB + cb) * H * W * 16;
            for (size_t t = 0; t < nt; t++) {
                const size_t ty = (t_begin + t) / tiles_x, tx = (t_begin + t) % tiles_x;
                input_tile(xb, (long)H, (long)W, 2 * (long)ty - 1, 2 * (long)tx - 1, v + t * C + cb * 16, v_stride);
            }
        }
        for (size_t kb = 0; kb < KB; kb++) {
            for (size_t p = 0; p < 16; p++) {
                const float *uw = u + (p * KB + kb) * C * 16;
                for (size_t t0 = 0; t0 < nt; t0 += MICRO_TILES) {
                    const int m = (int)(nt - t0 < MICRO_TILES ? nt - t0 : MICRO_TILES);
                    gemm_tiles(m, C, v + p * v_stride + t0 * C, C, uw, mm + t0 * 256 + p * 16);
                }
            }
            const __m512 bv = bias ? _mm512_loadu_ps(bias + kb * 16) : _mm512_setzero_ps();
            const size_t plane = (s * KB + kb) * OH * OW * 16;
            for (size_t t = 0; t < nt; t++) {
                const size_t ty = (t_begin + t) / tiles_x, tx = (t_begin + t) % tiles_x;
                output_tile(mm + t * 256, bv, addend ? addend + plane : NULL, relu, y + plane, OH, OW, 2 * ty, 2 * tx);
            }
        }
    }
}

#else /* no AVX-512: callers use their direct convolution */

int mx_wino_available(void) { return 0; }

void mx_wino_forward(const mx_conv2d_desc *d, size_t n, const float *x, const float *u, const float *bias,
                     const float *addend, int relu, float *y)
{
    (void)d, (void)n, (void)x, (void)u, (void)bias, (void)addend, (void)relu, (void)y;
}

#endif
