/* mx_experiment_report on a synthetic experiment: three groups (ERM with two
 * seeds done and one pending, Mixup alpha = 0.2 with three seeds, Mixup
 * alpha = 1 with one), eval.json files with known numbers. Checks the CSV
 * against means and sample standard deviations worked out by hand, the
 * Markdown cells, the figures, the self-contained HTML (its first image
 * decoded back), the pending run finished later, and the errors. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mixreg/error.h"
#include "mixreg/experiment_report.h"
#include "mixreg/fileio.h"
#include "test_tmp.h"

#define BINS 5

static const char *path_in(const char *dir, const char *name)
{
    static char path[8][8192];
    static int next = 0;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

static char *read_text(const char *path)
{
    char *data = NULL;
    size_t size = 0;
    if (mx_file_read_all(path, 1 << 26, &data, &size) != MX_OK) {
        fprintf(stderr, "cannot read %s: %s\n", path, mx_error_message());
        return NULL;
    }
    return data;
}

static void write_json(const char *path, cJSON *j)
{
    char *text = cJSON_Print(j);
    CHECK_OK(mx_file_write_atomic(path, text, strlen(text)));
    free(text);
    cJSON_Delete(j);
}

static void write_text(const char *path, const char *text) { CHECK_OK(mx_file_write_atomic(path, text, strlen(text))); }

/* ---- the synthetic experiment -------------------------------------------- */

typedef struct {
    const char *name, *method, *group;
    double alpha;
    int seed;
    int modes;          /* bit k: mode k present */
    double acc, nll, ece, brier, temperature;
    int adaptive_null;  /* plain mode's ece_adaptive is null */
} run_spec;

static const char *const mode_names[4] = {"plain", "rescaled", "temperature", "rescaled+temperature"};
/* Mode k's ECE is the plain ECE times this; its accuracy plain + 0.001 k. */
static const double ece_factor[4] = {1.0, 0.5, 0.25, 0.2};

static const run_spec runs[] = {
    {"erm_seed=0", "erm", "erm", 0, 0, 0x5, 0.88, 0.40, 0.05, 0.18, 1.5, 0},
    {"erm_seed=1", "erm", "erm", 0, 1, 0x5, 0.89, 0.42, 0.07, 0.19, 1.7, 1},
    {"erm_seed=2", "erm", "erm", 0, 2, 0x5, 0.87, 0.41, 0.06, 0.185, 1.6, 0}, /* pending at first */
    {"mixup_alpha=0.2_seed=0", "mixup", "mixup alpha=0.2", 0.2, 0, 0xf, 0.90, 0.30, 0.02, 0.15, 1.1, 0},
    {"mixup_alpha=0.2_seed=1", "mixup", "mixup alpha=0.2", 0.2, 1, 0xf, 0.91, 0.32, 0.03, 0.16, 1.2, 0},
    {"mixup_alpha=0.2_seed=2", "mixup", "mixup alpha=0.2", 0.2, 2, 0xf, 0.92, 0.34, 0.04, 0.17, 1.3, 0},
    {"mixup_alpha=1_seed=0", "mixup", "mixup alpha=1", 1, 0, 0x3, 0.93, 0.25, 0.03, 0.12, 1.0, 0},
};
#define NRUNS (sizeof runs / sizeof runs[0])
#define PENDING 2

static const char source_text[] = "# paper-fmnist\n[mixup]\nalpha = [0.2, 1]  # a < b & \"c\"\n";

static void write_manifest(const char *dir)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "experiment", "paper-fmnist");
    cJSON_AddStringToObject(m, "source", source_text);
    cJSON_AddNumberToObject(m, "bins", BINS);
    cJSON *list = cJSON_AddArrayToObject(m, "runs");
    for (size_t i = 0; i < NRUNS; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", runs[i].name);
        cJSON_AddStringToObject(r, "method", runs[i].method);
        cJSON_AddStringToObject(r, "group", runs[i].group);
        cJSON_AddNumberToObject(r, "alpha", runs[i].alpha);
        cJSON_AddNumberToObject(r, "seed", runs[i].seed);
        cJSON_AddItemToArray(list, r);
    }
    write_json(path_in(dir, "manifest.json"), m);
}

static cJSON *mode_json(const run_spec *s, int k)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "accuracy", s->acc + 0.001 * k);
    if (k == 0) cJSON_AddNumberToObject(m, "top5", 0.99);
    cJSON_AddNumberToObject(m, "nll", s->nll - 0.01 * k);
    cJSON_AddNumberToObject(m, "ece", s->ece * ece_factor[k]);
    if (k == 0 && s->adaptive_null) cJSON_AddNullToObject(m, "ece_adaptive");
    else cJSON_AddNumberToObject(m, "ece_adaptive", s->ece * ece_factor[k] + 0.001);
    cJSON_AddNumberToObject(m, "mce", 0.1);
    cJSON_AddNumberToObject(m, "brier", s->brier);
    cJSON_AddNumberToObject(m, "n", 100);
    cJSON_AddNumberToObject(m, "temperature", k >= 2 ? s->temperature : 1.0);
    cJSON *rel = cJSON_AddObjectToObject(m, "reliability");
    double conf[BINS], acc[BINS], count[BINS] = {0, 5, 10, 25, 60};
    for (int b = 0; b < BINS; b++) {
        conf[b] = count[b] ? (b + 0.6) / BINS : 0;
        acc[b] = count[b] ? (b + 0.3 + 0.1 * k) / BINS : 0;
    }
    cJSON_AddItemToObject(rel, "confidence", cJSON_CreateDoubleArray(conf, BINS));
    cJSON_AddItemToObject(rel, "accuracy", cJSON_CreateDoubleArray(acc, BINS));
    cJSON_AddItemToObject(rel, "count", cJSON_CreateDoubleArray(count, BINS));
    return m;
}

static cJSON *eval_json(const run_spec *s)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "bins", BINS);
    cJSON_AddNumberToObject(e, "n", 100);
    cJSON_AddNumberToObject(e, "theta_bar", 0.75);
    cJSON *modes = cJSON_AddObjectToObject(e, "modes");
    for (int k = 0; k < 4; k++)
        if (s->modes >> k & 1) cJSON_AddItemToObject(modes, mode_names[k], mode_json(s, k));
    cJSON *fit = cJSON_AddObjectToObject(e, "temperature_fit");
    cJSON_AddNumberToObject(fit, "n", 60);
    cJSON_AddFalseToObject(fit, "seen_in_training");
    return e;
}

static void write_eval_json(const char *dir, const char *name, cJSON *e)
{
    char run_dir[4400];
    snprintf(run_dir, sizeof run_dir, "%s/runs/%s", dir, name);
    CHECK_OK(mx_make_dirs(run_dir));
    write_json(path_in(run_dir, "eval.json"), e);
}

static void write_eval(const char *dir, const run_spec *s) { write_eval_json(dir, s->name, eval_json(s)); }

static void make_experiment(const char *dir)
{
    CHECK_OK(mx_make_dirs(dir));
    write_manifest(dir);
    for (size_t i = 0; i < NRUNS; i++)
        if (i != PENDING) write_eval(dir, &runs[i]);
}

/* ---- reading the CSV ----------------------------------------------------- */

#define CSV_COLUMNS 16
typedef struct {
    char field[CSV_COLUMNS][128];
} csv_row;

/* Splits plain (unquoted) CSV; returns the number of data rows. */
static size_t parse_csv(const char *text, csv_row *rows, size_t cap, int *header_ok)
{
    static const char header[] = "group,method,alpha,mode,seeds,accuracy_mean,accuracy_std,nll_mean,nll_std,"
                                 "ece_mean,ece_std,ece_adaptive_mean,ece_adaptive_std,brier_mean,brier_std,"
                                 "temperature_mean\n";
    *header_ok = strncmp(text, header, strlen(header)) == 0;
    const char *p = strchr(text, '\n');
    size_t n = 0;
    while (p && p[1] && n < cap) {
        p++;
        const char *end = strchr(p, '\n');
        if (!end) end = p + strlen(p);
        int f = 0;
        size_t len = 0;
        memset(&rows[n], 0, sizeof rows[n]);
        for (const char *q = p; q < end; q++) {
            if (*q == ',') {
                if (++f >= CSV_COLUMNS) break;
                len = 0;
            } else if (len + 1 < sizeof rows[n].field[f]) {
                rows[n].field[f][len++] = *q;
            }
        }
        CHECK(f == CSV_COLUMNS - 1);
        n++;
        p = *end ? end : NULL;
    }
    return n;
}

static const csv_row *find_row(const csv_row *rows, size_t n, const char *group, const char *mode)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].field[0], group) && !strcmp(rows[i].field[3], mode)) return &rows[i];
    fprintf(stderr, "no CSV row for %s / %s\n", group, mode);
    return NULL;
}

static double num(const csv_row *r, int f) { return r ? strtod(r->field[f], NULL) : NAN; }

/* mean, std of accuracy, nll, ece, ece_adaptive, brier; then temperature mean. */
static void check_row(const csv_row *r, const char *method, double alpha, int seeds, const double want[11])
{
    CHECK(r != NULL);
    if (!r) return;
    CHECK(!strcmp(r->field[1], method));
    CHECK_NEAR(num(r, 2), alpha, 1e-12);
    CHECK(atoi(r->field[4]) == seeds);
    for (int i = 0; i < 11; i++) {
        if (isnan(want[i])) {
            CHECK(r->field[5 + i][0] == '\0');
            continue;
        }
        CHECK(r->field[5 + i][0] != '\0');
        CHECK_NEAR(num(r, 5 + i), want[i], 1e-9);
    }
}

/* ---- base64 -------------------------------------------------------------- */

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes up to the first '"'; returns the byte count or -1. */
static long b64_decode(const char *s, unsigned char *out, size_t cap)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *s && *s != '"'; s++) {
        if (*s == '=') continue;
        int v = b64_value(*s);
        if (v < 0) return -1;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap) return -1;
            out[n++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    return (long)n;
}

/* ---- the checks ---------------------------------------------------------- */

static void check_png_file(const char *path)
{
    char *data = NULL;
    size_t size = 0;
    CHECK_OK(mx_file_read_all(path, 1 << 26, &data, &size));
    CHECK(data && size > 1000 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0);
    free(data);
}

static void test_report(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/exp", g_tmp);
    make_experiment(dir);
    CHECK_OK(mx_experiment_report(dir));

    /* table.csv */
    char *csv = read_text(path_in(dir, "table.csv"));
    csv_row rows[16];
    int header_ok = 0;
    size_t n = csv ? parse_csv(csv, rows, 16, &header_ok) : 0;
    CHECK(header_ok);
    CHECK(n == 2 + 4 + 2); /* erm: plain, temperature; alpha 0.2: all four; alpha 1: two */
    if (n == 8) {
        CHECK(!strcmp(rows[0].field[0], "erm") && !strcmp(rows[0].field[3], "plain"));
        CHECK(!strcmp(rows[1].field[0], "erm") && !strcmp(rows[1].field[3], "temperature"));
        CHECK(!strcmp(rows[2].field[0], "mixup alpha=0.2") && !strcmp(rows[2].field[3], "plain"));
        CHECK(!strcmp(rows[5].field[3], "rescaled+temperature"));
        CHECK(!strcmp(rows[6].field[0], "mixup alpha=1") && !strcmp(rows[7].field[3], "rescaled"));
    }
    /* ERM plain, seeds 0.88/0.89 etc.: std of two values a, b is |a - b| / sqrt 2;
     * ece_adaptive has a null, so it has no mean. */
    const double s2 = sqrt(2.0);
    const double erm_plain[] = {0.885, 0.01 / s2, 0.41, 0.02 / s2, 0.06, 0.02 / s2, NAN, NAN, 0.185, 0.01 / s2, 1.0};
    check_row(find_row(rows, n, "erm", "plain"), "erm", 0, 2, erm_plain);
    /* ERM temperature (mode 2): accuracy + 0.002, nll - 0.02, ECE x 0.25, T 1.5 / 1.7. */
    const double erm_temp[] = {0.887, 0.01 / s2, 0.39, 0.02 / s2, 0.015, 0.005 / s2, 0.016, 0.005 / s2, 0.185,
                               0.01 / s2, 1.6};
    check_row(find_row(rows, n, "erm", "temperature"), "erm", 0, 2, erm_temp);
    /* Mixup 0.2, three seeds in steps: the std of x, x + d, x + 2d is d. */
    const double mix_plain[] = {0.91, 0.01, 0.32, 0.02, 0.03, 0.01, 0.031, 0.01, 0.16, 0.01, 1.0};
    check_row(find_row(rows, n, "mixup alpha=0.2", "plain"), "mixup", 0.2, 3, mix_plain);
    const double mix_rt[] = {0.913, 0.01, 0.29, 0.02, 0.006, 0.002, 0.007, 0.002, 0.16, 0.01, 1.2};
    check_row(find_row(rows, n, "mixup alpha=0.2", "rescaled+temperature"), "mixup", 0.2, 3, mix_rt);
    /* One seed: std 0. */
    const double one_resc[] = {0.931, 0, 0.24, 0, 0.015, 0, 0.016, 0, 0.12, 0, 1.0};
    check_row(find_row(rows, n, "mixup alpha=1", "rescaled"), "mixup", 1, 1, one_resc);
    free(csv);

    /* table.md */
    char *md = read_text(path_in(dir, "table.md"));
    CHECK(md && strstr(md, "Runs: 6 done, 1 pending (7 in all).") != NULL);
    CHECK(md && strstr(md, "| group | mode | seeds | accuracy (%) | NLL | ECE (%) | Brier | T |\n") != NULL);
    CHECK(md && strstr(md, "| mixup alpha=0.2 | plain | 3 | 91.00 \xc2\xb1 1.00 | 0.3200 \xc2\xb1 0.0200 | "
                           "3.00 \xc2\xb1 1.00 | 0.1600 \xc2\xb1 0.0100 | \xe2\x80\x94 |\n") != NULL);
    CHECK(md && strstr(md, "| erm | plain | 2 | 88.50 \xc2\xb1 0.71 | 0.4100 \xc2\xb1 0.0141 | 6.00 \xc2\xb1 1.41 | "
                           "0.1850 \xc2\xb1 0.0071 |") != NULL);
    /* The best mode by ECE in bold: temperature for ERM, rescaled+temperature for alpha 0.2, rescaled for alpha 1. */
    CHECK(md && strstr(md, "| erm | **temperature** | 2 | 88.70 \xc2\xb1 0.71 | 0.3900 \xc2\xb1 0.0141 | "
                           "**1.50 \xc2\xb1 0.35** | 0.1850 \xc2\xb1 0.0071 | 1.600 \xc2\xb1 0.141 |\n") != NULL);
    CHECK(md && strstr(md, "| mixup alpha=0.2 | **rescaled+temperature** | 3 |") != NULL);
    CHECK(md && strstr(md, "| mixup alpha=1 | **rescaled** | 1 | 93.10 \xc2\xb1 0.00 |") != NULL);
    CHECK(md && strstr(md, "| mixup alpha=1 | plain |") != NULL);
    CHECK(md && strstr(md, "`erm_seed=2`") != NULL);
    free(md);

    /* figures */
    const char *figures[] = {"alpha.png", "confidence.png", "reliability-erm.png", "reliability-mixup-alpha-0.2.png",
                             "reliability-mixup-alpha-1.png"};
    for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++) {
        char fig[4400];
        snprintf(fig, sizeof fig, "%s/figures/%s", dir, figures[i]);
        check_png_file(fig);
    }

    /* report.html */
    char *html = read_text(path_in(dir, "report.html"));
    CHECK(html && strstr(html, "<!DOCTYPE html>") == html);
    CHECK(html && strstr(html, "data:image/png;base64,") != NULL);
    CHECK(html && strstr(html, "src=\"http") == NULL && strstr(html, "href=") == NULL);
    CHECK(html && strstr(html, "<link") == NULL && strstr(html, "<script") == NULL);
    CHECK(html && strstr(html, "Runs: 6 done, 1 pending (7 in all).") != NULL);
    CHECK(html && strstr(html, "alpha = [0.2, 1]  # a &lt; b &amp; &quot;c&quot;") != NULL);
    CHECK(html && strstr(html, "a < b") == NULL);
    CHECK(html && strstr(html, "<li><code>erm_seed=2</code></li>") != NULL);
    CHECK(html && strstr(html, "<td class=\"best\">1.50 \xc2\xb1 0.35</td>") != NULL);
    size_t images = 0;
    for (const char *p = html; p && (p = strstr(p, "data:image/png;base64,")); p++) images++;
    CHECK(images == 5);
    /* The first image is alpha.png, byte for byte. */
    const char *b64 = html ? strstr(html, "data:image/png;base64,") : NULL;
    char *png = NULL;
    size_t png_size = 0;
    char alpha_path[4400];
    snprintf(alpha_path, sizeof alpha_path, "%s/figures/alpha.png", dir);
    CHECK_OK(mx_file_read_all(alpha_path, 1 << 26, &png, &png_size));
    if (b64 && png) {
        unsigned char *decoded = malloc(png_size + 16);
        long got = b64_decode(b64 + strlen("data:image/png;base64,"), decoded, png_size + 16);
        CHECK(got == (long)png_size && memcmp(decoded, png, png_size) == 0);
        free(decoded);
    }
    free(png);
    free(html);

    /* The pending run finishes; the report is made again over the old one. */
    write_eval(dir, &runs[PENDING]);
    CHECK_OK(mx_experiment_report(dir));
    md = read_text(path_in(dir, "table.md"));
    CHECK(md && strstr(md, "Runs: 7 done, 0 pending (7 in all).") != NULL);
    CHECK(md && strstr(md, "Pending") == NULL);
    CHECK(md && strstr(md, "| erm | plain | 3 |") != NULL);
    free(md);
}

/* Methods with one alpha only: no alpha figure, the rest still comes out. A
 * diverged run (what is not finite written as null) shows as dashes. */
static void test_no_sweep(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/single", g_tmp);
    CHECK_OK(mx_make_dirs(dir));
    write_text(path_in(dir, "manifest.json"),
               "{\"experiment\": \"one\", \"source\": \"\", \"bins\": 5, \"runs\": ["
               "{\"name\": \"erm_seed=0\", \"method\": \"erm\", \"group\": \"erm\", \"alpha\": 0, \"seed\": 0},"
               "{\"name\": \"ls_seed=0\", \"method\": \"label-smoothing\", \"group\": \"ls | 0.1\", "
               "\"alpha\": 0, \"seed\": 0},"
               "{\"name\": \"wide\", \"method\": \"wide\", \"group\": \"diverged\", \"alpha\": 0, \"seed\": 0}]}");
    write_eval(dir, &runs[0]);
    cJSON *e = eval_json(&runs[0]);
    cJSON *plain = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "modes"), "plain");
    cJSON_ReplaceItemInObjectCaseSensitive(plain, "accuracy", cJSON_CreateNull());
    cJSON *rel = cJSON_GetObjectItemCaseSensitive(plain, "reliability");
    cJSON_ReplaceItemInArray(cJSON_GetObjectItemCaseSensitive(rel, "confidence"), 4, cJSON_CreateNull());
    write_eval_json(dir, "wide", e);
    CHECK_OK(mx_experiment_report(dir));
    char fig[4400];
    snprintf(fig, sizeof fig, "%s/figures/alpha.png", dir);
    CHECK(access(fig, F_OK) != 0);
    snprintf(fig, sizeof fig, "%s/figures/confidence.png", dir);
    check_png_file(fig);
    char *md = read_text(path_in(dir, "table.md"));
    CHECK(md && strstr(md, "Runs: 2 done, 1 pending (3 in all).") != NULL);
    CHECK(md && strstr(md, "`ls_seed=0`") != NULL);
    CHECK(md && strstr(md, "| diverged | plain | 1 | \xe2\x80\x94 | 0.4000 \xc2\xb1 0.0000 |") != NULL);
    CHECK(md && strstr(md, "| diverged | **temperature** |") != NULL);
    snprintf(fig, sizeof fig, "%s/figures/reliability-diverged.png", dir);
    check_png_file(fig); /* the temperature mode alone */
    free(md);

    /* Nothing done at all: tables and page all the same. */
    char empty[4200];
    snprintf(empty, sizeof empty, "%s/empty", g_tmp);
    CHECK_OK(mx_make_dirs(empty));
    write_text(path_in(empty, "manifest.json"),
               "{\"experiment\": \"none\", \"source\": \"x\", \"bins\": 15, \"runs\": ["
               "{\"name\": \"a\", \"method\": \"erm\", \"group\": \"erm\", \"alpha\": 0, \"seed\": 0}]}");
    CHECK_OK(mx_experiment_report(empty));
    char *html = read_text(path_in(empty, "report.html"));
    CHECK(html && strstr(html, "Runs: 0 done, 1 pending (1 in all).") != NULL);
    CHECK(html && strstr(html, "data:image/png") == NULL);
    free(html);
}

static void expect_format(const char *dir, const char *manifest, const char *eval, const char *file)
{
    CHECK_OK(mx_make_dirs(dir));
    write_text(path_in(dir, "manifest.json"), manifest);
    if (eval) {
        char run_dir[4400];
        snprintf(run_dir, sizeof run_dir, "%s/runs/a", dir);
        CHECK_OK(mx_make_dirs(run_dir));
        write_text(path_in(run_dir, "eval.json"), eval);
    }
    mx_status st = mx_experiment_report(dir);
    CHECK(st == MX_ERR_FORMAT);
    CHECK(strstr(mx_error_message(), file) != NULL);
    if (st != MX_ERR_FORMAT || !strstr(mx_error_message(), file))
        fprintf(stderr, "  for %s: status %d, message: %s\n", manifest, (int)st, mx_error_message());
}

static void test_errors(void)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/missing", g_tmp);
    CHECK_OK(mx_make_dirs(dir));
    CHECK(mx_experiment_report(dir) == MX_ERR_IO);
    CHECK(strstr(mx_error_message(), "manifest.json") != NULL);
    CHECK(mx_experiment_report(NULL) == MX_ERR_ARG);

    const char *run_a = "{\"name\": \"a\", \"method\": \"erm\", \"group\": \"erm\", \"alpha\": 0, \"seed\": 0}";
    char good[512];
    snprintf(good, sizeof good, "{\"experiment\": \"e\", \"source\": \"s\", \"bins\": 5, \"runs\": [%s]}", run_a);
    const char *bad_manifests[] = {
        "{\"experiment\": \"e\", \"source\": ",                                  /* truncated */
        "[1, 2]",                                                                 /* not an object */
        "{\"experiment\": \"e\", \"source\": \"s\", \"bins\": 5}",               /* no runs */
        "{\"experiment\": \"e\", \"source\": \"s\", \"bins\": 0, \"runs\": []}", /* bad bins */
        "{\"experiment\": 3, \"source\": \"s\", \"bins\": 5, \"runs\": []}",     /* not a string */
        "{\"experiment\": \"e\", \"source\": \"s\", \"bins\": 5, \"runs\": [{\"name\": \"../x\", \"method\": \"erm\", "
        "\"group\": \"erm\", \"alpha\": 0, \"seed\": 0}]}", /* a name that climbs out */
        "{\"experiment\": \"e\", \"source\": \"s\", \"bins\": 5, \"runs\": [{\"name\": \"a\", \"method\": \"erm\", "
        "\"group\": \"g\", \"alpha\": 0, \"seed\": 0}, {\"name\": \"b\", \"method\": \"mixup\", \"group\": \"g\", "
        "\"alpha\": 1, \"seed\": 1}]}", /* one group, two methods */
        "{\"experiment\": \"e\", \"source\": \"s\", \"bins\": 5, \"runs\": [{\"name\": \"a\", \"method\": \"erm\", "
        "\"group\": \"g\", \"alpha\": 0, \"seed\": 0}, {\"name\": \"a\", \"method\": \"erm\", \"group\": \"g\", "
        "\"alpha\": 0, \"seed\": 1}]}", /* a name twice */
        "{\"experiment\": \"e\", \"source\": \"s\", \"bins\": 5, \"runs\": [{\"name\": \"a\", \"group\": \"g\", "
        "\"alpha\": 0, \"seed\": 0}]}", /* no method */
    };
    for (size_t i = 0; i < sizeof bad_manifests / sizeof bad_manifests[0]; i++) {
        snprintf(dir, sizeof dir, "%s/bad-manifest-%zu", g_tmp, i);
        expect_format(dir, bad_manifests[i], NULL, "manifest.json");
    }
    const char *bad_evals[] = {
        "{\"bins\": 5, \"modes\": {\"plain\": ",      /* truncated */
        "{\"bins\": 15, \"modes\": {}}",               /* other bins */
        "{\"bins\": 5}",                               /* no modes */
        "{\"bins\": 5, \"modes\": {\"plain\": {\"accuracy\": 0.9}}}", /* no nll ... */
        "{\"bins\": 5, \"modes\": {\"plain\": {\"accuracy\": 0.9, \"nll\": 0.3, \"ece\": 0.02, \"brier\": 0.1, "
        "\"reliability\": {\"confidence\": [0, 0, 0, 0, 0], \"accuracy\": [0, 0, 0, 0, 0], \"count\": [1, 2, 3]}}}}",
        "{\"bins\": 5, \"modes\": {\"plain\": {\"accuracy\": 0.9, \"nll\": 0.3, \"ece\": 0.02, \"brier\": 0.1, "
        "\"reliability\": {\"confidence\": [0, 0, 0, 0, 0], \"accuracy\": [0, 0, 0, 0, 0], \"count\": [1, 2, 3, 4, "
        "-5]}}}}",
        "{\"bins\": 5, \"modes\": {\"rescaled\": {\"accuracy\": \"0.9\", \"nll\": 0.3, \"ece\": 0.02, "
        "\"brier\": 0.1}}}",
    };
    for (size_t i = 0; i < sizeof bad_evals / sizeof bad_evals[0]; i++) {
        snprintf(dir, sizeof dir, "%s/bad-eval-%zu", g_tmp, i);
        expect_format(dir, good, bad_evals[i], "runs/a/eval.json");
    }
    /* The message says what is wrong, where. */
    snprintf(dir, sizeof dir, "%s/bad-eval-3", g_tmp);
    CHECK(mx_experiment_report(dir) == MX_ERR_FORMAT);
    CHECK(strstr(mx_error_message(), "modes.plain") && strstr(mx_error_message(), "nll"));
}

int main(void)
{
    make_temp_root_for("experiment-report");
    test_report();
    test_no_sweep();
    test_errors();
    const char *keep = getenv("MIXREG_KEEP_PLOTS");
    if (keep && *keep && strcmp(keep, "0") != 0) printf("report kept in %s\n", g_tmp);
    else remove_tree(g_tmp);
    CHECK_DONE();
}
