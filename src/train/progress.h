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
} mx_progress;

double mx_now_seconds(void);
/* Keeps p->quiet as set before. */
void mx_progress_begin(mx_progress *p, size_t epochs, size_t steps_per_epoch, size_t total_steps);
/* steps_done counts from the start of the run; images/s over the run so far. */
void mx_progress_step(mx_progress *p, size_t epoch, size_t step_in_epoch, size_t steps_done, double loss,
                      double img_per_s);
/* Prints a whole line (clearing the bar first on a terminal). */
void mx_progress_line(mx_progress *p, const char *line);

/* Removes the bar (on a terminal) before an error message is printed. */
void mx_progress_clear(mx_progress *p);

#endif
