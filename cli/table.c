#include <stdio.h>

#include "commands.h"

static void print_row(const char *name, const mx_metrics *m)
{
    printf("%-10s %8.2f%% %8.4f %8.4f %8.4f %8.4f %8zu\n", name, 100 * m->accuracy, m->nll, m->ece, m->mce, m->brier,
           m->n);
}

void print_metrics_table(const mx_metrics *plain, const mx_metrics *rescaled)
{
    printf("%-10s %9s %8s %8s %8s %8s %8s\n", "", "accuracy", "NLL", "ECE", "MCE", "Brier", "n");
    if (plain) print_row("plain", plain);
    if (rescaled) print_row("rescaled", rescaled);
}
