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

typedef enum {
    SWATCH_LINE, SWATCH_POINTS, SWATCH_LINE_POINTS, SWATCH_BAR, SWATCH_DASHED, SWATCH_TICK, SWATCH_SPARSE
} swatch_kind;

typedef struct {
    char label[128];
    swatch_kind kind;
    const double *rgb;
    int marker, dashed;
} legend_entry;

typedef struct {
    double x, y, w, h;
} mxp_rect;

typedef struct {
    const mx_plot_axes *axes;
    const mx_plot_series *series;
    size_t count;
    const char *diagonal_label; /* legend entry for y = x (NULL: none) */
    double bar_fill;            /* fraction of the spacing a group of bars takes */
    const unsigned char *const *sparse; /* per series, per point: a sparse bar (pale, hatched); NULL: none */
    const mxp_rect *extra;      /* marks drawn besides the series that the legend must not hide */
    size_t extra_count;
    /* resolved */
    double xmin, xmax, ymin, ymax;
    double bar_gap; /* between neighbouring bar centres, in axis units (log10 x on a log axis) */
    size_t bar_series;
    ticks xt, yt;
    double px, py, pw, ph; /* the plot area on the canvas */
    double left, top, right, bottom;
    double box_x, box_w;    /* the panel's share of the canvas, across */
    double legend_room;     /* kept below the panel for a legend outside the plot area */
    legend_entry legend[MAX_LEGEND];
    size_t legend_count;
    /* where mxp_legend_place put the legend */
    mxp_rect legend_box;
    size_t legend_cols;
    int legend_outside;
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

/* Series k's colour: its own, its mode's, or the next palette colour that
 * no other series of the panel takes (plot_canvas.c). */
const double *mxp_series_rgb(const panel *p, size_t k);
static inline int mxp_series_marker(const panel *p, size_t k)
{
    return p->series[k].marker > 0 ? p->series[k].marker - 1 : (int)k;
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
/* A bar filled pale and hatched in its colour: a bin with too few samples to trust. */
void mxp_draw_sparse_bar(cairo_t *cr, const double *rgb, double x, double y, double w, double h);
void mxp_set_dash(cairo_t *cr, int dashed);
/* Everything but the legend. */
void mxp_panel_draw(cairo_t *cr, const panel *p);

/* ---- legend (plot_legend.c) ------------------------------------------------ */

void mxp_legend_add(panel *p, const char *label, swatch_kind kind, const double *rgb, int marker);
/* An entry for each labelled series, in order. */
void mxp_legend_from_series(panel *p);
/* Places the legend (p->legend_box): inside the plot area where it hides no
 * bar, point, error bar, line, diagonal or extra mark, the corners first;
 * returns 0 then. Where no such place exists, sets p->legend_room (the height
 * a legend below the panel needs) and returns 1: the caller lays the panel
 * out again and calls mxp_legend_place_below. */
int mxp_legend_place(cairo_t *cr, panel *p);
void mxp_legend_place_below(panel *p);
/* Draws the legend where mxp_legend_place put it. */
void mxp_draw_legend(cairo_t *cr, const panel *p);

/* ---- what was drawn, for the tests (plot_canvas.c) ------------------------ */

/* While a trace is started (on this thread), drawing records into it every
 * data mark (bars, markers, error bars, ticks, count labels) as a box, every
 * line piece as a segment, every text, legend box and legend entry: the tests
 * check on it that a legend hides nothing, that counts are written and that
 * a mode's colour is the same in every figure. */
#define MXP_TRACE_MAX 4096
typedef struct {
    mxp_rect marks[MXP_TRACE_MAX];
    size_t nmarks;
    double segments[MXP_TRACE_MAX][4]; /* x0, y0, x1, y1 */
    size_t nsegments;
    struct {
        mxp_rect box;
        double rgb[3];
        int sparse;
    } bars[MXP_TRACE_MAX];
    size_t nbars;
    struct {
        char text[48];
        double x, y;
    } texts[MXP_TRACE_MAX];
    size_t ntexts;
    struct {
        mxp_rect box, plot;
        int outside;
    } legends[16];
    size_t nlegends;
    struct {
        char label[128];
        double rgb[3];
    } entries[64];
    size_t nentries;
} mxp_trace;

extern _Thread_local mxp_trace *mxp_tracing;
/* Clears t and records into it until mxp_trace_start(NULL). */
void mxp_trace_start(mxp_trace *t);
void mxp_trace_mark(double x, double y, double w, double h);
void mxp_trace_segment(double x0, double y0, double x1, double y1);

#endif
