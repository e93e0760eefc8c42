/* SIGINT/SIGTERM while training (stop_signal.c): once training runs, the
 * handler only records the signal, and the loop saves a checkpoint after the
 * step in progress; before (mx_train_catch_signals) it exits at once. */
#ifndef MIXREG_TRAIN_STOP_SIGNAL_H
#define MIXREG_TRAIN_STOP_SIGNAL_H

#include <signal.h>

typedef struct {
    struct sigaction old_int, old_term;
} train_stop_guard;

/* From here a signal is recorded for the loop (train_stop_signal). note:
 * what to print at once when one comes (NULL: nothing), e.g. rank 0 of a job
 * saying why it may stop. */
void train_stop_begin(train_stop_guard *guard, const char *note);
/* The handlers that were there before train_stop_begin. */
void train_stop_end(const train_stop_guard *guard);
/* The signal received since train_stop_begin, or 0. */
int train_stop_signal(void);
/* Installs handler for SIGINT and SIGTERM (the old ones into old_int and
 * old_term where not NULL) to run on a signal stack of its own, and blocks
 * both in the OpenMP threads (stop_signal.c says why). */
void train_catch_stop(void (*handler)(int), struct sigaction *old_int, struct sigaction *old_term);

#endif
