/* Statistics of theta = max(lambda, 1 - lambda), lambda ~ Beta(alpha, alpha).
 *
 * Write D = lambda - 1/2 (symmetric about 0), so theta = 1/2 + |D|. Then
 *   E[D^2] = Var(lambda) = 1 / (4 (2 alpha + 1)),
 *   E|D|   = 4^-alpha / (alpha B(alpha, alpha))          (*)
 *          = Gamma(alpha + 1/2) / (2 sqrt(pi) Gamma(alpha + 1)),
 * (*) because d/dx (x (1 - x))^alpha = -2 alpha (x - 1/2) (x (1 - x))^(alpha - 1),
 * the second line by Legendre's duplication formula (it avoids the large,
 * cancelling 4^-alpha and B(alpha, alpha)). This equals 1/2 - I_{1/2}(alpha + 1, alpha),
 * the paper's form, without a continued fraction. And
 *   Var(theta) = E[D^2] - (E|D|)^2
 * subtracts two numbers whose difference stays a fixed fraction (about 1 - 2/pi)
 * of either, where E[theta^2] - theta_bar^2 would subtract two numbers near 1/4
 * whose difference shrinks like 1/alpha. */
#include <math.h>

#include "mixreg/theta.h"

#define BETAINC_MAX_ITER 10000
#define BETAINC_EPS 1e-16
#define LENTZ_TINY 1e-300

static double log_beta(double a, double b) { return lgamma(a) + lgamma(b) - lgamma(a + b); }

/* log Gamma(x + 1/2) - log Gamma(x + 1) for x >= 20 from Stirling's series:
 * taking lgamma of both and subtracting would lose about x log(x) * 1e-16
 * absolute (1e-9 relative at x = 1e6). With z1 = x + 1/2, z2 = x + 1 the
 * leading terms (z - 1/2) log z - z combine into x log1p(-1 / (2x + 2)) - log(x + 1) / 2 + 1/2,
 * and the Bernoulli terms, truncated after z^-7, err by under 1e-15 for z >= 20. */
static double log_gamma_ratio_stirling(double x)
{
    double z1 = x + 0.5, z2 = x + 1.0;
    double lead = x * log1p(-0.5 / z2) - 0.5 * log(z2) + 0.5;
    double tail = 0.0;
    const double z[2] = {z1, z2};
    for (int k = 0; k < 2; k++) {
        double r = 1.0 / z[k], r2 = r * r;
        double series = r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 / 1680)));
        tail += k == 0 ? series : -series;
    }
    return lead + tail;
}

/* E|lambda - 1/2| for lambda ~ Beta(alpha, alpha), alpha > 0. */
static double mean_abs_deviation(double alpha)
{
    const double log_two_sqrt_pi = 1.2655121234846453965; /* log(2 sqrt(pi)) */
    double log_ratio =
        alpha >= 20.0 ? log_gamma_ratio_stirling(alpha) : lgamma(alpha + 0.5) - lgamma(alpha + 1.0);
    return exp(log_ratio - log_two_sqrt_pi);
}

mx_status mx_theta_stats_compute(double alpha, mx_theta_stats *out)
{
    if (!(alpha >= 0.0) || !(alpha <= MX_MAX_ALPHA))
        return mx_error_set(MX_ERR_ARG, "mixup alpha must be a number in [0, 1e6] (got %g)", alpha);
    out->alpha = alpha;
    if (alpha == 0.0) {
        /* lambda is 0 or 1, so theta = 1: plain ERM. */
        out->theta_bar = 1.0;
        out->theta_var = 0.0;
        out->gamma2 = 0.0;
        out->label_smoothing = 0.0;
        return MX_OK;
    }
    double mad = mean_abs_deviation(alpha);
    double second = 0.25 / (2.0 * alpha + 1.0);
    double var = second - mad * mad;
    out->theta_bar = 0.5 + mad;
    out->theta_var = var > 0.0 ? var : 0.0;
    /* E[(1 - theta)^2] = E[(1/2 - |D|)^2] = 1/4 - E|D| + E[D^2]. */
    out->gamma2 = (0.25 - mad) + second;
    out->label_smoothing = 0.5 - mad;
    return MX_OK;
}

mx_status mx_theta_stats_mixed(double alpha, double mix_prob, mx_theta_stats *out)
{
    if (!(mix_prob >= 0.0 && mix_prob <= 1.0))
        return mx_error_set(MX_ERR_ARG, "mix probability must be in [0, 1] (got %g)", mix_prob);
    mx_status st = mx_theta_stats_compute(alpha, out);
    if (st != MX_OK || mix_prob == 1.0) return st;
    /* A mixture of the point mass at 1 (weight 1 - p) and the folded Beta
     * (weight p). Written around 1 - theta_bar(alpha), the shrinkage, so no
     * term is a difference of two numbers near 1: the variance by the law of
     * total variance rather than E[theta^2] - E[theta]^2. */
    const double p = mix_prob, shrink = 1.0 - out->theta_bar;
    out->theta_var = p * out->theta_var + p * (1.0 - p) * shrink * shrink;
    out->gamma2 *= p;
    out->label_smoothing = p * shrink;
    out->theta_bar = 1.0 - p * shrink;
    return MX_OK;
}

/* The continued fraction of I_x(a, b) (without its prefactor), evaluated by the
 * modified Lentz method; converges quickly for x < (a + 1) / (a + b + 2). */
static double betainc_fraction(double a, double b, double x)
{
    double c = 1.0;
    double d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < LENTZ_TINY) d = LENTZ_TINY;
    d = 1.0 / d;
    double f = d;
    for (int m = 1; m <= BETAINC_MAX_ITER; m++) {
        double two_m = 2.0 * m;
        /* Even term d_{2m}, then odd term d_{2m+1}. */
        double coef_even = m * (b - m) * x / ((a + two_m - 1.0) * (a + two_m));
        double coef_odd = -(a + m) * (a + b + m) * x / ((a + two_m) * (a + two_m + 1.0));
        double coefs[2] = {coef_even, coef_odd};
        double delta = 1.0;
        for (int k = 0; k < 2; k++) {
            d = 1.0 + coefs[k] * d;
            if (fabs(d) < LENTZ_TINY) d = LENTZ_TINY;
            c = 1.0 + coefs[k] / c;
            if (fabs(c) < LENTZ_TINY) c = LENTZ_TINY;
            d = 1.0 / d;
            delta = c * d;
            f *= delta;
        }
        if (fabs(delta - 1.0) < BETAINC_EPS) break;
    }
    return f;
}

double mx_betainc(double a, double b, double x)
{
    if (!(a > 0.0) || !(b > 0.0) || isnan(x) || x < 0.0 || x > 1.0) return NAN;
    if (x == 0.0) return 0.0;
    if (x == 1.0) return 1.0;
    /* The fraction converges fast only left of the mode-ish point; beyond it use
     * I_x(a, b) = 1 - I_{1-x}(b, a). */
    if (x > (a + 1.0) / (a + b + 2.0)) return 1.0 - mx_betainc(b, a, 1.0 - x);
    double log_prefactor = a * log(x) + b * log1p(-x) - log(a) - log_beta(a, b);
    return exp(log_prefactor) * betainc_fraction(a, b, x);
}
