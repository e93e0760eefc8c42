/* Checked number parsing shared by the CLI and experiment files. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/parse.h"

mx_status mx_parse_double(const char *what, const char *text, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !isfinite(v)) return mx_error_set(MX_ERR_ARG, "%s: '%s' is not a number", what, text);
    if (v < min || v > max) return mx_error_set(MX_ERR_ARG, "%s must be in [%g, %g], got %s", what, min, max, text);
    *out = v;
    return MX_OK;
}

mx_status mx_parse_size(const char *what, const char *text, size_t min, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    if (text[0] == '-') return mx_error_set(MX_ERR_ARG, "%s must be in %zu..%zu, got %s", what, min, max, text);
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end || errno) return mx_error_set(MX_ERR_ARG, "%s: '%s' is not a whole number", what, text);
    if (v < min || v > max) return mx_error_set(MX_ERR_ARG, "%s must be in %zu..%zu, got %s", what, min, max, text);
    *out = (size_t)v;
    return MX_OK;
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
