/* Learning-rate schedules (their text form is parsed with the settings, src/config/schedule_spec.c). */
#include <math.h>

#include "mixreg/optim.h"

#define PI 3.14159265358979323846

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
