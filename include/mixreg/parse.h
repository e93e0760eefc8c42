/* Checked parsing of numbers given as text (command-line flags, experiment
 * files): the whole string must be the number, finite and within [min, max];
 * otherwise MX_ERR_ARG with a message naming `what` (e.g. "--lr"). */
#ifndef MIXREG_PARSE_H
#define MIXREG_PARSE_H

#include <stddef.h>

#include "mixreg/error.h"

mx_status mx_parse_double(const char *what, const char *text, double min, double max, double *out);
mx_status mx_parse_size(const char *what, const char *text, size_t min, size_t max, size_t *out);
/* true/false, yes/no, on/off, 1/0. */
mx_status mx_parse_bool(const char *what, const char *text, int *out);

#endif
