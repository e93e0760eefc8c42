/* Shared between the parts of mx_experiment_report: the parsed experiment
 * (report.c), the tables (report_table.c), the figures (report_figures.c)
 * and the HTML page (report_html.c). */
#ifndef MIXREG_EXPERIMENT_REPORT_INTERNAL_H
#define MIXREG_EXPERIMENT_REPORT_INTERNAL_H

#include <stddef.h>

#include "mixreg/error.h"

#define MXR_MODES 4           /* plain, rescaled, temperature, rescaled+temperature */
#define MXR_PATH 4096

extern const char *const mxr_mode_names[MXR_MODES];

/* One mode of one run, as eval.json gives it. NaN for what is absent (or null). */
typedef struct {
    int present;
    double accuracy, nll, ece, ece_adaptive, brier, temperature;
    double *conf, *acc;       /* bins entries each */
    size_t *count;
} mxr_mode;

#define MXR_ANALYSIS_FIELDS 9  /* the analysis.json numbers the report aggregates (report_analysis.c) */
extern const char *const mxr_analysis_keys[MXR_ANALYSIS_FIELDS];

typedef struct {
    char *name, *method, *group;
    double alpha;
    int done;                 /* eval.json was there */
    mxr_mode modes[MXR_MODES];
    char *rescaled_note;      /* eval.json's "rescaled" text where that prediction is not defined; else NULL */
    int analyzed;             /* analysis.json was there */
    double analysis[MXR_ANALYSIS_FIELDS];
} mxr_run;

typedef struct {
    double mean, std;         /* std: sample (n - 1), 0 for one value; NaN if a value is missing */
} mxr_stat;

/* One (group, mode) over the group's seeds. */
typedef struct {
    size_t seeds;             /* runs of the group with this mode; 0: no row */
    mxr_stat accuracy, nll, ece, ece_adaptive, brier, temperature;
    double *conf, *acc;       /* pooled reliability: count-weighted means per bin */
    size_t *count;            /* summed counts */
    size_t total;             /* sum of count */
} mxr_agg;

typedef struct {
    char *name, *method, *slug;
    double alpha;
    size_t runs, done;
    mxr_agg modes[MXR_MODES];
    int best;                 /* mode with the lowest mean ECE when two or more have rows; else -1 */
} mxr_group;

typedef struct {
    char file[256];           /* relative to the output folder, e.g. "figures/alpha.png" */
    char caption[512];
} mxr_figure;

typedef struct {
    const char *out_dir;
    char *experiment, *source;
    size_t bins;
    mxr_run *runs;
    size_t nruns, done;
    mxr_group *groups;
    size_t ngroups;
    mxr_figure *figures;      /* written by mxr_write_figures */
    size_t nfigures;
} mxr_report;

/* A growing string; on a failed allocation it stops growing and sets oom. */
typedef struct {
    char *data;
    size_t len, cap;
    int oom;
} mxr_buf;

void mxr_buf_add(mxr_buf *b, const char *s, size_t n);
void mxr_buf_puts(mxr_buf *b, const char *s);
void mxr_buf_printf(mxr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* HTML-escapes s (& < > " '). */
void mxr_buf_html(mxr_buf *b, const char *s);
/* Writes the buffer to dir/name atomically and frees it (either way). */
mx_status mxr_buf_write(mxr_buf *b, const char *dir, const char *name);

/* "dir/name" into path (MXR_PATH bytes); MX_ERR_ARG if too long. */
mx_status mxr_join(char *path, const char *dir, const char *name);

/* The table's cells of one row: column 0 accuracy, 1 NLL, 2 ECE, 3 Brier, 4 T
 * ("mean ± std" with the table's precision; "—" where there is nothing). */
#define MXR_COLUMNS 5
extern const char *const mxr_column_names[MXR_COLUMNS];
void mxr_format_cell(const mxr_agg *a, int mode, int column, char *buf, size_t cap);

mx_status mxr_write_tables(const mxr_report *r);

/* RUN_DIR/analysis.json into run->analysis (absent: not analysed). */
mx_status mxr_read_analysis(const mxr_report *r, mxr_run *run);
/* The analysis table (nothing when no run was analysed), and analysis.csv. */
void mxr_analysis_markdown(mxr_buf *b, const mxr_report *r);
mx_status mxr_write_analysis_csv(const mxr_report *r);
mx_status mxr_write_figures(mxr_report *r);
mx_status mxr_write_html(const mxr_report *r);

#endif
