/* The legend of a panel: its entries, and a box placed in whichever corner
 * of the plot area covers the least data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_internal.h"

void mxp_legend_add(panel *p, const char *label, swatch_kind kind, const double *rgb, int marker)
{
    if (!label || !*label || p->legend_count >= MAX_LEGEND) return;
    legend_entry *e = &p->legend[p->legend_count++];
    snprintf(e->label, sizeof e->label, "%s", label);
    e->kind = kind;
    e->rgb = rgb;
    e->marker = marker;
}

void mxp_legend_from_series(panel *p)
{
    static const swatch_kind kinds[] = {SWATCH_LINE, SWATCH_POINTS, SWATCH_LINE_POINTS, SWATCH_BAR};
    for (size_t k = 0; k < p->count; k++)
        mxp_legend_add(p, p->series[k].label, kinds[p->series[k].style], mxp_series_rgb(p, k), (int)k);
}

static int overlaps(double x, double y, double w, double h, double bx, double by, double bw, double bh)
{
    return x < bx + bw && bx < x + w && y < by + bh && by < y + h;
}

/* How much of the data the box (x, y, w, h) would hide: points, line samples
 * and bars it touches, the diagonal's samples. */
static size_t legend_cost(const panel *p, double x, double y, double w, double h)
{
    size_t cost = 0;
    for (size_t k = 0, j = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        double base = mxp_bar_baseline(p);
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(p, s, i)) continue;
            double sx = map_x(p, s->x[i]), sy = map_y(p, s->y[i]);
            if (s->style == MX_PLOT_BARS) {
                double left, width;
                mxp_bar_slot(p, j, s->x[i], &left, &width);
                cost += 3 * (size_t)overlaps(x, y, w, h, left, fmin(sy, base), width, fabs(base - sy));
                continue;
            }
            cost += 3 * (size_t)overlaps(x, y, w, h, sx - 4, sy - 4, 8, 8);
            if ((s->style == MX_PLOT_LINE || s->style == MX_PLOT_LINE_POINTS) && i + 1 < s->n && point_ok(p, s, i + 1)) {
                double tx = map_x(p, s->x[i + 1]), ty = map_y(p, s->y[i + 1]);
                for (int t = 1; t < 10; t++) {
                    double u = t / 10.0;
                    cost += (size_t)overlaps(x, y, w, h, sx + u * (tx - sx) - 1, sy + u * (ty - sy) - 1, 2, 2);
                }
            }
        }
        j += s->style == MX_PLOT_BARS;
    }
    if (p->axes->diagonal)
        for (int t = 0; t <= 40; t++) {
            double v = p->xmin + (p->xmax - p->xmin) * t / 40.0;
            if (v >= p->ymin && v <= p->ymax) cost += (size_t)overlaps(x, y, w, h, map_x(p, v) - 1, map_y(p, v) - 1, 2, 2);
        }
    return cost;
}

static void draw_swatch(cairo_t *cr, const legend_entry *e, double x, double y)
{
    /* (x, y): the left end of the swatch's middle line; 24 px wide */
    cairo_save(cr);
    switch (e->kind) {
    case SWATCH_BAR:
        cairo_rectangle(cr, x + 4, y - 6, 16, 12);
        set_rgb(cr, e->rgb, BAR_FILL_ALPHA);
        cairo_fill_preserve(cr);
        set_darker(cr, e->rgb, 0.7);
        cairo_set_line_width(cr, 1.0);
        cairo_stroke(cr);
        break;
    case SWATCH_DASHED: {
        static const double dash[] = {6.0, 4.0};
        cairo_set_dash(cr, dash, 2, 0);
        cairo_set_line_width(cr, 1.4);
        set_grey(cr, 0.35);
        cairo_move_to(cr, x, y);
        cairo_line_to(cr, x + 24, y);
        cairo_stroke(cr);
        break;
    }
    case SWATCH_TICK:
        cairo_set_line_width(cr, 2.0);
        set_grey(cr, 0.1);
        cairo_move_to(cr, x + 4, y);
        cairo_line_to(cr, x + 20, y);
        cairo_stroke(cr);
        break;
    default:
        if (e->kind != SWATCH_POINTS) {
            set_rgb(cr, e->rgb, 1.0);
            cairo_set_line_width(cr, 2.0);
            cairo_move_to(cr, x, y);
            cairo_line_to(cr, x + 24, y);
            cairo_stroke(cr);
        }
        if (e->kind != SWATCH_LINE) mxp_draw_marker(cr, e->rgb, e->marker, x + 12, y);
        break;
    }
    cairo_restore(cr);
}

void mxp_draw_legend(cairo_t *cr, const panel *p)
{
    if (p->legend_count == 0) return;
    const double pad = 8.0, row = 19.0, swatch = 24.0, gap = 8.0, inset = 10.0;
    double text_w = 0.0;
    for (size_t i = 0; i < p->legend_count; i++) text_w = fmax(text_w, mxp_text_width(cr, p->legend[i].label, LEGEND_SIZE, 0));
    double w = pad + swatch + gap + text_w + pad, h = pad + row * (double)p->legend_count + pad - 4.0;
    /* Corners in order of preference: top right, top left, bottom right, bottom left. */
    double xs[4] = {p->px + p->pw - inset - w, p->px + inset, p->px + p->pw - inset - w, p->px + inset};
    double ys[4] = {p->py + inset, p->py + inset, p->py + p->ph - inset - h, p->py + p->ph - inset - h};
    size_t best = 0, best_cost = (size_t)-1;
    for (size_t c = 0; c < 4; c++) {
        size_t cost = legend_cost(p, xs[c], ys[c], w, h);
        if (cost < best_cost) best = c, best_cost = cost;
    }
    double x = floor(xs[best]) + 0.5, y = floor(ys[best]) + 0.5;
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.88);
    cairo_fill_preserve(cr);
    set_grey(cr, 0.75);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    for (size_t i = 0; i < p->legend_count; i++) {
        double cy = y + pad + row * (double)i + row / 2.0 - 2.0;
        draw_swatch(cr, &p->legend[i], x + pad, cy);
        set_grey(cr, 0.1);
        mxp_draw_text(cr, p->legend[i].label, x + pad + swatch + gap, cy, LEGEND_SIZE, 0, 0.0, 0.5, 0.0);
    }
    cairo_restore(cr);
}
