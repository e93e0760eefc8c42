/* The legend of a panel: its entries, and where the box goes. A legend must
 * never hide data, so it goes inside the plot area only where it touches
 * nothing drawn there (bars, points, error bars, lines, the diagonal, the
 * caller's extra marks), trying the corners first and then every place on a
 * grid, nearest a corner first; where no place is free it goes below the
 * panel, in as many columns as fit, and the plot area shrinks to make room. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_internal.h"

#define PAD 8.0
#define ROW 19.0
#define SWATCH 24.0
#define GAP 8.0
#define COLUMN_GAP 18.0
#define INSET 10.0
#define CLEARANCE 2.0 /* px between the box and the nearest data */

void mxp_legend_add(panel *p, const char *label, swatch_kind kind, const double *rgb, int marker)
{
    if (!label || !*label || p->legend_count >= MAX_LEGEND) return;
    legend_entry *e = &p->legend[p->legend_count++];
    snprintf(e->label, sizeof e->label, "%s", label);
    e->kind = kind;
    e->rgb = rgb;
    e->marker = marker;
    e->dashed = 0;
}

void mxp_legend_from_series(panel *p)
{
    static const swatch_kind kinds[] = {SWATCH_LINE, SWATCH_POINTS, SWATCH_LINE_POINTS, SWATCH_BAR};
    for (size_t k = 0; k < p->count; k++) {
        size_t before = p->legend_count;
        mxp_legend_add(p, p->series[k].label, kinds[p->series[k].style], mxp_series_rgb(p, k), mxp_series_marker(p, k));
        if (p->legend_count > before) p->legend[before].dashed = p->series[k].dashed;
    }
}

static int overlaps(mxp_rect a, double bx, double by, double bw, double bh)
{
    if (bw < 0) bx += bw, bw = -bw;
    if (bh < 0) by += bh, bh = -bh;
    return a.x < bx + bw && bx < a.x + a.w && a.y < by + bh && by < a.y + a.h;
}

/* Whether the segment from (x0, y0) to (x1, y1) passes through r (Liang-Barsky clipping). */
static int segment_hits(mxp_rect r, double x0, double y0, double x1, double y1)
{
    double t0 = 0.0, t1 = 1.0, dx = x1 - x0, dy = y1 - y0;
    const double q[4] = {x0 - r.x, r.x + r.w - x0, y0 - r.y, r.y + r.h - y0};
    const double d[4] = {-dx, dx, -dy, dy};
    for (int i = 0; i < 4; i++) {
        if (d[i] == 0.0) {
            if (q[i] < 0.0) return 0;
            continue;
        }
        double u = q[i] / d[i];
        if (d[i] < 0.0) t0 = fmax(t0, u);
        else t1 = fmin(t1, u);
        if (t0 > t1) return 0;
    }
    return 1;
}

/* How many data marks the box b would hide: bars, markers, error bars, line
 * segments, pieces of the diagonal, the extra marks. The geometry is the one
 * plot_panel.c draws. */
static size_t legend_cost(const panel *p, mxp_rect b)
{
    b.x -= CLEARANCE, b.y -= CLEARANCE, b.w += 2 * CLEARANCE, b.h += 2 * CLEARANCE;
    size_t cost = 0;
    double base = mxp_bar_baseline(p);
    for (size_t k = 0, j = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        int bars = s->style == MX_PLOT_BARS, line = s->style == MX_PLOT_LINE || s->style == MX_PLOT_LINE_POINTS;
        int have_last = 0;
        double lx = 0.0, ly = 0.0;
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(p, s, i)) {
                have_last = 0;
                continue;
            }
            double sx = map_x(p, s->x[i]), sy = map_y(p, s->y[i]), cap = 4.0;
            if (bars) {
                double left, width;
                mxp_bar_slot(p, j, s->x[i], &left, &width);
                cost += (size_t)overlaps(b, left, sy, width, base - sy);
                sx = left + width / 2.0;
                cap = fmin(4.0, width / 3.0);
            } else if (s->style != MX_PLOT_LINE) {
                cost += (size_t)overlaps(b, sx - 5.0, sy - 5.0, 10.0, 10.0);
            }
            if (s->yerr && isfinite(s->yerr[i])) {
                double e = fabs(s->yerr[i]), hi = map_y(p, s->y[i] + e), lo = map_y(p, s->y[i] - e);
                cost += (size_t)overlaps(b, sx - cap, hi, 2.0 * cap, lo - hi);
            }
            if (line && have_last) cost += (size_t)segment_hits(b, lx, ly, sx, sy);
            lx = sx, ly = sy, have_last = 1;
        }
        j += (size_t)bars;
    }
    if (p->axes->diagonal) {
        double lo = fmax(p->xmin, p->ymin), hi = fmin(p->xmax, p->ymax);
        if (hi > lo) {
            int pieces = p->axes->log_x ? 200 : 1;
            for (int i = 0; i < pieces; i++) {
                double u = p->axes->log_x ? lo * pow(hi / lo, i / 200.0) : lo;
                double v = p->axes->log_x ? lo * pow(hi / lo, (i + 1) / 200.0) : hi;
                cost += (size_t)segment_hits(b, map_x(p, u), map_y(p, u), map_x(p, v), map_y(p, v));
            }
        }
    }
    for (size_t i = 0; i < p->extra_count; i++)
        cost += (size_t)overlaps(b, p->extra[i].x, p->extra[i].y, p->extra[i].w, p->extra[i].h);
    return cost;
}

static double widest_label(cairo_t *cr, const panel *p)
{
    double w = 0.0;
    for (size_t i = 0; i < p->legend_count; i++) w = fmax(w, mxp_text_width(cr, p->legend[i].label, LEGEND_SIZE, 0));
    return w;
}

/* The box of a legend of `cols` columns (entries fill a column, then the next). */
static void legend_size(cairo_t *cr, const panel *p, size_t cols, double *w, double *h)
{
    size_t rows = (p->legend_count + cols - 1) / cols;
    double column = SWATCH + GAP + widest_label(cr, p);
    *w = PAD + (double)cols * column + (double)(cols - 1) * COLUMN_GAP + PAD;
    *h = PAD + ROW * (double)rows + PAD - 4.0;
}

int mxp_legend_place(cairo_t *cr, panel *p)
{
    p->legend_outside = 0;
    p->legend_cols = 1;
    if (p->legend_count == 0) return 0;
    double w, h;
    legend_size(cr, p, 1, &w, &h);
    double x_lo = p->px + INSET, x_hi = p->px + p->pw - INSET - w;
    double y_lo = p->py + INSET, y_hi = p->py + p->ph - INSET - h;
    if (x_hi >= x_lo && y_hi >= y_lo) {
        /* Corners in order of preference: top right, top left, bottom right, bottom left. */
        const double cx[4] = {x_hi, x_lo, x_hi, x_lo}, cy[4] = {y_lo, y_lo, y_hi, y_hi};
        enum { NX = 16, NY = 12 };
        double best_key = INFINITY;
        for (int i = 0; i <= NX; i++)
            for (int j = 0; j <= NY; j++) {
                mxp_rect b = {floor(x_lo + (x_hi - x_lo) * i / NX), floor(y_lo + (y_hi - y_lo) * j / NY), w, h};
                double key = INFINITY;
                for (int c = 0; c < 4; c++) /* distance to the nearest corner, ties to the preferred one */
                    key = fmin(key, fabs(b.x - floor(cx[c])) + fabs(b.y - floor(cy[c])) + c * 1e-3);
                if (key < best_key && legend_cost(p, b) == 0) best_key = key, p->legend_box = b;
            }
        if (isfinite(best_key)) return 0;
    }
    /* No free place inside: below the panel, as many columns as its width takes. */
    double room = p->box_w - 20.0, column = SWATCH + GAP + widest_label(cr, p) + COLUMN_GAP;
    size_t cols = (size_t)fmax(1.0, floor((room - 2.0 * PAD + COLUMN_GAP) / column));
    if (cols > p->legend_count) cols = p->legend_count;
    size_t rows = (p->legend_count + cols - 1) / cols;
    cols = (p->legend_count + rows - 1) / rows; /* as even as the rows allow */
    legend_size(cr, p, cols, &w, &h);
    p->legend_cols = cols;
    p->legend_outside = 1;
    p->legend_box = (mxp_rect){0, 0, w, h};
    p->legend_room = h + 8.0;
    return 1;
}

void mxp_legend_place_below(panel *p)
{
    mxp_rect *b = &p->legend_box;
    double x = p->px + (p->pw - b->w) / 2.0;
    x = fmin(x, p->box_x + p->box_w - 8.0 - b->w);
    b->x = floor(fmax(x, p->box_x + 8.0));
    b->y = floor(p->py + p->ph + p->bottom - p->legend_room - 8.0);
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
    case SWATCH_SPARSE: {
        static const double grey[3] = {0.45, 0.45, 0.45};
        mxp_draw_sparse_bar(cr, e->rgb ? e->rgb : grey, x + 4, y - 6, 16, 12);
        break;
    }
    default:
        if (e->kind != SWATCH_POINTS) {
            mxp_set_dash(cr, e->dashed);
            set_rgb(cr, e->rgb, 1.0);
            cairo_set_line_width(cr, 2.0);
            cairo_move_to(cr, x, y);
            cairo_line_to(cr, x + 24, y);
            cairo_stroke(cr);
            mxp_set_dash(cr, 0);
        }
        if (e->kind != SWATCH_LINE) mxp_draw_marker(cr, e->rgb, e->marker, x + 12, y);
        break;
    }
    cairo_restore(cr);
}

void mxp_draw_legend(cairo_t *cr, const panel *p)
{
    if (p->legend_count == 0) return;
    /* What the legend draws is not data: keep its swatches out of the record. */
    mxp_trace *trace = mxp_tracing;
    mxp_tracing = NULL;
    size_t cols = p->legend_cols ? p->legend_cols : 1, rows = (p->legend_count + cols - 1) / cols;
    double column = SWATCH + GAP + widest_label(cr, p) + COLUMN_GAP;
    double x = p->legend_box.x + 0.5, y = p->legend_box.y + 0.5;
    cairo_save(cr);
    cairo_rectangle(cr, x, y, p->legend_box.w, p->legend_box.h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.88);
    cairo_fill_preserve(cr);
    set_grey(cr, 0.75);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    for (size_t i = 0; i < p->legend_count; i++) {
        double cx = x + PAD + (double)(i / rows) * column;
        double cy = y + PAD + ROW * (double)(i % rows) + ROW / 2.0 - 2.0;
        draw_swatch(cr, &p->legend[i], cx, cy);
        set_grey(cr, 0.1);
        mxp_draw_text(cr, p->legend[i].label, cx + SWATCH + GAP, cy, LEGEND_SIZE, 0, 0.0, 0.5, 0.0);
    }
    cairo_restore(cr);
    mxp_tracing = trace;
    if (trace && trace->nlegends < sizeof trace->legends / sizeof trace->legends[0]) {
        trace->legends[trace->nlegends].box = p->legend_box;
        trace->legends[trace->nlegends].plot = (mxp_rect){p->px, p->py, p->pw, p->ph};
        trace->legends[trace->nlegends++].outside = p->legend_outside;
    }
    for (size_t i = 0; trace && i < p->legend_count && trace->nentries < 64; i++) {
        snprintf(trace->entries[trace->nentries].label, sizeof trace->entries[0].label, "%s", p->legend[i].label);
        for (int c = 0; c < 3; c++) trace->entries[trace->nentries].rgb[c] = p->legend[i].rgb ? p->legend[i].rgb[c] : -1.0;
        trace->nentries++;
    }
}
