/* The bfloat16 weight gradient of a 3x3 or 1x1 convolution on AMX's tile unit.
 *
 * dw[o][i][kh][kw] = sum over samples and output pixels of dy[o] times the
 * input under tap (kh, kw): nine (in x out) matrix products whose reduction
 * runs over every output pixel of the batch. The input is laid out on a grid
 * where each tap is the output's grid position plus a constant offset, so
 * the nine products read one array at nine offsets:
 *
 * - stride 1: the grid is the padded image with one shared padding column
 *   (width in_w + 1: a row's right padding is the next row's left) and one
 *   shared padding row (height in_h + 1, the next sample's top row pads the
 *   bottom), so tap (kh, kw) sits kh * (in_w + 1) + kw past the output pixel;
 * - stride 2: four grids, one per (row, column) parity of the padded input,
 *   each (out_h + 1) x (out_w + 1); tap (kh, kw) is on grid (kh % 2, kw % 2)
 *   at offset (kh / 2) * (out_w + 1) + kw / 2;
 * - 1x1 (no padding): one tap, the grid the output's own, the input's every
 *   stride-th pixel.
 *
 * dy sits on the same grid, zero where the grid has no output pixel, so the
 * padding terms add nothing. The tile unit multiplies A (16 rows of 32
 * values along the reduction) by B (16 pairs of reduction rows, 16 columns)
 * into C, a 16 x 16 block of one tap's dw: dy goes transposed, one row per
 * output channel along the grid (A), the input as pairs of grid positions,
 * each pair's channels interleaved (B). A tap's offset moves B by whole
 * pair rows, so every tile load starts on a cache line: for odd offsets
 * from a second copy of the pairs that starts one position later. (With
 * the roles the other way round, the input transposed and offset along its
 * rows, the loads straddled lines and the tiles took 0.43 ms instead of
 * 0.31 on resnet20's 64-channel layers.) Each thread sums its own range of
 * the grid, a chunk at a time: the chunk's rows are staged, rearranged and
 * multiplied while they are in its core's L2; the threads' sums are added
 * at the end.
 *
 * Measured against oneDNN 2.6's AMX kernel (BENCHMARKS.md, bench/wgrad_bench.c). */
#define _DEFAULT_SOURCE /* syscall() for the tile-data permission */
#include "nn/conv_wgrad_amx.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BW__)
#define WGRAD_AMX 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define WGRAD_AMX 0
#endif

#define MAX_TAPS 9
#define STEP 32          /* grid positions per tile product: the tile's 32 bfloat16 */
#define SUB 8            /* steps the tile loops share: 256 positions, whose dy rows
                            and input pairs (two 16-channel tiles each) stay in L1 */
#define CHUNK_BYTES (768u << 10) /* a thread's packed chunk: in its core's L2 (2 MiB here) */

typedef struct {
    size_t n, ci, co, s;  /* stride s, 1 or 2 */
    size_t k, pad, taps;  /* k x k kernel, 3 (padding 1) or 1 (none): taps k * k */
    size_t h, w, ho, wo;
    size_t hp, wp;        /* the grid of one sample */
    size_t steps;         /* STEP-position steps covering n * hp * wp */
    size_t phases;        /* input grids: s * s */
    size_t max_offset;    /* the farthest tap past its output position */
    size_t chunk;         /* steps a thread packs and multiplies at a time */
    size_t win;           /* input positions of a chunk: its steps, the taps' reach and the
                             odd copy's last pair, in whole steps */
    /* a thread's scratch, elements: staging (a chunk's rows before they are
     * rearranged), input pairs (per phase, even and odd), transposed dy;
     * then its float sums */
    size_t stage, xv, dyt, c_floats, thread_bytes;
} geom;

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

int mx_wgrad_amx_suits(const mx_conv2d_desc *d)
{
    if (d->kernel_h != d->kernel_w || d->pad_h != d->pad_w || d->stride_h != d->stride_w || d->in_channels % 16 ||
        d->out_channels % 16 || !d->in_channels || !d->out_channels)
        return 0;
    if (d->kernel_h == 1) return d->pad_h == 0 && (d->stride_h == 1 || d->stride_h == 2);
    if (d->kernel_h != 3 || d->pad_h != 1) return 0;
    if (d->stride_h == 1) return 1;
    /* stride 2: even sides, so the parity grids of out + 1 cover the padded input */
    return d->stride_h == 2 && d->in_h % 2 == 0 && d->in_w % 2 == 0;
}

static geom make_geom(const mx_conv2d_desc *d, size_t n)
{
    geom g = {.n = n, .ci = d->in_channels, .co = d->out_channels, .s = d->stride_h, .k = d->kernel_h,
              .pad = d->pad_h, .h = d->in_h, .w = d->in_w, .ho = d->out_h, .wo = d->out_w};
    g.taps = g.k * g.k;
    if (g.k == 1) { /* one tap, on the output's own grid: every s-th input pixel */
        g.hp = g.ho, g.wp = g.wo, g.phases = 1, g.max_offset = 0;
    } else {
        g.hp = g.s == 1 ? g.h + 1 : g.ho + 1;
        g.wp = g.s == 1 ? g.w + 1 : g.wo + 1;
        g.phases = g.s * g.s;
        g.max_offset = (2 / g.s) * g.wp + 2 / g.s;
    }
    g.steps = (n * g.hp * g.wp + STEP - 1) / STEP;
    /* Bytes per position: the staged input and its two pair copies per
     * phase, the staged and transposed dy. */
    const size_t per_position = sizeof(uint16_t) * (3 * g.phases * g.ci + 2 * g.co);
    g.chunk = CHUNK_BYTES / per_position / STEP;
    if (g.chunk < SUB) g.chunk = SUB;
    g.chunk = g.chunk / SUB * SUB;
    if (g.chunk > g.steps) g.chunk = g.steps;
    g.win = round_up(g.chunk * STEP + g.max_offset + 2, STEP);
    const size_t staged_x = g.win * g.ci, staged_dy = g.chunk * STEP * g.co;
    g.stage = round_up(staged_x > staged_dy ? staged_x : staged_dy, 32);
    g.xv = round_up(2 * g.phases * g.win * g.ci, 32);
    g.dyt = round_up(g.chunk * STEP * g.co, 32);
    g.c_floats = round_up(g.taps * g.ci * g.co, 16);
    g.thread_bytes = (g.stage + g.xv + g.dyt) * sizeof(uint16_t) + g.c_floats * sizeof(float);
    return g;
}

size_t mx_wgrad_amx_scratch_bytes(const mx_conv2d_desc *d, size_t n, int threads)
{
    return make_geom(d, n).thread_bytes * (size_t)(threads > 0 ? threads : 1);
}

#if WGRAD_AMX

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int mx_wgrad_amx_available(void)
{
    static int state = -1; /* asked once: the permission is the process's */
    int s;
#pragma omp atomic read
    s = state;
    if (s >= 0) return s;
    unsigned a, b, c, dx;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(dx) : "a"(7), "c"(0));
    const int cpu = (dx >> 22 & 1) && (dx >> 24 & 1); /* AMX-BF16, AMX-TILE */
    s = cpu && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#pragma omp atomic write
    state = s;
    return s;
}

/* Every tile 16 rows of 64 bytes: A 16 x 32 bfloat16, B 16 pairs x 16, C 16 x 16 float. */
static void configure_tiles(void)
{
    struct {
        uint8_t palette, start;
        uint8_t reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
}

/* ---- packing: a chunk's rows as the tiles read them ---------------------- */

/* Runs the body once per row segment of the `count` grid positions from
 * q0: sample n, grid row i, columns [j, j + len), `done` positions before
 * it. */
#define FOR_ROW_SEGMENTS(g, q0, count, ...)                                                   \
    do {                                                                                       \
        const size_t per_ = (g)->hp * (g)->wp;                                                 \
        size_t n = (q0) / per_, i = (q0) % per_ / (g)->wp, j = (q0) % (g)->wp, done = 0;       \
        while (done < (count)) {                                                               \
            const size_t len = (g)->wp - j < (count) - done ? (g)->wp - j : (count) - done;    \
            __VA_ARGS__;                                                                           \
            done += len, j = 0;                                                                \
            if (++i == (g)->hp) i = 0, n++;                                                    \
        }                                                                                      \
    } while (0)

/* One pixel's channels (a multiple of 16). */
static void copy_pixel(uint16_t *out, const uint16_t *src, size_t channels)
{
    for (size_t c = 0; c < channels; c += 32) {
        const __mmask32 m = channels - c >= 32 ? 0xffffffffu : 0xffffu;
        _mm512_mask_storeu_epi16(out + c, m, _mm512_maskz_loadu_epi16(m, src + c));
    }
}

/* Positions [q0, q0 + count) of parity grid (a, b) as rows of ci channels. */
static void stage_input(const geom *g, const uint16_t *x, size_t a, size_t b, size_t q0, size_t count, uint16_t *out)
{
    const size_t ci = g->ci, s = g->s;
    FOR_ROW_SEGMENTS(g, q0, count, {
        uint16_t *o = out + done * ci;
        const size_t r = s * i + a; /* in the padded input */
        if (n >= g->n || r < g->pad || r - g->pad >= g->h) {
            memset(o, 0, len * ci * sizeof *o);
        } else {
            const uint16_t *row = x + (n * g->h + r - g->pad) * g->w * ci;
            /* columns s * j + b of the padded input, from pad to pad + w - 1, are the input's */
            const size_t lo = b >= g->pad ? 0 : (g->pad - b + s - 1) / s, hi = (g->w - 1 + g->pad - b) / s;
            const size_t from = j > lo ? j : lo, to = j + len - 1 < hi ? j + len - 1 : hi;
            if (from > to) {
                memset(o, 0, len * ci * sizeof *o);
            } else {
                memset(o, 0, (from - j) * ci * sizeof *o);
                if (s == 1) memcpy(o + (from - j) * ci, row + (from + b - g->pad) * ci, (to - from + 1) * ci * sizeof *o);
                else
                    for (size_t jj = from; jj <= to; jj++) copy_pixel(o + (jj - j) * ci, row + (s * jj + b - g->pad) * ci, ci);
                memset(o + (to + 1 - j) * ci, 0, (j + len - 1 - to) * ci * sizeof *o);
            }
        }
    });
}

/* Positions [q0, q0 + count) of dy's grid as rows of co channels. */
static void stage_dy(const geom *g, const uint16_t *dy, size_t q0, size_t count, uint16_t *out)
{
    const size_t co = g->co;
    FOR_ROW_SEGMENTS(g, q0, count, {
        uint16_t *o = out + done * co;
        const size_t valid = n < g->n && i < g->ho && j < g->wo ? (g->wo - j < len ? g->wo - j : len) : 0;
        if (valid) memcpy(o, dy + ((n * g->ho + i) * g->wo + j) * co, valid * co * sizeof *o);
        memset(o + valid * co, 0, (len - valid) * co * sizeof *o);
    });
}

/* Lanes 0..15 (lo) or 16..31 (hi) of a and b interleaved: 32-bit element k = (a[k], b[k]). */
static __m512i interleave_lo(__m512i a, __m512i b)
{
    const __m512i idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                         37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    return _mm512_permutex2var_epi16(a, idx, b);
}
static __m512i interleave_hi(__m512i a, __m512i b)
{
    const __m512i idx = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25, 56, 24, 55, 23, 54,
                                         22, 53, 21, 52, 20, 51, 19, 50, 18, 49, 17, 48, 16);
    return _mm512_permutex2var_epi16(a, idx, b);
}

/* 16 x 16 transpose of 32-bit elements: r[k] becomes column k. */
static void transpose16(__m512i r[16])
{
    __m512i t[16], u[16];
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 4; k++) {
        u[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
        u[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
        u[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
    }
    /* u[4k + m]'s 128-bit lane L: column 4L + m, rows 4k..4k+3 */
    for (int m = 0; m < 4; m++) {
        const __m512i v0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x88), v1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xDD);
        const __m512i v2 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x88),
                      v3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xDD);
        r[m] = _mm512_shuffle_i32x4(v0, v2, 0x88);
        r[8 + m] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
        r[4 + m] = _mm512_shuffle_i32x4(v1, v3, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
    }
}

/* Staged dy rows (positions x co) to one row per output channel (co x
 * positions, row length rows): per 32 positions and 16 channels, the
 * position pairs interleaved, then transposed as 32-bit pairs. */
static void transpose_dy(size_t co, const uint16_t *staged, size_t positions, size_t rows, uint16_t *dyt)
{
    for (size_t q = 0; q < positions; q += STEP)
        for (size_t c0 = 0; c0 < co; c0 += 16) {
            __m512i r[16];
            const uint16_t *src = staged + q * co + c0;
            for (int k = 0; k < 16; k++, src += 2 * co)
                r[k] = interleave_lo(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)src)),
                                     _mm512_castsi256_si512(
                                         _mm256_loadu_si256((const __m256i *)(const void *)(src + co))));
            transpose16(r);
            for (int c = 0; c < 16; c++) _mm512_storeu_si512((void *)(dyt + (c0 + (size_t)c) * rows + q), r[c]);
        }
}

/* Staged input rows (positions x ci) as pairs of positions from `first`
 * (0 or 1), each pair's ci channels interleaved: `pairs` rows of 2 ci. */
static void pair_input(size_t ci, const uint16_t *staged, size_t first, size_t pairs, uint16_t *xv)
{
    staged += first * ci;
    for (size_t p = 0; p < pairs; p++, staged += 2 * ci, xv += 2 * ci)
        for (size_t c = 0; c < ci; c += 32) {
            const __mmask32 m = ci - c >= 32 ? 0xffffffffu : 0xffffu;
            const __m512i v0 = _mm512_maskz_loadu_epi16(m, staged + c), v1 = _mm512_maskz_loadu_epi16(m, staged + ci + c);
            _mm512_storeu_si512((void *)(xv + 2 * c), interleave_lo(v0, v1));
            if (m == 0xffffffffu) _mm512_storeu_si512((void *)(xv + 2 * c + 32), interleave_hi(v0, v1));
        }
}

/* ---- the tile products --------------------------------------------------- */

/* The loops over steps [s0, s1) of a chunk. A: dy's transposed rows from a
 * (row stride as elements, step st at a + st * STEP); B: a tap's input
 * pairs from its b (pair-row stride bs, step st at b + st * 16 * bs); C: a
 * tap's dw block at c (row stride cs floats). C tiles 0-5, A and B in the
 * rest. Four shapes: two output by two input tiles of one tap; two by one
 * for two taps (A loaded once for both); one by two for three taps, one by
 * one for six (A loaded once for all). */
typedef struct { const uint16_t *b; float *c; } tap_block;

#define C_LOAD(t, p) _tile_loadd(t, (p), cs * sizeof(float))
#define C_STORE(t, p) _tile_stored(t, (p), cs * sizeof(float))
#define A_LOAD(t, p) _tile_loadd(t, (p), as * sizeof(uint16_t))
#define B_LOAD(t, p) _tile_loadd(t, (p), bs * sizeof(uint16_t))

static void block_2x2(const uint16_t *a, tap_block t, size_t as, size_t bs, size_t cs, size_t s0, size_t s1)
{
    C_LOAD(0, t.c); C_LOAD(1, t.c + 16); C_LOAD(2, t.c + 16 * cs); C_LOAD(3, t.c + 16 * cs + 16);
    for (size_t st = s0; st < s1; st++) {
        const uint16_t *b = t.b + st * 16 * bs;
        A_LOAD(4, a + st * STEP);
        B_LOAD(6, b);
        B_LOAD(7, b + 32);
        _tile_dpbf16ps(0, 4, 6);
        A_LOAD(5, a + st * STEP + 16 * as);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    C_STORE(0, t.c); C_STORE(1, t.c + 16); C_STORE(2, t.c + 16 * cs); C_STORE(3, t.c + 16 * cs + 16);
}

/* t1.c NULL: tap t0 alone. */
static void block_2x1(const uint16_t *a, tap_block t0, tap_block t1, size_t as, size_t bs, size_t cs, size_t s0,
                      size_t s1)
{
    const int two = t1.c != NULL;
    C_LOAD(0, t0.c); C_LOAD(1, t0.c + 16 * cs);
    if (two) { C_LOAD(2, t1.c); C_LOAD(3, t1.c + 16 * cs); }
    for (size_t st = s0; st < s1; st++) {
        A_LOAD(4, a + st * STEP);
        A_LOAD(5, a + st * STEP + 16 * as);
        B_LOAD(6, t0.b + st * 16 * bs);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 5, 6);
        if (two) {
            B_LOAD(7, t1.b + st * 16 * bs);
            _tile_dpbf16ps(2, 4, 7);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    C_STORE(0, t0.c); C_STORE(1, t0.c + 16 * cs);
    if (two) { C_STORE(2, t1.c); C_STORE(3, t1.c + 16 * cs); }
}

/* Taps t[0..count), count 1 to 3, one output tile by two input tiles each. */
static void block_1x2(const uint16_t *a, const tap_block *t, int count, size_t as, size_t bs, size_t cs, size_t s0,
                      size_t s1)
{
    C_LOAD(0, t[0].c); C_LOAD(1, t[0].c + 16);
    if (count > 1) { C_LOAD(2, t[1].c); C_LOAD(3, t[1].c + 16); }
    if (count > 2) { C_LOAD(4, t[2].c); C_LOAD(5, t[2].c + 16); }
    for (size_t st = s0; st < s1; st++) {
        A_LOAD(6, a + st * STEP);
        B_LOAD(7, t[0].b + st * 16 * bs);
        _tile_dpbf16ps(0, 6, 7);
        B_LOAD(7, t[0].b + st * 16 * bs + 32);
        _tile_dpbf16ps(1, 6, 7);
        if (count > 1) {
            B_LOAD(7, t[1].b + st * 16 * bs);
            _tile_dpbf16ps(2, 6, 7);
            B_LOAD(7, t[1].b + st * 16 * bs + 32);
            _tile_dpbf16ps(3, 6, 7);
        }
        if (count > 2) {
            B_LOAD(7, t[2].b + st * 16 * bs);
            _tile_dpbf16ps(4, 6, 7);
            B_LOAD(7, t[2].b + st * 16 * bs + 32);
            _tile_dpbf16ps(5, 6, 7);
        }
    }
    C_STORE(0, t[0].c); C_STORE(1, t[0].c + 16);
    if (count > 1) { C_STORE(2, t[1].c); C_STORE(3, t[1].c + 16); }
    if (count > 2) { C_STORE(4, t[2].c); C_STORE(5, t[2].c + 16); }
}

/* Taps t[0..count), count 1 to 6, one tile each: tap k's C in tile k (the
 * tile numbers are immediates, hence the macro over k). */
#define TAP_LOAD(k) if (count > k) C_LOAD(k, t[k].c)
#define TAP_STORE(k) if (count > k) C_STORE(k, t[k].c)
#define TAP_PRODUCT(k)                                   \
    if (count > k) {                                     \
        B_LOAD(7, t[k].b + st * 16 * bs);                \
        _tile_dpbf16ps(k, 6, 7);                         \
    }
static void block_1x1(const uint16_t *a, const tap_block *t, int count, size_t as, size_t bs, size_t cs, size_t s0,
                      size_t s1)
{
    TAP_LOAD(0); TAP_LOAD(1); TAP_LOAD(2); TAP_LOAD(3); TAP_LOAD(4); TAP_LOAD(5);
    for (size_t st = s0; st < s1; st++) {
        A_LOAD(6, a + st * STEP);
        TAP_PRODUCT(0) TAP_PRODUCT(1) TAP_PRODUCT(2) TAP_PRODUCT(3) TAP_PRODUCT(4) TAP_PRODUCT(5)
    }
    TAP_STORE(0); TAP_STORE(1); TAP_STORE(2); TAP_STORE(3); TAP_STORE(4); TAP_STORE(5);
}

/* A chunk's steps [0, steps) into the sums c [tap][co][ci], from dy's rows
 * dyt (row length g->chunk * STEP) and the input pairs xv ([phase][even,
 * odd] copies of g->win / 2 pair rows of 2 ci). */
static void chunk_sums(const geom *g, const uint16_t *dyt, const uint16_t *xv, float *c, size_t steps)
{
    const size_t as = g->chunk * STEP, bs = 2 * g->ci, copy = g->win / 2 * bs;
    for (size_t s0 = 0; s0 < steps; s0 += SUB) {
        const size_t s1 = s0 + SUB < steps ? s0 + SUB : steps;
        for (size_t o = 0; o < g->co; o += 32) {
            const int mi = g->co - o >= 32 ? 2 : 1;
            const uint16_t *a = dyt + o * as;
            for (size_t i = 0; i < g->ci; i += 32) {
                const int ni = g->ci - i >= 32 ? 2 : 1;
                tap_block t[MAX_TAPS];
                const size_t taps = g->taps;
                for (size_t k = 0; k < taps; k++) {
                    const size_t kh = k / g->k, kw = k % g->k, phase = (kh % g->s) * g->s + kw % g->s;
                    const size_t offset = (kh / g->s) * g->wp + kw / g->s, odd = offset & 1;
                    t[k].b = xv + (2 * phase + odd) * copy + (offset - odd) / 2 * bs + 2 * i;
                    t[k].c = c + (k * g->co + o) * g->ci + i;
                }
                if (mi == 2 && ni == 2)
                    for (size_t k = 0; k < taps; k++) block_2x2(a, t[k], as, bs, g->ci, s0, s1);
                else if (mi == 2)
                    for (size_t k = 0; k < taps; k += 2)
                        block_2x1(a, t[k], k + 1 < taps ? t[k + 1] : (tap_block){NULL, NULL}, as, bs, g->ci, s0, s1);
                else if (ni == 2)
                    for (size_t k = 0; k < taps; k += 3)
                        block_1x2(a, t + k, taps - k < 3 ? (int)(taps - k) : 3, as, bs, g->ci, s0, s1);
                else
                    for (size_t k = 0; k < taps; k += 6)
                        block_1x1(a, t + k, taps - k < 6 ? (int)(taps - k) : 6, as, bs, g->ci, s0, s1);
            }
        }
    }
}

mx_status mx_wgrad_amx(const mx_conv2d_desc *d, size_t n, const uint16_t *x, const uint16_t *dy, float *dw,
                       void *scratch, int threads)
{
    if (!mx_wgrad_amx_suits(d)) return mx_error_set(MX_ERR_ARG, "AMX weight gradient: an unsupported convolution");
    if (!mx_wgrad_amx_available()) return mx_error_set(MX_ERR_ARG, "AMX weight gradient: no AMX here");
    if (!n || !x || !dy || !dw || !scratch || threads < 1)
        return mx_error_set(MX_ERR_ARG, "AMX weight gradient: x, dy, dw, scratch and a batch are required");
    const geom g = make_geom(d, n);
    const size_t sums_at = (g.stage + g.xv + g.dyt) * sizeof(uint16_t);
#pragma omp parallel num_threads(threads)
    {
        const size_t th = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        char *mine = (char *)scratch + th * g.thread_bytes;
        uint16_t *stage = (uint16_t *)(void *)mine, *xv = stage + g.stage, *dyt = xv + g.xv;
        float *sums = (float *)(void *)(mine + sums_at);
        memset(sums, 0, g.taps * g.ci * g.co * sizeof *sums);
        configure_tiles();
        const size_t s_end = g.steps * (th + 1) / nth, copy = g.win / 2 * 2 * g.ci;
        for (size_t c0 = g.steps * th / nth; c0 < s_end; c0 += g.chunk) {
            const size_t steps = s_end - c0 < g.chunk ? s_end - c0 : g.chunk, q0 = c0 * STEP;
            for (size_t ph = 0; ph < g.phases; ph++) {
                stage_input(&g, x, ph / g.s, ph % g.s, q0, g.win, stage);
                pair_input(g.ci, stage, 0, g.win / 2, xv + 2 * ph * copy);
                if (g.max_offset) pair_input(g.ci, stage, 1, g.win / 2 - 1, xv + (2 * ph + 1) * copy);
            }
            stage_dy(&g, dy, q0, steps * STEP, stage);
            transpose_dy(g.co, stage, steps * STEP, g.chunk * STEP, dyt);
            chunk_sums(&g, dyt, xv, sums, steps);
        }
        _tile_release();
#pragma omp barrier
#pragma omp for schedule(static)
        for (size_t o = 0; o < g.co; o++)
            for (size_t i = 0; i < g.ci; i++)
                for (size_t k = 0; k < g.taps; k++) {
                    float total = 0.0f;
                    for (size_t t = 0; t < nth; t++)
                        total += ((const float *)(const void *)((const char *)scratch + t * g.thread_bytes +
                                                                 sums_at))[(k * g.co + o) * g.ci + i];
                    dw[(o * g.ci + i) * g.taps + k] = total;
                }
    }
    return MX_OK;
}

#else

int mx_wgrad_amx_available(void) { return 0; }

mx_status mx_wgrad_amx(const mx_conv2d_desc *d, size_t n, const uint16_t *x, const uint16_t *dy, float *dw,
                       void *scratch, int threads)
{
    (void)d, (void)n, (void)x, (void)dy, (void)dw, (void)scratch, (void)threads;
    return mx_error_set(MX_ERR_ARG, "AMX weight gradient: not in this build");
}

#endif
