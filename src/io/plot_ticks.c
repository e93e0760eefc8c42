/* Axis ticks: multiples of a 1-2-5 step on a linear axis, decades (with
 * minor ticks) on a log axis, and their labels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_internal.h"


/* The 1, 2 or 5 x 10^k nearest raw (on a log scale). */
static double nice_step(double raw)
{
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.414 ? 1.0 : f < 3.162 ? 2.0 : f < 7.071 ? 5.0 : 10.0) * mag;
}

/* The next smaller step of the 1, 2, 5 sequence. */
static double smaller_step(double step)
{
    double mag = pow(10.0, floor(log10(step) + 1e-9));
    double f = step / mag;
    return f > 4.0 ? 2.0 * mag : f > 1.5 ? mag : 0.5 * mag;
}

static size_t ticks_in(double lo, double hi, double step)
{
    return (size_t)(floor(hi / step + 1e-9) - ceil(lo / step - 1e-9) + 1.0);
}

/* Ticks at the multiples of a 1-2-5 step about (hi - lo) / target apart, at
 * least three of them. */
void mxp_linear_ticks(double lo, double hi, double target, ticks *t)
{
    memset(t, 0, sizeof *t);
    double step = nice_step((hi - lo) / target);
    while ((hi - lo) / step > MAX_TICKS - 1) step *= 2.0;
    while (ticks_in(lo, hi, step) < 3 && (hi - lo) / smaller_step(step) < MAX_TICKS - 1) step = smaller_step(step);
    double first = ceil(lo / step - 1e-9);
    for (double k = first; t->n_major < MAX_TICKS; k += 1.0) {
        double v = k * step;
        if (v > hi + step * 1e-9) break;
        if (fabs(v) < step * 1e-9) v = 0.0; /* no "-0.0" */
        t->major[t->n_major++] = v;
    }
    t->decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    double big = fmax(fabs(lo), fabs(hi));
    t->use_g = big >= 1e6 || step < 1e-4;
}

/* Decades as major ticks (with 2 and 5 too when fewer than two decades show),
 * 2..9 x 10^k as minor ones; every other decade labelled when they crowd. */
void mxp_log_ticks(double lo, double hi, ticks *t)
{
    memset(t, 0, sizeof *t);
    t->use_g = 1;
    int k0 = (int)floor(log10(lo) + 1e-9), k1 = (int)ceil(log10(hi) - 1e-9);
    size_t decades_in = 0;
    for (int k = k0; k <= k1; k++) {
        double v = pow(10.0, k);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) decades_in++;
    }
    int every = decades_in > 8 ? (int)((decades_in + 7) / 8) : 1;
    for (int k = k0; k <= k1; k++) {
        for (int m = 1; m <= 9; m++) {
            double v = m * pow(10.0, k);
            if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
            int major = m == 1 ? (k % every == 0) : (decades_in < 2 && (m == 2 || m == 5));
            if (major && t->n_major < MAX_TICKS) t->major[t->n_major++] = v;
            else if (!major && t->n_minor < MAX_TICKS * 4 && k1 - k0 <= 12) t->minor[t->n_minor++] = v;
        }
    }
}

void mxp_format_tick(const ticks *t, double v, char *buf, size_t cap)
{
    if (t->use_g) snprintf(buf, cap, "%g", v);
    else snprintf(buf, cap, "%.*f", t->decimals, v);
}
