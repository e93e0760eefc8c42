/* The one number parser (parse.h gives the rules). The form is checked by
 * hand before any conversion, so strtod's extras (leading spaces, hex, inf,
 * nan) never get through, and overflow is told apart from a malformed text. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/parse.h"

/* Longer texts are never numbers anyone meant; the cap keeps the copy bounded. */
#define MAX_NUMBER_TEXT 400

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static size_t count_digits(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && is_digit(s[n])) n++;
    return n;
}

/* [+-]? (D+ [. D*] | . D+) ([eE] [+-]? D+)? spanning exactly len characters. */
static int real_form(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) i++;
    size_t whole = count_digits(s + i, len - i), fraction = 0;
    i += whole;
    if (i < len && s[i] == '.') {
        i++;
        fraction = count_digits(s + i, len - i);
        i += fraction;
    }
    if (whole + fraction == 0) return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        size_t exponent = count_digits(s + i, len - i);
        if (!exponent) return 0;
        i += exponent;
    }
    return i == len;
}

int mx_parse_is_number(const char *text, size_t len) { return len <= MAX_NUMBER_TEXT && real_form(text, len); }

static mx_status range_error_double(const char *what, const char *text, int len, double min, double max, const char *why)
{
    return mx_error_set(MX_ERR_ARG, "%s must be in [%g, %g], got %.*s%s", what, min, max, len, text, why);
}

mx_status mx_parse_double_n(const char *what, const char *text, size_t len, double min, double max, double *out)
{
    int shown = len > MAX_NUMBER_TEXT ? MAX_NUMBER_TEXT : (int)len;
    if (len > MAX_NUMBER_TEXT || !real_form(text, len))
        return mx_error_set(MX_ERR_ARG, "%s: '%.*s' is not a number", what, shown, text);
    char copy[MAX_NUMBER_TEXT + 1];
    memcpy(copy, text, len);
    copy[len] = '\0';
    errno = 0;
    double v = strtod(copy, NULL);
    /* ERANGE: beyond DBL_MAX, or a non-zero value below the normal range
     * (subnormal or flushed to zero): either way not the number written. */
    if (errno == ERANGE || !isfinite(v))
        return range_error_double(what, text, shown, min, max, " (beyond the range of a double)");
    if (v < min || v > max) return range_error_double(what, text, shown, min, max, "");
    *out = v;
    return MX_OK;
}

mx_status mx_parse_size_n(const char *what, const char *text, size_t len, size_t min, size_t max, size_t *out)
{
    int shown = len > MAX_NUMBER_TEXT ? MAX_NUMBER_TEXT : (int)len;
    size_t i = 0;
    int negative = 0;
    if (i < len && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
    size_t digits = count_digits(text + i, len - i);
    if (!digits || i + digits != len)
        return mx_error_set(MX_ERR_ARG, "%s: '%.*s' is not a whole number", what, shown, text);
    uint64_t v = 0;
    int overflow = 0;
    for (; i < len; i++) {
        unsigned d = (unsigned)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10) overflow = 1;
        else v = v * 10 + d;
    }
    if (overflow || (negative && v) || v > SIZE_MAX || v < min || v > max)
        return mx_error_set(MX_ERR_ARG, "%s must be in %zu..%zu, got %.*s", what, min, max, shown, text);
    *out = (size_t)v;
    return MX_OK;
}

mx_status mx_parse_double(const char *what, const char *text, double min, double max, double *out)
{
    return mx_parse_double_n(what, text, strlen(text), min, max, out);
}

mx_status mx_parse_size(const char *what, const char *text, size_t min, size_t max, size_t *out)
{
    return mx_parse_size_n(what, text, strlen(text), min, max, out);
}

/* The shortest text that reads back as `v`, for messages. */
static void format_exact(double v, char *out, size_t cap)
{
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(out, cap, "%.*g", digits, v);
        if (strtod(out, NULL) == v) return;
    }
}

mx_status mx_check_double_range(const char *what, double value, double min, double max)
{
    if (isfinite(value) && value >= min && value <= max) return MX_OK;
    char text[40];
    format_exact(value, text, sizeof text);
    return range_error_double(what, text, (int)strlen(text), min, max, "");
}

mx_status mx_check_count_range(const char *what, double value, double min, double max)
{
    char text[40];
    format_exact(value, text, sizeof text);
    if (isfinite(value) && floor(value) != value)
        return mx_error_set(MX_ERR_ARG, "%s: '%s' is not a whole number", what, text);
    if (isfinite(value) && value >= min && value <= max) return MX_OK;
    return mx_error_set(MX_ERR_ARG, "%s must be in %.0f..%.0f, got %s", what, min, max, text);
}

mx_status mx_parse_bool(const char *what, const char *text, int *out)
{
    static const char *const truthy[] = {"true", "yes", "on", "1"}, *const falsy[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcmp(text, truthy[i])) return *out = 1, MX_OK;
        if (!strcmp(text, falsy[i])) return *out = 0, MX_OK;
    }
    return mx_error_set(MX_ERR_ARG, "%s: '%s' is not true or false", what, text);
}
