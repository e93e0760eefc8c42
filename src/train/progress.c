#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "train/progress.h"

#define BAR_MAX 24
#define BAR_MIN 8
#define MAX_LINE 512
#define PLAIN_INTERVAL_S 10.0
#define TTY_INTERVAL_S 0.1

double mx_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void mx_progress_begin(mx_progress *p, size_t epochs, size_t steps_per_epoch, size_t total_steps)
{
    p->tty = isatty(STDERR_FILENO);
    p->epochs = epochs;
    p->steps_per_epoch = steps_per_epoch;
    p->total_steps = total_steps;
    p->start_step = 0;
    p->start = p->last_draw = mx_now_seconds();
}

static void format_duration(double seconds, char *buf, size_t cap)
{
    long s = seconds > 0 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
}

size_t mx_progress_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *columns = getenv("COLUMNS");
    char *end;
    long c = columns ? strtol(columns, &end, 10) : 0;
    return columns && *columns && !*end && c > 0 && c < 10000 ? (size_t)c : 80;
}

/* The line with the given fields shown (bar_cells 0: no bar), into buf; its length. */
static size_t compose(char *buf, size_t cap, const mx_progress_fields *f, size_t bar_cells, int show_rate,
                      int show_step, int show_loss)
{
    char eta[32], bar[BAR_MAX + 4] = "" /* " [" + cells + "]" + NUL */, step[48] = "", loss[32] = "", rate[32] = "";
    format_duration(f->eta_seconds, eta, sizeof eta);
    if (bar_cells) {
        double frac = f->fraction < 0 ? 0 : f->fraction > 1 ? 1 : f->fraction;
        size_t filled = (size_t)(frac * (double)bar_cells);
        bar[0] = ' ', bar[1] = '[';
        for (size_t i = 0; i < bar_cells; i++) bar[2 + i] = i < filled ? '#' : '.';
        bar[2 + bar_cells] = ']', bar[3 + bar_cells] = '\0';
    }
    if (show_step) snprintf(step, sizeof step, " step %zu/%zu", f->step, f->steps);
    if (show_loss) snprintf(loss, sizeof loss, "  loss %.4f", f->loss);
    if (show_rate) snprintf(rate, sizeof rate, "  %.0f img/s", f->img_per_s);
    int n = snprintf(buf, cap, "epoch %zu/%zu%s%s%s%s  ETA %s", f->epoch, f->epochs, bar, step, loss, rate, eta);
    return n < 0 ? 0 : (size_t)n;
}

size_t mx_progress_format(char *buf, size_t cap, size_t width, const mx_progress_fields *f)
{
    if (!cap) return 0;
    buf[0] = '\0';
    if (width < 2) return 0;
    const size_t limit = width - 1;
    /* The fullest form first; each later one drops what matters least. */
    for (size_t cells = BAR_MAX; cells >= BAR_MIN; cells--) {
        size_t n = compose(buf, cap, f, cells, 1, 1, 1);
        if (n <= limit && n < cap) return n;
    }
    static const int drops[][3] = {{1, 1, 1}, {0, 1, 1}, {0, 0, 1}, {0, 0, 0}}; /* rate, step, loss */
    for (size_t k = 0; k < sizeof drops / sizeof drops[0]; k++) {
        size_t n = compose(buf, cap, f, 0, drops[k][0], drops[k][1], drops[k][2]);
        if (n <= limit && n < cap) return n;
    }
    /* Narrower than "epoch E/N  ETA T": as much of it as fits. */
    size_t n = strlen(buf);
    if (n > limit) n = limit;
    if (n >= cap) n = cap - 1;
    buf[n] = '\0';
    return n;
}

void mx_progress_step(mx_progress *p, size_t epoch, size_t step_in_epoch, size_t steps_done, double loss,
                      double img_per_s)
{
    double now = mx_now_seconds();
    if (p->quiet) return;
    if (now - p->last_draw < (p->tty ? TTY_INTERVAL_S : PLAIN_INTERVAL_S)) return;
    p->last_draw = now;
    double elapsed = now - p->start;
    size_t done_here = steps_done - p->start_step;
    double eta = done_here ? elapsed * (double)(p->total_steps - steps_done) / (double)done_here : 0;
    mx_progress_fields f = {.epoch = epoch, .epochs = p->epochs, .step = step_in_epoch, .steps = p->steps_per_epoch,
                            .loss = loss, .img_per_s = img_per_s, .eta_seconds = eta,
                            .fraction = p->total_steps ? (double)steps_done / (double)p->total_steps : 0};
    if (p->tty) {
        /* Asked at every redraw, so a resized window is followed. */
        char line[MAX_LINE];
        mx_progress_format(line, sizeof line, mx_progress_width(), &f);
        fprintf(stderr, "\r\033[K%s", line);
    } else {
        char eta_text[32];
        format_duration(eta, eta_text, sizeof eta_text);
        fprintf(stderr, "epoch %zu/%zu step %zu/%zu loss %.4f %.0f img/s ETA %s\n", epoch, p->epochs, step_in_epoch,
                p->steps_per_epoch, loss, img_per_s, eta_text);
    }
    fflush(stderr);
}

/* 10000 as "10,000". */
static void format_count(size_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v);
    size_t out = 0;
    for (int i = 0; i < n && out + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0) buf[out++] = ',';
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
}

size_t mx_progress_format_eval(char *buf, size_t cap, size_t width, const char *what, size_t done, size_t total,
                               double eta_seconds)
{
    if (!cap) return 0;
    buf[0] = '\0';
    if (width < 2) return 0;
    const size_t limit = width - 1;
    char d[40], t[40], eta[32] = "";
    format_count(done, d, sizeof d);
    format_count(total, t, sizeof t);
    if (eta_seconds >= 0) {
        char duration[24];
        format_duration(eta_seconds, duration, sizeof duration);
        snprintf(eta, sizeof eta, "  ETA %s", duration);
    }
    for (int with_eta = 1; with_eta >= 0; with_eta--) {
        int n = snprintf(buf, cap, "eval %s %s/%s%s", what, d, t, with_eta ? eta : "");
        if (n >= 0 && (size_t)n <= limit && (size_t)n < cap) return (size_t)n;
    }
    size_t n = strlen(buf);
    if (n > limit) n = limit;
    if (n >= cap) n = cap - 1;
    buf[n] = '\0';
    return n;
}

void mx_progress_eval(mx_progress *p, const char *what, size_t done, size_t total)
{
    if (p->quiet || !p->tty) return;
    double now = mx_now_seconds();
    if (done == 0) p->eval_start = now;
    else if (now - p->last_draw < TTY_INTERVAL_S) return;
    p->last_draw = now;
    double elapsed = now - p->eval_start;
    double eta = done && done <= total ? elapsed * (double)(total - done) / (double)done : -1;
    char line[MAX_LINE];
    mx_progress_format_eval(line, sizeof line, mx_progress_width(), what, done, total, eta);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
}

void mx_progress_line(mx_progress *p, const char *line)
{
    if (p->quiet) return;
    if (p->tty) fputs("\r\033[K", stderr);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

void mx_progress_clear(mx_progress *p)
{
    if (p->quiet) return;
    if (p->tty) fputs("\r\033[K", stderr);
}
