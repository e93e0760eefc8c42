/* Library-internal pieces of streamed datasets: sharing a stream between the
 * datasets cut from it, and reporting the first error of a parallel loop by
 * position, so the message does not depend on the thread count. */
#ifndef MIXREG_DATA_STREAM_H
#define MIXREG_DATA_STREAM_H

#include <stddef.h>

#include "mixreg/data.h"

/* One more / one fewer dataset using the stream (the last frees it). */
void mx_stream_retain(mx_stream *stream);
void mx_stream_release(mx_stream *stream);

/* The error of the lowest position seen in a parallel loop. note() may be
 * called from inside an OpenMP region; raise() sets the message again in the
 * calling thread (messages are per thread) and returns the status. */
typedef struct {
    size_t at;
    mx_status status;
    char message[1024];
} mx_first_error;

void mx_first_error_init(mx_first_error *fe);
void mx_first_error_note(mx_first_error *fe, size_t at, mx_status status);
mx_status mx_first_error_raise(const mx_first_error *fe);

#endif
