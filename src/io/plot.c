/* Line, point and bar figures of one or more panels side by side
 * (mx_plot_write). Colours come from plot_colour.c (a mode's name gets the
 * mode's colour), markers cycle through five shapes so series stay apart in
 * grey print too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_internal.h"

mx_status mx_plot_write(const char *path, int width, int height, size_t panels, const mx_plot_axes *axes,
                        const mx_plot_series *series, const size_t *series_count)
{
    int svg = mxp_format_of(path);
    if (svg < 0) return MX_ERR_ARG;
    mx_status st = mxp_check_size(width, height);
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
        st = mxp_panel_resolve(&ps[k], k);
    }
    canvas cv;
    if (st == MX_OK) st = mxp_canvas_open(&cv, path, svg, width, height);
    if (st != MX_OK) {
        free(ps);
        return st;
    }
    double each = (double)width / (double)panels;
    for (size_t k = 0; k < panels; k++) {
        panel *p = &ps[k];
        mxp_legend_from_series(p);
        if (p->axes->diagonal && p->legend_count) mxp_legend_add(p, p->diagonal_label, SWATCH_DASHED, NULL, 0);
        mxp_panel_layout(cv.cr, p, each * (double)k, 0.0, each, height, 0.0);
        if (mxp_legend_place(cv.cr, p)) { /* no free place inside: below, the plot area shrinking */
            mxp_panel_layout(cv.cr, p, each * (double)k, 0.0, each, height, 0.0);
            mxp_legend_place_below(p);
        }
        mxp_panel_draw(cv.cr, p);
        mxp_draw_legend(cv.cr, p);
    }
    free(ps);
    return mxp_canvas_close(&cv, path);
}
