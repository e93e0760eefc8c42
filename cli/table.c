#include <stdio.h>

#include "commands.h"

void print_metrics_header(void)
{
    printf("%-21s %9s %8s %8s %8s %8s %8s %8s %8s\n", "", "accuracy", "top-5", "NLL", "ECE", "ECE(eq)", "MCE", "Brier",
           "n");
}

void print_metrics_row(const char *name, const mx_metrics *m)
{
    char top5[16] = "       -";
    if (m->top5 >= 0) snprintf(top5, sizeof top5, "%7.2f%%", 100 * m->top5);
    printf("%-21s %8.2f%% %8s %8.4f %8.4f %8.4f %8.4f %8.4f %8zu\n", name, 100 * m->accuracy, top5, m->nll, m->ece,
           m->ece_adaptive, m->mce, m->brier, m->n);
}

void print_metrics_table(const mx_metrics *plain, const mx_metrics *rescaled)
{
    print_metrics_header();
    if (plain) print_metrics_row("plain", plain);
    if (rescaled) print_metrics_row("rescaled", rescaled);
}
