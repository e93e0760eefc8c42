/* The analysis part of an experiment's report: RUN_DIR/analysis.json (what
 * `mixreg analyze --json` prints, written for the runs `analyze-seeds`
 * names) read per run, then mean ± sample std over each group's analysed
 * seeds in table.md and analysis.csv, so the Jacobian statistics come with
 * their seed-to-seed spread. Reading is strict, as for eval.json. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "experiment/report_internal.h"
#include "mixreg/fileio.h"

#define ANALYSIS_MAX_BYTES (1u << 20)

const char *const mxr_analysis_keys[MXR_ANALYSIS_FIELDS] = {
    "jacobian_fro_mean", "jacobian_fro_max", "softmax_jacobian_fro_mean", "softmax_jacobian_fro_max",
    "lipschitz_mean",    "lipschitz_max",    "confidence_mean",           "jacobian_term",
    "cross_term",
};

static const char *const column_names[MXR_ANALYSIS_FIELDS] = {
    "‖J‖_F mean", "‖J‖_F max", "‖HJ‖_F mean", "‖HJ‖_F max", "Lipschitz mean", "Lipschitz max",
    "confidence", "Jacobian term", "cross term",
};

mx_status mxr_read_analysis(const mxr_report *r, mxr_run *run)
{
    char path[MXR_PATH];
    if (snprintf(path, sizeof path, "%s/runs/%s/analysis.json", r->out_dir, run->name) >= (int)sizeof path)
        return mx_error_set(MX_ERR_ARG, "%s/runs/%s: path too long", r->out_dir, run->name);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return MX_OK; /* not analysed */
        return mx_error_set(MX_ERR_IO, "%s: %s", path, strerror(errno));
    }
    char *text = NULL;
    size_t size = 0;
    mx_status st = mx_file_read_all(path, ANALYSIS_MAX_BYTES, &text, &size);
    if (st != MX_OK) return st;
    cJSON *j = cJSON_ParseWithLength(text, size);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return mx_error_set(MX_ERR_FORMAT, "%s: not a JSON object", path);
    }
    for (int k = 0; st == MX_OK && k < MXR_ANALYSIS_FIELDS; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, mxr_analysis_keys[k]);
        /* null: not finite (a diverged model), as the analysis writes it. */
        if (cJSON_IsNull(x)) run->analysis[k] = NAN;
        else if (cJSON_IsNumber(x) && isfinite(x->valuedouble)) run->analysis[k] = x->valuedouble;
        else st = mx_error_set(MX_ERR_FORMAT, "%s: \"%s\" %s", path, mxr_analysis_keys[k], x ? "is not a number" : "is missing");
    }
    cJSON_Delete(j);
    if (st == MX_OK) run->analyzed = 1;
    return st;
}

/* Field k over the group's analysed runs: mean and sample std (NaN if a value is). */
static mxr_stat group_stat(const mxr_report *r, const char *group, int k, size_t *n)
{
    mxr_stat s = {NAN, NAN};
    double sum = 0, ss = 0;
    size_t c = 0;
    for (size_t i = 0; i < r->nruns; i++)
        if (r->runs[i].analyzed && !strcmp(r->runs[i].group, group)) sum += r->runs[i].analysis[k], c++;
    *n = c;
    if (!c) return s;
    s.mean = sum / (double)c;
    for (size_t i = 0; i < r->nruns; i++)
        if (r->runs[i].analyzed && !strcmp(r->runs[i].group, group))
            ss += (r->runs[i].analysis[k] - s.mean) * (r->runs[i].analysis[k] - s.mean);
    s.std = c > 1 ? sqrt(ss / (double)(c - 1)) : (isnan(s.mean) ? NAN : 0.0);
    return s;
}

static int any_analyzed(const mxr_report *r)
{
    for (size_t i = 0; i < r->nruns; i++)
        if (r->runs[i].analyzed) return 1;
    return 0;
}

void mxr_analysis_markdown(mxr_buf *b, const mxr_report *r)
{
    if (!any_analyzed(r)) return;
    mxr_buf_puts(b, "\n## Analysis (`mixreg analyze`, plain f at the test inputs)\n\n| group | seeds |");
    for (int k = 0; k < MXR_ANALYSIS_FIELDS; k++) mxr_buf_printf(b, " %s |", column_names[k]);
    mxr_buf_puts(b, "\n| --- | ---: |");
    for (int k = 0; k < MXR_ANALYSIS_FIELDS; k++) mxr_buf_puts(b, " ---: |");
    mxr_buf_puts(b, "\n");
    for (size_t g = 0; g < r->ngroups; g++) {
        size_t n = 0;
        group_stat(r, r->groups[g].name, 0, &n);
        if (!n) continue;
        mxr_buf_puts(b, "| ");
        for (const char *c = r->groups[g].name; *c; c++) {
            if (*c == '|') mxr_buf_puts(b, "\\|");
            else mxr_buf_add(b, c, 1);
        }
        mxr_buf_printf(b, " | %zu |", n);
        for (int k = 0; k < MXR_ANALYSIS_FIELDS; k++) {
            mxr_stat s = group_stat(r, r->groups[g].name, k, &n);
            if (isfinite(s.mean)) mxr_buf_printf(b, " %.4g \xc2\xb1 %.2g |", s.mean, s.std);
            else mxr_buf_puts(b, " \xe2\x80\x94 |");
        }
        mxr_buf_puts(b, "\n");
    }
    mxr_buf_puts(b, "\nMean \xc2\xb1 sample standard deviation over the analysed seeds of each group (J the "
                    "input-Jacobian of the logits, HJ of the softmax; max: the largest over the test samples of one "
                    "run); analysis.csv has the same.\n");
}

mx_status mxr_write_analysis_csv(const mxr_report *r)
{
    if (!any_analyzed(r)) return MX_OK;
    mxr_buf b = {0};
    mxr_buf_puts(&b, "group,seeds");
    for (int k = 0; k < MXR_ANALYSIS_FIELDS; k++) mxr_buf_printf(&b, ",%s_mean,%s_std", mxr_analysis_keys[k], mxr_analysis_keys[k]);
    mxr_buf_puts(&b, "\n");
    for (size_t g = 0; g < r->ngroups; g++) {
        size_t n = 0;
        group_stat(r, r->groups[g].name, 0, &n);
        if (!n) continue;
        /* Quoted, a quote doubled: group names may hold commas. */
        mxr_buf_puts(&b, "\"");
        for (const char *c = r->groups[g].name; *c; c++) {
            if (*c == '"') mxr_buf_puts(&b, "\"");
            mxr_buf_add(&b, c, 1);
        }
        mxr_buf_printf(&b, "\",%zu", n);
        for (int k = 0; k < MXR_ANALYSIS_FIELDS; k++) {
            mxr_stat s = group_stat(r, r->groups[g].name, k, &n);
            if (isfinite(s.mean)) mxr_buf_printf(&b, ",%.12g,%.12g", s.mean, s.std);
            else mxr_buf_puts(&b, ",,");
        }
        mxr_buf_puts(&b, "\n");
    }
    return mxr_buf_write(&b, r->out_dir, "analysis.csv");
}
