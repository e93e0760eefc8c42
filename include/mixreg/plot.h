/* Figures as PNG or SVG (chosen by the file name's extension), drawn with
 * cairo: line/point plots, bar charts, and the reliability diagram with its
 * confidence histogram. Plain data in, one file out. */
#ifndef MIXREG_PLOT_H
#define MIXREG_PLOT_H

#include <stddef.h>

#include "mixreg/error.h"

typedef enum { MX_PLOT_LINE, MX_PLOT_POINTS, MX_PLOT_LINE_POINTS, MX_PLOT_BARS } mx_plot_style;

typedef struct {
    const char *label;      /* legend entry (NULL: none) */
    const double *x, *y;    /* n points; for bars x are the bar centres */
    const double *yerr;     /* optional error bars (NULL: none) */
    size_t n;
    mx_plot_style style;
} mx_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax;  /* xmin == xmax (or ymin == ymax): fit the data */
    int log_x;                      /* logarithmic x axis (for alpha) */
    int diagonal;                   /* draw y = x (reliability diagrams) */
} mx_plot_axes;

/* A figure of `panels` side by side, panel k with axes[k] and series_count[k]
 * series starting at series + (sum of earlier counts). MX_ERR_ARG for an
 * extension other than .png/.svg or empty data; MX_ERR_IO if the file cannot
 * be written. */
mx_status mx_plot_write(const char *path, int width, int height, size_t panels, const mx_plot_axes *axes,
                        const mx_plot_series *series, const size_t *series_count);

/* Reliability data for one model: per bin (equal width, (lo, hi]) the mean
 * confidence, the accuracy and the count. */
typedef struct {
    const char *label;      /* e.g. "plain", "rescaled" */
    size_t bins;
    const double *confidence, *accuracy;
    const size_t *count;
} mx_reliability;

/* The reliability diagram (accuracy vs confidence per bin against the
 * diagonal, one set of bars per model) above the confidence histogram. */
mx_status mx_plot_reliability(const char *path, const char *title, const mx_reliability *models, size_t count);

/* The same at a chosen size; mx_plot_reliability draws 640 x 760 pixels. The
 * top panel (about two thirds of the height) shows per bin, for each model,
 * a bar of its accuracy with a dark tick at its mean confidence, against the
 * dashed diagonal, the legend giving each model's ECE (from this data); the
 * bottom panel the fraction of the model's samples in each bin. Empty bins
 * get no bar. MX_ERR_ARG for a bad extension, no models, more than 10,
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
