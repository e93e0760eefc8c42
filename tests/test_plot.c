/* Figures: PNG and SVG files of the requested size from line, point, bar and
 * log-x panels and from the reliability diagram; the errors (bad extension,
 * no data, unwritable place). Through the drawing record (mxp_trace): a
 * legend never covers data (inside where a free place exists, else below the
 * plot), a mode has one colour in every figure, the reliability diagram
 * writes each bin's count and draws sparse bins apart. Set
 * MIXREG_KEEP_PLOTS=1 to keep the files and look at them. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/plot_internal.h"
#include "mixreg/fileio.h"
#include "mixreg/metrics.h"
#include "mixreg/plot.h"
#include "test_tmp.h"


static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A PNG of width x height: the signature, then IHDR first. */
static void check_png(const char *name, uint32_t width, uint32_t height)
{
    char *data = NULL;
    size_t size = 0;
    CHECK_OK(mx_file_read_all(tmp_path(name), 1 << 26, &data, &size));
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
    CHECK_OK(mx_file_read_all(tmp_path(name), 1 << 26, &data, &size));
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
        {"plain", alpha, acc_plain, err, 8, MX_PLOT_LINE_POINTS, 0, 0, 0},
        {"rescaled", alpha, acc_rescaled, err, 8, MX_PLOT_LINE_POINTS, 0, 0, 0},
        {"plain", bins_x, ece_plain, ece_err, 4, MX_PLOT_BARS, 0, 0, 0},
        {"rescaled", bins_x, ece_rescaled, NULL, 4, MX_PLOT_BARS, 0, 0, 0},
    };
    mx_plot_axes axes[] = {
        {"Test accuracy against the Mixup alpha", "alpha", "accuracy", 0, 0, 0, 0, 1, 0},
        {"ECE by seed", "seed", "ECE", 0, 0, 0, 0, 0, 0},
    };
    const size_t counts[] = {2, 2};
    CHECK_OK(mx_plot_write(tmp_path("figure.png"), 1100, 420, 2, axes, series, counts));
    check_png("figure.png", 1100, 420);
    CHECK_OK(mx_plot_write(tmp_path("figure.svg"), 1100, 420, 2, axes, series, counts));
    check_svg("figure.svg", "width=\"1100");
    /* Upper-case extension, one panel, points only, a fixed range with the diagonal. */
    const double px[] = {0.1, 0.4, 0.8, 0.95}, py[] = {0.15, 0.3, 0.7, 0.99};
    mx_plot_series pts = {NULL, px, py, NULL, 4, MX_PLOT_POINTS, 0, 0, 0};
    mx_plot_axes square = {NULL, NULL, NULL, 0, 1, 0, 1, 0, 1};
    const size_t one = 1;
    CHECK_OK(mx_plot_write(tmp_path("points.PNG"), 300, 300, 1, &square, &pts, &one));
    check_png("points.PNG", 300, 300);
    /* A single point and non-finite values are fine (the latter skipped). */
    const double lx[] = {1, 2, NAN, 4}, ly[] = {1, INFINITY, 3, 4};
    mx_plot_series line = {"line", lx, ly, NULL, 4, MX_PLOT_LINE, 0, 0, 0};
    mx_plot_axes plain_axes = {"t", "x", "y", 0, 0, 0, 0, 0, 0};
    CHECK_OK(mx_plot_write(tmp_path("gaps.svg"), 400, 300, 1, &plain_axes, &line, &one));
    mx_plot_series single = {"one", lx, ly, NULL, 1, MX_PLOT_BARS, 0, 0, 0};
    CHECK_OK(mx_plot_write(tmp_path("single.png"), 400, 300, 1, &plain_axes, &single, &one));
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
    CHECK_OK(mx_plot_reliability(tmp_path("reliability.png"), "Reliability, MLP on Fashion-MNIST", models, 2));
    check_png("reliability.png", 640, 760);
    CHECK_OK(mx_plot_reliability(tmp_path("reliability.svg"), "Reliability", models, 2));
    check_svg("reliability.svg", "width=\"640");
    CHECK_OK(mx_plot_reliability_sized(tmp_path("reliability-small.png"), 400, 480, NULL, models, 1));
    check_png("reliability-small.png", 400, 480);
    /* Errors: mismatched bins, no samples, no models. */
    mx_reliability bad[] = {models[0], models[1]};
    bad[1].bins = 10;
    CHECK(mx_plot_reliability(tmp_path("bad.png"), NULL, bad, 2) == MX_ERR_ARG);
    size_t zeros[15] = {0};
    bad[1] = models[1];
    bad[1].count = zeros;
    CHECK(mx_plot_reliability(tmp_path("bad.png"), NULL, bad, 2) == MX_ERR_ARG);
    CHECK(mx_plot_reliability(tmp_path("bad.png"), NULL, models, 0) == MX_ERR_ARG);
    CHECK(mx_plot_reliability(tmp_path("bad.pdf"), NULL, models, 2) == MX_ERR_ARG);
    CHECK(mx_plot_reliability(tmp_path("no/such/dir/r.png"), NULL, models, 2) == MX_ERR_IO);
    free(z);
    free(labels);
}

/* ---- what the drawing record shows ---------------------------------------- */

static mxp_trace trace; /* large: static */

static int boxes_meet(mxp_rect a, mxp_rect b)
{
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/* Whether any recorded mark or line piece shows inside the box (lines
 * checked at 400 points each: independent of the placement's own geometry). */
static size_t data_under(mxp_rect box)
{
    size_t hits = 0;
    for (size_t i = 0; i < trace.nmarks; i++) hits += (size_t)boxes_meet(box, trace.marks[i]);
    for (size_t i = 0; i < trace.nsegments; i++) {
        const double *s = trace.segments[i];
        for (int k = 0; k <= 400; k++) {
            double u = k / 400.0, x = s[0] + u * (s[2] - s[0]), y = s[1] + u * (s[3] - s[1]);
            if (x > box.x && x < box.x + box.w && y > box.y && y < box.y + box.h) {
                hits++;
                break;
            }
        }
    }
    return hits;
}

/* Every legend drawn since the trace started covers no data; returns how many
 * went outside their plot area. */
static size_t check_legends_clear(size_t expected)
{
    size_t outside = 0;
    CHECK(trace.nlegends == expected);
    for (size_t i = 0; i < trace.nlegends; i++) {
        mxp_rect b = trace.legends[i].box, plot = trace.legends[i].plot;
        size_t hits = data_under(b);
        if (hits) fprintf(stderr, "legend %zu at (%.0f, %.0f, %.0f x %.0f) covers %zu data marks\n", i, b.x, b.y, b.w,
                          b.h, hits);
        CHECK(hits == 0);
        if (trace.legends[i].outside) {
            outside++;
            CHECK(b.y >= plot.y + plot.h); /* below the plot area, not on it */
        } else {
            CHECK(b.x >= plot.x && b.y >= plot.y && b.x + b.w <= plot.x + plot.w && b.y + b.h <= plot.y + plot.h);
        }
    }
    CHECK(trace.nmarks > 0 && trace.nmarks < MXP_TRACE_MAX); /* the record saw the data, and all of it */
    return outside;
}

static const double *entry_rgb(const char *prefix)
{
    for (size_t i = 0; i < trace.nentries; i++)
        if (!strncmp(trace.entries[i].label, prefix, strlen(prefix))) return trace.entries[i].rgb;
    return NULL;
}

static int same_rgb(const double *a, const double *b)
{
    return a && b && fabs(a[0] - b[0]) < 1e-9 && fabs(a[1] - b[1]) < 1e-9 && fabs(a[2] - b[2]) < 1e-9;
}

static int has_text(const char *s)
{
    for (size_t i = 0; i < trace.ntexts; i++)
        if (!strcmp(trace.texts[i].text, s)) return 1;
    return 0;
}

/* The figure from the report of a Mixup run: a bin with one sample at
 * confidence 0.17 that was right (a full-height bar in the top left corner,
 * where the legend used to go), and bins of every size. */
static void test_reliability_sparse_bin(void)
{
    enum { B = 15 };
    double conf[2][B], acc[2][B];
    size_t count[2][B] = {{0, 0, 1, 7, 40, 90, 150, 250, 400, 600, 900, 1400, 2500, 4800, 12345},
                          {0, 0, 0, 3, 30, 100, 160, 240, 420, 620, 880, 1500, 2600, 4700, 13200}};
    for (size_t m = 0; m < 2; m++)
        for (size_t b = 0; b < B; b++) {
            conf[m][b] = (b + 0.5) / B;
            acc[m][b] = fmin(1.0, (b + 0.5) / B * (m ? 0.95 : 1.1));
        }
    acc[0][2] = 1.0; /* the one sample, right */
    mx_reliability models[] = {{"rescaled", B, conf[0], acc[0], count[0]}, {"plain", B, conf[1], acc[1], count[1]}};
    mxp_trace_start(&trace);
    CHECK_OK(mx_plot_reliability(tmp_path("sparse.png"), "a 1-sample bin", models, 2));
    mxp_trace_start(NULL);
    check_png("sparse.png", 640, 760);
    check_legends_clear(1);
    /* Each non-empty bin's count is written: "12k" for 12345, "1" for the single sample. */
    CHECK(has_text("1") && has_text("7") && has_text("250") && has_text("12k") && has_text("3") && has_text("4.7k") && has_text("13k"));
    /* Sparse: under max(10, 1% of the model's samples): model 0 has 23483 samples (under 235:
     * counts 1, 7, 40, 90, 150), model 1 24453 (under 245: 3, 30, 100, 160, 240); the thresholds differ,
     * so the legend gives the rule. */
    CHECK(entry_rgb("sparse bin (< 10 samples or < 1%)") != NULL);
    size_t sparse = 0, solid = 0;
    for (size_t i = 0; i < trace.nbars; i++) sparse += (size_t)trace.bars[i].sparse, solid += (size_t)!trace.bars[i].sparse;
    CHECK(sparse == 2 * (5 + 5)); /* in the top and the bottom panel */
    CHECK(solid == 2 * (8 + 7));
    /* Each count stands just above its histogram bar and within the plot area (nothing clipped). */
    size_t above = 0;
    for (size_t i = 0; i < trace.ntexts; i++) {
        if (strcmp(trace.texts[i].text, "12k") != 0) continue;
        for (size_t j = 0; j < trace.nbars; j++) {
            mxp_rect b = trace.bars[j].box;
            if (trace.texts[i].x > b.x && trace.texts[i].x < b.x + b.w && fabs(trace.texts[i].y - b.y) < 6.0)
                above++;
        }
    }
    if (above != 1) fprintf(stderr, "the count 12k stands above %zu bars\n", above);
    CHECK(above == 1);
}

/* The alpha figure of a report: long horizontal reference lines at several
 * heights and two curves leave no free corner, so the legend goes below. */
static void test_legend_outside(void)
{
    const double alpha[] = {0.2, 0.5, 1, 2}, ends[] = {0.18, 2.2};
    const double ece_mix[] = {1.2, 2.8, 4.3, 5.7}, ece_res[] = {1.7, 2.7, 2.9, 2.3}, err[] = {0.2, 0.3, 0.2, 0.3};
    const double erm[] = {3.2, 3.2}, ls1[] = {7.0, 7.0}, ls2[] = {20.0, 20.0}, ls3[] = {12.0, 12.0}, ls4[] = {30, 30};
    const double one_x[] = {1}, one_y[] = {25.6}, one_e[] = {1.4}, two_y[] = {39.5};
    mx_plot_series s[] = {
        {"mixup, plain", alpha, ece_mix, err, 4, MX_PLOT_LINE_POINTS, 0, 1, 0},
        {"mixup, rescaled", alpha, ece_res, err, 4, MX_PLOT_LINE_POINTS, 0, 1, 0},
        {"erm", ends, erm, NULL, 2, MX_PLOT_LINE, MX_PLOT_RED, 0, 0},
        {"label smoothing 0.1", ends, ls1, NULL, 2, MX_PLOT_LINE, 0, 0, 0},
        {"label smoothing 0.25", ends, ls2, NULL, 2, MX_PLOT_LINE, 0, 0, 0},
        {"label smoothing 0.15", ends, ls3, NULL, 2, MX_PLOT_LINE, 0, 0, 1},
        {"label smoothing 0.4", ends, ls4, NULL, 2, MX_PLOT_LINE, 0, 0, 0},
        {"inputs only", one_x, one_y, one_e, 1, MX_PLOT_POINTS, 0, 0, 0},
        {"labels only", one_x, two_y, NULL, 1, MX_PLOT_POINTS, 0, 0, 0},
    };
    mx_plot_axes ax = {"Calibration against the Mixup alpha", "alpha", "ECE (%)", 0.18, 2.2, 0, 0, 1, 0};
    const size_t n = sizeof s / sizeof s[0];
    mxp_trace_start(&trace);
    CHECK_OK(mx_plot_write(tmp_path("crowded.png"), 600, 460, 1, &ax, s, &n));
    mxp_trace_start(NULL);
    check_png("crowded.png", 600, 460);
    CHECK(check_legends_clear(1) == 1);
    /* Two panels side by side, each with its legend below it, inside the canvas. */
    mx_plot_axes two[] = {ax, ax};
    const size_t counts[] = {n, n};
    mx_plot_series both[2 * (sizeof s / sizeof s[0])];
    for (size_t i = 0; i < n; i++) both[i] = both[n + i] = s[i];
    mxp_trace_start(&trace);
    CHECK_OK(mx_plot_write(tmp_path("crowded2.svg"), 1200, 600, 2, two, both, counts));
    mxp_trace_start(NULL);
    CHECK(check_legends_clear(2) == 2);
    for (size_t i = 0; i < trace.nlegends; i++) {
        mxp_rect b = trace.legends[i].box;
        CHECK(b.x >= 0 && b.x + b.w <= 1200 && b.y + b.h <= 600);
        CHECK(b.x >= 600.0 * (double)i && b.x + b.w <= 600.0 * (double)(i + 1)); /* under its own panel */
    }
    /* With room in a corner the legend stays inside (no needless shrinking). */
    const double few_y[] = {1.0, 1.5, 2.0, 2.4};
    mx_plot_series low = {"low", alpha, few_y, NULL, 4, MX_PLOT_LINE_POINTS, 0, 0, 0};
    mx_plot_axes roomy = {"t", "alpha", "y", 0.18, 2.2, 0, 10, 1, 0};
    const size_t one = 1;
    mxp_trace_start(&trace);
    CHECK_OK(mx_plot_write(tmp_path("roomy.png"), 500, 400, 1, &roomy, &low, &one));
    mxp_trace_start(NULL);
    CHECK(check_legends_clear(1) == 0);
}

/* One colour per mode: the table, and what the figures draw. */
static void test_mode_colours(void)
{
    CHECK(mx_plot_mode_colour("plain") == MX_PLOT_BLUE);
    CHECK(mx_plot_mode_colour("rescaled") == MX_PLOT_ORANGE);
    CHECK(mx_plot_mode_colour("temperature") == MX_PLOT_GREEN);
    CHECK(mx_plot_mode_colour("rescaled+temperature") == MX_PLOT_PURPLE);
    CHECK(mx_plot_mode_colour("rescaled ") == MX_PLOT_COLOUR_AUTO);
    CHECK(mx_plot_mode_colour(NULL) == MX_PLOT_COLOUR_AUTO);
    for (size_t k = 0; k < 12; k++) { /* the other colours never take a mode's */
        mx_plot_colour c = mx_plot_other_colour(k);
        CHECK(c != MX_PLOT_BLUE && c != MX_PLOT_ORANGE && c != MX_PLOT_GREEN && c != MX_PLOT_PURPLE &&
              c != MX_PLOT_COLOUR_AUTO);
    }
    double rescaled[3];
    mx_plot_colour_rgb(MX_PLOT_ORANGE, rescaled);
    CHECK_NEAR(rescaled[0], 1.0, 1e-9);

    /* eval's diagram with four modes, in eval's order */
    enum { B = 10 };
    double conf[B], acc[B];
    size_t count[B];
    for (size_t b = 0; b < B; b++) conf[b] = acc[b] = (b + 0.5) / B, count[b] = 100 + b;
    const char *order[] = {"plain", "temperature", "rescaled", "rescaled+temperature"};
    mx_reliability four[4];
    for (int i = 0; i < 4; i++) four[i] = (mx_reliability){order[i], B, conf, acc, count};
    mxp_trace_start(&trace);
    CHECK_OK(mx_plot_reliability(tmp_path("four.png"), NULL, four, 4));
    mxp_trace_start(NULL);
    const double *in_eval = entry_rgb("rescaled (ECE");
    CHECK(same_rgb(in_eval, rescaled));
    double rgb[3];
    mx_plot_colour_rgb(MX_PLOT_PURPLE, rgb);
    CHECK(same_rgb(entry_rgb("rescaled+temperature (ECE"), rgb));
    /* The bars of the rescaled model (the third of four) are orange too. */
    size_t orange = 0;
    for (size_t i = 0; i < trace.nbars; i++) orange += (size_t)same_rgb(trace.bars[i].rgb, rescaled);
    CHECK(orange == 2 * B);

    /* A report's diagram (three modes, rescaled second) and a line figure where
     * "rescaled" is the first series: orange in both. */
    mx_reliability three[] = {four[0], four[2], four[1]};
    mxp_trace_start(&trace);
    CHECK_OK(mx_plot_reliability(tmp_path("three.svg"), NULL, three, 3));
    mxp_trace_start(NULL);
    CHECK(same_rgb(entry_rgb("rescaled (ECE"), rescaled));
    const double x[] = {1, 2, 3}, y1[] = {1, 2, 3}, y2[] = {3, 2, 1}, y3[] = {2, 2, 2};
    mx_plot_series lines[] = {{"rescaled", x, y1, NULL, 3, MX_PLOT_LINE, 0, 0, 0},
                              {"other", x, y2, NULL, 3, MX_PLOT_LINE, 0, 0, 0},
                              {"plain", x, y3, NULL, 3, MX_PLOT_LINE, 0, 0, 0}};
    mx_plot_axes ax = {"t", "x", "y", 0, 0, 0, 0, 0, 0};
    const size_t n = 3;
    mxp_trace_start(&trace);
    CHECK_OK(mx_plot_write(tmp_path("modes.png"), 400, 300, 1, &ax, lines, &n));
    mxp_trace_start(NULL);
    CHECK(same_rgb(entry_rgb("rescaled"), rescaled));
    double blue[3];
    mx_plot_colour_rgb(MX_PLOT_BLUE, blue);
    CHECK(same_rgb(entry_rgb("plain"), blue));
    /* A series that is not a mode takes a colour no mode uses (the first of them: red). */
    const double *other = entry_rgb("other");
    double red[3];
    mx_plot_colour_rgb(MX_PLOT_RED, red);
    CHECK(same_rgb(other, red));
    /* Seven such series: the seventh borrows a mode colour, one this panel does not show. */
    mx_plot_series many[8];
    const char *names[] = {"plain", "a", "b", "c", "d", "e", "f", "g"};
    for (int i = 0; i < 8; i++) many[i] = (mx_plot_series){names[i], x, y3, NULL, 3, MX_PLOT_LINE, 0, 0, 0};
    const size_t eight = 8;
    mxp_trace_start(&trace);
    CHECK_OK(mx_plot_write(tmp_path("many.png"), 500, 400, 1, &ax, many, &eight));
    mxp_trace_start(NULL);
    double orange_rgb[3];
    mx_plot_colour_rgb(MX_PLOT_ORANGE, orange_rgb);
    CHECK(same_rgb(entry_rgb("g"), orange_rgb));
    CHECK(same_rgb(entry_rgb("plain"), blue));
}

static void test_errors(void)
{
    const double x[] = {1, 2, 3}, y[] = {1, 4, 9}, neg[] = {-1, 0, -2}, nan3[] = {NAN, NAN, NAN};
    mx_plot_series s = {"s", x, y, NULL, 3, MX_PLOT_LINE, 0, 0, 0};
    mx_plot_axes ax = {"t", "x", "y", 0, 0, 0, 0, 0, 0};
    const size_t one = 1, none = 0;
    CHECK(mx_plot_write(tmp_path("f.jpg"), 400, 300, 1, &ax, &s, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(tmp_path("png"), 400, 300, 1, &ax, &s, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(NULL, 400, 300, 1, &ax, &s, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(tmp_path("no/such/dir/f.png"), 400, 300, 1, &ax, &s, &one) == MX_ERR_IO);
    CHECK(mx_plot_write(tmp_path("no/such/dir/f.svg"), 400, 300, 1, &ax, &s, &one) == MX_ERR_IO);
    /* Empty data in every form. */
    mx_plot_series empty = {"e", x, y, NULL, 0, MX_PLOT_LINE, 0, 0, 0};
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 300, 1, &ax, &empty, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 300, 1, &ax, &s, &none) == MX_ERR_ARG);
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 300, 0, &ax, &s, &one) == MX_ERR_ARG);
    mx_plot_series no_y = {"e", x, NULL, NULL, 3, MX_PLOT_LINE, 0, 0, 0};
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 300, 1, &ax, &no_y, &one) == MX_ERR_ARG);
    mx_plot_series all_nan = {"e", x, nan3, NULL, 3, MX_PLOT_POINTS, 0, 0, 0};
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 300, 1, &ax, &all_nan, &one) == MX_ERR_ARG);
    /* A log axis with no positive x, or a non-positive range. */
    mx_plot_axes log_ax = {"t", "x", "y", 0, 0, 0, 0, 1, 0};
    mx_plot_series negative_x = {"e", neg, y, NULL, 3, MX_PLOT_LINE, 0, 0, 0};
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 300, 1, &log_ax, &negative_x, &one) == MX_ERR_ARG);
    log_ax.xmin = 0;
    log_ax.xmax = 10;
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 300, 1, &log_ax, &s, &one) == MX_ERR_ARG);
    /* Sizes and styles out of range. */
    CHECK(mx_plot_write(tmp_path("e.png"), 0, 300, 1, &ax, &s, &one) == MX_ERR_ARG);
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 100000, 1, &ax, &s, &one) == MX_ERR_ARG);
    mx_plot_series odd = s;
    odd.style = (mx_plot_style)42;
    CHECK(mx_plot_write(tmp_path("e.png"), 400, 300, 1, &ax, &odd, &one) == MX_ERR_ARG);
    /* None of these left a file (or a temporary) behind. */
    DIR *dp = opendir(g_tmp);
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
    mx_plot_series s = {"after", x, y, NULL, 3, MX_PLOT_LINE_POINTS, 0, 0, 0};
    mx_plot_axes ax = {"again", "x", "y", 0, 0, 0, 0, 0, 0};
    const size_t one = 1;
    mx_plot_release_caches();
    CHECK_OK(mx_plot_write(tmp_path("again.png"), 320, 240, 1, &ax, &s, &one));
    check_png("again.png", 320, 240);
}

static void remove_temp_dir(void)
{
    const char *keep = getenv("MIXREG_KEEP_PLOTS");
    if (keep && *keep && strcmp(keep, "0") != 0) {
        printf("figures kept in %s\n", g_tmp);
        return;
    }
    DIR *dp = opendir(g_tmp);
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(tmp_path(e->d_name));
    if (dp) closedir(dp);
    CHECK(rmdir(g_tmp) == 0);
}

int main(void)
{
    make_temp_root_for("plot");
    test_figure();
    test_reliability();
    test_reliability_sparse_bin();
    test_legend_outside();
    test_mode_colours();
    test_errors();
    test_release_and_replot();
    remove_temp_dir();
    mx_plot_release_caches(); /* nothing left for LeakSanitizer */
    CHECK_DONE();
}
