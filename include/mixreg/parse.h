/* The one parser for numbers given as text: command-line flags, experiment
 * files, list items ("--hidden 512,256", "--schedule step:100,150"), numbers
 * with a unit ("--save-every 5steps") and numbers in checkpoint metadata.
 *
 * The rules, the same everywhere:
 *   - decimal only: an optional sign, digits, and for real numbers an
 *     optional fraction and exponent ("0.5", "-2", "+1e-3", ".5", "5.");
 *     hexadecimal, "inf", "nan" and the like are not numbers;
 *   - the whole text is the number: no whitespace before or after it, no
 *     trailing characters (experiment files trim the spaces around a value
 *     before it gets here);
 *   - MX_ERR_ARG "WHAT: 'TEXT' is not a number" (or "not a whole number")
 *     when the text does not have that form, and "WHAT must be in [MIN, MAX],
 *     got TEXT" when it does but the value is outside the range, including
 *     values too large for the type (1e400, 99999999999999999999) and
 *     non-zero values too small for a double's normal range (5e-324). */
#ifndef MIXREG_PARSE_H
#define MIXREG_PARSE_H

#include <stddef.h>

#include "mixreg/error.h"

mx_status mx_parse_double(const char *what, const char *text, double min, double max, double *out);
mx_status mx_parse_size(const char *what, const char *text, size_t min, size_t max, size_t *out);

/* The same on the first `len` characters of `text` (a list item, the number
 * before a unit); messages quote those characters only. */
mx_status mx_parse_double_n(const char *what, const char *text, size_t len, double min, double max, double *out);
mx_status mx_parse_size_n(const char *what, const char *text, size_t len, size_t min, size_t max, size_t *out);

/* Whether the first `len` characters have the form of a decimal number (the
 * rules above), whatever its size: for parsers that word their own errors. */
int mx_parse_is_number(const char *text, size_t len);

/* The range checks with the same messages, for numbers that come already
 * parsed (JSON): a double must be finite and in [min, max]; a count must in
 * addition be a whole number. */
mx_status mx_check_double_range(const char *what, double value, double min, double max);
mx_status mx_check_count_range(const char *what, double value, double min, double max);

/* true/false, yes/no, on/off, 1/0. */
mx_status mx_parse_bool(const char *what, const char *text, int *out);

#endif
