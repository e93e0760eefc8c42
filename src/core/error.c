#include "mixreg/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_message[1024];

mx_status mx_error_set(mx_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_message, sizeof g_message, fmt, ap);
    va_end(ap);
    return status;
}

mx_status mx_error_wrap(mx_status status, const char *fmt, ...)
{
    char old[sizeof g_message];
    memcpy(old, g_message, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_message, sizeof g_message, fmt, ap);
    va_end(ap);
    /* Append ": <old message>", cutting it short if the buffer is full. */
    size_t used = n < 0 ? 0 : ((size_t)n < sizeof g_message ? (size_t)n : sizeof g_message - 1);
    size_t room = sizeof g_message - 1 - used;
    const char *parts[2] = {": ", old};
    for (int k = 0; k < 2; k++) {
        size_t len = strlen(parts[k]);
        if (len > room) len = room;
        memcpy(g_message + used, parts[k], len);
        used += len;
        room -= len;
    }
    g_message[used] = '\0';
    return status;
}

const char *mx_error_message(void) { return g_message[0] ? g_message : "unknown error"; }

void mx_error_clear(void) { g_message[0] = '\0'; }
