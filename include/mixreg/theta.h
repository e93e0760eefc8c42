/* The paper's statistics of theta = max(lambda, 1 - lambda), lambda ~ Beta(alpha, alpha)
 * (method.md section 2): theta_bar = E[theta] = 1 - I_{1/2}(alpha + 1, alpha),
 * theta_var = Var(theta), gamma2 = E[(1 - theta)^2] = theta_var + (1 - theta_bar)^2,
 * and the implied label smoothing 1 - theta_bar. */
#ifndef MIXREG_THETA_H
#define MIXREG_THETA_H

#include "mixreg/error.h"

/* The largest alpha mixreg takes (Mixup's, CutMix's, and the statistics'
 * here): Beta(1e6, 1e6) is already lambda = 1/2 to within 1e-3. */
#define MX_MAX_ALPHA 1e6

typedef struct {
    double alpha;
    double theta_bar;
    double theta_var;
    double gamma2;
    double label_smoothing;
} mx_theta_stats;

/* alpha = 0 is ERM: theta_bar = 1, theta_var = gamma2 = 0. alpha < 0, NaN or
 * infinite, or above 1e6 is MX_ERR_ARG. Accurate to 1e-9 for alpha in [0.01, 100]. */
mx_status mx_theta_stats_compute(double alpha, mx_theta_stats *out);

/* The same statistics when a sample is mixed at all only with probability
 * mix_prob (--mix-prob, timm's mixup_prob): theta is then 1 with probability
 * 1 - mix_prob, else as above, so theta_bar = (1 - p) + p theta_bar(alpha),
 * Var = p Var(alpha) + p (1 - p) (1 - theta_bar(alpha))^2 (total variance),
 * gamma2 = p gamma2(alpha), label smoothing = p (1 - theta_bar(alpha)).
 * mix_prob outside [0, 1] or NaN is MX_ERR_ARG; mix_prob 1 is
 * mx_theta_stats_compute. */
mx_status mx_theta_stats_mixed(double alpha, double mix_prob, mx_theta_stats *out);

/* Regularised incomplete beta function I_x(a, b), a, b > 0, x in [0, 1]. */
double mx_betainc(double a, double b, double x);

#endif
