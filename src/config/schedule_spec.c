/* The --schedule setting's text: "constant", "cosine" or "step:E1,E2,...".
 * Parsed with the settings (the schedule's arithmetic is train/schedule.c). */
#include <string.h>

#include "mixreg/optim.h"
#include "mixreg/parse.h"

/* Milestones are epochs: the range of --epochs, fractions allowed. */
#define MAX_MILESTONE 100000.0

static mx_status parse_milestones(const char *list, mx_schedule *out)
{
    out->num_milestones = 0;
    if (!*list) return mx_error_set(MX_ERR_ARG, "--schedule step: needs epochs, e.g. step:100,150");
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        double e;
        if (!len) return mx_error_set(MX_ERR_ARG, "--schedule step: empty entry in '%s'", list);
        mx_status st = mx_parse_double_n("--schedule step", p, len, 0, MAX_MILESTONE, &e);
        if (st != MX_OK) return st;
        if (e <= 0) return mx_error_set(MX_ERR_ARG, "--schedule step: milestones must be positive epochs ('%s')", list);
        if (out->num_milestones == MX_MAX_MILESTONES)
            return mx_error_set(MX_ERR_ARG, "--schedule step: at most %d milestones", MX_MAX_MILESTONES);
        if (out->num_milestones && e <= out->milestones[out->num_milestones - 1])
            return mx_error_set(MX_ERR_ARG, "--schedule step: milestones must increase ('%s')", list);
        out->milestones[out->num_milestones++] = e;
        if (!p[len]) return MX_OK;
        p += len + 1;
    }
}

mx_status mx_schedule_parse(const char *text, mx_schedule *out)
{
    out->step_gamma = 0.1;
    out->num_milestones = 0;
    if (!strcmp(text, "constant")) {
        out->kind = MX_SCHEDULE_CONSTANT;
        return MX_OK;
    }
    if (!strcmp(text, "cosine")) {
        out->kind = MX_SCHEDULE_COSINE;
        return MX_OK;
    }
    if (!strncmp(text, "step:", 5)) {
        out->kind = MX_SCHEDULE_STEP;
        return parse_milestones(text + 5, out);
    }
    /* timm's step and multistep take their epochs from other flags; here they are part of the value. */
    if (!strcmp(text, "step") || !strcmp(text, "multistep"))
        return mx_error_set(MX_ERR_ARG, "--schedule: '%s' needs the epochs at which the rate drops tenfold: "
                            "step:E1,E2,... (timm's multistep with --decay-milestones E1 E2 ...)", text);
    return mx_error_set(MX_ERR_ARG, "--schedule: unknown '%s' (expected constant, cosine or step:E1,E2,...)", text);
}
