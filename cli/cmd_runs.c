/* mixreg runs [DIR]: the run directories under DIR with their settings and
 * final test metrics, one line each. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "commands.h"
#include "mixreg/fileio.h"
#include "mixreg/run_files.h"

static const char runs_help[] =
    "usage: mixreg runs [DIR] [--json]\n"
    "\n"
    "Lists the run directories in DIR (default runs/): status, model, mixup settings, epochs\n"
    "and steps done, and the final test accuracy, NLL and ECE, plain and rescaled.\n"
    "status: done (every epoch trained), stopped (ended by --max-steps before the last\n"
    "epoch's end), partial (interrupted: resume it with mixreg train --resume), started\n"
    "(no epoch finished yet).\n";

/* A number from the run's files; NAN when it is not there (shown as "-", null in JSON). */
static double number(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *string(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

/* Length of the well-formed UTF-8 sequence at s, 0 if it is not one. */
static size_t utf8_sequence(const unsigned char *s)
{
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && s[0] < 0xC2) || (n == 4 && s[0] > 0xF4)) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return n;
}

/* A directory name as text: bytes that are not UTF-8 become U+FFFD (JSON must
 * be UTF-8) and, for the table, control characters become '?'. */
static char *printable_name(const char *name, int keep_controls)
{
    size_t len = strlen(name);
    char *out = malloc(3 * len + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)name; *p;) {
        size_t n = utf8_sequence(p);
        if (!n) {
            memcpy(o, "\xEF\xBF\xBD", 3), o += 3, p++;
        } else if (n == 1 && (*p < 0x20 || *p == 0x7F) && !keep_controls) {
            *o++ = '?', p++;
        } else {
            memcpy(o, p, n), o += n, p += n;
        }
    }
    *o = '\0';
    return out;
}

static cJSON *number_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

/* One run as a JSON object, built with cJSON so that any name is escaped. */
static cJSON *describe_json(const char *name, const char *status, const cJSON *epoch, const cJSON *config,
                            const cJSON *metrics)
{
    cJSON *o = cJSON_CreateObject();
    char *text = printable_name(name, 1);
    cJSON_AddItemToObject(o, "run", text ? cJSON_CreateString(text) : cJSON_CreateNull());
    free(text);
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddItemToObject(o, "epochs_done", number_or_null(number(epoch, "epoch", NULL)));
    cJSON_AddItemToObject(o, "steps", number_or_null(number(epoch, "step", NULL)));
    cJSON_AddItemToObject(o, "config", cJSON_Duplicate(config, 1));
    cJSON_AddItemToObject(o, "test", metrics ? cJSON_Duplicate(metrics, 1) : cJSON_CreateNull());
    return o;
}

/* "%7.2f%%" of 100 * v, "%7.4f" of v, or "-" in the same width when missing. */
static void print_metric(double v, int percent)
{
    if (isnan(v)) printf(" %*s", percent ? 8 : 7, "-");
    else if (percent) printf(" %7.2f%%", 100 * v);
    else printf(" %7.4f", v);
}

static void describe_line(const char *name, const char *status, const cJSON *epoch, const cJSON *config,
                          const cJSON *metrics)
{
    char mix[64];
    double alpha = number(config, "mixup_alpha", NULL), epochs_done = number(epoch, "epoch", NULL);
    /* CutMix is on with an alpha or a minmax range (absent from configs older than either: off). */
    const double cut = number(config, "cutmix_alpha", NULL);
    const char *minmax = string(config, "cutmix_minmax");
    const int cutmix = cut > 0 || (strcmp(minmax, "off") && strcmp(minmax, "?"));
    if (alpha > 0)
        snprintf(mix, sizeof mix, "a=%g %s/%s%s%s", alpha, string(config, "mixup_mode"), string(config, "mixup_partner"),
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(config, "mixup_theta")) ? "/theta" : "",
                 cutmix ? "+cutmix" : "");
    else if (cutmix && cut > 0)
        snprintf(mix, sizeof mix, "cutmix a=%g", cut);
    else if (cutmix)
        snprintf(mix, sizeof mix, "cutmix %.40s", minmax);
    else if (isnan(alpha))
        snprintf(mix, sizeof mix, "?");
    else
        snprintf(mix, sizeof mix, "ERM");
    char *text = printable_name(name, 0);
    double epochs = number(config, "epochs", NULL);
    char done[48];
    if (isnan(epochs)) snprintf(done, sizeof done, "%3g/%-3s", isnan(epochs_done) ? 0 : epochs_done, "?");
    else snprintf(done, sizeof done, "%3g/%-3g", isnan(epochs_done) ? 0 : epochs_done, epochs);
    printf("%-28s %-7s %-8s %-22s %s", text ? text : "?", status, string(config, "model"), mix, done);
    free(text);
    print_metric(number(metrics, "plain", "accuracy"), 1);
    print_metric(number(metrics, "rescaled", "accuracy"), 1);
    print_metric(number(metrics, "plain", "nll"), 0);
    print_metric(number(metrics, "rescaled", "nll"), 0);
    print_metric(number(metrics, "plain", "ece"), 0);
    print_metric(number(metrics, "rescaled", "ece"), 0);
    printf("\n");
}

/* A finished run that --max-steps stopped before its last epoch's end:
 * result.json says so ("complete": false); one written before it did is
 * judged by its log (a step limit, and fewer epochs logged than configured). */
static int stopped_early(const cJSON *result, const cJSON *epoch, const cJSON *config)
{
    const cJSON *complete = cJSON_GetObjectItemCaseSensitive(result, "complete");
    if (cJSON_IsBool(complete)) return cJSON_IsFalse(complete);
    double max_steps = number(config, "max_steps", NULL), epochs = number(config, "epochs", NULL);
    double done = number(epoch, "epoch", NULL);
    return max_steps > 0 && !isnan(epochs) && (isnan(done) || done < epochs);
}

/* Adds the run to `list` (JSON) or prints its line; returns 0 for a directory that is not a run. */
static int describe(const char *root, const char *name, cJSON *list)
{
    char dir[8192];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    cJSON *config = mx_run_files_read_json(dir, "config.json");
    if (!cJSON_IsObject(config)) {
        cJSON_Delete(config);
        return 0;
    }
    cJSON *result = mx_run_files_read_json(dir, "result.json");
    cJSON *epoch = mx_run_files_last_epoch(dir);
    const cJSON *metrics = result ? result : cJSON_GetObjectItemCaseSensitive(epoch, "test");
    const char *status = result ? (stopped_early(result, epoch, config) ? "stopped" : "done") : epoch ? "partial" : "started";
    if (list) cJSON_AddItemToArray(list, describe_json(name, status, epoch, config, metrics));
    else describe_line(name, status, epoch, config, metrics);
    cJSON_Delete(config);
    cJSON_Delete(result);
    cJSON_Delete(epoch);
    return 1;
}

int cmd_runs(int argc, char **argv)
{
    const char *root = NULL;
    int json = 0;
    cli_args a;
    cli_args_init(&a, "runs", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            fputs(runs_help, stdout);
            return 0;
        } else if (cli_flag_switch(&a, "--json")) {
            json = 1;
        } else if (cli_current(&a)[0] != '-' && !root) {
            root = cli_current(&a);
        } else {
            cli_unknown_argument(&a);
        }
    }
    if (!root) root = "runs";
    char **names;
    size_t count;
    if (mx_list_dir(root, "", &names, &count) != MX_OK) {
        fprintf(stderr, "mixreg: error: %s (runs are written to runs/ by default)\n", mx_error_message());
        return EXIT_RUNTIME;
    }
    cJSON *list = json ? cJSON_CreateArray() : NULL;
    if (json && !list) {
        mx_free_names(names, count);
        fprintf(stderr, "mixreg: error: runs: out of memory\n");
        return EXIT_RUNTIME;
    }
    if (!json)
        printf("%-28s %-7s %-8s %-22s %-7s %8s %8s %7s %7s %7s %7s\n", "run", "status", "model", "mixup", "epochs", "acc",
               "acc(r)", "NLL", "NLL(r)", "ECE", "ECE(r)");
    size_t shown = 0;
    for (size_t i = 0; i < count; i++) shown += (size_t)describe(root, names[i], list);
    mx_free_names(names, count);
    if (json) {
        /* One run a line, as before; cJSON escapes every string. */
        printf("[");
        int first = 1;
        for (const cJSON *run = list->child; run; run = run->next, first = 0) {
            char *text = cJSON_PrintUnformatted(run);
            printf("%s%s", first ? "" : ",\n ", text ? text : "null");
            free(text);
        }
        printf("]\n");
        cJSON_Delete(list);
    } else if (!shown) {
        printf("(no runs in %s)\n", root);
    }
    return 0;
}
