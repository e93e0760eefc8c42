/* The palette and who gets which colour. An evaluation mode has one colour
 * in every figure (eval's reliability diagram, the experiment report's
 * figures), so that a reader who learnt "rescaled is orange" in one figure
 * can trust it in the next; everything else takes the colours no mode uses. */
#include <string.h>

#include "io/plot_internal.h"

const double mxp_palette[10][3] = {
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

static const struct {
    const char *mode;
    mx_plot_colour colour;
} mode_colours[] = {
    {"plain", MX_PLOT_BLUE},
    {"rescaled", MX_PLOT_ORANGE},
    {"temperature", MX_PLOT_GREEN},
    {"rescaled+temperature", MX_PLOT_PURPLE},
};
#define MODES (sizeof mode_colours / sizeof mode_colours[0])

/* The colours no mode uses, in the order other series take them; only when
 * a panel has more such series than these six do they borrow the colours of
 * the modes the panel does not show. */
static const mx_plot_colour auto_order[] = {MX_PLOT_RED,   MX_PLOT_BROWN, MX_PLOT_PINK,  MX_PLOT_GREY,
                                            MX_PLOT_OLIVE, MX_PLOT_CYAN,  MX_PLOT_BLUE,  MX_PLOT_ORANGE,
                                            MX_PLOT_GREEN, MX_PLOT_PURPLE};
#define OTHERS 6

mx_plot_colour mx_plot_mode_colour(const char *mode)
{
    for (size_t i = 0; mode && i < MODES; i++)
        if (!strcmp(mode, mode_colours[i].mode)) return mode_colours[i].colour;
    return MX_PLOT_COLOUR_AUTO;
}

mx_plot_colour mx_plot_other_colour(size_t k) { return auto_order[k % OTHERS]; }

static int valid(mx_plot_colour c) { return c >= MX_PLOT_BLUE && c <= MX_PLOT_CYAN; }

void mx_plot_colour_rgb(mx_plot_colour colour, double rgb[3])
{
    for (int i = 0; i < 3; i++) rgb[i] = valid(colour) ? mxp_palette[colour - 1][i] : 0.5;
}

/* The colour series k claims for itself (its own or its mode's), or AUTO. */
static mx_plot_colour claimed(const panel *p, size_t k)
{
    const mx_plot_series *s = &p->series[k];
    if (valid(s->colour)) return s->colour;
    return mx_plot_mode_colour(s->label);
}

const double *mxp_series_rgb(const panel *p, size_t k)
{
    mx_plot_colour c = claimed(p, k);
    if (c != MX_PLOT_COLOUR_AUTO) return mxp_palette[c - 1];
    /* The j-th series without a claim takes the j-th colour nobody claimed
     * (cycling through the whole palette when all ten are claimed). */
    size_t j = 0;
    for (size_t i = 0; i < k; i++) j += claimed(p, i) == MX_PLOT_COLOUR_AUTO;
    mx_plot_colour free_colours[MXP_PALETTE_SIZE];
    size_t nfree = 0;
    for (size_t a = 0; a < MXP_PALETTE_SIZE; a++) {
        int taken = 0;
        for (size_t i = 0; i < p->count && !taken; i++) taken = claimed(p, i) == auto_order[a];
        if (!taken) free_colours[nfree++] = auto_order[a];
    }
    c = nfree ? free_colours[j % nfree] : auto_order[j % MXP_PALETTE_SIZE];
    return mxp_palette[c - 1];
}

/* ---- the tests' record of what was drawn ---------------------------------- */

_Thread_local mxp_trace *mxp_tracing;

void mxp_trace_start(mxp_trace *t)
{
    if (t) memset(t, 0, sizeof *t);
    mxp_tracing = t;
}

void mxp_trace_mark(double x, double y, double w, double h)
{
    mxp_trace *t = mxp_tracing;
    if (!t || t->nmarks >= MXP_TRACE_MAX) return;
    t->marks[t->nmarks++] = (mxp_rect){fmin(x, x + w), fmin(y, y + h), fabs(w), fabs(h)};
}

void mxp_trace_segment(double x0, double y0, double x1, double y1)
{
    mxp_trace *t = mxp_tracing;
    if (!t || t->nsegments >= MXP_TRACE_MAX) return;
    double *s = t->segments[t->nsegments++];
    s[0] = x0, s[1] = y0, s[2] = x1, s[3] = y1;
}
