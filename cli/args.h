/* Flag parsing shared by the subcommands: "--flag value" and "--flag=value",
 * every value checked; a bad flag ends the program with status 2 and one line
 * "mixreg: error: ...". */
#ifndef MIXREG_CLI_ARGS_H
#define MIXREG_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1

typedef struct {
    const char *command;  /* for messages: "train", "eval", ... */
    int argc;
    char **argv;
    int index;            /* the argument being looked at */
    const char *value;    /* the value of the flag just matched */
} cli_args;

void cli_args_init(cli_args *a, const char *command, int argc, char **argv);
/* The current argument, or NULL at the end. */
const char *cli_current(const cli_args *a);
/* True if the current argument is `name` taking a value (consumed into a->value). */
int cli_flag_value(cli_args *a, const char *name);
/* True if the current argument is the switch `name` (no value). */
int cli_flag_switch(cli_args *a, const char *name);
/* Moves past the current argument. */
void cli_next(cli_args *a);

double cli_parse_double(const cli_args *a, const char *name, double min, double max);
size_t cli_parse_size(const cli_args *a, const char *name, size_t min, size_t max);

_Noreturn void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void cli_unknown_argument(const cli_args *a);
/* Prints "mixreg: error: <message>" and returns the exit status for status. */
int cli_report(mx_status status);

#endif
