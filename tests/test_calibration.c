/* Temperature scaling: recovering a known temperature from a calibrated model
 * made over-confident, a closed-form two-class case, the optimum really being
 * a minimum, the ends of the range, errors, and the softmax helpers. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/calibration.h"
#include "mixreg/metrics.h"

/* splitmix64: a small deterministic generator for the synthetic data. */
static uint64_t rng_state;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(void) { return ((double)(next_u64() >> 11) + 0.5) / 9007199254740992.0; }

static double normal(void) { return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()); }

/* A calibrated model by construction: logits z ~ N(0, sigma^2) per class, then
 * each label drawn from softmax(z) itself. */
static void make_calibrated(float *z, int32_t *labels, size_t n, size_t classes, double sigma, uint64_t seed)
{
    rng_state = seed;
    for (size_t i = 0; i < n; i++) {
        double p[64], sum = 0.0, top = -INFINITY;
        for (size_t c = 0; c < classes; c++) {
            z[i * classes + c] = (float)(sigma * normal());
            if (z[i * classes + c] > top) top = z[i * classes + c];
        }
        for (size_t c = 0; c < classes; c++) sum += p[c] = exp(z[i * classes + c] - top);
        double u = uniform() * sum, cum = 0.0;
        labels[i] = (int32_t)(classes - 1);
        for (size_t c = 0; c < classes; c++) {
            cum += p[c];
            if (u < cum) {
                labels[i] = (int32_t)c;
                break;
            }
        }
    }
}

#define CAL_N 20000
#define CAL_C 10

static void test_recovers_known_temperature(void)
{
    float *z = malloc(CAL_N * CAL_C * sizeof *z);
    int32_t *labels = malloc(CAL_N * sizeof *labels);
    make_calibrated(z, labels, CAL_N, CAL_C, 2.0, 7);
    double t1 = 0;
    CHECK_OK(mx_temperature_fit(z, labels, CAL_N, CAL_C, &t1));
    CHECK_NEAR(t1, 1.0, 0.03); /* calibrated already: T near 1 */
    for (size_t i = 0; i < CAL_N * CAL_C; i++) z[i] *= 3.0f;
    double t = 0;
    CHECK_OK(mx_temperature_fit(z, labels, CAL_N, CAL_C, &t));
    CHECK_NEAR(t, 3.0, 0.09);
    CHECK_NEAR(t / t1, 3.0, 1e-6); /* scaling the logits scales the optimum */
    double at_fit, at_one, below, above;
    CHECK_OK(mx_temperature_nll(z, labels, CAL_N, CAL_C, t, &at_fit));
    CHECK_OK(mx_temperature_nll(z, labels, CAL_N, CAL_C, 1.0, &at_one));
    CHECK_OK(mx_temperature_nll(z, labels, CAL_N, CAL_C, 0.9 * t, &below));
    CHECK_OK(mx_temperature_nll(z, labels, CAL_N, CAL_C, 1.1 * t, &above));
    CHECK(at_fit <= at_one && at_fit <= below && at_fit <= above);
    CHECK(at_one - at_fit > 0.1); /* T = 1 is far off for a 3x over-confident model */
    /* A tiny step either way does not improve it either (a true minimum). */
    double near_lo, near_hi;
    CHECK_OK(mx_temperature_nll(z, labels, CAL_N, CAL_C, t * (1 - 1e-4), &near_lo));
    CHECK_OK(mx_temperature_nll(z, labels, CAL_N, CAL_C, t * (1 + 1e-4), &near_hi));
    CHECK(at_fit <= near_lo + 1e-15 && at_fit <= near_hi + 1e-15);
    /* Deterministic. */
    double again = 0;
    CHECK_OK(mx_temperature_fit(z, labels, CAL_N, CAL_C, &again));
    CHECK(again == t);
    /* The metrics of the rescaled logits: NLL as mx_temperature_nll says,
     * accuracy unchanged, and a much smaller ECE than before. */
    mx_metrics_acc acc;
    mx_metrics before, after;
    CHECK_OK(mx_metrics_init(&acc, 15, CAL_C));
    mx_metrics_add_logits(&acc, z, labels, CAL_N);
    mx_metrics_finish(&acc, &before);
    mx_metrics_free(&acc);
    mx_logits_scale(z, CAL_N * CAL_C, t);
    CHECK_OK(mx_metrics_init(&acc, 15, CAL_C));
    mx_metrics_add_logits(&acc, z, labels, CAL_N);
    mx_metrics_finish(&acc, &after);
    mx_metrics_free(&acc);
    CHECK_NEAR(after.nll, at_fit, 1e-5);
    CHECK(after.accuracy == before.accuracy);
    CHECK(after.ece < 0.02 && before.ece > 0.1);
    free(z);
    free(labels);
}

/* Two classes, logits (2, 0) on all four samples, labels 0, 0, 0, 1: the NLL is
 * minimal where sigmoid(2 / T) = 3/4, T = 2 / ln 3. */
static void test_two_class_closed_form(void)
{
    const float z[] = {2, 0, 2, 0, 2, 0, 2, 0};
    const int32_t labels[] = {0, 0, 0, 1};
    double t = 0;
    CHECK_OK(mx_temperature_fit(z, labels, 4, 2, &t));
    CHECK_NEAR(t, 2.0 / log(3.0), 1e-9);
    double nll;
    CHECK_OK(mx_temperature_nll(z, labels, 4, 2, t, &nll));
    /* -(3/4 ln 3/4 + 1/4 ln 1/4), the entropy of (3/4, 1/4) */
    CHECK_NEAR(nll, -(0.75 * log(0.75) + 0.25 * log(0.25)), 1e-12);
    CHECK_OK(mx_temperature_nll(z, labels, 4, 2, 1.0, &nll));
    CHECK_NEAR(nll, 0.75 * log(1 + exp(-2.0)) + 0.25 * log(1 + exp(2.0)), 1e-12);
}

static void test_range_ends(void)
{
    /* Every sample right with a margin: sharper always helps, T = the minimum. */
    const float right[] = {3, 0, 0, 3, 3, 0};
    const int32_t right_labels[] = {0, 1, 0};
    double t = 0;
    CHECK_OK(mx_temperature_fit(right, right_labels, 3, 2, &t));
    CHECK(t == MX_TEMPERATURE_MIN);
    /* Confident and right only half the time: the best is a coin flip, T = the maximum. */
    const float coin[] = {10, 0, 10, 0};
    const int32_t coin_labels[] = {0, 1};
    CHECK_OK(mx_temperature_fit(coin, coin_labels, 2, 2, &t));
    CHECK(t == MX_TEMPERATURE_MAX);
    /* Flat logits: the NLL is log 3 whatever T; the fit says 1. */
    const float flat[] = {1, 1, 1, -2, -2, -2};
    const int32_t flat_labels[] = {2, 0};
    t = 0;
    CHECK_OK(mx_temperature_fit(flat, flat_labels, 2, 3, &t));
    CHECK(t == 1.0);
    double nll;
    CHECK_OK(mx_temperature_nll(flat, flat_labels, 2, 3, 5.0, &nll));
    CHECK_NEAR(nll, log(3.0), 1e-12);
    /* One class: nothing to fit. */
    const float one[] = {4, -1};
    const int32_t zeros[] = {0, 0};
    CHECK_OK(mx_temperature_fit(one, zeros, 2, 1, &t));
    CHECK(t == 1.0);
}

static void test_errors(void)
{
    const float z[] = {1, 0, 0, 1};
    const int32_t labels[] = {0, 1}, bad[] = {0, 2}, negative[] = {-1, 0};
    double t = 42.0, nll;
    CHECK(mx_temperature_fit(z, labels, 0, 2, &t) == MX_ERR_ARG);
    CHECK(mx_temperature_fit(z, labels, 2, 0, &t) == MX_ERR_ARG);
    CHECK(mx_temperature_fit(z, bad, 2, 2, &t) == MX_ERR_ARG);
    CHECK(mx_temperature_fit(z, negative, 2, 2, &t) == MX_ERR_ARG);
    const float nan_z[] = {1, NAN, 0, 1}, inf_z[] = {1, 0, INFINITY, 1};
    CHECK(mx_temperature_fit(nan_z, labels, 2, 2, &t) == MX_ERR_NUMERIC);
    CHECK(mx_temperature_fit(inf_z, labels, 2, 2, &t) == MX_ERR_NUMERIC);
    CHECK(t == 42.0); /* untouched on error */
    CHECK(mx_temperature_nll(z, labels, 0, 2, 1.0, &nll) == MX_ERR_ARG);
    CHECK(mx_temperature_nll(z, labels, 2, 2, 0.0, &nll) == MX_ERR_ARG);
    CHECK(mx_temperature_nll(z, labels, 2, 2, -1.0, &nll) == MX_ERR_ARG);
    CHECK(mx_temperature_nll(z, labels, 2, 2, NAN, &nll) == MX_ERR_ARG);
    CHECK(mx_temperature_nll(z, labels, 2, 2, INFINITY, &nll) == MX_ERR_ARG);
}

static void test_softmax_helpers(void)
{
    const float z[] = {0, 1, 2, 100, -100, 0};
    float p[6], q[6];
    mx_softmax_temperature(z, 2, 3, 1.0, p);
    double e = 1 + exp(1.0) + exp(2.0);
    CHECK_NEAR(p[0], 1 / e, 1e-7);
    CHECK_NEAR(p[1], exp(1.0) / e, 1e-7);
    CHECK_NEAR(p[2], exp(2.0) / e, 1e-7);
    CHECK(p[3] == 1.0f && p[4] == 0.0f); /* saturated, still finite */
    mx_softmax_temperature(z, 2, 3, 2.0, p);
    e = 1 + exp(0.5) + exp(1.0);
    CHECK_NEAR(p[0], 1 / e, 1e-7);
    CHECK_NEAR(p[2], exp(1.0) / e, 1e-7);
    CHECK_NEAR(p[3] + p[4] + p[5], 1.0, 1e-6);
    /* In place gives the same. */
    memcpy(q, z, sizeof q);
    mx_softmax_temperature(q, 2, 3, 2.0, q);
    CHECK(memcmp(p, q, sizeof p) == 0);
    memcpy(q, z, sizeof q);
    mx_logits_scale(q, 6, 4.0);
    CHECK(q[1] == 0.25f && q[3] == 25.0f && q[4] == -25.0f);
}

int main(void)
{
    test_recovers_known_temperature();
    test_two_class_closed_form();
    test_range_ends();
    test_errors();
    test_softmax_helpers();
    CHECK_DONE();
}
