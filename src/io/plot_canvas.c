/* The canvas of a figure: a cairo surface (PNG image or SVG stream into
 * memory) written with mx_file_write_atomic, so a figure is replaced whole or
 * not at all and every failure to write it is an MX_ERR_IO with the reason;
 * text drawing. */
#include <cairo-svg.h>
#include <ctype.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/plot_internal.h"
#include "mixreg/fileio.h"


/* ---- output: a cairo surface whose bytes end up in memory ---------------- */


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

/* 0 for .png, 1 for .svg, -1 (with the error set) otherwise. */
int mxp_format_of(const char *path)
{
    if (!path) return mx_error_set(MX_ERR_ARG, "plot: no file name"), -1;
    if (mx_file_has_extension(path, ".png")) return 0;
    if (mx_file_has_extension(path, ".svg")) return 1;
    mx_error_set(MX_ERR_ARG, "%s: unknown figure format (the name must end in .png or .svg)", path);
    return -1;
}

static mx_status cairo_failure(const char *path, cairo_status_t s)
{
    return mx_error_set(s == CAIRO_STATUS_NO_MEMORY ? MX_ERR_NOMEM : MX_ERR_IO, "%s: drawing failed: %s", path,
                        cairo_status_to_string(s));
}

mx_status mxp_canvas_open(canvas *cv, const char *path, int svg, int width, int height)
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
mx_status mxp_canvas_close(canvas *cv, const char *path)
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

mx_status mxp_check_size(int width, int height)
{
    if (width < MIN_SIDE || height < MIN_SIDE || width > MAX_SIDE || height > MAX_SIDE)
        return mx_error_set(MX_ERR_ARG, "plot: a figure of %dx%d pixels (each side must be %d to %d)", width, height,
                            MIN_SIDE, MAX_SIDE);
    return MX_OK;
}

/* ---- text and colour ------------------------------------------------------ */

static void mxp_set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT_FAMILY, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double mxp_text_width(cairo_t *cr, const char *s, double size, int bold)
{
    cairo_text_extents_t e;
    mxp_set_font(cr, size, bold);
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* Draws s anchored at (x, y): ha is the fraction of its width left of the
 * anchor (0 left, 0.5 centre, 1 right), va the fraction of the capital height
 * above it (0: the anchor is the top of the capitals, 0.5 their middle, 1 the
 * baseline); angle rotates about the anchor. */
void mxp_draw_text(cairo_t *cr, const char *s, double x, double y, double size, int bold, double ha, double va,
                   double angle)
{
    double w = mxp_text_width(cr, s, size, bold);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ha * w, CAP_HEIGHT * size * (1.0 - va));
    cairo_show_text(cr, s);
    cairo_restore(cr);
    if (mxp_tracing && mxp_tracing->ntexts < MXP_TRACE_MAX) {
        mxp_trace *t = mxp_tracing;
        snprintf(t->texts[t->ntexts].text, sizeof t->texts[t->ntexts].text, "%s", s);
        t->texts[t->ntexts].x = x;
        t->texts[t->ntexts].y = y;
        t->ntexts++;
    }
}

void mx_plot_release_caches(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}
