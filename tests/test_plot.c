/* Figures: PNG and SVG files of the requested size from line, point, bar and
 * log-x panels and from the reliability diagram; the errors (bad extension,
 * no data, unwritable place). Set MIXREG_KEEP_PLOTS=1 to keep the files and
 * look at them. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mixreg/fileio.h"
#include "mixreg/metrics.h"
#include "mixreg/plot.h"

static char dir[4096];

static void make_temp_dir(void)
{
    const char *base = getenv("MIXREG_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    CHECK_OK(mx_make_dirs(base));
    snprintf(dir, sizeof dir, "%s/plot-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror(dir);
        exit(1);
    }
}

static const char *in_dir(const char *name)
{
    static char path[4608];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A PNG of width x height: the signature, then IHDR first. */
static void check_png(const char *name, uint32_t width, uint32_t height)
{
    char *data = NULL;
    size_t size = 0;
    CHECK_OK(mx_file_read_all(in_dir(name), 1 << 26, &data, &size));
    const unsigned char *d = (const unsigned char *)data;
    CHECK(size > 33 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0);
    if (size > 33) {
        CHECK(memcmp(d + 12, "IHDR", 4) == 0);
        CHECK(be32(d + 16) == width);
        CHECK(be32(d + 20) == height);
    }
    CHECK(size > 2000); /* something was drawn: text and lines, not a blank page */
    free(data);
}

static void check_svg(const char *name, const char *size_attr)
{
    char *data = NULL;
    size_t size = 0;
    CHECK_OK(mx_file_read_all(in_dir(name), 1 << 26, &data, &size));
    CHECK(data && strncmp(data, "<?xml", 5) == 0);
    CHECK(data && strstr(data, "<svg") != NULL);
    CHECK(data && strstr(data, size_attr) != NULL);
    CHECK(data && strstr(data, "</svg>") != NULL);
    free(data);
}

/* Test accuracy against alpha for two models, with error bars, on a log x
 * axis; next to it a bar chart with two series side by side. */
static void test_figure(void)
{
    const double alpha[] = {0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};
    const double acc_plain[] = {0.892, 0.897, 0.901, 0.905, 0.904, 0.899, 0.890, 0.881};
    const double acc_rescaled[] = {0.893, 0.899, 0.904, 0.909, 0.910, 0.907, 0.901, 0.894};
    const double err[] = {0.002, 0.002, 0.003, 0.002, 0.003, 0.003, 0.004, 0.004};
    const double bins_x[] = {1, 2, 3, 4};
    const double ece_plain[] = {0.031, 0.024, 0.018, 0.045}, ece_rescaled[] = {0.012, 0.010, 0.011, 0.009};
    const double ece_err[] = {0.002, 0.003, 0.002, 0.004};
    mx_plot_series series[] = {
        {"plain", alpha, acc_plain, err, 8, MX_PLOT_LINE_POINTS},
        {"rescaled", alpha, acc_rescaled, err, 8, MX_PLOT_LINE_POINTS},
        {"plain", bins_x, ece_plain, ece_err, 4, MX_PLOT_BARS},
        {"rescaled", bins_x, ece_rescaled, NULL, 4, MX_PLOT_BARS},
    };
    mx_plot_axes axes[] = {
        {"Test accuracy against the Mixup alpha", "alpha", "accuracy", 0, 0, 0, 0, 1, 0},
        {"ECE by seed", "seed", "ECE", 0, 0, 0, 0, 0, 0},
    };
    const size_t counts[] = {2, 2};
    CHECK_OK(mx_plot_write(in_dir("figure.png"), 1100, 420, 2, axes, series, counts));
    check_png("figure.png", 1100, 420);
    CHECK_OK(mx_plot_write(in_dir("figure.svg"), 1100, 420, 2, axes, series, counts));
    check_svg("figure.svg", "width=\"1100");
    /* Upper-case extension, one panel, points only, a fixed range with the diagonal. */
    const double px[] = {0.1, 0.4, 0.8, 0.95}, py[] = {0.15, 0.3, 0.7, 0.99};
    mx_plot_series pts = {NULL, px, py, NULL, 4, MX_PLOT_POINTS};
    mx_plot_axes square = {NULL, NULL, NULL, 0, 1, 0, 1, 0, 1};
    const size_t one = 1;
    CHECK_OK(mx_plot_write(in_dir("points.PNG"), 300, 300, 1, &square, &pts, &one));
    check_png("points.PNG", 300, 300);
    /* A single point and non-finite values are fine (the latter skipped). */
    const double lx[] = {1, 2, NAN, 4}, ly[] = {1, INFINITY, 3, 4};
    mx_plot_series line = {"line", lx, ly, NULL, 4, MX_PLOT_LINE};
    mx_plot_axes plain_axes = {"t", "x", "y", 0, 0, 0, 0, 0, 0};
    CHECK_OK(mx_plot_write(in_dir("gaps.svg"), 400, 300, 1, &plain_axes, &line, &one));
    mx_plot_series single = {"one", lx, ly, NULL, 1, MX_PLOT_BARS};
    CHECK_OK(mx_plot_write(in_dir("single.png"), 400, 300, 1, &plain_axes, &single, &one));
}

/* Deterministic over-confident predictions for 10 classes. */
static void fill_overconfident(float *z, int32_t *labels, size_t n, double scale)
{
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        double p[10], sum = 0;
        for (size_t c = 0; c < 10; c++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double u1 = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double u2 = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
            double g = 1.6 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2) + (c == i % 10 ? 2.0 : 0.0);
            z[i * 10 + c] = (float)g;
            sum += p[c] = exp(g);
        }
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = ((double)(s >> 11) + 0.5) / 9007199254740992.0 * sum, cum = 0;
        labels[i] = 9;
        for (int c = 0; c < 10; c++)
            if ((cum += p[c]) > u) {
                labels[i] = c;
                break;
            }
        for (size_t c = 0; c < 10; c++) z[i * 10 + c] *= (float)scale;
    }
}

static void reliability_of(const float *z, const int32_t *labels, size_t n, double *conf, double *acc, size_t *count)
{
    mx_metrics_acc a;
    CHECK_OK(mx_metrics_init(&a, 15, 10));
    mx_metrics_add_logits(&a, z, labels, n);
    mx_metrics_reliability(&a, conf, acc, count);
    mx_metrics_free(&a);
}

static void test_reliability(void)
{
    enum { N = 4000 };
    float *z = malloc(N * 10 * sizeof *z);
    int32_t *labels = malloc(N * sizeof *labels);
    double conf[2][15], acc[2][15];
    size_t count[2][15];
    fill_overconfident(z, labels, N, 2.5);
    reliability_of(z, labels, N, conf[0], acc[0], count[0]);
    fill_overconfident(z, labels, N, 1.0);
    reliability_of(z, labels, N, conf[1], acc[1], count[1]);
    mx_reliability models[] = {{"plain", 15, conf[0], acc[0], count[0]}, {"rescaled", 15, conf[1], acc[1], count[1]}};
    CHECK_OK(mx_plot_reliability(in_dir("reliability.png"), "Reliability, MLP on Fashion-MNIST", models, 2));
    check_png("reliability.png", 640, 760);
    CHECK_OK(mx_plot_reliability(in_dir("reliability.svg"), "Reliability", models, 2));
    check_svg("reliability.svg", "width=\"640");
    CHECK_OK(mx_plot_reliability_sized(in_dir("reliability-small.png"), 400, 480, NULL, models, 1));
    check_png("reliability-small.png", 400, 480);
    /* Errors: mismatched bins, no samples, no models. */
    mx_reliability bad[] = {models[0], models[1]};
    bad[1].bins = 10;
    CHECK(mx_plot_reliability(in_dir("bad.png"), NULL, bad, 2) == MX_ERR_ARG);
    size_t zeros[15] = {0};
    bad[1] = models[1];
    bad[1].count = zeros;
    CHECK(mx_plot_reliability(in_dir("bad.png"), NULL, bad, 2) == MX_ERR_ARG);
    CHECK(mx_plot_reliability(in_dir("bad.png"), NULL, models, 0) == MX_ERR_ARG);
    CHECK(mx_plot_reliability(in_dir("bad.pdf"), NULL, models, 2) == MX_ERR_ARG);
    CHECK(mx_plot_reliability(in_dir("no/such/dir/r.png"), NULL, models, 2) == MX_ERR_IO);
    free(z);
    free(labels);
}

static void test_errors(void)
{
    const double x[] = {1, 2, 3}, y[] = {1, 4, 9}, neg[] = {-1, 0, -2}, nan3[] = {NAN, NAN, NAN};
    mx_plot_series s = {"s", x, y, NULL, 3, MX_PLOT_LINE};
    mx_plot_axes ax = {"t", "x", "y", 0, 0, 0, 0, 0, 0};
    const size_t one = 1, none = 0;
    CHECK(mx_plot_write(in_dir("f.jpg"), 400, 300, 1, &ax, &s, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(in_dir("png"), 400, 300, 1, &ax, &s, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(NULL, 400, 300, 1, &ax, &s, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(in_dir("no/such/dir/f.png"), 400, 300, 1, &ax, &s, &one) == MX_ERR_IO);
    CHECK(mx_plot_write(in_dir("no/such/dir/f.svg"), 400, 300, 1, &ax, &s, &one) == MX_ERR_IO);
    /* Empty data in every form. */
    mx_plot_series empty = {"e", x, y, NULL, 0, MX_PLOT_LINE};
    CHECK(mx_plot_write(in_dir("e.png"), 400, 300, 1, &ax, &empty, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(in_dir("e.png"), 400, 300, 1, &ax, &s, &none) == MX_ERR_ARG);
    CHECK(mx_plot_write(in_dir("e.png"), 400, 300, 0, &ax, &s, &one) == MX_ERR_ARG);
    mx_plot_series no_y = {"e", x, NULL, NULL, 3, MX_PLOT_LINE};
    CHECK(mx_plot_write(in_dir("e.png"), 400, 300, 1, &ax, &no_y, &one) == MX_ERR_ARG);
    mx_plot_series all_nan = {"e", x, nan3, NULL, 3, MX_PLOT_POINTS};
    CHECK(mx_plot_write(in_dir("e.png"), 400, 300, 1, &ax, &all_nan, &one) == MX_ERR_ARG);
    /* A log axis with no positive x, or a non-positive range. */
    mx_plot_axes log_ax = {"t", "x", "y", 0, 0, 0, 0, 1, 0};
    mx_plot_series negative_x = {"e", neg, y, NULL, 3, MX_PLOT_LINE};
    CHECK(mx_plot_write(in_dir("e.png"), 400, 300, 1, &log_ax, &negative_x, &one) == MX_ERR_ARG);
    log_ax.xmin = 0;
    log_ax.xmax = 10;
    CHECK(mx_plot_write(in_dir("e.png"), 400, 300, 1, &log_ax, &s, &one) == MX_ERR_ARG);
    /* Sizes and styles out of range. */
    CHECK(mx_plot_write(in_dir("e.png"), 0, 300, 1, &ax, &s, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(in_dir("e.png"), 400, 100000, 1, &ax, &s, &one) == MX_ERR_ARG);
    mx_plot_series odd = s;
    odd.style = (mx_plot_style)42;
    CHECK(mx_plot_write(in_dir("e.png"), 400, 300, 1, &ax, &odd, &one) == MX_ERR_ARG);
    /* None of these left a file (or a temporary) behind. */
    DIR *dp = opendir(dir);
    int stray = 0;
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (!strncmp(e->d_name, "e.", 2) || !strncmp(e->d_name, "f.", 2) || !strncmp(e->d_name, "bad.", 4) ||
            strstr(e->d_name, ".tmp"))
            stray++;
    if (dp) closedir(dp);
    CHECK(stray == 0);
}

/* After the caches are released, figures still come out right. */
static void test_release_and_replot(void)
{
    const double x[] = {1, 2, 3}, y[] = {3, 1, 2};
    mx_plot_series s = {"after", x, y, NULL, 3, MX_PLOT_LINE_POINTS};
    mx_plot_axes ax = {"again", "x", "y", 0, 0, 0, 0, 0, 0};
    const size_t one = 1;
    mx_plot_release_caches();
    CHECK_OK(mx_plot_write(in_dir("again.png"), 320, 240, 1, &ax, &s, &one));
    check_png("again.png", 320, 240);
}

static void remove_temp_dir(void)
{
    const char *keep = getenv("MIXREG_KEEP_PLOTS");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        printf("figures kept in %s\n", dir);
        return;
    }
    DIR *dp = opendir(dir);
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(in_dir(e->d_name));
    if (dp) closedir(dp);
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    make_temp_dir();
    test_figure();
    test_reliability();
    test_errors();
    test_release_and_replot();
    remove_temp_dir();
    mx_plot_release_caches(); /* nothing left for LeakSanitizer */
    CHECK_DONE();
}
