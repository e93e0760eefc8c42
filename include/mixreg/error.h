/* Error reporting: every fallible call returns an mx_status and leaves a
 * one-line, human-readable message in a thread-local buffer. The CLI prints
 * it as "mixreg: error: <message>"; library users read mx_error_message(). */
#ifndef MIXREG_ERROR_H
#define MIXREG_ERROR_H

typedef enum {
    MX_OK = 0,
    MX_ERR_ARG,      /* bad argument or configuration (usage error) */
    MX_ERR_IO,       /* file could not be opened, read or written */
    MX_ERR_FORMAT,   /* file contents are corrupt, truncated or inconsistent */
    MX_ERR_NOMEM,    /* allocation failed */
    MX_ERR_NUMERIC,  /* NaN/Inf or another numerical failure */
    MX_ERR_INTERRUPTED, /* stopped by SIGINT/SIGTERM after saving a checkpoint */
    MX_ERR_UNSUPPORTED  /* this machine cannot do what was asked (a CPU feature it lacks) */
} mx_status;

/* Records a printf-style message and returns `status`, so callers can write
 * `return mx_error_set(MX_ERR_IO, "%s: %s", path, strerror(errno));`. */
mx_status mx_error_set(mx_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "<context>: " (for adding a file name
 * or a command name further up the call chain). Returns `status`. */
mx_status mx_error_wrap(mx_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *mx_error_message(void);
void mx_error_clear(void);

#endif
