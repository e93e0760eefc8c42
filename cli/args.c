#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "mixreg/image.h"
#include "mixreg/model.h"
#include "mixreg/parse.h"
#include "mixreg/source.h"

void cli_args_init(cli_args *a, const char *command, int argc, char **argv)
{
    a->command = command;
    a->argc = argc;
    a->argv = argv;
    a->index = 0;
    a->value = NULL;
    a->known_count = 0;
}

const char *cli_current(const cli_args *a) { return a->index < a->argc ? a->argv[a->index] : NULL; }

void cli_next(cli_args *a)
{
    a->index++;
    a->known_count = 0;
}

void cli_known_flag(cli_args *a, const char *flag)
{
    if (a->known_count == CLI_MAX_KNOWN || strlen(flag) >= CLI_FLAG_CAP) return;
    for (int i = 0; i < a->known_count; i++)
        if (!strcmp(a->known[i], flag)) return;
    strcpy(a->known[a->known_count++], flag);
}

/* Optimal string alignment distance: Levenshtein's with a swap of two
 * neighbours counted as one edit ("alhpa" is one from "alpha"). Flags are
 * short; longer strings are not compared. */
static size_t edit_distance(const char *s, const char *t)
{
    enum { CAP = CLI_FLAG_CAP };
    size_t n = strlen(s), m = strlen(t);
    if (n >= CAP || m >= CAP) return (size_t)-1;
    size_t d[CAP][CAP];
    for (size_t i = 0; i <= n; i++) d[i][0] = i;
    for (size_t j = 0; j <= m; j++) d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t best = d[i - 1][j - 1] + (s[i - 1] != t[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && s[i - 1] == t[j - 2] && s[i - 2] == t[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

static const char *without_dashes(const char *flag)
{
    while (*flag == '-') flag++;
    return flag;
}

const char *cli_closest_flag(const char *typed, const char *const *candidates, size_t count)
{
    const char *best = NULL;
    size_t best_distance = (size_t)-1;
    const char *name = without_dashes(typed);
    for (size_t i = 0; i < count; i++) {
        const char *candidate = without_dashes(candidates[i]);
        size_t d = edit_distance(name, candidate), len = strlen(candidate);
        /* Close: a few slips in a name of some length, never a rewrite of it
         * (-c is not a slip of -b). */
        if (d < best_distance && d <= 3 && 3 * d <= len && d < len) best = candidates[i], best_distance = d;
    }
    return best;
}

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("mixreg: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_USAGE);
}

void cli_unknown_argument(const cli_args *a)
{
    const char *arg = cli_current(a);
    if (arg[0] != '-' || !arg[1])
        cli_usage_error("%s: unknown argument '%s' (see mixreg %s --help)", a->command, arg, a->command);
    /* The flag's name, without a "=value" it came with. */
    char typed[256];
    snprintf(typed, sizeof typed, "%.*s", (int)strcspn(arg, "="), arg);
    const char *candidates[CLI_MAX_KNOWN];
    for (int i = 0; i < a->known_count; i++) candidates[i] = a->known[i];
    const char *close = cli_closest_flag(typed, candidates, (size_t)a->known_count);
    if (close) cli_usage_error("unknown flag '%s' (did you mean '%s'?)", typed, close);
    cli_usage_error("unknown flag '%s' (see mixreg %s --help)", typed, a->command);
}

int cli_flag_value(cli_args *a, const char *name)
{
    cli_known_flag(a, name);
    const char *arg = cli_current(a);
    size_t len = strlen(name);
    if (!arg || strncmp(arg, name, len)) return 0;
    if (arg[len] == '=') {
        a->value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0') return 0;
    if (a->index + 1 >= a->argc) cli_usage_error("%s: %s needs a value", a->command, name);
    a->index++;
    a->value = a->argv[a->index];
    return 1;
}

int cli_flag_switch(cli_args *a, const char *name)
{
    cli_known_flag(a, name);
    const char *arg = cli_current(a);
    if (!arg) return 0;
    size_t len = strlen(name);
    if (!strncmp(arg, name, len) && arg[len] == '=')
        cli_usage_error("%s: %s takes no value", a->command, name);
    return !strcmp(arg, name);
}

double cli_parse_double(const cli_args *a, const char *name, double min, double max)
{
    double v;
    if (mx_parse_double(name, a->value, min, max, &v) != MX_OK) cli_usage_error("%s: %s", a->command, mx_error_message());
    return v;
}

size_t cli_parse_size(const cli_args *a, const char *name, size_t min, size_t max)
{
    size_t v;
    if (mx_parse_size(name, a->value, min, max, &v) != MX_OK) cli_usage_error("%s: %s", a->command, mx_error_message());
    return v;
}

int cli_report(mx_status status)
{
    (void)status;
    fprintf(stderr, "mixreg: error: %s\n", mx_error_message());
    return EXIT_RUNTIME;
}

int cli_report_usage(mx_status status)
{
    fprintf(stderr, "mixreg: error: %s\n", mx_error_message());
    return status == MX_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
}

void cli_print_help(const char *text)
{
    const char *forms = mx_data_source_forms();
    for (const char *at; (at = strstr(text, CLI_DATA_FORMS));) {
        fwrite(text, 1, (size_t)(at - text), stdout);
        fputs(forms, stdout);
        text = at + strlen(CLI_DATA_FORMS);
    }
    fputs(text, stdout);
}

void cli_check_data(const char *command, const char *spec)
{
    char dir[4096];
    if (spec && mx_data_resolve(spec, dir, sizeof dir) != MX_OK) cli_usage_error("%s: %s", command, mx_error_message());
}

mx_status cli_match_classes(mx_dataset *ds, const char *spec, const char *split, char *const *names, size_t classes)
{
    char what[512], note[1024];
    snprintf(what, sizeof what, "%s (%s)", spec, split);
    mx_status st = mx_dataset_match_classes(ds, what, names, classes, note, sizeof note);
    if (st == MX_OK && note[0]) fprintf(stderr, "mixreg: %s\n", note);
    return st;
}

void cli_check_environment(void)
{
    size_t limit, budget;
    if (mx_image_max_pixels(&limit) != MX_OK) cli_usage_error("%s", mx_error_message());
    if (mx_model_inference_budget(&budget) != MX_OK) cli_usage_error("%s", mx_error_message());
}
