/* Augmentation: the pixel geometry against a naive reference and hand-written
 * cases, per-sample reproducibility independent of batch and threads, the
 * draw distributions, spec parsing, and the throughput of the CIFAR recipe. */
#include <omp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "mixreg/augment.h"

static void fill_image(uint8_t *px, size_t count, unsigned salt)
{
    /* Never 0, so padding is told apart from pixels. */
    for (size_t k = 0; k < count; k++) px[k] = (uint8_t)(1 + (k * 97 + salt * 31 + (k >> 3) * 13) % 255);
}

static mx_augment_config config(size_t pad, size_t ch, size_t cw, int hflip)
{
    mx_augment_config cfg = {.pad = pad, .crop_height = ch, .crop_width = cw, .hflip = hflip};
    return cfg;
}

/* The definition, pixel by pixel: pad with zeros, crop at (top, left), then mirror. */
static uint8_t reference_pixel(const uint8_t *in, size_t h, size_t w, size_t pad, size_t ow, mx_augment_draw d,
                               size_t c, size_t y, size_t x)
{
    size_t xc = d.flip ? ow - 1 - x : x;
    long long r = (long long)(d.top + y) - (long long)pad, s = (long long)(d.left + xc) - (long long)pad;
    if (r < 0 || s < 0 || r >= (long long)h || s >= (long long)w) return 0;
    return in[(c * h + (size_t)r) * w + (size_t)s];
}

static int matches_reference(const mx_augment_config *cfg, mx_augment_draw d, const uint8_t *in, size_t ch,
                             size_t h, size_t w, const uint8_t *out)
{
    size_t oh, ow;
    mx_augment_output_size(cfg, h, w, &oh, &ow);
    for (size_t c = 0; c < ch; c++)
        for (size_t y = 0; y < oh; y++)
            for (size_t x = 0; x < ow; x++)
                if (out[(c * oh + y) * ow + x] != reference_pixel(in, h, w, cfg->pad, ow, d, c, y, x)) return 0;
    return 1;
}

static void test_identity_and_flip(void)
{
    enum { C = 3, H = 5, W = 7 };
    uint8_t in[C * H * W], out[C * H * W], back[C * H * W];
    fill_image(in, sizeof in, 1);
    mx_augment_config none = mx_augment_config_none();
    mx_augment_draw still = {0, 0, 0};
    memset(out, 0xAB, sizeof out);
    mx_augment_apply(&none, still, in, C, H, W, out);
    CHECK(memcmp(in, out, sizeof in) == 0);
    CHECK(!mx_augment_random(&none, H, W));

    /* pad 0 with an explicit full-size crop is the identity too, and draws nothing. */
    mx_augment_config full = config(0, H, W, 0);
    mx_augment_apply(&full, still, in, C, H, W, out);
    CHECK(memcmp(in, out, sizeof in) == 0);
    CHECK(!mx_augment_random(&full, H, W));
    const uint32_t idx[1] = {3};
    mx_augment_batch(&full, 1, 1, in, idx, 1, C, H, W, out);
    CHECK(memcmp(in, out, sizeof in) == 0);

    /* One flip mirrors every row; two give the image back. */
    mx_augment_config flip = config(0, 0, 0, 1);
    mx_augment_draw mirror = {0, 0, 1};
    mx_augment_apply(&flip, mirror, in, C, H, W, out);
    int mirrored = 1;
    for (size_t c = 0; c < C; c++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++) mirrored &= out[(c * H + y) * W + x] == in[(c * H + y) * W + (W - 1 - x)];
    CHECK(mirrored);
    mx_augment_apply(&flip, mirror, out, C, H, W, back);
    CHECK(memcmp(in, back, sizeof in) == 0);
    CHECK(mx_augment_random(&flip, H, W));
}

/* Hand-written: a 1x3x3 image padded by 1, cropped 3x3 at (top 0, left 2). */
static void test_known_offset(void)
{
    const uint8_t in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    mx_augment_config cfg = config(1, 0, 0, 0);
    uint8_t out[9];
    mx_augment_draw d = {0, 2, 0};
    mx_augment_apply(&cfg, d, in, 1, 3, 3, out);
    /* padded rows: 0 0 0 0 0 / 0 1 2 3 0 / 0 4 5 6 0 / 0 7 8 9 0 / 0 0 0 0 0 */
    const uint8_t want[9] = {0, 0, 0, 2, 3, 0, 5, 6, 0};
    CHECK(memcmp(out, want, 9) == 0);
    d.flip = 1;
    mx_augment_apply(&cfg, d, in, 1, 3, 3, out);
    const uint8_t want_flipped[9] = {0, 0, 0, 0, 3, 2, 0, 6, 5};
    CHECK(memcmp(out, want_flipped, 9) == 0);
    d = (mx_augment_draw){2, 0, 0}; /* bottom-left corner */
    mx_augment_apply(&cfg, d, in, 1, 3, 3, out);
    const uint8_t want_corner[9] = {0, 4, 5, 0, 7, 8, 0, 0, 0};
    CHECK(memcmp(out, want_corner, 9) == 0);

    /* CIFAR: pad 4, 32x32, offset (7, 1) shifts the image by (3, -3) with a zero border. */
    enum { C = 3, S = 32 };
    static uint8_t img[C * S * S], shifted[C * S * S];
    fill_image(img, sizeof img, 5);
    mx_augment_config cifar = config(4, 0, 0, 1);
    d = (mx_augment_draw){7, 1, 0};
    mx_augment_apply(&cifar, d, img, C, S, S, shifted);
    int ok = 1;
    for (size_t c = 0; c < C; c++)
        for (size_t y = 0; y < S; y++)
            for (size_t x = 0; x < S; x++) {
                long long sy = (long long)y + 3, sx = (long long)x - 3;
                uint8_t want_px = sy < S && sx >= 0 ? img[(c * S + (size_t)sy) * S + (size_t)sx] : 0;
                ok &= shifted[(c * S + y) * S + x] == want_px;
            }
    CHECK(ok);
}

/* Every offset and flip of several geometries against the reference. */
static void test_all_offsets(void)
{
    enum { C = 2, H = 6, W = 5 };
    uint8_t in[C * H * W], out[C * 40 * 40];
    fill_image(in, sizeof in, 9);
    const mx_augment_config cfgs[] = {
        config(0, 0, 0, 1), config(1, 0, 0, 1), config(3, 0, 0, 1), config(0, 4, 3, 1),
        config(2, 3, 7, 1), config(2, 10, 9, 1), /* the crop is the whole padded image */
        config(9, 2, 2, 1),                      /* crops entirely in the padding exist */
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        const mx_augment_config *cfg = &cfgs[k];
        CHECK_OK(mx_augment_config_validate(cfg, H, W));
        size_t oh, ow;
        mx_augment_output_size(cfg, H, W, &oh, &ow);
        int ok = 1, all_zero_seen = 0;
        for (uint32_t top = 0; top <= H + 2 * cfg->pad - oh; top++)
            for (uint32_t left = 0; left <= W + 2 * cfg->pad - ow; left++)
                for (int f = 0; f <= 1; f++) {
                    mx_augment_draw d = {top, left, f};
                    memset(out, 0xCD, sizeof out);
                    mx_augment_apply(cfg, d, in, C, H, W, out);
                    ok &= matches_reference(cfg, d, in, C, H, W, out);
                    ok &= out[C * oh * ow] == 0xCD; /* nothing written past the end */
                    int zeros = 1;
                    for (size_t q = 0; q < C * oh * ow; q++) zeros &= out[q] == 0;
                    all_zero_seen |= zeros;
                }
        CHECK(ok);
        if (k == 6) CHECK(all_zero_seen);
    }
}

static void test_validate(void)
{
    mx_augment_config cfg = config(4, 0, 0, 1);
    CHECK_OK(mx_augment_config_validate(&cfg, 32, 32));
    cfg = config(4, 41, 40, 0);
    CHECK(mx_augment_config_validate(&cfg, 32, 32) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "does not fit") != NULL);
    cfg = config(4, 40, 40, 0);
    CHECK_OK(mx_augment_config_validate(&cfg, 32, 32));
    cfg = config(MX_AUGMENT_MAX_PAD + 1, 0, 0, 0);
    CHECK(mx_augment_config_validate(&cfg, 32, 32) == MX_ERR_ARG);
    cfg = config(0, 0, 0, 1);
    CHECK(mx_augment_config_validate(&cfg, 0, 32) == MX_ERR_ARG);
}

/* A sample's output depends on (seed, epoch, index) only. */
static void test_reproducible_per_sample(void)
{
    enum { C = 3, S = 32, N = 12 };
    static uint8_t data[N * C * S * S], batch_in[N * C * S * S], out_a[N * C * S * S], out_b[N * C * S * S];
    fill_image(data, sizeof data, 3);
    const size_t sample = C * S * S;
    mx_augment_config cfg = config(4, 0, 0, 1);

    /* Batch a: samples 0..11 in order; batch b: the same samples in reverse order. */
    uint32_t idx_a[N], idx_b[N];
    for (uint32_t i = 0; i < N; i++) idx_a[i] = i;
    mx_augment_batch(&cfg, 42, 3, data, idx_a, N, C, S, S, out_a);
    for (uint32_t i = 0; i < N; i++) {
        idx_b[i] = N - 1 - i;
        memcpy(batch_in + i * sample, data + (size_t)idx_b[i] * sample, sample);
    }
    mx_augment_batch(&cfg, 42, 3, batch_in, idx_b, N, C, S, S, out_b);
    int same = 1;
    for (size_t i = 0; i < N; i++) same &= memcmp(out_a + (N - 1 - i) * sample, out_b + i * sample, sample) == 0;
    CHECK(same);
    /* Alone in a batch of one, too. */
    mx_augment_batch(&cfg, 42, 3, data + 7 * sample, idx_a + 7, 1, C, S, S, out_b);
    CHECK(memcmp(out_a + 7 * sample, out_b, sample) == 0);

    /* Each image is apply() with its own draws. */
    int follows = 1;
    for (uint32_t i = 0; i < N; i++) {
        mx_augment_draw d = mx_augment_sample_draw(&cfg, 42, 3, i, S, S);
        mx_augment_apply(&cfg, d, data + i * sample, C, S, S, out_b);
        follows &= memcmp(out_a + i * sample, out_b, sample) == 0;
    }
    CHECK(follows);

    /* Seed, epoch and index each change the draws. */
    int differ_epoch = 0, differ_seed = 0, differ_index = 0;
    for (uint32_t i = 0; i < 200; i++) {
        mx_augment_draw d = mx_augment_sample_draw(&cfg, 42, 3, i, S, S);
        mx_augment_draw e = mx_augment_sample_draw(&cfg, 42, 4, i, S, S);
        mx_augment_draw f = mx_augment_sample_draw(&cfg, 43, 3, i, S, S);
        mx_augment_draw g = mx_augment_sample_draw(&cfg, 42, 3, i + 1, S, S);
        differ_epoch += memcmp(&d, &e, sizeof d) != 0;
        differ_seed += memcmp(&d, &f, sizeof d) != 0;
        differ_index += memcmp(&d, &g, sizeof d) != 0;
    }
    /* Two independent draws coincide with probability 1/162. */
    CHECK(differ_epoch >= 190 && differ_seed >= 190 && differ_index >= 190);

    /* The flip bit does not depend on the crop settings, nor the offsets on hflip. */
    mx_augment_config flip_only = config(0, 0, 0, 1), crop_only = config(4, 0, 0, 0), bigger = config(6, 30, 28, 1);
    int flip_same = 1, crop_same = 1;
    for (uint32_t i = 0; i < 500; i++) {
        mx_augment_draw d = mx_augment_sample_draw(&cfg, 8, 1, i, S, S);
        flip_same &= mx_augment_sample_draw(&flip_only, 8, 1, i, S, S).flip == d.flip;
        flip_same &= mx_augment_sample_draw(&bigger, 8, 1, i, S, S).flip == d.flip;
        mx_augment_draw c = mx_augment_sample_draw(&crop_only, 8, 1, i, S, S);
        crop_same &= c.top == d.top && c.left == d.left && c.flip == 0;
    }
    CHECK(flip_same);
    CHECK(crop_same);
}

/* The same bytes for any OpenMP thread count (the batch is above the parallel threshold). */
static void test_threads(void)
{
    enum { C = 3, S = 32, N = 1500 };
    static uint8_t data[N * C * S * S], one[N * C * S * S], two[N * C * S * S];
    fill_image(data, sizeof data, 11);
    uint32_t idx[N];
    for (uint32_t i = 0; i < N; i++) idx[i] = (i * 7919u) % 100003u;
    mx_augment_config cfg = config(4, 0, 0, 1);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    mx_augment_batch(&cfg, 5, 2, data, idx, N, C, S, S, one);
    omp_set_num_threads(2);
    mx_augment_batch(&cfg, 5, 2, data, idx, N, C, S, S, two);
    CHECK(memcmp(one, two, sizeof one) == 0);
    omp_set_num_threads(3);
    memset(two, 0, sizeof two);
    mx_augment_batch(&cfg, 5, 2, data, idx, N, C, S, S, two);
    CHECK(memcmp(one, two, sizeof one) == 0);
    omp_set_num_threads(saved);
}

/* Offsets uniform over 0..2 pad, flips at rate 1/2, all independent. Fixed
 * seed: the counts are deterministic, so the 5-sigma bounds cannot flake. */
static void test_distribution(void)
{
    enum { S = 32, PAD = 4, R = 2 * PAD + 1, T = 90000 };
    mx_augment_config cfg = config(PAD, 0, 0, 1);
    static int joint[R][R][2];
    memset(joint, 0, sizeof joint);
    long tops[R] = {0}, lefts[R] = {0}, flips = 0;
    int in_range = 1;
    for (uint32_t i = 0; i < T; i++) {
        mx_augment_draw d = mx_augment_sample_draw(&cfg, 2024, 1, i, S, S);
        in_range &= d.top < R && d.left < R && (d.flip == 0 || d.flip == 1);
        if (!in_range) break;
        tops[d.top]++;
        lefts[d.left]++;
        flips += d.flip;
        joint[d.top][d.left][d.flip]++;
    }
    CHECK(in_range);
    double sd = sqrt(T * (1.0 / R) * (1.0 - 1.0 / R));
    for (int k = 0; k < R; k++) {
        CHECK_NEAR(tops[k], (double)T / R, 5 * sd);
        CHECK_NEAR(lefts[k], (double)T / R, 5 * sd);
    }
    CHECK_NEAR(flips, T / 2.0, 5 * sqrt(T * 0.25));
    /* Pearson chi-square over the 162 joint cells (161 degrees of freedom:
     * mean 161, sd ~18): far above ~260 would mean dependence or bias. */
    double expected = (double)T / (R * R * 2), chi2 = 0;
    for (int a = 0; a < R; a++)
        for (int b = 0; b < R; b++)
            for (int f = 0; f < 2; f++) chi2 += (joint[a][b][f] - expected) * (joint[a][b][f] - expected) / expected;
    CHECK(chi2 < 161 + 5 * sqrt(2 * 161.0));
    if (getenv("MIXREG_VERBOSE")) printf("offset/flip chi-square %.1f on 161 dof\n", chi2);

    /* Across epochs, one sample's flips are fair coins too. */
    long epoch_flips = 0;
    for (uint64_t e = 1; e <= 4000; e++) epoch_flips += mx_augment_sample_draw(&cfg, 2024, e, 17, S, S).flip;
    CHECK_NEAR(epoch_flips, 2000, 5 * sqrt(4000 * 0.25));
}

static void test_gather(void)
{
    enum { C = 3, S = 8, N = 20, B = 6 };
    static uint8_t px[N * C * S * S], aug[B * C * S * S];
    static float x[B * C * S * S], plain[B * C * S * S];
    int32_t labels[N], y[B], y_plain[B];
    fill_image(px, sizeof px, 2);
    for (int i = 0; i < N; i++) labels[i] = i % 10;
    mx_dataset ds = {.n = N, .channels = C, .height = S, .width = S, .num_classes = 10, .pixels = px, .labels = labels};
    mx_normalizer nz;
    const float mean[3] = {0.49f, 0.48f, 0.45f}, std[3] = {0.25f, 0.24f, 0.26f};
    CHECK_OK(mx_normalizer_init(&nz, C, mean, std));
    const uint32_t idx[B] = {4, 19, 0, 7, 7, 12};
    const size_t sample = C * S * S;

    /* No augmentation: exactly mx_dataset_gather. */
    mx_augment_config none = mx_augment_config_none();
    mx_augment_gather(&none, 1, 1, &ds, &nz, idx, B, x, y);
    mx_dataset_gather(&ds, &nz, idx, B, plain, y_plain);
    CHECK(memcmp(x, plain, sizeof x) == 0);
    CHECK(memcmp(y, y_plain, sizeof y) == 0);

    /* Augmented: the normalised bytes of mx_augment_batch (padding = lut[c][0]). */
    mx_augment_config cfg = config(3, 0, 0, 1);
    mx_augment_gather(&cfg, 77, 5, &ds, &nz, idx, B, x, y);
    static uint8_t gathered[B * C * S * S];
    for (size_t i = 0; i < B; i++) memcpy(gathered + i * sample, px + idx[i] * sample, sample);
    mx_augment_batch(&cfg, 77, 5, gathered, idx, B, C, S, S, aug);
    int ok = 1, padded = 0;
    for (size_t i = 0; i < B; i++)
        for (size_t c = 0; c < C; c++)
            for (size_t k = 0; k < S * S; k++) {
                uint8_t v = aug[i * sample + c * S * S + k];
                ok &= x[i * sample + c * S * S + k] == nz.lut[c][v];
                padded += v == 0;
            }
    CHECK(ok);
    CHECK(padded > 0);
    CHECK(memcmp(y, y_plain, sizeof y) == 0);
    /* The duplicated index 7 is augmented the same way both times. */
    CHECK(memcmp(x + 3 * sample, x + 4 * sample, sample * sizeof(float)) == 0);

    /* A smaller output size. */
    mx_augment_config small = config(0, 5, 6, 0);
    CHECK_OK(mx_augment_config_validate(&small, S, S));
    mx_augment_gather(&small, 77, 5, &ds, &nz, idx, B, x, NULL);
    mx_augment_batch(&small, 77, 5, gathered, idx, B, C, S, S, aug);
    ok = 1;
    for (size_t q = 0; q < (size_t)B * C * 5 * 6; q++) ok &= x[q] == nz.lut[(q / 30) % C][aug[q]];
    CHECK(ok);
}

static void test_parse(void)
{
    mx_augment_config cfg;
    char buf[MX_AUGMENT_SPEC_MAX];
    CHECK_OK(mx_augment_parse("none", &cfg));
    CHECK(cfg.pad == 0 && cfg.crop_height == 0 && cfg.crop_width == 0 && !cfg.hflip);
    CHECK(strcmp(mx_augment_format(&cfg, buf, sizeof buf), "none") == 0);
    CHECK_OK(mx_augment_parse("flip", &cfg));
    CHECK(cfg.pad == 0 && cfg.hflip);
    CHECK_OK(mx_augment_parse("crop:4", &cfg));
    CHECK(cfg.pad == 4 && cfg.crop_height == 0 && !cfg.hflip);
    CHECK_OK(mx_augment_parse("crop:4,flip", &cfg));
    CHECK(cfg.pad == 4 && cfg.hflip && cfg.crop_height == 0 && cfg.crop_width == 0);
    CHECK_OK(mx_augment_parse("flip,crop:2:28", &cfg));
    CHECK(cfg.pad == 2 && cfg.crop_height == 28 && cfg.crop_width == 28 && cfg.hflip);
    CHECK_OK(mx_augment_parse("crop:0:24x20", &cfg));
    CHECK(cfg.pad == 0 && cfg.crop_height == 24 && cfg.crop_width == 20 && !cfg.hflip);

    /* format -> parse round trips. */
    const char *specs[] = {"none", "flip", "crop:4", "crop:4,flip", "crop:4:28,flip", "crop:0:24x28", "crop:1:0x5"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        CHECK_OK(mx_augment_parse(specs[k], &cfg));
        CHECK(strcmp(mx_augment_format(&cfg, buf, sizeof buf), specs[k]) == 0);
    }
    mx_augment_config big = config(MX_AUGMENT_MAX_PAD, 999999999, 999999998, 1), back;
    CHECK_OK(mx_augment_parse(mx_augment_format(&big, buf, sizeof buf), &back));
    CHECK(big.pad == back.pad && big.crop_height == back.crop_height && big.crop_width == back.crop_width &&
          big.hflip == back.hflip);

    /* Errors name --augment and what was wrong, and leave cfg alone. */
    struct {
        const char *spec, *says;
    } bad[] = {
        {"", "empty"},           {"crop", "needs a padding"},    {"crop:", "padding"},
        {"crop:x", "padding"},   {"crop:-1", "padding"},          {"crop:4:", "crop size"},
        {"crop:4:3x", "crop size"}, {"crop:4:x3", "crop size"},   {"crop:4:3y3", "crop size"},
        {"crop:4:3:3", "crop size"}, {"crop:1025", "larger than"}, {"crop:9999999999", "padding"},
        {"flip,flip", "twice"},  {"crop:1,crop:2", "twice"},      {"none,flip", "cannot be combined"},
        {"flip,", "empty item"}, {",flip", "empty item"},         {"rotate", "unknown item 'rotate'"},
        {"Flip", "unknown"},     {"crop:4 ,flip", "padding"},     {"flip,crop:4,cutout", "unknown item 'cutout'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cfg = config(7, 7, 7, 1);
        mx_status st = mx_augment_parse(bad[k].spec, &cfg);
        CHECK(st == MX_ERR_ARG);
        int says = strstr(mx_error_message(), bad[k].says) != NULL && strstr(mx_error_message(), "--augment") != NULL;
        if (!says) fprintf(stderr, "spec '%s': message '%s'\n", bad[k].spec, mx_error_message());
        CHECK(says);
        CHECK(cfg.pad == 7 && cfg.crop_height == 7 && cfg.hflip == 1);
    }
    CHECK(mx_augment_parse(NULL, &cfg) == MX_ERR_ARG);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#ifdef __SANITIZE_ADDRESS__
#define BENCH_REPS 1 /* timings mean little under ASan; keep the run short */
#else
#define BENCH_REPS 3
#endif

/* The CIFAR recipe on 50,000 3x32x32 images, in batches of 128 as the
 * trainer would call it; prints images/s on one thread and on all threads. */
static void bench_cifar(void)
{
    enum { C = 3, S = 32, N = 50000, BATCH = 128 };
    const size_t sample = C * S * S;
    uint8_t *data = malloc((size_t)N * sample), *out = malloc((size_t)BATCH * sample);
    float *x = malloc((size_t)BATCH * sample * sizeof(float));
    int32_t *labels = calloc(N, sizeof *labels);
    uint32_t *idx = malloc(N * sizeof *idx);
    CHECK(data && out && x && labels && idx);
    if (!data || !out || !x || !labels || !idx) return;
    fill_image(data, (size_t)N * sample, 4);
    for (uint32_t i = 0; i < N; i++) idx[i] = (uint32_t)(((uint64_t)i * 40503u) % N); /* a scattered order */
    mx_dataset ds = {.n = N, .channels = C, .height = S, .width = S, .num_classes = 10, .pixels = data, .labels = labels};
    mx_normalizer nz;
    const float mean[3] = {0.49f, 0.48f, 0.45f}, std[3] = {0.25f, 0.24f, 0.26f};
    CHECK_OK(mx_normalizer_init(&nz, C, mean, std));
    mx_augment_config cfg;
    CHECK_OK(mx_augment_parse("crop:4,flip", &cfg));

    int saved = omp_get_max_threads();
    int counts[2] = {1, saved};
    unsigned checksum = 0;
    for (int t = 0; t < (saved > 1 ? 2 : 1); t++) {
        omp_set_num_threads(counts[t]);
        double best_u8 = 1e30, best_f32 = 1e30, best_plain = 1e30;
        for (int rep = 0; rep < BENCH_REPS; rep++) {
            double t0 = now();
            for (size_t first = 0; first < N; first += BATCH) {
                size_t n = N - first < BATCH ? N - first : BATCH;
                /* The uint8 path reads a contiguous batch: time it on the data in place. */
                mx_augment_batch(&cfg, 1, (uint64_t)rep + 1, data + first * sample, idx + first, n, C, S, S, out);
                checksum += out[first % sample];
            }
            double t1 = now();
            for (size_t first = 0; first < N; first += BATCH) {
                size_t n = N - first < BATCH ? N - first : BATCH;
                mx_augment_gather(&cfg, 1, (uint64_t)rep + 1, &ds, &nz, idx + first, n, x, NULL);
                checksum += (unsigned)(x[first % sample] > 0);
            }
            double t2 = now();
            for (size_t first = 0; first < N; first += BATCH) {
                size_t n = N - first < BATCH ? N - first : BATCH;
                mx_dataset_gather(&ds, &nz, idx + first, n, x, NULL);
                checksum += (unsigned)(x[first % sample] > 0);
            }
            double t3 = now();
            if (t1 - t0 < best_u8) best_u8 = t1 - t0;
            if (t2 - t1 < best_f32) best_f32 = t2 - t1;
            if (t3 - t2 < best_plain) best_plain = t3 - t2;
        }
        printf("augment crop:4,flip, 50000 x 3x32x32, batches of %d, %d thread(s): uint8 %.0f img/s, "
               "gather+normalise %.0f img/s (plain mx_dataset_gather %.0f img/s)\n",
               BATCH, counts[t], N / best_u8, N / best_f32, N / best_plain);
    }
    omp_set_num_threads(saved);
    if (getenv("MIXREG_VERBOSE")) printf("(checksum %u)\n", checksum);
    free(data);
    free(out);
    free(x);
    free(labels);
    free(idx);
}

int main(void)
{
    test_identity_and_flip();
    test_known_offset();
    test_all_offsets();
    test_validate();
    test_reproducible_per_sample();
    test_threads();
    test_distribution();
    test_gather();
    test_parse();
    bench_cifar();
    CHECK_DONE();
}
