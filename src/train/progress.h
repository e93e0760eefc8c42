/* Progress on stderr: a redrawn bar (epoch, step, loss, img/s, ETA) on a
 * terminal; plain lines at most every few seconds otherwise (logs, CI). */
#ifndef MIXREG_TRAIN_PROGRESS_H
#define MIXREG_TRAIN_PROGRESS_H

#include <stddef.h>

typedef struct {
    int quiet;          /* draw nothing (the processes of a data-parallel job other than rank 0) */
    int tty;
    size_t epochs, steps_per_epoch, total_steps;
    size_t start_step;  /* steps already done when this process started (resume) */
    double start, last_draw;
    double eval_start;  /* when the evaluation in progress began (mx_progress_eval) */
} mx_progress;

/* What one redraw of the bar shows; mx_progress_format fits it to a width. */
typedef struct {
    size_t epoch, epochs, step, steps;
    double loss, img_per_s, eta_seconds;
    double fraction;  /* of the whole run, for the bar */
} mx_progress_fields;

/* Writes the bar's text for a terminal `width` columns wide into buf and
 * returns its length, always below width (a line as wide as the terminal
 * wraps on some terminals, and every later redraw would then scroll).
 * Fields are shortened, then dropped, in order of least use: the bar shrinks
 * to 8 cells, then goes, then img/s, the step count and the loss; the epoch
 * and the ETA stay while they fit at all. */
size_t mx_progress_format(char *buf, size_t cap, size_t width, const mx_progress_fields *f);

/* The terminal's width: TIOCGWINSZ on stderr, else $COLUMNS, else 80. */
size_t mx_progress_width(void);

double mx_now_seconds(void);
/* Keeps p->quiet as set before. */
void mx_progress_begin(mx_progress *p, size_t epochs, size_t steps_per_epoch, size_t total_steps);
/* steps_done counts from the start of the run; images/s over the run so far. */
void mx_progress_step(mx_progress *p, size_t epoch, size_t step_in_epoch, size_t steps_done, double loss,
                      double img_per_s);
/* Prints a whole line (clearing the bar first on a terminal). */
void mx_progress_line(mx_progress *p, const char *line);

/* The end-of-epoch evaluation's line, "eval test 3,000/10,000  ETA 0:04"
 * (what: the split; eta_seconds < 0: not known yet, left out), fitted to
 * `width` as mx_progress_format fits the bar: the ETA goes first, then the
 * text is cut. Its length. */
size_t mx_progress_format_eval(char *buf, size_t cap, size_t width, const char *what, size_t done, size_t total,
                               double eta_seconds);
/* Redraws that line in place of the bar, on a terminal only (a log gets the
 * epoch's summary line a moment later) and not when quiet (ranks other than
 * 0). done = 0 starts the evaluation's clock and is always drawn, so the
 * line appears as the evaluation starts; later calls at most every 0.1 s.
 * The next mx_progress_line or bar redraw replaces it. */
void mx_progress_eval(mx_progress *p, const char *what, size_t done, size_t total);

/* Removes the bar (on a terminal) before an error message is printed. */
void mx_progress_clear(mx_progress *p);

#endif
