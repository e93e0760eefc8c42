/* The reliability diagram above its confidence histogram.
 *
 * What a reader must not be misled by: a bin with a handful of samples has an
 * accuracy that is mostly noise, yet a bar of full height draws the eye. So
 * every bin's sample count is written above its histogram bar, and a sparse
 * bin (fewer than MX_PLOT_SPARSE_MIN samples, or under 1% of the model's
 * samples, where it weighs little in the ECE) is drawn pale and hatched in
 * both panels. Models named after a mode get the mode's colour. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_internal.h"

#define RELIABILITY_WIDTH 640
#define RELIABILITY_HEIGHT 760
#define COUNT_SIZE 9.0  /* px, the per-bin counts */
#define COUNT_GAP 3.0   /* px between a histogram bar and its count */

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

/* The fewest samples a bin of a model with `total` samples needs not to be sparse. */
static size_t sparse_below(size_t total)
{
    size_t one_percent = total / 100 + (total % 100 != 0);
    return one_percent > MX_PLOT_SPARSE_MIN ? one_percent : MX_PLOT_SPARSE_MIN;
}

/* 7, 512, 4.2k, 37k, 1.3M: at most four characters, to fit above a thin bar. */
static void format_count(size_t n, char *buf, size_t cap)
{
    if (n < 1000) snprintf(buf, cap, "%zu", n);
    else if (n < 9950) snprintf(buf, cap, "%.1fk", (double)n / 1e3);
    else if (n < 999500) snprintf(buf, cap, "%.0fk", (double)n / 1e3);
    else snprintf(buf, cap, "%.1fM", (double)n / 1e6);
}

static mx_status check_models(const char *path, const mx_reliability *models, size_t count)
{
    if (!models || count == 0) return mx_error_set(MX_ERR_ARG, "%s: a reliability diagram needs at least one model", path);
    if (count > MXP_PALETTE_SIZE)
        return mx_error_set(MX_ERR_ARG, "%s: at most %zu models per diagram", path, MXP_PALETTE_SIZE);
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
    return MX_OK;
}

/* Both panels in their boxes, their plot areas lined up on the left. */
static void layout_both(cairo_t *cr, panel *top, panel *bottom, int width, int height, double top_h)
{
    mxp_panel_layout(cr, top, 0, 0, width, top_h, 0.0);
    mxp_panel_layout(cr, bottom, 0, top_h, width, height - top_h, 0.0);
    double left = fmax(top->left, bottom->left);
    mxp_panel_layout(cr, top, 0, 0, width, top_h, left);
    mxp_panel_layout(cr, bottom, 0, top_h, width, height - top_h, left);
}

/* The histogram's top, high enough that every count fits above its bar. */
static double histogram_top(cairo_t *cr, const panel *bottom, const mx_reliability *models, size_t count,
                            const double *frac)
{
    size_t bins = models[0].bins;
    double top = 0.0, room = bottom->ph;
    char buf[16];
    for (size_t m = 0; m < count; m++)
        for (size_t b = 0; b < bins; b++) {
            if (!models[m].count[b]) continue;
            format_count(models[m].count[b], buf, sizeof buf);
            double need = mxp_text_width(cr, buf, COUNT_SIZE, 0) + COUNT_GAP + 4.0;
            double f = frac[m * bins + b];
            top = fmax(top, room > need + 10.0 ? f * room / (room - need) : 2.0 * f);
        }
    return top > 0.0 ? top : 1.0;
}

/* The mean-confidence ticks: as drawn, and as marks the legend must not hide. */
static size_t confidence_ticks(const panel *top, const mx_reliability *models, size_t count, const double *x,
                               mxp_rect *out)
{
    size_t n = 0;
    for (size_t m = 0; m < count; m++)
        for (size_t b = 0; b < models[m].bins; b++) {
            if (models[m].count[b] == 0 || !isfinite(models[m].confidence[b])) continue;
            double bl, bw, y = map_y(top, models[m].confidence[b]);
            mxp_bar_slot(top, m, x[b], &bl, &bw);
            out[n++] = (mxp_rect){bl, y - 1.0, bw, 2.0};
        }
    return n;
}

static void draw_counts(cairo_t *cr, const panel *bottom, const mx_reliability *models, size_t count, const double *x,
                        const double *frac)
{
    size_t bins = models[0].bins;
    char buf[16];
    cairo_save(cr);
    set_grey(cr, 0.2);
    for (size_t m = 0; m < count; m++)
        for (size_t b = 0; b < bins; b++) {
            if (!models[m].count[b]) continue;
            double bl, bw;
            mxp_bar_slot(bottom, m, x[b], &bl, &bw);
            double cx = bl + bw / 2.0, y = map_y(bottom, frac[m * bins + b]) - COUNT_GAP;
            format_count(models[m].count[b], buf, sizeof buf);
            double len = mxp_text_width(cr, buf, COUNT_SIZE, 0), cap = CAP_HEIGHT * COUNT_SIZE;
            /* Written upwards from just above the bar, centred on it. */
            mxp_draw_text(cr, buf, cx, y, COUNT_SIZE, 0, 0.0, 0.5, -PI / 2.0);
            mxp_trace_mark(cx - cap / 2.0, y - len, cap, len);
        }
    cairo_restore(cr);
}

mx_status mx_plot_reliability_sized(const char *path, int width, int height, const char *title,
                                    const mx_reliability *models, size_t count)
{
    int svg = mxp_format_of(path);
    if (svg < 0) return MX_ERR_ARG;
    mx_status st = mxp_check_size(width, height);
    if (st == MX_OK) st = check_models(path, models, count);
    if (st != MX_OK) return st;
    size_t bins = models[0].bins;
    /* One block for the bars: x, then per model accuracy and fraction; then the sparse flags and tick boxes. */
    double *x = malloc(bins * (1 + 2 * count) * sizeof *x);
    unsigned char *sparse = malloc(bins * count);
    mxp_rect *ticks_box = malloc(bins * count * sizeof *ticks_box);
    if (!x || !sparse || !ticks_box) {
        free(x), free(sparse), free(ticks_box);
        return mx_error_set(MX_ERR_NOMEM, "plot: out of memory");
    }
    double *acc = x + bins, *frac = acc + bins * count;
    mx_plot_series top_series[MXP_PALETTE_SIZE], bottom_series[MXP_PALETTE_SIZE];
    const unsigned char *sparse_of[MXP_PALETTE_SIZE];
    char labels[MXP_PALETTE_SIZE][128];
    size_t threshold = 0, any_sparse = 0, same_threshold = 1;
    for (size_t b = 0; b < bins; b++) x[b] = ((double)b + 0.5) / (double)bins;
    for (size_t m = 0; m < count; m++) {
        const mx_reliability *r = &models[m];
        size_t n;
        double ece = reliability_ece(r, &n);
        size_t below = sparse_below(n);
        if (m && below != threshold) same_threshold = 0;
        threshold = below;
        for (size_t b = 0; b < bins; b++) {
            acc[m * bins + b] = r->count[b] ? r->accuracy[b] : NAN; /* no bar for an empty bin */
            frac[m * bins + b] = r->count[b] ? (double)r->count[b] / (double)n : NAN;
            sparse[m * bins + b] = r->count[b] && r->count[b] < below;
            any_sparse += sparse[m * bins + b];
        }
        sparse_of[m] = sparse + m * bins;
        snprintf(labels[m], sizeof labels[m], "%s (ECE %.4f)", r->label && *r->label ? r->label : "model", ece);
        /* The mode's colour from the label, or the m-th colour no mode uses (both panels alike). */
        mx_plot_colour c = mx_plot_mode_colour(r->label);
        if (c == MX_PLOT_COLOUR_AUTO) c = mx_plot_other_colour(m);
        top_series[m] = (mx_plot_series){labels[m], x, acc + m * bins, NULL, bins, MX_PLOT_BARS, c, 0, 0};
        bottom_series[m] = (mx_plot_series){NULL, x, frac + m * bins, NULL, bins, MX_PLOT_BARS, c, 0, 0};
    }
    mx_plot_axes top_axes = {title, NULL, "accuracy", 0.0, 1.0, 0.0, 1.0, 0, 1};
    mx_plot_axes bottom_axes = {NULL, "confidence", "fraction of samples", 0.0, 1.0, 0.0, 0.0, 0, 0};
    panel top = {.axes = &top_axes, .series = top_series, .count = count, .bar_fill = 0.9,
                 .diagonal_label = "perfect calibration", .sparse = sparse_of};
    panel bottom = {.axes = &bottom_axes, .series = bottom_series, .count = count, .bar_fill = 0.9,
                    .sparse = sparse_of};
    st = mxp_panel_resolve(&top, 0);
    if (st == MX_OK) st = mxp_panel_resolve(&bottom, 1);
    /* With a bin or more empty in every model the spacing is still 1/B. */
    top.bar_gap = bottom.bar_gap = 1.0 / (double)bins;
    canvas cv;
    if (st == MX_OK) st = mxp_canvas_open(&cv, path, svg, width, height);
    if (st != MX_OK) {
        free(x), free(sparse), free(ticks_box);
        return st;
    }
    cairo_t *cr = cv.cr;
    double top_h = floor(height * 0.68);
    layout_both(cr, &top, &bottom, width, height, top_h);
    /* Room above the histogram's bars for their counts. */
    bottom_axes.ymin = 0.0;
    bottom_axes.ymax = histogram_top(cr, &bottom, models, count, frac);
    mxp_panel_resolve(&bottom, 1); /* the data were checked above */
    bottom.bar_gap = 1.0 / (double)bins;
    layout_both(cr, &top, &bottom, width, height, top_h);

    mxp_legend_from_series(&top);
    mxp_legend_add(&top, "mean confidence in bin", SWATCH_TICK, NULL, 0);
    mxp_legend_add(&top, top.diagonal_label, SWATCH_DASHED, NULL, 0);
    if (any_sparse) {
        char text[96];
        if (same_threshold) snprintf(text, sizeof text, "sparse bin (< %zu samples)", threshold);
        else snprintf(text, sizeof text, "sparse bin (< %d samples or < 1%%)", MX_PLOT_SPARSE_MIN);
        mxp_legend_add(&top, text, SWATCH_SPARSE, NULL, 0);
    }
    top.extra = ticks_box;
    top.extra_count = confidence_ticks(&top, models, count, x, ticks_box);
    if (mxp_legend_place(cr, &top)) {
        layout_both(cr, &top, &bottom, width, height, top_h);
        mxp_legend_place_below(&top);
    }
    mxp_panel_draw(cr, &top);
    /* Each bar's mean confidence as a dark tick across it: the gap to the bar
     * top is the bin's calibration error. */
    mxp_clip_to_plot(cr, &top);
    set_grey(cr, 0.1);
    cairo_set_line_width(cr, 2.0);
    size_t nticks = confidence_ticks(&top, models, count, x, ticks_box);
    for (size_t i = 0; i < nticks; i++) {
        const mxp_rect *t = &ticks_box[i];
        cairo_move_to(cr, t->x, t->y + 1.0);
        cairo_line_to(cr, t->x + t->w, t->y + 1.0);
        mxp_trace_mark(t->x, t->y, t->w, t->h);
    }
    cairo_stroke(cr);
    cairo_restore(cr);
    mxp_draw_legend(cr, &top);
    mxp_panel_draw(cr, &bottom);
    draw_counts(cr, &bottom, models, count, x, frac);
    free(x), free(sparse), free(ticks_box);
    return mxp_canvas_close(&cv, path);
}

mx_status mx_plot_reliability(const char *path, const char *title, const mx_reliability *models, size_t count)
{
    return mx_plot_reliability_sized(path, RELIABILITY_WIDTH, RELIABILITY_HEIGHT, title, models, count);
}
