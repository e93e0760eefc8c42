/* Figures with cairo. A figure is drawn once onto an image surface (PNG) or
 * an SVG surface whose output goes to memory, then written with
 * mx_file_write_atomic, so a figure is replaced whole or not at all and every
 * failure to write it is an MX_ERR_IO with the reason.
 *
 * Each panel: a title, a plot area with a light grid at the major ticks, a
 * frame, outward ticks with numeric labels, axis labels, and a legend placed
 * in whichever corner of the plot area covers the least data. Bars of several
 * series sit side by side around their x; points and lines are drawn over
 * them; error bars have caps. Colours are the Tableau 10 palette, markers
 * cycle through five shapes so series stay apart in grey print too. */
#include <cairo-svg.h>
#include <cairo.h>
#include <ctype.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/fileio.h"
#include "mixreg/plot.h"

#define FONT_FAMILY "sans-serif"
#define TITLE_SIZE 14.0
#define LABEL_SIZE 13.0
#define TICK_SIZE 12.0
#define LEGEND_SIZE 12.0
#define CAP_HEIGHT 0.73 /* of the font size: where "top" and "middle" of a label are */
#define TICK_LEN 5.0
#define MAX_TICKS 40
#define MIN_SIDE 32
#define MAX_SIDE 16384
#define MAX_LEGEND 24
#define BAR_FILL_ALPHA 0.72
#define RELIABILITY_WIDTH 640
#define RELIABILITY_HEIGHT 760
#define PI 3.14159265358979323846

static const double palette[][3] = {
    {0x1f / 255.0, 0x77 / 255.0, 0xb4 / 255.0}, /* blue */
    {0xff / 255.0, 0x7f / 255.0, 0x0e / 255.0}, /* orange */
    {0x2c / 255.0, 0xa0 / 255.0, 0x2c / 255.0}, /* green */
    {0xd6 / 255.0, 0x27 / 255.0, 0x28 / 255.0}, /* red */
    {0x94 / 255.0, 0x67 / 255.0, 0xbd / 255.0}, /* purple */
    {0x8c / 255.0, 0x56 / 255.0, 0x4b / 255.0}, /* brown */
    {0xe3 / 255.0, 0x77 / 255.0, 0xc2 / 255.0}, /* pink */
    {0x7f / 255.0, 0x7f / 255.0, 0x7f / 255.0}, /* grey */
    {0xbc / 255.0, 0xbd / 255.0, 0x22 / 255.0}, /* olive */
    {0x17 / 255.0, 0xbe / 255.0, 0xcf / 255.0}, /* cyan */
};
#define PALETTE_SIZE (sizeof palette / sizeof palette[0])
#define MARKER_SHAPES 5

/* ---- output: a cairo surface whose bytes end up in memory ---------------- */

typedef struct {
    unsigned char *data;
    size_t len, cap;
} membuf;

static cairo_status_t membuf_write(void *closure, const unsigned char *data, unsigned int length)
{
    membuf *b = closure;
    if (length > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap - b->len < length) cap *= 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p) return CAIRO_STATUS_WRITE_ERROR;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, length);
    b->len += length;
    return CAIRO_STATUS_SUCCESS;
}

typedef struct {
    cairo_surface_t *surface;
    cairo_t *cr;
    int svg;
    membuf out;
} canvas;

static int ends_with_nocase(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k) return 0;
    for (size_t i = 0; i < k; i++)
        if (tolower((unsigned char)s[n - k + i]) != tolower((unsigned char)suffix[i])) return 0;
    return 1;
}

/* 0 for .png, 1 for .svg, -1 (with the error set) otherwise. */
static int format_of(const char *path)
{
    if (!path) return mx_error_set(MX_ERR_ARG, "plot: no file name"), -1;
    if (ends_with_nocase(path, ".png")) return 0;
    if (ends_with_nocase(path, ".svg")) return 1;
    mx_error_set(MX_ERR_ARG, "%s: unknown figure format (the name must end in .png or .svg)", path);
    return -1;
}

static mx_status cairo_failure(const char *path, cairo_status_t s)
{
    return mx_error_set(s == CAIRO_STATUS_NO_MEMORY ? MX_ERR_NOMEM : MX_ERR_IO, "%s: drawing failed: %s", path,
                        cairo_status_to_string(s));
}

static mx_status canvas_open(canvas *cv, const char *path, int svg, int width, int height)
{
    memset(cv, 0, sizeof *cv);
    cv->svg = svg;
    if (svg) {
        cv->surface = cairo_svg_surface_create_for_stream(membuf_write, &cv->out, width, height);
#if CAIRO_VERSION >= CAIRO_VERSION_ENCODE(1, 15, 10)
        cairo_svg_surface_set_document_unit(cv->surface, CAIRO_SVG_UNIT_PX);
#endif
    } else {
        cv->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    }
    cairo_status_t s = cairo_surface_status(cv->surface);
    if (s != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(cv->surface);
        free(cv->out.data);
        memset(cv, 0, sizeof *cv);
        return cairo_failure(path, s);
    }
    cv->cr = cairo_create(cv->surface);
    cairo_set_source_rgb(cv->cr, 1, 1, 1);
    cairo_paint(cv->cr);
    return MX_OK;
}

/* Finishes the drawing, encodes it and writes the file; frees everything. */
static mx_status canvas_close(canvas *cv, const char *path)
{
    cairo_status_t s = cairo_status(cv->cr);
    cairo_destroy(cv->cr);
    if (cv->svg) {
        cairo_surface_finish(cv->surface);
        if (s == CAIRO_STATUS_SUCCESS) s = cairo_surface_status(cv->surface);
    } else if (s == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(cv->surface);
        s = cairo_surface_write_to_png_stream(cv->surface, membuf_write, &cv->out);
    }
    cairo_surface_destroy(cv->surface);
    mx_status st = s == CAIRO_STATUS_SUCCESS ? mx_file_write_atomic(path, cv->out.data, cv->out.len)
                                             : cairo_failure(path, s);
    free(cv->out.data);
    memset(cv, 0, sizeof *cv);
    return st;
}

/* ---- text and colour ------------------------------------------------------ */

static void set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT_FAMILY, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s, double size, int bold)
{
    cairo_text_extents_t e;
    set_font(cr, size, bold);
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* Draws s anchored at (x, y): ha is the fraction of its width left of the
 * anchor (0 left, 0.5 centre, 1 right), va the fraction of the capital height
 * above it (0: the anchor is the top of the capitals, 0.5 their middle, 1 the
 * baseline); angle rotates about the anchor. */
static void draw_text(cairo_t *cr, const char *s, double x, double y, double size, int bold, double ha, double va,
                      double angle)
{
    double w = text_width(cr, s, size, bold);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ha * w, CAP_HEIGHT * size * (1.0 - va));
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

static void set_rgb(cairo_t *cr, const double *rgb, double alpha) { cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], alpha); }

static void set_darker(cairo_t *cr, const double *rgb, double factor)
{
    cairo_set_source_rgb(cr, rgb[0] * factor, rgb[1] * factor, rgb[2] * factor);
}

static void set_grey(cairo_t *cr, double level) { cairo_set_source_rgb(cr, level, level, level); }

/* ---- ticks ---------------------------------------------------------------- */

typedef struct {
    double major[MAX_TICKS], minor[MAX_TICKS * 4];
    size_t n_major, n_minor;
    int decimals, use_g;
} ticks;

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
static void linear_ticks(double lo, double hi, double target, ticks *t)
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
static void log_ticks(double lo, double hi, ticks *t)
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

static void format_tick(const ticks *t, double v, char *buf, size_t cap)
{
    if (t->use_g) snprintf(buf, cap, "%g", v);
    else snprintf(buf, cap, "%.*f", t->decimals, v);
}

/* ---- panels --------------------------------------------------------------- */

typedef enum { SWATCH_LINE, SWATCH_POINTS, SWATCH_LINE_POINTS, SWATCH_BAR, SWATCH_DASHED, SWATCH_TICK } swatch_kind;

typedef struct {
    char label[128];
    swatch_kind kind;
    const double *rgb;
    int marker;
} legend_entry;

typedef struct {
    const mx_plot_axes *axes;
    const mx_plot_series *series;
    size_t count;
    const char *diagonal_label; /* legend entry for y = x (NULL: none) */
    double bar_fill;            /* fraction of the spacing a group of bars takes */
    size_t colour_offset;       /* series k gets colour (offset + k) */
    /* resolved */
    double xmin, xmax, ymin, ymax;
    double bar_gap; /* between neighbouring bar centres, in axis units (log10 x on a log axis) */
    size_t bar_series;
    ticks xt, yt;
    double px, py, pw, ph; /* the plot area on the canvas */
    double left, top, right, bottom;
    legend_entry legend[MAX_LEGEND];
    size_t legend_count;
} panel;

static double axis_x(const panel *p, double x) { return p->axes->log_x ? log10(x) : x; }

static double map_x(const panel *p, double x)
{
    double lo = axis_x(p, p->xmin), hi = axis_x(p, p->xmax);
    return p->px + (axis_x(p, x) - lo) / (hi - lo) * p->pw;
}

static double map_y(const panel *p, double y) { return p->py + p->ph - (y - p->ymin) / (p->ymax - p->ymin) * p->ph; }

static int point_ok(const panel *p, const mx_plot_series *s, size_t i)
{
    return isfinite(s->x[i]) && isfinite(s->y[i]) && (!p->axes->log_x || s->x[i] > 0);
}

static const double *series_rgb(const panel *p, size_t k) { return palette[(p->colour_offset + k) % PALETTE_SIZE]; }

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
static mx_status panel_resolve(panel *p, size_t index)
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
static void panel_layout(cairo_t *cr, panel *p, double x0, double y0, double w, double h, double min_left)
{
    const mx_plot_axes *ax = p->axes;
    double xtarget = fmax(4.0, fmin(8.0, (w - 120.0) / 85.0));
    double ytarget = fmax(4.0, fmin(8.0, (h - 100.0) / 70.0));
    if (ax->log_x) log_ticks(p->xmin, p->xmax, &p->xt);
    else linear_ticks(p->xmin, p->xmax, xtarget, &p->xt);
    linear_ticks(p->ymin, p->ymax, ytarget, &p->yt);
    double label_w = 0.0, last_w = 0.0;
    char buf[64];
    for (size_t i = 0; i < p->yt.n_major; i++) {
        format_tick(&p->yt, p->yt.major[i], buf, sizeof buf);
        label_w = fmax(label_w, text_width(cr, buf, TICK_SIZE, 0));
    }
    if (p->xt.n_major) {
        format_tick(&p->xt, p->xt.major[p->xt.n_major - 1], buf, sizeof buf);
        last_w = text_width(cr, buf, TICK_SIZE, 0);
    }
    p->left = fmax(min_left, 14.0 + (ax->ylabel && *ax->ylabel ? LABEL_SIZE + 12.0 : 0.0) + label_w + 6.0 + TICK_LEN);
    p->top = ax->title && *ax->title ? 14.0 + TITLE_SIZE + 14.0 : 18.0;
    p->bottom = TICK_LEN + 6.0 + TICK_SIZE + (ax->xlabel && *ax->xlabel ? 12.0 + LABEL_SIZE : 0.0) + 14.0;
    p->right = fmax(22.0, last_w / 2.0 + 10.0);
    p->px = floor(x0 + p->left);
    p->py = floor(y0 + p->top);
    p->pw = fmax(10.0, floor(x0 + w - p->right) - p->px);
    p->ph = fmax(10.0, floor(y0 + h - p->bottom) - p->py);
}

static void clip_to_plot(cairo_t *cr, const panel *p)
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
        for (int i = 0; i <= 200; i++) {
            double v = lo * pow(hi / lo, i / 200.0);
            if (i == 0) cairo_move_to(cr, map_x(p, v), map_y(p, v));
            else cairo_line_to(cr, map_x(p, v), map_y(p, v));
        }
    } else {
        cairo_move_to(cr, map_x(p, lo), map_y(p, lo));
        cairo_line_to(cr, map_x(p, hi), map_y(p, hi));
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* The slot of bar series j (of p->bar_series) at x: left edge and width on the canvas. */
static void bar_slot(const panel *p, size_t j, double x, double *left, double *width)
{
    double lo = axis_x(p, p->xmin), hi = axis_x(p, p->xmax);
    double group = p->bar_fill * p->bar_gap / (hi - lo) * p->pw;
    double each = group / (double)(p->bar_series ? p->bar_series : 1);
    *left = map_x(p, x) - group / 2.0 + (double)j * each;
    *width = each;
}

static double bar_baseline(const panel *p) { return map_y(p, fmin(fmax(0.0, p->ymin), p->ymax)); }

static void draw_error_bar(cairo_t *cr, double x, double y_lo, double y_hi, double cap)
{
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
    double base = bar_baseline(p);
    for (size_t k = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        if (s->style != MX_PLOT_BARS) continue;
        const double *rgb = series_rgb(p, k);
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(p, s, i)) continue;
            double left, width, top = map_y(p, s->y[i]);
            bar_slot(p, j, s->x[i], &left, &width);
            cairo_rectangle(cr, left, fmin(top, base), width, fabs(base - top));
            set_rgb(cr, rgb, BAR_FILL_ALPHA);
            cairo_fill_preserve(cr);
            set_darker(cr, rgb, 0.7);
            cairo_set_line_width(cr, 1.0);
            cairo_stroke(cr);
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

static void draw_marker(cairo_t *cr, const double *rgb, int shape, double x, double y)
{
    marker_path(cr, shape, x, y, 4.0);
    set_rgb(cr, rgb, 1.0);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 0.9);
    cairo_stroke(cr);
}

static void draw_lines_and_points(cairo_t *cr, const panel *p)
{
    for (size_t k = 0; k < p->count; k++) {
        const mx_plot_series *s = &p->series[k];
        if (s->style == MX_PLOT_BARS) continue;
        const double *rgb = series_rgb(p, k);
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
            for (size_t i = 0; i < s->n; i++) {
                if (!point_ok(p, s, i)) { /* a gap in the data is a gap in the line */
                    pen_down = 0;
                    continue;
                }
                if (pen_down) cairo_line_to(cr, map_x(p, s->x[i]), map_y(p, s->y[i]));
                else cairo_move_to(cr, map_x(p, s->x[i]), map_y(p, s->y[i]));
                pen_down = 1;
            }
            set_rgb(cr, rgb, 1.0);
            cairo_set_line_width(cr, 2.0);
            cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
            cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
            cairo_stroke(cr);
        }
        if (s->style == MX_PLOT_POINTS || s->style == MX_PLOT_LINE_POINTS)
            for (size_t i = 0; i < s->n; i++)
                if (point_ok(p, s, i)) draw_marker(cr, rgb, (int)k, map_x(p, s->x[i]), map_y(p, s->y[i]));
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
        format_tick(&p->xt, p->xt.major[i], buf, sizeof buf);
        draw_text(cr, buf, map_x(p, p->xt.major[i]), bottom + TICK_LEN + 5.0, TICK_SIZE, 0, 0.5, 0.0, 0.0);
    }
    double widest = 0.0;
    for (size_t i = 0; i < p->yt.n_major; i++) {
        format_tick(&p->yt, p->yt.major[i], buf, sizeof buf);
        widest = fmax(widest, text_width(cr, buf, TICK_SIZE, 0));
        draw_text(cr, buf, p->px - TICK_LEN - 5.0, map_y(p, p->yt.major[i]), TICK_SIZE, 0, 1.0, 0.5, 0.0);
    }
    if (ax->xlabel && *ax->xlabel)
        draw_text(cr, ax->xlabel, p->px + p->pw / 2.0, bottom + TICK_LEN + 6.0 + TICK_SIZE + 12.0, LABEL_SIZE, 0, 0.5,
                  0.0, 0.0);
    if (ax->ylabel && *ax->ylabel) {
        /* A label longer than a short panel is tall gets a smaller font (down to 10 px). */
        double size = LABEL_SIZE, room = p->ph + 24.0, w = text_width(cr, ax->ylabel, size, 0);
        if (w > room) size = fmax(10.0, size * room / w);
        draw_text(cr, ax->ylabel, p->px - TICK_LEN - 6.0 - widest - 12.0, p->py + p->ph / 2.0, size, 0, 0.5, 1.0,
                  -PI / 2.0);
    }
    if (ax->title && *ax->title)
        draw_text(cr, ax->title, p->px + p->pw / 2.0, p->py - 14.0, TITLE_SIZE, 1, 0.5, 1.0, 0.0);
    cairo_restore(cr);
}

/* ---- legend ---------------------------------------------------------------- */

static void legend_add(panel *p, const char *label, swatch_kind kind, const double *rgb, int marker)
{
    if (!label || !*label || p->legend_count >= MAX_LEGEND) return;
    legend_entry *e = &p->legend[p->legend_count++];
    snprintf(e->label, sizeof e->label, "%s", label);
    e->kind = kind;
    e->rgb = rgb;
    e->marker = marker;
}

static void legend_from_series(panel *p)
{
    static const swatch_kind kinds[] = {SWATCH_LINE, SWATCH_POINTS, SWATCH_LINE_POINTS, SWATCH_BAR};
    for (size_t k = 0; k < p->count; k++)
        legend_add(p, p->series[k].label, kinds[p->series[k].style], series_rgb(p, k), (int)k);
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
        double base = bar_baseline(p);
        for (size_t i = 0; i < s->n; i++) {
            if (!point_ok(p, s, i)) continue;
            double sx = map_x(p, s->x[i]), sy = map_y(p, s->y[i]);
            if (s->style == MX_PLOT_BARS) {
                double left, width;
                bar_slot(p, j, s->x[i], &left, &width);
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
        if (e->kind != SWATCH_LINE) draw_marker(cr, e->rgb, e->marker, x + 12, y);
        break;
    }
    cairo_restore(cr);
}

static void draw_legend(cairo_t *cr, const panel *p)
{
    if (p->legend_count == 0) return;
    const double pad = 8.0, row = 19.0, swatch = 24.0, gap = 8.0, inset = 10.0;
    double text_w = 0.0;
    for (size_t i = 0; i < p->legend_count; i++) text_w = fmax(text_w, text_width(cr, p->legend[i].label, LEGEND_SIZE, 0));
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
        draw_text(cr, p->legend[i].label, x + pad + swatch + gap, cy, LEGEND_SIZE, 0, 0.0, 0.5, 0.0);
    }
    cairo_restore(cr);
}

/* Everything but the legend. */
static void panel_draw(cairo_t *cr, const panel *p)
{
    draw_grid(cr, p);
    clip_to_plot(cr, p);
    if (p->axes->diagonal) draw_diagonal(cr, p);
    draw_bars(cr, p);
    draw_lines_and_points(cr, p);
    cairo_restore(cr); /* the clip */
    draw_axes(cr, p);
}

/* ---- the public figures ---------------------------------------------------- */

static mx_status check_size(int width, int height)
{
    if (width < MIN_SIDE || height < MIN_SIDE || width > MAX_SIDE || height > MAX_SIDE)
        return mx_error_set(MX_ERR_ARG, "plot: a figure of %dx%d pixels (each side must be %d to %d)", width, height,
                            MIN_SIDE, MAX_SIDE);
    return MX_OK;
}

mx_status mx_plot_write(const char *path, int width, int height, size_t panels, const mx_plot_axes *axes,
                        const mx_plot_series *series, const size_t *series_count)
{
    int svg = format_of(path);
    if (svg < 0) return MX_ERR_ARG;
    mx_status st = check_size(width, height);
    if (st != MX_OK) return st;
    if (panels == 0 || !axes || !series || !series_count)
        return mx_error_set(MX_ERR_ARG, "%s: a figure needs at least one panel with data", path);
    if (panels > 64) return mx_error_set(MX_ERR_ARG, "%s: %zu panels is too many (at most 64)", path, panels);
    panel *ps = calloc(panels, sizeof *ps);
    if (!ps) return mx_error_set(MX_ERR_NOMEM, "plot: out of memory");
    size_t first = 0;
    for (size_t k = 0; k < panels && st == MX_OK; k++) {
        ps[k].axes = &axes[k];
        ps[k].series = series + first;
        ps[k].count = series_count[k];
        ps[k].diagonal_label = "y = x";
        ps[k].bar_fill = 0.8;
        first += series_count[k];
        st = panel_resolve(&ps[k], k);
    }
    canvas cv;
    if (st == MX_OK) st = canvas_open(&cv, path, svg, width, height);
    if (st != MX_OK) {
        free(ps);
        return st;
    }
    double each = (double)width / (double)panels;
    for (size_t k = 0; k < panels; k++) {
        panel *p = &ps[k];
        panel_layout(cv.cr, p, each * (double)k, 0.0, each, height, 0.0);
        panel_draw(cv.cr, p);
        legend_from_series(p);
        if (p->axes->diagonal && p->legend_count) legend_add(p, p->diagonal_label, SWATCH_DASHED, NULL, 0);
        draw_legend(cv.cr, p);
    }
    free(ps);
    return canvas_close(&cv, path);
}

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
    int svg = format_of(path);
    if (svg < 0) return MX_ERR_ARG;
    mx_status st = check_size(width, height);
    if (st != MX_OK) return st;
    if (!models || count == 0) return mx_error_set(MX_ERR_ARG, "%s: a reliability diagram needs at least one model", path);
    if (count > PALETTE_SIZE) return mx_error_set(MX_ERR_ARG, "%s: at most %zu models per diagram", path, PALETTE_SIZE);
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
    mx_plot_series top_series[PALETTE_SIZE], bottom_series[PALETTE_SIZE];
    char labels[PALETTE_SIZE][128];
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
    st = panel_resolve(&top, 0);
    if (st == MX_OK) st = panel_resolve(&bottom, 1);
    /* With a bin or more empty in every model the spacing is still 1/B. */
    top.bar_gap = bottom.bar_gap = 1.0 / (double)bins;
    canvas cv;
    if (st == MX_OK) st = canvas_open(&cv, path, svg, width, height);
    if (st != MX_OK) {
        free(x);
        return st;
    }
    double top_h = floor(height * 0.68);
    panel_layout(cv.cr, &top, 0, 0, width, top_h, 0.0);
    panel_layout(cv.cr, &bottom, 0, top_h, width, height - top_h, 0.0);
    double left = fmax(top.left, bottom.left); /* line the two plot areas up */
    panel_layout(cv.cr, &top, 0, 0, width, top_h, left);
    panel_layout(cv.cr, &bottom, 0, top_h, width, height - top_h, left);
    panel_draw(cv.cr, &top);
    /* Each bar's mean confidence as a dark tick across it: the gap to the bar
     * top is the bin's calibration error. */
    cairo_t *cr = cv.cr;
    clip_to_plot(cr, &top);
    set_grey(cr, 0.1);
    cairo_set_line_width(cr, 2.0);
    for (size_t m = 0; m < count; m++)
        for (size_t b = 0; b < bins; b++) {
            if (models[m].count[b] == 0 || !isfinite(models[m].confidence[b])) continue;
            double bl, bw, y = map_y(&top, models[m].confidence[b]);
            bar_slot(&top, m, x[b], &bl, &bw);
            cairo_move_to(cr, bl, y);
            cairo_line_to(cr, bl + bw, y);
        }
    cairo_stroke(cr);
    cairo_restore(cr);
    legend_from_series(&top);
    legend_add(&top, "mean confidence in bin", SWATCH_TICK, NULL, 0);
    legend_add(&top, top.diagonal_label, SWATCH_DASHED, NULL, 0);
    draw_legend(cr, &top);
    panel_draw(cr, &bottom);
    free(x);
    return canvas_close(&cv, path);
}

mx_status mx_plot_reliability(const char *path, const char *title, const mx_reliability *models, size_t count)
{
    return mx_plot_reliability_sized(path, RELIABILITY_WIDTH, RELIABILITY_HEIGHT, title, models, count);
}

void mx_plot_release_caches(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}
