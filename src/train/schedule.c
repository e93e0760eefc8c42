#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/optim.h"

#define PI 3.14159265358979323846

static mx_status parse_milestones(const char *list, mx_schedule *out)
{
    const char *p = list;
    out->num_milestones = 0;
    while (*p) {
        char *end;
        errno = 0;
        double e = strtod(p, &end);
        if (end == p || errno || !isfinite(e) || e <= 0 || (*end && *end != ','))
            return mx_error_set(MX_ERR_ARG, "--schedule step: '%s' is not a list of positive epochs", list);
        if (out->num_milestones == MX_MAX_MILESTONES)
            return mx_error_set(MX_ERR_ARG, "--schedule step: at most %d milestones", MX_MAX_MILESTONES);
        if (out->num_milestones && e <= out->milestones[out->num_milestones - 1])
            return mx_error_set(MX_ERR_ARG, "--schedule step: milestones must increase ('%s')", list);
        out->milestones[out->num_milestones++] = e;
        p = *end ? end + 1 : end;
        if (*end && !*p) return mx_error_set(MX_ERR_ARG, "--schedule step: trailing comma in '%s'", list);
    }
    if (!out->num_milestones) return mx_error_set(MX_ERR_ARG, "--schedule step: needs epochs, e.g. step:100,150");
    return MX_OK;
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
    return mx_error_set(MX_ERR_ARG, "--schedule: unknown '%s' (expected constant, cosine or step:E1,E2,...)", text);
}

double mx_schedule_lr(const mx_schedule *s, size_t step)
{
    double steps_per_epoch = (double)(s->steps_per_epoch ? s->steps_per_epoch : 1);
    double warmup_steps = s->warmup_epochs * steps_per_epoch;
    double total_steps = (double)s->epochs * steps_per_epoch;
    double t = (double)step;
    if (t < warmup_steps) return s->base_lr * (t + 1.0) / warmup_steps;
    switch (s->kind) {
    case MX_SCHEDULE_COSINE: {
        double span = total_steps - warmup_steps;
        if (span <= 0) return s->base_lr;
        double progress = (t - warmup_steps) / span;
        if (progress > 1.0) progress = 1.0;
        return 0.5 * s->base_lr * (1.0 + cos(PI * progress));
    }
    case MX_SCHEDULE_STEP: {
        double lr = s->base_lr, epoch = t / steps_per_epoch;
        for (size_t i = 0; i < s->num_milestones; i++)
            if (epoch >= s->milestones[i]) lr *= s->step_gamma;
        return lr;
    }
    case MX_SCHEDULE_CONSTANT:
    default:
        return s->base_lr;
    }
}
