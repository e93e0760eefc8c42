/* One panel of a figure: its data checked and ranges worked out, the margins
 * and plot area, and everything drawn in it but the legend: a light grid at
 * the major ticks, the diagonal, bars (several series side by side around
 * their x), lines and points over them, error bars with caps, the frame,
 * outward ticks with numeric labels, axis labels and the title. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_internal.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* The smallest gap between distinct bar centres (1 when there is at most one). */
static double bar_spacing(const panel *p)
{
    size_t total = 0;
    for (size_t k = 0; k < p->count; k++)
        if (p->series[k].style == MX_PLOT_BARS) total += p->series[k].n;
    double *xs = total ? malloc(total * sizeof *xs) : NULL;
    if (!xs) return 1.0;
    size_t m = 0;
    for (size_t k = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        if (s->style != MX_PLOT_BARS) continue;
        for (size_t i = 0; i < s->n; i++)
            if (point_ok(p, s, i)) xs[m++] = axis_x(p, s->x[i]);
    }
    qsort(xs, m, sizeof *xs, cmp_double);
    double gap = INFINITY;
    for (size_t i = 1; i < m; i++)
        if (xs[i] > xs[i - 1] && xs[i] - xs[i - 1] < gap) gap = xs[i] - xs[i - 1];
    free(xs);
    return isfinite(gap) ? gap : 1.0;
}

/* Checks the panel's data and works out its ranges. */
mx_status mxp_panel_resolve(panel *p, size_t index)
{
    const mx_plot_axes *ax = p->axes;
    if (p->count == 0) return mx_error_set(MX_ERR_ARG, "plot: panel %zu has no series", index);
    size_t finite = 0;
    p->bar_series = 0;
    for (size_t k = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        if (s->n == 0 || !s->x || !s->y) return mx_error_set(MX_ERR_ARG, "plot: panel %zu, series %zu is empty", index, k);
        if ((unsigned)s->style > (unsigned)MX_PLOT_BARS)
            return mx_error_set(MX_ERR_ARG, "plot: panel %zu, series %zu has an unknown style", index, k);
        p->bar_series += s->style == MX_PLOT_BARS;
        for (size_t i = 0; i < s->n; i++) finite += (size_t)point_ok(p, s, i);
    }
    if (finite == 0)
        return mx_error_set(MX_ERR_ARG, "plot: panel %zu has no finite points%s", index,
                            ax->log_x ? " with x > 0 (log axis)" : "");
    if (ax->log_x && ax->xmin != ax->xmax && !(ax->xmin > 0 && ax->xmax > 0))
        return mx_error_set(MX_ERR_ARG, "plot: panel %zu: a log x axis needs a positive range", index);
    p->bar_gap = p->bar_series ? bar_spacing(p) : 0.0;

    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (size_t k = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        double half = s->style == MX_PLOT_BARS ? 0.5 * p->bar_gap : 0.0;
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(p, s, i)) continue;
            double x = axis_x(p, s->x[i]), y = s->y[i];
            double e = s->yerr && isfinite(s->yerr[i]) ? fabs(s->yerr[i]) : 0.0;
            xlo = fmin(xlo, x - half);
            xhi = fmax(xhi, x + half);
            ylo = fmin(ylo, y - e);
            yhi = fmax(yhi, y + e);
            if (s->style == MX_PLOT_BARS) ylo = fmin(ylo, 0.0), yhi = fmax(yhi, 0.0);
        }
    }
    if (ax->xmin != ax->xmax) {
        p->xmin = fmin(ax->xmin, ax->xmax);
        p->xmax = fmax(ax->xmin, ax->xmax);
    } else {
        if (xhi - xlo <= 0) xlo -= 0.5, xhi += 0.5;
        double pad = p->bar_series ? 0.0 : 0.04 * (xhi - xlo);
        xlo -= pad;
        xhi += pad;
        p->xmin = ax->log_x ? pow(10.0, xlo) : xlo;
        p->xmax = ax->log_x ? pow(10.0, xhi) : xhi;
    }
    if (ax->ymin != ax->ymax) {
        p->ymin = fmin(ax->ymin, ax->ymax);
        p->ymax = fmax(ax->ymin, ax->ymax);
    } else {
        if (yhi - ylo <= 0) ylo -= 0.5, yhi += 0.5;
        double pad = 0.06 * (yhi - ylo);
        /* Bars standing on 0 keep 0 as the bottom (or top) edge. */
        p->ymin = p->bar_series && ylo == 0.0 ? 0.0 : ylo - pad;
        p->ymax = p->bar_series && yhi == 0.0 ? 0.0 : yhi + pad;
    }
    return MX_OK;
}

/* Margins and plot area inside the box (x0, y0, w, h); left at least min_left. */
void mxp_panel_layout(cairo_t *cr, panel *p, double x0, double y0, double w, double h, double min_left)
{
    const mx_plot_axes *ax = p->axes;
    double xtarget = fmax(4.0, fmin(8.0, (w - 120.0) / 85.0));
    double ytarget = fmax(4.0, fmin(8.0, (h - 100.0) / 70.0));
    if (ax->log_x) mxp_log_ticks(p->xmin, p->xmax, &p->xt);
    else mxp_linear_ticks(p->xmin, p->xmax, xtarget, &p->xt);
    mxp_linear_ticks(p->ymin, p->ymax, ytarget, &p->yt);
    double label_w = 0.0, last_w = 0.0;
    char buf[64];
    for (size_t i = 0; i < p->yt.n_major; i++) {
        mxp_format_tick(&p->yt, p->yt.major[i], buf, sizeof buf);
        label_w = fmax(label_w, mxp_text_width(cr, buf, TICK_SIZE, 0));
    }
    if (p->xt.n_major) {
        mxp_format_tick(&p->xt, p->xt.major[p->xt.n_major - 1], buf, sizeof buf);
        last_w = mxp_text_width(cr, buf, TICK_SIZE, 0);
    }
    p->left = fmax(min_left, 14.0 + (ax->ylabel && *ax->ylabel ? LABEL_SIZE + 12.0 : 0.0) + label_w + 6.0 + TICK_LEN);
    p->top = ax->title && *ax->title ? 14.0 + TITLE_SIZE + 14.0 : 18.0;
    p->bottom = TICK_LEN + 6.0 + TICK_SIZE + (ax->xlabel && *ax->xlabel ? 12.0 + LABEL_SIZE : 0.0) + 14.0 +
                p->legend_room;
    p->box_x = x0;
    p->box_w = w;
    p->right = fmax(22.0, last_w / 2.0 + 10.0);
    p->px = floor(x0 + p->left);
    p->py = floor(y0 + p->top);
    p->pw = fmax(10.0, floor(x0 + w - p->right) - p->px);
    p->ph = fmax(10.0, floor(y0 + h - p->bottom) - p->py);
}

void mxp_clip_to_plot(cairo_t *cr, const panel *p)
{
    cairo_save(cr);
    cairo_rectangle(cr, p->px, p->py, p->pw, p->ph);
    cairo_clip(cr);
}

static void draw_grid(cairo_t *cr, const panel *p)
{
    cairo_save(cr);
    cairo_set_line_width(cr, 1.0);
    set_grey(cr, 0.9);
    for (size_t i = 0; i < p->xt.n_major; i++) {
        double x = floor(map_x(p, p->xt.major[i])) + 0.5;
        cairo_move_to(cr, x, p->py);
        cairo_line_to(cr, x, p->py + p->ph);
    }
    for (size_t i = 0; i < p->yt.n_major; i++) {
        double y = floor(map_y(p, p->yt.major[i])) + 0.5;
        cairo_move_to(cr, p->px, y);
        cairo_line_to(cr, p->px + p->pw, y);
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

static void draw_diagonal(cairo_t *cr, const panel *p)
{
    double lo = fmax(p->xmin, p->ymin), hi = fmin(p->xmax, p->ymax);
    if (p->axes->log_x) lo = fmax(lo, p->xmin);
    if (!(hi > lo)) return;
    cairo_save(cr);
    static const double dash[] = {6.0, 4.0};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_set_line_width(cr, 1.4);
    set_grey(cr, 0.35);
    if (p->axes->log_x) { /* y = x is a curve on a log x axis */
        double x0 = map_x(p, lo), y0 = map_y(p, lo);
        cairo_move_to(cr, x0, y0);
        for (int i = 1; i <= 200; i++) {
            double v = lo * pow(hi / lo, i / 200.0), x1 = map_x(p, v), y1 = map_y(p, v);
            cairo_line_to(cr, x1, y1);
            mxp_trace_segment(x0, y0, x1, y1);
            x0 = x1, y0 = y1;
        }
    } else {
        cairo_move_to(cr, map_x(p, lo), map_y(p, lo));
        cairo_line_to(cr, map_x(p, hi), map_y(p, hi));
        mxp_trace_segment(map_x(p, lo), map_y(p, lo), map_x(p, hi), map_y(p, hi));
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* The slot of bar series j (of p->bar_series) at x: left edge and width on the canvas. */
void mxp_bar_slot(const panel *p, size_t j, double x, double *left, double *width)
{
    double lo = axis_x(p, p->xmin), hi = axis_x(p, p->xmax);
    double group = p->bar_fill * p->bar_gap / (hi - lo) * p->pw;
    double each = group / (double)(p->bar_series ? p->bar_series : 1);
    *left = map_x(p, x) - group / 2.0 + (double)j * each;
    *width = each;
}

double mxp_bar_baseline(const panel *p) { return map_y(p, fmin(fmax(0.0, p->ymin), p->ymax)); }

static void draw_error_bar(cairo_t *cr, double x, double y_lo, double y_hi, double cap)
{
    mxp_trace_mark(x - cap, y_hi, 2.0 * cap, y_lo - y_hi);
    cairo_move_to(cr, x, y_lo);
    cairo_line_to(cr, x, y_hi);
    cairo_move_to(cr, x - cap, y_lo);
    cairo_line_to(cr, x + cap, y_lo);
    cairo_move_to(cr, x - cap, y_hi);
    cairo_line_to(cr, x + cap, y_hi);
    cairo_stroke(cr);
}

static void draw_bars(cairo_t *cr, const panel *p)
{
    size_t j = 0;
    double base = mxp_bar_baseline(p);
    for (size_t k = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        if (s->style != MX_PLOT_BARS) continue;
        const double *rgb = mxp_series_rgb(p, k);
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(p, s, i)) continue;
            double left, width, top = map_y(p, s->y[i]);
            mxp_bar_slot(p, j, s->x[i], &left, &width);
            int sparse = p->sparse && p->sparse[k] && p->sparse[k][i];
            if (sparse) {
                mxp_draw_sparse_bar(cr, rgb, left, fmin(top, base), width, fabs(base - top));
            } else {
                cairo_rectangle(cr, left, fmin(top, base), width, fabs(base - top));
                set_rgb(cr, rgb, BAR_FILL_ALPHA);
                cairo_fill_preserve(cr);
                set_darker(cr, rgb, 0.7);
                cairo_set_line_width(cr, 1.0);
                cairo_stroke(cr);
            }
            mxp_trace_mark(left, fmin(top, base), width, fabs(base - top));
            if (mxp_tracing && mxp_tracing->nbars < MXP_TRACE_MAX) {
                mxp_trace *t = mxp_tracing;
                t->bars[t->nbars].box = (mxp_rect){left, fmin(top, base), width, fabs(base - top)};
                for (int c = 0; c < 3; c++) t->bars[t->nbars].rgb[c] = rgb[c];
                t->bars[t->nbars++].sparse = sparse;
            }
            if (s->yerr && isfinite(s->yerr[i])) {
                set_grey(cr, 0.15);
                cairo_set_line_width(cr, 1.2);
                double e = fabs(s->yerr[i]);
                draw_error_bar(cr, left + width / 2.0, map_y(p, s->y[i] - e), map_y(p, s->y[i] + e),
                               fmin(4.0, width / 3.0));
            }
        }
        j++;
    }
}

static void marker_path(cairo_t *cr, int shape, double x, double y, double r)
{
    switch (shape % MARKER_SHAPES) {
    case 0: cairo_new_sub_path(cr), cairo_arc(cr, x, y, r, 0, 2 * PI); break;
    case 1: cairo_rectangle(cr, x - 0.85 * r, y - 0.85 * r, 1.7 * r, 1.7 * r); break;
    case 2:
        cairo_move_to(cr, x, y - 1.15 * r), cairo_line_to(cr, x + r, y + 0.75 * r), cairo_line_to(cr, x - r, y + 0.75 * r);
        cairo_close_path(cr);
        break;
    case 3:
        cairo_move_to(cr, x, y - 1.2 * r), cairo_line_to(cr, x + r, y), cairo_line_to(cr, x, y + 1.2 * r);
        cairo_line_to(cr, x - r, y), cairo_close_path(cr);
        break;
    default:
        cairo_move_to(cr, x, y + 1.15 * r), cairo_line_to(cr, x + r, y - 0.75 * r), cairo_line_to(cr, x - r, y - 0.75 * r);
        cairo_close_path(cr);
        break;
    }
}

void mxp_draw_marker(cairo_t *cr, const double *rgb, int shape, double x, double y)
{
    mxp_trace_mark(x - 5.0, y - 5.0, 10.0, 10.0);
    marker_path(cr, shape, x, y, 4.0);
    set_rgb(cr, rgb, 1.0);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 0.9);
    cairo_stroke(cr);
}

void mxp_set_dash(cairo_t *cr, int dashed)
{
    static const double dash[] = {7.0, 4.0};
    cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
}

/* Pale, so that the eye goes to the bars that can be trusted, and hatched, so
 * that it still reads as different in grey print. */
void mxp_draw_sparse_bar(cairo_t *cr, const double *rgb, double x, double y, double w, double h)
{
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    set_rgb(cr, rgb, 0.22);
    cairo_fill_preserve(cr);
    cairo_clip_preserve(cr);
    set_darker(cr, rgb, 0.8);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    cairo_new_path(cr);
    for (double d = -h; d < w + h; d += 5.0) {
        cairo_move_to(cr, x + d, y + h);
        cairo_line_to(cr, x + d + h, y);
    }
    cairo_set_line_width(cr, 0.8);
    cairo_stroke(cr);
    cairo_restore(cr);
}

static void draw_lines_and_points(cairo_t *cr, const panel *p)
{
    for (size_t k = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        if (s->style == MX_PLOT_BARS) continue;
        const double *rgb = mxp_series_rgb(p, k);
        if (s->yerr) {
            set_rgb(cr, rgb, 1.0);
            cairo_set_line_width(cr, 1.3);
            for (size_t i = 0; i < s->n; i++) {
                if (!point_ok(p, s, i) || !isfinite(s->yerr[i])) continue;
                double e = fabs(s->yerr[i]);
                draw_error_bar(cr, map_x(p, s->x[i]), map_y(p, s->y[i] - e), map_y(p, s->y[i] + e), 4.0);
            }
        }
        if (s->style == MX_PLOT_LINE || s->style == MX_PLOT_LINE_POINTS) {
            int pen_down = 0;
            double lx = 0.0, ly = 0.0;
            for (size_t i = 0; i < s->n; i++) {
                if (!point_ok(p, s, i)) { /* a gap in the data is a gap in the line */
                    pen_down = 0;
                    continue;
                }
                double x = map_x(p, s->x[i]), y = map_y(p, s->y[i]);
                if (pen_down) {
                    cairo_line_to(cr, x, y);
                    mxp_trace_segment(lx, ly, x, y);
                } else {
                    cairo_move_to(cr, x, y);
                }
                lx = x, ly = y;
                pen_down = 1;
            }
            cairo_save(cr);
            mxp_set_dash(cr, s->dashed);
            set_rgb(cr, rgb, 1.0);
            cairo_set_line_width(cr, 2.0);
            cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
            cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
            cairo_stroke(cr);
            cairo_restore(cr);
        }
        if (s->style == MX_PLOT_POINTS || s->style == MX_PLOT_LINE_POINTS)
            for (size_t i = 0; i < s->n; i++)
                if (point_ok(p, s, i))
                    mxp_draw_marker(cr, rgb, mxp_series_marker(p, k), map_x(p, s->x[i]), map_y(p, s->y[i]));
    }
}

/* Frame, ticks, tick labels, axis labels and title. */
static void draw_axes(cairo_t *cr, const panel *p)
{
    const mx_plot_axes *ax = p->axes;
    char buf[64];
    cairo_save(cr);
    cairo_set_line_width(cr, 1.0);
    set_grey(cr, 0.2);
    cairo_rectangle(cr, p->px + 0.5, p->py + 0.5, p->pw - 1.0, p->ph - 1.0);
    cairo_stroke(cr);
    double bottom = p->py + p->ph;
    for (size_t i = 0; i < p->xt.n_major; i++) {
        double x = floor(map_x(p, p->xt.major[i])) + 0.5;
        cairo_move_to(cr, x, bottom);
        cairo_line_to(cr, x, bottom + TICK_LEN);
    }
    for (size_t i = 0; i < p->xt.n_minor; i++) {
        double x = floor(map_x(p, p->xt.minor[i])) + 0.5;
        cairo_move_to(cr, x, bottom);
        cairo_line_to(cr, x, bottom + TICK_LEN * 0.6);
    }
    for (size_t i = 0; i < p->yt.n_major; i++) {
        double y = floor(map_y(p, p->yt.major[i])) + 0.5;
        cairo_move_to(cr, p->px, y);
        cairo_line_to(cr, p->px - TICK_LEN, y);
    }
    cairo_stroke(cr);
    set_grey(cr, 0.1);
    for (size_t i = 0; i < p->xt.n_major; i++) {
        mxp_format_tick(&p->xt, p->xt.major[i], buf, sizeof buf);
        mxp_draw_text(cr, buf, map_x(p, p->xt.major[i]), bottom + TICK_LEN + 5.0, TICK_SIZE, 0, 0.5, 0.0, 0.0);
    }
    double widest = 0.0;
    for (size_t i = 0; i < p->yt.n_major; i++) {
        mxp_format_tick(&p->yt, p->yt.major[i], buf, sizeof buf);
        widest = fmax(widest, mxp_text_width(cr, buf, TICK_SIZE, 0));
        mxp_draw_text(cr, buf, p->px - TICK_LEN - 5.0, map_y(p, p->yt.major[i]), TICK_SIZE, 0, 1.0, 0.5, 0.0);
    }
    if (ax->xlabel && *ax->xlabel)
        mxp_draw_text(cr, ax->xlabel, p->px + p->pw / 2.0, bottom + TICK_LEN + 6.0 + TICK_SIZE + 12.0, LABEL_SIZE, 0, 0.5,
                  0.0, 0.0);
    if (ax->ylabel && *ax->ylabel) {
        /* A label longer than a short panel is tall gets a smaller font (down to 10 px). */
        double size = LABEL_SIZE, room = p->ph + 24.0, w = mxp_text_width(cr, ax->ylabel, size, 0);
        if (w > room) size = fmax(10.0, size * room / w);
        mxp_draw_text(cr, ax->ylabel, p->px - TICK_LEN - 6.0 - widest - 12.0, p->py + p->ph / 2.0, size, 0, 0.5, 1.0,
                  -PI / 2.0);
    }
    if (ax->title && *ax->title)
        mxp_draw_text(cr, ax->title, p->px + p->pw / 2.0, p->py - 14.0, TITLE_SIZE, 1, 0.5, 1.0, 0.0);
    cairo_restore(cr);
}

/* Everything but the legend. */
void mxp_panel_draw(cairo_t *cr, const panel *p)
{
    draw_grid(cr, p);
    mxp_clip_to_plot(cr, p);
    if (p->axes->diagonal) draw_diagonal(cr, p);
    draw_bars(cr, p);
    draw_lines_and_points(cr, p);
    cairo_restore(cr); /* the clip */
    draw_axes(cr, p);
}
