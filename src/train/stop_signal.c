/* SIGINT/SIGTERM: once training runs, the handler only records the signal and
 * the loop saves a checkpoint after the step in progress. Before that (with
 * mx_train_catch_signals: loading data, setting up) there is nothing to save,
 * so the handler says so and exits at once. */
#define _DEFAULT_SOURCE /* sigaltstack, SA_ONSTACK */
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mixreg/fileio.h"
#include "mixreg/train.h"
#include "train/stop_signal.h"

static volatile sig_atomic_t g_stop_signal = 0;
/* In a job of several processes, rank 0 says at once why it may stop: its
 * launcher also sends this signal when another process died, and the
 * process may then be killed before it reaches the end of its step. */
static char g_stop_note[2 * MX_PATH_MAX + 256];
static size_t g_stop_note_len = 0;
static volatile sig_atomic_t g_training = 0;
static char g_early_message[512];
static volatile sig_atomic_t g_early_len = 0;

static void on_stop_signal(int sig)
{
    if (!g_training && g_early_len) {
        /* Only async-signal-safe calls: the signal number by hand, write, _exit. */
        char msg[sizeof g_early_message + 16] = "mixreg: interrupted by signal ";
        size_t n = strlen(msg);
        if (sig >= 10) msg[n++] = (char)('0' + sig / 10 % 10);
        msg[n++] = (char)('0' + sig % 10);
        memcpy(msg + n, g_early_message, (size_t)g_early_len);
        n += (size_t)g_early_len;
        ssize_t w = write(STDERR_FILENO, msg, n);
        (void)w;
        _exit(130);
    }
    g_stop_signal = sig;
    if (g_stop_note_len) {
        ssize_t ignored = write(STDERR_FILENO, g_stop_note, g_stop_note_len);
        (void)ignored;
        g_stop_note_len = 0; /* once */
    }
}

/* The stop handlers run on a stack of their own (SA_ONSTACK), on this
 * thread. oneDNN's JIT kernels keep data below the stack pointer, past the
 * red zone a signal frame leaves alone, so a handler that ran on top of one
 * corrupted it: on a Xeon with AMX, 7 of 8 runs of `mixreg train --threads 1`
 * interrupted by SIGINT died in free() (glibc: "corrupted size vs.
 * prev_size"), 0 of 8 with this stack. The OpenMP threads, which run those
 * kernels too, block the two signals, so that they come to this thread. */
static char g_signal_stack[1 << 16] __attribute__((aligned(64)));

void train_catch_stop(void (*handler)(int), struct sigaction *old_int, struct sigaction *old_term)
{
    stack_t ss = {.ss_sp = g_signal_stack, .ss_size = sizeof g_signal_stack, .ss_flags = 0};
    const int own_stack = sigaltstack(&ss, NULL) == 0;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
#pragma omp parallel
    if (omp_get_thread_num() != 0) pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = own_stack ? SA_ONSTACK : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

void mx_train_catch_signals(const char *what_remains)
{
    int len = snprintf(g_early_message, sizeof g_early_message, " before training started; %s\n", what_remains);
    g_early_len = len < 0 ? 0 : len < (int)sizeof g_early_message ? len : (int)sizeof g_early_message - 1;
    g_training = 0;
    train_catch_stop(on_stop_signal, NULL, NULL);
}

void train_stop_begin(train_stop_guard *guard, const char *note)
{
    g_stop_signal = 0;
    g_stop_note_len = 0;
    if (note) {
        size_t len = strlen(note);
        if (len >= sizeof g_stop_note) len = sizeof g_stop_note - 1;
        memcpy(g_stop_note, note, len);
        g_stop_note_len = len;
    }
    train_catch_stop(on_stop_signal, &guard->old_int, &guard->old_term);
    /* From here a stop saves a checkpoint (and after the loop is ignored by the
     * early handler mx_train_catch_signals installed, should it be restored). */
    g_training = 1;
}

void train_stop_end(const train_stop_guard *guard)
{
    sigaction(SIGINT, &guard->old_int, NULL);
    sigaction(SIGTERM, &guard->old_term, NULL);
}

int train_stop_signal(void) { return (int)g_stop_signal; }
