/* Values just outside each setting's range, generated from the settings table
 * itself (mixreg/config.h), so a setting added to the table is covered by
 * every test that uses these without anyone listing it. */
#ifndef MIXREG_TEST_SETTINGS_CASES_H
#define MIXREG_TEST_SETTINGS_CASES_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mixreg/config.h"

#define CASE_TEXT 1200
#define MAX_CASES 6

typedef struct {
    char text[CASE_TEXT];
    int range;   /* a number just outside the range (as opposed to a wrong type or form) */
} setting_case;

/* A step just past x: small next to x, so the value is "just" outside. */
static inline double case_delta(double x) { return x == 0 ? 1e-9 : fabs(x) * 1e-6; }

/* The lowest value a stored config may hold (0 where it means "not given"). */
static inline double case_lowest_stored(const mx_setting *s) { return s->unset_ok ? 0 : s->min; }

static inline void case_long_string(char *out, size_t cap, const char *quote)
{
    /* Longer than any text field (MX_PATH_MAX). */
    size_t q = strlen(quote), n = MX_PATH_MAX + 50;
    if (n + 2 * q + 1 > cap) n = cap - 2 * q - 1;
    memcpy(out, quote, q);
    memset(out + q, 'x', n);
    memcpy(out + q + n, quote, q);
    out[n + 2 * q] = '\0';
}

/* JSON values config.json / a checkpoint may hold for `s` that must be
 * refused: returns how many were written. */
static inline size_t bad_json_values(const mx_setting *s, setting_case *out)
{
    size_t n = 0;
    switch (s->type) {
    case MX_SETTING_COUNT:
        snprintf(out[n].text, CASE_TEXT, "%.0f", case_lowest_stored(s) - 1), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "%" PRIu64, (uint64_t)s->max + 1), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "%.1f", s->min + 0.5), out[n++].range = 0;
        snprintf(out[n].text, CASE_TEXT, "\"%.0f\"", s->min), out[n++].range = 0;
        break;
    case MX_SETTING_NUMBER:
        snprintf(out[n].text, CASE_TEXT, "%.17g", s->min - case_delta(s->min)), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "%.17g", s->max + case_delta(s->max)), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "1e400"), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "\"%.17g\"", s->min), out[n++].range = 0;
        break;
    case MX_SETTING_SWITCH:
        snprintf(out[n].text, CASE_TEXT, "1"), out[n++].range = 0;
        snprintf(out[n].text, CASE_TEXT, "\"true\""), out[n++].range = 0;
        snprintf(out[n].text, CASE_TEXT, "null"), out[n++].range = 0;
        break;
    case MX_SETTING_TEXT:
    default:
        if (s->json_list) {
            snprintf(out[n].text, CASE_TEXT, "[0]"), out[n++].range = 0;
            snprintf(out[n].text, CASE_TEXT, "[99999999999999999999]"), out[n++].range = 0;
            snprintf(out[n].text, CASE_TEXT, "[]"), out[n++].range = 0;
            snprintf(out[n].text, CASE_TEXT, "\"512\""), out[n++].range = 0;
        } else {
            if (!s->unset_ok) snprintf(out[n].text, CASE_TEXT, "\"\""), out[n++].range = 0;
            case_long_string(out[n].text, CASE_TEXT, "\""), out[n++].range = 0;
            snprintf(out[n].text, CASE_TEXT, "5"), out[n++].range = 0;
        }
        break;
    }
    return n;
}

/* Flag values (command line, experiment files) for `s` that must be refused. */
static inline size_t bad_flag_values(const mx_setting *s, setting_case *out)
{
    size_t n = 0;
    switch (s->type) {
    case MX_SETTING_COUNT:
        snprintf(out[n].text, CASE_TEXT, "%.0f", s->min - 1), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "%" PRIu64, (uint64_t)s->max + 1), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "99999999999999999999"), out[n++].range = 1;
        break;
    case MX_SETTING_NUMBER:
        snprintf(out[n].text, CASE_TEXT, "%.17g", s->min - case_delta(s->min)), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "%.17g", s->max + case_delta(s->max)), out[n++].range = 1;
        snprintf(out[n].text, CASE_TEXT, "1e400"), out[n++].range = 1;
        break;
    case MX_SETTING_SWITCH:
        snprintf(out[n].text, CASE_TEXT, "maybe"), out[n++].range = 0;
        break;
    case MX_SETTING_TEXT:
    default:
        case_long_string(out[n].text, CASE_TEXT, ""), out[n++].range = 0;
        break;
    }
    return n;
}

/* The smallest and largest values a flag accepts, as text. */
static inline void flag_bounds(const mx_setting *s, char *lo, char *hi, size_t cap)
{
    snprintf(lo, cap, s->type == MX_SETTING_COUNT ? "%.0f" : "%.17g", s->min);
    snprintf(hi, cap, s->type == MX_SETTING_COUNT ? "%.0f" : "%.17g", s->max);
}

#endif
