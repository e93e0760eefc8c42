/* CutMix and the CutMix/Mixup switch: timm's box geometry (exact cases and
 * clipping), the corrected lambda, pixels inside the box from the partner and
 * outside from the sample, targets, every mode and partner, the switch and
 * mixing probabilities, alpha edge cases, and agreement with mx_mixup_batch
 * when CutMix is off. */
#include <string.h>

#include "check.h"
#include "mixreg/cutmix.h"

#define MAX_N 33
#define C 3
#define H 12
#define W 10
#define DIM (C * H * W)
#define CLASSES 5

typedef struct {
    float x[MAX_N * DIM];
    int32_t labels[MAX_N];
    float x_out[MAX_N * DIM];
    float y_out[MAX_N * CLASSES];
    uint32_t partner[MAX_N];
    double lambda[MAX_N];
    mx_box box[MAX_N];
    uint8_t kind[MAX_N];
    mx_cutmix_workspace ws;
} batch;

/* Every value distinct, so "came from row j" is unambiguous. */
static void batch_fill(batch *b, size_t n)
{
    for (size_t i = 0; i < n * DIM; i++) b->x[i] = (float)i * 0.5f - 100.0f;
    for (size_t i = 0; i < n; i++) b->labels[i] = (int32_t)((i * 3 + 1) % CLASSES);
    b->ws.partner = b->partner;
    b->ws.lambda = b->lambda;
    b->ws.box = b->box;
    b->ws.kind = b->kind;
}

static void batch_run(batch *b, const mx_mixup_config *mix, const mx_cutmix_config *cut, mx_rng *rng, size_t n)
{
    mx_cutmix_batch(mix, cut, rng, b->x, b->labels, n, C, H, W, CLASSES, b->x_out, b->y_out, &b->ws);
}

static int box_empty(mx_box bx) { return bx.y0 == bx.y1 || bx.x0 == bx.x1; }

static int in_box(mx_box bx, size_t y, size_t x) { return y >= bx.y0 && y < bx.y1 && x >= bx.x0 && x < bx.x1; }

static float smoothed(double e, int hit) { return (float)((hit ? 1.0 - e : 0.0) + e / CLASSES); }

/* Each row follows its recorded kind, partner, lambda and box exactly. */
static int rows_follow(const batch *b, const mx_mixup_config *mix, const mx_cutmix_config *cut, size_t n)
{
    int ok = 1;
    double e = mix->label_smoothing;
    for (size_t i = 0; i < n && ok; i++) {
        uint32_t j = b->partner[i];
        double lam = b->lambda[i];
        mx_box bx = b->box[i];
        if (j >= n || !(lam >= 0.0f && lam <= 1.0f) || b->kind[i] > MX_MIXED_CUTMIX) return 0;
        switch (b->kind[i]) {
        case MX_MIXED_NONE:
            ok &= j == i && lam == 1.0f && box_empty(bx);
            break;
        case MX_MIXED_MIXUP:
            ok &= box_empty(bx);
            break;
        case MX_MIXED_CUTMIX:
            ok &= bx.y0 <= bx.y1 && bx.y1 <= H && bx.x0 <= bx.x1 && bx.x1 <= W;
            /* The corrected lambda is exactly the share of the image kept. */
            if (cut->correct_lambda) ok &= lam == 1.0 - (double)(bx.y1 - bx.y0) * (bx.x1 - bx.x0) / (H * W);
            break;
        }
        for (size_t c = 0; c < C; c++)
            for (size_t y = 0; y < H; y++)
                for (size_t x = 0; x < W; x++) {
                    size_t k = (c * H + y) * W + x;
                    float own = b->x[i * DIM + k], other = b->x[j * DIM + k], got = b->x_out[i * DIM + k];
                    if (!mix->mix_inputs || b->kind[i] == MX_MIXED_NONE)
                        ok &= got == own;
                    else if (b->kind[i] == MX_MIXED_CUTMIX)
                        ok &= got == (in_box(bx, y, x) ? other : own);
                    else {
                        float want = (float)lam * own + (1.0f - (float)lam) * other;
                        ok &= fabsf(got - want) <= 1e-5f * (1.0f + fabsf(want));
                    }
                }
        double ll = mix->mix_labels ? lam : 1.0;
        double sum = 0;
        for (int cl = 0; cl < CLASSES; cl++) {
            double want = ll * smoothed(e, b->labels[i] == cl) + (1.0 - ll) * smoothed(e, b->labels[j] == cl);
            ok &= fabs(b->y_out[i * CLASSES + cl] - want) <= 1e-6;
            sum += b->y_out[i * CLASSES + cl];
        }
        ok &= fabs(sum - 1.0) <= 1e-6;
    }
    return ok;
}

static mx_cutmix_config cutmix_on(double alpha)
{
    mx_cutmix_config cut = mx_cutmix_config_default();
    cut.alpha = alpha;
    return cut;
}

static void test_config(void)
{
    mx_cutmix_config cut = mx_cutmix_config_default();
    CHECK(cut.alpha == 0.0 && cut.switch_prob == 0.5 && cut.prob == 1.0 && cut.correct_lambda == 1);
    mx_mixup_config mix = mx_mixup_config_default();
    CHECK_OK(mx_cutmix_config_validate(&cut, &mix));
    cut.alpha = 1e6;
    cut.switch_prob = 0;
    cut.prob = 0;
    CHECK_OK(mx_cutmix_config_validate(&cut, &mix));

    const double bad_alpha[] = {-1, NAN, INFINITY, 2e6};
    for (int k = 0; k < 4; k++) {
        cut = cutmix_on(bad_alpha[k]);
        CHECK(mx_cutmix_config_validate(&cut, &mix) == MX_ERR_ARG);
        CHECK(strstr(mx_error_message(), "--cutmix-alpha") != NULL);
    }
    const double bad_prob[] = {-0.1, 1.1, NAN};
    for (int k = 0; k < 3; k++) {
        cut = cutmix_on(1);
        cut.switch_prob = bad_prob[k];
        CHECK(mx_cutmix_config_validate(&cut, &mix) == MX_ERR_ARG);
        CHECK(strstr(mx_error_message(), "switch") != NULL);
        cut = cutmix_on(1);
        cut.prob = bad_prob[k];
        CHECK(mx_cutmix_config_validate(&cut, &mix) == MX_ERR_ARG);
        CHECK(strstr(mx_error_message(), "--mix-prob") != NULL);
    }
    /* The mixup half is validated too. */
    cut = cutmix_on(1);
    mix.mode = MX_MIX_PAIR;
    mix.partner = MX_PARTNER_ROLL;
    CHECK(mx_cutmix_config_validate(&cut, &mix) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "pair") != NULL);
}

static int box_is(mx_box b, uint32_t y0, uint32_t y1, uint32_t x0, uint32_t x1)
{
    return b.y0 == y0 && b.y1 == y1 && b.x0 == x0 && b.x1 == x1;
}

/* timm's rand_bbox, case by case. */
static void test_box_geometry(void)
{
    /* lambda 0.75 on 32x32: sqrt(0.25) = 0.5, cut 16, halves 8. */
    CHECK(box_is(mx_cutmix_box_at(0.75, 32, 32, 16, 16), 8, 24, 8, 24));
    CHECK(mx_cutmix_box_lambda(mx_cutmix_box_at(0.75, 32, 32, 16, 16), 32, 32) == 0.75);
    /* Clipped at the top-right corner: rows [0, 8), columns [23, 32). */
    mx_box corner = mx_cutmix_box_at(0.75, 32, 32, 0, 31);
    CHECK(box_is(corner, 0, 8, 23, 32));
    CHECK(mx_cutmix_box_lambda(corner, 32, 32) == 1.0 - 72.0 / 1024.0);
    CHECK(box_is(mx_cutmix_box_at(0.75, 32, 32, 31, 0), 23, 32, 0, 8));
    /* An odd cut (30 * 0.5 = 15) loses a pixel: halves of 7, a 14-pixel side. */
    CHECK(box_is(mx_cutmix_box_at(0.75, 30, 30, 15, 15), 8, 22, 8, 22));
    /* Truncation: 32 * sqrt(1 - 0.5) = 22.6 -> 22, halves 11. */
    CHECK(box_is(mx_cutmix_box_at(0.5, 32, 32, 16, 16), 5, 27, 5, 27));
    /* Non-square: 20 x 40 with lambda 0.84: sqrt(0.16) = 0.4, cuts 8 and 16. */
    CHECK(box_is(mx_cutmix_box_at(0.84, 20, 40, 10, 20), 6, 14, 12, 28));
    /* lambda 1: no box; lambda 0: the whole image only when centred. */
    CHECK(box_empty(mx_cutmix_box_at(1.0, 32, 32, 16, 16)));
    CHECK(mx_cutmix_box_lambda(mx_cutmix_box_at(1.0, 32, 32, 3, 5), 32, 32) == 1.0);
    CHECK(box_is(mx_cutmix_box_at(0.0, 32, 32, 16, 16), 0, 32, 0, 32));
    CHECK(mx_cutmix_box_lambda(mx_cutmix_box_at(0.0, 32, 32, 16, 16), 32, 32) == 0.0);
    CHECK(box_is(mx_cutmix_box_at(0.0, 32, 32, 0, 0), 0, 16, 0, 16));
    /* Out-of-range lambdas are clamped. */
    CHECK(box_is(mx_cutmix_box_at(-3.0, 32, 32, 16, 16), 0, 32, 0, 32));
    CHECK(box_empty(mx_cutmix_box_at(7.0, 32, 32, 16, 16)));
    /* 1x1 images: any box is empty (cut 0 or halves 0). */
    CHECK(box_empty(mx_cutmix_box_at(0.0, 1, 1, 0, 0)));

    /* Against the formula for every centre and a sweep of lambdas; clipping
     * happens at all four borders. */
    int ok = 1, clipped[4] = {0};
    for (int l = 0; l <= 40; l++) {
        double lam = l / 40.0;
        long long hh = (long long)(H * sqrt(1.0 - lam)) / 2, hw = (long long)(W * sqrt(1.0 - lam)) / 2;
        for (long long cy = 0; cy < H; cy++)
            for (long long cx = 0; cx < W; cx++) {
                mx_box b = mx_cutmix_box_at(lam, H, W, (size_t)cy, (size_t)cx);
                long long y0 = cy - hh < 0 ? 0 : cy - hh, y1 = cy + hh > H ? H : cy + hh;
                long long x0 = cx - hw < 0 ? 0 : cx - hw, x1 = cx + hw > W ? W : cx + hw;
                ok &= b.y0 == y0 && b.y1 == y1 && b.x0 == x0 && b.x1 == x1;
                clipped[0] |= cy - hh < 0;
                clipped[1] |= cy + hh > H;
                clipped[2] |= cx - hw < 0;
                clipped[3] |= cx + hw > W;
            }
    }
    CHECK(ok);
    CHECK(clipped[0] && clipped[1] && clipped[2] && clipped[3]);

    /* Drawn centres cover the image uniformly: with lambda 15/16 the cuts
     * are 3 and 2 (halves of 1), so the box ends one past its centre. */
    mx_rng rng;
    mx_rng_init(&rng, 3, MX_STREAM_MIXUP);
    enum { T = 24000 };
    long rows[H] = {0}, cols[W] = {0};
    for (int t = 0; t < T; t++) {
        mx_box b = mx_cutmix_rand_box(&rng, 15.0 / 16.0, H, W);
        rows[b.y1 - 1]++;
        cols[b.x1 - 1]++;
    }
    for (int y = 0; y < H; y++) CHECK_NEAR(rows[y], (double)T / H, 5 * sqrt(T * (1.0 / H) * (1 - 1.0 / H)));
    for (int x = 0; x < W; x++) CHECK_NEAR(cols[x], (double)T / W, 5 * sqrt(T * (1.0 / W) * (1 - 1.0 / W)));
}

/* CutMix only, every mode x partner x size. */
/* Boxes computed once with timm 1.0.28's rand_bbox (timm/data/mixup.py, the
 * same in its main branch as of 2026-08) for a given centre, by this snippet:
 *   ratio = np.sqrt(1 - lam); cut_h, cut_w = int(h * ratio), int(w * ratio)
 *   yl, yh = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
 *   xl, xh = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
 * Odd cuts (23, 27, 17, 7, 5, 15) lose a pixel there too: the box is
 * [c - cut // 2, c + cut // 2), not [c - cut // 2, c + (cut + 1) // 2). */
static void test_box_matches_timm_table(void)
{
    static const struct {
        double lambda;
        size_t height, width, cy, cx;
        mx_box want;
    } table[] = {
        {0.3, 28, 28, 14, 14, {3, 25, 3, 25}},       /* cuts 23 x 23 */
        {0.3, 28, 28, 0, 27, {0, 11, 16, 28}},       /* cuts 23 x 23 */
        {0.5, 32, 32, 5, 30, {0, 16, 19, 32}},       /* cuts 22 x 22 */
        {0.19, 20, 40, 10, 20, {1, 19, 2, 38}},      /* cuts 18 x 36 */
        {0.9, 28, 28, 13, 2, {9, 17, 0, 6}},         /* cuts 8 x 8 */
        {0.61, 28, 28, 27, 27, {19, 28, 19, 28}},    /* cuts 17 x 17 */
        {0.0, 28, 28, 14, 14, {0, 28, 0, 28}},       /* cuts 28 x 28 */
        {0.0, 27, 27, 13, 13, {0, 26, 0, 26}},       /* cuts 27 x 27 */
        {0.999, 224, 224, 100, 7, {97, 103, 4, 10}}, /* cuts 7 x 7 */
        {0.42, 7, 9, 3, 4, {1, 5, 1, 7}},            /* cuts 5 x 6 */
        {0.75, 31, 17, 30, 0, {23, 31, 0, 4}},       /* cuts 15 x 8 */
        {1.0, 32, 32, 3, 5, {3, 3, 5, 5}},           /* cuts 0 x 0 */
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        mx_box got = mx_cutmix_box_at(table[k].lambda, table[k].height, table[k].width, table[k].cy, table[k].cx);
        if (!box_is(got, table[k].want.y0, table[k].want.y1, table[k].want.x0, table[k].want.x1))
            fprintf(stderr, "timm box %zu: got [%u, %u) x [%u, %u)\n", k, got.y0, got.y1, got.x0, got.x1);
        CHECK(box_is(got, table[k].want.y0, table[k].want.y1, table[k].want.x0, table[k].want.x1));
    }
}

/* The Mixup rows of the CutMix/Mixup switch keep lambda as drawn (double),
 * as plain Mixup does: at a small alpha many lie within 2^-24 of 1. */
static void test_switch_lambda_double(void)
{
    static batch b;
    const size_t n = 8;
    batch_fill(&b, n);
    mx_mixup_config mix = mx_mixup_config_default();
    mix.mode = MX_MIX_ELEM;
    mix.alpha = 0.05;
    mx_cutmix_config cut = mx_cutmix_config_default();
    cut.prob = 0.5; /* the decision path, not plain Mixup's */
    mx_rng rng;
    mx_rng_init(&rng, 4, MX_STREAM_MIXUP);
    size_t below_float_one = 0, mixup_rows = 0;
    for (int r = 0; r < 400; r++) {
        batch_run(&b, &mix, &cut, &rng, n);
        for (size_t i = 0; i < n; i++) {
            if (b.kind[i] != MX_MIXED_MIXUP) continue;
            mixup_rows++;
            below_float_one += b.lambda[i] < 1.0 && (float)b.lambda[i] == 1.0f;
        }
    }
    CHECK(mixup_rows > 0);
    CHECK(below_float_one > mixup_rows / 20);
}

/* --cutmix-minmax (timm's rand_bbox_minmax): sides uniform over the integers
 * [floor(lo size), floor(hi size)), the box whole inside the image, lambda
 * its area share and no Beta draw; validation of the range. */
static void test_minmax_boxes(void)
{
    mx_mixup_config mix = mx_mixup_config_default();
    mx_cutmix_config cut = mx_cutmix_config_default();
    CHECK(!mx_cutmix_on(&cut));
    cut.minmax_lo = 0.2;
    cut.minmax_hi = 0.8;
    CHECK(mx_cutmix_on(&cut)); /* on with alpha 0 */
    CHECK_OK(mx_cutmix_config_validate(&cut, &mix));
    const double bad[][2] = {{0.5, 0.5}, {0.6, 0.4}, {-0.1, 0.5}, {0.1, 1.1}, {NAN, 0.5}, {0.0, NAN}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        mx_cutmix_config b = cut;
        b.minmax_lo = bad[k][0], b.minmax_hi = bad[k][1];
        CHECK(mx_cutmix_config_validate(&b, &mix) == MX_ERR_ARG);
        CHECK(strstr(mx_error_message(), "--cutmix-minmax") != NULL);
    }
    /* 10 x 20 with [0.2, 0.8): heights 2..7, widths 4..15, each seen. */
    mx_rng rng;
    mx_rng_init(&rng, 3, MX_STREAM_MIXUP);
    int seen_h[11] = {0}, seen_w[21] = {0}, inside = 1;
    for (int k = 0; k < 4000; k++) {
        mx_box b = mx_cutmix_rand_box_minmax(&rng, 0.2, 0.8, 10, 20);
        uint32_t h = b.y1 - b.y0, w = b.x1 - b.x0;
        inside &= b.y1 <= 10 && b.x1 <= 20 && b.y0 <= b.y1 && b.x0 <= b.x1;
        if (h <= 10) seen_h[h]++;
        if (w <= 20) seen_w[w]++;
    }
    CHECK(inside);
    int heights_ok = 1, widths_ok = 1;
    for (int h = 0; h <= 10; h++) heights_ok &= (h >= 2 && h <= 7) == (seen_h[h] > 0);
    for (int w = 0; w <= 20; w++) widths_ok &= (w >= 4 && w <= 15) == (seen_w[w] > 0);
    CHECK(heights_ok && widths_ok);
    /* An empty range (7 * 0.3 and 7 * 0.4 both floor to 2): that one side. */
    mx_box narrow = mx_cutmix_rand_box_minmax(&rng, 0.3, 0.4, 7, 7);
    CHECK(narrow.y1 - narrow.y0 == 2 && narrow.x1 - narrow.x0 == 2);
    /* The corner leaves room: a side of 7 on a 8-pixel image starts at 0 only. */
    for (int k = 0; k < 50; k++) {
        mx_box b = mx_cutmix_rand_box_minmax(&rng, 0.875, 1.0, 8, 8);
        CHECK(b.y0 == 0 && b.y1 == 7 && b.x0 == 0 && b.x1 == 7);
    }
    /* In a batch: draw order partners, then per row height, width, row,
     * column (no Beta draw); lambda is the kept share. */
    static batch bt;
    const size_t n = 6;
    batch_fill(&bt, n);
    mix.alpha = 0;
    mix.mode = MX_MIX_ELEM;
    mx_rng a, again;
    mx_rng_init(&a, 12, MX_STREAM_MIXUP);
    again = a;
    batch_run(&bt, &mix, &cut, &a, n);
    CHECK(rows_follow(&bt, &mix, &cut, n));
    uint32_t perm[6];
    mx_rng_permutation(&again, perm, n);
    int replayed = 1;
    for (size_t i = 0; i < n; i++) {
        mx_box b = mx_cutmix_rand_box_minmax(&again, 0.2, 0.8, H, W);
        replayed &= bt.kind[i] == MX_MIXED_CUTMIX && memcmp(&b, &bt.box[i], sizeof b) == 0 &&
                    bt.lambda[i] == mx_cutmix_box_lambda(b, H, W) && bt.partner[i] == perm[i];
    }
    CHECK(replayed);
    CHECK(memcmp(&a, &again, sizeof a) == 0);
}

static void test_cutmix_rows(void)
{
    static batch b;
    const size_t sizes[] = {1, 2, 3, 8, 33};
    long below_half_all = 0;
    for (int m = MX_MIX_BATCH; m <= MX_MIX_ELEM; m++)
        for (int p = MX_PARTNER_PERM; p <= MX_PARTNER_ROLL; p++) {
            if (m == MX_MIX_PAIR && p == MX_PARTNER_ROLL) continue;
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                size_t n = sizes[s];
                mx_mixup_config mix = mx_mixup_config_default();
                mix.alpha = 0.0;
                mix.mode = (mx_mix_mode)m;
                mix.partner = (mx_partner)p;
                mix.label_smoothing = n % 2 ? 0.1 : 0.0;
                mix.theta_form = 1; /* never applies to CutMix */
                mx_cutmix_config cut = cutmix_on(1.0);
                CHECK_OK(mx_cutmix_config_validate(&cut, &mix));
                batch_fill(&b, n);
                mx_rng rng;
                mx_rng_init(&rng, 500 + n, MX_STREAM_MIXUP);
                int ok = 1, all_cut = 1, same_box = 1, below_half = 0, boxes_differ = 0;
                for (int round = 0; round < 20; round++) {
                    batch_run(&b, &mix, &cut, &rng, n);
                    ok &= rows_follow(&b, &mix, &cut, n);
                    for (size_t i = 0; i < n; i++) {
                        if (m == MX_MIX_PAIR && b.partner[i] == i) {
                            all_cut &= b.kind[i] == MX_MIXED_NONE;
                            continue;
                        }
                        all_cut &= b.kind[i] == MX_MIXED_CUTMIX;
                        below_half += b.lambda[i] < 0.5f;
                        if (m == MX_MIX_BATCH) same_box &= memcmp(&b.box[i], &b.box[0], sizeof(mx_box)) == 0;
                        if (m == MX_MIX_PAIR) {
                            uint32_t j = b.partner[i];
                            same_box &= b.partner[j] == i && b.lambda[j] == b.lambda[i] &&
                                        memcmp(&b.box[i], &b.box[j], sizeof(mx_box)) == 0;
                        }
                        if (m == MX_MIX_ELEM && i > 0) boxes_differ += memcmp(&b.box[i], &b.box[0], sizeof(mx_box)) != 0;
                    }
                    if (p == MX_PARTNER_FLIP)
                        for (size_t i = 0; i < n; i++) ok &= b.kind[i] == MX_MIXED_NONE || b.partner[i] == n - 1 - i;
                    if (p == MX_PARTNER_ROLL)
                        for (size_t i = 0; i < n; i++) ok &= b.partner[i] == (i + n - 1) % n;
                }
                CHECK(ok);
                CHECK(all_cut);
                CHECK(same_box);
                below_half_all += below_half;
                if (m == MX_MIX_ELEM && n >= 8) CHECK(boxes_differ > 20 * (int)(n - 1) / 2);
            }
        }
    /* No theta folding: boxes over half the image happen. */
    CHECK(below_half_all > 0);
}

/* Without the correction the labels keep the drawn lambda. */
static void test_uncorrected(void)
{
    static batch b;
    size_t n = 8;
    batch_fill(&b, n);
    mx_mixup_config mix = mx_mixup_config_default();
    mix.alpha = 0;
    mix.mode = MX_MIX_ELEM;
    mx_cutmix_config cut = cutmix_on(1.0);
    cut.correct_lambda = 0;
    mx_rng rng, again;
    mx_rng_init(&rng, 8, MX_STREAM_MIXUP);
    again = rng;
    batch_run(&b, &mix, &cut, &rng, n);
    CHECK(rows_follow(&b, &mix, &cut, n));
    /* Replay the draws: partners, then per row lambda and centre. */
    uint32_t perm[8];
    mx_rng_permutation(&again, perm, n);
    int drawn = 1, differs = 0;
    for (size_t i = 0; i < n; i++) {
        double lam = mx_rng_beta(&again, 1.0, 1.0);
        mx_box bx = mx_cutmix_rand_box(&again, lam, H, W);
        drawn &= b.lambda[i] == lam && memcmp(&bx, &b.box[i], sizeof bx) == 0 && b.partner[i] == perm[i];
        differs += b.lambda[i] != mx_cutmix_box_lambda(bx, H, W);
    }
    CHECK(drawn);
    CHECK(differs > 0);
    CHECK(memcmp(&rng, &again, sizeof rng) == 0);
}

/* Batch mode replays as: permutation, beta, centre (row, column). */
static void test_draw_order(void)
{
    static batch b;
    size_t n = 8;
    batch_fill(&b, n);
    mx_mixup_config mix = mx_mixup_config_default();
    mix.alpha = 0;
    mix.theta_form = 1; /* not applied to CutMix's lambda */
    mx_cutmix_config cut = cutmix_on(0.7);
    mx_rng rng, again;
    mx_rng_init(&rng, 99, MX_STREAM_MIXUP);
    again = rng;
    batch_run(&b, &mix, &cut, &rng, n);
    uint32_t perm[8];
    mx_rng_permutation(&again, perm, n);
    double lam = mx_rng_beta(&again, 0.7, 0.7);
    CHECK(lam < 0.5); /* so a theta fold would have shown */
    mx_box bx = mx_cutmix_rand_box(&again, lam, H, W);
    CHECK(memcmp(perm, b.partner, sizeof perm) == 0);
    CHECK(memcmp(&bx, &b.box[0], sizeof bx) == 0);
    CHECK(b.lambda[0] == mx_cutmix_box_lambda(bx, H, W));
    CHECK(memcmp(&rng, &again, sizeof rng) == 0);
}

/* CutMix off: exactly mx_mixup_batch, outputs and generator state. */
static void test_matches_mixup(void)
{
    static batch b, ref;
    const size_t sizes[] = {1, 6, 7};
    for (int m = MX_MIX_BATCH; m <= MX_MIX_ELEM; m++)
        for (int p = MX_PARTNER_PERM; p <= MX_PARTNER_ROLL; p++)
            for (int alpha_on = 0; alpha_on <= 1; alpha_on++)
                for (size_t s = 0; s < 3; s++) {
                    if (m == MX_MIX_PAIR && p == MX_PARTNER_ROLL) continue;
                    size_t n = sizes[s];
                    mx_mixup_config mix = mx_mixup_config_default();
                    mix.mode = (mx_mix_mode)m;
                    mix.partner = (mx_partner)p;
                    mix.alpha = alpha_on ? 0.4 : 0.0;
                    mix.theta_form = (int)s % 2;
                    mix.label_smoothing = 0.1;
                    mx_cutmix_config cut = mx_cutmix_config_default();
                    /* With mixup off, a mixing probability below 1 changes nothing either. */
                    if (!alpha_on) cut.prob = 0.5;
                    batch_fill(&b, n);
                    batch_fill(&ref, n);
                    mx_rng r1, r2;
                    mx_rng_init(&r1, 7 + n, MX_STREAM_MIXUP);
                    r2 = r1;
                    batch_run(&b, &mix, &cut, &r1, n);
                    mx_mixup_workspace mws = {ref.partner, ref.lambda};
                    mx_mixup_batch(&mix, &r2, ref.x, ref.labels, n, DIM, CLASSES, ref.x_out, ref.y_out, &mws);
                    CHECK(memcmp(b.x_out, ref.x_out, n * DIM * sizeof(float)) == 0);
                    CHECK(memcmp(b.y_out, ref.y_out, n * CLASSES * sizeof(float)) == 0);
                    CHECK(memcmp(b.partner, ref.partner, n * sizeof(uint32_t)) == 0);
                    CHECK(memcmp(b.lambda, ref.lambda, n * sizeof(double)) == 0);
                    CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
                    int kinds = 1;
                    for (size_t i = 0; i < n; i++)
                        kinds &= b.kind[i] == (alpha_on ? MX_MIXED_MIXUP : MX_MIXED_NONE) && box_empty(b.box[i]);
                    CHECK(kinds);
                }
}

/* The switch: both on, per batch or per row; and the overall mixing probability. */
static void test_switch(void)
{
    static batch b;
    size_t n = 16;
    enum { T = 3000 };
    const double switches[] = {0.0, 0.5, 1.0, 0.25};
    const double probs[] = {1.0, 1.0, 1.0, 0.6};
    for (int m = MX_MIX_BATCH; m <= MX_MIX_ELEM; m++)
        for (int k = 0; k < 4; k++) {
            mx_mixup_config mix = mx_mixup_config_default();
            mix.mode = (mx_mix_mode)m;
            mix.alpha = 0.4;
            mix.theta_form = 1;
            mx_cutmix_config cut = cutmix_on(1.0);
            cut.switch_prob = switches[k];
            cut.prob = probs[k];
            batch_fill(&b, n);
            mx_rng rng;
            mx_rng_init(&rng, 1000 + (uint64_t)k, MX_STREAM_MIXUP);
            long counts[3] = {0};
            int ok = 1, uniform_kind = 1, theta_ok = 1;
            for (int t = 0; t < T / (m == MX_MIX_BATCH ? 1 : 8); t++) {
                batch_run(&b, &mix, &cut, &rng, n);
                ok &= rows_follow(&b, &mix, &cut, n);
                for (size_t i = 0; i < n; i++) {
                    counts[b.kind[i]]++;
                    if (m == MX_MIX_BATCH) uniform_kind &= b.kind[i] == b.kind[0];
                    if (b.kind[i] == MX_MIXED_MIXUP) theta_ok &= b.lambda[i] >= 0.5f;
                }
            }
            CHECK(ok);
            CHECK(uniform_kind);
            CHECK(theta_ok);
            /* Decisions: one per batch, one per pair (n/2 per batch) or one per row. */
            double per_batch = m == MX_MIX_BATCH ? 1 : (m == MX_MIX_PAIR ? n / 2.0 : (double)n);
            double rows_per_decision = n / per_batch;
            double decisions = (double)(counts[0] + counts[1] + counts[2]) / rows_per_decision;
            double p_cut = cut.prob * cut.switch_prob, p_none = 1 - cut.prob;
            double got_cut = counts[MX_MIXED_CUTMIX] / rows_per_decision, got_none = counts[MX_MIXED_NONE] / rows_per_decision;
            CHECK_NEAR(got_cut, decisions * p_cut, 5 * sqrt(decisions * p_cut * (1 - p_cut)) + 1e-9);
            CHECK_NEAR(got_none, decisions * p_none, 5 * sqrt(decisions * p_none * (1 - p_none)) + 1e-9);
            if (switches[k] == 0.0) CHECK(counts[MX_MIXED_CUTMIX] == 0);
            if (switches[k] == 1.0) CHECK(counts[MX_MIXED_MIXUP] == 0);
        }

    /* Mixing probability 0: nothing happens, but the decisions still draw. */
    mx_mixup_config mix = mx_mixup_config_default();
    mx_cutmix_config cut = cutmix_on(1.0);
    cut.prob = 0.0;
    batch_fill(&b, n);
    mx_rng rng, before;
    mx_rng_init(&rng, 4, MX_STREAM_MIXUP);
    before = rng;
    batch_run(&b, &mix, &cut, &rng, n);
    CHECK(rows_follow(&b, &mix, &cut, n));
    CHECK(memcmp(b.x, b.x_out, n * DIM * sizeof(float)) == 0);
    int none = 1;
    for (size_t i = 0; i < n; i++) none &= b.kind[i] == MX_MIXED_NONE && b.y_out[i * CLASSES + b.labels[i]] == 1.0f;
    CHECK(none);
    CHECK(memcmp(&rng, &before, sizeof rng) != 0);
}

static void test_alpha_edges(void)
{
    static batch b;
    size_t n = 33;
    batch_fill(&b, n);
    mx_mixup_config mix = mx_mixup_config_default();
    mix.alpha = 0;
    mix.mode = MX_MIX_ELEM;
    mx_rng rng;
    mx_rng_init(&rng, 12, MX_STREAM_MIXUP);

    /* Tiny alpha: lambda at the ends, so boxes are empty or as large as can be. */
    mx_cutmix_config cut = cutmix_on(0.005);
    int ok = 1, empty = 0, big = 0;
    for (int round = 0; round < 10; round++) {
        batch_run(&b, &mix, &cut, &rng, n);
        ok &= rows_follow(&b, &mix, &cut, n);
        for (size_t i = 0; i < n; i++) {
            ok &= isfinite(b.lambda[i]);
            if (box_empty(b.box[i])) {
                empty++;
                ok &= b.lambda[i] == 1.0f;
            }
            /* lambda ~ 0: cuts of 11 and 9 at least, so even a corner box is 5 x 4. */
            big += (b.box[i].y1 - b.box[i].y0) * (b.box[i].x1 - b.box[i].x0) >= 20;
        }
    }
    CHECK(ok);
    CHECK(empty > 0 && big > 0);

    /* Huge alpha: lambda ~ 1/2, sides floor(size * sqrt(1/2)) rounded down to even. */
    cut = cutmix_on(1e6);
    batch_run(&b, &mix, &cut, &rng, n);
    CHECK(rows_follow(&b, &mix, &cut, n));
    int sides = 1;
    for (size_t i = 0; i < n; i++) sides &= b.box[i].y1 - b.box[i].y0 <= 8 && b.box[i].x1 - b.box[i].x0 <= 6;
    CHECK(sides);
    /* Centred draws keep 1 - 8*6/120 = 0.6 of the image. */
    int centred = 0;
    for (size_t i = 0; i < n; i++)
        if (b.box[i].y1 - b.box[i].y0 == 8 && b.box[i].x1 - b.box[i].x0 == 6) centred++, sides &= b.lambda[i] == 1.0 - 48.0 / 120.0;
    CHECK(centred > 0 && sides);

    /* One-pixel images: every box is empty, lambda 1, targets one-hot. */
    float x1[4] = {1, 2, 3, 4}, xo[4], yo[4 * CLASSES];
    double lam[4];
    int32_t lb[4] = {0, 1, 2, 3};
    uint32_t pt[4];
    mx_box bx[4];
    uint8_t kd[4];
    mx_cutmix_workspace ws = {pt, lam, bx, kd};
    cut = cutmix_on(1.0);
    mx_cutmix_batch(&mix, &cut, &rng, x1, lb, 4, 1, 1, 1, CLASSES, xo, yo, &ws);
    int whole = memcmp(x1, xo, sizeof x1) == 0;
    for (int i = 0; i < 4; i++) whole &= lam[i] == 1.0f && yo[i * CLASSES + lb[i]] == 1.0f;
    CHECK(whole);
}

static void test_ablations_and_repro(void)
{
    static batch b, c;
    size_t n = 9;
    batch_fill(&b, n);
    batch_fill(&c, n);
    mx_mixup_config mix = mx_mixup_config_default();
    mix.mode = MX_MIX_PAIR;
    mix.label_smoothing = 0.2;
    mx_cutmix_config cut = cutmix_on(1.0);
    cut.switch_prob = 0.7;
    cut.prob = 0.9;
    mx_rng r1, r2;
    mx_rng_init(&r1, 31, MX_STREAM_MIXUP);
    r2 = r1;
    batch_run(&b, &mix, &cut, &r1, n);
    batch_run(&c, &mix, &cut, &r2, n);
    CHECK(rows_follow(&b, &mix, &cut, n));
    CHECK(memcmp(b.x_out, c.x_out, n * DIM * sizeof(float)) == 0);
    CHECK(memcmp(b.y_out, c.y_out, n * CLASSES * sizeof(float)) == 0);
    CHECK(memcmp(b.box, c.box, n * sizeof(mx_box)) == 0);
    CHECK(memcmp(b.kind, c.kind, n) == 0);

    /* Labels only: inputs untouched. Inputs only: own-label targets. */
    mix.mode = MX_MIX_ELEM;
    cut.switch_prob = 1.0;
    cut.prob = 1.0;
    mix.mix_inputs = 0;
    batch_run(&b, &mix, &cut, &r1, n);
    CHECK(rows_follow(&b, &mix, &cut, n));
    CHECK(memcmp(b.x, b.x_out, n * DIM * sizeof(float)) == 0);
    mix.mix_inputs = 1;
    mix.mix_labels = 0;
    batch_run(&b, &mix, &cut, &r1, n);
    CHECK(rows_follow(&b, &mix, &cut, n));
    int own = 1, changed = 0;
    for (size_t i = 0; i < n; i++) {
        for (int cl = 0; cl < CLASSES; cl++) own &= b.y_out[i * CLASSES + cl] == smoothed(0.2, b.labels[i] == cl);
        changed += memcmp(b.x + i * DIM, b.x_out + i * DIM, DIM * sizeof(float)) != 0;
    }
    CHECK(own);
    CHECK(changed > 0);
}

int main(void)
{
    test_config();
    test_box_geometry();
    test_box_matches_timm_table();
    test_minmax_boxes();
    test_switch_lambda_double();
    test_cutmix_rows();
    test_uncorrected();
    test_draw_order();
    test_matches_mixup();
    test_switch();
    test_alpha_edges();
    test_ablations_and_repro();
    CHECK_DONE();
}
