/* Accuracy, NLL, ECE, MCE and Brier against hand-worked cases; the ECE bin
 * edges; logits against probabilities; streaming; arg-max ties; top-5
 * accuracy, the adaptive (equal-mass) ECE and the reliability data. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/eval_shard.h"
#include "mixreg/evaluate.h"
#include "mixreg/metrics.h"

static mx_metrics metrics_of_probs(const float *probs, const int32_t *labels, size_t n, size_t classes, size_t bins)
{
    mx_metrics_acc acc;
    mx_metrics m = {0};
    CHECK_OK(mx_metrics_init(&acc, bins, classes));
    mx_metrics_add_probs(&acc, probs, labels, n);
    mx_metrics_finish(&acc, &m);
    mx_metrics_free(&acc);
    return m;
}

static mx_metrics metrics_of_logits(const float *logits, const int32_t *labels, size_t n, size_t classes,
                                    size_t bins)
{
    mx_metrics_acc acc;
    mx_metrics m = {0};
    CHECK_OK(mx_metrics_init(&acc, bins, classes));
    mx_metrics_add_logits(&acc, logits, labels, n);
    mx_metrics_finish(&acc, &m);
    mx_metrics_free(&acc);
    return m;
}

/* Three classes, two bins (0, 0.5] and (0.5, 1]:
 *   p                 label  pred (conf)  correct  -log p(label)  Brier term
 *   {0.7, 0.2, 0.1}   0      0 (0.7)      yes      -ln 0.7        .09+.04+.01 = 0.14
 *   {0.1, 0.6, 0.3}   2      1 (0.6)      no       -ln 0.3        .01+.36+.49 = 0.86
 *   {0.4, 0.4, 0.2}   1      0 (0.4) tie  no       -ln 0.4        .16+.36+.04 = 0.56
 *   {0.2, 0.3, 0.5}   2      2 (0.5)      yes      -ln 0.5        .04+.09+.25 = 0.38
 * accuracy 2/4 = 0.5; NLL = -ln(0.7*0.3*0.4*0.5)/4 = -ln(0.042)/4;
 * Brier = 1.94/4 = 0.485.
 * bin 0 holds 0.4 (wrong) and 0.5 (right, on the edge): acc 0.5, conf 0.45, gap 0.05
 * bin 1 holds 0.7 (right) and 0.6 (wrong):               acc 0.5, conf 0.65, gap 0.15
 * ECE = 2/4 * 0.05 + 2/4 * 0.15 = 0.1; MCE = 0.15. */
static void test_hand_worked_three_classes(void)
{
    const float probs[] = {0.7f, 0.2f, 0.1f, 0.1f, 0.6f, 0.3f, 0.4f, 0.4f, 0.2f, 0.2f, 0.3f, 0.5f};
    const int32_t labels[] = {0, 2, 1, 2};
    mx_metrics m = metrics_of_probs(probs, labels, 4, 3, 2);
    CHECK(m.n == 4);
    CHECK_NEAR(m.accuracy, 0.5, 1e-12);
    CHECK_NEAR(m.nll, -log(0.042) / 4, 1e-6);
    CHECK_NEAR(m.brier, 0.485, 1e-6);
    CHECK_NEAR(m.ece, 0.1, 1e-6);
    CHECK_NEAR(m.mce, 0.15, 1e-6);
}

/* Two classes, five bins, three of them empty:
 *   {0.9, 0.1}    label 0: conf 0.9 -> bin 4, right; -ln 0.9;  Brier .01+.01 = 0.02
 *   {0.375, 0.625} label 0: conf 0.625 -> bin 3, wrong; -ln 0.375; Brier 2*0.625^2 = 0.78125
 * ECE = 1/2 * |1 - 0.9| + 1/2 * |0 - 0.625| = 0.05 + 0.3125 = 0.3625
 * MCE = 0.625 (empty bins do not count); Brier = 0.80125/2 = 0.400625;
 * NLL = (-ln 0.9 - ln 0.375)/2; accuracy 0.5. */
static void test_hand_worked_two_classes(void)
{
    const float probs[] = {0.9f, 0.1f, 0.375f, 0.625f};
    const int32_t labels[] = {0, 0};
    mx_metrics m = metrics_of_probs(probs, labels, 2, 2, 5);
    CHECK_NEAR(m.accuracy, 0.5, 1e-12);
    CHECK_NEAR(m.nll, (-log(0.9) - log(0.375)) / 2, 1e-6);
    CHECK_NEAR(m.ece, 0.3625, 1e-6);
    CHECK_NEAR(m.mce, 0.625, 1e-6);
    CHECK_NEAR(m.brier, 0.400625, 1e-6);
}

/* A probability of 0 for the true label costs -ln(1e-12), not infinity. */
static void test_prob_floor(void)
{
    const float probs[] = {1.0f, 0.0f};
    const int32_t labels[] = {1};
    mx_metrics m = metrics_of_probs(probs, labels, 1, 2, 10);
    CHECK(isfinite(m.nll));
    CHECK_NEAR(m.nll, -log(1e-12), 1e-9);
    CHECK_NEAR(m.brier, 2.0, 1e-12);
    CHECK_NEAR(m.ece, 1.0, 1e-12);
}

static void test_bin_edges(void)
{
    CHECK(mx_ece_bin(0.0, 5) == 0);
    CHECK(mx_ece_bin(-0.25, 5) == 0);
    CHECK(mx_ece_bin(1.0, 5) == 4);
    CHECK(mx_ece_bin(1.5, 5) == 4);
    CHECK(mx_ece_bin(0.2, 5) == 0);
    CHECK(mx_ece_bin(nextafter(0.2, 1.0), 5) == 1);
    CHECK(mx_ece_bin(0.4, 5) == 1);
    CHECK(mx_ece_bin(0.6, 5) == 2);
    CHECK(mx_ece_bin(0.8, 5) == 3);
    CHECK(mx_ece_bin(0.81, 5) == 4);
    CHECK(mx_ece_bin(0.7, 10) == 6);
    CHECK(mx_ece_bin(0.3, 10) == 2);
    CHECK(mx_ece_bin(1e-300, 15) == 0);
    CHECK(mx_ece_bin(0.5, 1) == 0 && mx_ece_bin(1.0, 1) == 0 && mx_ece_bin(0.0, 1) == 0);
    CHECK(mx_ece_bin(NAN, 5) < 5);
    /* Every edge k/B, as the double nearest it, closes bin k-1; the next
     * double up opens bin k. */
    static const size_t bin_counts[] = {2, 3, 5, 7, 10, 15, 20, 30, 100, 1000};
    int edges_wrong = 0;
    for (size_t t = 0; t < sizeof bin_counts / sizeof bin_counts[0]; t++) {
        size_t bins = bin_counts[t];
        for (size_t k = 1; k < bins; k++) {
            double edge = (double)k / (double)bins;
            if (mx_ece_bin(edge, bins) != k - 1) edges_wrong++;
            if (mx_ece_bin(nextafter(edge, 1.0), bins) != k) edges_wrong++;
            if (mx_ece_bin(nextafter(edge, 0.0), bins) != k - 1) edges_wrong++;
        }
    }
    CHECK(edges_wrong == 0);
}

/* Deterministic pseudo-random logits in [-4, 4). */
static void fill_logits(float *z, int32_t *labels, size_t n, size_t classes)
{
    uint32_t s = 2024;
    for (size_t i = 0; i < n * classes; i++) {
        s = s * 1664525u + 1013904223u;
        z[i] = (float)((s >> 8) / 16777216.0 * 8.0 - 4.0);
    }
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        labels[i] = (int32_t)((s >> 16) % classes);
    }
}

#define RANDOM_N 50
#define RANDOM_C 4

static void test_logits_match_probs(void)
{
    float z[RANDOM_N * RANDOM_C], p[RANDOM_N * RANDOM_C];
    int32_t labels[RANDOM_N];
    fill_logits(z, labels, RANDOM_N, RANDOM_C);
    for (size_t i = 0; i < RANDOM_N; i++) {
        double top = z[i * RANDOM_C], sum = 0;
        for (size_t c = 1; c < RANDOM_C; c++) top = fmax(top, z[i * RANDOM_C + c]);
        for (size_t c = 0; c < RANDOM_C; c++) sum += exp(z[i * RANDOM_C + c] - top);
        for (size_t c = 0; c < RANDOM_C; c++) p[i * RANDOM_C + c] = (float)(exp(z[i * RANDOM_C + c] - top) / sum);
    }
    mx_metrics a = metrics_of_logits(z, labels, RANDOM_N, RANDOM_C, 15);
    mx_metrics b = metrics_of_probs(p, labels, RANDOM_N, RANDOM_C, 15);
    CHECK(a.n == RANDOM_N && b.n == RANDOM_N);
    CHECK(a.accuracy == b.accuracy);
    CHECK(a.accuracy > 0.1 && a.accuracy < 0.9); /* a mix of right and wrong */
    CHECK_NEAR(a.nll, b.nll, 1e-6);
    CHECK_NEAR(a.ece, b.ece, 1e-6);
    CHECK_NEAR(a.mce, b.mce, 1e-6);
    CHECK_NEAR(a.brier, b.brier, 1e-6);
}

/* The whole-array calls (the Python package's way in) give exactly what an
 * accumulator fed the same arrays gives, reliability data included; bad
 * sizes are errors with a message, not crashes. */
static void test_from_arrays(void)
{
    float z[RANDOM_N * RANDOM_C], p[RANDOM_N * RANDOM_C];
    int32_t labels[RANDOM_N];
    fill_logits(z, labels, RANDOM_N, RANDOM_C);
    for (size_t i = 0; i < RANDOM_N * RANDOM_C; i += RANDOM_C) {
        double sum = 0;
        for (size_t c = 0; c < RANDOM_C; c++) sum += exp(z[i + c]);
        for (size_t c = 0; c < RANDOM_C; c++) p[i + c] = (float)(exp(z[i + c]) / sum);
    }
    for (int is_probs = 0; is_probs < 2; is_probs++) {
        const float *scores = is_probs ? p : z;
        mx_metrics_acc acc;
        mx_metrics want, got;
        double want_conf[6], want_acc[6], got_conf[6], got_acc[6];
        size_t want_count[6], got_count[6];
        CHECK_OK(mx_metrics_init(&acc, 6, RANDOM_C));
        if (is_probs) mx_metrics_add_probs(&acc, scores, labels, RANDOM_N);
        else mx_metrics_add_logits(&acc, scores, labels, RANDOM_N);
        mx_metrics_finish(&acc, &want);
        mx_metrics_reliability(&acc, want_conf, want_acc, want_count);
        mx_metrics_free(&acc);
        if (is_probs)
            CHECK_OK(mx_metrics_from_probs(scores, labels, RANDOM_N, RANDOM_C, 6, &got, got_conf, got_acc, got_count));
        else
            CHECK_OK(mx_metrics_from_logits(scores, labels, RANDOM_N, RANDOM_C, 6, &got, got_conf, got_acc, got_count));
        CHECK(got.n == RANDOM_N && got.accuracy == want.accuracy && got.nll == want.nll && got.ece == want.ece);
        CHECK(got.mce == want.mce && got.brier == want.brier && got.ece_adaptive == want.ece_adaptive);
        CHECK(got.ece > 0 && got.ece_adaptive > 0 && got.nll > 0);
        CHECK(!memcmp(got_conf, want_conf, sizeof got_conf) && !memcmp(got_acc, want_acc, sizeof got_acc));
        CHECK(!memcmp(got_count, want_count, sizeof got_count));
        /* The reliability arrays are optional. */
        mx_metrics bare;
        CHECK_OK(is_probs ? mx_metrics_from_probs(scores, labels, RANDOM_N, RANDOM_C, 6, &bare, NULL, NULL, NULL)
                          : mx_metrics_from_logits(scores, labels, RANDOM_N, RANDOM_C, 6, &bare, NULL, NULL, NULL));
        CHECK(bare.ece == want.ece);
    }
    mx_metrics m;
    CHECK(mx_metrics_from_probs(p, labels, RANDOM_N, RANDOM_C, 0, &m, NULL, NULL, NULL) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "bins") != NULL);
    CHECK(mx_metrics_from_probs(p, labels, RANDOM_N, 0, 15, &m, NULL, NULL, NULL) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "classes") != NULL);
}

/* exp(-1000) underflows to 0 in double: the confidence is exactly 1, and the
 * NLL of the unlikely label is the logit gap, 1000, not infinity.
 *   sample 0 label 0: right, NLL 0,    Brier 0
 *   sample 1 label 1: wrong, NLL 1000, Brier 1 + 1 = 2
 * Both sit in the last bin with confidence 1 and accuracy 1/2: ECE = MCE = 0.5. */
static void test_extreme_logits(void)
{
    const float z[] = {0.0f, -1000.0f, 0.0f, -1000.0f};
    const int32_t labels[] = {0, 1};
    mx_metrics_acc acc;
    CHECK_OK(mx_metrics_init(&acc, 10, 2));
    mx_metrics_add_logits(&acc, z, labels, 2);
    CHECK(acc.bin_count[9] == 2);
    CHECK(acc.bin_conf[9] == 2.0);
    mx_metrics m;
    mx_metrics_finish(&acc, &m);
    mx_metrics_free(&acc);
    CHECK(isfinite(m.nll));
    CHECK_NEAR(m.nll, 500.0, 1e-9);
    CHECK_NEAR(m.accuracy, 0.5, 1e-12);
    CHECK_NEAR(m.brier, 1.0, 1e-12);
    CHECK_NEAR(m.ece, 0.5, 1e-12);
    CHECK_NEAR(m.mce, 0.5, 1e-12);
}

static void test_streaming(void)
{
    float z[RANDOM_N * RANDOM_C];
    int32_t labels[RANDOM_N];
    fill_logits(z, labels, RANDOM_N, RANDOM_C);
    mx_metrics whole = metrics_of_logits(z, labels, RANDOM_N, RANDOM_C, 15);
    mx_metrics_acc acc;
    CHECK_OK(mx_metrics_init(&acc, 15, RANDOM_C));
    mx_metrics_add_logits(&acc, z, labels, 20);
    mx_metrics_add_logits(&acc, z + 20 * RANDOM_C, labels + 20, RANDOM_N - 20);
    mx_metrics parts;
    mx_metrics_finish(&acc, &parts);
    mx_metrics_free(&acc);
    CHECK(parts.n == whole.n);
    CHECK(parts.accuracy == whole.accuracy && parts.nll == whole.nll && parts.ece == whole.ece);
    CHECK(parts.mce == whole.mce && parts.brier == whole.brier);
    CHECK(parts.ece_adaptive == whole.ece_adaptive);
}

static void test_argmax_ties(void)
{
    /* Logits {1, 1, 0} predict class 0, so label 1 is a mistake and label 0 is not;
     * {2, 5, 5} predicts class 1. */
    const float z[] = {1.0f, 1.0f, 0.0f, 1.0f, 1.0f, 0.0f, 2.0f, 5.0f, 5.0f};
    const int32_t labels[] = {1, 0, 1};
    mx_metrics m = metrics_of_logits(z, labels, 3, 3, 10);
    CHECK_NEAR(m.accuracy, 2.0 / 3.0, 1e-12);
    const int32_t wrong[] = {1, 2, 2};
    m = metrics_of_logits(z, wrong, 3, 3, 10);
    CHECK(m.accuracy == 0.0);
    /* The same through probabilities: {0.5, 0.5} predicts class 0. */
    const float p[] = {0.5f, 0.5f};
    const int32_t label0[] = {0}, label1[] = {1};
    CHECK(metrics_of_probs(p, label0, 1, 2, 10).accuracy == 1.0);
    CHECK(metrics_of_probs(p, label1, 1, 2, 10).accuracy == 0.0);
}

static void test_init_and_empty(void)
{
    mx_metrics_acc acc;
    CHECK(mx_metrics_init(&acc, 0, 10) == MX_ERR_ARG);
    CHECK(mx_metrics_init(&acc, 15, 0) == MX_ERR_ARG);
    CHECK_OK(mx_metrics_init(&acc, 15, 10));
    mx_metrics m;
    memset(&m, 0xff, sizeof m);
    mx_metrics_finish(&acc, &m);
    CHECK(m.n == 0 && m.accuracy == 0 && m.nll == 0 && m.ece == 0 && m.mce == 0 && m.brier == 0);
    CHECK(m.top5 == 0 && m.ece_adaptive == 0);
    mx_metrics_free(&acc);
    CHECK(acc.bin_conf == NULL && acc.bins == 0 && acc.sample_conf == NULL && acc.sample_cap == 0);
    mx_metrics_free(&acc); /* twice is harmless */
    /* Five classes or fewer: top-5 is not meaningful and reported as -1, empty or not. */
    CHECK_OK(mx_metrics_init(&acc, 15, 5));
    mx_metrics_finish(&acc, &m);
    CHECK(m.top5 == -1.0);
    mx_metrics_free(&acc);
}

/* Seven classes, logits 7..1 (class 0 highest): label 4 has rank 4 (in the top
 * 5), label 5 rank 5 (out). All-equal logits rank ties by index, as the
 * arg-max does: label 4 is in, label 5 out. A label out of range is never in. */
static void test_top5(void)
{
    const float z[] = {7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                       7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7};
    const int32_t labels[] = {4, 5, 4, 5, 9, 2};
    mx_metrics m = metrics_of_logits(z, labels, 6, 7, 10);
    /* in: rows 0, 2, 5 (label 2 has rank 4 in 1..7); out: rows 1, 3, 4 */
    CHECK_NEAR(m.top5, 3.0 / 6.0, 1e-12);
    CHECK(m.accuracy == 0.0);
    /* The same through probabilities (a monotone map keeps the ranks). */
    float p[42];
    for (size_t i = 0; i < 42; i++) p[i] = z[i] / 28.0f;
    m = metrics_of_probs(p, labels, 6, 7, 10);
    CHECK_NEAR(m.top5, 0.5, 1e-12);
    /* Top-5 is at least top-1 on random logits with 10 classes. */
    float r[RANDOM_N * 10];
    int32_t rl[RANDOM_N];
    fill_logits(r, rl, RANDOM_N, 10);
    m = metrics_of_logits(r, rl, RANDOM_N, 10, 15);
    CHECK(m.top5 >= m.accuracy && m.top5 > 0.3 && m.top5 < 1.0);
    /* Five classes: -1 whatever the data. */
    m = metrics_of_logits(z, labels, 6, 5, 10);
    CHECK(m.top5 == -1.0);
}

/* Two classes, two equal-mass groups of three:
 *   confidences 0.6 R, 0.9 W, 0.7 R, 0.55 W, 0.95 R, 0.8 R
 *   sorted: 0.55 W, 0.6 R, 0.7 R | 0.8 R, 0.9 W, 0.95 R
 *   group 1: |2 - 1.85| = 0.15; group 2: |2 - 2.65| = 0.65
 *   adaptive ECE = (0.15 + 0.65) / 6 = 0.8 / 6. */
static void test_adaptive_ece(void)
{
    const float probs[] = {0.6f, 0.4f, 0.9f, 0.1f, 0.3f, 0.7f, 0.55f, 0.45f, 0.05f, 0.95f, 0.8f, 0.2f};
    const int32_t labels[] = {0, 1, 1, 1, 1, 0};
    mx_metrics m = metrics_of_probs(probs, labels, 6, 2, 2);
    CHECK_NEAR(m.ece_adaptive, 0.8 / 6.0, 1e-6);
    /* One group: |accuracy - mean confidence| = |4 - 4.5| / 6, as the one-bin ECE. */
    m = metrics_of_probs(probs, labels, 6, 2, 1);
    CHECK_NEAR(m.ece_adaptive, 0.5 / 6.0, 1e-6);
    CHECK_NEAR(m.ece_adaptive, m.ece, 1e-12);
    /* Uneven groups, 6 samples in 4: sizes 1, 2, 1, 2 (cuts at floor(6b/4) = 1, 3, 4):
     *   {0.55 W} {0.6 R, 0.7 R} {0.8 R} {0.9 W, 0.95 R}
     *   0.55 + 0.7 + 0.2 + 0.85 = 2.3 */
    m = metrics_of_probs(probs, labels, 6, 2, 4);
    CHECK_NEAR(m.ece_adaptive, 2.3 / 6.0, 1e-6);
    /* More groups than samples: one sample per non-empty group, the mean of
     * |correct - confidence| = (0.4 + 0.9 + 0.3 + 0.55 + 0.05 + 0.2) / 6. */
    m = metrics_of_probs(probs, labels, 6, 2, 15);
    CHECK_NEAR(m.ece_adaptive, 2.4 / 6.0, 1e-6);
    /* Equal confidences are taken in sample order: right, right | wrong, wrong. */
    const float tied[] = {0.75f, 0.25f, 0.75f, 0.25f, 0.75f, 0.25f, 0.75f, 0.25f};
    const int32_t tied_labels[] = {0, 0, 1, 1};
    m = metrics_of_probs(tied, tied_labels, 4, 2, 2);
    CHECK_NEAR(m.ece_adaptive, (0.5 + 1.5) / 4.0, 1e-12);
    const int32_t tied_other[] = {1, 1, 0, 0};
    m = metrics_of_probs(tied, tied_other, 4, 2, 2);
    CHECK_NEAR(m.ece_adaptive, (1.5 + 0.5) / 4.0, 1e-12);
}

/* Reserving room first, or growing past many reallocations, changes nothing. */
static void test_reserve_and_growth(void)
{
    enum { N = 5000, C = 4 };
    float *z = malloc(N * C * sizeof *z);
    int32_t *labels = malloc(N * sizeof *labels);
    fill_logits(z, labels, N, C);
    mx_metrics_acc a, b;
    mx_metrics ma, mb;
    CHECK_OK(mx_metrics_init(&a, 15, C));
    CHECK_OK(mx_metrics_init(&b, 15, C));
    CHECK_OK(mx_metrics_reserve(&b, N));
    CHECK(b.sample_cap >= N);
    for (size_t i = 0; i < N; i += 7) {
        size_t k = N - i < 7 ? N - i : 7;
        mx_metrics_add_logits(&a, z + i * C, labels + i, k);
    }
    mx_metrics_add_logits(&b, z, labels, N);
    CHECK(b.sample_cap == N); /* no growth after reserving */
    mx_metrics_finish(&a, &ma);
    mx_metrics_finish(&b, &mb);
    CHECK(ma.ece_adaptive == mb.ece_adaptive && ma.ece == mb.ece && ma.nll == mb.nll);
    CHECK(ma.ece_adaptive > 0 && ma.ece_adaptive < 1);
    CHECK(mx_metrics_reserve(&a, SIZE_MAX / 4) == MX_ERR_NOMEM);
    mx_metrics_free(&a);
    mx_metrics_free(&b);
    free(z);
    free(labels);
}

/* The hand-worked cases above, bin by bin. */
static void test_reliability(void)
{
    const float probs[] = {0.7f, 0.2f, 0.1f, 0.1f, 0.6f, 0.3f, 0.4f, 0.4f, 0.2f, 0.2f, 0.3f, 0.5f};
    const int32_t labels[] = {0, 2, 1, 2};
    mx_metrics_acc acc;
    double conf[5], accuracy[5];
    size_t count[5];
    CHECK_OK(mx_metrics_init(&acc, 2, 3));
    mx_metrics_add_probs(&acc, probs, labels, 4);
    mx_metrics_reliability(&acc, conf, accuracy, count);
    CHECK(count[0] == 2 && count[1] == 2);
    CHECK_NEAR(conf[0], 0.45, 1e-7);
    CHECK_NEAR(conf[1], 0.65, 1e-7);
    CHECK_NEAR(accuracy[0], 0.5, 1e-12);
    CHECK_NEAR(accuracy[1], 0.5, 1e-12);
    mx_metrics_free(&acc);

    const float two[] = {0.9f, 0.1f, 0.375f, 0.625f};
    const int32_t two_labels[] = {0, 0};
    CHECK_OK(mx_metrics_init(&acc, 5, 2));
    mx_metrics_add_probs(&acc, two, two_labels, 2);
    mx_metrics_reliability(&acc, conf, accuracy, count);
    /* bins 0-2 empty: their centres, accuracy 0 */
    CHECK(count[0] == 0 && count[1] == 0 && count[2] == 0 && count[3] == 1 && count[4] == 1);
    CHECK_NEAR(conf[0], 0.1, 1e-12);
    CHECK_NEAR(conf[1], 0.3, 1e-12);
    CHECK_NEAR(conf[2], 0.5, 1e-12);
    CHECK(accuracy[0] == 0 && accuracy[1] == 0 && accuracy[2] == 0);
    CHECK_NEAR(conf[3], 0.625, 1e-12);
    CHECK(accuracy[3] == 0.0);
    CHECK_NEAR(conf[4], 0.9, 1e-7);
    CHECK(accuracy[4] == 1.0);
    /* Any output may be left out. */
    size_t only_count[5] = {9, 9, 9, 9, 9};
    mx_metrics_reliability(&acc, NULL, NULL, only_count);
    CHECK(only_count[0] == 0 && only_count[4] == 1);
    /* The ECE is the count-weighted gap of this data. */
    mx_metrics m;
    mx_metrics_finish(&acc, &m);
    double ece = 0;
    for (size_t b = 0; b < 5; b++) ece += (double)count[b] / 2.0 * fabs(accuracy[b] - conf[b]);
    CHECK_NEAR(ece, m.ece, 1e-12);
    mx_metrics_free(&acc);
}

/* The evaluation shards of a job: whole batches, contiguous, covering every
 * sample once in rank order, as even as batches allow. */
static void test_eval_shards(void)
{
    static const size_t cases[][3] = {{203, 32, 2}, {203, 32, 3}, {10000, 500, 4}, {5, 100, 3}, {0, 16, 2},
                                      {64, 32, 2}, {65, 32, 2}, {7, 1, 8}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = cases[c][0], batch = cases[c][1], next = 0, most = 0, least = (size_t)-1;
        int size = (int)cases[c][2];
        for (int r = 0; r < size; r++) {
            size_t start, count;
            mx_eval_shard(n, batch, r, size, &start, &count);
            CHECK(start == next);                                 /* contiguous, in rank order */
            CHECK(start % batch == 0 || count == 0);              /* starts where one process starts a batch */
            CHECK(count % batch == 0 || start + count == n);      /* whole batches but the last */
            size_t batches = (count + batch - 1) / batch;
            if (batches > most) most = batches;
            if (batches < least) least = batches;
            next = start + count;
        }
        CHECK(next == n);
        CHECK(most - least <= 1);
    }
    size_t start, count;
    mx_eval_shard(203, 32, 0, 1, &start, &count);  /* one process: everything */
    CHECK(start == 0 && count == 203);
    mx_eval_shard(203, 32, 1, 2, &start, &count);  /* 7 batches: 4 + 3, the short one last */
    CHECK(start == 128 && count == 75);
}

int main(void)
{
    test_hand_worked_three_classes();
    test_hand_worked_two_classes();
    test_prob_floor();
    test_bin_edges();
    test_logits_match_probs();
    test_from_arrays();
    test_extreme_logits();
    test_streaming();
    test_argmax_ties();
    test_init_and_empty();
    test_top5();
    test_adaptive_ece();
    test_reserve_and_growth();
    test_reliability();
    test_eval_shards();
    CHECK_DONE();
}
