/* mx_experiment_report: reads the manifest and the runs' eval.json files,
 * aggregates each group over its seeds, then hands the result to the table,
 * figure and HTML writers. Reading is strict (a malformed file is an
 * MX_ERR_FORMAT naming it); a run without eval.json is pending. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "experiment/report_internal.h"
#include "mixreg/experiment_report.h"
#include "mixreg/fileio.h"
#include "mixreg/plot.h"

#define MANIFEST_MAX_BYTES (64u << 20)
#define EVAL_MAX_BYTES (16u << 20)
#define MAX_BINS 10000
#define MAX_NAME 255 /* a run name is a folder name */

const char *const mxr_mode_names[MXR_MODES] = {"plain", "rescaled", "temperature", "rescaled+temperature"};

/* ---- strings ------------------------------------------------------------- */

void mxr_buf_add(mxr_buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (n + 1 > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 4096;
        while (n + 1 > cap - b->len) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void mxr_buf_puts(mxr_buf *b, const char *s) { mxr_buf_add(b, s, strlen(s)); }

void mxr_buf_printf(mxr_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        mxr_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    mxr_buf_add(b, big, (size_t)n);
    free(big);
}

void mxr_buf_html(mxr_buf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        mxr_buf_add(b, run, (size_t)(s - run));
        mxr_buf_puts(b, rep);
        run = s + 1;
    }
    mxr_buf_add(b, run, (size_t)(s - run));
}

mx_status mxr_join(char *path, const char *dir, const char *name)
{
    if (snprintf(path, MXR_PATH, "%s/%s", dir, name) >= MXR_PATH)
        return mx_error_set(MX_ERR_ARG, "%s/%s: path too long", dir, name);
    return MX_OK;
}

mx_status mxr_buf_write(mxr_buf *b, const char *dir, const char *name)
{
    char path[MXR_PATH];
    mx_status st = mxr_join(path, dir, name);
    if (st == MX_OK && b->oom) st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    if (st == MX_OK) st = mx_file_write_atomic(path, b->data ? b->data : "", b->len);
    free(b->data);
    *b = (mxr_buf){0};
    return st;
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* ---- JSON ---------------------------------------------------------------- */

static mx_status parse_file(const char *path, size_t max_bytes, cJSON **out)
{
    char *text = NULL;
    size_t size = 0;
    *out = NULL;
    mx_status st = mx_file_read_all(path, max_bytes, &text, &size);
    if (st != MX_OK) return st;
    cJSON *j = cJSON_ParseWithLength(text, size);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + size ? (size_t)(at - text) : 0;
        free(text);
        return mx_error_set(MX_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", path, off);
    }
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return mx_error_set(MX_ERR_FORMAT, "%s: not a JSON object", path);
    }
    *out = j;
    return MX_OK;
}

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static mx_status get_number(const char *path, const char *where, const cJSON *o, const char *key, double *v)
{
    const cJSON *x = get(o, key);
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
        return mx_error_set(MX_ERR_FORMAT, "%s: %s\"%s\" %s", path, where, key, x ? "is not a number" : "is missing");
    *v = x->valuedouble;
    return MX_OK;
}

/* A number, or NaN when absent or null. */
static mx_status get_optional(const char *path, const char *where, const cJSON *o, const char *key, double *v)
{
    const cJSON *x = get(o, key);
    *v = NAN;
    if (!x || cJSON_IsNull(x)) return MX_OK;
    return get_number(path, where, o, key, v);
}

/* A number, or null (NaN: the evaluation writes null for what is not finite,
 * as for a diverged model); absent is an error. */
static mx_status get_metric(const char *path, const char *where, const cJSON *o, const char *key, double *v)
{
    if (!get(o, key)) return mx_error_set(MX_ERR_FORMAT, "%s: %s\"%s\" is missing", path, where, key);
    return get_optional(path, where, o, key, v);
}

static mx_status get_string(const char *path, const char *where, const cJSON *o, const char *key, char **v)
{
    const cJSON *x = get(o, key);
    if (!cJSON_IsString(x) || !x->valuestring)
        return mx_error_set(MX_ERR_FORMAT, "%s: %s\"%s\" %s", path, where, key, x ? "is not a string" : "is missing");
    if (!(*v = dup_string(x->valuestring))) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    return MX_OK;
}

/* An array of exactly `bins` numbers, null allowed (NaN); non-negative
 * integers when `count`. */
static mx_status get_bins(const char *path, const char *where, const cJSON *o, const char *key, size_t bins,
                          double *values, size_t *count)
{
    const cJSON *a = get(o, key);
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != bins)
        return mx_error_set(MX_ERR_FORMAT, "%s: %s\"%s\" is not an array of %zu numbers", path, where, key, bins);
    size_t b = 0;
    for (const cJSON *x = a->child; x; x = x->next, b++) {
        double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        int ok = count ? isfinite(v) && v >= 0 && v <= 9007199254740992.0 && v == floor(v)
                       : cJSON_IsNull(x) || isfinite(v);
        if (!ok)
            return mx_error_set(MX_ERR_FORMAT, "%s: %s\"%s\"[%zu] is not a%s number", path, where, key, b,
                                count ? " non-negative whole" : "");
        if (count) count[b] = (size_t)v;
        else values[b] = v;
    }
    return MX_OK;
}

/* ---- reading ------------------------------------------------------------- */

static int safe_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s < 0x20) return 0;
    return 1;
}

static mx_status find_or_add_group(mxr_report *r, const mxr_run *run, const char *path)
{
    for (size_t g = 0; g < r->ngroups; g++) {
        mxr_group *grp = &r->groups[g];
        if (strcmp(grp->name, run->group) != 0) continue;
        if (strcmp(grp->method, run->method) != 0 || grp->alpha != run->alpha)
            return mx_error_set(MX_ERR_FORMAT,
                                "%s: run \"%s\" is in group \"%s\" but its method or alpha (%s, %g) differs from "
                                "the group's (%s, %g)",
                                path, run->name, run->group, run->method, run->alpha, grp->method, grp->alpha);
        grp->runs++;
        return MX_OK;
    }
    mxr_group *grp = &r->groups[r->ngroups++];
    grp->name = run->group;  /* borrowed from the run */
    grp->method = run->method;
    grp->alpha = run->alpha;
    grp->runs = 1;
    grp->best = -1;
    return MX_OK;
}

static mx_status read_manifest(mxr_report *r)
{
    char path[MXR_PATH];
    mx_status st = mxr_join(path, r->out_dir, "manifest.json");
    cJSON *j = NULL;
    if (st == MX_OK) st = parse_file(path, MANIFEST_MAX_BYTES, &j);
    if (st != MX_OK) return st;
    double bins = 0;
    if (st == MX_OK) st = get_string(path, "", j, "experiment", &r->experiment);
    if (st == MX_OK) st = get_string(path, "", j, "source", &r->source);
    if (st == MX_OK) st = get_number(path, "", j, "bins", &bins);
    if (st == MX_OK && (bins < 1 || bins > MAX_BINS || bins != floor(bins)))
        st = mx_error_set(MX_ERR_FORMAT, "%s: \"bins\" must be a whole number from 1 to %d", path, MAX_BINS);
    if (st == MX_OK) r->bins = (size_t)bins;
    const cJSON *runs = get(j, "runs");
    if (st == MX_OK && !cJSON_IsArray(runs))
        st = mx_error_set(MX_ERR_FORMAT, "%s: \"runs\" is %s", path, runs ? "not an array" : "missing");
    size_t n = st == MX_OK ? (size_t)cJSON_GetArraySize(runs) : 0;
    if (st == MX_OK && n) {
        r->runs = calloc(n, sizeof *r->runs);
        r->groups = calloc(n, sizeof *r->groups);
        if (!r->runs || !r->groups) st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t i = 0;
    for (const cJSON *o = st == MX_OK ? runs->child : NULL; o && st == MX_OK; o = o->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "runs[%zu]: ", i);
        mxr_run *run = &r->runs[r->nruns];
        double seed = 0;
        if (!cJSON_IsObject(o)) st = mx_error_set(MX_ERR_FORMAT, "%s: %snot an object", path, where);
        if (st == MX_OK) st = get_string(path, where, o, "name", &run->name);
        r->nruns += run->name != NULL; /* from here on free_report frees what the run holds */
        if (st == MX_OK) st = get_string(path, where, o, "method", &run->method);
        if (st == MX_OK) st = get_string(path, where, o, "group", &run->group);
        if (st == MX_OK) st = get_number(path, where, o, "alpha", &run->alpha);
        if (st == MX_OK) st = get_number(path, where, o, "seed", &seed);
        if (st == MX_OK && !safe_name(run->name))
            st = mx_error_set(MX_ERR_FORMAT, "%s: %s\"name\" \"%s\" cannot name a folder", path, where, run->name);
        if (st == MX_OK && run->alpha < 0) st = mx_error_set(MX_ERR_FORMAT, "%s: %s\"alpha\" is negative", path, where);
        for (size_t k = 0; st == MX_OK && k + 1 < r->nruns; k++)
            if (!strcmp(r->runs[k].name, run->name))
                st = mx_error_set(MX_ERR_FORMAT, "%s: run name \"%s\" appears twice", path, run->name);
        if (st == MX_OK) st = find_or_add_group(r, run, path);
    }
    cJSON_Delete(j);
    return st;
}

static mx_status read_mode(const char *path, const char *name, const cJSON *m, size_t bins, mxr_mode *out)
{
    char where[64];
    snprintf(where, sizeof where, "modes.%s: ", name);
    if (!cJSON_IsObject(m)) return mx_error_set(MX_ERR_FORMAT, "%s: %snot an object", path, where);
    mx_status st = get_metric(path, where, m, "accuracy", &out->accuracy);
    if (st == MX_OK) st = get_metric(path, where, m, "nll", &out->nll);
    if (st == MX_OK) st = get_metric(path, where, m, "ece", &out->ece);
    if (st == MX_OK) st = get_metric(path, where, m, "brier", &out->brier);
    if (st == MX_OK) st = get_optional(path, where, m, "ece_adaptive", &out->ece_adaptive);
    if (st == MX_OK) st = get_optional(path, where, m, "temperature", &out->temperature);
    if (st != MX_OK) return st;
    const cJSON *rel = get(m, "reliability");
    snprintf(where, sizeof where, "modes.%s.reliability: ", name);
    if (!cJSON_IsObject(rel))
        return mx_error_set(MX_ERR_FORMAT, "%s: %s%s", path, where, rel ? "not an object" : "missing");
    out->conf = malloc(bins * sizeof *out->conf);
    out->acc = malloc(bins * sizeof *out->acc);
    out->count = malloc(bins * sizeof *out->count);
    if (!out->conf || !out->acc || !out->count) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", path);
    st = get_bins(path, where, rel, "confidence", bins, out->conf, NULL);
    if (st == MX_OK) st = get_bins(path, where, rel, "accuracy", bins, out->acc, NULL);
    if (st == MX_OK) st = get_bins(path, where, rel, "count", bins, NULL, out->count);
    if (st == MX_OK) out->present = 1;
    return st;
}

static mx_status read_eval(const mxr_report *r, mxr_run *run)
{
    char dir[MXR_PATH], path[MXR_PATH];
    if (snprintf(dir, sizeof dir, "%s/runs/%s", r->out_dir, run->name) >= (int)sizeof dir)
        return mx_error_set(MX_ERR_ARG, "%s/runs/%s: path too long", r->out_dir, run->name);
    mx_status st = mxr_join(path, dir, "eval.json");
    if (st != MX_OK) return st;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return MX_OK; /* pending */
        return mx_error_set(MX_ERR_IO, "%s: %s", path, strerror(errno));
    }
    cJSON *j = NULL;
    st = parse_file(path, EVAL_MAX_BYTES, &j);
    if (st != MX_OK) return st;
    double bins = 0;
    st = get_number(path, "", j, "bins", &bins);
    if (st == MX_OK && bins != (double)r->bins)
        st = mx_error_set(MX_ERR_FORMAT, "%s: %g bins where the manifest has %zu", path, bins, r->bins);
    const cJSON *modes = get(j, "modes");
    if (st == MX_OK && !cJSON_IsObject(modes))
        st = mx_error_set(MX_ERR_FORMAT, "%s: \"modes\" is %s", path, modes ? "not an object" : "missing");
    for (int k = 0; st == MX_OK && k < MXR_MODES; k++) {
        const cJSON *m = get(modes, mxr_mode_names[k]);
        if (m) st = read_mode(path, mxr_mode_names[k], m, r->bins, &run->modes[k]);
    }
    /* A run without a rescaled prediction says why (optional: older files lack it). */
    if (st == MX_OK && get(j, "rescaled")) st = get_string(path, "", j, "rescaled", &run->rescaled_note);
    if (st == MX_OK && strlen(run->rescaled_note ? run->rescaled_note : "") > MAX_NAME)
        st = mx_error_set(MX_ERR_FORMAT, "%s: \"rescaled\" is longer than %d characters", path, MAX_NAME);
    if (st == MX_OK) run->done = 1;
    cJSON_Delete(j);
    return st;
}

/* ---- aggregation --------------------------------------------------------- */

/* Mean and sample std of v[0..n); NaN if any value is NaN. */
static mxr_stat stat_of(const double *v, size_t n)
{
    mxr_stat s = {NAN, NAN};
    if (n == 0) return s;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    s.mean = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = n > 1 ? sqrt(ss / (double)(n - 1)) : (isnan(s.mean) ? NAN : 0.0);
    return s;
}

/* One field (at `offset` in mxr_mode) of mode k over the group's runs that have it. */
static mxr_stat field_stat(const mxr_report *r, const char *group, int k, size_t offset, double *v, size_t *n)
{
    size_t c = 0;
    for (size_t i = 0; i < r->nruns; i++) {
        const mxr_mode *m = &r->runs[i].modes[k];
        if (m->present && !strcmp(r->runs[i].group, group)) v[c++] = *(const double *)((const char *)m + offset);
    }
    *n = c;
    return stat_of(v, c);
}

/* Whether a run's reliability data can be pooled: finite wherever there are samples. */
static int finite_bins(const mxr_mode *m, size_t bins)
{
    for (size_t b = 0; b < bins; b++)
        if (m->count[b] && !(isfinite(m->conf[b]) && isfinite(m->acc[b]))) return 0;
    return 1;
}

static mx_status aggregate(mxr_report *r)
{
    double *v = malloc((r->nruns ? r->nruns : 1) * sizeof *v);
    if (!v) return mx_error_set(MX_ERR_NOMEM, "out of memory aggregating the runs");
    for (size_t g = 0; g < r->ngroups; g++) {
        mxr_group *grp = &r->groups[g];
        for (size_t i = 0; i < r->nruns; i++)
            grp->done += r->runs[i].done && !strcmp(r->runs[i].group, grp->name);
        for (int k = 0; k < MXR_MODES; k++) {
            mxr_agg *a = &grp->modes[k];
            size_t n = 0;
            a->accuracy = field_stat(r, grp->name, k, offsetof(mxr_mode, accuracy), v, &n);
            a->nll = field_stat(r, grp->name, k, offsetof(mxr_mode, nll), v, &n);
            a->ece = field_stat(r, grp->name, k, offsetof(mxr_mode, ece), v, &n);
            a->ece_adaptive = field_stat(r, grp->name, k, offsetof(mxr_mode, ece_adaptive), v, &n);
            a->brier = field_stat(r, grp->name, k, offsetof(mxr_mode, brier), v, &n);
            a->temperature = field_stat(r, grp->name, k, offsetof(mxr_mode, temperature), v, &n);
            a->seeds = n;
            if (!n) continue;
            a->conf = calloc(r->bins, sizeof *a->conf);
            a->acc = calloc(r->bins, sizeof *a->acc);
            a->count = calloc(r->bins, sizeof *a->count);
            if (!a->conf || !a->acc || !a->count) {
                free(v);
                return mx_error_set(MX_ERR_NOMEM, "out of memory aggregating the runs");
            }
            for (size_t i = 0; i < r->nruns; i++) {
                const mxr_mode *rm = &r->runs[i].modes[k];
                if (!rm->present || strcmp(r->runs[i].group, grp->name) != 0 || !finite_bins(rm, r->bins)) continue;
                for (size_t b = 0; b < r->bins; b++) {
                    if (!rm->count[b]) continue;
                    a->conf[b] += rm->conf[b] * (double)rm->count[b];
                    a->acc[b] += rm->acc[b] * (double)rm->count[b];
                    a->count[b] += rm->count[b];
                }
            }
            for (size_t b = 0; b < r->bins; b++) {
                a->total += a->count[b];
                if (a->count[b]) {
                    a->conf[b] /= (double)a->count[b];
                    a->acc[b] /= (double)a->count[b];
                } else {
                    a->conf[b] = ((double)b + 0.5) / (double)r->bins;
                    a->acc[b] = 0;
                }
            }
        }
        int rows = 0, best = -1;
        for (int k = 0; k < MXR_MODES; k++) {
            if (!grp->modes[k].seeds) continue;
            rows++;
            if (isfinite(grp->modes[k].ece.mean) && (best < 0 || grp->modes[k].ece.mean < grp->modes[best].ece.mean))
                best = k;
        }
        grp->best = rows >= 2 ? best : -1;
    }
    free(v);
    return MX_OK;
}

static void free_report(mxr_report *r)
{
    for (size_t i = 0; i < r->nruns; i++) {
        mxr_run *run = &r->runs[i];
        for (int k = 0; k < MXR_MODES; k++) {
            free(run->modes[k].conf);
            free(run->modes[k].acc);
            free(run->modes[k].count);
        }
        free(run->name);
        free(run->rescaled_note);
        free(run->method);
        free(run->group);
    }
    for (size_t g = 0; g < r->ngroups; g++) {
        for (int k = 0; k < MXR_MODES; k++) {
            free(r->groups[g].modes[k].conf);
            free(r->groups[g].modes[k].acc);
            free(r->groups[g].modes[k].count);
        }
        free(r->groups[g].slug);
    }
    free(r->runs);
    free(r->groups);
    free(r->figures);
    free(r->experiment);
    free(r->source);
}

mx_status mx_experiment_report(const char *out_dir)
{
    if (!out_dir || !*out_dir) return mx_error_set(MX_ERR_ARG, "experiment report: no output folder given");
    mxr_report r = {0};
    r.out_dir = out_dir;
    mx_status st = read_manifest(&r);
    for (size_t i = 0; st == MX_OK && i < r.nruns; i++) {
        st = read_eval(&r, &r.runs[i]);
        if (st == MX_OK) st = mxr_read_analysis(&r, &r.runs[i]);
        r.done += r.runs[i].done;
    }
    if (st == MX_OK) st = aggregate(&r);
    if (st == MX_OK) st = mxr_write_tables(&r);
    if (st == MX_OK) st = mxr_write_figures(&r);
    if (st == MX_OK) st = mxr_write_html(&r);
    free_report(&r);
    mx_plot_release_caches();
    return st;
}
