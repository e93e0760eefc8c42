/* The report's figures (PNG, through plot.h): ECE and accuracy against alpha,
 * a reliability diagram per group, and the confidence histograms of the
 * methods side by side. Each written figure is recorded in r->figures for the
 * HTML page.
 *
 * One look per thing drawn, in every figure: a mode (plain, rescaled,
 * temperature) has its colour from mx_plot_mode_colour; a method run at
 * several alphas has its marker and line (solid or dashed), its plain
 * predictions blue wherever they appear; a group drawn as a reference (a
 * method without a sweep) has a colour no mode uses, the same in the alpha
 * and the confidence figures. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiment/report_internal.h"
#include "mixreg/fileio.h"
#include "mixreg/plot.h"

#define MAX_SERIES 24   /* what a legend shows */
#define MAX_SLUG 80
#define RELIABILITY_MODELS 3

static mx_status add_figure(mxr_report *r, const char *file, const char *caption, char *path)
{
    mxr_figure *f = &r->figures[r->nfigures];
    if (snprintf(f->file, sizeof f->file, "figures/%s", file) >= (int)sizeof f->file)
        return mx_error_set(MX_ERR_ARG, "figure name %s is too long", file);
    snprintf(f->caption, sizeof f->caption, "%s", caption);
    return mxr_join(path, r->out_dir, f->file);
}

/* ---- the methods, in order of first appearance --------------------------- */

static size_t list_methods(const mxr_report *r, const char **methods)
{
    size_t n = 0;
    for (size_t g = 0; g < r->ngroups; g++) {
        size_t m = 0;
        while (m < n && strcmp(methods[m], r->groups[g].method) != 0) m++;
        if (m == n) methods[n++] = r->groups[g].method;
    }
    return n;
}

/* Mode k of the group can be drawn against alpha (a diverged seed leaves NaN means). */
static int drawable(const mxr_group *g, int k)
{
    return g->modes[k].seeds && isfinite(g->modes[k].ece.mean) && isfinite(g->modes[k].accuracy.mean);
}

static int has_alpha_data(const mxr_group *g) { return drawable(g, 0) || drawable(g, 1); }

/* Whether `method` has results at two or more distinct positive alphas. */
static int swept(const mxr_report *r, const char *method)
{
    double first = NAN;
    for (size_t g = 0; g < r->ngroups; g++) {
        const mxr_group *grp = &r->groups[g];
        if (strcmp(grp->method, method) != 0 || !has_alpha_data(grp) || !(grp->alpha > 0)) continue;
        if (isnan(first)) first = grp->alpha;
        else if (grp->alpha != first) return 1;
    }
    return 0;
}

/* The marker (1-based, for mx_plot_series) and dashing of the swept methods,
 * by their rank among the swept methods. */
static size_t swept_rank(const mxr_report *r, const char **methods, size_t nmethods, const char *method)
{
    size_t rank = 0;
    for (size_t m = 0; m < nmethods && strcmp(methods[m], method) != 0; m++) rank += (size_t)swept(r, methods[m]);
    return rank;
}

/* A reference group's colour: the k-th colour no mode uses, k its rank among
 * the groups of methods without a sweep. */
static size_t reference_rank(const mxr_report *r, size_t g)
{
    size_t rank = 0;
    for (size_t h = 0; h < g; h++) rank += (size_t)!swept(r, r->groups[h].method);
    return rank;
}

/* ---- alpha.png ----------------------------------------------------------- */

typedef struct {
    char label[160];
    double *x, *ece, *ece_err, *acc, *acc_err;  /* ngroups each */
    size_t n;
    int line;  /* a horizontal reference line (two points, no error bars) */
    mx_plot_colour colour;
    int marker, dashed;
} alpha_series;

static mx_status alpha_figure(mxr_report *r, const char **methods, size_t nmethods)
{
    double amin = INFINITY, amax = -INFINITY;
    for (size_t g = 0; g < r->ngroups; g++) {
        const mxr_group *grp = &r->groups[g];
        if (grp->alpha > 0 && has_alpha_data(grp) && swept(r, grp->method)) {
            amin = fmin(amin, grp->alpha);
            amax = fmax(amax, grp->alpha);
        }
    }
    if (!(amin < amax)) return MX_OK; /* no method was run at several alphas */
    /* a margin on the log axis, so that the end points and their error bars clear the frame */
    double margin = pow(amax / amin, 0.06);
    amin /= margin;
    amax *= margin;
    size_t ng = r->ngroups;
    alpha_series *s = calloc(MAX_SERIES, sizeof *s);
    double *pool = malloc(MAX_SERIES * ng * 5 * sizeof *pool);
    size_t *order = malloc(ng * sizeof *order);
    mx_plot_series *ps = calloc(2 * MAX_SERIES, sizeof *ps);
    mx_status st = s && pool && order && ps ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory for figures/alpha.png");
    size_t ns = 0;
    for (size_t m = 0; st == MX_OK && m < nmethods; m++) {
        if (!swept(r, methods[m])) continue;
        for (int k = 0; k < 2 && ns < MAX_SERIES; k++) {
            size_t n = 0; /* the method's groups with mode k and alpha > 0, by alpha */
            for (size_t g = 0; g < ng; g++) {
                const mxr_group *grp = &r->groups[g];
                if (strcmp(grp->method, methods[m]) != 0 || !drawable(grp, k) || !(grp->alpha > 0)) continue;
                size_t i = n++;
                for (; i > 0 && r->groups[order[i - 1]].alpha > grp->alpha; i--) order[i] = order[i - 1];
                order[i] = g;
            }
            if (!n) continue;
            alpha_series *a = &s[ns++];
            snprintf(a->label, sizeof a->label, "%s, %s", methods[m], mxr_mode_names[k]);
            size_t rank = swept_rank(r, methods, nmethods, methods[m]);
            a->colour = mx_plot_mode_colour(mxr_mode_names[k]);
            a->marker = 1 + (int)(rank % 5);
            a->dashed = (int)(rank % 2);
            a->n = n;
            a->x = pool + (ns - 1) * ng * 5;
            a->ece = a->x + ng;
            a->ece_err = a->x + 2 * ng;
            a->acc = a->x + 3 * ng;
            a->acc_err = a->x + 4 * ng;
            for (size_t i = 0; i < n; i++) {
                const mxr_group *grp = &r->groups[order[i]];
                const mxr_agg *g = &grp->modes[k];
                a->x[i] = grp->alpha;
                a->ece[i] = 100 * g->ece.mean;
                a->ece_err[i] = 100 * g->ece.std;
                a->acc[i] = 100 * g->accuracy.mean;
                a->acc_err[i] = 100 * g->accuracy.std;
            }
        }
    }
    for (size_t g = 0; st == MX_OK && g < ng && ns < MAX_SERIES; g++) {
        const mxr_group *grp = &r->groups[g];
        if (swept(r, grp->method) || !drawable(grp, 0)) continue;
        alpha_series *a = &s[ns++];
        /* plain predictions (the caption says so): named by the group alone,
         * so that "plain" keeps meaning blue */
        snprintf(a->label, sizeof a->label, "%s", grp->name);
        size_t rank = reference_rank(r, g);
        a->colour = mx_plot_other_colour(rank);
        a->marker = 1 + (int)(rank % 5);
        a->x = pool + (ns - 1) * ng * 5;
        if (grp->alpha > 0) {
            /* A method run at one alpha (an ablation): one point there, with its spread. */
            a->n = 1;
            a->ece = a->x + 1, a->ece_err = a->x + 2, a->acc = a->x + 3, a->acc_err = a->x + 4;
            a->x[0] = grp->alpha;
            a->ece[0] = 100 * grp->modes[0].ece.mean, a->ece_err[0] = 100 * grp->modes[0].ece.std;
            a->acc[0] = 100 * grp->modes[0].accuracy.mean, a->acc_err[0] = 100 * grp->modes[0].accuracy.std;
            continue;
        }
        a->n = 2;
        a->line = 1;
        a->ece = a->x + 2; /* ng >= 2 here: a slot has room for 5 ng values */
        a->acc = a->x + 4;
        a->x[0] = amin;
        a->x[1] = amax;
        a->ece[0] = a->ece[1] = 100 * grp->modes[0].ece.mean;
        a->acc[0] = a->acc[1] = 100 * grp->modes[0].accuracy.mean;
    }
    for (size_t i = 0; st == MX_OK && i < ns; i++) {
        mx_plot_style style = s[i].line ? MX_PLOT_LINE : s[i].n == 1 ? MX_PLOT_POINTS : MX_PLOT_LINE_POINTS;
        ps[i] = (mx_plot_series){s[i].label, s[i].x, s[i].ece, s[i].line ? NULL : s[i].ece_err, s[i].n, style,
                                 s[i].colour, s[i].marker, s[i].dashed};
        ps[ns + i] = (mx_plot_series){s[i].label, s[i].x, s[i].acc, s[i].line ? NULL : s[i].acc_err, s[i].n, style,
                                      s[i].colour, s[i].marker, s[i].dashed};
    }
    if (st == MX_OK) {
        mx_plot_axes axes[2] = {
            {"Calibration against the Mixup alpha", "alpha (log scale)", "ECE (%)", amin, amax, 0, 0, 1, 0},
            {"Test accuracy against the Mixup alpha", "alpha (log scale)", "accuracy (%)", amin, amax, 0, 0, 1, 0},
        };
        const size_t counts[2] = {ns, ns};
        char path[MXR_PATH];
        st = add_figure(r, "alpha.png",
                        "ECE and accuracy against alpha: mean and standard deviation over seeds; colour is the "
                        "prediction mode (plain blue, rescaled orange), marker and line the method; horizontal "
                        "lines are the methods without mixing, single points the methods run at one alpha "
                        "(both plain predictions).",
                        path);
        /* tall enough for the plots when the legends go below them */
        if (st == MX_OK) st = mx_plot_write(path, 1200, 600, 2, axes, ps, counts);
        if (st == MX_OK) r->nfigures++;
    }
    free(s);
    free(pool);
    free(order);
    free(ps);
    return st;
}

/* ---- reliability-<slug>.png ---------------------------------------------- */

/* Lower-case letters, digits, '.', '_' and '-' (runs of anything else become
 * one '-'), unique among the slugs made so far. */
static mx_status make_slug(mxr_report *r, size_t g)
{
    char base[MAX_SLUG + 1];
    size_t n = 0;
    for (const char *p = r->groups[g].name; *p && n < MAX_SLUG; p++) {
        int c = tolower((unsigned char)*p);
        if (isalnum(c) && c < 128) base[n++] = (char)c;
        else if ((c == '.' || c == '_') && n > 0) base[n++] = (char)c;
        else if (n > 0 && base[n - 1] != '-') base[n++] = '-';
    }
    while (n > 0 && (base[n - 1] == '-' || base[n - 1] == '.')) n--;
    base[n] = '\0';
    if (!n) snprintf(base, sizeof base, "group");
    char slug[MAX_SLUG + 24];
    snprintf(slug, sizeof slug, "%s", base);
    for (unsigned k = 2;; k++) {
        size_t h = 0;
        while (h < g && !(r->groups[h].slug && !strcmp(r->groups[h].slug, slug))) h++;
        if (h == g) break;
        snprintf(slug, sizeof slug, "%s-%u", base, k);
    }
    size_t len = strlen(slug) + 1;
    if (!(r->groups[g].slug = malloc(len))) return mx_error_set(MX_ERR_NOMEM, "out of memory for figure names");
    memcpy(r->groups[g].slug, slug, len);
    return MX_OK;
}

static mx_status reliability_figure(mxr_report *r, size_t g)
{
    const mxr_group *grp = &r->groups[g];
    mx_reliability models[RELIABILITY_MODELS];
    size_t n = 0, seeds = 0;
    for (int k = 0; k < MXR_MODES && n < RELIABILITY_MODELS; k++) {
        const mxr_agg *a = &grp->modes[k];
        if (!a->seeds || !a->total) continue;
        models[n++] = (mx_reliability){mxr_mode_names[k], r->bins, a->conf, a->acc, a->count};
        if (a->seeds > seeds) seeds = a->seeds;
    }
    if (!n) return MX_OK;
    mx_status st = make_slug(r, g);
    char file[MAX_SLUG + 64], title[320], caption[400], path[MXR_PATH];
    if (st == MX_OK) {
        snprintf(file, sizeof file, "reliability-%s.png", grp->slug);
        snprintf(title, sizeof title, "%.200s (%zu seed%s pooled)", grp->name, seeds, seeds == 1 ? "" : "s");
        snprintf(caption, sizeof caption,
                 "Reliability diagram and confidence histogram of %.200s, %zu seed%s pooled (the legend's ECE is "
                 "that of the pooled data).",
                 grp->name, seeds, seeds == 1 ? "" : "s");
        st = add_figure(r, file, caption, path);
    }
    if (st == MX_OK) st = mx_plot_reliability(path, title, models, n);
    if (st == MX_OK) r->nfigures++;
    return st;
}

/* ---- confidence.png ------------------------------------------------------ */

static mx_status confidence_figure(mxr_report *r, const char **methods, size_t nmethods)
{
    size_t bins = r->bins;
    double *pool = malloc((MAX_SERIES + 1) * bins * sizeof *pool);
    mx_plot_series *ps = calloc(MAX_SERIES, sizeof *ps);
    mx_status st = pool && ps ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory for figures/confidence.png");
    double *centre = pool;
    for (size_t b = 0; st == MX_OK && b < bins; b++) centre[b] = ((double)b + 0.5) / (double)bins;
    size_t ns = 0;
    for (size_t m = 0; st == MX_OK && m < nmethods && ns < MAX_SERIES; m++) {
        const mxr_group *best = NULL;
        for (size_t g = 0; g < r->ngroups; g++) {
            const mxr_group *grp = &r->groups[g];
            if (strcmp(grp->method, methods[m]) != 0 || !grp->modes[0].total) continue;
            if (!best || fabs(grp->alpha - 1) < fabs(best->alpha - 1)) best = grp;
        }
        if (!best) continue;
        const mxr_agg *a = &best->modes[0];
        double *y = pool + (ns + 1) * bins;
        for (size_t b = 0; b < bins; b++) y[b] = (double)a->count[b] / (double)a->total;
        /* the method's look in alpha.png: its plain predictions, or its reference colour */
        mx_plot_colour colour;
        int marker, dashed = 0;
        if (swept(r, methods[m])) {
            size_t rank = swept_rank(r, methods, nmethods, methods[m]);
            colour = mx_plot_mode_colour("plain");
            marker = 1 + (int)(rank % 5);
            dashed = (int)(rank % 2);
        } else {
            size_t rank = reference_rank(r, (size_t)(best - r->groups));
            colour = mx_plot_other_colour(rank);
            marker = 1 + (int)(rank % 5);
        }
        ps[ns++] = (mx_plot_series){best->name, centre, y, NULL, bins, MX_PLOT_LINE_POINTS, colour, marker, dashed};
    }
    if (st == MX_OK && ns) {
        mx_plot_axes axes = {"Confidence of the plain predictions (per method, alpha closest to 1)",
                             "top-label confidence", "fraction of test samples", 0, 1, 0, 0, 0, 0};
        char path[MXR_PATH];
        st = add_figure(r, "confidence.png",
                        "Confidence histograms of the plain predictions, seeds pooled: for each method its group "
                        "with alpha closest to 1 (each drawn as in the alpha figure).",
                        path);
        if (st == MX_OK) st = mx_plot_write(path, 900, 520, 1, &axes, ps, &ns);
        if (st == MX_OK) r->nfigures++;
    }
    free(pool);
    free(ps);
    return st;
}

mx_status mxr_write_figures(mxr_report *r)
{
    char dir[MXR_PATH];
    mx_status st = mxr_join(dir, r->out_dir, "figures");
    if (st == MX_OK) st = mx_make_dirs(dir);
    if (st != MX_OK) return st;
    r->figures = calloc(r->ngroups + 2, sizeof *r->figures);
    const char **methods = malloc((r->ngroups ? r->ngroups : 1) * sizeof *methods);
    if (!r->figures || !methods) {
        free(methods);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for the figures");
    }
    size_t nmethods = list_methods(r, methods);
    st = alpha_figure(r, methods, nmethods);
    for (size_t g = 0; st == MX_OK && g < r->ngroups; g++) st = reliability_figure(r, g);
    if (st == MX_OK) st = confidence_figure(r, methods, nmethods);
    free(methods);
    return st;
}
