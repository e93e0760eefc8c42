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
}

const char *cli_current(const cli_args *a) { return a->index < a->argc ? a->argv[a->index] : NULL; }

void cli_next(cli_args *a) { a->index++; }

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
    cli_usage_error("%s: unknown argument '%s' (see mixreg %s --help)", a->command, cli_current(a), a->command);
}

int cli_flag_value(cli_args *a, const char *name)
{
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
