/* Philox4x32-10 against the Random123 known answers, determinism and streams,
 * and the moments of every distribution mixreg draws from. */
#include <string.h>

#include "check.h"
#include "mixreg/rng.h"

#define DRAWS 200000

/* Random123's tests/kat_vectors, "philox4x32 10" lines: counter, key -> output. */
static void test_known_answers(void)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        mx_rng rng;
        uint64_t seed = ((uint64_t)kat[k].key[1] << 32) | kat[k].key[0];
        uint64_t stream = ((uint64_t)kat[k].ctr[3] << 32) | kat[k].ctr[2];
        mx_rng_init(&rng, seed, stream);
        /* The block counter is plain state, as a checkpoint restore would set it. */
        rng.ctr[0] = kat[k].ctr[0];
        rng.ctr[1] = kat[k].ctr[1];
        for (int w = 0; w < 4; w++) CHECK(mx_rng_u32(&rng) == kat[k].out[w]);
    }
    /* The 64-bit block counter carries from ctr[0] into ctr[1] and leaves the stream alone. */
    mx_rng rng;
    mx_rng_init(&rng, 5, 9);
    rng.ctr[0] = 0xffffffff;
    mx_rng_u32(&rng);
    CHECK(rng.ctr[0] == 0 && rng.ctr[1] == 1 && rng.ctr[2] == 9 && rng.ctr[3] == 0);
}

static void test_determinism_and_streams(void)
{
    mx_rng a, b, c, d;
    mx_rng_init(&a, 42, MX_STREAM_MIXUP);
    mx_rng_init(&b, 42, MX_STREAM_MIXUP);
    mx_rng_init(&c, 42, MX_STREAM_SHUFFLE);
    mx_rng_init(&d, 43, MX_STREAM_MIXUP);
    int same_ab = 1, same_ac = 0, same_ad = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t va = mx_rng_u32(&a), vb = mx_rng_u32(&b), vc = mx_rng_u32(&c), vd = mx_rng_u32(&d);
        same_ab &= va == vb;
        same_ac += va == vc;
        same_ad += va == vd;
    }
    CHECK(same_ab);
    CHECK(same_ac < 3); /* independent 32-bit words collide with probability 2^-32 each */
    CHECK(same_ad < 3);

    /* Copying the struct is a checkpoint: both copies continue identically,
     * including mid-block. */
    mx_rng_init(&a, 7, 1);
    mx_rng_u32(&a);
    mx_rng_u64(&a);
    mx_rng saved = a;
    double x1 = mx_rng_uniform(&a), y1 = mx_rng_beta(&a, 0.3, 0.3);
    double x2 = mx_rng_uniform(&saved), y2 = mx_rng_beta(&saved, 0.3, 0.3);
    CHECK(x1 == x2 && y1 == y2);

    /* High stream bits matter too (the trainer puts the epoch there). */
    mx_rng_init(&a, 1, ((uint64_t)1 << 32) | MX_STREAM_MIXUP);
    mx_rng_init(&b, 1, ((uint64_t)2 << 32) | MX_STREAM_MIXUP);
    CHECK(mx_rng_u64(&a) != mx_rng_u64(&b));
}

static void test_uniform(void)
{
    mx_rng rng;
    mx_rng_init(&rng, 1, 2);
    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    for (int i = 0; i < DRAWS; i++) {
        double u = mx_rng_uniform(&rng);
        sum += u;
        sum2 += u * u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    double mean = sum / DRAWS, var = sum2 / DRAWS - mean * mean;
    CHECK(lo > 0.0 && hi < 1.0);
    /* sd of the mean = sqrt(1/12 / N) ~ 6.5e-4; of the variance ~ sqrt(1/180 / N) ~ 1.7e-4. */
    CHECK_NEAR(mean, 0.5, 5 * 6.5e-4);
    CHECK_NEAR(var, 1.0 / 12.0, 5 * 1.7e-4);

    /* The extreme words map inside (0, 1) too, and a zero word is redrawn. */
    mx_rng edge;
    mx_rng_init(&edge, 0, 0);
    edge.used = 0;
    edge.buf[0] = 0, edge.buf[1] = 0x800, edge.buf[2] = 0xffffffff, edge.buf[3] = 0xffffffff;
    double smallest = mx_rng_uniform(&edge), largest = mx_rng_uniform(&edge);
    CHECK(smallest == 0x1.0p-53);
    CHECK(largest == 1.0 - 0x1.0p-53);
    edge.used = 0;
    edge.buf[0] = 0, edge.buf[1] = 0x7ff, edge.buf[2] = 0, edge.buf[3] = 0x800;
    CHECK(mx_rng_uniform(&edge) == 0x1.0p-53);
}

static void test_below(void)
{
    mx_rng rng;
    mx_rng_init(&rng, 3, 4);
    enum { N = 10 };
    int counts[N] = {0};
    int in_range = 1;
    for (int i = 0; i < DRAWS; i++) {
        uint32_t v = mx_rng_below(&rng, N);
        if (v >= N) {
            in_range = 0;
            continue;
        }
        counts[v]++;
    }
    CHECK(in_range);
    /* Each count ~ Binomial(N_draws, 1/10): sd ~ 134. */
    for (int k = 0; k < N; k++) CHECK_NEAR(counts[k], DRAWS / N, 5 * 134);
    int ones = 1;
    for (int i = 0; i < 100; i++) ones &= mx_rng_below(&rng, 1) == 0;
    CHECK(ones);
    /* With n = 3 * 2^30 a plain r % n would give [0, 2^30) twice the weight
     * (probability 1/2 instead of 1/3): rejection must remove that. */
    uint32_t big = 0xC0000000u;
    int big_ok = 1, first_third = 0;
    for (int i = 0; i < 10000; i++) {
        uint32_t v = mx_rng_below(&rng, big);
        big_ok &= v < big;
        first_third += v < 0x40000000u;
    }
    CHECK(big_ok);
    CHECK_NEAR(first_third, 10000.0 / 3.0, 5 * 47);
}

static void test_permutation(void)
{
    mx_rng rng;
    mx_rng_init(&rng, 11, 2);
    size_t sizes[] = {0, 1, 2, 7, 128, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint32_t perm[1000];
        unsigned char seen[1000] = {0};
        mx_rng_permutation(&rng, perm, n);
        int ok = 1;
        for (size_t i = 0; i < n; i++) {
            if (perm[i] >= n || seen[perm[i]]) ok = 0;
            else seen[perm[i]] = 1;
        }
        CHECK(ok);
    }
    /* Uniformity over the 6 permutations of 3 elements, and position 0 of a larger one. */
    int counts[6] = {0};
    for (int t = 0; t < 60000; t++) {
        uint32_t p[3];
        mx_rng_permutation(&rng, p, 3);
        counts[p[0] * 2 + (p[1] > p[2])]++;
    }
    for (int k = 0; k < 6; k++) CHECK_NEAR(counts[k], 10000, 5 * 91);
}

static void test_normal(void)
{
    mx_rng rng;
    mx_rng_init(&rng, 5, 6);
    double sum = 0, sum2 = 0, sum4 = 0;
    for (int i = 0; i < DRAWS; i++) {
        double z = mx_rng_normal(&rng);
        sum += z;
        sum2 += z * z;
        sum4 += z * z * z * z;
    }
    CHECK_NEAR(sum / DRAWS, 0.0, 5 * sqrt(1.0 / DRAWS));
    CHECK_NEAR(sum2 / DRAWS, 1.0, 5 * sqrt(2.0 / DRAWS));
    CHECK_NEAR(sum4 / DRAWS, 3.0, 5 * sqrt(96.0 / DRAWS));
}

static void test_gamma(void)
{
    const double shapes[] = {0.1, 0.5, 1.0, 3.0};
    mx_rng rng;
    mx_rng_init(&rng, 8, 9);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        double k = shapes[s];
        double sum = 0, sum2 = 0;
        int finite = 1, positive = 1;
        for (int i = 0; i < DRAWS; i++) {
            double g = mx_rng_gamma(&rng, k);
            finite &= isfinite(g);
            positive &= g >= 0.0;
            sum += g;
            sum2 += g * g;
        }
        double mean = sum / DRAWS, var = sum2 / DRAWS - mean * mean;
        CHECK(finite && positive);
        /* Gamma(k, 1): mean k, var k, E[X^4] = k(k+1)(k+2)(k+3), so
         * sd(sample var) ~ sqrt((mu4 - var^2) / N) with mu4 = 3k^2 + 6k. */
        double se_mean = sqrt(k / DRAWS), se_var = sqrt((3 * k * k + 6 * k - k * k) / DRAWS);
        CHECK_NEAR(mean, k, 5 * se_mean);
        CHECK_NEAR(var, k, 5 * se_var);
    }
    /* Tiny shapes underflow exp() but never the log-space draw. */
    int log_finite = 1;
    for (int i = 0; i < 10000; i++) log_finite &= isfinite(mx_rng_log_gamma(&rng, 1e-3));
    CHECK(log_finite);
    CHECK(isnan(mx_rng_log_gamma(&rng, 0.0)));
    CHECK(isnan(mx_rng_log_gamma(&rng, -1.0)));
}

static void test_beta(void)
{
    const double shapes[] = {0.01, 0.2, 1.0, 4.0};
    mx_rng rng;
    mx_rng_init(&rng, 12, 13);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        double a = shapes[s];
        double sum = 0, sum2 = 0;
        int valid = 1;
        for (int i = 0; i < DRAWS; i++) {
            double l = mx_rng_beta(&rng, a, a);
            valid &= l >= 0.0 && l <= 1.0; /* false for NaN as well */
            sum += l;
            sum2 += (l - 0.5) * (l - 0.5);
        }
        CHECK(valid);
        double var = 1.0 / (4.0 * (2.0 * a + 1.0));
        /* E[(l - 1/2)^4] for Beta(a, a) is 3 / (16 (2a+1)(2a+3)). */
        double mu4 = 3.0 / (16.0 * (2 * a + 1) * (2 * a + 3));
        CHECK_NEAR(sum / DRAWS, 0.5, 5 * sqrt(var / DRAWS));
        CHECK_NEAR(sum2 / DRAWS, var, 5 * sqrt((mu4 - var * var) / DRAWS));
    }
    /* Far smaller shapes: both gamma draws underflow exp() nearly always, so a
     * ratio of exp()s would be 0/0; the log-space form stays in [0, 1]. */
    int tiny_valid = 1, ends = 0;
    for (int i = 0; i < 10000; i++) {
        double l = mx_rng_beta(&rng, 1e-3, 1e-3);
        tiny_valid &= l >= 0.0 && l <= 1.0;
        ends += l < 1e-6 || l > 1 - 1e-6;
    }
    CHECK(tiny_valid);
    CHECK(ends > 9500); /* Beta(1e-3, 1e-3) sits at its ends */

    /* Asymmetric: Beta(2, 5) has mean 2/7. */
    double sum = 0;
    for (int i = 0; i < DRAWS; i++) sum += mx_rng_beta(&rng, 2.0, 5.0);
    double var25 = 2.0 * 5.0 / (49.0 * 8.0);
    CHECK_NEAR(sum / DRAWS, 2.0 / 7.0, 5 * sqrt(var25 / DRAWS));
}

int main(void)
{
    test_known_answers();
    test_determinism_and_streams();
    test_uniform();
    test_below();
    test_permutation();
    test_normal();
    test_gamma();
    test_beta();
    CHECK_DONE();
}
