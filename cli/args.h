/* Flag parsing shared by the subcommands: "--flag value" and "--flag=value",
 * every value checked; a bad flag ends the program with status 2 and one line
 * "mixreg: error: ...". */
#ifndef MIXREG_CLI_ARGS_H
#define MIXREG_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/data.h"
#include "mixreg/error.h"

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1

#define CLI_MAX_KNOWN 128
#define CLI_FLAG_CAP 48

typedef struct {
    const char *command;  /* for messages: "train", "eval", ... */
    int argc;
    char **argv;
    int index;            /* the argument being looked at */
    const char *value;    /* the value of the flag just matched */
    /* The flags tried on the current argument (every cli_flag_value and
     * cli_flag_switch call since cli_next): when none matched, these are the
     * command's flags, so an unknown one is compared with them. */
    char known[CLI_MAX_KNOWN][CLI_FLAG_CAP];
    int known_count;
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
/* The current argument is not one the command takes. A flag is answered
 * "unknown flag '--mixup-alhpa' (did you mean '--mixup-alpha'?)" when one of
 * the command's flags is close to it (cli_closest_flag), anything else
 * "unknown argument"; both exit with status 2. */
_Noreturn void cli_unknown_argument(const cli_args *a);
/* Counts `flag` ("--name" or "-n") among the command's flags for the current
 * argument, for flags not tried through cli_flag_value/cli_flag_switch
 * (train's come from the settings table). */
void cli_known_flag(cli_args *a, const char *flag);
/* The candidate closest to `typed` by edit distance (insertions, deletions,
 * substitutions and swaps of neighbours, leading dashes ignored), or NULL
 * when none is close: more than a third of its length, or 3, away. */
const char *cli_closest_flag(const char *typed, const char *const *candidates, size_t count);
/* Exit statuses: EXIT_USAGE (2) only for a command line that is wrong in
 * itself, found before anything is read: an unknown command or flag, a
 * missing or malformed value, flags that exclude each other, an unknown kind
 * of --data, an invalid $MIXREG_MAX_IMAGE_PIXELS. EXIT_RUNTIME (1) for
 * everything met once the command line is accepted, whatever its mx_status:
 * files that cannot be read or are corrupt (images, checkpoints, datasets), a
 * checkpoint naming an unknown architecture, data that does not fit the model
 * or the flags, an --out that already holds a run, numerical failures. (The
 * library's MX_ERR_ARG means "a bad argument to this call", which at run time
 * is a property of the files as often as of the flags, so it cannot decide.) */

/* Prints "mixreg: error: <message>" and returns EXIT_RUNTIME. */
int cli_report(mx_status status);
/* For a library check of the command line itself (mx_train_config_validate,
 * an experiment file's settings): EXIT_USAGE for MX_ERR_ARG, EXIT_RUNTIME
 * otherwise (a file the flags name that cannot be read). */
int cli_report_usage(mx_status status);
/* Help texts write CLI_DATA_FORMS where the forms --data accepts go;
 * cli_print_help prints the text with mx_data_source_forms() there, the list
 * the data-source parser itself reads. */
#define CLI_DATA_FORMS "@DATA_FORMS@"
void cli_print_help(const char *text);

/* A usage error unless --data's value names a known kind of data (mx_data_resolve). */
void cli_check_data(const char *command, const char *spec);
/* A usage error for an invalid $MIXREG_MAX_IMAGE_PIXELS (mx_image_max_pixels),
 * checked once at start rather than met at every image. */
void cli_check_environment(void);

/* A loaded split against the model's classes (mx_dataset_match_classes: by
 * name for an image folder and a model that has names), the note about
 * classes it lacks, if any, printed on stderr as one line. `spec` and
 * `split` name the data in messages. */
mx_status cli_match_classes(mx_dataset *ds, const char *spec, const char *split, char *const *names, size_t classes);

#endif
