/* mixreg runs [DIR]: the run directories under DIR with their settings and
 * final test metrics, one line each. */
#include <cjson/cJSON.h>
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
    "Lists the run directories in DIR (default runs/): model, mixup settings, epochs and\n"
    "steps done, and the final test accuracy, NLL and ECE, plain and rescaled.\n";

static double number(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static const char *string(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static void describe(const char *root, const char *name, int json, int *first)
{
    char dir[8192];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    cJSON *config = mx_run_files_read_json(dir, "config.json");
    if (!config) return;
    cJSON *result = mx_run_files_read_json(dir, "result.json");
    cJSON *epoch = mx_run_files_last_epoch(dir);
    const cJSON *metrics = result ? result : cJSON_GetObjectItemCaseSensitive(epoch, "test");
    const char *status = result ? "done" : epoch ? "partial" : "started";
    double steps = number(epoch, "step", NULL), epochs_done = number(epoch, "epoch", NULL);
    if (json) {
        printf("%s{\"run\": \"%s\", \"status\": \"%s\", \"epochs_done\": %g, \"steps\": %g, \"config\": ", *first ? "" : ",\n ",
               name, status, epochs_done, steps);
        char *c = cJSON_PrintUnformatted(config), *m = metrics ? cJSON_PrintUnformatted(metrics) : NULL;
        printf("%s, \"test\": %s}", c ? c : "null", m ? m : "null");
        free(c);
        free(m);
    } else {
        char mix[64];
        double alpha = number(config, "mixup_alpha", NULL);
        if (alpha > 0)
            snprintf(mix, sizeof mix, "a=%g %s/%s%s", alpha, string(config, "mixup_mode"), string(config, "mixup_partner"),
                     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(config, "mixup_theta")) ? "/theta" : "");
        else
            snprintf(mix, sizeof mix, "ERM");
        printf("%-28s %-7s %-8s %-22s %3g/%-3g ", name, status, string(config, "model"), mix, epochs_done < 0 ? 0 : epochs_done,
               number(config, "epochs", NULL));
        if (metrics)
            printf("%7.2f%% %7.2f%% %7.4f %7.4f %7.4f %7.4f\n", 100 * number(metrics, "plain", "accuracy"),
                   100 * number(metrics, "rescaled", "accuracy"), number(metrics, "plain", "nll"),
                   number(metrics, "rescaled", "nll"), number(metrics, "plain", "ece"), number(metrics, "rescaled", "ece"));
        else
            printf("%8s %8s %7s %7s %7s %7s\n", "-", "-", "-", "-", "-", "-");
    }
    *first = 0;
    cJSON_Delete(config);
    cJSON_Delete(result);
    cJSON_Delete(epoch);
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
    int first = 1;
    if (json)
        printf("[");
    else
        printf("%-28s %-7s %-8s %-22s %-7s %8s %8s %7s %7s %7s %7s\n", "run", "status", "model", "mixup", "epochs", "acc",
               "acc(r)", "NLL", "NLL(r)", "ECE", "ECE(r)");
    for (size_t i = 0; i < count; i++) {
        describe(root, names[i], json, &first);
    }
    mx_free_names(names, count);
    if (json) printf("]\n");
    else if (first) printf("(no runs in %s)\n", root);
    return 0;
}
