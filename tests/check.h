/* Minimal test harness: each CHECK counts, failures print file:line and the
 * program exits non-zero from CHECK_DONE(). Header-only, one per test program. */
#ifndef MIXREG_TEST_CHECK_H
#define MIXREG_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures_ = 0;
static int check_count_ = 0;

#define CHECK(cond) do { check_count_++; if (!(cond)) { check_failures_++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_NEAR(a, b, tol) do { double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol); \
    check_count_++; if (!(fabs(a_ - b_) <= t_)) { check_failures_++; \
    fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.10g, %s = %.10g, tol %.3g\n", \
            __FILE__, __LINE__, #a, a_, #b, b_, t_); } } while (0)

#define CHECK_OK(expr) do { mx_status s_ = (expr); check_count_++; if (s_ != MX_OK) { check_failures_++; \
    fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, mx_error_message()); } } while (0)

/* Largest |a - b| over count entries relative to the largest |b|; NaN in a
 * (an entry left unwritten) wins. */
static inline double check_relative(const float *a, const float *b, size_t count)
{
    double worst = 0, peak = 0;
    for (size_t i = 0; i < count; i++) {
        const double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) worst = e;
        if (fabs(b[i]) > peak) peak = fabs(b[i]);
    }
    return worst / (peak > 0 ? peak : 1);
}

/* Worst |got - want| / (|want| + floor * max|want|) over the entries: relative,
 * with a floor for entries that cancel to nearly nothing; a non-finite entry
 * in got is infinitely wrong. */
static inline double check_rel_floor(const float *got, const float *want, size_t count, double floor)
{
    double scale = 0, worst = 0;
    for (size_t i = 0; i < count; i++)
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!isfinite(got[i])) return INFINITY;
        double r = d / (fabs(want[i]) + floor * scale + 1e-30);
        if (r > worst) worst = r;
    }
    return worst;
}

/* Keeps the worse of *slot and e (NaN counts as worse). */
static inline void check_note_worst(double *slot, double e) { if (!(e <= *slot)) *slot = e; }

/* Ends main(): a program that checked nothing is itself a failure. */
#define CHECK_DONE() do { if (check_count_ == 0) { fprintf(stderr, "no checks ran\n"); return 1; } \
    printf("%d checks, %d failed\n", check_count_, check_failures_); \
    return check_failures_ ? 1 : 0; } while (0)

#endif
