#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "train/progress.h"

#define BAR_WIDTH 24
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
    char eta_text[32];
    format_duration(eta, eta_text, sizeof eta_text);
    if (p->tty) {
        char bar[BAR_WIDTH + 1];
        size_t filled = p->total_steps ? BAR_WIDTH * steps_done / p->total_steps : 0;
        for (size_t i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        fprintf(stderr, "\r\033[Kepoch %zu/%zu [%s] step %zu/%zu  loss %.4f  %.0f img/s  ETA %s", epoch, p->epochs, bar,
                step_in_epoch, p->steps_per_epoch, loss, img_per_s, eta_text);
    } else {
        fprintf(stderr, "epoch %zu/%zu step %zu/%zu loss %.4f %.0f img/s ETA %s\n", epoch, p->epochs, step_in_epoch,
                p->steps_per_epoch, loss, img_per_s, eta_text);
    }
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
