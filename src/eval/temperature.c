/* Temperature scaling. With beta = 1/T and d_c = z_c - max(z) per row, the
 * NLL of one sample is g(beta) = log sum_c exp(beta d_c) - beta d_y, with
 * g'(beta) = E_p[d] - d_y and g''(beta) = Var_p[d] >= 0 under
 * p = softmax(beta d): convex in beta, so the minimiser is where the mean g'
 * changes sign, and Newton's method on beta (kept inside a bracket) gets
 * there in a handful of passes over the data. */
#include <math.h>
#include <stdlib.h>

#include "mixreg/calibration.h"

#define FIT_MAX_ITER 200
#define FIT_REL_TOL 1e-12

static mx_status check_inputs(const float *logits, const int32_t *labels, size_t n, size_t num_classes)
{
    if (n == 0) return mx_error_set(MX_ERR_ARG, "temperature: no samples");
    if (num_classes == 0) return mx_error_set(MX_ERR_ARG, "temperature: the number of classes must be at least 1");
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || (size_t)labels[i] >= num_classes)
            return mx_error_set(MX_ERR_ARG, "temperature: sample %zu has label %d, outside [0, %zu)", i, (int)labels[i],
                                num_classes);
        for (size_t c = 0; c < num_classes; c++)
            if (!isfinite(logits[i * num_classes + c]))
                return mx_error_set(MX_ERR_NUMERIC, "temperature: sample %zu has a non-finite logit", i);
    }
    return MX_OK;
}

static double row_max(const float *z, size_t classes)
{
    double m = z[0];
    for (size_t c = 1; c < classes; c++)
        if (z[c] > m) m = z[c];
    return m;
}

/* Mean over samples of g, g' and g'' at beta (any of the outputs may be NULL). */
static void nll_derivatives(const float *logits, const int32_t *labels, size_t n, size_t classes, double beta,
                            double *value, double *grad, double *hess)
{
    double v = 0.0, g = 0.0, h = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * classes;
        double m = row_max(z, classes);
        double s = 0.0, s1 = 0.0, s2 = 0.0;
        for (size_t c = 0; c < classes; c++) {
            double d = (double)z[c] - m;
            double w = exp(beta * d);
            s += w;
            s1 += w * d;
            s2 += w * d * d;
        }
        double d_label = (double)z[labels[i]] - m;
        double mean = s1 / s, var = s2 / s - mean * mean;
        v += log(s) - beta * d_label;
        g += mean - d_label;
        h += var > 0 ? var : 0.0;
    }
    if (value) *value = v / (double)n;
    if (grad) *grad = g / (double)n;
    if (hess) *hess = h / (double)n;
}

mx_status mx_temperature_nll(const float *logits, const int32_t *labels, size_t n, size_t num_classes,
                             double temperature, double *nll)
{
    if (!(temperature > 0) || !isfinite(temperature))
        return mx_error_set(MX_ERR_ARG, "temperature: T = %g, it must be finite and positive", temperature);
    mx_status st = check_inputs(logits, labels, n, num_classes);
    if (st != MX_OK) return st;
    nll_derivatives(logits, labels, n, num_classes, 1.0 / temperature, nll, NULL, NULL);
    return MX_OK;
}

/* Whether every row's logits are all equal: then the NLL is log C whatever T. */
static int all_rows_flat(const float *logits, size_t n, size_t classes)
{
    for (size_t i = 0; i < n; i++)
        for (size_t c = 1; c < classes; c++)
            if (logits[i * classes + c] != logits[i * classes]) return 0;
    return 1;
}

mx_status mx_temperature_fit(const float *logits, const int32_t *labels, size_t n, size_t num_classes,
                             double *temperature)
{
    mx_status st = check_inputs(logits, labels, n, num_classes);
    if (st != MX_OK) return st;
    if (all_rows_flat(logits, n, num_classes)) {
        *temperature = 1.0;
        return MX_OK;
    }
    /* beta = 1/T: the range [T_MIN, T_MAX] is beta in [1/T_MAX, 1/T_MIN]. */
    double lo = 1.0 / MX_TEMPERATURE_MAX, hi = 1.0 / MX_TEMPERATURE_MIN, grad, hess;
    nll_derivatives(logits, labels, n, num_classes, lo, NULL, &grad, NULL);
    if (grad >= 0) { /* still rising at the softest end: the optimum is softer still */
        *temperature = MX_TEMPERATURE_MAX;
        return MX_OK;
    }
    nll_derivatives(logits, labels, n, num_classes, hi, NULL, &grad, NULL);
    if (grad <= 0) { /* still falling at the sharpest end */
        *temperature = MX_TEMPERATURE_MIN;
        return MX_OK;
    }
    /* Now g'(lo) < 0 < g'(hi). Start at T = 1. */
    double beta = 1.0;
    for (int iter = 0; iter < FIT_MAX_ITER; iter++) {
        nll_derivatives(logits, labels, n, num_classes, beta, NULL, &grad, &hess);
        if (grad == 0) break;
        if (grad < 0) lo = beta;
        else hi = beta;
        double next = hess > 0 ? beta - grad / hess : NAN;
        if (!(next > lo && next < hi)) next = sqrt(lo * hi); /* bisect in log T */
        double step = fabs(next - beta);
        beta = next;
        if (step <= FIT_REL_TOL * beta || hi - lo <= FIT_REL_TOL * hi) break;
    }
    *temperature = 1.0 / beta;
    return MX_OK;
}

void mx_softmax_temperature(const float *logits, size_t n, size_t num_classes, double temperature, float *probs)
{
    double beta = 1.0 / temperature;
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * num_classes;
        float *p = probs + i * num_classes;
        double m = row_max(z, num_classes), s = 0.0;
        for (size_t c = 0; c < num_classes; c++) s += exp(beta * ((double)z[c] - m));
        for (size_t c = 0; c < num_classes; c++) p[c] = (float)(exp(beta * ((double)z[c] - m)) / s);
    }
}

void mx_logits_scale(float *logits, size_t count, double temperature)
{
    double beta = 1.0 / temperature;
    for (size_t i = 0; i < count; i++) logits[i] = (float)((double)logits[i] * beta);
}
