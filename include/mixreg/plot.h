/* Figures as PNG or SVG (chosen by the file name's extension), drawn with
 * cairo: line/point plots, bar charts, and the reliability diagram with its
 * confidence histogram. Plain data in, one file out. */
#ifndef MIXREG_PLOT_H
#define MIXREG_PLOT_H

#include <stddef.h>

#include "mixreg/error.h"

typedef enum { MX_PLOT_LINE, MX_PLOT_POINTS, MX_PLOT_LINE_POINTS, MX_PLOT_BARS } mx_plot_style;

/* The figures' colours (the Tableau 10 palette). Four are kept for the
 * evaluation modes, so that a mode looks the same in every figure:
 *   plain                 blue
 *   rescaled              orange
 *   temperature           green
 *   rescaled+temperature  purple
 * The other six (red, brown, pink, grey, olive, cyan) are for everything
 * that is not a mode (methods, groups, generic series). */
typedef enum {
    MX_PLOT_COLOUR_AUTO = 0,
    MX_PLOT_BLUE, MX_PLOT_ORANGE, MX_PLOT_GREEN, MX_PLOT_RED, MX_PLOT_PURPLE,
    MX_PLOT_BROWN, MX_PLOT_PINK, MX_PLOT_GREY, MX_PLOT_OLIVE, MX_PLOT_CYAN
} mx_plot_colour;

/* The colour of an evaluation mode by its name ("plain", "rescaled",
 * "temperature", "rescaled+temperature"); MX_PLOT_COLOUR_AUTO for any other
 * name (or NULL). */
mx_plot_colour mx_plot_mode_colour(const char *mode);

/* The k-th colour (cycling) of those no mode uses: red, brown, pink, grey,
 * olive, cyan. */
mx_plot_colour mx_plot_other_colour(size_t k);

/* The colour's red, green and blue in [0, 1] (MX_PLOT_COLOUR_AUTO, or a
 * value out of range: mid grey). */
void mx_plot_colour_rgb(mx_plot_colour colour, double rgb[3]);

typedef struct {
    const char *label;      /* legend entry (NULL: none) */
    const double *x, *y;    /* n points; for bars x are the bar centres */
    const double *yerr;     /* optional error bars (NULL: none) */
    size_t n;
    mx_plot_style style;
    /* MX_PLOT_COLOUR_AUTO: the mode's colour when the label is a mode's name,
     * else the next palette colour that no other series of the panel uses. */
    mx_plot_colour colour;
    int marker;             /* 0: the series' position picks the shape; k > 0: shape k - 1 (of five) */
    int dashed;             /* lines drawn dashed */
} mx_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax;  /* xmin == xmax (or ymin == ymax): fit the data */
    int log_x;                      /* logarithmic x axis (for alpha) */
    int diagonal;                   /* draw y = x (reliability diagrams) */
} mx_plot_axes;

/* A figure of `panels` side by side, panel k with axes[k] and series_count[k]
 * series starting at series + (sum of earlier counts). Each panel's legend
 * goes inside its plot area where it covers no data (no bar, point, error
 * bar, line or diagonal); where no such place exists, below the panel in as
 * many columns as fit, the plot area shrinking to make room. MX_ERR_ARG for an
 * extension other than .png/.svg or empty data; MX_ERR_IO if the file cannot
 * be written. */
mx_status mx_plot_write(const char *path, int width, int height, size_t panels, const mx_plot_axes *axes,
                        const mx_plot_series *series, const size_t *series_count);

/* Reliability data for one model: per bin (equal width, (lo, hi]) the mean
 * confidence, the accuracy and the count. */
typedef struct {
    const char *label;      /* e.g. "plain", "rescaled": a mode's name gets the mode's colour */
    size_t bins;
    const double *confidence, *accuracy;
    const size_t *count;
} mx_reliability;

/* The reliability diagram (accuracy vs confidence per bin against the
 * diagonal, one set of bars per model) above the confidence histogram. */
/* Below this many samples a reliability bin is sparse (so is one under 1% of
 * the model's samples): with 10 samples an accuracy has a standard error up
 * to 0.16. */
#define MX_PLOT_SPARSE_MIN 10

mx_status mx_plot_reliability(const char *path, const char *title, const mx_reliability *models, size_t count);

/* The same at a chosen size; mx_plot_reliability draws 640 x 760 pixels. The
 * top panel (about two thirds of the height) shows per bin, for each model,
 * a bar of its accuracy with a dark tick at its mean confidence, against the
 * dashed diagonal, the legend giving each model's ECE (from this data); the
 * bottom panel the fraction of the model's samples in each bin, with the
 * bin's sample count written above each bar. Empty bins get no bar. A sparse
 * bin (fewer than MX_PLOT_SPARSE_MIN samples, or under 1% of the model's
 * samples: its accuracy is a guess, and it weighs little in the ECE) is
 * drawn pale and hatched in both panels, with a legend entry saying so.
 * Models named after a mode get the mode's colour (mx_plot_mode_colour).
 * MX_ERR_ARG for a bad extension, no models, more than 10,
 * models with different numbers of bins, or a model without samples;
 * MX_ERR_IO if the file cannot be written. */
mx_status mx_plot_reliability_sized(const char *path, int width, int height, const char *title,
                                    const mx_reliability *models, size_t count);

/* Frees what cairo and fontconfig keep for the life of the process once text
 * has been drawn (font caches and configuration), so that a leak checker sees
 * nothing left at exit. Call it after the last figure, when nothing else in
 * the process is using cairo or fontconfig; plotting again afterwards works
 * (they start afresh). */
void mx_plot_release_caches(void);

#endif
