#ifndef MIXREG_CLI_COMMANDS_H
#define MIXREG_CLI_COMMANDS_H

#include "mixreg/error.h"
#include "mixreg/metrics.h"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_theta(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_import(int argc, char **argv);

/* `mixreg analyze RUN_DIR --json` with its defaults (1,000 test samples),
 * written to json_path atomically by rank 0 (every rank of an mpirun job
 * takes part): the experiment runner's analyzer (mx_experiment_options). */
mx_status cli_analyze_to_file(const char *run_dir, const char *json_path, void *ctx);

/* The metrics table train and eval print; a NULL row is skipped. */
void print_metrics_header(void);
void print_metrics_row(const char *name, const mx_metrics *m);
void print_metrics_table(const mx_metrics *plain, const mx_metrics *rescaled);

#endif
