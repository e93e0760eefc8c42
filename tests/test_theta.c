/* theta statistics (method.md section 2) against the published table, the
 * paper's incomplete-beta forms, an independent quadrature and Monte Carlo;
 * and mx_betainc against closed forms. */
#include "check.h"
#include "mixreg/rng.h"
#include "mixreg/theta.h"

#define PI 3.14159265358979323846

/* ---- Gauss-Legendre quadrature (nodes by Newton on P_n), composite over panels. */

#define GL_POINTS 20
static double gl_node[GL_POINTS], gl_weight[GL_POINTS];

static void gauss_legendre_setup(void)
{
    for (int i = 0; i < GL_POINTS; i++) {
        double z = cos(PI * (i + 0.75) / (GL_POINTS + 0.5)), dp = 0;
        for (int it = 0; it < 100; it++) {
            double p0 = 1, p1 = 0;
            for (int k = 1; k <= GL_POINTS; k++) {
                double p2 = p1;
                p1 = p0;
                p0 = ((2.0 * k - 1) * z * p1 - (k - 1.0) * p2) / k;
            }
            dp = GL_POINTS * (z * p0 - p1) / (z * z - 1);
            double step = p0 / dp;
            z -= step;
            if (fabs(step) < 1e-16) break;
        }
        gl_node[i] = z;
        gl_weight[i] = 2.0 / ((1 - z * z) * dp * dp);
    }
}

/* The integrand: moments 0, 1, 2 of theta, and of (theta - centre)^2, under
 * the unnormalised Beta(alpha, alpha) density restricted to [1/2, 1]. */
typedef struct {
    double alpha;
    double centre;
    double sum[4];
} moment_acc;

static void add_point(moment_acc *acc, double x, double weight)
{
    acc->sum[0] += weight;
    acc->sum[1] += weight * x;
    acc->sum[2] += weight * x * x;
    acc->sum[3] += weight * (x - acc->centre) * (x - acc->centre);
}

/* For alpha >= 1 the density is smooth on [1/2, 1]: integrate (4x(1-x))^(alpha-1)
 * directly (the factor 4^(alpha-1) keeps alpha = 100 away from underflow and
 * cancels in every ratio). For alpha < 1 it is singular at x = 1; the
 * substitution t = (1-x)^alpha turns (1-x)^(alpha-1) dx into -dt/alpha, leaving
 * the smooth integrand x^(alpha-1), x = 1 - t^(1/alpha), on t in [0, 2^-alpha]. */
static void integrate_moments(moment_acc *acc, int panels)
{
    double a = acc->alpha;
    for (int k = 0; k < 4; k++) acc->sum[k] = 0;
    int substitute = a < 1.0;
    double lo = substitute ? 0.0 : 0.5, hi = substitute ? pow(2.0, -a) : 1.0;
    double width = (hi - lo) / panels;
    for (int p = 0; p < panels; p++) {
        double mid = lo + (p + 0.5) * width;
        for (int i = 0; i < GL_POINTS; i++) {
            double u = mid + 0.5 * width * gl_node[i], w = 0.5 * width * gl_weight[i];
            if (substitute) {
                double x = 1.0 - pow(u, 1.0 / a);
                add_point(acc, x, w * pow(x, a - 1.0));
            } else {
                add_point(acc, u, w * pow(4.0 * u * (1.0 - u), a - 1.0));
            }
        }
    }
}

typedef struct {
    double mean, var, gamma2;
} quad_stats;

static quad_stats theta_by_quadrature(double alpha, int panels)
{
    moment_acc acc = {.alpha = alpha};
    integrate_moments(&acc, panels);
    quad_stats q;
    q.mean = acc.sum[1] / acc.sum[0];
    /* Second pass about the mean: no cancellation in the variance. */
    acc.centre = q.mean;
    integrate_moments(&acc, panels);
    q.var = acc.sum[3] / acc.sum[0];
    q.gamma2 = q.var + (1 - q.mean) * (1 - q.mean);
    return q;
}

/* ---- tests */

static void test_table(void)
{
    /* method.md section 2, to the printed precision (half a unit of the last
     * digit). alpha = 8's sigma^2 prints 0.00507 but the exact value is
     * 1/68 - 0.0981903...^2 = 0.0050645 (0.00506 to three figures), a double rounding in the
     * table, so that column is checked to one unit instead. */
    static const struct {
        double alpha, theta_bar, var, gamma2, tol_bar, tol_var, tol_gamma2;
    } table[] = {
        {0.1, 0.9416, 0.01334, 0.01676, 5e-5, 1e-5, 5e-6},
        {0.2, 0.8988, 0.01952, 0.02976, 5e-5, 1e-5, 5e-6},
        {0.5, 0.8183, 0.02368, 0.05669, 5e-5, 1e-5, 5e-6},
        {2, 0.6875, 0.01484, 0.1125, 5e-5, 1e-5, 5e-5},
        {4, 0.6367, 0.00909, 0.1411, 5e-5, 1e-5, 5e-5},
        {8, 0.5982, 0.00507, 0.1665, 5e-5, 1e-5, 5e-5},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        mx_theta_stats s;
        CHECK_OK(mx_theta_stats_compute(table[k].alpha, &s));
        CHECK(s.alpha == table[k].alpha);
        CHECK_NEAR(s.theta_bar, table[k].theta_bar, table[k].tol_bar);
        CHECK_NEAR(s.theta_var, table[k].var, table[k].tol_var);
        CHECK_NEAR(s.gamma2, table[k].gamma2, table[k].tol_gamma2);
        CHECK_NEAR(s.label_smoothing, 1 - s.theta_bar, 1e-15);
        CHECK_NEAR(s.gamma2, s.theta_var + (1 - s.theta_bar) * (1 - s.theta_bar), 1e-15);
    }
    /* Exact rationals: alpha = 1 (theta uniform on [1/2, 1]) and alpha = 2. */
    mx_theta_stats s;
    CHECK_OK(mx_theta_stats_compute(1.0, &s));
    CHECK_NEAR(s.theta_bar, 0.75, 1e-12);
    CHECK_NEAR(s.theta_var, 1.0 / 48.0, 1e-12);
    CHECK_NEAR(s.gamma2, 1.0 / 12.0, 1e-12);
    CHECK_NEAR(s.label_smoothing, 0.25, 1e-12);
    CHECK_OK(mx_theta_stats_compute(2.0, &s));
    CHECK_NEAR(s.theta_bar, 11.0 / 16.0, 1e-12);
    CHECK_NEAR(s.theta_var, 19.0 / 1280.0, 1e-12);
}

static void test_erm_and_errors(void)
{
    mx_theta_stats s;
    CHECK_OK(mx_theta_stats_compute(0.0, &s));
    CHECK(s.theta_bar == 1.0 && s.theta_var == 0.0 && s.gamma2 == 0.0 && s.label_smoothing == 0.0);
    const double bad[] = {-1e-12, -1.0, NAN, INFINITY, -INFINITY, 1.0000001e6};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) CHECK(mx_theta_stats_compute(bad[k], &s) == MX_ERR_ARG);
    CHECK_OK(mx_theta_stats_compute(1e6, &s));
    CHECK(isnan(mx_betainc(0.0, 1.0, 0.5)));
    CHECK(isnan(mx_betainc(1.0, -1.0, 0.5)));
    CHECK(isnan(mx_betainc(1.0, 1.0, 1.5)));
    CHECK(isnan(mx_betainc(1.0, 1.0, NAN)));
}

static void test_betainc(void)
{
    /* Dyadic points, so that 1 - (1 - x) == x and the symmetry check sees no rounding. */
    const double xs[] = {0.0, 0x1p-20, 0.125, 0.3125, 0.5, 0.6875, 0.9375, 1.0};
    const double shapes[] = {0.01, 0.5, 1.0, 2.5, 10.0, 150.0};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        double x = xs[i];
        CHECK_NEAR(mx_betainc(1, 1, x), x, 1e-14);
        /* I_x(1/2, 1/2) = (2/pi) asin(sqrt x): the arcsine distribution. */
        CHECK_NEAR(mx_betainc(0.5, 0.5, x), 2 / PI * asin(sqrt(x)), 1e-13);
        /* I_x(2, 3) = sum_{j=2..4} C(4, j) x^j (1-x)^(4-j). */
        double y = 1 - x;
        CHECK_NEAR(mx_betainc(2, 3, x), 6 * x * x * y * y + 4 * x * x * x * y + x * x * x * x, 1e-14);
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            double a = shapes[k];
            CHECK_NEAR(mx_betainc(a, 1, x), pow(x, a), 1e-13);
            CHECK_NEAR(mx_betainc(1, a, x), 1 - pow(1 - x, a), 1e-13);
            CHECK_NEAR(mx_betainc(a, 2.5, x), 1 - mx_betainc(2.5, a, 1 - x), 1e-13);
            CHECK_NEAR(mx_betainc(a, a, 0.5), 0.5, 1e-13);
        }
    }
    /* Values on both sides of the switch point (a + 1) / (a + b + 2) join up. */
    double a = 3, b = 7, switch_x = (a + 1) / (a + b + 2);
    CHECK_NEAR(mx_betainc(a, b, switch_x - 1e-9), mx_betainc(a, b, switch_x + 1e-9), 1e-8);
    /* Monotone in x. */
    int monotone = 1;
    double prev = 0;
    for (int i = 1; i <= 1000; i++) {
        double v = mx_betainc(0.3, 4.0, i / 1000.0);
        monotone &= v >= prev;
        prev = v;
    }
    CHECK(monotone);
}

/* The header's forms: theta_bar = 1 - I_{1/2}(alpha+1, alpha) and
 * E[theta^2] = (alpha+1)/(2 alpha+1) (1 - I_{1/2}(alpha+2, alpha)). */
static void test_incomplete_beta_forms(void)
{
    const double alphas[] = {0.01, 0.05, 0.1, 0.3, 1, 3, 10, 30, 100};
    for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
        double a = alphas[k];
        mx_theta_stats s;
        CHECK_OK(mx_theta_stats_compute(a, &s));
        CHECK_NEAR(s.theta_bar, 1 - mx_betainc(a + 1, a, 0.5), 1e-12);
        double second = (a + 1) / (2 * a + 1) * (1 - mx_betainc(a + 2, a, 0.5));
        CHECK_NEAR(s.theta_var + s.theta_bar * s.theta_bar, second, 1e-12);
    }
}

/* An independent check of all three statistics where the closed forms are
 * most delicate: tiny alpha (mass piles up at theta = 1) and large alpha
 * (the variance is a small difference). 20-point Gauss-Legendre on 256 panels
 * of a smooth integrand is accurate far below 1e-12 here; the tolerance is the
 * header's promise. */
static void test_quadrature(void)
{
    const double alphas[] = {0.01, 0.05, 0.5, 1, 30, 100};
    for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
        double a = alphas[k];
        quad_stats q = theta_by_quadrature(a, 256), coarse = theta_by_quadrature(a, 128);
        /* The quadrature itself has converged (else the comparison means nothing). */
        CHECK_NEAR(q.mean, coarse.mean, 1e-12);
        CHECK_NEAR(q.var, coarse.var, 1e-12);
        mx_theta_stats s;
        CHECK_OK(mx_theta_stats_compute(a, &s));
        CHECK_NEAR(s.theta_bar, q.mean, 1e-9);
        CHECK_NEAR(s.theta_var, q.var, 1e-9);
        CHECK_NEAR(s.gamma2, q.gamma2, 1e-9);
        /* Relative accuracy of the variance, which the large-alpha form protects. */
        CHECK_NEAR(s.theta_var / q.var, 1.0, 1e-9);
    }
}

/* Large alpha: E|D| = Gamma(alpha + 1/2) / (2 sqrt(pi) Gamma(alpha + 1)) has the
 * asymptotic series alpha^-1/2 (1 - 1/(8a) + 1/(128a^2) + 5/(1024a^3)) / (2 sqrt(pi)),
 * whose next term is below 1e-12 relative for alpha >= 1000. */
static void test_large_alpha(void)
{
    const double alphas[] = {1e3, 1e5, 1e6};
    for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
        double a = alphas[k];
        double series = (1 - 1 / (8 * a) + 1 / (128 * a * a) + 5 / (1024 * a * a * a)) / (2 * sqrt(PI * a));
        mx_theta_stats s;
        CHECK_OK(mx_theta_stats_compute(a, &s));
        CHECK_NEAR((s.theta_bar - 0.5) / series, 1.0, 1e-11);
        double var = 0.25 / (2 * a + 1) - series * series;
        CHECK_NEAR(s.theta_var / var, 1.0, 1e-8);
    }
    /* theta_bar decreases from 1 toward 1/2 as alpha grows. */
    double prev = 1.0;
    int decreasing = 1;
    for (double a = 0.001; a < 1e6; a *= 1.5) {
        mx_theta_stats s;
        mx_theta_stats_compute(a, &s);
        decreasing &= s.theta_bar < prev && s.theta_bar > 0.5;
        prev = s.theta_bar;
    }
    CHECK(decreasing);
}

/* Reference values from mpmath at 40 digits (both the closed form and the
 * paper's 1 - I_{1/2}(alpha + 1, alpha), which agree there to 1e-41), kept to
 * 20: near full double precision on both sides of the switch to Stirling's
 * series at alpha = 20 (the margin over double rounding allows for a libm
 * whose lgamma is a few ulp off). */
static void test_reference_values(void)
{
    static const struct {
        double alpha, theta_bar, var;
    } ref[] = {
        {0.01, 0.99319630598685477181, 0.0018554429766069944774},
        {0.5, 0.81830988618379067154, 0.023678816357662228556},
        {3.0, 0.65625, 0.011300223214285714286},
        {19.5, 0.56347374578291774463, 0.0022210835962855318294},
        {20.0, 0.56268534380978962872, 0.0021681086470582251733},
        {25.0, 0.55613758632960852424, 0.00175053218539947563},
        {100.0, 0.52817423950462821112, 0.00044999332286321027675},
        {10000.0, 0.50282091265611021003, 4.5418268178456775051e-6},
    };
    for (size_t k = 0; k < sizeof ref / sizeof ref[0]; k++) {
        mx_theta_stats s;
        CHECK_OK(mx_theta_stats_compute(ref[k].alpha, &s));
        CHECK_NEAR(s.theta_bar, ref[k].theta_bar, 2e-15);
        CHECK_NEAR(s.theta_var / ref[k].var, 1.0, 1e-12);
    }
}

/* The sampler and the closed form describe the same theta. */
static void test_monte_carlo(void)
{
    const double alphas[] = {0.01, 0.2, 1, 4};
    mx_rng rng;
    mx_rng_init(&rng, 2022, MX_STREAM_MIXUP);
    enum { N = 200000 };
    for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
        double a = alphas[k], sum = 0, sum2 = 0;
        for (int i = 0; i < N; i++) {
            double l = mx_rng_beta(&rng, a, a);
            double theta = l > 0.5 ? l : 1 - l;
            sum += theta;
            sum2 += theta * theta;
        }
        mx_theta_stats s;
        CHECK_OK(mx_theta_stats_compute(a, &s));
        double mean = sum / N, var = sum2 / N - mean * mean;
        CHECK_NEAR(mean, s.theta_bar, 5 * sqrt(s.theta_var / N));
        /* theta lies in [1/2, 1], so its fourth central moment is at most 1/16:
         * a loose but safe bound on the standard error of the sample variance. */
        CHECK_NEAR(var, s.theta_var, 5 * sqrt(s.theta_var * 0.25 / N) + 1e-6);
    }
}

/* --mix-prob p: theta is 1 with probability 1 - p, else folded Beta. Check
 * against the mixture's moments by quadrature (the point mass adds 1 - p to
 * the zeroth and every raw moment) and, for the whole chain, against a
 * Monte Carlo draw of "mix with probability p, then fold". */
static void test_mix_prob(void)
{
    const double alphas[] = {0.05, 0.2, 1, 8}, probs[] = {0, 0.3, 0.5, 0.9, 1};
    for (size_t k = 0; k < sizeof alphas / sizeof alphas[0]; k++) {
        for (size_t j = 0; j < sizeof probs / sizeof probs[0]; j++) {
            double a = alphas[k], p = probs[j];
            moment_acc acc = {.alpha = a};
            integrate_moments(&acc, 256);
            double m1 = acc.sum[1] / acc.sum[0], m2 = acc.sum[2] / acc.sum[0];
            double mean = (1 - p) + p * m1, second = (1 - p) + p * m2;
            double var = second - mean * mean, gamma2 = p * (1 - 2 * m1 + m2); /* the point mass adds 0 */
            mx_theta_stats s;
            CHECK_OK(mx_theta_stats_mixed(a, p, &s));
            CHECK_NEAR(s.theta_bar, mean, 1e-9);
            CHECK_NEAR(s.theta_var, var, 1e-9);
            CHECK_NEAR(s.gamma2, gamma2, 1e-9);
            CHECK_NEAR(s.label_smoothing, 1 - mean, 1e-9);
            CHECK_NEAR(s.gamma2, s.theta_var + (1 - s.theta_bar) * (1 - s.theta_bar), 1e-12);
        }
    }
    /* The figure: alpha = 1, p = 0.5 gives 0.875, not alpha = 1's 0.75. */
    mx_theta_stats s;
    CHECK_OK(mx_theta_stats_mixed(1, 0.5, &s));
    CHECK_NEAR(s.theta_bar, 0.875, 1e-15);
    CHECK(mx_theta_stats_mixed(1, 1.5, &s) == MX_ERR_ARG);
    CHECK(mx_theta_stats_mixed(1, NAN, &s) == MX_ERR_ARG);
    CHECK(mx_theta_stats_mixed(1, -0.1, &s) == MX_ERR_ARG);

    mx_rng rng;
    mx_rng_init(&rng, 7, MX_STREAM_MIXUP);
    enum { N = 200000 };
    double sum = 0, sum2 = 0;
    for (int i = 0; i < N; i++) {
        double theta = 1;
        if (mx_rng_uniform(&rng) < 0.3) {
            double l = mx_rng_beta(&rng, 0.4, 0.4);
            theta = l > 0.5 ? l : 1 - l;
        }
        sum += theta, sum2 += theta * theta;
    }
    CHECK_OK(mx_theta_stats_mixed(0.4, 0.3, &s));
    double mean = sum / N;
    CHECK_NEAR(mean, s.theta_bar, 5 * sqrt(s.theta_var / N));
    CHECK_NEAR(sum2 / N - mean * mean, s.theta_var, 5 * sqrt(s.theta_var * 0.25 / N) + 1e-6);
}

int main(void)
{
    gauss_legendre_setup();
    test_table();
    test_erm_and_errors();
    test_betainc();
    test_incomplete_beta_forms();
    test_quadrature();
    test_large_alpha();
    test_reference_values();
    test_monte_carlo();
    test_mix_prob();
    CHECK_DONE();
}
