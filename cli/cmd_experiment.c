#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "commands.h"
#include "mixreg/dist.h"
#include "mixreg/experiment.h"

static const char experiment_help[] =
    "usage: mixreg experiment FILE [options]\n"
    "\n"
    "Runs the grid of training runs FILE declares (methods x settings x seeds), each\n"
    "evaluated plain, rescaled and temperature-scaled (and analysed, `mixreg analyze`, for\n"
    "the seeds `analyze-seeds` names), and writes a table (Markdown and\n"
    "CSV) of mean +- std over seeds, figures and a self-contained HTML report. Finished\n"
    "runs are skipped and an interrupted one resumes, so rerunning the command continues\n"
    "an experiment. The file format is in docs/experiments.md; every line is checked\n"
    "before anything runs.\n"
    "\n"
    "  --out DIR       where runs and the report go (default runs/<FILE's name>)\n"
    "  --dry-run       check the file and list the runs, train nothing\n"
    "  --report-only   redraw the table, figures and report from the finished runs\n"
    "  --threads T     threads for every run (default: as the file says, else all cores)\n";

int cmd_experiment(int argc, char **argv)
{
    const char *file = NULL, *out = NULL;
    int dry_run = 0;
    mx_experiment_options options = {0};
    options.analyze = cli_analyze_to_file;
    cli_args a;
    cli_args_init(&a, "experiment", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            fputs(experiment_help, stdout);
            return 0;
        } else if (cli_flag_value(&a, "--out")) {
            out = a.value;
        } else if (cli_flag_switch(&a, "--dry-run")) {
            dry_run = 1;
        } else if (cli_flag_switch(&a, "--report-only")) {
            options.report_only = 1;
        } else if (cli_flag_value(&a, "--threads")) {
            options.threads = (int)cli_parse_size(&a, "--threads", 1, 1024);
        } else if (cli_current(&a)[0] != '-' && !file) {
            file = cli_current(&a);
        } else {
            cli_unknown_argument(&a);
        }
    }
    if (!file) cli_usage_error("experiment: missing FILE (see mixreg experiment --help)");
    /* Under mpirun every rank runs the grid and rank 0 alone reports: the
     * others' progress lines go nowhere (their errors still reach stderr). */
    if (!mx_dist_is_root() && !freopen("/dev/null", "w", stdout))
        return cli_report(mx_error_set(MX_ERR_IO, "/dev/null: cannot open for the output of rank %d", mx_dist_rank()));
    mx_experiment e;
    mx_status st = mx_experiment_load(file, &e);
    /* The file's settings are flags by another name: checked as the command line is. */
    if (st != MX_OK) return cli_report_usage(st);
    char out_dir[2048];
    if (out) snprintf(out_dir, sizeof out_dir, "%s", out);
    else if ((st = mx_experiment_default_out(file, &e, out_dir, sizeof out_dir)) != MX_OK) {
        mx_experiment_free(&e);
        return cli_report_usage(st); /* "give --out DIR": the command line lacks something */
    }
    if (dry_run) {
        printf("%s: %zu runs -> %s\n", file, e.count, out_dir);
        for (size_t i = 0; i < e.count; i++) printf("  %s%s\n", e.runs[i].name, e.runs[i].analyze ? "  (+ analyze)" : "");
    } else {
        printf("mixreg: experiment %s, %zu runs -> %s\n", e.name, e.count, out_dir);
        fflush(stdout);
        st = mx_experiment_run_all(&e, out_dir, &options);
        if (st == MX_OK) printf("report: %s/report.html (table: %s/table.md)\n", out_dir, out_dir);
    }
    mx_experiment_free(&e);
    if (st == MX_ERR_INTERRUPTED) {
        fprintf(stderr, "mixreg: %s; run the same command again to continue\n", mx_error_message());
        return 130;
    }
    return st == MX_OK ? 0 : cli_report(st);
}
