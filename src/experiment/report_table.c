/* table.md and table.csv: one row per (group, mode) with results, in the
 * manifest's order of groups and the fixed order of modes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "experiment/report_internal.h"

const char *const mxr_column_names[MXR_COLUMNS] = {"accuracy (%)", "NLL", "ECE (%)", "Brier", "T"};

#define NONE "\xe2\x80\x94" /* an em dash */

static void mean_std(mxr_stat s, double scale, int decimals, char *buf, size_t cap)
{
    if (!isfinite(s.mean)) snprintf(buf, cap, NONE);
    else snprintf(buf, cap, "%.*f \xc2\xb1 %.*f", decimals, s.mean * scale, decimals, s.std * scale);
}

void mxr_format_cell(const mxr_agg *a, int mode, int column, char *buf, size_t cap)
{
    switch (column) {
    case 0: mean_std(a->accuracy, 100, 2, buf, cap); break;
    case 1: mean_std(a->nll, 1, 4, buf, cap); break;
    case 2: mean_std(a->ece, 100, 2, buf, cap); break;
    case 3: mean_std(a->brier, 1, 4, buf, cap); break;
    default:
        if (strstr(mxr_mode_names[mode], "temperature")) mean_std(a->temperature, 1, 3, buf, cap);
        else snprintf(buf, cap, NONE);
    }
}

/* A Markdown table cell: '|' escaped, line breaks as spaces. */
static void md_text(mxr_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') mxr_buf_puts(b, "\\|");
        else if (*s == '\n' || *s == '\r') mxr_buf_puts(b, " ");
        else mxr_buf_add(b, s, 1);
    }
}

static void csv_text(mxr_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        mxr_buf_puts(b, s);
        return;
    }
    mxr_buf_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') mxr_buf_puts(b, "\""); /* "" inside quotes */
        mxr_buf_add(b, s, 1);
    }
    mxr_buf_puts(b, "\"");
}

static void csv_number(mxr_buf *b, double v)
{
    if (isfinite(v)) mxr_buf_printf(b, ",%.12g", v);
    else mxr_buf_puts(b, ",");
}

static void write_rows(mxr_buf *b, const mxr_report *r)
{
    mxr_buf_puts(b, "| group | mode | seeds |");
    for (int c = 0; c < MXR_COLUMNS; c++) mxr_buf_printf(b, " %s |", mxr_column_names[c]);
    mxr_buf_puts(b, "\n| --- | --- | ---: |");
    for (int c = 0; c < MXR_COLUMNS; c++) mxr_buf_puts(b, " ---: |");
    mxr_buf_puts(b, "\n");
    for (size_t g = 0; g < r->ngroups; g++) {
        const mxr_group *grp = &r->groups[g];
        for (int k = 0; k < MXR_MODES; k++) {
            const mxr_agg *a = &grp->modes[k];
            if (!a->seeds) continue;
            const char *bold = grp->best == k ? "**" : "";
            mxr_buf_puts(b, "| ");
            md_text(b, grp->name);
            mxr_buf_printf(b, " | %s%s%s | %zu |", bold, mxr_mode_names[k], bold, a->seeds);
            for (int c = 0; c < MXR_COLUMNS; c++) {
                char cell[128];
                mxr_format_cell(a, k, c, cell, sizeof cell);
                mxr_buf_printf(b, " %s%s%s |", c == 2 ? bold : "", cell, c == 2 ? bold : "");
            }
            mxr_buf_puts(b, "\n");
        }
        /* The rescaled prediction is not defined for some runs (CutMix, one-sided ablations): say so. */
        size_t undefined = 0;
        const char *note = NULL;
        for (size_t i = 0; i < r->nruns; i++)
            if (r->runs[i].done && r->runs[i].rescaled_note && !strcmp(r->runs[i].group, grp->name))
                undefined++, note = r->runs[i].rescaled_note;
        if (undefined) {
            mxr_buf_puts(b, "| ");
            md_text(b, grp->name);
            mxr_buf_printf(b, " | rescaled | %zu | ", undefined);
            md_text(b, note);
            mxr_buf_puts(b, " |");
            for (int c = 1; c < MXR_COLUMNS; c++) mxr_buf_puts(b, " " NONE " |");
            mxr_buf_puts(b, "\n");
        }
    }
    mxr_buf_puts(b, "\nMean \xc2\xb1 sample standard deviation over seeds; accuracy and ECE in percent; "
                     "T the fitted temperature. **Bold**: the mode with the lowest ECE in its group.\n");
}

static mx_status write_markdown(const mxr_report *r)
{
    mxr_buf b = {0};
    mxr_buf_puts(&b, "# Experiment: ");
    md_text(&b, r->experiment);
    mxr_buf_printf(&b, "\n\nRuns: %zu done, %zu pending (%zu in all).\n\n", r->done, r->nruns - r->done, r->nruns);
    if (!r->done) mxr_buf_puts(&b, "No results yet.\n");
    else write_rows(&b, r);
    mxr_analysis_markdown(&b, r);
    if (r->done < r->nruns) {
        mxr_buf_puts(&b, "\nPending runs:\n\n");
        for (size_t i = 0; i < r->nruns; i++)
            if (!r->runs[i].done) {
                mxr_buf_puts(&b, "- `");
                md_text(&b, r->runs[i].name);
                mxr_buf_puts(&b, "`\n");
            }
    }
    return mxr_buf_write(&b, r->out_dir, "table.md");
}

static mx_status write_csv(const mxr_report *r)
{
    mxr_buf b = {0};
    mxr_buf_puts(&b, "group,method,alpha,mode,seeds,accuracy_mean,accuracy_std,nll_mean,nll_std,ece_mean,ece_std,"
                     "ece_adaptive_mean,ece_adaptive_std,brier_mean,brier_std,temperature_mean\n");
    for (size_t g = 0; g < r->ngroups; g++) {
        const mxr_group *grp = &r->groups[g];
        for (int k = 0; k < MXR_MODES; k++) {
            const mxr_agg *a = &grp->modes[k];
            if (!a->seeds) continue;
            csv_text(&b, grp->name);
            mxr_buf_puts(&b, ",");
            csv_text(&b, grp->method);
            mxr_buf_printf(&b, ",%.12g,%s,%zu", grp->alpha, mxr_mode_names[k], a->seeds);
            const mxr_stat *s[] = {&a->accuracy, &a->nll, &a->ece, &a->ece_adaptive, &a->brier};
            for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
                csv_number(&b, s[i]->mean);
                csv_number(&b, s[i]->std);
            }
            csv_number(&b, a->temperature.mean);
            mxr_buf_puts(&b, "\n");
        }
    }
    return mxr_buf_write(&b, r->out_dir, "table.csv");
}

mx_status mxr_write_tables(const mxr_report *r)
{
    mx_status st = write_markdown(r);
    if (st == MX_OK) st = write_csv(r);
    if (st == MX_OK) st = mxr_write_analysis_csv(r);
    return st;
}
