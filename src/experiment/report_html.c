/* report.html: one self-contained page (inline CSS, the figures as base64
 * data URIs, nothing fetched from elsewhere) with the summary table, the
 * figures, the pending runs and the experiment file. */
#include <stdlib.h>

#include "experiment/report_internal.h"
#include "mixreg/fileio.h"

#define FIGURE_MAX_BYTES (64u << 20)

static const char style[] =
    "body{font-family:sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}"
    "table{border-collapse:collapse;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
    "th{background:#eee}.l{text-align:left}.best{font-weight:bold}"
    "tr.group td{border-top:2px solid #888}"
    "figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:14px}"
    "pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}";

static void base64(mxr_buf *b, const unsigned char *p, size_t n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4 * 256];
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out[k++] = digits[v >> 18 & 63];
        out[k++] = digits[v >> 12 & 63];
        out[k++] = i + 1 < n ? digits[v >> 6 & 63] : '=';
        out[k++] = i + 2 < n ? digits[v & 63] : '=';
        if (k == sizeof out) {
            mxr_buf_add(b, out, k);
            k = 0;
        }
    }
    mxr_buf_add(b, out, k);
}

static void table(mxr_buf *b, const mxr_report *r)
{
    mxr_buf_puts(b, "<table>\n<tr><th class=\"l\">group</th><th class=\"l\">mode</th><th>seeds</th>");
    for (int c = 0; c < MXR_COLUMNS; c++) mxr_buf_printf(b, "<th>%s</th>", mxr_column_names[c]);
    mxr_buf_puts(b, "</tr>\n");
    for (size_t g = 0; g < r->ngroups; g++) {
        const mxr_group *grp = &r->groups[g];
        int first = 1;
        for (int k = 0; k < MXR_MODES; k++) {
            const mxr_agg *a = &grp->modes[k];
            if (!a->seeds) continue;
            const char *best = grp->best == k ? " best" : "";
            mxr_buf_printf(b, "<tr%s><td class=\"l\">", first ? " class=\"group\"" : "");
            mxr_buf_html(b, grp->name);
            mxr_buf_printf(b, "</td><td class=\"l%s\">%s</td><td>%zu</td>", best, mxr_mode_names[k], a->seeds);
            for (int c = 0; c < MXR_COLUMNS; c++) {
                char cell[128];
                mxr_format_cell(a, k, c, cell, sizeof cell);
                mxr_buf_printf(b, "<td%s>%s</td>", c == 2 && *best ? " class=\"best\"" : "", cell);
            }
            mxr_buf_puts(b, "</tr>\n");
            first = 0;
        }
    }
    mxr_buf_puts(b, "</table>\n<p>Mean &plusmn; sample standard deviation over seeds; accuracy and ECE in "
                    "percent; T the fitted temperature. Bold: the mode with the lowest ECE in its group.</p>\n");
}

static mx_status figures(mxr_buf *b, const mxr_report *r)
{
    if (!r->nfigures) return MX_OK;
    mxr_buf_puts(b, "<h2>Figures</h2>\n");
    for (size_t i = 0; i < r->nfigures; i++) {
        char path[MXR_PATH], *data = NULL;
        size_t size = 0;
        mx_status st = mxr_join(path, r->out_dir, r->figures[i].file);
        if (st == MX_OK) st = mx_file_read_all(path, FIGURE_MAX_BYTES, &data, &size);
        if (st != MX_OK) return st;
        mxr_buf_puts(b, "<figure><img alt=\"");
        mxr_buf_html(b, r->figures[i].file);
        mxr_buf_puts(b, "\" src=\"data:image/png;base64,");
        base64(b, (const unsigned char *)data, size);
        mxr_buf_puts(b, "\"><figcaption>");
        mxr_buf_html(b, r->figures[i].caption);
        mxr_buf_puts(b, " (<code>");
        mxr_buf_html(b, r->figures[i].file);
        mxr_buf_puts(b, "</code>)</figcaption></figure>\n");
        free(data);
    }
    return MX_OK;
}

mx_status mxr_write_html(const mxr_report *r)
{
    mxr_buf b = {0};
    mxr_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<title>mixreg experiment: ");
    mxr_buf_html(&b, r->experiment);
    mxr_buf_printf(&b, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>Experiment: ", style);
    mxr_buf_html(&b, r->experiment);
    mxr_buf_printf(&b, "</h1>\n<p>Runs: %zu done, %zu pending (%zu in all).</p>\n<h2>Results</h2>\n", r->done,
                   r->nruns - r->done, r->nruns);
    if (r->done) table(&b, r);
    else mxr_buf_puts(&b, "<p>No results yet.</p>\n");
    mx_status st = figures(&b, r);
    if (st != MX_OK) {
        free(b.data);
        return st;
    }
    mxr_buf_puts(&b, "<h2>Pending runs</h2>\n");
    if (r->done == r->nruns) mxr_buf_puts(&b, "<p>None.</p>\n");
    else {
        mxr_buf_puts(&b, "<ul>\n");
        for (size_t i = 0; i < r->nruns; i++)
            if (!r->runs[i].done) {
                mxr_buf_puts(&b, "<li><code>");
                mxr_buf_html(&b, r->runs[i].name);
                mxr_buf_puts(&b, "</code></li>\n");
            }
        mxr_buf_puts(&b, "</ul>\n");
    }
    mxr_buf_puts(&b, "<h2>Experiment file</h2>\n<pre>");
    mxr_buf_html(&b, r->source);
    mxr_buf_puts(&b, "</pre>\n</body>\n</html>\n");
    return mxr_buf_write(&b, r->out_dir, "report.html");
}
