/* What the files of the figure module (src/io/plot*.c) share: sizes and
 * fonts, the palette, the canvas a figure is drawn on, text, ticks, the panel
 * (axes, data and resolved layout) and its legend. Not installed; nothing
 * outside src/io/plot*.c and the tests uses it. */
#ifndef MIXREG_PLOT_INTERNAL_H
#define MIXREG_PLOT_INTERNAL_H

#include <cairo.h>
#include <math.h>
#include <stddef.h>

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
#define PI 3.14159265358979323846
#define MXP_PALETTE_SIZE ((size_t)10)
#define MARKER_SHAPES 5

/* Tableau 10: blue, orange, green, red, purple, brown, pink, grey, olive, cyan. */
extern const double mxp_palette[10][3];

/* ---- canvas (plot_canvas.c) ------------------------------------------------ */

typedef struct {
    unsigned char *data;
    size_t len, cap;
} membuf;

typedef struct {
    cairo_surface_t *surface;
    cairo_t *cr;
    int svg;
    membuf out;
} canvas;

/* 0 for .png, 1 for .svg, -1 (with the error set) otherwise. */
int mxp_format_of(const char *path);
mx_status mxp_check_size(int width, int height);
mx_status mxp_canvas_open(canvas *cv, const char *path, int svg, int width, int height);
/* Finishes the drawing, encodes it and writes the file; frees everything. */
mx_status mxp_canvas_close(canvas *cv, const char *path);

double mxp_text_width(cairo_t *cr, const char *s, double size, int bold);
/* Draws s anchored at (x, y): ha is the fraction of its width left of the
 * anchor (0 left, 0.5 centre, 1 right), va the fraction of the capital height
 * above it (0: the anchor is the top of the capitals, 0.5 their middle, 1 the
 * baseline); angle rotates about the anchor. */
void mxp_draw_text(cairo_t *cr, const char *s, double x, double y, double size, int bold, double ha, double va,
                   double angle);

static inline void set_rgb(cairo_t *cr, const double *rgb, double alpha)
{
    cairo_set_source_rgba(cr, rgb[0], rgb[1], rgb[2], alpha);
}

static inline void set_darker(cairo_t *cr, const double *rgb, double factor)
{
    cairo_set_source_rgb(cr, rgb[0] * factor, rgb[1] * factor, rgb[2] * factor);
}

static inline void set_grey(cairo_t *cr, double level) { cairo_set_source_rgb(cr, level, level, level); }

/* ---- ticks (plot_ticks.c) -------------------------------------------------- */

typedef struct {
    double major[MAX_TICKS], minor[MAX_TICKS * 4];
    size_t n_major, n_minor;
    int decimals, use_g;
} ticks;

/* Ticks at the multiples of a 1-2-5 step about (hi - lo) / target apart, at
 * least three of them. */
void mxp_linear_ticks(double lo, double hi, double target, ticks *t);
/* Decades as major ticks (with 2 and 5 too when fewer than two decades show),
 * 2..9 x 10^k as minor ones; every other decade labelled when they crowd. */
void mxp_log_ticks(double lo, double hi, ticks *t);
void mxp_format_tick(const ticks *t, double v, char *buf, size_t cap);

/* ---- panels (plot_panel.c) ------------------------------------------------- */

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

static inline double axis_x(const panel *p, double x) { return p->axes->log_x ? log10(x) : x; }

static inline double map_x(const panel *p, double x)
{
    double lo = axis_x(p, p->xmin), hi = axis_x(p, p->xmax);
    return p->px + (axis_x(p, x) - lo) / (hi - lo) * p->pw;
}

static inline double map_y(const panel *p, double y)
{
    return p->py + p->ph - (y - p->ymin) / (p->ymax - p->ymin) * p->ph;
}

static inline int point_ok(const panel *p, const mx_plot_series *s, size_t i)
{
    return isfinite(s->x[i]) && isfinite(s->y[i]) && (!p->axes->log_x || s->x[i] > 0);
}

static inline const double *mxp_series_rgb(const panel *p, size_t k)
{
    return mxp_palette[(p->colour_offset + k) % MXP_PALETTE_SIZE];
}

/* Checks the panel's data and works out its ranges. */
mx_status mxp_panel_resolve(panel *p, size_t index);
/* Margins and plot area inside the box (x0, y0, w, h); left at least min_left. */
void mxp_panel_layout(cairo_t *cr, panel *p, double x0, double y0, double w, double h, double min_left);
/* Saves the state and clips to the plot area (cairo_restore undoes both). */
void mxp_clip_to_plot(cairo_t *cr, const panel *p);
/* The slot of bar series j (of p->bar_series) at x: left edge and width on the canvas. */
void mxp_bar_slot(const panel *p, size_t j, double x, double *left, double *width);
/* Where bars start: y = 0, or the nearer edge when 0 is outside the range. */
double mxp_bar_baseline(const panel *p);
void mxp_draw_marker(cairo_t *cr, const double *rgb, int shape, double x, double y);
/* Everything but the legend. */
void mxp_panel_draw(cairo_t *cr, const panel *p);

/* ---- legend (plot_legend.c) ------------------------------------------------ */

void mxp_legend_add(panel *p, const char *label, swatch_kind kind, const double *rgb, int marker);
/* An entry for each labelled series, in order. */
void mxp_legend_from_series(panel *p);
/* The legend box where it hides the least data. */
void mxp_draw_legend(cairo_t *cr, const panel *p);

#endif
