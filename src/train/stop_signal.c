/* SIGINT/SIGTERM: once training runs, the handler only records the signal and
 * the loop saves a checkpoint after the step in progress. Before that (with
 * mx_train_catch_signals: loading data, setting up) there is nothing to save,
 * so the handler says so and exits at once. */
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

void mx_train_catch_signals(const char *what_remains)
{
    int len = snprintf(g_early_message, sizeof g_early_message, " before training started; %s\n", what_remains);
    g_early_len = len < 0 ? 0 : len < (int)sizeof g_early_message ? len : (int)sizeof g_early_message - 1;
    g_training = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void train_stop_begin(train_stop_guard *guard, const char *note)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    g_stop_signal = 0;
    g_stop_note_len = 0;
    if (note) {
        size_t len = strlen(note);
        if (len >= sizeof g_stop_note) len = sizeof g_stop_note - 1;
        memcpy(g_stop_note, note, len);
        g_stop_note_len = len;
    }
    sigaction(SIGINT, &sa, &guard->old_int);
    sigaction(SIGTERM, &sa, &guard->old_term);
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
