/* Mixup on one batch: every mode x partner x odd/even size, the ERM identity,
 * ablations, label smoothing, validation and reproducibility. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "mixreg/mixup.h"

#define MAX_N 64
#define DIM 5
#define CLASSES 4

typedef struct {
    float x[MAX_N * DIM];
    int32_t labels[MAX_N];
    float x_out[MAX_N * DIM];
    float y_out[MAX_N * CLASSES];
    uint32_t partner[MAX_N];
    double lambda[MAX_N];
    mx_mixup_workspace ws;
} batch;

static void batch_fill(batch *b, size_t n)
{
    for (size_t i = 0; i < n * DIM; i++) b->x[i] = (float)((i * 37 % 101) - 50) / 7.0f;
    for (size_t i = 0; i < n; i++) b->labels[i] = (int32_t)((i * 3 + 1) % CLASSES);
    b->ws.partner = b->partner;
    b->ws.lambda = b->lambda;
}

static void batch_run(batch *b, const mx_mixup_config *cfg, uint64_t seed, size_t n)
{
    mx_rng rng;
    mx_rng_init(&rng, seed, MX_STREAM_MIXUP);
    mx_mixup_batch(cfg, &rng, b->x, b->labels, n, DIM, CLASSES, b->x_out, b->y_out, &b->ws);
}

static float smoothed(double e, int hit) { return (float)((hit ? 1.0 - e : 0.0) + e / CLASSES); }

/* Every row: x_out and y_out are the stated blend of row i and row partner(i)
 * with the reported lambda, and label rows sum to 1. */
static int rows_follow_formula(const batch *b, const mx_mixup_config *cfg, size_t n)
{
    int ok = 1;
    double e = cfg->label_smoothing;
    for (size_t i = 0; i < n; i++) {
        uint32_t j = b->partner[i];
        float lam = b->lambda[i];
        if (j >= n || !(lam >= 0.0f && lam <= 1.0f)) return 0;
        float li = cfg->mix_inputs ? lam : 1.0f, ll = cfg->mix_labels ? lam : 1.0f;
        for (size_t d = 0; d < DIM; d++) {
            float want = li * b->x[i * DIM + d] + (1.0f - li) * b->x[j * DIM + d];
            ok &= fabsf(b->x_out[i * DIM + d] - want) <= 1e-5f * (1.0f + fabsf(want));
        }
        double row_sum = 0;
        for (int c = 0; c < CLASSES; c++) {
            double want = ll * smoothed(e, b->labels[i] == c) + (1.0 - ll) * smoothed(e, b->labels[j] == c);
            ok &= fabs(b->y_out[i * CLASSES + c] - want) <= 1e-6;
            row_sum += b->y_out[i * CLASSES + c];
        }
        ok &= fabs(row_sum - 1.0) <= 1e-6;
    }
    return ok;
}

static int is_permutation(const uint32_t *p, size_t n)
{
    unsigned char seen[MAX_N] = {0};
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= n || seen[p[i]]) return 0;
        seen[p[i]] = 1;
    }
    return 1;
}

static int is_involution(const uint32_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= n || p[p[i]] != i) return 0;
    return 1;
}

static size_t fixed_points(const uint32_t *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += p[i] == i;
    return k;
}

static void test_defaults_and_validation(void)
{
    mx_mixup_config cfg = mx_mixup_config_default();
    CHECK(cfg.alpha == 1.0 && cfg.mode == MX_MIX_BATCH && cfg.partner == MX_PARTNER_PERM && !cfg.theta_form &&
          cfg.label_smoothing == 0.0 && cfg.mix_inputs && cfg.mix_labels);
    CHECK_OK(mx_mixup_config_validate(&cfg));

    mx_mixup_config bad = cfg;
    bad.alpha = -0.5;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "alpha") != NULL);
    bad.alpha = NAN;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);
    bad.alpha = INFINITY;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);

    bad = cfg;
    bad.label_smoothing = 1.0;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "smoothing") != NULL);
    bad.label_smoothing = -0.1;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);
    bad.label_smoothing = NAN;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);

    bad = cfg;
    bad.mode = (mx_mix_mode)7;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "mode") != NULL);
    bad = cfg;
    bad.partner = (mx_partner)-1;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "partner") != NULL);

    bad = cfg;
    bad.mode = MX_MIX_PAIR;
    bad.partner = MX_PARTNER_ROLL;
    CHECK(mx_mixup_config_validate(&bad) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "pair") != NULL);

    /* Everything else is a valid combination, ERM included. */
    mx_mixup_config good = cfg;
    good.alpha = 0.0;
    good.label_smoothing = 0.999;
    CHECK_OK(mx_mixup_config_validate(&good));
    for (int m = MX_MIX_BATCH; m <= MX_MIX_ELEM; m++)
        for (int p = MX_PARTNER_PERM; p <= MX_PARTNER_ROLL; p++) {
            good.mode = (mx_mix_mode)m;
            good.partner = (mx_partner)p;
            if (!(m == MX_MIX_PAIR && p == MX_PARTNER_ROLL)) CHECK_OK(mx_mixup_config_validate(&good));
        }
}

static void test_erm_identity(void)
{
    static batch b;
    size_t n = 9;
    batch_fill(&b, n);
    mx_mixup_config cfg = mx_mixup_config_default();
    cfg.alpha = 0.0;
    const double smoothing[] = {0.0, 0.1};
    for (int s = 0; s < 2; s++) {
        cfg.label_smoothing = smoothing[s];
        mx_rng rng, before;
        mx_rng_init(&rng, 3, MX_STREAM_MIXUP);
        mx_rng_u32(&rng); /* mid-block, so any consumption would show */
        before = rng;
        mx_mixup_batch(&cfg, &rng, b.x, b.labels, n, DIM, CLASSES, b.x_out, b.y_out, &b.ws);
        CHECK(memcmp(b.x, b.x_out, n * DIM * sizeof(float)) == 0);
        CHECK(memcmp(&rng, &before, sizeof rng) == 0);
        int labels_ok = 1, ws_ok = 1;
        for (size_t i = 0; i < n; i++) {
            for (int c = 0; c < CLASSES; c++)
                labels_ok &= b.y_out[i * CLASSES + c] == smoothed(smoothing[s], b.labels[i] == c);
            ws_ok &= b.partner[i] == i && b.lambda[i] == 1.0f;
        }
        CHECK(labels_ok);
        CHECK(ws_ok);
    }
    /* Plain one-hot targets are exactly 0 and 1. */
    cfg.label_smoothing = 0.0;
    batch_run(&b, &cfg, 1, n);
    CHECK(b.y_out[0 * CLASSES + b.labels[0]] == 1.0f && b.y_out[0 * CLASSES + (b.labels[0] + 1) % CLASSES] == 0.0f);
}

/* Mode x partner x size: structure of partner and lambda, and the formula. */
static void test_all_variants(void)
{
    static batch b;
    const size_t sizes[] = {1, 2, 3, 7, 8, 64};
    for (int m = MX_MIX_BATCH; m <= MX_MIX_ELEM; m++)
        for (int p = MX_PARTNER_PERM; p <= MX_PARTNER_ROLL; p++) {
            if (m == MX_MIX_PAIR && p == MX_PARTNER_ROLL) continue;
            for (int theta = 0; theta <= 1; theta++)
                for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                    size_t n = sizes[s];
                    mx_mixup_config cfg = mx_mixup_config_default();
                    cfg.mode = (mx_mix_mode)m;
                    cfg.partner = (mx_partner)p;
                    cfg.theta_form = theta;
                    cfg.alpha = 0.4;
                    cfg.label_smoothing = n % 2 ? 0.1 : 0.0;
                    batch_fill(&b, n);
                    batch_run(&b, &cfg, 100 + n, n);
                    CHECK(rows_follow_formula(&b, &cfg, n));
                    CHECK(is_permutation(b.partner, n));

                    if (p == MX_PARTNER_FLIP) {
                        int flipped = 1;
                        for (size_t i = 0; i < n; i++) flipped &= b.partner[i] == n - 1 - i;
                        CHECK(flipped);
                    } else if (p == MX_PARTNER_ROLL) {
                        int rolled = 1;
                        for (size_t i = 0; i < n; i++) rolled &= b.partner[i] == (i + n - 1) % n;
                        CHECK(rolled);
                    }

                    int theta_ok = 1, all_equal = 1, distinct = 0;
                    for (size_t i = 0; i < n; i++) {
                        theta_ok &= b.lambda[i] >= 0.5f && b.lambda[i] <= 1.0f;
                        all_equal &= b.lambda[i] == b.lambda[0];
                        for (size_t k = 0; k < i; k++) distinct += b.lambda[i] != b.lambda[k];
                    }
                    if (theta) CHECK(theta_ok);
                    if (m == MX_MIX_BATCH) CHECK(all_equal);
                    /* Independent draws: a float collision is possible but rare. */
                    if (m == MX_MIX_ELEM && n >= 3) CHECK(distinct * 100 >= 99 * (int)(n * (n - 1) / 2));

                    if (m == MX_MIX_PAIR) {
                        CHECK(is_involution(b.partner, n));
                        CHECK(fixed_points(b.partner, n) == n % 2);
                        int shared = 1, unpaired_whole = 1;
                        for (size_t i = 0; i < n; i++) {
                            shared &= b.lambda[i] == b.lambda[b.partner[i]];
                            if (b.partner[i] == i) unpaired_whole &= b.lambda[i] == 1.0f;
                        }
                        CHECK(shared);
                        CHECK(unpaired_whole);
                        /* Distinct pairs draw distinct lambdas. */
                        if (n >= 4) {
                            int pairs_differ = 1;
                            for (size_t i = 0; i < n; i++)
                                for (size_t k = 0; k < n; k++)
                                    if (k != i && k != b.partner[i] && b.partner[i] != i && b.partner[k] != k)
                                        pairs_differ &= b.lambda[i] != b.lambda[k];
                            CHECK(pairs_differ);
                        }
                    }
                }
        }
}

/* Pair + perm: a uniform perfect matching. For n = 4 there are 3 matchings,
 * told apart by 0's partner; for n = 3, 3 choices of the unpaired sample. */
static void test_random_matching_uniform(void)
{
    static batch b;
    mx_mixup_config cfg = mx_mixup_config_default();
    cfg.mode = MX_MIX_PAIR;
    const size_t sizes[] = {3, 4};
    for (int s = 0; s < 2; s++) {
        size_t n = sizes[s];
        batch_fill(&b, n);
        mx_rng rng;
        mx_rng_init(&rng, 77, MX_STREAM_MIXUP);
        int counts[4] = {0}, valid = 1;
        enum { T = 30000 };
        for (int t = 0; t < T; t++) {
            mx_mixup_batch(&cfg, &rng, b.x, b.labels, n, DIM, CLASSES, b.x_out, b.y_out, &b.ws);
            valid &= is_involution(b.partner, n) && fixed_points(b.partner, n) == n % 2;
            if (n == 4) counts[b.partner[0]]++;
            else
                for (uint32_t i = 0; i < n; i++)
                    if (b.partner[i] == i) counts[i]++;
        }
        CHECK(valid);
        int first = n == 4 ? 1 : 0;
        /* Each outcome ~ Binomial(T, 1/3): sd ~ 82. */
        for (int k = first; k < first + 3; k++) CHECK_NEAR(counts[k], T / 3.0, 5 * 82);
        if (n == 4) CHECK(counts[0] == 0);
    }
}

/* Lambda's distribution: Beta(alpha, alpha) as drawn, theta form folded. */
static void test_lambda_distribution(void)
{
    static batch b;
    size_t n = 64;
    batch_fill(&b, n);
    mx_mixup_config cfg = mx_mixup_config_default();
    cfg.mode = MX_MIX_ELEM;
    cfg.alpha = 1.0; /* Beta(1, 1): uniform, so theta is uniform on [1/2, 1] with mean 3/4 */
    for (int theta = 0; theta <= 1; theta++) {
        cfg.theta_form = theta;
        mx_rng rng;
        mx_rng_init(&rng, 9, MX_STREAM_MIXUP);
        double sum = 0;
        int below_half = 0;
        enum { ROUNDS = 500 };
        for (int r = 0; r < ROUNDS; r++) {
            mx_mixup_batch(&cfg, &rng, b.x, b.labels, n, DIM, CLASSES, b.x_out, b.y_out, &b.ws);
            for (size_t i = 0; i < n; i++) {
                sum += b.lambda[i];
                below_half += b.lambda[i] < 0.5f;
            }
        }
        double draws = (double)ROUNDS * n, mean = sum / draws;
        if (theta) {
            CHECK_NEAR(mean, 0.75, 5 * sqrt(1.0 / 48 / draws));
            CHECK(below_half == 0);
        } else {
            CHECK_NEAR(mean, 0.5, 5 * sqrt(1.0 / 12 / draws));
            CHECK_NEAR(below_half / draws, 0.5, 5 * sqrt(0.25 / draws));
        }
    }
    /* Tiny alpha puts lambda at the ends, never NaN. */
    cfg.alpha = 0.01;
    cfg.theta_form = 0;
    batch_run(&b, &cfg, 5, n);
    CHECK(rows_follow_formula(&b, &cfg, n));
}

static void test_ablations(void)
{
    static batch b;
    size_t n = 7;
    batch_fill(&b, n);
    mx_mixup_config cfg = mx_mixup_config_default();
    cfg.mode = MX_MIX_ELEM;
    cfg.partner = MX_PARTNER_FLIP;
    cfg.label_smoothing = 0.2;

    /* Labels only: inputs untouched, labels mixed. */
    cfg.mix_inputs = 0;
    batch_run(&b, &cfg, 21, n);
    CHECK(memcmp(b.x, b.x_out, n * DIM * sizeof(float)) == 0);
    CHECK(rows_follow_formula(&b, &cfg, n));
    int labels_mixed = 0;
    for (size_t i = 0; i < n; i++)
        if (b.partner[i] != i && b.labels[b.partner[i]] != b.labels[i])
            labels_mixed += b.y_out[i * CLASSES + b.labels[b.partner[i]]] > smoothed(0.2, 0) + 1e-6f;
    CHECK(labels_mixed > 0);

    /* Inputs only: targets are the smoothed one-hot of the own label. */
    cfg.mix_inputs = 1;
    cfg.mix_labels = 0;
    batch_run(&b, &cfg, 21, n);
    CHECK(rows_follow_formula(&b, &cfg, n));
    int labels_own = 1, inputs_mixed = 0;
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < CLASSES; c++) labels_own &= b.y_out[i * CLASSES + c] == smoothed(0.2, b.labels[i] == c);
        inputs_mixed += memcmp(b.x + i * DIM, b.x_out + i * DIM, DIM * sizeof(float)) != 0;
    }
    CHECK(labels_own);
    CHECK(inputs_mixed > 0);
}

static void test_reproducible(void)
{
    static batch a, c;
    size_t n = 33;
    batch_fill(&a, n);
    batch_fill(&c, n);
    mx_mixup_config cfg = mx_mixup_config_default();
    cfg.mode = MX_MIX_PAIR;
    cfg.theta_form = 1;
    batch_run(&a, &cfg, 1234, n);
    batch_run(&c, &cfg, 1234, n);
    CHECK(memcmp(a.x_out, c.x_out, n * DIM * sizeof(float)) == 0);
    CHECK(memcmp(a.y_out, c.y_out, n * CLASSES * sizeof(float)) == 0);
    CHECK(memcmp(a.partner, c.partner, n * sizeof(uint32_t)) == 0);
    CHECK(memcmp(a.lambda, c.lambda, n * sizeof(double)) == 0);
    batch_run(&c, &cfg, 1235, n);
    CHECK(memcmp(a.lambda, c.lambda, n * sizeof(double)) != 0);
}

/* The paper's label-smoothing reading (method.md section 3): with theta =
 * max(lambda, 1 - lambda) and a uniformly random partner, sample i's target
 * averages to theta_bar y_i + (1 - theta_bar) y_bar, y_bar the batch's class
 * frequencies (alpha = 1: theta_bar = 3/4). Checked by Monte Carlo. */
static void test_targets_shrink_to_prior(void)
{
    static batch b;
    enum { N = 40, ROUNDS = 4000 };
    batch_fill(&b, N);
    double prior[CLASSES] = {0}, mean[N][CLASSES];
    memset(mean, 0, sizeof mean);
    for (size_t i = 0; i < N; i++) prior[b.labels[i]] += 1.0 / N;
    mx_mixup_config cfg = mx_mixup_config_default();
    cfg.mode = MX_MIX_ELEM;
    cfg.alpha = 1.0;
    cfg.theta_form = 1;
    mx_rng rng;
    mx_rng_init(&rng, 21, MX_STREAM_MIXUP);
    for (int r = 0; r < ROUNDS; r++) {
        mx_mixup_batch(&cfg, &rng, b.x, b.labels, N, DIM, CLASSES, b.x_out, b.y_out, &b.ws);
        for (size_t i = 0; i < N; i++)
            for (size_t c = 0; c < CLASSES; c++) mean[i][c] += b.y_out[i * CLASSES + c] / ROUNDS;
    }
    double worst = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < CLASSES; c++) {
            double want = 0.75 * (b.labels[i] == (int32_t)c) + 0.25 * prior[c];
            worst = fmax(worst, fabs(mean[i][c] - want));
        }
    /* Per entry the standard error is below 0.25 / sqrt(ROUNDS) = 0.004. */
    CHECK(worst < 0.02);
}

/* A small alpha puts many draws within 2^-24 of 1 (about a fifth at alpha
 * 0.05), which float would round to exactly 1 and leave those rows unmixed.
 * lambda is kept as drawn (double): 1 exactly only when the draw is, and the
 * targets still give the partner its small weight. */
static void test_small_alpha_lambda_not_saturated(void)
{
    static batch b;
    const size_t n = 64;
    batch_fill(&b, n);
    mx_mixup_config cfg = mx_mixup_config_default();
    cfg.mode = MX_MIX_ELEM;
    cfg.alpha = 0.05;
    mx_rng rng, replay;
    mx_rng_init(&rng, 77, MX_STREAM_MIXUP);
    mx_rng_init(&replay, 77, MX_STREAM_MIXUP);
    uint32_t perm[64];
    size_t as_drawn = 0, ones = 0, drawn_ones = 0, float_ones = 0, partner_weighted = 0, near_one_rows = 0;
    enum { ROUNDS = 200 };
    for (int r = 0; r < ROUNDS; r++) {
        mx_mixup_batch(&cfg, &rng, b.x, b.labels, n, DIM, CLASSES, b.x_out, b.y_out, &b.ws);
        /* The same draws replayed: the permutation, then one Beta draw per row. */
        mx_rng_permutation(&replay, perm, n);
        for (size_t i = 0; i < n; i++) {
            double draw = mx_rng_beta(&replay, cfg.alpha, cfg.alpha);
            as_drawn += b.lambda[i] == draw;
            ones += b.lambda[i] == 1.0;
            drawn_ones += draw == 1.0;
            float_ones += (float)draw == 1.0f;
            int32_t own = b.labels[i], other = b.labels[b.partner[i]];
            if (b.lambda[i] < 1.0 && (float)b.lambda[i] == 1.0f && own != other) {
                near_one_rows++;
                partner_weighted += b.y_out[i * CLASSES + (size_t)other] > 0.0f;
            }
        }
    }
    const size_t draws = (size_t)ROUNDS * n;
    CHECK(as_drawn == draws);
    CHECK(ones == drawn_ones);
    /* The case this guards against occurs: float would have made 1s of many draws. */
    CHECK(float_ones > ones + draws / 10);
    CHECK(near_one_rows > 0 && partner_weighted == near_one_rows);
}

int main(void)
{
    test_targets_shrink_to_prior();
    test_defaults_and_validation();
    test_erm_identity();
    test_all_variants();
    test_random_matching_uniform();
    test_lambda_distribution();
    test_small_alpha_lambda_not_saturated();
    test_ablations();
    test_reproducible();
    CHECK_DONE();
}
