/* The reliability diagram above its confidence histogram. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_internal.h"

#define RELIABILITY_WIDTH 640
#define RELIABILITY_HEIGHT 760

/* Count-weighted mean |accuracy - confidence| over the bins: the ECE. */
static double reliability_ece(const mx_reliability *m, size_t *total)
{
    double gap = 0.0;
    size_t n = 0;
    for (size_t b = 0; b < m->bins; b++) {
        if (m->count[b] == 0) continue;
        gap += (double)m->count[b] * fabs(m->accuracy[b] - m->confidence[b]);
        n += m->count[b];
    }
    *total = n;
    return n ? gap / (double)n : 0.0;
}

mx_status mx_plot_reliability_sized(const char *path, int width, int height, const char *title,
                                    const mx_reliability *models, size_t count)
{
    int svg = mxp_format_of(path);
    if (svg < 0) return MX_ERR_ARG;
    mx_status st = mxp_check_size(width, height);
    if (st != MX_OK) return st;
    if (!models || count == 0) return mx_error_set(MX_ERR_ARG, "%s: a reliability diagram needs at least one model", path);
    if (count > MXP_PALETTE_SIZE) return mx_error_set(MX_ERR_ARG, "%s: at most %zu models per diagram", path, MXP_PALETTE_SIZE);
    size_t bins = models[0].bins;
    for (size_t m = 0; m < count; m++) {
        const mx_reliability *r = &models[m];
        if (r->bins == 0 || !r->confidence || !r->accuracy || !r->count)
            return mx_error_set(MX_ERR_ARG, "%s: model %zu has no reliability data", path, m);
        if (r->bins != bins)
            return mx_error_set(MX_ERR_ARG, "%s: model %zu has %zu bins, model 0 has %zu (they must agree)", path, m,
                                r->bins, bins);
        size_t n;
        reliability_ece(r, &n);
        if (n == 0) return mx_error_set(MX_ERR_ARG, "%s: model %zu has no samples", path, m);
    }
    /* One block for the bar heights: x, then per model accuracy and fraction. */
    double *x = malloc(bins * (1 + 2 * count) * sizeof *x);
    if (!x) return mx_error_set(MX_ERR_NOMEM, "plot: out of memory");
    mx_plot_series top_series[MXP_PALETTE_SIZE], bottom_series[MXP_PALETTE_SIZE];
    char labels[MXP_PALETTE_SIZE][128];
    for (size_t b = 0; b < bins; b++) x[b] = ((double)b + 0.5) / (double)bins;
    for (size_t m = 0; m < count; m++) {
        const mx_reliability *r = &models[m];
        double *acc = x + bins * (1 + 2 * m), *frac = acc + bins;
        size_t n;
        double ece = reliability_ece(r, &n);
        for (size_t b = 0; b < bins; b++) {
            acc[b] = r->count[b] ? r->accuracy[b] : NAN; /* no bar for an empty bin */
            frac[b] = (double)r->count[b] / (double)n;
        }
        snprintf(labels[m], sizeof labels[m], "%s (ECE %.4f)", r->label && *r->label ? r->label : "model", ece);
        top_series[m] = (mx_plot_series){labels[m], x, acc, NULL, bins, MX_PLOT_BARS};
        bottom_series[m] = (mx_plot_series){NULL, x, frac, NULL, bins, MX_PLOT_BARS};
    }
    mx_plot_axes top_axes = {title, NULL, "accuracy", 0.0, 1.0, 0.0, 1.0, 0, 1};
    mx_plot_axes bottom_axes = {NULL, "confidence", "fraction of samples", 0.0, 1.0, 0.0, 0.0, 0, 0};
    panel top = {.axes = &top_axes, .series = top_series, .count = count, .bar_fill = 0.9,
                 .diagonal_label = "perfect calibration"};
    panel bottom = {.axes = &bottom_axes, .series = bottom_series, .count = count, .bar_fill = 0.9};
    st = mxp_panel_resolve(&top, 0);
    if (st == MX_OK) st = mxp_panel_resolve(&bottom, 1);
    /* With a bin or more empty in every model the spacing is still 1/B. */
    top.bar_gap = bottom.bar_gap = 1.0 / (double)bins;
    canvas cv;
    if (st == MX_OK) st = mxp_canvas_open(&cv, path, svg, width, height);
    if (st != MX_OK) {
        free(x);
        return st;
    }
    double top_h = floor(height * 0.68);
    mxp_panel_layout(cv.cr, &top, 0, 0, width, top_h, 0.0);
    mxp_panel_layout(cv.cr, &bottom, 0, top_h, width, height - top_h, 0.0);
    double left = fmax(top.left, bottom.left); /* line the two plot areas up */
    mxp_panel_layout(cv.cr, &top, 0, 0, width, top_h, left);
    mxp_panel_layout(cv.cr, &bottom, 0, top_h, width, height - top_h, left);
    mxp_panel_draw(cv.cr, &top);
    /* Each bar's mean confidence as a dark tick across it: the gap to the bar
     * top is the bin's calibration error. */
    cairo_t *cr = cv.cr;
    mxp_clip_to_plot(cr, &top);
    set_grey(cr, 0.1);
    cairo_set_line_width(cr, 2.0);
    for (size_t m = 0; m < count; m++)
        for (size_t b = 0; b < bins; b++) {
            if (models[m].count[b] == 0 || !isfinite(models[m].confidence[b])) continue;
            double bl, bw, y = map_y(&top, models[m].confidence[b]);
            mxp_bar_slot(&top, m, x[b], &bl, &bw);
            cairo_move_to(cr, bl, y);
            cairo_line_to(cr, bl + bw, y);
        }
    cairo_stroke(cr);
    cairo_restore(cr);
    mxp_legend_from_series(&top);
    mxp_legend_add(&top, "mean confidence in bin", SWATCH_TICK, NULL, 0);
    mxp_legend_add(&top, top.diagonal_label, SWATCH_DASHED, NULL, 0);
    mxp_draw_legend(cr, &top);
    mxp_panel_draw(cr, &bottom);
    free(x);
    return mxp_canvas_close(&cv, path);
}

mx_status mx_plot_reliability(const char *path, const char *title, const mx_reliability *models, size_t count)
{
    return mx_plot_reliability_sized(path, RELIABILITY_WIDTH, RELIABILITY_HEIGHT, title, models, count);
}
