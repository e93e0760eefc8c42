#ifndef MIXREG_CLI_COMMANDS_H
#define MIXREG_CLI_COMMANDS_H

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

/* The metrics table train and eval print; a NULL row is skipped. */
void print_metrics_header(void);
void print_metrics_row(const char *name, const mx_metrics *m);
void print_metrics_table(const mx_metrics *plain, const mx_metrics *rescaled);

#endif
